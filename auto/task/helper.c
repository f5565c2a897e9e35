/*
 * helper.c - the helper `mpibind-discover`, found and run with a time
 * limit (helper.h).
 *
 * Why a child: a live discovery runs hwloc's I/O plugins (Debian's OpenCL
 * and GL ones, at sites CUDA, NVML, RSMI, LevelZero), which would start a
 * GPU runtime inside the rank before its *_VISIBLE_DEVICES is exported,
 * and a plugin that crashes or hangs would take the rank with it; hwloc's
 * XML parser crashes on some malformed files; and the library, hwloc and
 * their dependencies (libxml2, libudev) loaded into the application can
 * meet the application's own copies of them.  So the application's
 * process only starts the helper and reads what it says; the helper is
 * killed at the time limit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"
#include "mb_text.h"
#include "strdupf.h"

extern char **environ;

#if !defined(MPIBIND_HELPER_INSTALLED) || !defined(MPIBIND_LIBRARY_INSTALLED)
#error "meson defines MPIBIND_HELPER_INSTALLED, MPIBIND_HELPER_BUILD, MPIBIND_LIBRARY_INSTALLED, MPIBIND_LIBRARY_BUILD, MPIBIND_BUILD_ROOT"
#endif

/* A discovery takes 10 ms to a second or two on large nodes with many
 * PCI devices, the mapping of a node of 8192 PUs a tenth of a second;
 * ten seconds is a hung plugin, not a slow machine.  The node's other
 * tasks wait for it (keyfile.c), so it stays well under their 30-second
 * lock wait. */
#define DEFAULT_TIMEOUT_SECONDS 10
#define MAX_TIMEOUT_SECONDS 86400

/* The path of the object this code is linked into (the preload, the
 * command, the helper, the Slurm plugin), malloc'ed; NULL when unknown.
 * (An executable's name from dladdr may be relative: then the kernel's.) */
