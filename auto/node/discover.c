/*
 * discover.c - hwloc's risky work out of the task's process.
 *
 * A live discovery runs hwloc's I/O plugins: Debian's OpenCL and GL (X11)
 * ones, at sites CUDA, NVML, RSMI, LevelZero.  Inside a rank they would
 * start a GPU runtime before the task's *_VISIBLE_DEVICES is exported (the
 * rank then sees every GPU), and a plugin that crashes or hangs would take
 * the rank with it.  hwloc's XML parser, for its part, crashes on some
 * malformed files (docs/interfaces.md, "Untrusted topology files").  So
 * both run in a child, the helper `mpibind-discover` (mpibind-discover.c),
 * bounded in time; the task only ever parses XML that hwloc itself wrote
 * or that the helper parsed without harm.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"
#include "mb_parse.h"

extern char **environ;

#ifndef MPIBIND_HELPER_INSTALLED
#error "meson defines MPIBIND_HELPER_INSTALLED, MPIBIND_HELPER_BUILD, MPIBIND_BUILD_ROOT"
#endif

/* A discovery takes 10 ms to a second or two on large nodes with many
 * PCI devices; ten seconds is a hung plugin, not a slow machine.  The
 * node's other tasks wait for it (topocache.c), so it stays well under
 * their 30-second lock wait. */
#define DEFAULT_TIMEOUT_SECONDS 10
#define MAX_TIMEOUT_SECONDS 86400

/* Variables that make hwloc describe something other than this machine
 * (a file, a synthetic description, another root directory, another
 * process's view) or change what it may see. */
static const char *const replacing_vars[] = {
    "HWLOC_XMLFILE",  "HWLOC_SYNTHETIC",
    "HWLOC_FSROOT",   "HWLOC_CPUID_PATH",
    "HWLOC_THISSYSTEM", "HWLOC_THISSYSTEM_ALLOWED_RESOURCES",
    "HWLOC_ALLOW",    "HWLOC_DUMPED_HWDATA_DIR",
    "HWLOC_ANNOTATE_GLOBAL_COMPONENTS"};

/* HWLOC_COMPONENTS can name the xml or synthetic component (the machine
 * replaced) or only exclude some ("-opencl": a site avoiding a broken
 * plugin, which must stay honoured). */
static int components_only_exclude(const char *v) {
  const char *p = v;
  while (*p) {
    size_t n = strcspn(p, ",");
    if (n > 0 && p[0] != '-')
      return 0;
    p += n;
    if (*p == ',')
      p++;
  }
  return 1;
}

void mpibind_auto_hwloc_env_scrub(void) {
  for (size_t i = 0; i < sizeof replacing_vars / sizeof replacing_vars[0]; i++)
    unsetenv(replacing_vars[i]);
  const char *c = getenv("HWLOC_COMPONENTS");
  if (c != NULL && !components_only_exclude(c))
    unsetenv("HWLOC_COMPONENTS");
}

#ifdef MPIBIND_HELPER_BESIDE_LIBRARY
/* A wheel's helper: in the package directory, beside the libmpibind.so
 * this process loaded (the command in <venv>/bin, the preload and the
 * Python module all load that one). */
static const char *installed_helper(void) {
  static char path[PATH_MAX];
  Dl_info info;
  const char *slash;
  if (path[0] == '\0' && dladdr((void *)&mpibind_init, &info) != 0 &&
      info.dli_fname != NULL && (slash = strrchr(info.dli_fname, '/')) != NULL &&
      (size_t)(slash - info.dli_fname) + sizeof "/mpibind-discover" <= sizeof path)
    snprintf(path, sizeof path, "%.*s/mpibind-discover",
             (int)(slash - info.dli_fname), info.dli_fname);
  return path[0] ? path : MPIBIND_HELPER_INSTALLED;
}
#else
static const char *installed_helper(void) { return MPIBIND_HELPER_INSTALLED; }
#endif

/* The helper of this build: the build tree's for objects running from the
 * build tree (tests), the installed one otherwise. */
