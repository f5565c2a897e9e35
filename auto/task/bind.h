/*
 * bind.h - binding a task to its share, checked against the kernel, the
 * same way in every front end: the preload and the wrapper bind their own
 * process, the Slurm plugin each task's process before its exec.  libc
 * only.
 */
#ifndef MPIBIND_AUTO_BIND_H
#define MPIBIND_AUTO_BIND_H

#include "cpuset.h"
#include "nodemap.h"
#include "tuning.h"

/* Binds every thread of the calling process (at load there is one; a
 * thread started later inherits it) to the CPUs of the share s, without a
 * topology, then checks that the kernel reports exactly them; with
 * `membind`, also the calling thread's memory to the share's NUMA nodes
 * (*mem_what then says where, for the verbose report).  A failure gives
 * the threads back the CPUs the calling thread had (the task then runs
 * as it was).  `local` is the task's own number, for messages.  0, or -1
 * with *msg (malloc'ed, one line). */
int mpibind_auto_bind(const struct mpibind_auto_tuning *t, int local,
                      const struct mpibind_auto_share *s, char **mem_what,
                      char **msg);

/* After a successful mpibind_auto_bind: gives every thread back the CPUs
 * `before` (those the task had before it was bound) and, with `membind`,
 * the default memory policy, so that a task reported as running unbound
 * is.  What could not be undone is added to *msg (one line). */
void mpibind_auto_unbind(const struct mpibind_auto_tuning *t,
                         const struct mpibind_auto_cpuset *before,
                         char **msg);

#endif
