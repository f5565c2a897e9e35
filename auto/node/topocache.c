/*
 * topocache.c - where a mapper's topology comes from, with at most one
 * hardware discovery per node (topocache.h).
 *
 * MPIBIND_TOPOFILE: the user's file.  Otherwise the per-node cache: the
 * first mapper of a node discovers the hardware (in the helper: hwloc's
 * I/O plugins never run in a task, nor in slurmstepd) and writes hwloc's
 * XML into the private per-user cache directory; the node's other mappers
 * load that XML, without any plugin, at a fraction of the cost.
 *
 * The cache's protocol (no lock for readers, one lock per key, files
 * checked before use, failures recorded for a minute) is keyfile.h's.  A
 * cached topology is used only when its key equals the live machine's
 * (machine.h, plus the version of the hwloc API the helper loads) and the
 * loaded topology passes mpibind_topology_check_system(); anything else
 * is ignored and replaced.
 *
 * File: <dir>/topo-<16 hex digits>.xml (mpibind_auto_topology_cache_name:
 * the tasks find it by name to key their node mapping file with its
 * identity), containing the key text (lines "name=value", starting with
 * "mpibind-topology-cache 2" and ending with "end") immediately followed
 * by hwloc's XML export, or by "failed: <message>".  Lock: <dir>/topo-<same
 * digits>.lock.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "discover.h"
#include "keyfile.h"
#include "machine.h"
#include "strdupf.h"
#include "topocache.h"

/* Gives the handle the topology of XML that hwloc wrote for this machine
 * (from the cache or straight from a discovery).  0 on success. */
static int load_xml_text(mpibind_t *h, const char *xml, size_t len) {
  char *restore;
  int rc;
  mpibind_auto_plugins_off_begin(&restore);
  rc = mpibind_set_topology_xml(h, xml, len);
  mpibind_auto_plugins_off_end(restore);
  if (rc == 0 && mpibind_topology_check_system(h) != 0)
    rc = -1;
  if (rc != 0)
    mpibind_set_topology_xml(h, NULL, 0);
  return rc;
}

/* The topology through the per-node cache (keyfile.h). */
struct topo_ctx {
  mpibind_t *h;
  const char *key;
  int here;  /* discover in this process (the helper) */
  void (*step)(enum mpibind_auto_helper_step);
};

static char *topo_key(void *ctx, int fd) {
  (void)fd;
  return strdup(((struct topo_ctx *)ctx)->key);
}

static int topo_use(void *ctx, int fd, off_t off, size_t len) {
  struct topo_ctx *c = ctx;
  char *xml = malloc(len + 1);
  int rc = 0;
  if (xml != NULL && mpibind_auto_pread_exact(fd, xml, len, off) == 0) {
    xml[len] = '\0';
    rc = strlen(xml) == len && load_xml_text(c->h, xml, len) == 0;
  }
  free(xml);
  return rc;
}

/* Discovers (here, or in the helper) and loads the result; the XML is the
 * body written for the node's other mappers. */
static int topo_make(void *ctx, char **body, size_t *len, char **error) {
  struct topo_ctx *c = ctx;
  int rc;
  if (c->here) {
    if (c->step)
      c->step(MPIBIND_AUTO_STEP_DISCOVERY);
    rc = mpibind_auto_discover_here(body, len, error);
    if (c->step)
      c->step(MPIBIND_AUTO_STEP_MAP);
  } else {
    rc = mpibind_auto_discover_xml(body, len, error);
  }
  if (rc != 0)
    return -1;
  if (load_xml_text(c->h, *body, *len) != 0) {
    *error = mpibind_auto_strdupf(
        "cannot load the topology discovered by the helper: %s",
        mpibind_get_error(c->h));
    return -1;
  }
  return 0;
}

/* MPIBIND_TOPOFILE: a user's file, parsed first in the helper (hwloc's
 * parser crashes on some malformed files) unless this is the helper. */
