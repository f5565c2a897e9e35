/*
 * inputs.h - everything a node's mapping depends on besides the machine
 * and its topology: the tuning, the task count, where the task number
 * came from and the launcher's process (the job's CPUs), the node's GPU
 * allocation.  A task gathers them (libc only) and keys the node mapping
 * file with them (nodemap.c); the helper is told what it cannot find
 * itself (maprequest.h) and maps with them (auto/node/mapping.c).
 */
#ifndef MPIBIND_AUTO_INPUTS_H
#define MPIBIND_AUTO_INPUTS_H

#include "tuning.h"

struct mpibind_auto_inputs {
  const struct mpibind_auto_tuning *t;
  int ntasks;          /* tasks on this node */
  const char *source;  /* the variable that gave the task number; NULL:
                          none (the wrapper run directly) */
  long launcher;       /* pid of the launcher's process on this node (the
                          task's parent); 0: none */
  char **gpu_alloc;    /* per GPU variable (mb_gpuvar_table.h): the node's
                          allocation list, NULL: none (all of the vendor's
                          GPUs) */
  int *gpu_set;        /* per GPU variable: set at launch */
  char *job_cpus;      /* the job's CPUs here against launch_cpus, for
                          the key: a list, "(node)" (all of them) or
                          "(unknown)"; NULL until mpibind_auto_inputs_of_task */
  char *launch_cpus;   /* the CPUs the launcher may use as a list
                          (mpibind_auto_launch_cpus: the key's, and the
                          bound of every task's CPUs here), or NULL */
};

/* Empty inputs for `ntasks` tasks (no GPU allocation).  0, or -1 out of
 * memory. */
int mpibind_auto_inputs_init(struct mpibind_auto_inputs *in,
                             const struct mpibind_auto_tuning *t, int ntasks,
                             const char *source, long launcher);
/* What task `local` finds at launch: the node's GPU allocation (per-task
 * lists recognized, gpualloc.h) and the job's CPUs for the key.  0, or -1
 * out of memory. */
int mpibind_auto_inputs_of_task(struct mpibind_auto_inputs *in, int local);
/* The key's text of the inputs (lines; malloc'ed, NULL out of memory). */
char *mpibind_auto_inputs_key(const struct mpibind_auto_inputs *in);
void mpibind_auto_inputs_free(struct mpibind_auto_inputs *in);

#endif
