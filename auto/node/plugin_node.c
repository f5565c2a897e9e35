/*
 * plugin_node.c - a node's tasks mapped by a launcher's plugin (see
 * plugin_node.h for the contract).
 *
 * Why the node is mapped once, outside the tasks: a plugin runs in the
 * launcher's own process on the node (slurmstepd, flux-shell), which starts
 * every task of the job there; mapping there once costs one mapping per
 * node, and each task only takes its share, is bound in its own process
 * before exec (so that every runtime starts bound) and gets its variables.
 * The order of the node's steps is the preload's: whatever can fail (tuning,
 * topology, the job's CPUs, GPUs, mapping) comes before anything reaches a
 * task, so that a problem leaves every task as the launcher bound it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_text.h"
#include "plugin_node.h"

/* ---- The node ------------------------------------------------------------ */

int mpibind_plugin_cores_to_pus(const struct mpibind_plugin_node *n,
                                hwloc_topology_t topo, const char *cores,
                                hwloc_bitmap_t pus, int *whole, char **msg) {
  int depth = hwloc_get_type_or_below_depth(topo, HWLOC_OBJ_CORE);
  int ncores = hwloc_get_nbobjs_by_depth(topo, depth);
  hwloc_bitmap_t ids = hwloc_bitmap_alloc();
  int id, rc = -1;
  hwloc_bitmap_zero(pus);
  if (ids == NULL || hwloc_bitmap_list_sscanf(ids, cores) != 0 ||
      hwloc_bitmap_iszero(ids) || hwloc_bitmap_weight(ids) < 0) {
    *msg = mpibind_auto_strdupf("the %s's cores '%s' (from %s) are not a "
                                "list of core ids",
                                n->unit, cores, n->launcher);
    goto out;
  }
  hwloc_bitmap_foreach_begin(id, ids) {
    hwloc_obj_t core = hwloc_get_obj_by_depth(topo, depth, (unsigned)id);
    if (core == NULL) {
      *msg = mpibind_auto_strdupf(
          "the %s's core %d (from %s's '%s') is not on this node, which has "
          "%d cores (%s's view of the node and the hardware differ)",
          n->unit, id, n->launcher, cores, ncores, n->launcher);
      goto out;
    }
    hwloc_bitmap_or(pus, pus, core->cpuset);
  }
  hwloc_bitmap_foreach_end();
  *whole = ncores > 0 && hwloc_bitmap_weight(ids) == ncores;
  rc = 0;
out:
  hwloc_bitmap_free(ids);
  return rc;
}

/* n->pus and n->whole from the launcher's core ids. */
static int job_pus(struct mpibind_plugin_node *n,
                   const struct mpibind_plugin_node_ops *ops, void *ctx,
                   char **msg) {
  const char *cores = NULL;
  hwloc_topology_t topo = NULL;
  if (ops->cores(n, ctx, &cores, &topo, msg) != 0)
    return -1;
  if (topo == NULL)
    topo = mpibind_get_topology(n->h);
  if (topo == NULL) {
    *msg = mpibind_auto_strdupf("cannot load this node's topology: %s",
                                mpibind_get_error(n->h));
    return -1;
  }
  if ((n->pus = hwloc_bitmap_alloc()) == NULL) {
    *msg = strdup("out of memory");
    return -1;
  }
  if (cores == NULL) {
    n->whole = 1;
    return hwloc_bitmap_copy(n->pus, hwloc_topology_get_topology_cpuset(topo));
  }
  return mpibind_plugin_cores_to_pus(n, topo, cores, n->pus, &n->whole, msg);
}

/* A job that shares its node is mapped within its own PUs: the library's
 * job CPUs (on top of the user's MPIBIND_RESTRICT, as for the preload under
 * any launcher).  A user's topology file of another node (dryrun's
 * preview) has other PUs: that node is previewed whole. */
static int within_job(struct mpibind_plugin_node *n, char **msg) {
  char *list = NULL;
  if (n->whole ||
      (n->t->topofile && mpibind_topology_check_system(n->h) != 0))
    return 0;
  if (mpibind_set_job_cpus(n->h, n->pus) == 0)
    return 0;
  hwloc_bitmap_list_asprintf(&list, n->pus);
  *msg = mpibind_auto_strdupf("the %s's CPUs %s: %s", n->unit,
                              list ? list : "?", mpibind_get_error(n->h));
  free(list);
  return -1;
}

