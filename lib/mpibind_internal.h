/*
 * mpibind_internal.h - what the files of lib/ share; never installed.
 * Nothing here is exported from libmpibind.so (the library is built with
 * hidden visibility; only MPIBIND_API names are public).
 */
#ifndef MPIBIND_INTERNAL_H
#define MPIBIND_INTERNAL_H

#include <errno.h>

#include "mpibind.h"
#include "mb_gpuvar_table.h"

/* MPIBIND_ID_UNIV .. MPIBIND_ID_NAME */
#define MB_NUM_ID_KINDS 4

/* Backends of GPU OS devices, best first (docs/algorithm.md step 3); the
 * order is the preference among the OS devices of one PCI device.  PCI is
 * a GPU that hwloc shows only as a PCI function (no OS device stands for
 * it). */
enum mb_backend {
  MB_BACKEND_SMI = 0,   /* NVML or RSMI */
  MB_BACKEND_LEVELZERO,
  MB_BACKEND_CUDA,
  MB_BACKEND_OPENCL,
  MB_BACKEND_DRM_RENDER,
  MB_BACKEND_PCI,
  MB_BACKEND_NONE       /* not a GPU on its own */
};

/* One entry of the node's GPU list. */
struct mb_gpu {
  hwloc_obj_t obj;       /* the OS device, or the PCI device for a GPU seen
                          * only on the bus; in the topology the list was
                          * built on */
  hwloc_obj_t locality;  /* nearest non-I/O ancestor */
  enum mb_backend backend;
  unsigned vendor;       /* PCI vendor id */
  unsigned domain, bus, dev, func;
  char *visible;         /* visible index, as written in *_VISIBLE_DEVICES */
  char *pcibus;          /* dddd:bb:dd.f */
  char *name;            /* OS device name */
  char *uuid;            /* "" when unknown */
  char *alloc_entry;     /* the allocation's entry naming it, or NULL */
};

struct mb_gpu_list {
  struct mb_gpu *gpu;
  int n;
};

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

  /* Topologies.  base is what the inputs name (caller's, file or live);
   * work is base restricted (a private copy) or base itself. */
  hwloc_topology_t user_topo;   /* the caller's, never modified or freed */
  hwloc_topology_t own_topo;    /* loaded by the handle (live or file) */
  char *topo_file;              /* own_topo's file, NULL when live */
  int topo_xml;                 /* own_topo came from a caller's XML text */
  hwloc_topology_t work_topo;
  int work_is_copy;
  /* Topologies a topology setter replaced: a caller may still hold them
   * (mpibind_get_topology), so they live until the next mpibind(). */
  hwloc_topology_t *retired;
  int nretired;

  /* Outputs of mpibind().  They are freed only by mb_clear_outputs(),
   * which only mpibind() and mpibind_finalize() call (the LIFETIME rule of
   * mpibind.h); setters call mb_inputs_changed(), which marks them stale. */
  int mapped;
  int stale;                    /* an input changed since the mapping */
  int out_ntasks;               /* the per-task arrays have this size */
  int *out_nthreads;
  hwloc_bitmap_t *out_cpus;
  hwloc_bitmap_t *out_gpus;
  struct mb_gpu_list gpus;      /* on work_topo, after allocation */
  unsigned node_vendors[3];     /* NVIDIA, AMD, Intel present on the node */

  /* Lazily built views of the outputs (see the getters). */
  int **cpus_ptask;
  int *ncpus_ptask;
  char ***gpus_ptask[MB_NUM_ID_KINDS];  /* by kind - MPIBIND_ID_UNIV */
  int *ngpus_ptask;

  /* Environment of step 6. */
  int nvars;
  char **var_names;
  char ***var_values;           /* [var][task] */

  char *error;
  int errnum;                   /* the kind of the last failure */
};

/* The error convention of mpibind.h.  Each records a failure message and
 * its kind on h (h may be NULL), sets errno to the kind and returns -1. */
