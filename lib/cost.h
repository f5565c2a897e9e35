/*
 * cost.h - what a mapping costs in memory, known before it is allocated
 * (cost.c; docs/algorithm.md, "Cost in proportion to the work").
 */
#ifndef MB_COST_H
#define MB_COST_H

#include "mpibind.h"

/* 0 when the outputs of h->ntasks tasks on topo fit in the memory this
 * process can have, -1 with a message otherwise (checked before any of
 * them is allocated). */
int mb_check_mapping_memory(mpibind_t *h, hwloc_topology_t topo);
/* The same for the nvars variables of mpibind_set_env_vars. */
int mb_check_env_memory(mpibind_t *h, int nvars);
/* The same for need bytes of what (a word for the message). */
int mb_check_memory(mpibind_t *h, unsigned long long need, const char *what);

#endif
