/*
 * distribute.h - step 5 (distribute.c; docs/algorithm.md): tasks, CPUs
 * and GPUs over the domains.
 */
#ifndef MB_DISTRIBUTE_H
#define MB_DISTRIBUTE_H

#include "domains.h"
#include "mpibind.h"

/* Fills the outputs (allocated, empty) of h for its ntasks over the nd
 * domains d of h->work_topo: greedy or hierarchical, as step 5 says.
 * 0, or -1 with a failure on h. */
int mb_distribute(mpibind_t *h, struct mb_domain *d, int nd);

/* split(n, k): part j of n split into k parts, the first n % k one longer. */
static inline int mb_split_part(int n, int k, int j)
{
  return n / k + (j < n % k ? 1 : 0);
}

#endif
