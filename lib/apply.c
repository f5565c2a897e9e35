/*
 * apply.c - binding the calling process to a task's CPUs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mpibind_internal.h"

int mpibind_apply(mpibind_t *h, int task)
{
  if (!h)
    return -1;
  if (!h->mapped)
    return mb_fail(h, "no mapping yet: call mpibind() first");
  if (task < 0 || task >= h->ntasks)
    return mb_fail(h, "task %d is invalid: expected 0 to %d", task,
                   h->ntasks - 1);
  /* hwloc "binds" with a topology from a file by doing nothing and
   * returning success: refuse instead when the file is another machine's. */
  if (mpibind_topology_check_system(h))
    return -1;
  /* The whole process: MPI libraries start threads inside MPI_Init, and
   * every one of them must follow. */
  if (hwloc_set_cpubind(h->work_topo, h->out_cpus[task],
                        HWLOC_CPUBIND_PROCESS)) {
    int e = errno;
    char *cpus = NULL;
    hwloc_bitmap_list_asprintf(&cpus, h->out_cpus[task]);
    int rc = mb_fail(h, "cannot bind the process to CPUs %s: %s",
                     cpus ? cpus : "?", strerror(e));
    free(cpus);
    return rc;
  }
  return 0;
}