static char *this_object(void) {
  Dl_info info;
  char *buf;
  ssize_t n;
  if (dladdr((void *)&this_object, &info) != 0 && info.dli_fname != NULL &&
      info.dli_fname[0] == '/')
    return strdup(info.dli_fname);
  buf = malloc(PATH_MAX);
  n = buf ? readlink("/proc/self/exe", buf, PATH_MAX - 1) : -1;
  if (n <= 0) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* 1 when this object runs from this build tree (found once: the
 * object's path does not change while it is loaded). */
static int in_build_tree(void) {
  static const char root[] = MPIBIND_BUILD_ROOT "/";
  static int known, inside;
  if (!known) {
    char *where = this_object();
    inside = where != NULL && strncmp(where, root, sizeof root - 1) == 0;
    known = 1;
    free(where);
  }
  return inside;
}

#ifdef MPIBIND_HELPER_BESIDE_LIBRARY
/* A wheel: the helper, libmpibind.so and the preload share the package
 * directory.  The command (in <venv>/bin) has libmpibind loaded: its
 * directory; the preload has not: this object's own directory. */
static int find_libmpibind(struct dl_phdr_info *info, size_t size,
                           void *dir) {
  const char *name = info->dlpi_name, *slash;
  (void)size;
  if (name == NULL || (slash = strrchr(name, '/')) == NULL ||
      strncmp(slash + 1, "libmpibind.so", 13) != 0)
    return 0;
  snprintf(dir, PATH_MAX, "%.*s", (int)(slash - name), name);
  return 1;
}

static const char *package_dir(void) {
  static char dir[PATH_MAX];
  char *where, *slash;
  if (dir[0] == '\0' && dl_iterate_phdr(find_libmpibind, dir) == 0 &&
      (where = this_object()) != NULL) {
    if ((slash = strrchr(where, '/')) != NULL)
      snprintf(dir, sizeof dir, "%.*s", (int)(slash - where), where);
    free(where);
  }
  return dir;
}

static const char *installed(const char *file, const char *fallback) {
  static char helper[PATH_MAX], library[PATH_MAX];
  char *buf = strcmp(file, "mpibind-discover") == 0 ? helper : library;
  const char *dir = package_dir();
  if (buf[0] == '\0' && dir[0] != '\0')
    snprintf(buf, PATH_MAX, "%s/%s", dir, file);
  return buf[0] ? buf : fallback;
}
#define INSTALLED_HELPER installed("mpibind-discover", MPIBIND_HELPER_INSTALLED)
#define INSTALLED_LIBRARY installed("libmpibind.so", MPIBIND_LIBRARY_INSTALLED)
#else
#define INSTALLED_HELPER MPIBIND_HELPER_INSTALLED
#define INSTALLED_LIBRARY MPIBIND_LIBRARY_INSTALLED
#endif

const char *mpibind_auto_helper_path(void) {
  return in_build_tree() ? MPIBIND_HELPER_BUILD : INSTALLED_HELPER;
}

const char *mpibind_auto_helper_library_path(void) {
  return in_build_tree() ? MPIBIND_LIBRARY_BUILD : INSTALLED_LIBRARY;
}

/* MPIBIND_DISCOVERY_TIMEOUT in seconds; -1 with *error when malformed. */
static int timeout_seconds(char **error) {
  const char *v = getenv("MPIBIND_DISCOVERY_TIMEOUT");
  long long s;
  if (v == NULL)
    return DEFAULT_TIMEOUT_SECONDS;
  if (mb_parse_decimal(v, strlen(v), 1, MAX_TIMEOUT_SECONDS, &s) != 0) {
    *error = mpibind_auto_strdupf(
        "MPIBIND_DISCOVERY_TIMEOUT='%s' is invalid: expected whole seconds "
        "from 1 to %d",
        v, MAX_TIMEOUT_SECONDS);
    return -1;
  }
  return (int)s;
}

/* The environment of the helper: this process's, without LD_PRELOAD (the
 * helper needs none, and the renderer it may start neither). */
static char **helper_env(void) {
  size_t n = 0, k = 0;
  for (char **e = environ; e && *e; e++)
    n++;
  char **env = malloc((n + 1) * sizeof *env);
  if (env == NULL)
    return NULL;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
      env[k++] = *e;
  env[k] = NULL;
  return env;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Appends what fd has to (*buf, *len); returns 1 at end of file. */
static int drain(int fd, char **buf, size_t *len, size_t *cap) {
  for (;;) {
    if (*len + 4096 + 1 > *cap) {
      size_t ncap = *cap ? *cap * 2 : 65536;
      while (ncap < *len + 4096 + 1)
        ncap *= 2;
      char *nb = realloc(*buf, ncap);
      if (nb == NULL)
        return -1;
      *buf = nb;
      *cap = ncap;
    }
    ssize_t r = read(fd, *buf + *len, *cap - *len - 1);
    if (r > 0) {
      *len += (size_t)r;
      continue;
    }
    if (r == 0)
      return 1;
    if (errno == EINTR)
      continue;
    return errno == EAGAIN ? 0 : -1;
  }
}

/* Starts argv with stdout and stderr on the pipes' write ends.  The
 * task's other descriptors (the launcher's pipes and sockets) are closed
 * in the child, so that a helper that hangs until it is killed keeps none
 * open; the task may block signals (an MPI library's progress thread
 * setup): the helper starts with none blocked. */
static int spawn(char *const argv[], int out, int err, pid_t *pid,
                 char **error) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none;
  char **env = helper_env();
  int e;
  if (env == NULL || posix_spawn_file_actions_init(&fa) != 0) {
    free(env);
    *error = mpibind_auto_strdupf("cannot start %s: out of memory", argv[0]);
    return -1;
  }
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, err, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
  sigemptyset(&none);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  e = posix_spawn(pid, argv[0], &fa, &attr, argv, env);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  if (e != 0) {
    *error = mpibind_auto_strdupf("cannot start %s: %s", argv[0], strerror(e));
    return -1;
  }
  return 0;
}

/* Reads the helper's stdout and stderr until both close or the deadline
 * passes (o->timed_out). */
static void gather(int out, int err, double deadline,
                   struct mpibind_auto_helper_output *o) {
  char *ebuf = NULL;
  size_t elen = 0, ecap = 0, ocap = 0;
  int out_open = 1, err_open = 1;
  fcntl(out, F_SETFL, O_NONBLOCK);
  fcntl(err, F_SETFL, O_NONBLOCK);
  while (out_open || err_open) {
    struct pollfd p[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    double left = deadline - now_seconds();
    if (left <= 0) {
      o->timed_out = 1;
      break;
    }
    int n = poll(p, 2, (int)(left * 1000) + 1);
    if (n < 0 && errno != EINTR)
      break;
    if (n <= 0)
      continue;
    if (out_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
        drain(out, &o->out, &o->len, &ocap) != 0)
      out_open = 0;
    if (err_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
        drain(err, &ebuf, &elen, &ecap) != 0)
      err_open = 0;
  }
  if (o->out)
    o->out[o->len] = '\0';
  if (ebuf) {
    ebuf[elen] = '\0';
    snprintf(o->err, sizeof o->err, "%.*s", (int)strcspn(ebuf, "\n"), ebuf);
    free(ebuf);
  }
}

/* Both pipes closed: the helper is exiting; it is given the rest of the
 * bound to do so, then killed. */
static void reap(pid_t pid, double deadline,
                 struct mpibind_auto_helper_output *o) {
  while (!o->timed_out) {
    pid_t w = waitpid(pid, &o->status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) {
      if (w < 0)
        o->status = -1; /* reaped by someone else (SIGCHLD ignored) */
      return;
    }
    if (now_seconds() >= deadline) {
      o->timed_out = 1;
      break;
    }
    struct timespec nap = {0, 1000000};
    nanosleep(&nap, NULL);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
}

int mpibind_auto_helper_run(char *const argv[],
                            struct mpibind_auto_helper_output *o,
                            char **error) {
  int outp[2] = {-1, -1}, errp[2] = {-1, -1}, rc = -1;
  int seconds = timeout_seconds(error);
  pid_t pid;

  memset(o, 0, sizeof *o);
  o->status = -1;
  if (seconds < 0)
    return -1;
  o->seconds = seconds;
  if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    *error = mpibind_auto_strdupf("cannot start %s: pipe: %s", argv[0],
                                  strerror(errno));
    goto out;
  }
  if (spawn(argv, outp[1], errp[1], &pid, error) != 0)
    goto out;
  close(outp[1]);
  close(errp[1]);
  outp[1] = errp[1] = -1;
  double deadline = now_seconds() + seconds;
  gather(outp[0], errp[0], deadline, o);
  reap(pid, deadline, o);
  rc = 0;
out:
  for (int i = 0; i < 2; i++) {
    if (outp[i] >= 0)
      close(outp[i]);
    if (errp[i] >= 0)
      close(errp[i]);
  }
  return rc;
}

char *mpibind_auto_helper_ended(const struct mpibind_auto_helper_output *o) {
  if (o->status == -1)
    return strdup("ended without an answer");
  if (WIFSIGNALED(o->status))
    return mpibind_auto_strdupf("was killed by signal %d (%s)",
                                WTERMSIG(o->status),
                                strsignal(WTERMSIG(o->status)));
  return mpibind_auto_strdupf("exited with status %d",
                              WEXITSTATUS(o->status));
}

/* The helper that crashed or hung parsing a user's file. */
static char *topofile_problem(const char *what, const char *file,
                              const struct mpibind_auto_helper_output *o) {
  char *how, *msg;
  if (o->timed_out)
    return mpibind_auto_strdupf(
        "%s='%s': hwloc did not finish parsing it within %d seconds "
        "(MPIBIND_DISCOVERY_TIMEOUT): expected an hwloc XML export",
        what, file, o->seconds);
  if (o->status != -1 && WIFSIGNALED(o->status))
    return mpibind_auto_strdupf(
        "%s='%s' crashes hwloc's XML parser (signal %d, %s): expected an "
        "hwloc XML export (lstopo --of xml)",
        what, file, WTERMSIG(o->status), strsignal(WTERMSIG(o->status)));
  how = mpibind_auto_helper_ended(o);
  msg = mpibind_auto_strdupf("%s='%s': cannot check it in %s, which %s%s%s",
                             what, file, mpibind_auto_helper_path(),
                             how ? how : "failed", o->err[0] ? ": " : "",
                             o->err);
  free(how);
  return msg;
}

char *mpibind_auto_helper_problem(enum mpibind_auto_helper_step step,
                                  const char *what, const char *file,
                                  const struct mpibind_auto_helper_output *o) {
  const char *path = mpibind_auto_helper_path();
  char *how, *msg;
  if (step == MPIBIND_AUTO_STEP_TOPOFILE)
    return topofile_problem(what, file, o);
  if (o->timed_out)
    return step == MPIBIND_AUTO_STEP_DISCOVERY
               ? mpibind_auto_strdupf(
                     "the discovery of this node's topology (%s) did not end "
                     "within %d seconds (MPIBIND_DISCOVERY_TIMEOUT): killed",
                     path, o->seconds)
               : mpibind_auto_strdupf(
                     "the helper %s did not map this node within %d seconds "
                     "(MPIBIND_DISCOVERY_TIMEOUT): killed",
                     path, o->seconds);
  how = mpibind_auto_helper_ended(o);
  msg = step == MPIBIND_AUTO_STEP_DISCOVERY
            ? mpibind_auto_strdupf("cannot discover this node's topology: "
                                   "%s %s%s%s",
                                   path, how ? how : "failed",
                                   o->err[0] ? ": " : "", o->err)
            : mpibind_auto_strdupf("cannot map this node: the helper %s "
                                   "%s%s%s",
                                   path, how ? how : "failed",
                                   o->err[0] ? ": " : "", o->err);
  free(how);
  return msg;
}
