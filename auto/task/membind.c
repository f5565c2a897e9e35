/*
 * membind.c - MPIBIND=membind without a topology: the task's memory on the
 * NUMA nodes its record names (nodemap.c stores them with its CPUs).
 *
 * Why not hwloc_set_membind: a task that read its share of the node's
 * mapping has no topology, and loading one only to bind memory would cost
 * what the mapping file saves.  On Linux hwloc's MPOL_BIND of the calling
 * thread is this same set_mempolicy(2) call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/mempolicy.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"

#define WORD_BITS (8 * sizeof(unsigned long))

/* set_mempolicy(MPOL_BIND) to the nodes of `set`; 0 or -1 with errno. */
static int bind_to_nodes(hwloc_const_bitmap_t set) {
  int last = hwloc_bitmap_last(set), id, rc;
  size_t words = (size_t)last / WORD_BITS + 1;
  unsigned long *mask = calloc(words, sizeof *mask);
  if (mask == NULL)
    return -1;
  hwloc_bitmap_foreach_begin(id, set)
    mask[(size_t)id / WORD_BITS] |= 1UL << ((size_t)id % WORD_BITS);
  hwloc_bitmap_foreach_end();
  /* the kernel reads maxnode - 1 bits: one more, as hwloc passes */
  rc = (int)syscall(SYS_set_mempolicy, MPOL_BIND, mask, words * WORD_BITS + 1);
  free(mask);
  return rc;
}

int mpibind_auto_bind_memory(const char *nodes, char **error) {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  int rc = -1;
  *error = NULL;
  if (set == NULL) {
    *error = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  if (nodes == NULL || hwloc_bitmap_list_sscanf(set, nodes) != 0 ||
      hwloc_bitmap_iszero(set) || hwloc_bitmap_last(set) < 0)
    *error = mpibind_auto_strdupf("NUMA node list '%s' is not a finite, "
                                  "non-empty list", nodes ? nodes : "");
  else if (bind_to_nodes(set) != 0)
    *error = mpibind_auto_strdupf("%s", strerror(errno));
  else
    rc = 0;
  hwloc_bitmap_free(set);
  return rc;
}
