/*
 * gpualloc.h - the GPU allocation a task starts with: a task is mapped only
 * GPUs the launch gave the job, and a per-task list stays the task's own
 * (gpualloc.c says how each is recognized).  libc only.
 */
#ifndef MPIBIND_AUTO_GPUALLOC_H
#define MPIBIND_AUTO_GPUALLOC_H

/* Index of `name` among the GPU variables (mb_gpuvar_table.h), or -1. */
int mpibind_auto_gpu_var_index(const char *name);

/* The node's GPU allocation from the variables set at launch, per GPU
 * variable i (alloc and set have mb_ngpuvars entries): alloc[i] the list
 * of the node's allocation (malloc'ed; NULL: all of the vendor's GPUs, or
 * the variable is unset), set[i] whether it was set at launch.  Per-task
 * lists are recognized (source: the variable that gave the task number;
 * launcher: the launcher's pid) and remembered as the task's own.  0, or
 * -1 out of memory. */
int mpibind_auto_gpu_detect(const char *source, long launcher, int local,
                            int count, char **alloc, int *set);
/* 1 when the task's value of `name` is its own per-task list (kept). */
int mpibind_auto_gpu_per_task(const char *name);
/* 1 when any of the task's GPU variables is its own per-task list. */
int mpibind_auto_gpu_any_per_task(void);
/* No task of the node's mapping has the task's GPUs: its own lists are
 * the node's allocation after all (replacing alloc's entries; the lists
 * are then no longer per-task). */
void mpibind_auto_gpu_own_as_allocation(char **alloc);
/* The task of the node's mapping this task takes, from the mapping's GPU
 * lines ("<task>\t<NAME>=<value>\t...\n" per task, nodemap.c): 0 with
 * *slot (local when the task has no per-task list of the node's vendors)
 * and *what (malloc'ed, for the verbose report) when it chose by GPUs;
 * -1 when no single task has the task's GPUs. */
int mpibind_auto_gpu_slot_in(const char *gpus, int local, int *slot,
                             char **what);

#endif
