/*
 * mapping.c - a node mapped for a set of inputs, in the helper
 * (mapping.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"
#include "jobcpus.h"
#include "machine.h"
#include "mapping.h"
#include "nodemap_write.h"
#include "steps.h"
#include "strdupf.h"
#include "topocache.h"

void mpibind_auto_node_mapping_free(struct mpibind_auto_node_mapping *m) {
  if (m->h)
    mpibind_finalize(m->h);
  free(m->identity);
  free(m->job_line);
  free(m->keep);
  memset(m, 0, sizeof *m);
}

/* The topology's CPUs as a set without hwloc's type (jobcpus.h's rules
 * are the tasks' own). */
static int topology_cpus(mpibind_t *h, struct mpibind_auto_cpuset *set) {
  hwloc_topology_t topo = mpibind_get_topology(h);
  char *list = NULL;
  int rc = topo != NULL &&
                   hwloc_bitmap_list_asprintf(
                       &list, hwloc_topology_get_topology_cpuset(topo)) >= 0 &&
                   mpibind_auto_cpuset_parse_list(set, list) == 0
               ? 0
               : -1;
  free(list);
  return rc;
}

/* The CPUs the launch gave the job on this node, outside which no task
 * may be bound, as jobcpus.h finds them against the topology's CPUs.
 * Only for a topology of this machine: a dryrun on another node's file
 * maps that node whole.  0 (limited, or not needed, or m->keep), or -1
 * with *error. */
static int limit_to_job(const struct mpibind_auto_inputs *in,
                        struct mpibind_auto_node_mapping *m, char **error) {
  struct mpibind_auto_cpuset allowed = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_cpuset cpus = MPIBIND_AUTO_CPUSET_INIT;
  hwloc_bitmap_t set = NULL;
  char *what = NULL, *list = NULL;
  int rc = 0, found;
  if ((m->how == MPIBIND_TOPO_FILE && mpibind_topology_check_system(m->h) != 0) ||
      topology_cpus(m->h, &allowed) != 0)
    goto out;
  found = mpibind_auto_job_cpus(in->source, in->launcher, &allowed, &cpus,
                                &what);
  if (found < 0) {
    m->keep = what ? what : strdup("the job's CPUs here are unknown");
    what = NULL;
  } else if (found > 0) {
    list = mpibind_auto_cpuset_list(&cpus);
    set = hwloc_bitmap_alloc();
    if (list == NULL || set == NULL || hwloc_bitmap_list_sscanf(set, list) != 0) {
      *error = mpibind_auto_strdupf("the job's CPUs: out of memory");
      rc = -1;
    } else if (mpibind_set_job_cpus(m->h, set) != 0) {
      *error = mpibind_auto_strdupf("the job's CPUs: %s",
                                    mpibind_get_error(m->h));
      rc = -1;
    } else {
      m->job_line = mpibind_auto_strdupf("mapping within CPUs %s: %s", list,
                                         what ? what : "");
    }
  }
out:
  hwloc_bitmap_free(set);
  free(list);
  free(what);
  mpibind_auto_cpuset_free(&allowed);
  mpibind_auto_cpuset_free(&cpus);
  return rc;
}

int mpibind_auto_map_node(const struct mpibind_auto_inputs *in,
                          void (*step)(enum mpibind_auto_helper_step),
                          struct mpibind_auto_node_mapping *m, char **error) {
  memset(m, 0, sizeof *m);
  *error = NULL;
  if (mpibind_auto_configure_inputs(in, &m->h, error) != 0 ||
      mpibind_auto_topology_in_helper(m->h, in->t, step, &m->how,
                                      &m->identity, error) != 0 ||
      limit_to_job(in, m, error) != 0)
    goto fail;
  if (m->keep) {
    mpibind_finalize(m->h);
    m->h = NULL;
    return 0;
  }
  /* smt above the node's hardware threads per core is the library's
   * rule (mpibind() refuses it, and the message names MPIBIND) */
  if (mpibind_auto_compute(in->t, m->h, in->ntasks, error) != 0)
    goto fail;
  return 0;
fail:
  if (*error == NULL)
    *error = mpibind_auto_strdupf("out of memory");
  mpibind_auto_node_mapping_free(m);
  return -1;
}

int mpibind_auto_map_here(void *ctx, const struct mpibind_auto_inputs *in,
                          struct mpibind_auto_map_answer *a, char **error) {
  struct mpibind_auto_node_mapping m;
  const struct mpibind_auto_steps *sc = ctx;
  int rc;
  memset(a, 0, sizeof *a);
  if (mpibind_auto_map_node(in, sc ? sc->step : NULL, &m, error) != 0)
    return -1;
  rc = mpibind_auto_nodemap_body(&m, in->ntasks, &a->body, &a->len);
  if (rc != 0) {
    *error = rc > 0 ? mpibind_auto_strdupf(
                          "cannot write the node's mapping as lines (a "
                          "variable's value holds a newline)")
                    : mpibind_auto_strdupf("out of memory");
    mpibind_auto_node_mapping_free(&m);
    return -1;
  }
  a->how = m.how;
  a->topology = m.identity;
  m.identity = NULL;
  mpibind_auto_node_mapping_free(&m);
  return 0;
}
