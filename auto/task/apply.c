/*
 * apply.c - the automatic binding of one launched task, in its own
 * process (mpibind_auto_task.h has the contract): the preload at load or
 * after MPI_Init, the wrapper before its exec.
 *
 * Why the order below: a problem must leave the process exactly as it
 * was, so everything that can fail (tuning, mapping, binding) happens
 * before anything is exported.  Messages are printed by the node's local
 * task 0 only, since every task of a node sees the same tuning and would
 * print the same line.
 *
 * Nothing here loads hwloc or libmpibind: the task reads its share of the
 * node's mapping from the node mapping file (nodemap.c), which the helper
 * wrote when the node's first task asked it to map (maprequest.c); then
 * it binds, checks and exports with the steps the Slurm plugin shares
 * (bind.c, export.c, applied.c).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "applied.h"
#include "bind.h"
#include "cpuset.h"
#include "export.h"
#include "inputs.h"
#include "launcher.h"
#include "machine.h"
#include "maprequest.h"
#include "mb_text.h"
#include "mpibind_auto_task.h"
#include "nodemap.h"
#include "openmp.h"
#include "reexec.h"
#include "strdupf.h"
#include "trace.h"
#include "tuning.h"

/* Reports a problem (printed by the node's task 0, or by every task when
 * the task number is unknown) and gives the return value of the contract. */
static int problem(const struct mpibind_auto_tuning *t, int local,
                   const char *msg) {
  if (local <= 0) {
    /* msg echoes the user's values: one line whatever they hold */
    char *esc = mb_escape(msg);
    fprintf(stderr, "mpibind: %s; %s\n", esc ? esc : "out of memory",
            t->strict ? "strict: failing the launch"
                      : "running unbound");
    free(esc);
  }
  /* The task's processes (a shell script's commands, a program's
   * children) inherit the preload: MPIBIND_APPLIED=0 tells them this task
   * was handled, so that the line is not repeated by each of them. */
  if (!t->strict)
    mpibind_auto_applied_mark(0);
  return t->strict ? -1 : 1;
}

/* ---- One application, step by step ----------------------------------- */

/* A variable as it was before the task's exports (undo_exports). */
struct saved_var {
  char *name;
  char *value; /* NULL: it was unset */
};

/* Everything one application of a task carries from step to step. */
struct task_run {
  struct mpibind_auto_tuning *t;
  int local, count;       /* node-local task number and count */
  const char *source;     /* variable that gave them; NULL: no launcher */
  long launcher;          /* the launcher's process: the task's parent
                             (torchrun's agent for its workers); 0: none */
  int at_load;            /* from the preload's constructor: may re-exec */
  int argc;               /* at load: the arguments glibc gave the */
  char **argv;            /* preload's constructor (reexec.h) */
  struct mpibind_auto_inputs in; /* what the node's mapping depends on */
  int how;                /* MPIBIND_TOPO_* */
  int omp_exports;        /* OMP_PLACES/OMP_PROC_BIND may be exported */
  int omp;                /* at load, an OpenMP runtime is loaded */
  struct mpibind_auto_cpuset before; /* with omp: the CPUs before binding */
  int bound;              /* the kernel's mask was checked after binding */
  char *gpu_what;         /* per-task GPU lists (verbose) */
  char *mem_what;         /* memory binding (verbose) */
  struct mpibind_auto_share share; /* the task's share of the mapping */
  struct mpibind_auto_cpuset task_set; /* share.cpus as a set (not with
                                          dryrun: nothing is bound) */
  struct saved_var *saved; /* the variables as they were before exports */
  int nsaved;
  char *msg;              /* the problem, if any */
  const char *stale;      /* why the OpenMP runtime is stale, or NULL */
  int outside;            /* its places hold CPUs outside the task's */
};

static int want_report(const struct task_run *r) {
  return r->local == 0 && (r->t->verbose || r->t->dryrun);
}

/* Prints a line of the node's task 0 (escaped: it may quote a user's
 * value). */
static void say(const struct task_run *r, const char *line) {
  char *esc;
  if (r->local != 0 || line == NULL)
    return;
  esc = mb_escape(line);
  fprintf(stderr, "mpibind: %s\n", esc ? esc : "out of memory");
  free(esc);
}

/* Steps 1 to 3: the inputs (the tuning, the node's GPU allocation, the
 * job's CPUs as a key), then the task's share of the node's mapping, from
 * the node mapping file or mapped by the helper for the node (and why the
 * cache could not serve the node, when it could not). */