static int topofile_topology(mpibind_t *h,
                             const struct mpibind_auto_tuning *t, int here,
                             void (*step)(enum mpibind_auto_helper_step),
                             char **error) {
  char *restore;
  int rc;
  const char *name = mpibind_auto_value_name("MPIBIND_TOPOFILE");
  if (!here && mpibind_auto_check_xml_file(t->topofile, name, error) != 0)
    return -1;
  if (step)
    step(MPIBIND_AUTO_STEP_TOPOFILE);
  mpibind_auto_plugins_off_begin(&restore);
  rc = mpibind_set_topology_file(h, t->topofile);
  mpibind_auto_plugins_off_end(restore);
  if (step)
    step(MPIBIND_AUTO_STEP_MAP);
  if (rc != 0) {
    *error = mpibind_auto_strdupf("%s='%s': %s", name, t->topofile,
                                  mpibind_get_error(h));
    return -1;
  }
  /* dryrun only reports: a file of another node is how one previews a
   * GPU node's mapping */
  if (!t->dryrun && mpibind_topology_check_system(h) != 0) {
    *error = mpibind_auto_strdupf(
        "%s='%s' does not describe this node: %s", name, t->topofile,
        mpibind_get_error(h));
    return -1;
  }
  return 0;
}

/* The topology cache file's key: the machine's and the hwloc API the
 * helper loads (the tasks cannot know it; it is not in the name). */
static char *cache_key(const char *machine) {
  return mpibind_auto_strdupf("%s%shwloc=%x\nend\n",
                              MPIBIND_AUTO_TOPOLOGY_HEAD, machine,
                              hwloc_get_api_version());
}

static int topology(mpibind_t *h, const struct mpibind_auto_tuning *t,
                    int here, void (*step)(enum mpibind_auto_helper_step),
                    int *how, char **identity, char **error) {
  static const struct mpibind_auto_once ops = {topo_key, topo_use, topo_make};
  struct topo_ctx ctx = {h, NULL, here, step};
  char *machine = NULL, *key = NULL, *name = NULL;
  int dirfd = -1, made = 0, rc;

  *error = NULL;
  *how = MPIBIND_TOPO_NONE;
  if (identity)
    *identity = NULL;
  if (t->topofile) {
    rc = topofile_topology(h, t, here, step, error);
    if (rc == 0)
      *how = MPIBIND_TOPO_FILE;
    return rc;
  }
  machine = mpibind_auto_machine_key();
  if (machine && (key = cache_key(machine)) != NULL &&
      (name = mpibind_auto_topology_cache_name(machine)) != NULL)
    dirfd = mpibind_auto_cache_dirfd(NULL);
  ctx.key = key;
  rc = key ? mpibind_auto_once(dirfd, name, &ops, &ctx, &made, error, NULL)
           : -1;
  if (rc == 0) {
    *how = made ? MPIBIND_TOPO_DISCOVERED : MPIBIND_TOPO_CACHE;
    if (identity)
      *identity = mpibind_auto_topology_identity(t, machine, dirfd);
  } else if (!made && *error != NULL) {
    char *e = mpibind_auto_strdupf("%s (a failure of this node's first task)",
                                   *error);
    free(*error);
    *error = e;
  }
  if (dirfd >= 0)
    close(dirfd);
  free(machine);
  free(key);
  free(name);
  if (rc != 0 && *error == NULL)
    *error = mpibind_auto_strdupf("cannot have this node's topology");
  return rc;
}

int mpibind_auto_topology(mpibind_t *h, const struct mpibind_auto_tuning *t,
                          int *how, char **error) {
  return topology(h, t, 0, NULL, how, NULL, error);
}

int mpibind_auto_topology_in_helper(mpibind_t *h,
                                    const struct mpibind_auto_tuning *t,
                                    void (*step)(enum mpibind_auto_helper_step),
                                    int *how, char **identity, char **error) {
  return topology(h, t, 1, step, how, identity, error);
}
