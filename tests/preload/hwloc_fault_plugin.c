/*
 * hwloc_fault.so - an hwloc plugin that misbehaves the way a broken GPU
 * plugin does at a site, to show that a discovery never runs inside a
 * task: loaded (dlopen) by hwloc from HWLOC_PLUGINS_PATH, it appends its
 * pid to $MPIBIND_TEST_FAULT_LOG and then, as $MPIBIND_TEST_FAULT says,
 * hangs forever ("hang") or crashes ("crash").
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void misbehave(void) {
  const char *log = getenv("MPIBIND_TEST_FAULT_LOG");
  const char *what = getenv("MPIBIND_TEST_FAULT");
  if (log) {
    char line[32];
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
    int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (fd >= 0) {
      if (write(fd, line, (size_t)n) < 0) {
      }
      close(fd);
    }
  }
  if (what && strcmp(what, "hang") == 0)
    for (;;)
      pause();
  if (what && strcmp(what, "crash") == 0)
    raise(SIGSEGV);
}
