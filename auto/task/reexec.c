/*
 * reexec.c - starting the program again, in the same process, so that an
 * OpenMP runtime that read its variables before the preload ran reads them
 * again: each task's threads must follow the task's binding even where
 * the runtime started first.
 *
 * execve("/proc/self/exe", argv, environ) keeps the pid, the open file
 * descriptors, the binding and the exported variables; the launchers
 * (mpirun, mpiexec.mpich, srun) do not notice it.  It is done at most once
 * per process (MPIBIND_REEXEC carries the pid; the new image also sees
 * MPIBIND_APPLIED=1 and does not apply again), only from the preload's
 * constructor (never after MPI_Init: the MPI library would be initialized
 * twice), and never where it could change what runs:
 *   - a setuid/setgid program (AT_SECURE): the new image would not get the
 *     same privileges or environment;
 *   - under valgrind: /proc/self/exe is valgrind's tool, and the program
 *     would run on, unchecked;
 *   - a program started as `ld.so ./prog`: /proc/self/exe is the dynamic
 *     loader, not the program;
 *   - when the arguments are no longer those the program was started
 *     with.
 *
 * The arguments: glibc gives every ELF constructor the process's argc and
 * argv, which point into the argument area the kernel filled (its bounds
 * are /proc/self/stat's arg_start and arg_end).  The preload's constructor
 * runs after those of the program's libraries, and one of them may have
 * written a process title over that area (the setproctitle technique);
 * /proc/self/cmdline shows the area as it is now.  The original strings
 * are then gone from the process: what is left is checked to be the
 * kernel's layout (argc strings, each starting where argv says, one after
 * the other from arg_start to arg_end), and anything else is not
 * restarted (the caller says so).
 *
 * The new image writes the trace line of the task (trace.h): the old one
 * cannot know whether execve will succeed (E2BIG near the argument-size
 * limit), and a line written before it would claim a binding the task may
 * give up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "mb_text.h"
#include "reexec.h"
#include "strdupf.h"
#include "trace.h"

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

/* MPIBIND_REEXEC: "<pid>", or "<pid>:<task>:<trace line>" (the line the
 * new image writes for task <task>). */
int mpibind_auto_reexec_done(void) {
  const char *v = getenv(REEXEC_VAR);
  long long pid;
  if (v == NULL)
    return 0;
  return mb_parse_decimal(v, strcspn(v, ":"), 0, INT_MAX, &pid) == 0 &&
         pid == (long long)getpid();
}

void mpibind_auto_reexec_finish(void) {
  const char *v = getenv(REEXEC_VAR), *task, *line;
  long long local;
  if (v && (task = strchr(v, ':')) != NULL &&
      (line = strchr(task + 1, ':')) != NULL &&
      mb_parse_decimal(task + 1, (size_t)(line - task - 1), 0, INT_MAX,
                       &local) == 0) {
    char *l = mpibind_auto_strdupf("%s\n", line + 1);
    mpibind_auto_trace_append(l, (int)local);
    free(l);
  }
  unsetenv(REEXEC_VAR);
}

const char *mpibind_auto_reexec_impossible(void) {
  if (mpibind_auto_reexec_done())
    return "it was started again already";
  if (getauxval(AT_SECURE) != 0)
    return "it runs setuid or setgid";
  if (under_valgrind())
    return "it runs under valgrind";
  if (!started_by_kernel())
    return "it was started by the dynamic loader (ld.so PROGRAM)";
  if (access("/proc/self/exe", X_OK) != 0)
    return "/proc/self/exe cannot be executed";
  return NULL;
}

/* The argument area's bounds: /proc/self/stat's fields 48 and 49
 * (arg_start, arg_end), after the command name's closing parenthesis
 * (which may itself hold spaces and parentheses).  0, or -1. */
static int argument_area(uintptr_t *start, uintptr_t *end) {
  char buf[4096], *p, *save = NULL, *tok;
  ssize_t n;
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), field = 2;
  unsigned long long v[2] = {0, 0};
  if (fd < 0)
    return -1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  if ((p = strrchr(buf, ')')) == NULL)
    return -1;
  for (tok = strtok_r(p + 1, " \n", &save); tok && field < 49;
       tok = strtok_r(NULL, " \n", &save)) {
    field++;
    if (field == 48 || field == 49) {
      char *e;
      errno = 0;
      v[field - 48] = strtoull(tok, &e, 10);
      if (*e != '\0' || errno != 0)
        return -1;
    }
  }
  if (field < 49 || v[0] == 0 || v[1] <= v[0] || v[1] > UINTPTR_MAX)
    return -1;
  *start = (uintptr_t)v[0];
  *end = (uintptr_t)v[1];
  return 0;
}

/* 1 when argv is still the kernel's layout of the argument area. */
static int arguments_intact(int argc, char **argv) {
  uintptr_t start, end;
  const char *p, *stop;
  if (argc < 1 || argv == NULL || argument_area(&start, &end) != 0)
    return 0;
  p = (const char *)start;
  stop = (const char *)end;
  for (int i = 0; i < argc; i++) {
    const char *nul;
    if (argv[i] != p)
      return 0;
    if ((nul = memchr(p, '\0', (size_t)(stop - p))) == NULL)
      return 0;
    p = nul + 1;
  }
  return p == stop && argv[argc] == NULL;
}

int mpibind_auto_reexec(int argc, char **argv, int local, const char *trace,
                        char **why) {
  const char *no = mpibind_auto_reexec_impossible();
  char *mark;
  int e;
  *why = NULL;
  if (no == NULL && !arguments_intact(argc, argv))
    no = "its arguments were written over before mpibind ran (a process "
         "title?), so the ones it was started with are unknown";
  if (no) {
    *why = strdup(no);
    return -1;
  }
  /* the trace line without its newline: the new image writes it */
  mark = trace ? mpibind_auto_strdupf("%ld:%d:%.*s", (long)getpid(), local,
                                      (int)strcspn(trace, "\n"), trace)
               : mpibind_auto_strdupf("%ld", (long)getpid());
  if (mark == NULL || setenv(REEXEC_VAR, mark, 1) != 0) {
    free(mark);
    *why = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  free(mark);
  fflush(NULL);
  execve("/proc/self/exe", argv, environ);
  /* still here: run on as we are */
  e = errno;
  unsetenv(REEXEC_VAR);
  *why = mpibind_auto_strdupf("execve(/proc/self/exe) failed: %s",
                              strerror(e));
  return -1;
}