static int find_share(struct task_run *r) {
  int rc;
  if (mpibind_auto_inputs_init(&r->in, r->t, r->count, r->source,
                               r->launcher) ||
      mpibind_auto_inputs_of_task(&r->in, r->local) != 0) {
    r->msg = mpibind_auto_strdupf("the task's inputs: out of memory");
    return -1;
  }
  rc = mpibind_auto_node_share(&r->in, r->local, want_report(r),
                               mpibind_auto_map_in_helper, NULL, &r->share,
                               &r->how, &r->gpu_what, &r->msg);
  say(r, r->share.note);
  return rc;
}

/* The task's CPUs as a set, from its share (read within the node's CPUs:
 * nodemap_read.c).  With dryrun nothing is bound, and a preview of
 * another node's file may name CPUs this one lacks: no set. */
static int take_share(struct task_run *r) {
  if (r->share.cpus == NULL ||
      (!r->t->dryrun &&
       mpibind_auto_cpuset_parse_list(&r->task_set, r->share.cpus) != 0)) {
    r->msg = mpibind_auto_strdupf("task %d's CPUs '%s' cannot be read",
                                  r->local,
                                  r->share.cpus ? r->share.cpus : "");
    return -1;
  }
  return 0;
}

/* Step 4: the verbose report, by the node's task 0: the node's (the job's
 * CPUs first, then this task's GPU lists, then the mapping). */
static void report(struct task_run *r) {
  static const char job[] = MPIBIND_AUTO_NODEMAP_JOB_LINE;
  const char *rep = r->share.report ? r->share.report : "";
  size_t first = 0;
  if (!want_report(r))
    return;
  if (strncmp(rep, job, sizeof job - 1) == 0)
    first = strcspn(rep, "\n") + (strchr(rep, '\n') ? 1 : 0);
  fwrite(rep, 1, first, stderr);
  if (r->gpu_what)
    fprintf(stderr, "mpibind: %s\n", r->gpu_what);
  fputs(rep + first, stderr);
}

/* Step 5: bind (without a topology), checked against the kernel's mask so
 * that bound=1 in the trace never claims a binding the kernel does not
 * have; memory too with `membind`.  Under dryrun nothing is bound
 * (bound=0), and the task is still mapped and exported: MPIBIND_APPLIED=1
 * says that much, not that its CPUs were bound.  A failure gives the CPUs
 * back (mpibind_auto_bind): the task runs as it was, unbound by mpibind. */
static int bind_task(struct task_run *r) {
  if (r->t->dryrun)
    return 0;
  /* a stale OpenMP runtime may make the task give its binding up
   * (start_again): what it had before is kept */
  r->omp = r->at_load && mpibind_auto_omp_loaded() &&
           mpibind_auto_cpuset_get_affinity(0, &r->before) == 0;
  if (mpibind_auto_bind(r->t, r->local, &r->share, &r->mem_what, &r->msg) != 0)
    return -1;
  r->bound = 1;
  return 0;
}

/* The process's setter.  Where an OpenMP runtime may make the task give
 * its exports up (start_again), it remembers each variable as it was. */
static int set_process_env(const char *name, const char *value,
                           int overwrite, void *ctx) {
  struct task_run *r = ctx;
  const char *old = getenv(name);
  struct saved_var *more;
  if (!r->omp)
    return setenv(name, value, overwrite);
  if (old != NULL && !overwrite)
    return 0; /* stays as it is */
  more = realloc(r->saved, (size_t)(r->nsaved + 1) * sizeof *more);
  if (more == NULL)
    return -1;
  r->saved = more;
  more[r->nsaved].name = strdup(name);
  more[r->nsaved].value = old ? strdup(old) : NULL;
  if (more[r->nsaved].name == NULL || (old && more[r->nsaved].value == NULL)) {
    free(more[r->nsaved].name);
    free(more[r->nsaved].value);
    return -1;
  }
  r->nsaved++;
  return setenv(name, value, overwrite);
}

/* The variables as they were before export_task, last change first. */
static void undo_exports(struct task_run *r) {
  while (r->nsaved > 0) {
    struct saved_var *v = &r->saved[--r->nsaved];
    if (v->value)
      setenv(v->name, v->value, 1);
    else
      unsetenv(v->name);
    free(v->name);
    free(v->value);
  }
}

/* Step 6: the task's variables (docs/algorithm.md step 6). */
static void export_task(struct task_run *r) {
  mpibind_auto_export(r->t, &r->share, r->local, r->omp_exports,
                      set_process_env, r);
}

/* Step 7: an OpenMP runtime already loaded.  Stale at load (it read
 * OMP_* before this ran): start_again; otherwise tell it the thread count
 * directly. */
