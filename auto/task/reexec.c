/*
 * reexec.c - starting the program again, in the same process, so that an
 * OpenMP runtime that read its variables before the preload ran reads them
 * again: each task's threads must follow the task's binding even where
 * the runtime started first.
 *
 * execve("/proc/self/exe", argv of /proc/self/cmdline, environ) keeps the
 * pid, the arguments, the open file descriptors, the binding and the
 * exported variables; the launchers (mpirun, mpiexec.mpich, srun) do not
 * notice it.  It is done at most once per process (MPIBIND_REEXEC carries
 * the pid; the new image also sees MPIBIND_APPLIED=1 and does not apply
 * again), only from the preload's constructor (never after MPI_Init:
 * the MPI library would be initialized twice), and never where it could
 * change what runs:
 *   - a setuid/setgid program (AT_SECURE): the new image would not get the
 *     same privileges or environment;
 *   - under valgrind: /proc/self/exe is valgrind's tool, and the program
 *     would run on, unchecked;
 *   - a program started as `ld.so ./prog`: /proc/self/exe is the dynamic
 *     loader, not the program;
 *   - when argv cannot be read whole from /proc/self/cmdline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "mb_text.h"
#include "reexec.h"

#define REEXEC_VAR "MPIBIND_REEXEC"

/* The kernel loaded the program with its dynamic loader as interpreter
 * (AT_BASE is the loader's address), not the loader itself as the program
 * (`ld.so ./prog`: AT_BASE is 0, and glibc rewrites AT_PHDR and AT_EXECFN
 * to look like the program's). */
static int started_by_kernel(void) { return getauxval(AT_BASE) != 0; }

static int under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "vgpreload") != NULL;
}

int mpibind_auto_reexec_done(void) {
  const char *v = getenv(REEXEC_VAR);
  long long pid;
  if (v == NULL)
    return 0;
  return mb_parse_decimal(v, strlen(v), 0, INT_MAX, &pid) == 0 &&
         pid == (long long)getpid();
}

void mpibind_auto_reexec_forget(void) { unsetenv(REEXEC_VAR); }

int mpibind_auto_reexec_possible(void) {
  return !mpibind_auto_reexec_done() && getauxval(AT_SECURE) == 0 &&
         !under_valgrind() && started_by_kernel() &&
         access("/proc/self/exe", X_OK) == 0;
}

/* /proc/self/cmdline as an argv (NULL-terminated, one allocation). */
static char **read_argv(void) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  char **argv;
  size_t argc = 0;
  if (buf == NULL || fd < 0)
    goto fail;
  for (;;) {
    ssize_t r;
    if (len == cap) {
      char *b = realloc(buf, cap * 2);
      if (b == NULL)
        goto fail;
      buf = b;
      cap *= 2;
    }
    r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      goto fail;
    if (r == 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  fd = -1;
  if (len == 0 || buf[len - 1] != '\0')
    goto fail; /* a program that rewrote its arguments */
  for (size_t i = 0; i < len; i++)
    argc += buf[i] == '\0';
  argv = malloc((argc + 1) * sizeof *argv + len);
  if (argv == NULL)
    goto fail;
  {
    char *strings = (char *)(argv + argc + 1);
    size_t k = 0;
    memcpy(strings, buf, len);
    for (size_t i = 0; i < len; i += strlen(strings + i) + 1)
      argv[k++] = strings + i;
    argv[k] = NULL;
  }
  free(buf);
  return argv;
fail:
  if (fd >= 0)
    close(fd);
  free(buf);
  return NULL;
}

int mpibind_auto_reexec(void) {
  char pid[32];
  char **argv;
  if (!mpibind_auto_reexec_possible())
    return -1;
  argv = read_argv();
  if (argv == NULL)
    return -1;
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  if (setenv(REEXEC_VAR, pid, 1) != 0) {
    free(argv);
    return -1;
  }
  fflush(NULL);
  execve("/proc/self/exe", argv, environ);
  /* still here: run on as we are */
  unsetenv(REEXEC_VAR);
  free(argv);
  return -1;
}
