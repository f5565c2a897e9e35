/*
 * tuning.h - the MPIBIND* variables (the grammar of --mpibind=,
 * docs/interfaces.md "Automatic binding"), read the same way by every
 * front end: the preload and the wrapper from their environment, the
 * Slurm plugin from the job's, the helper from the environment it
 * inherited from the task.  libc only.
 */
#ifndef MPIBIND_AUTO_TUNING_H
#define MPIBIND_AUTO_TUNING_H

#include <limits.h>

#include "task_env.h"

/* The largest thread count: OMP_NUM_THREADS up to it is read, and the
 * node mapping file's records (nthreads=) are written and read within it
 * (one bound on both sides: a value the reader refused made every task
 * map the node again). */
#define MPIBIND_AUTO_NTHREADS_MAX INT_MAX

/* MPIBIND_RESTRICT_TYPE's values, the library's MPIBIND_RESTRICT_CPU and
 * MPIBIND_RESTRICT_MEM (auto/node/steps.c checks that they agree). */
enum { MPIBIND_AUTO_RESTRICT_CPU = 0, MPIBIND_AUTO_RESTRICT_MEM = 1 };

/* Who sees which GPUs: the visible-devices variables (CUDA_VISIBLE_DEVICES,
 * ROCR_VISIBLE_DEVICES, ...) of a task. */
enum {
  MPIBIND_AUTO_GPUS_TASK = 0, /* the task's own GPUs (MPI ranks' default) */
  MPIBIND_AUTO_GPUS_ALL,      /* every GPU of the job, in task order, the
                                 same for every task (workers' default:
                                 device i is task i's GPU) */
  MPIBIND_AUTO_GPUS_NONE,     /* the variables are not set */
  MPIBIND_AUTO_GPUS_WORD      /* `visible_devices` alone: NONE for MPI
                                 ranks (the original's meaning), TASK for
                                 workers */
};

struct mpibind_auto_tuning {
  int off;              /* `off`: no side effect at all */
  int verbose;          /* `v`, `verbose` */
  int dryrun;           /* compute, report, export; no bind */
  int strict;           /* a problem fails the launch */
  int help;             /* print the grammar */
  int smt;              /* -1: not given */
  int greedy;           /* -1: not given */
  int gpu_optim;        /* -1: not given */
  int no_omp_places;    /* do not set OMP_PLACES */
  int no_omp_proc_bind; /* do not set OMP_PROC_BIND */
  int visible_devices_word; /* MPIBIND's visible_devices[:MODE]: a
                               MPIBIND_AUTO_GPUS_* value; -1: not given */
  int visible_devices;  /* what the task's visible-devices variables say
                           (MPIBIND_AUTO_GPUS_TASK, _ALL or _NONE), from
                           the word and the kind of task */
  int workers;          /* the tasks are workers that pick their GPU by
                           number (torchrun's, the Python module's
                           bind_task): mpibind_auto_tuning_of_task */
  int agent_threads;    /* OMP_NUM_THREADS=1 was set by torchrun's agent,
                           not by the user: no input, and replaced */
  int membind;          /* `membind`: memory on the task's NUMA node(s) */
  int nics;             /* `nics`: the task's NICs to UCX, NCCL, libfabric */
  int place_threads;    /* `place_threads`: OMP_PLACES/OMP_PROC_BIND even
                           in an interpreter (see export.c) */
  const char *restrict_ids; /* NULL: not given (points into environ) */
  int restrict_type;        /* MPIBIND_AUTO_RESTRICT_*; -1: not given */
  const char *topofile;     /* NULL: not given */
  int nthreads;             /* from OMP_NUM_THREADS; -1: not given */
  char *draw;               /* draw:PATH (malloc'ed), or NULL */
  char *error;              /* first problem found (malloc'ed), or NULL */
  mpibind_auto_getenv_f get; /* where the values came from (NULL: getenv;
                                the Slurm plugin: the job's environment) */
  void *get_ctx;
};

/* Reads MPIBIND, MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE
 * and OMP_NUM_THREADS, for tasks that are not workers (MPI ranks, a
 * launch's tasks).  Returns 0, or -1 with t->error set (one line
 * naming the variable and its value).  `off` is always honoured, even
 * next to bad words.  Free with mpibind_auto_tuning_free(). */
int mpibind_auto_tuning_read(struct mpibind_auto_tuning *t);
/* 1 when MPIBIND is exactly "off", the way a job script switches mpibind
 * off for its commands: what mpibind_auto_tuning_read would find
 * (t->off, nothing else to say), told by one getenv and no parsing, so
 * that such a process pays nothing more than one that is no task.  0
 * otherwise (any other spelling is the full reader's). */
int mpibind_auto_tuning_plainly_off(void);
/* The same, reading the variables through get(name, ctx). */
int mpibind_auto_tuning_read_from(struct mpibind_auto_tuning *t,
                                  mpibind_auto_getenv_f get, void *ctx);
/* What depends on the kind of task, for a task (or its helper) that
 * knows it: `source` the variable that gave its task number, `launcher`
 * the launcher's pid (the task's parent), `workers` the task binds itself
 * as a worker (bind_task).  A torchrun worker (source LOCAL_RANK) or a
 * worker: visible_devices for workers (every GPU visible unless MPIBIND
 * says otherwise); a torchrun worker whose OMP_NUM_THREADS=1 is its
 * agent's (mpibind_auto_torch_agent_threads): no thread-count input. */
void mpibind_auto_tuning_of_task(struct mpibind_auto_tuning *t,
                                 const char *source, long launcher,
                                 int workers);
/* Only the word list of MPIBIND (the grammar of --mpibind=), given under
 * the name `label` (e.g. "--mpibind"), which the messages use.  For
 * checking a value where it is typed (srun, sbatch, salloc). */
int mpibind_auto_tuning_words(struct mpibind_auto_tuning *t, const char *label,
                              const char *value);
/* What messages call the value of `variable`: the option a front end
 * named with mpibind_auto_name_option() (mpibind_auto_task.h), else the
 * variable itself. */
const char *mpibind_auto_value_name(const char *variable);
/* The i-th variable a front end may name after an option, NULL past the
 * last (with mpibind_auto_value_name: what the helper is told, --name). */
const char *mpibind_auto_nameable_variable(int i);
/* Those names as lines of a node-mapping key ("" when every value goes
 * by its variable's name), malloc'ed: a failure recorded for the node's
 * later tasks is reused word for word, so the names are an input. */
char *mpibind_auto_value_names_key(void);
/* A variable, read where the tuning's variables came from. */
const char *mpibind_auto_getenv(const struct mpibind_auto_tuning *t,
                                const char *name);
void mpibind_auto_tuning_free(struct mpibind_auto_tuning *t);
/* A value of MPIBIND_DISCOVERY_TIMEOUT (NULL: unset) in whole seconds
 * (default 10, 1 to 86400): the helper's time limit.  -1 with *error
 * (malloc'ed, one line) when malformed.  The tuning checks it in every
 * task, so that a bad value is the same line whether the node's mapping
 * is cached or not. */
int mpibind_auto_timeout_seconds(const char *v, char **error);

/* The grammar, for `help` (several lines, each ending in '\n'). */
extern const char mpibind_auto_help_text[];

#endif