static void update_openmp(struct task_run *r) {
  if (r->omp)
    r->stale = mpibind_auto_omp_stale(&r->task_set, &r->outside);
  if (!r->stale && r->t->nthreads < 0 && r->share.nthreads > 0)
    mpibind_auto_omp_set_num_threads(r->share.nthreads);
}

/* Step 7, stale runtime: the program started again (reexec.c), which
 * returns only when it could not be (near the argument-size limit, its
 * arguments written over, setuid, ld.so, valgrind).  Then one line from
 * the node's task 0, and the task's threads kept within its CPUs: when
 * the runtime's places hold other CPUs, its threads would be bound there,
 * so the task gives its binding up: -1 with r->msg (it runs unbound, as
 * it started, where the runtime's places came from); otherwise they stay
 * inside (unbound threads inherit the task's CPUs, places lie within
 * them) and are told the thread count: 0. */
static int start_again(struct task_run *r) {
  char *why = NULL, *line;
  if (r->t->verbose && r->local == 0)
    fprintf(stderr, "mpibind: the program's OpenMP runtime read OMP_* "
                    "before mpibind ran (%s): starting the program again\n",
            r->stale);
  line = mpibind_auto_trace_line(r->local, r->count, r->how, r->bound,
                                 r->share.cpus);
  mpibind_auto_reexec(r->argc, r->argv, r->local, line, &why);
  free(line);
  if (r->outside) {
    r->msg = mpibind_auto_strdupf(
        "cannot start the program again for its OpenMP runtime, which read "
        "OMP_* before mpibind ran (%s): %s; its threads would run on CPUs "
        "outside task %d's",
        r->stale, why ? why : "out of memory", r->local);
    free(why);
    return -1;
  }
  line = mpibind_auto_strdupf(
      "cannot start the program again for its OpenMP runtime, which read "
      "OMP_* before mpibind ran (%s): %s; its threads stay within task %d's "
      "CPUs, placed as the runtime read OMP_* at start",
      r->stale, why ? why : "out of memory", r->local);
  say(r, line);
  free(line);
  free(why);
  if (r->t->nthreads < 0 && r->share.nthreads > 0)
    mpibind_auto_omp_set_num_threads(r->share.nthreads);
  return 0;
}

/* Step 8: MPIBIND=draw:PATH, the node's task 0 has the helper draw the
 * node's mapping (after the task is applied: a picture is a by-product,
 * its failure one warning). */
static void draw(struct task_run *r) {
  char *warning;
  if (r->t->draw == NULL || r->local != 0)
    return;
  warning = mpibind_auto_draw_in_helper(&r->in, r->t->draw);
  if (warning)
    fprintf(stderr, "%s\n", warning);
  free(warning);
}

static void run_free(struct task_run *r) {
  free(r->msg);
  free(r->gpu_what);
  free(r->mem_what);
  mpibind_auto_share_free(&r->share);
  mpibind_auto_cpuset_free(&r->task_set);
  mpibind_auto_cpuset_free(&r->before);
  mpibind_auto_inputs_free(&r->in);
  for (int i = 0; i < r->nsaved; i++) {
    free(r->saved[i].name);
    free(r->saved[i].value);
  }
  free(r->saved);
}

/* The launcher's binding kept: the job's CPUs here are unknown. */
static int keep_launcher_binding(struct task_run *r) {
  if (want_report(r))
    fprintf(stderr, "mpibind: %s; keeping the launcher's binding\n",
            r->share.keep);
  mpibind_auto_applied_mark(0);
  mpibind_auto_trace(r->local, r->count, r->how, 0, "");
  run_free(r);
  return 0;
}

static int apply_task(struct task_run *r) {
  struct mpibind_auto_tuning *t = r->t;
  int rc = 0;

  if (t->help && r->local == 0)
    fputs(mpibind_auto_help_text, stderr);
  if (t->error)
    return problem(t, r->local, t->error);
  /* the launcher's process is the task's parent; the wrapper run alone
   * has none */
  r->launcher = r->source ? (long)getppid() : 0;
  mpibind_auto_tuning_of_task(t, r->source, r->launcher, 0);
  r->omp_exports = mpibind_auto_omp_exports(t);

  if (find_share(r) != 0)
    goto fail;
  if (r->share.keep)
    return keep_launcher_binding(r);
  if (take_share(r) != 0)
    goto fail;
  report(r);
  if (bind_task(r) != 0)
    goto fail;
  if (r->mem_what && t->verbose && r->local == 0)
    fprintf(stderr, "mpibind: %s\n", r->mem_what);
  export_task(r);
  update_openmp(r);
  mpibind_auto_applied_mark(1);
  /* before a restart: the new image does not apply again */
  draw(r);
  if (r->stale && start_again(r) != 0) {
    mpibind_auto_unbind(t, &r->before, &r->msg);
    undo_exports(r);
    r->bound = 0;
    goto fail;
  }
  mpibind_auto_trace(r->local, r->count, r->how, r->bound, r->share.cpus);
  run_free(r);
  return 0;

fail:
  rc = problem(t, r->local, r->msg);
  mpibind_auto_trace(r->local, r->count, r->how, 0, r->share.cpus);
  run_free(r);
  return rc;
}