/* A value that does not fit: EINVAL. */
int mb_fail(mpibind_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Any other kind: an errno value or MPIBIND_ENOMAP. */
int mb_fail_kind(mpibind_t *h, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Out of memory: ENOMEM. */
int mb_oom(mpibind_t *h);
/* The guard of every public function taking a handle: a NULL handle is an
 * EINVAL failure returning ret. */
#define MB_NEED_HANDLE(h, ret)                                               \
  do {                                                                       \
    if (!(h)) {                                                              \
      errno = EINVAL;                                                        \
      return ret;                                                            \
    }                                                                        \
  } while (0)

/* The one invalidation routine, called by the setters whose input the
 * mapping depends on (and only by them): the outputs become stale, and
 * the output getters fail until mpibind() maps again.  Nothing is freed. */
void mb_inputs_changed(mpibind_t *h);
/* 0 when h holds a mapping of its current inputs; otherwise a failure
 * (ENODATA) saying why not.  Every output getter starts with it. */
int mb_check_mapped(mpibind_t *h);
/* Frees every output of mpibind() and what the getters handed out (the
 * variables, the retired topologies).  Only mpibind() (before mapping, and
 * on failure) and mpibind_finalize() call it. */
void mb_clear_outputs(mpibind_t *h);
/* Forgets the variables of mpibind_set_env_vars() (a half-built set). */
void mb_clear_env(mpibind_t *h);
/* A strdup that records out-of-memory on h. */
char *mb_strdup(mpibind_t *h, const char *s);
/* 0 when the hwloc loaded at run time has the API major mpibind was built
 * against; otherwise an ELIBBAD failure saying which. */
int mb_check_hwloc(mpibind_t *h);

/* topology.c */
hwloc_topology_t mb_base_topology(mpibind_t *h);
int mb_make_work_topology(mpibind_t *h);
void mb_free_own_topology(mpibind_t *h);
void mb_free_work_topology(mpibind_t *h);
void mb_free_retired_topologies(mpibind_t *h);
int mb_core_depth(hwloc_topology_t topo);
int mb_hw_smt(hwloc_topology_t topo);

/* gpuvars.c: the rules of the one table of GPU variables
 * (mb_gpuvar_table.h, which also has the vendors' PCI ids). */
unsigned mb_gpu_var_vendor(const char *name); /* 0: not a GPU variable */
const char *mb_gpu_var_written(int slot);     /* written for vendor slot */
char *mb_gpu_vars_expected(void); /* "A, B or C" (malloc'ed), for messages */

/* gpus.c */
int mb_gpu_list_build(mpibind_t *h, hwloc_topology_t topo,
                      const struct mb_gpu_list *ref,
                      struct mb_gpu_list *list);
int mb_gpu_list_allocate(mpibind_t *h, struct mb_gpu_list *list);
void mb_gpu_list_free(struct mb_gpu_list *list);
const char *mb_gpu_id(const struct mb_gpu *g, int kind);
int mb_vendor_slot(unsigned vendor);   /* 0 NVIDIA, 1 AMD, 2 Intel, -1 */

/* cost.c: 0 when the outputs of h->ntasks tasks on topo fit in the memory
 * this process can have, -1 with a message otherwise (checked before any
 * of them is allocated). */
int mb_check_mapping_memory(mpibind_t *h, hwloc_topology_t topo);
/* The same for the nvars variables of mpibind_set_env_vars. */
int mb_check_env_memory(mpibind_t *h, int nvars);
int mb_check_memory(mpibind_t *h, unsigned long long need, const char *what);

/* distribute.c */
int mb_distribute(mpibind_t *h);

/* report.c / env.c helpers */
char *mb_task_gpu_ids(mpibind_t *h, int task, int kind, int vendor_slot);

/* split(n, k): part j of n split into k parts, the first n % k one longer. */
static inline int mb_split_part(int n, int k, int j)
{
  return n / k + (j < n % k ? 1 : 0);
}

#endif
