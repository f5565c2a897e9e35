/*
 * mb_spawn.h - runs a program as a child process with a time limit:
 * started with posix_spawn, its output read through pipes, killed
 * (SIGKILL) at the deadline, always reaped.  libc only (no hwloc, no
 * libmpibind), so that code running inside an application's process can
 * use it as well as the library: the library's drawing runs lstopo with
 * it, and the automatic-binding layer starts its helper with it
 * (auto/task/helper.c).  Internal, never installed (static library
 * mpibind-libc).
 *
 * The child always starts with stdin on /dev/null, no signal blocked
 * (the caller may block some: an MPI library's threads do), and (glibc
 * 2.34 and later) no descriptor of the caller's but 0-2, so that a child
 * that hangs keeps none of the caller's pipes or sockets open.
 */
#ifndef MB_SPAWN_H
#define MB_SPAWN_H

#include <stddef.h>

struct mb_spawn {
  /* Inputs. */
  char *const *argv;  /* argv[0] is the program; NULL-terminated */
  char *const *envp;  /* the child's environment; NULL: the caller's */
  char *const *env_drop; /* names (NULL-terminated) whose entries are left
                          * out of that environment (LD_PRELOAD: the
                          * caller's preload stays out of the child);
                          * NULL: none */
  int search_path;    /* 1: argv[0] is looked up in PATH (posix_spawnp) */
  int keep_stdout;    /* 1: stdout is read into out; 0: sent to /dev/null */
  long timeout_ms;    /* the time limit, > 0, from the start */

  /* Outputs of mb_spawn_run() (zeroed by it first; free with
   * mb_spawn_free). */
  char *out;          /* stdout (keep_stdout), NUL-terminated; NULL when
                       * the child wrote nothing */
  size_t out_len;
  char *err_line;     /* the first line of stderr without its newline,
                       * NUL-terminated; NULL when it wrote none (the rest
                       * of stderr is read and dropped: a message, not
                       * data) */
  int status;         /* waitpid's status; -1 when the child was reaped
                       * elsewhere (a caller that ignores SIGCHLD) */
  int timed_out;      /* 1: the deadline passed and the child was killed */
};

/* Runs s->argv as described above and waits for it to end, at most
 * s->timeout_ms milliseconds, then kills it.  Returns 0 once the child
 * ended (or was killed) and was reaped, whatever its status; -1 with
 * errno when it could not be started (ENOENT: no such program, EACCES,
 * ...), or EINVAL for a bad argument, or ENOMEM (the child is then
 * killed and reaped too). */
int mb_spawn_run(struct mb_spawn *s);

/* Frees the outputs of mb_spawn_run (s itself is the caller's). */
void mb_spawn_free(struct mb_spawn *s);

/* How the child ended, for a message: "exited with status 3", "was
 * killed by signal 11 (Segmentation fault)", "did not end within 10
 * seconds and was killed", "ended without a status" (reaped elsewhere).
 * malloc'ed; NULL when out of memory. */
char *mb_spawn_how_ended(const struct mb_spawn *s);

#endif