/* Reads the tuning and runs apply_task; 0 without doing anything when the
 * task was handled before (mpibind_auto_applied_check: `extra` names the
 * task when its number came from elsewhere than the launcher's variables,
 * explicit_request is the wrapper's) or MPIBIND has `off`. */
static int apply_with_tuning(struct task_run *r, const char *extra,
                             int explicit_request) {
  struct mpibind_auto_tuning t;
  int rc = 0;
  /* `off` first: a process switched off touches as little as it can
   * (every page of code a process faults in is a cost; this one runs in
   * every process of a job) */
  mpibind_auto_tuning_read(&t);
  if (!t.off && !mpibind_auto_applied_check(extra, explicit_request)) {
    r->t = &t;
    rc = apply_task(r);
  }
  mpibind_auto_tuning_free(&t);
  return rc;
}

int mpibind_auto_apply_task(int local, int count, const char *source) {
  struct task_run r = {0};
  char task[64];
  /* the task number came from the communicator, not from variables */
  snprintf(task, sizeof task, "%s %d/%d", source ? source : "", local, count);
  r.local = local;
  r.count = count;
  r.source = source;
  return apply_with_tuning(&r, task, 0);
}

/* Launcher variables that contradict each other (lerr says how, freed
 * here): the contract's value, the problem reported.  The task number is
 * unknown: every task that sees the contradiction reports it, once (the
 * mark then carries the key of the task's variables, so that its
 * processes do not repeat it). */
static int contradiction(int standalone, char *lerr) {
  struct mpibind_auto_tuning t;
  int rc;
  mpibind_auto_tuning_read(&t);
  rc = t.off || mpibind_auto_applied_check(NULL, standalone)
           ? 0
           : problem(&t, -1, lerr);
  mpibind_auto_tuning_free(&t);
  free(lerr);
  return rc;
}

/* The launcher's variables; returns 0 (found, or standalone), 1 (nothing to
 * do) or the contract's value of a reported contradiction in *rc. */
static int detect(struct task_run *r, int standalone, int *rc) {
  char *lerr = NULL;
  int found = mpibind_auto_launcher_detect(&r->local, &r->count, &r->source,
                                           &lerr);
  if (found < 0) {
    *rc = contradiction(standalone, lerr);
    return 1;
  }
  if (found == 0) {
    if (!standalone) {
      *rc = 0;
      return 1;
    }
    r->local = 0;
    r->count = 1;
    r->source = NULL;
  }
  return 0;
}

int mpibind_auto_apply(int standalone) {
  struct task_run r = {0};
  int rc = 0;
  /* standalone is the wrapper: its options are an explicit request */
  if (detect(&r, standalone, &rc))
    return rc;
  return apply_with_tuning(&r, NULL, standalone);
}

int mpibind_auto_apply_at_load(int argc, char **argv) {
  struct task_run r = {0};
  char *lerr = NULL;
  int found;
  /* switched off: nothing to detect (what apply_with_tuning would find
   * after it, for every process of a job script that says MPIBIND=off) */
  if (mpibind_auto_tuning_plainly_off())
    return 0;
  /* one look at the launcher's variables (each a scan of the
   * environment, in every process of a job) */
  found = mpibind_auto_launcher_detect(&r.local, &r.count, &r.source,
                                       &lerr);
  if (found == 0) {
    free(lerr);
    return MPIBIND_AUTO_NOT_A_TASK;
  }
  /* torchrun's agent inside a launch (srun, mpirun) carries that launch's
   * task variables but is a launcher: its workers are the tasks, and
   * they share what the launch gave it.  Its command line is read only
   * here, in a process with task variables. */
  if (mpibind_auto_torch_agent_here()) {
    free(lerr);
    return 0;
  }
  if (found < 0)
    return contradiction(0, lerr);
  r.at_load = 1;
  r.argc = argc;
  r.argv = argv;
  return apply_with_tuning(&r, NULL, 0);
}
