/*
 * membind.h - MPIBIND=membind without a topology: a task's memory on the
 * NUMA nodes its share names.  libc only.
 */
#ifndef MPIBIND_AUTO_MEMBIND_H
#define MPIBIND_AUTO_MEMBIND_H

#include "cpuset.h"

/* Binds the calling thread's memory (and that of the threads it starts
 * later) to the NUMA nodes of the hwloc list `nodes`, strictly (MPOL_BIND).
 * 0, or -1 with *error (malloc'ed, the reason). */
int mpibind_auto_bind_memory(const char *nodes, char **error);
/* The calling thread's memory policy back to the default (MPOL_DEFAULT:
 * the task gives up its memory binding).  0, or -1 with errno. */
int mpibind_auto_unbind_memory(void);
/* The NUMA nodes this process may allocate on (its cpuset cgroup's
 * memories), as get_mempolicy(MPOL_F_MEMS_ALLOWED) gives them: a system
 * call, where the cgroup's file would cost a task a file's open and
 * read.  0, or -1 with errno. */
int mpibind_auto_mems_allowed(struct mpibind_auto_cpuset *nodes);

#endif
