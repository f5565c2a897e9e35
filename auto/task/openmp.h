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
 * task_cpus; otherwise a phrase saying what it got wrong. */
const char *mpibind_auto_omp_stale(const struct mpibind_auto_cpuset *task_cpus);
/* omp_set_num_threads(n) when a runtime is loaded. */
void mpibind_auto_omp_set_num_threads(int n);

#endif
