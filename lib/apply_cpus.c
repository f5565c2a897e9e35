/*
 * apply_cpus.c - binding the calling process to a CPU list without a
 * topology: for a front end that stored a task's share of a mapping
 * (the preload's per-node mapping cache) and must not load the node's
 * whole topology again just to bind.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "fail.h"
#include "mpibind.h"

/* Every thread of the process, as hwloc's HWLOC_CPUBIND_PROCESS does on
 * Linux: MPI libraries start threads, and every one of them must follow.
 * Threads that end meanwhile are no error. */
static int bind_all_threads(const cpu_set_t *cs, size_t size)
{
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return sched_setaffinity(0, size, cs);
  int rc = sched_setaffinity(0, size, cs), e = errno;
  struct dirent *ent;
  while (rc == 0 && (ent = readdir(d)) != NULL) {
    char *end;
    long tid = strtol(ent->d_name, &end, 10);
    if (ent->d_name[0] == '.' || *end != '\0' || tid <= 0)
      continue;
    if (sched_setaffinity((pid_t)tid, size, cs) != 0 && errno != ESRCH) {
      rc = -1;
      e = errno;
    }
  }
  closedir(d);
  errno = e;
  return rc;
}

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
  if (bind_all_threads(cs, size) != 0)
    rc = mb_fail_kind(h, errno, "cannot bind the process to CPUs %s: %s", cpus,
                 strerror(errno));
  CPU_FREE(cs);
  return rc;
}
