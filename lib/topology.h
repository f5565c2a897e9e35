/*
 * topology.h - where the topology comes from, the restriction of step 2
 * and the terms "core level" and "hw_smt" (topology.c).
 */
#ifndef MB_TOPOLOGY_H
#define MB_TOPOLOGY_H

#include "mpibind.h"

/* The topology the inputs name (the caller's, the file's, or the live
 * machine's, loaded on first use); NULL with a failure recorded. */
hwloc_topology_t mb_base_topology(mpibind_t *h);
/* Step 2: h->work_topo is the base restricted by the inputs (a private
 * copy) or the base itself.  0, or -1 with a failure recorded. */
int mb_make_work_topology(mpibind_t *h);
void mb_free_own_topology(mpibind_t *h);
void mb_free_work_topology(mpibind_t *h);
void mb_free_retired_topologies(mpibind_t *h);
int mb_core_depth(hwloc_topology_t topo);
/* hw_smt of the base and of the work topology, computed once per
 * topology (docs/algorithm.md, "Hardware threads per core"). */
int mb_base_hw_smt(mpibind_t *h);
int mb_work_hw_smt(mpibind_t *h);

/* Is obj root or below it? */
static inline int mb_in_subtree(hwloc_obj_t obj, hwloc_obj_t root)
{
  for (; obj; obj = obj->parent)
    if (obj == root)
      return 1;
  return 0;
}

#endif
