/*
 * spawn.c - a child process with a time limit (see mb_spawn.h).  libc
 * only.
 *
 * Steps: two pipes (stdout when kept, stderr); posix_spawn(p) with the
 * file actions and attributes of the contract; then one loop polls both
 * pipes until they close or the deadline passes; then the child is
 * waited for until the same deadline (a child may close its output and
 * go on); past it, SIGKILL and a blocking wait.  Nothing here may leave
 * a zombie or a descriptor behind, whatever fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mb_buf.h"
#include "mb_spawn.h"

extern char **environ;

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What one pipe gave. */
struct sink {
  struct mb_buf b;
  int first_line; /* keep only up to the first newline (stderr) */
  int line_done;
};

/* Keeps [data, data + n) as the sink's rule says; -1 when out of memory. */
static int sink_add(struct sink *k, const char *data, size_t n)
{
  if (k->first_line) {
    if (k->line_done)
      return 0;
    const char *nl = memchr(data, '\n', n);
    if (nl) {
      n = (size_t)(nl - data);
      k->line_done = 1;
    }
  }
  return mb_buf_add(&k->b, data, n);
}

/* Reads what fd has now.  1: end of file (or an error: the pipe is done
 * either way), 0: nothing more for now, -1: out of memory. */
static int sink_read(int fd, struct sink *k)
{
  char chunk[4096];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r > 0) {
      if (sink_add(k, chunk, (size_t)r))
        return -1;
      continue;
    }
    if (r < 0 && errno == EINTR)
      continue;
    return r < 0 && errno == EAGAIN ? 0 : 1;
  }
}

static void close_pair(int p[2])
{
  for (int i = 0; i < 2; i++)
    if (p[i] >= 0) {
      close(p[i]);
      p[i] = -1;
    }
}

/* 1 when the entry "NAME=value" names one of drop's names. */
static int dropped(const char *entry, char *const *drop)
{
  for (; *drop; drop++) {
    size_t n = strlen(*drop);
    if (strncmp(entry, *drop, n) == 0 && entry[n] == '=')
      return 1;
  }
  return 0;
}

/* The child's environment: env less the entries s->env_drop names, in a
 * new array (the strings are env's); NULL when out of memory. */
static char **child_environ(char *const *env, char *const *drop)
{
  size_t n = 0, k = 0;
  while (env && env[n])
    n++;
  char **out = calloc(n + 1, sizeof *out);
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!dropped(env[i], drop))
      out[k++] = env[i];
  return out;
}

/* posix_spawn(p) with stdin on /dev/null, stdout on out_fd (or
 * /dev/null), stderr on err_fd, no signal blocked, no other descriptor.
 * Returns 0 or an errno value. */
static int start(const struct mb_spawn *s, int out_fd, int err_fd, pid_t *pid)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int e = posix_spawn_file_actions_init(&fa);
  if (e)
    return e;
  if ((e = posix_spawnattr_init(&attr))) {
    posix_spawn_file_actions_destroy(&fa);
    return e;
  }
  sigset_t none;
  sigemptyset(&none);
  if (!e)
    e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!e)
    e = out_fd >= 0
            ? posix_spawn_file_actions_adddup2(&fa, out_fd, 1)
            : posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (!e)
    e = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  if (!e)
    e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
  if (!e)
    e = posix_spawnattr_setsigmask(&attr, &none);
  if (!e)
    e = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  char *const *env = s->envp ? s->envp : environ;
  char **kept = NULL;
  if (!e && s->env_drop && !(env = kept = child_environ(env, s->env_drop)))
    e = ENOMEM;
  if (!e)
    e = s->search_path ? posix_spawnp(pid, s->argv[0], &fa, &attr, s->argv, env)
                       : posix_spawn(pid, s->argv[0], &fa, &attr, s->argv, env);
  free(kept);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return e;
}

/* Reads both pipes until they close or the deadline; 0, or -1 when out
 * of memory.  Sets timed_out. */
