/*
 * membind.c - MPIBIND=membind without a topology: the task's memory on the
 * NUMA nodes its share names (the helper stores them with its CPUs in
 * the node mapping file's record, nodemap.h).
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

#include "cpuset.h"
#include "membind.h"
#include "strdupf.h"

#define WORD_BITS (8 * sizeof(unsigned long))

/* set_mempolicy(MPOL_BIND) to the nodes of `set`; 0 or -1 with errno. */
static int bind_to_nodes(const struct mpibind_auto_cpuset *set) {
  int last = mpibind_auto_cpuset_last(set), rc;
  size_t words = (size_t)last / WORD_BITS + 1;
  unsigned long *mask = calloc(words, sizeof *mask);
  if (mask == NULL)
    return -1;
  for (int id = 0; id <= last; id++)
    if (mpibind_auto_cpuset_isset(set, (unsigned)id))
      mask[(size_t)id / WORD_BITS] |= 1UL << ((size_t)id % WORD_BITS);
  /* the kernel reads maxnode - 1 bits: one more, as hwloc passes */
  rc = (int)syscall(SYS_set_mempolicy, MPOL_BIND, mask, words * WORD_BITS + 1);
  free(mask);
  return rc;
}

int mpibind_auto_bind_memory(const char *nodes, char **error) {
  struct mpibind_auto_cpuset set = MPIBIND_AUTO_CPUSET_INIT;
  int rc = -1;
  *error = NULL;
  if (nodes == NULL || mpibind_auto_cpuset_parse_list(&set, nodes) != 0 ||
      mpibind_auto_cpuset_iszero(&set))
    *error = mpibind_auto_strdupf("NUMA node list '%s' is not a finite, "
                                  "non-empty list", nodes ? nodes : "");
  else if (bind_to_nodes(&set) != 0)
    *error = mpibind_auto_strdupf("%s", strerror(errno));
  else
    rc = 0;
  mpibind_auto_cpuset_free(&set);
  return rc;
}

static int mems_allowed_of(unsigned long *w, size_t nw, void *ctx) {
  int mode;
  (void)ctx;
  return (int)syscall(SYS_get_mempolicy, &mode, w, nw * WORD_BITS, NULL,
                      MPOL_F_MEMS_ALLOWED);
}

int mpibind_auto_mems_allowed(struct mpibind_auto_cpuset *nodes) {
  return mpibind_auto_cpuset_read_mask(nodes, mems_allowed_of, NULL);
}

int mpibind_auto_unbind_memory(void) {
  return (int)syscall(SYS_set_mempolicy, MPOL_DEFAULT, NULL, 0UL);
}
