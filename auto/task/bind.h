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

/* The same for a CPU list alone, no memory: every thread of the calling
 * process bound to `cpus`, the kernel's mask checked, the former CPUs
 * given back on a failure.  `who` and `noun` name them in the one-line
 * *msg ("the shell", "the job's CPUs": "cannot bind the shell to the job's
 * CPUs 8-11: ...").  0, or -1 with *msg (malloc'ed). */
int mpibind_auto_bind_cpus(const char *who, const char *noun,
                           const char *cpus, char **msg);

/* After a successful mpibind_auto_bind: gives every thread back the CPUs
 * `before` (those the task had before it was bound) and, with `membind`,
 * the default memory policy, so that a task reported as running unbound
 * is.  What could not be undone is added to *msg (one line). */
void mpibind_auto_unbind(const struct mpibind_auto_tuning *t,
                         const struct mpibind_auto_cpuset *before,
                         char **msg);

#endif
