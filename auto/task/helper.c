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
 * killed at the time limit.  The child runner is the project's one
 * (lib/common/mb_spawn.h, libc only), which the library's drawing runs
 * lstopo with too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"
#include "mb_spawn.h"
#include "mb_text.h"
#include "strdupf.h"
#include "tuning.h"

#if !defined(MPIBIND_HELPER_INSTALLED) || !defined(MPIBIND_LIBRARY_INSTALLED)
#error "meson defines MPIBIND_HELPER_INSTALLED, MPIBIND_HELPER_BUILD, MPIBIND_LIBRARY_INSTALLED, MPIBIND_LIBRARY_BUILD, MPIBIND_BUILD_ROOT"
#endif


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

int mpibind_auto_helper_seconds(char **error) {
  return mpibind_auto_timeout_seconds(getenv("MPIBIND_DISCOVERY_TIMEOUT"),
                                      error);
}

int mpibind_auto_helper_run(char *const argv[],
                            struct mpibind_auto_helper_output *o,
                            char **error) {
  /* the helper needs no preload, and the renderer it may start neither */
  static char *const no_preload[] = {"LD_PRELOAD", NULL};
  int seconds = mpibind_auto_helper_seconds(error);
  memset(o, 0, sizeof *o);
  if (seconds < 0)
    return -1;
  o->seconds = seconds;
  o->run = (struct mb_spawn){.argv = argv,
                             .env_drop = no_preload,
                             .keep_stdout = 1,
                             .timeout_ms = seconds * 1000L};
  if (mb_spawn_run(&o->run) != 0) {
    *error = mpibind_auto_strdupf("cannot start %s: %s", argv[0],
                                  strerror(errno));
    return -1;
  }
  return 0;
}

void mpibind_auto_helper_output_free(struct mpibind_auto_helper_output *o) {
  mb_spawn_free(&o->run);
}

/* How the helper ended, then its first line of stderr: "exited with status
 * 1: <line>" (malloc'ed, or NULL). */
static char *how_it_ended(const struct mpibind_auto_helper_output *o) {
  const char *line = o->run.err_line ? o->run.err_line : "";
  char *how = mb_spawn_how_ended(&o->run);
  char *text = mpibind_auto_strdupf("%s%s%s", how ? how : "failed",
                                    *line ? ": " : "", line);
  free(how);
  return text;
}

/* The helper that crashed or hung parsing a user's file. */
static char *topofile_problem(const char *what, const char *file,
                              const struct mpibind_auto_helper_output *o) {
  const struct mb_spawn *r = &o->run;
  char *how, *msg;
  if (r->timed_out)
    return mpibind_auto_strdupf(
        "%s='%s': hwloc did not finish parsing it within %d seconds "
        "(MPIBIND_DISCOVERY_TIMEOUT): expected an hwloc XML export",
        what, file, o->seconds);
  if (r->status != -1 && WIFSIGNALED(r->status))
    return mpibind_auto_strdupf(
        "%s='%s' crashes hwloc's XML parser (signal %d, %s): expected an "
        "hwloc XML export (lstopo --of xml)",
        what, file, WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
  how = how_it_ended(o);
  msg = mpibind_auto_strdupf("%s='%s': cannot check it in %s, which %s",
                             what, file, mpibind_auto_helper_path(),
                             how ? how : "failed");
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
  if (o->run.timed_out)
    return step == MPIBIND_AUTO_STEP_DISCOVERY
               ? mpibind_auto_strdupf(
                     "the discovery of this node's topology (%s) did not end "
                     "within %d seconds (MPIBIND_DISCOVERY_TIMEOUT): killed",
                     path, o->seconds)
               : mpibind_auto_strdupf(
                     "the helper %s did not map this node within %d seconds "
                     "(MPIBIND_DISCOVERY_TIMEOUT): killed",
                     path, o->seconds);
  how = how_it_ended(o);
  msg = step == MPIBIND_AUTO_STEP_DISCOVERY
            ? mpibind_auto_strdupf("cannot discover this node's topology: "
                                   "%s %s",
                                   path, how ? how : "failed")
            : mpibind_auto_strdupf("cannot map this node: the helper %s %s",
                                   path, how ? how : "failed");
  free(how);
  return msg;
}
