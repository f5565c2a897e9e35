/*
 * plugin_node.h - a node's tasks mapped by a launcher's plugin: the Slurm
 * plugin (slurm/, in slurmstepd) and the Flux shell plugin (flux/, in
 * flux-shell) map the node once, within the CPUs and GPUs the launch gave
 * the job there, then give each task its share of that mapping before it
 * execs: variables, applied mark, binding checked against the kernel's
 * mask.  The front ends keep only what is their launcher's own (where the
 * tuning, the topology, the core ids and the GPU allocation come from, how
 * a variable reaches a task, how a line reaches the user); the flow and
 * every rule are here, on top of the layer's steps (steps.c: configure,
 * compute; nodemap_write.c: a task's share; the task floor's bind.c,
 * export.c and applied.c: binding, variables, the mark; drawnode.c).
 *
 * Every step returns 0, or -1 with *msg (malloc'ed, one line naming the
 * value), unless it says otherwise.
 */
#ifndef MPIBIND_PLUGIN_NODE_H
#define MPIBIND_PLUGIN_NODE_H

#include <hwloc.h>

#include "mpibind.h"
#include "mpibind_auto_task.h"
#include "drawnode.h"
#include "nodemap_write.h"
#include "steps.h"

/* One node of one job (a Slurm step, a Flux job). */
struct mpibind_plugin_node {
  /* given by the plugin */
  struct mpibind_auto_tuning *t; /* the job's tuning, read already */
  int ntasks;                    /* the job's tasks on this node */
  const char *launcher;          /* "Slurm", "Flux": messages */
  const char *unit;              /* "step", "job": messages */
  /* set by mpibind_plugin_node_map */
  mpibind_t *h;        /* the node's handle (mpibind_plugin_node_free) */
  hwloc_bitmap_t pus;  /* the job's PUs on this node (NULL: unknown) */
  int whole;           /* they are every core of the launcher's node */
  int mapped;          /* h holds the node's mapping */
};

/* What is the launcher's own, for mpibind_plugin_node_map.  ctx is the
 * plugin's. */
struct mpibind_plugin_node_ops {
  /* Gives n->h its topology (a cache or a discovery, the launcher's XML, a
   * user's MPIBIND_TOPOFILE). */
  int (*topology)(struct mpibind_plugin_node *n, void *ctx, char **msg);
  /* The launcher's core ids of the job on this node (a hwloc list of
   * logical indexes over the cores of *topo, which is the topology the
   * launcher numbers them on: NULL for n->h's own).  *cores NULL: the
   * launcher gave no ids, the job has the whole node. */
  int (*cores)(struct mpibind_plugin_node *n, void *ctx, const char **cores,
               hwloc_topology_t *topo, char **msg);
  /* After the job's PUs are known (n->pus, n->whole): 1 to leave the node
   * as the launcher bound it (*msg may then hold a line for a user who
   * asked), 0 to map.  NULL: always map. */
  int (*decide)(struct mpibind_plugin_node *n, void *ctx, char **msg);
  /* Gives n->h the job's GPUs on this node, as its GPU allocation
   * (mpibind_set_gpu_allocation) whenever the launcher names them, also
   * when they are every GPU of the node: the allocation is what keeps, in
   * a job that shares its node, the GPUs local only to CPUs outside the
   * job (docs/algorithm.md, "No GPU left idle").  NULL: the *_VISIBLE_DEVICES
   * the tuning reads are the job's (mpibind_auto_configure), and a job
   * that shares its node gets none of a vendor whose variable is unset
   * (mpibind_auto_no_unallocated_gpus). */
  int (*gpus)(struct mpibind_plugin_node *n, void *ctx, char **msg);
};

/* The launcher's core ids `cores` (logical indexes over the cores of
 * topo, as Slurm and Flux number cores) as PUs into `pus`; *whole 1 when
 * they are every core of topo.  The message names the ids, the launcher
 * and the unit. */
int mpibind_plugin_cores_to_pus(const struct mpibind_plugin_node *n,
                                hwloc_topology_t topo, const char *cores,
                                hwloc_bitmap_t pus, int *whole, char **msg);

/* Maps the node: a handle with the tuning and task count
 * (mpibind_auto_configure), its topology, the job's PUs (the mapping stays
 * within them when the job does not have the whole node: the library's job
 * CPUs; not when the topology is a user's file of another node, previewed
 * whole), its GPUs, then the mapping.  Returns 0 (n->mapped), 1 (left as
 * the launcher bound it; *msg NULL or a line to tell), or -1 with *msg.
 * n->pus is kept whatever the outcome, once known. */
int mpibind_plugin_node_map(struct mpibind_plugin_node *n,
                            const struct mpibind_plugin_node_ops *ops,
                            void *ctx, char **msg);

void mpibind_plugin_node_free(struct mpibind_plugin_node *n);

/* ---- Each task --------------------------------------------------------- */

/* The task's environment as the plugin reaches it. */
struct mpibind_plugin_task_env {
  /* the task's variables as it will exec them (the applied mark's key) */
  mpibind_auto_getenv_f get;
  void *get_ctx;
  /* sets one of the task's variables */
  mpibind_auto_setenv_f set;
  void *set_ctx;
  long pid; /* the process the mark names (the task's, or its parent's) */
};

/* Task `local`'s share of the node's mapping, with the node's report when
 * it is the node's task 0 and the tuning has v or dryrun.  0, or -1 (out
 * of memory, or a task number outside the node's tasks) with *msg. */
int mpibind_plugin_task_share(const struct mpibind_plugin_node *n, int local,
                              struct mpibind_auto_share *s, char **msg);

/* The task's variables (mpibind_auto_export, for the command argc, argv
 * the task will exec when known, argc 0 otherwise: an interpreter gets no
 * OMP_PLACES/OMP_PROC_BIND, torchrun's agent no OMP_* at all) and the
 * applied mark MPIBIND_APPLIED=1, so that a preload in the task does
 * nothing.  Returns 0, or -1 when a variable could not be set. */
int mpibind_plugin_task_export(const struct mpibind_plugin_node *n, int local,
                               const struct mpibind_auto_share *s, int argc,
                               const char *const *argv,
                               const struct mpibind_plugin_task_env *env);

/* MPIBIND_APPLIED=0 for a task the plugin handled without binding it (a
 * problem, said once): a preload in it neither maps nor repeats the line. */
void mpibind_plugin_task_mark_problem(const struct mpibind_plugin_task_env *env);

/* In the task's own process, before exec: binds it to its share and checks
 * the kernel's mask (nothing under dryrun), as the preload binds a task
 * (memory too with membind, said by the node's task 0 in verbose mode);
 * then the node's task 0 draws the mapping with draw:PATH.  A failure gives
 * the process its former CPUs back. */
int mpibind_plugin_task_bind(const struct mpibind_plugin_node *n, int local,
                             const struct mpibind_auto_share *s, char **msg);

/* One line for the user on stderr, "mpibind: <line>" (control characters
 * escaped), ending for a problem in "; strict: failing the task" or
 * "; left as <launcher> bound it". */
void mpibind_plugin_say(const struct mpibind_plugin_node *n, const char *line,
                        int is_problem);

#endif /* MPIBIND_PLUGIN_NODE_H */
