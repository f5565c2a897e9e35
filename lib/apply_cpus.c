/*
 * apply_cpus.c - binding the calling process to a CPU list without a
 * topology: for a front end that stored a task's share of a mapping
 * (the preload's per-node mapping cache) and must not load the node's
 * whole topology again just to bind.  Every thread follows
 * (mb_bind_all_threads, shared with auto/task/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "mb_threads.h"
#include "mpibind.h"

int mpibind_apply_cpus(mpibind_t *h, const char *cpus)
{
  MB_NEED_HANDLE(h, -1);
  if (!cpus || !*cpus)
    return mb_fail(h, "CPU list '' is empty: expected PU OS indexes such "
                      "as 0-3,8");
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (!set)
    return mb_oom(h);
  int last;
  if (hwloc_bitmap_list_sscanf(set, cpus) < 0 || hwloc_bitmap_iszero(set) ||
      (last = hwloc_bitmap_last(set)) < 0) {
    hwloc_bitmap_free(set);
    return mb_fail(h, "CPU list '%s' is invalid: expected PU OS indexes "
                      "such as 0-3,8",
                   cpus);
  }
  cpu_set_t *cs = CPU_ALLOC((size_t)last + 1);
  size_t size = CPU_ALLOC_SIZE((size_t)last + 1);
  if (!cs) {
    hwloc_bitmap_free(set);
    return mb_oom(h);
  }
  CPU_ZERO_S(size, cs);
  int id;
  hwloc_bitmap_foreach_begin(id, set)
    CPU_SET_S((size_t)id, size, cs);
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_free(set);
  int rc = 0;
  if (mb_bind_all_threads(cs, size) != 0)
    rc = mb_fail_kind(h, errno, "cannot bind the process to CPUs %s: %s", cpus,
                 strerror(errno));
  CPU_FREE(cs);
  return rc;
}
