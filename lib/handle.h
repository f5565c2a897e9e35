/*
 * handle.h - the handle itself: the fields of struct mpibind_t, which the
 * files of lib/ share (data only: what each file calls is in its own
 * header).  Internal, never installed; nothing here is exported from
 * libmpibind.so (hidden visibility; only MPIBIND_API names are public).
 */
#ifndef MB_HANDLE_H
#define MB_HANDLE_H

#include "gpus.h"
#include "gpuvars.h"
#include "mpibind.h"
#include "nics.h"

/* MPIBIND_ID_UNIV .. MPIBIND_ID_NAME */
#define MB_NUM_ID_KINDS 4

/* A pre-set *_VISIBLE_DEVICES (the GPU allocation). */
struct mb_alloc {
  char *var;
  char *value;
};

struct mpibind_t {
  /* Inputs. */
  int ntasks;            /* 0: not set yet */
  int nthreads;
  int greedy;
  int gpu_optim;
  int smt;
  int restrict_type;
  int gpu_id_kind;
  char *restrict_ids;    /* NULL: no restriction */
  hwloc_bitmap_t job_cpus; /* NULL: the topology's CPUs (see set_job_cpus) */
  struct mb_alloc *allocs;
  int nallocs;
  int transport_vars;    /* step 6 names the NICs to UCX, NCCL, libfabric */
  int all_gpus_visible;  /* step 6 shows every GPU, in task order */

  /* Topologies.  base is what the inputs name (caller's, file or live);
   * work is base restricted (a private copy) or base itself. */
  hwloc_topology_t user_topo;   /* the caller's, never modified or freed */
  hwloc_topology_t own_topo;    /* loaded by the handle (live or file) */
  char *topo_file;              /* own_topo's file, NULL when live */
  int topo_xml;                 /* own_topo came from a caller's XML text */
  hwloc_topology_t work_topo;
  int work_is_copy;
  /* hw_smt of own/user and of work (topology.c), 0 until computed: a
   * walk over every core, done once per topology, not per mpibind(). */
  int base_hw_smt;
  int work_hw_smt;
  /* Topologies a topology setter replaced: a caller may still hold them
   * (mpibind_get_topology), so they live until the next mpibind(). */
  hwloc_topology_t *retired;
  int nretired;

  /* Outputs of mpibind().  They are freed only by mb_clear_outputs()
   * (lifetime.c), which only mpibind() and mpibind_finalize() call (the
   * LIFETIME rule of mpibind.h); setters call mb_inputs_changed(), which
   * marks them stale. */
  int mapped;
  int stale;                    /* an input changed since the mapping */
  int out_ntasks;               /* the per-task arrays have this size */
  int *out_nthreads;
  hwloc_bitmap_t *out_cpus;
  hwloc_bitmap_t *out_gpus;
  struct mb_gpu_list gpus;      /* on work_topo, after allocation */
  struct mb_nic_list nics;      /* on the unrestricted topology */
  hwloc_bitmap_t *out_nics;     /* per task: positions in nics */
  unsigned node_vendors[MB_NUM_VENDORS]; /* present on the node, by slot */

  /* Lazily built views of the outputs (see outputs.c). */
  int **cpus_ptask;
  int *ncpus_ptask;
  char ***gpus_ptask[MB_NUM_ID_KINDS];  /* by kind - MPIBIND_ID_UNIV */
  int *ngpus_ptask;
  char ***nics_ptask;
  int *nnics_ptask;

  /* Environment of step 6. */
  int nvars;
  char **var_names;
  char ***var_values;           /* [var][task] */

  char *error;
  int errnum;                   /* the kind of the last failure */
};

/* The one invalidation, done by the setters whose input the mapping
 * depends on (and only by them): the outputs become stale, and the
 * output getters fail until mpibind() maps again.  Nothing is freed. */
static inline void mb_inputs_changed(mpibind_t *h)
{
  h->stale = 1;
}

#endif