static const char *helper_path(void) {
  static const char root[] = MPIBIND_BUILD_ROOT "/";
  Dl_info info;
  char self[4096];
  const char *where = NULL;
  if (dladdr((void *)&helper_path, &info) != 0 && info.dli_fname != NULL &&
      info.dli_fname[0] == '/')
    where = info.dli_fname;
  if (where == NULL) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      self[n] = '\0';
      where = self;
    }
  }
  if (where != NULL && strncmp(where, root, sizeof root - 1) == 0)
    return MPIBIND_HELPER_BUILD;
  return installed_helper();
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

/* The environment of the helper: the task's, with MPIBIND=off so that a
 * preload it inherits (LD_PRELOAD) does nothing in it. */
static char **helper_env(void) {
  size_t n = 0, k = 0;
  for (char **e = environ; e && *e; e++)
    n++;
  char **env = malloc((n + 2) * sizeof *env);
  if (env == NULL)
    return NULL;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "MPIBIND=", 8) != 0)
      env[k++] = *e;
  env[k++] = "MPIBIND=off";
  env[k] = NULL;
  return env;
}

struct child_output {
  char *out;   /* stdout, NUL-terminated (malloc'ed) */
  size_t len;
  char err[512]; /* the first line of stderr: a message, not data */
  int status;  /* waitpid status; -1: unknown */
  int timed_out;
  int seconds; /* the bound */
};

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

/* Runs the helper with argv, gathers its output within the time bound,
 * kills it past the bound.  0, or -1 with *error when it could not run. */
static int run_helper(char *const argv[], struct child_output *o,
                      char **error) {
  int outp[2] = {-1, -1}, errp[2] = {-1, -1}, rc = -1;
  posix_spawn_file_actions_t fa;
  char **env = NULL;
  pid_t pid = -1;
  int seconds = timeout_seconds(error);
  const char *path = argv[0];

  memset(o, 0, sizeof *o);
  o->status = -1;
  if (seconds < 0)
    return -1;
  o->seconds = seconds;
  if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    *error = mpibind_auto_strdupf("cannot start %s: pipe: %s", path,
                                  strerror(errno));
    goto out;
  }
  env = helper_env();
  if (env == NULL || posix_spawn_file_actions_init(&fa) != 0) {
    *error = mpibind_auto_strdupf("cannot start %s: out of memory", path);
    goto out;
  }
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  /* None of the task's other descriptors (the launcher's pipes and
   * sockets): a helper that hangs until it is killed must not keep them
   * open. */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
  /* The task may block signals (an MPI library's progress thread setup):
   * the helper starts with none blocked. */
  posix_spawnattr_t attr;
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  int e = posix_spawn(&pid, path, &fa, &attr, argv, env);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) {
    pid = -1;
    *error = mpibind_auto_strdupf("cannot start %s: %s", path, strerror(e));
    goto out;
  }
  close(outp[1]);
  close(errp[1]);
  outp[1] = errp[1] = -1;
  fcntl(outp[0], F_SETFL, O_NONBLOCK);
  fcntl(errp[0], F_SETFL, O_NONBLOCK);

  {
    double deadline = now_seconds() + seconds;
    char *ebuf = NULL;
    size_t elen = 0, ecap = 0, ocap = 0;
    int out_open = 1, err_open = 1;
    while (out_open || err_open) {
      struct pollfd p[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
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
          drain(outp[0], &o->out, &o->len, &ocap) != 0)
        out_open = 0;
      if (err_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
          drain(errp[0], &ebuf, &elen, &ecap) != 0)
        err_open = 0;
    }
    if (o->out)
      o->out[o->len] = '\0';
    if (ebuf) {
      ebuf[elen] = '\0';
      snprintf(o->err, sizeof o->err, "%.*s", (int)strcspn(ebuf, "\n"),
               ebuf);
      free(ebuf);
    }
    /* Both pipes closed: the helper is exiting; give it the rest of the
     * bound to do so. */
    while (!o->timed_out) {
      pid_t w = waitpid(pid, &o->status, WNOHANG);
      if (w == pid || (w < 0 && errno != EINTR)) {
        if (w < 0)
          o->status = -1; /* reaped by someone else (SIGCHLD ignored) */
        pid = -1;
        break;
      }
      if (now_seconds() >= deadline) {
        o->timed_out = 1;
        break;
      }
      struct timespec nap = {0, 1000000};
      nanosleep(&nap, NULL);
    }
    if (o->timed_out && pid > 0) {
      kill(pid, SIGKILL);
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
      pid = -1;
    }
    rc = 0;
  }
