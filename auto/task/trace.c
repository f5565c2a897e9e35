/*
 * trace.c - MPIBIND_TRACE's line (trace.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"
#include "strdupf.h"
#include "trace.h"

void mpibind_auto_trace(int local, int count, int how, int bound,
                        const char *cpus) {
  const char *path = getenv("MPIBIND_TRACE");
  char host[HOST_NAME_MAX + 1];
  char *line;
  int fd;
  if (path == NULL || path[0] == '\0')
    return;
  if (gethostname(host, sizeof host) != 0)
    strcpy(host, "?");
  host[sizeof host - 1] = '\0';
  line = mpibind_auto_strdupf(
      "host=%s pid=%ld task=%d/%d topology=%s bound=%d cpus=%s\n", host,
      (long)getpid(), local, count,
      mpibind_auto_how_names[how >= 0 && how <= MPIBIND_TOPO_FILE ? how : 0], bound,
      cpus ? cpus : "");
  if (line == NULL)
    return;
  /* O_NONBLOCK: a FIFO there must not hang the task; only a regular file
   * is written to. */
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      ssize_t w = write(fd, line, strlen(line));
      (void)w;
    } else if (local <= 0) {
      fprintf(stderr, "mpibind: MPIBIND_TRACE='%s' is not a regular file: "
                      "no trace written\n", path);
    }
    close(fd);
  } else if (local <= 0 && errno == ENXIO) {
    fprintf(stderr, "mpibind: MPIBIND_TRACE='%s' is a FIFO without a "
                    "reader: no trace written\n", path);
  }
  free(line);
}
