/*
 * gpus.h - the node's GPU list (gpus.c; docs/algorithm.md step 3) and
 * the GPU allocation of a launch (*_VISIBLE_DEVICES).
 */
#ifndef MB_GPUS_H
#define MB_GPUS_H

#include "mpibind.h"

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
  hwloc_obj_t base_locality; /* the same in the unrestricted topology */
  hwloc_obj_t base_obj;  /* obj in the unrestricted topology */
  int outside;           /* a GPU of the job that a restriction removed
                          * from the work topology: obj and locality are
                          * the unrestricted topology's
                          * (mb_gpu_list_keep_outside) */
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

/* The GPU list of topo.  With ref (the list of the unrestricted
 * topology), only the GPUs of ref still there, with ref's visible
 * indexes and allocation entries.  0, or -1 with a failure on h. */
int mb_gpu_list_build(mpibind_t *h, hwloc_topology_t topo,
                      const struct mb_gpu_list *ref,
                      struct mb_gpu_list *list);
/* Keeps only the GPUs the allocation (h->allocs) names. */
int mb_gpu_list_allocate(mpibind_t *h, struct mb_gpu_list *list);
/* list (built on a restricted topology from all, the unrestricted and
 * allocated list) gets back, after its own and in all's order, the GPUs
 * of all that the restriction removed but that stay the job's (marked
 * outside): every one the user's restrict list removed, and of those
 * local only to CPUs outside the job's CPUs (mpibind_set_job_cpus), the
 * ones an allocation names (the launch gave them to the job); a GPU
 * local to no CPU (beside memory only) always stays (docs/algorithm.md,
 * "No GPU left idle"). */
int mb_gpu_list_keep_outside(mpibind_t *h, const struct mb_gpu_list *all,
                             struct mb_gpu_list *list);
void mb_gpu_list_free(struct mb_gpu_list *list);
/* The GPU's id of that kind (MPIBIND_ID_*), owned by the list. */
const char *mb_gpu_id(const struct mb_gpu *g, int kind);
/* 0 when no two GPUs of list have the same id of that kind (an empty id,
 * unknown, repeats freely); otherwise an EINVAL failure naming two of
 * them, the id, and the kinds that do tell them apart. */
int mb_gpu_ids_check_unique(mpibind_t *h, const struct mb_gpu_list *list,
                            int kind);
/* PCI bus order: <0, 0, >0. */
int mb_gpu_busid_cmp(const struct mb_gpu *a, const struct mb_gpu *b);

#endif
