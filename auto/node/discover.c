/*
 * discover.c - hwloc's risky work (discover.h).
 *
 * A live discovery runs hwloc's I/O plugins: Debian's OpenCL and GL (X11)
 * ones, at sites CUDA, NVML, RSMI, LevelZero.  Inside a rank they would
 * start a GPU runtime before the task's *_VISIBLE_DEVICES is exported (the
 * rank then sees every GPU), and a plugin that crashes or hangs would take
 * the rank with it.  hwloc's XML parser, for its part, crashes on some
 * malformed files (docs/interfaces.md, "Untrusted topology files").  So
 * both run in the helper `mpibind-discover` (mpibind-discover.c), bounded
 * in time (auto/task/helper.c): the tasks ask it to map (it discovers or
 * parses there), and a mapper that is not the helper (the Slurm plugin,
 * the command) has it discover or check a file first, and parses only XML
 * that hwloc itself wrote or that the helper parsed without harm.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "discover.h"
#include "helper.h"
#include "mpibind.h"
#include "strdupf.h"

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

int mpibind_auto_discover_here(char **xml, size_t *len, char **error) {
  mpibind_t *h = NULL;
  hwloc_topology_t t = NULL;
  char *buf = NULL;
  int n = 0, rc = -1;
  *xml = NULL;
  mpibind_auto_hwloc_env_scrub();
  if (mpibind_init(&h) != 0 || mpibind_topology_load(h) != 0) {
    *error = mpibind_auto_strdupf("cannot discover this node's topology: %s",
                                  mpibind_get_error(h));
    goto out;
  }
  t = mpibind_get_topology(h);
  if (hwloc_topology_export_xmlbuffer(t, &buf, &n, 0) != 0 || n <= 0) {
    *error = mpibind_auto_strdupf("cannot export this node's topology as "
                                  "XML");
    goto out;
  }
  *len = strlen(buf);
  *xml = malloc(*len + 1);
  if (*xml == NULL) {
    *error = mpibind_auto_strdupf("out of memory");
    goto out;
  }
  memcpy(*xml, buf, *len + 1);
  rc = 0;
out:
  if (buf)
    hwloc_free_xmlbuffer(t, buf);
  mpibind_finalize(h);
  return rc;
}

int mpibind_auto_discover_xml(char **xml, size_t *len, char **error) {
  char *argv[] = {(char *)mpibind_auto_helper_path(), NULL};
  struct mpibind_auto_helper_output o;
  *xml = NULL;
  *error = NULL;
  if (mpibind_auto_helper_run(argv, &o, error) != 0)
    return -1;
  /* An exit status lost to a SIGCHLD handler is fine when the XML is
   * whole: the caller parses it anyway, and hwloc wrote it. */
  if (o.run.timed_out ||
      (o.run.status != -1 &&
       !(WIFEXITED(o.run.status) && WEXITSTATUS(o.run.status) == 0)) ||
      o.run.out == NULL || o.run.out_len == 0) {
    *error = mpibind_auto_helper_problem(MPIBIND_AUTO_STEP_DISCOVERY, NULL,
                                         NULL, &o);
    mpibind_auto_helper_output_free(&o);
    return -1;
  }
  *xml = o.run.out;
  *len = o.run.out_len;
  o.run.out = NULL;
  mpibind_auto_helper_output_free(&o);
  return 0;
}

int mpibind_auto_check_xml_file(const char *path, const char *what,
                                char **error) {
  char *argv[] = {(char *)mpibind_auto_helper_path(), "--check", (char *)path,
                  NULL};
  struct mpibind_auto_helper_output o;
  int rc = -1;
  *error = NULL;
  if (mpibind_auto_helper_run(argv, &o, error) != 0)
    return -1;
  /* The helper prints "ok" after a load that returned, or the library's
   * message after one that failed: either way the parse is safe to do in
   * this process (the library will give the same message). */
  if (!o.run.timed_out && o.run.out != NULL && o.run.out_len > 0)
    rc = 0;
  else
    *error = mpibind_auto_helper_problem(MPIBIND_AUTO_STEP_TOPOFILE, what,
                                         path, &o);
  mpibind_auto_helper_output_free(&o);
  return rc;
}

/* A directory that cannot exist: no plugin is found there. */
#define NO_PLUGINS_PATH "/nonexistent/mpibind-no-hwloc-plugins"

static int plugins_off_disabled;

void mpibind_auto_plugins_off_disable(void) { plugins_off_disabled = 1; }

void mpibind_auto_plugins_off_begin(char **saved) {
  const char *v = getenv("HWLOC_PLUGINS_PATH");
  *saved = NULL;
  if (plugins_off_disabled)
    return;
  /* Even the user's own plugin directory: loading XML needs no plugin,
   * and a site's GPU plugins would pull their GPU runtimes into the
   * task. */
  *saved = v ? strdup(v) : NULL;
  setenv("HWLOC_PLUGINS_PATH", NO_PLUGINS_PATH, 1);
}

void mpibind_auto_plugins_off_end(char *saved) {
  if (plugins_off_disabled)
    return;
  if (saved) {
    setenv("HWLOC_PLUGINS_PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("HWLOC_PLUGINS_PATH");
  }
}
