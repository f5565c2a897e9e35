/*
 * steps.h - the steps of a node's mapping with libmpibind that every
 * mapper shares: the helper (for the preload, the wrapper and the Python
 * workers), the Slurm plugin in slurmstepd.  Each reads its variables
 * through the tuning (mpibind_auto_getenv), so that the plugin reads the
 * job's environment.  Each returns 0, or -1 with *msg (malloc'ed, one line
 * naming the value).
 */
#ifndef MPIBIND_AUTO_STEPS_H
#define MPIBIND_AUTO_STEPS_H

#include "inputs.h"
#include "mpibind.h"
#include "tuning.h"

/* A new handle for `count` tasks with the tuning's inputs and the GPU
 * allocation of the *_VISIBLE_DEVICES variables, each taken as the node's
 * allocation (the plugin reads the step's, which every task shares).  On
 * failure *hp may hold a half-configured handle: the caller finalizes
 * it. */
int mpibind_auto_configure(const struct mpibind_auto_tuning *t, int count,
                           mpibind_t **hp, char **msg);

/* The same for the inputs a task found (in->gpu_alloc: the node's
 * allocation, per-task lists recognized; inputs.h). */
int mpibind_auto_configure_inputs(const struct mpibind_auto_inputs *in,
                                  mpibind_t **hp, char **msg);

/* For a launch that shares the node: a GPU vendor whose variable
 * (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES,
 * ZE_AFFINITY_MASK) the launch did not set gets no GPU, since the launch
 * gave the step none of them (without it, mpibind would hand out the
 * node's GPUs, which may belong to other jobs). */
int mpibind_auto_no_unallocated_gpus(const struct mpibind_auto_tuning *t,
                                     mpibind_t *h, char **msg);

/* mpibind() and mpibind_set_env_vars(); the message names the tuning
 * (smt:K above the node's hardware threads is the library's refusal). */
int mpibind_auto_compute(const struct mpibind_auto_tuning *t, mpibind_t *h,
                         int count, char **msg);

#endif
