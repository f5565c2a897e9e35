/*
 * map.c - mpibind(): the steps of docs/algorithm.md in order, each done
 * by its own file: check the inputs (1), the work topology (2,
 * topology.c), the node's GPU list (3, gpus.c), the domains (4,
 * domains.c), the distribution (5, distribute.c), then no GPU left idle
 * (gpushare.c) and each task's nearest NICs (nics.c).  The outputs are
 * allocated here, once their cost is known (cost.c), and freed by
 * lifetime.c.
 */
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "distribute.h"
#include "domains.h"
#include "fail.h"
#include "gpus.h"
#include "gpushare.h"
#include "gpuvars.h"
#include "handle.h"
#include "lifetime.h"
#include "nics.h"
#include "topology.h"

static int alloc_outputs(mpibind_t *h)
{
  int n = h->ntasks;
  h->out_nthreads = calloc(n, sizeof(int));
  h->out_cpus = calloc(n, sizeof(hwloc_bitmap_t));
  h->out_gpus = calloc(n, sizeof(hwloc_bitmap_t));
  h->out_nics = calloc(n, sizeof(hwloc_bitmap_t));
  if (!h->out_nthreads || !h->out_cpus || !h->out_gpus || !h->out_nics)
    return -1;
  h->out_ntasks = n; /* what mb_clear_outputs frees, whatever ntasks is */
  for (int i = 0; i < n; i++) {
    h->out_cpus[i] = hwloc_bitmap_alloc();
    h->out_gpus[i] = hwloc_bitmap_alloc();
    h->out_nics[i] = hwloc_bitmap_alloc();
    if (!h->out_cpus[i] || !h->out_gpus[i] || !h->out_nics[i])
      return -1;
  }
  return 0;
}

/* The node's GPU list on the work topology.  Visible indexes and the
 * allocation are settled on the unrestricted topology: a restriction
 * changes which GPUs a job maps, not what the runtimes call them.  The
 * node's vendors are those of the node, before the allocation: a job
 * allocated none of a vendor's GPUs still gets that vendor's variable,
 * empty (no device), never unset (every device). */
static int gpu_list(mpibind_t *h, hwloc_topology_t base)
{
  struct mb_gpu_list all;
  if (mb_gpu_list_build(h, base, NULL, &all))
    return -1;
  memset(h->node_vendors, 0, sizeof(h->node_vendors));
  for (int g = 0; g < all.n; g++) {
    int slot = mb_vendor_slot(all.gpu[g].vendor);
    if (slot >= 0)
      h->node_vendors[slot] = 1;
  }
  if (mb_gpu_list_allocate(h, &all)) {
    mb_gpu_list_free(&all);
    return -1;
  }
  if (h->work_topo == base) {
    h->gpus = all;
    return 0;
  }
  int rc = mb_gpu_list_build(h, h->work_topo, &all, &h->gpus);
  if (rc == 0)
    rc = mb_gpu_list_keep_outside(h, &all, &h->gpus);
  mb_gpu_list_free(&all);
  return rc;
}

/* Step 1, the inputs the topology decides: smt within the node's
 * hardware threads per core, taken before the restriction. */
static int check_smt(mpibind_t *h)
{
  int hw = mb_base_hw_smt(h);
  if (hw < 0)
    return -1;
  if (h->smt > hw)
    return mb_fail(h,
                   "smt %d is invalid: expected 0 to %d, the hardware threads "
                   "per core of this node",
                   h->smt, hw);
  return 0;
}

int mpibind(mpibind_t *h)
{
  MB_NEED_HANDLE(h, -1);
  mb_clear_outputs(h);
  if (h->ntasks < 1)
    return mb_fail(h, "ntasks is not set: expected an integer >= 1");
  hwloc_topology_t base = mb_base_topology(h);
  if (!base || check_smt(h) || mb_make_work_topology(h) || gpu_list(h, base))
    return -1;
  if (mb_check_mapping_memory(h, h->work_topo)) {
    mb_clear_outputs(h);
    return -1;
  }
  if (alloc_outputs(h)) {
    mb_clear_outputs(h);
    return mb_oom(h);
  }
  struct mb_domain *d = NULL;
  int nd = 0;
  int rc = mb_find_domains(h, h->work_topo, &d, &nd);
  if (rc == 0)
    rc = mb_distribute(h, d, nd);
  if (rc == 0)
    rc = mb_share_idle_gpus(h);
  if (rc == 0)
    rc = mb_nic_list_build(h, base, &h->nics);
  if (rc == 0)
    rc = mb_nics_choose(h, MB_NIC_ANY, h->out_nics);
  free(d);
  if (rc) {
    mb_clear_outputs(h);
    return -1;
  }
  h->mapped = 1;
  return 0;
}