out:
  for (int i = 0; i < 2; i++) {
    if (outp[i] >= 0)
      close(outp[i]);
    if (errp[i] >= 0)
      close(errp[i]);
  }
  free(env);
  return rc;
}

/* "killed by signal 11 (Segmentation fault)", "exited with status 3". */
static char *how_it_ended(const struct child_output *o) {
  if (o->status == -1)
    return strdup("ended without an answer");
  if (WIFSIGNALED(o->status))
    return mpibind_auto_strdupf("was killed by signal %d (%s)",
                                WTERMSIG(o->status),
                                strsignal(WTERMSIG(o->status)));
  return mpibind_auto_strdupf("exited with status %d",
                              WEXITSTATUS(o->status));
}

int mpibind_auto_discover_xml(char **xml, size_t *len, char **error) {
  char *argv[] = {(char *)helper_path(), NULL};
  struct child_output o;
  *xml = NULL;
  *error = NULL;
  if (run_helper(argv, &o, error) != 0)
    return -1;
  if (o.timed_out) {
    *error = mpibind_auto_strdupf(
        "the discovery of this node's topology (%s) did not end within "
        "%d seconds (MPIBIND_DISCOVERY_TIMEOUT): killed",
        argv[0], o.seconds);
    free(o.out);
    return -1;
  }
  /* An exit status lost to a SIGCHLD handler is fine when the XML is
   * whole: the task parses it anyway, and hwloc wrote it. */
  if ((o.status != -1 && !(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0)) ||
      o.out == NULL || o.len == 0) {
    char *how = how_it_ended(&o);
    *error = mpibind_auto_strdupf(
        "cannot discover this node's topology: %s %s%s%s", argv[0],
        how ? how : "failed", o.err[0] ? ": " : "", o.err);
    free(how);
    free(o.out);
    return -1;
  }
  *xml = o.out;
  *len = o.len;
  return 0;
}

int mpibind_auto_check_xml_file(const char *path, const char *what,
                                char **error) {
  char *argv[] = {(char *)helper_path(), "--check", (char *)path, NULL};
  struct child_output o;
  int rc = -1;
  *error = NULL;
  if (run_helper(argv, &o, error) != 0)
    return -1;
  /* The helper prints "ok" after a load that returned, or the library's
   * message after one that failed: either way the parse is safe to do in
   * this process (the library will give the same message). */
  if (!o.timed_out && o.out != NULL && o.len > 0) {
    rc = 0;
  } else if (o.timed_out) {
    *error = mpibind_auto_strdupf(
        "%s='%s': hwloc did not finish parsing it within %d seconds "
        "(MPIBIND_DISCOVERY_TIMEOUT): expected an hwloc XML export",
        what, path, o.seconds);
  } else if (o.status != -1 && WIFSIGNALED(o.status)) {
    *error = mpibind_auto_strdupf(
        "%s='%s' crashes hwloc's XML parser (signal %d, %s): expected an "
        "hwloc XML export (lstopo --of xml)",
        what, path, WTERMSIG(o.status), strsignal(WTERMSIG(o.status)));
  } else {
    char *how = how_it_ended(&o);
    *error = mpibind_auto_strdupf("%s='%s': cannot check it in %s, which %s%s%s",
                                  what, path, argv[0], how ? how : "failed",
                                  o.err[0] ? ": " : "", o.err);
    free(how);
  }
  free(o.out);
  return rc;
}
