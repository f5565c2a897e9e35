/*
 * autobind-internal.h - pieces of the automatic binding, internal to
 * preload/ (compiled with hidden visibility: nothing here is exported by
 * libmpibind-preload.so, so nothing can clash with a program's symbols).
 */
#ifndef MPIBIND_AUTOBIND_INTERNAL_H
#define MPIBIND_AUTOBIND_INTERNAL_H

#include <stddef.h>
#include <hwloc.h>
#include "mpibind.h"

/* ---- Messages -------------------------------------------------------- */

/* malloc'ed printf; NULL only when out of memory. */
char *mpibind_auto_strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ---- tuning.c: the MPIBIND* variables ------------------------------ */

struct mpibind_auto_tuning {
  int off;              /* `off`: no side effect at all */
  int verbose;          /* `v`, `verbose` */
  int dryrun;           /* compute, report, export; no bind */
  int strict;           /* a problem fails the launch */
  int help;             /* print the grammar */
  int smt;              /* -1: not given */
  int greedy;           /* -1: not given */
  int gpu_optim;        /* -1: not given */
  int no_omp_places;    /* do not set OMP_PLACES */
  int no_omp_proc_bind; /* do not set OMP_PROC_BIND */
  int no_visible_devices; /* do not set *_VISIBLE_DEVICES/ZE_AFFINITY_MASK */
  const char *restrict_ids; /* NULL: not given (points into environ) */
  int restrict_type;        /* -1: not given */
  const char *topofile;     /* NULL: not given */
  int nthreads;             /* from OMP_NUM_THREADS; -1: not given */
  char *error;              /* first problem found (malloc'ed), or NULL */
};

/* Reads MPIBIND, MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE
 * and OMP_NUM_THREADS.  Returns 0, or -1 with t->error set (one line
 * naming the variable and its value).  `off` is always honoured, even
 * next to bad words.  Free with mpibind_auto_tuning_free(). */
int mpibind_auto_tuning_read(struct mpibind_auto_tuning *t);
void mpibind_auto_tuning_free(struct mpibind_auto_tuning *t);

/* The grammar, for `help` (several lines, each ending in '\n'). */
extern const char mpibind_auto_help_text[];

/* ---- applied.c: MPIBIND_APPLIED names the task it speaks of --------- */

/* Returns 1 when this task was already handled: MPIBIND_APPLIED is 0 or 1
 * and MPIBIND_APPLIED_TASK names this process or a process of the same
 * task (same launcher and tuning variables, plus `extra` when not NULL).
 * explicit_request (the wrapper, run with options) never skips.  Also
 * remembers this task's key for mpibind_auto_applied_mark. */
int mpibind_auto_applied_check(const char *extra, int explicit_request);
/* Exports MPIBIND_APPLIED=bound (0 or 1) and MPIBIND_APPLIED_TASK. */
void mpibind_auto_applied_mark(int bound);

/* ---- launcher.c: the node-local task number and count -------------- */

/* Returns 1 and fills *local, *count and *source (the name of the
 * variable that gave the task number) when a launcher's variables are
 * found; 0 when there are none; -1 with *error (malloc'ed) when they are
 * unusable (not numbers, negative, local >= count, one of a pair
 * missing).  The MPI launchers' variables come before Slurm's. */
int mpibind_auto_launcher_detect(int *local, int *count, const char **source,
                                 char **error);

/* Parses Slurm's tasks-per-node syntax ("2(x3),1") and returns the entry
 * of node `nodeid`, or -1 when the string is malformed or too short. */
int mpibind_auto_slurm_tasks_on_node(const char *spec, int nodeid);

/* 1 when the running program is a launcher or one of its daemons
 * (mpirun, orted, prted, hydra_pmi_proxy, slurmstepd, ...): such a
 * process carries the task variables of its own launch but is no rank. */
int mpibind_auto_is_launcher_program(void);

/* ---- topocache.c: one discovery per node --------------------------- */

enum {
  MPIBIND_TOPO_NONE = 0,
  MPIBIND_TOPO_DISCOVERED,
  MPIBIND_TOPO_CACHE,
  MPIBIND_TOPO_FILE
};

/* Gives the handle its topology: from the per-node cache when a valid one
 * exists, otherwise discovered live (mpibind_topology_load) and written to
 * the cache for the node's other tasks.  On success returns 0, sets *how,
 * and *owned to a topology the caller must destroy after
 * mpibind_finalize() (NULL when the handle owns it).  Returns -1 with
 * *error when the topology cannot be had at all.  Cache problems are never
 * errors: they cost a discovery. */
int mpibind_auto_topology(mpibind_t *h, int *how, hwloc_topology_t *owned,
                          char **error);

/* hwloc loads every plugin it finds (libxml2, OpenCL, GL with X11, PCI)
 * when the process's first topology is created: about 15 ms per task, for
 * nothing when the topology comes from XML.  Between _begin and _end, a
 * topology created by this process starts without plugins (the user's own
 * HWLOC_PLUGINS_PATH, if any, is left alone).  Plugins come back once the
 * process has no topology left. */
void mpibind_auto_plugins_off_begin(int *restore);
void mpibind_auto_plugins_off_end(int restore);

#endif /* MPIBIND_AUTOBIND_INTERNAL_H */