static int gather(struct mb_spawn *s, int out_fd, int err_fd,
                  struct sink *out, struct sink *err, long long deadline)
{
  int fds[2] = {out_fd, err_fd};
  struct sink *sinks[2] = {out, err};
  for (;;) {
    struct pollfd p[2];
    int n = 0;
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0)
        p[n++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    if (n == 0)
      return 0;
    long long left = deadline - now_ms();
    if (left <= 0) {
      s->timed_out = 1;
      return 0;
    }
    int r = poll(p, (nfds_t)n, left > 60000 ? 60000 : (int)left);
    if (r < 0 && errno != EINTR)
      return 0; /* cannot watch them: the wait below still bounds it */
    for (int j = 0; r > 0 && j < n; j++) {
      if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
        continue;
      int i = p[j].fd == fds[0] ? 0 : 1;
      int rc = sink_read(fds[i], sinks[i]);
      if (rc < 0)
        return -1;
      if (rc > 0)
        fds[i] = -1; /* closed by the caller of gather */
    }
  }
}

/* Waits for the child until the deadline, then kills it; always reaps. */
static void reap(struct mb_spawn *s, pid_t pid, long long deadline)
{
  while (!s->timed_out) {
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      s->status = status;
      return;
    }
    if (w < 0 && errno != EINTR) {
      s->status = -1; /* reaped elsewhere (SIGCHLD ignored) */
      return;
    }
    if (now_ms() >= deadline) {
      s->timed_out = 1;
      break;
    }
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  kill(pid, SIGKILL);
  int status;
  pid_t w;
  while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
    ;
  s->status = w == pid ? status : -1;
}

int mb_spawn_run(struct mb_spawn *s)
{
  if (!s || !s->argv || !s->argv[0] || s->timeout_ms <= 0) {
    errno = EINVAL;
    return -1;
  }
  s->out = s->err_line = NULL;
  s->out_len = 0;
  s->status = -1;
  s->timed_out = 0;

  int outp[2] = {-1, -1}, errp[2] = {-1, -1};
  if ((s->keep_stdout && pipe2(outp, O_CLOEXEC) != 0) ||
      pipe2(errp, O_CLOEXEC) != 0) {
    int e = errno;
    close_pair(outp);
    errno = e;
    return -1;
  }
  long long deadline = now_ms() + s->timeout_ms;
  pid_t pid;
  int e = start(s, outp[1], errp[1], &pid);
  close(errp[1]);
  errp[1] = -1;
  if (outp[1] >= 0) {
    close(outp[1]);
    outp[1] = -1;
  }
  if (e) {
    close_pair(outp);
    close_pair(errp);
    errno = e;
    return -1;
  }
  for (int i = 0; i < 2; i++) {
    int fd = i ? errp[0] : outp[0];
    if (fd >= 0)
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  struct sink out = {0}, err = {.first_line = 1};
  int oom = gather(s, outp[0], errp[0], &out, &err, deadline);
  close_pair(outp);
  close_pair(errp);
  if (oom)
    s->timed_out = 1; /* stop it now: nothing can hold its output */
  reap(s, pid, deadline);
  if (oom) {
    s->timed_out = 0;
    free(out.b.p);
    free(err.b.p);
    errno = ENOMEM;
    return -1;
  }
  s->out = out.b.p;
  s->out_len = out.b.len;
  s->err_line = err.b.p;
  return 0;
}

void mb_spawn_free(struct mb_spawn *s)
{
  if (!s)
    return;
  free(s->out);
  free(s->err_line);
  s->out = s->err_line = NULL;
  s->out_len = 0;
}

char *mb_spawn_how_ended(const struct mb_spawn *s)
{
  char *text = NULL;
  int rc;
  if (s->timed_out && s->timeout_ms % 1000 == 0)
    rc = asprintf(&text, "did not end within %ld seconds and was killed",
                  s->timeout_ms / 1000);
  else if (s->timed_out)
    rc = asprintf(&text, "did not end within %ld ms and was killed",
                  s->timeout_ms);
  else if (s->status == -1)
    rc = asprintf(&text, "ended without a status");
  else if (WIFSIGNALED(s->status))
    rc = asprintf(&text, "was killed by signal %d (%s)", WTERMSIG(s->status),
                  strsignal(WTERMSIG(s->status)));
  else
    rc = asprintf(&text, "exited with status %d", WEXITSTATUS(s->status));
  return rc < 0 ? NULL : text;
}
