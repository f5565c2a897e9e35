/*
 * domains.h - the domains of step 4 (domains.c; docs/algorithm.md).
 */
#ifndef MB_DOMAINS_H
#define MB_DOMAINS_H

#include "mpibind.h"

struct mb_domain {
  hwloc_obj_t numa;   /* NULL: CPUs without a NUMA node (domains.c) */
  hwloc_obj_t root;
  long long weight;
  int ntasks;
};

/* The domains of topo, in order (*out malloc'ed, *nout of them); 0, or
 * -1 with a failure on h (MPIBIND_ENOMAP: no CPU to map onto). */
int mb_find_domains(mpibind_t *h, hwloc_topology_t topo,
                    struct mb_domain **out, int *nout);

#endif
