/*
 * domains.c - the domains of step 4 (docs/algorithm.md): one per NUMA
 * node with CPUs, rooted at its parent, and, beyond the original, one for
 * each group of CPUs that no NUMA node covers.
 */
#include <stdlib.h>
#include <string.h>

#include "domains.h"
#include "fail.h"
#include "topology.h"

/* Parents that hold memory only (memory-side caches) are no root: the
 * level walk needs a level of the CPU hierarchy. */
static hwloc_obj_t domain_root(hwloc_obj_t numa)
{
  hwloc_obj_t r = numa->parent;
  while (r && !hwloc_obj_type_is_normal(r->type))
    r = r->parent;
  return r;
}

static int add_domain(mpibind_t *h, struct mb_domain **d, int *n, int *cap,
                      int at, hwloc_obj_t numa, hwloc_obj_t root)
{
  if (*n == *cap) {
    int ncap = *cap ? 2 * *cap : 8;
    struct mb_domain *nd = realloc(*d, ncap * sizeof(**d));
    if (!nd)
      return mb_oom(h);
    *d = nd;
    *cap = ncap;
  }
  memmove(&(*d)[at + 1], &(*d)[at], (*n - at) * sizeof(**d));
  (*d)[at] = (struct mb_domain){.numa = numa, .root = root};
  (*n)++;
  return 0;
}

/* Logical index of the first PU of obj: the tree order of domains. */
static unsigned first_pu_logical(hwloc_topology_t topo, hwloc_obj_t obj)
{
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(
      topo, (unsigned)hwloc_bitmap_first(obj->cpuset));
  return pu ? pu->logical_index : 0;
}

/* docs/algorithm.md, "Beyond the original": CPUs that no NUMA domain
 * covers (hwloc 2 hides a NUMA node that is offline, has no memory, or is
 * outside the cgroup's cpuset.mems) still belong to exactly one domain.
 * Each such CPU goes up to its highest ancestor that holds no CPU of a
 * NUMA domain, never above its package: that object is a domain (a
 * package whose NUMA node is missing, a sub-NUMA cluster's object, or, on
 * a node without packages, the machine).  Domains keep tree order: each
 * goes before the first NUMA domain that comes after it, so the NUMA
 * domains keep their order. */
static int add_numaless_domains(mpibind_t *h, hwloc_topology_t topo,
                                struct mb_domain **d, int *n, int *cap)
{
  hwloc_bitmap_t covered = hwloc_bitmap_alloc();
  hwloc_bitmap_t left = hwloc_bitmap_alloc();
  int rc = 0;
  if (!covered || !left) {
    rc = mb_oom(h);
    goto out;
  }
  for (int i = 0; i < *n; i++)
    hwloc_bitmap_or(covered, covered, (*d)[i].root->cpuset);
  hwloc_bitmap_andnot(left, hwloc_topology_get_topology_cpuset(topo), covered);
  while (rc == 0 && !hwloc_bitmap_iszero(left)) {
    hwloc_obj_t root = hwloc_get_pu_obj_by_os_index(
        topo, (unsigned)hwloc_bitmap_first(left));
    if (!root) /* a CPU hwloc lists in no PU: nothing to bind to */
      break;
    while (root->type != HWLOC_OBJ_PACKAGE && root->parent &&
           !hwloc_bitmap_intersects(root->parent->cpuset, covered))
      root = root->parent;
    unsigned first = first_pu_logical(topo, root);
    int at = *n;
    for (int i = 0; i < *n && at == *n; i++)
      if ((*d)[i].numa && first_pu_logical(topo, (*d)[i].root) > first)
        at = i;
    rc = add_domain(h, d, n, cap, at, NULL, root);
    hwloc_bitmap_andnot(left, left, root->cpuset);
  }
out:
  hwloc_bitmap_free(covered);
  hwloc_bitmap_free(left);
  return rc;
}

int mb_find_domains(mpibind_t *h, hwloc_topology_t topo,
                    struct mb_domain **out, int *nout)
{
  int n = 0, cap = 0;
  struct mb_domain *d = NULL;
  for (hwloc_obj_t numa = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE,
                                                      NULL);
       numa; numa = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, numa)) {
    /* Memory without local CPUs (GPU memory, CXL) takes no task; a second
     * memory on the same CPUs (HBM, MCDRAM) is not a second domain. */
    if (!numa->cpuset || hwloc_bitmap_iszero(numa->cpuset))
      continue;
    hwloc_obj_t root = domain_root(numa);
    if (!root)
      continue;
    int seen = 0;
    for (int i = 0; i < n && !seen; i++)
      seen = d[i].root == root;
    if (seen)
      continue;
    if (add_domain(h, &d, &n, &cap, n, numa, root)) {
      free(d);
      return -1;
    }
  }
  /* Beyond docs/algorithm.md's two rules: hwloc 2 attaches memory it cannot
   * place (CXL, expanders) to the Machine with the whole machine's CPUs.
   * A domain whose root holds other domains would hand their CPUs out a
   * second time: memory shared by several domains is not a domain. */
  int kept = 0;
  for (int i = 0; i < n; i++) {
    int holds_other = 0;
    for (int j = 0; j < n && !holds_other; j++)
      holds_other = j != i && d[j].root != d[i].root &&
                    mb_in_subtree(d[j].root, d[i].root);
    if (!holds_other)
      d[kept++] = d[i];
  }
  n = kept;
  if (add_numaless_domains(h, topo, &d, &n, &cap)) {
    free(d);
    return -1;
  }
  if (n == 0) {
    free(d);
    return mb_fail_kind(h, MPIBIND_ENOMAP,
                        "the topology has no CPU: nothing to map tasks onto");
  }
  *out = d;
  *nout = n;
  return 0;
}

