/*
 * jobcpus.h - the CPUs the launch gave the job on this node: no task is
 * ever bound outside them (jobcpus.c says where they come from).  libc
 * only: a task computes them against its launcher's CPUs for the node
 * mapping file's key, the helper against the topology's.
 */
#ifndef MPIBIND_AUTO_JOBCPUS_H
#define MPIBIND_AUTO_JOBCPUS_H

#include "cpuset.h"

/* The kernel's online CPUs (/sys/devices/system/cpu/online), and the
 * text read when text is not NULL (malloc'ed, for the machine key).  0,
 * or -1 when unreadable or empty. */
int mpibind_auto_online_cpus(struct mpibind_auto_cpuset *s, char **text);

/* The CPUs the launch lets the task's launcher use: its process's (the
 * task's parent, torchrun's agent; `source` and `launcher` as below), or
 * with no launcher this process's own; the kernel's online CPUs under
 * Slurm (slurmstepd's may be specialized cores) and when the launcher's
 * cannot be read.  They lie within the cpuset cgroup's and the online
 * CPUs, and hold the job's (a task has no topology; reading the cgroup's
 * files would cost it more than the rest of its work).  0, or -1 when
 * none can be had. */
int mpibind_auto_launch_cpus(const char *source, long launcher,
                             struct mpibind_auto_cpuset *s);

/* `source`: the variable that gave the task number (NULL: no launcher,
 * the wrapper run directly); `launcher`: the pid of the launcher's
 * process on this node (the task's parent; 0: unknown); `allowed`: the
 * CPUs the mapping may use.  Returns 1 with `cpus` and *what (malloc'ed
 * phrase for the verbose report) when the job's CPUs on this node are
 * fewer than `allowed`; 0 when the whole of it is the job's (or nothing
 * narrower is known); -1 with *what saying why when they cannot be known
 * and the task must not be bound.  what NULL: no phrase (the key needs
 * none, and reading the launcher's name costs a task four system
 * calls). */
int mpibind_auto_job_cpus(const char *source, long launcher,
                          const struct mpibind_auto_cpuset *allowed,
                          struct mpibind_auto_cpuset *cpus, char **what);

#endif