int mpibind_plugin_node_map(struct mpibind_plugin_node *n,
                            const struct mpibind_plugin_node_ops *ops,
                            void *ctx, char **msg) {
  int rc;
  *msg = NULL;
  if (mpibind_auto_configure(n->t, n->ntasks, &n->h, msg) != 0 ||
      ops->topology(n, ctx, msg) != 0 || job_pus(n, ops, ctx, msg) != 0)
    return -1;
  if (ops->decide && (rc = ops->decide(n, ctx, msg)) != 0)
    return rc;
  if (ops->gpus)
    rc = ops->gpus(n, ctx, msg);
  else
    rc = n->whole ? 0 : mpibind_auto_no_unallocated_gpus(n->t, n->h, msg);
  if (rc != 0 || within_job(n, msg) != 0 ||
      mpibind_auto_compute(n->t, n->h, n->ntasks, msg) != 0)
    return -1;
  n->mapped = 1;
  return 0;
}

void mpibind_plugin_node_free(struct mpibind_plugin_node *n) {
  if (n->h)
    mpibind_finalize(n->h);
  n->h = NULL;
  hwloc_bitmap_free(n->pus);
  n->pus = NULL;
  n->mapped = 0;
}

/* ---- Each task ------------------------------------------------------------- */

int mpibind_plugin_task_share(const struct mpibind_plugin_node *n, int local,
                              struct mpibind_auto_share *s, char **msg) {
  int report = local == 0 && (n->t->verbose || n->t->dryrun);
  memset(s, 0, sizeof *s);
  if (local < 0 || local >= n->ntasks) {
    *msg = mpibind_auto_strdupf("%s gave task number %d, outside the node's "
                                "%d tasks", n->launcher, local, n->ntasks);
    return -1;
  }
  if (mpibind_auto_share_of(n->h, local, report, s) != 0) {
    *msg = strdup("out of memory");
    return -1;
  }
  return 0;
}

int mpibind_plugin_task_export(const struct mpibind_plugin_node *n, int local,
                               const struct mpibind_auto_share *s, int argc,
                               const char *const *argv,
                               const struct mpibind_plugin_task_env *env) {
  int rc;
  if (argc > 0)
    mpibind_auto_set_command(argc, argv);
  rc = mpibind_auto_export(n->t, s, local, mpibind_auto_omp_exports(n->t),
                           env->set, env->set_ctx);
  if (mpibind_auto_applied_mark_for(1, env->pid, env->get, env->get_ctx,
                                    env->set, env->set_ctx) != 0)
    rc = -1;
  return rc;
}

void mpibind_plugin_task_mark_problem(const struct mpibind_plugin_task_env *env) {
  mpibind_auto_applied_mark_for(0, env->pid, env->get, env->get_ctx, env->set,
                                env->set_ctx);
}

int mpibind_plugin_task_bind(const struct mpibind_plugin_node *n, int local,
                             const struct mpibind_auto_share *s, char **msg) {
  char *mem = NULL;
  if (s->report) {
    fputs(s->report, stderr);
    fflush(stderr);
  }
  if (!n->t->dryrun && mpibind_auto_bind(n->t, local, s, &mem, msg) != 0) {
    free(mem);
    return -1;
  }
  if (mem && n->t->verbose && local == 0)
    mpibind_plugin_say(n, mem, 0);
  free(mem);
  /* draw:PATH: the node's task 0 draws, as under the preload (in the
   * task's process, as the user, in the job's working directory) */
  if (n->t->draw && local == 0)
    mpibind_auto_draw(n->h, n->t->draw);
  return 0;
}

void mpibind_plugin_say(const struct mpibind_plugin_node *n, const char *line,
                        int is_problem) {
  char *esc = mb_escape(line ? line : "out of memory");
  if (!is_problem)
    fprintf(stderr, "mpibind: %s\n", esc ? esc : "out of memory");
  else if (n->t->strict)
    fprintf(stderr, "mpibind: %s; strict: failing the task\n",
            esc ? esc : "out of memory");
  else
    fprintf(stderr, "mpibind: %s; left as %s bound it\n",
            esc ? esc : "out of memory", n->launcher);
  fflush(stderr);
  free(esc);
}
