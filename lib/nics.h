/*
 * nics.h - the node's network adapters and each task's nearest ones
 * (nics.c; docs/algorithm.md, "The nearest NIC for each task").
 */
#ifndef MB_NICS_H
#define MB_NICS_H

#include "mpibind.h"

/* What a NIC can be used through (bits): an OpenFabrics (verbs) device,
 * named for UCX and NCCL; a Slingshot CXI device, named for libfabric's
 * CXI provider. */
enum {
  MB_NIC_VERBS = 1,
  MB_NIC_CXI = 2,
  MB_NIC_ANY = 0 /* for a choice among every NIC */
};

/* One NIC: one PCI function (or one OS device without a PCI parent),
 * whatever number of OS devices hwloc shows on it (mlx5_0 and ib0). */
struct mb_nic {
  hwloc_obj_t obj;   /* the PCI function, or the OS device: in the
                      * unrestricted topology */
  char *name;        /* the OpenFabrics name, else the CXI one, else the
                      * first OS device's */
  char *verbs;       /* the OpenFabrics device (mlx5_0), or NULL */
  char *cxi;         /* the CXI device (cxi0), or NULL */
  unsigned port;     /* the OpenFabrics port UCX is told: the first
                      * active one, else the first listed, else 1 */
};

struct mb_nic_list {
  struct mb_nic *nic;
  int n;
};

/* The NICs of topo (the unrestricted topology: NICs are shared, no
 * restriction takes them from a job), in hwloc's OS device order.  0, or
 * -1 with a failure on h. */
int mb_nic_list_build(mpibind_t *h, hwloc_topology_t topo,
                      struct mb_nic_list *list);
void mb_nic_list_free(struct mb_nic_list *list);

/* Each task's nearest NICs among those usable as `kinds` (MB_NIC_ANY:
 * all) into out[task] (positions in h->nics; out allocated, emptied
 * here).  Needs the mapping (CPUs and GPUs) of h.  0, or -1 with a
 * failure on h. */
int mb_nics_choose(mpibind_t *h, int kinds, hwloc_bitmap_t *out);

/* Does the node have a NIC usable as kind? */
int mb_nics_have(const struct mb_nic_list *list, int kind);

#endif
