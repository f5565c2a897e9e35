/*
 * apply.c - binding the calling process to a task's CPUs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "handle.h"
#include "lifetime.h"

int mpibind_apply(mpibind_t *h, int task)
{
  MB_NEED_HANDLE(h, -1);
  if (mb_check_task(h, task))
    return -1;
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
    int rc = mb_fail_kind(h, e, "cannot bind the process to CPUs %s: %s",
                          cpus ? cpus : "?", strerror(e));
    free(cpus); /* free() keeps errno (glibc, POSIX 2024) */
    return rc;
  }
  return 0;
}
