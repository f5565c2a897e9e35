/*
 * openmp.h - the OpenMP runtime already loaded in the process, seen
 * through the standard omp_* API only (openmp.c says why).  libc only.
 */
#ifndef MPIBIND_AUTO_OPENMP_H
#define MPIBIND_AUTO_OPENMP_H

#include "cpuset.h"

/* 1 when an OpenMP runtime (4.5 or later) is loaded. */
int mpibind_auto_omp_loaded(void);
/* NULL when the loaded runtime (if any) follows OMP_PROC_BIND and
 * OMP_PLACES as they are now in the environment, for a task bound to
 * task_cpus; otherwise a phrase saying what it got wrong, and *outside is
 * 1 when its places hold CPUs outside task_cpus (its threads would run
 * there: places are where the runtime binds them), 0 when its threads
 * stay within them (unbound threads inherit the task's CPUs). */
const char *mpibind_auto_omp_stale(const struct mpibind_auto_cpuset *task_cpus,
                                   int *outside);
/* omp_set_num_threads(n) when a runtime is loaded. */
void mpibind_auto_omp_set_num_threads(int n);

#endif
