/*
 * autobind.c - the automatic binding of one launched task (see autobind.h
 * for the contract).
 *
 * Why the order below: a problem must leave the process exactly as it
 * was, so everything that can fail (tuning, topology, mapping, binding)
 * happens before anything is exported.  Messages are printed by the
 * node's local task 0 only, since every task of a node sees the same
 * tuning and would print the same line.
 *
 * The steps the Slurm plugin also runs (configure, topology, compute,
 * report, bind, export, and applied.c's mark: autobind-internal.h) read their variables through
 * the tuning, so that the plugin, in slurmstepd, reads the job's
 * environment and sets the task's through its own callbacks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autobind-internal.h"
#include "autobind.h"
#include "mb_parse.h"

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

/* MPIBIND_TRACE: one line per applying process, one write(2) with
 * O_APPEND so that concurrent tasks never interleave. */
static void trace(int local, int count, int how, int bound, const char *cpus) {
  static const char *const hows[] = {"none", "discovered", "cache", "file"};
  const char *path = getenv("MPIBIND_TRACE");
  char host[HOST_NAME_MAX + 1];
  char *line;
  int fd;
  if (path == NULL || path[0] == '\0')
    return;
  if (gethostname(host, sizeof host) != 0)
    strcpy(host, "?");
  host[sizeof host - 1] = '\0';
  line = mpibind_auto_strdupf(
      "host=%s pid=%ld task=%d/%d topology=%s bound=%d cpus=%s\n", host,
      (long)getpid(), local, count,
      hows[how >= 0 && how <= MPIBIND_TOPO_FILE ? how : 0], bound,
      cpus ? cpus : "");
  if (line == NULL)
    return;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
  }
  free(line);
}

/* "MPIBIND='..' MPIBIND_RESTRICT='..' ..." for the tuning actually given,
 * so that a mapping failure names the values it came from. */
static char *tuning_context(const struct mpibind_auto_tuning *t) {
  static const char *const names[] = {"MPIBIND", "MPIBIND_RESTRICT",
                                      "MPIBIND_RESTRICT_TYPE",
                                      "MPIBIND_TOPOFILE", "OMP_NUM_THREADS"};
  char *s = strdup("");
  for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
    const char *v = mpibind_auto_getenv(t, names[i]);
    if (v == NULL)
      continue;
    char *n = mpibind_auto_strdupf("%s%s%s='%s'", s, *s ? " " : "", names[i],
                                   v);
    free(s);
    s = n;
  }
  return s;
}

void mpibind_auto_report(mpibind_t *h) {
  int n = mpibind_mapping_snprint(NULL, 0, h);
  char *buf;
  fprintf(stderr, "mpibind: %d GPUs on this node\n", mpibind_get_num_gpus(h));
  if (n < 0)
    return;
  buf = malloc((size_t)n + 1);
  if (buf == NULL)
    return;
  if (mpibind_mapping_snprint(buf, n + 1, h) >= 0)
    fputs(buf, stderr);
  free(buf);
}

/* ---- One application, step by step ----------------------------------- */

/* Everything one application of a task carries from step to step. */
struct task_run {
  struct mpibind_auto_tuning *t;
  int local, count;       /* node-local task number and count */
  const char *source;     /* variable that gave them; NULL: no launcher */
  int at_load;            /* from the preload's constructor: may re-exec */
  mpibind_t *h;
  hwloc_topology_t owned; /* a topology to destroy after the handle */
  int how;                /* MPIBIND_TOPO_* */
  int slot;               /* the task of the node's mapping this one takes */
  int omp_exports;        /* OMP_PLACES/OMP_PROC_BIND may be exported */
  int bound;              /* the kernel's mask was checked after binding */
  int unknown_cpus;       /* the job's CPUs here are unknown: do not bind */
  char *job_what;         /* where the job's CPUs came from (verbose) */
  char *gpu_what;         /* per-task GPU lists (verbose) */
  char *mem_what;         /* memory binding (verbose) */
  char *cpus;             /* the task's CPUs as a list */
  char *msg;              /* the problem, if any */
  int restart;            /* out: re-exec for a stale OpenMP runtime */
  int nthreads_out;       /* out: the task's thread count */
  int t_nthreads_given;   /* out: the user gave OMP_NUM_THREADS */
  const char *stale;      /* why the runtime is stale */
};

/* The program that will run: the wrapper names it before its exec. */
static const char *program_name;

void mpibind_auto_set_program(const char *argv0) { program_name = argv0; }

/* An interpreter loads its OpenMP runtime late (numpy, scipy, torch, an
 * extension), and GNU libgomp then binds the thread that loads it, and
 * with it every later thread and child of the process, to the first place
 * (issue 7.2).  Python is recognized by its name or, in the process
 * itself, by its C API. */
static int is_interpreter(void) {
  const char *name = program_name ? program_name : program_invocation_name;
  const char *base = name ? strrchr(name, '/') : NULL;
  base = base ? base + 1 : name;
  if (base && (strncmp(base, "python", 6) == 0 || strncmp(base, "pypy", 4) == 0))
    return 1;
  return program_name == NULL && dlsym(RTLD_DEFAULT, "Py_Initialize") != NULL;
}

/* ---- The steps shared with the Slurm plugin -------------------------- */
/* Each reads its variables through the tuning (mpibind_auto_getenv), so
 * that the plugin, which runs in slurmstepd, reads the job's environment. */

/* The tuning and the task count as setters. */
static int set_tuning(const struct mpibind_auto_tuning *t, mpibind_t *h,
                      int count, char **msg) {
  const char *v = mpibind_auto_getenv(t, "MPIBIND");
  if (mpibind_set_ntasks(h, count) != 0) {
    *msg = mpibind_auto_strdupf("%d tasks on this node: %s", count,
                                mpibind_get_error(h));
    return -1;
  }
  if (t->nthreads > 0 && mpibind_set_nthreads(h, t->nthreads) != 0) {
    *msg = mpibind_auto_strdupf("OMP_NUM_THREADS='%s': %s",
                                mpibind_auto_getenv(t, "OMP_NUM_THREADS"),
                                mpibind_get_error(h));
    return -1;
  }
  if ((t->smt >= 0 && mpibind_set_smt(h, t->smt) != 0) ||
      (t->greedy >= 0 && mpibind_set_greedy(h, t->greedy) != 0) ||
      (t->gpu_optim >= 0 && mpibind_set_gpu_optim(h, t->gpu_optim) != 0)) {
    *msg = mpibind_auto_strdupf("MPIBIND='%s': %s", v ? v : "",
                                mpibind_get_error(h));
    return -1;
  }
  if (t->restrict_ids && mpibind_set_restrict_ids(h, t->restrict_ids) != 0) {
    *msg = mpibind_auto_strdupf("MPIBIND_RESTRICT='%s': %s", t->restrict_ids,
                                mpibind_get_error(h));
    return -1;
  }
  if (t->restrict_type >= 0 &&
      mpibind_set_restrict_type(h, t->restrict_type) != 0) {
    *msg = mpibind_auto_strdupf(
        "MPIBIND_RESTRICT_TYPE='%s': %s",
        mpibind_auto_getenv(t, "MPIBIND_RESTRICT_TYPE"), mpibind_get_error(h));
    return -1;
  }
  return 0;
}

int mpibind_auto_configure(const struct mpibind_auto_tuning *t, int count,
                           mpibind_t **hp, char **msg) {
  mpibind_t *h = NULL;
  *hp = NULL;
  if (mpibind_init(&h) != 0 || h == NULL) {
    *msg = mpibind_auto_strdupf("cannot create a handle: %s",
                                mpibind_get_error(h));
    return -1;
  }
  *hp = h;
  if (set_tuning(t, h, count, msg) != 0)
    return -1;
  /* A *_VISIBLE_DEVICES set at launch is the step's GPU allocation. */
  const char *var;
  for (int i = 0; (var = mpibind_get_gpu_var(i)) != NULL; i++) {
    const char *alloc = mpibind_auto_getenv(t, var);
    if (alloc != NULL && mpibind_set_gpu_allocation(h, var, alloc) != 0) {
      *msg = mpibind_auto_strdupf("%s='%s': %s", var, alloc,
                                  mpibind_get_error(h));
      return -1;
    }
  }
  return 0;
}

int mpibind_auto_no_unallocated_gpus(const struct mpibind_auto_tuning *t,
                                     mpibind_t *h, char **msg) {
  const char *var;
  for (int i = 0; (var = mpibind_get_gpu_var(i)) != NULL; i++) {
    if (mpibind_auto_getenv(t, var) == NULL &&
        mpibind_set_gpu_allocation(h, var, "") != 0) {
      *msg = mpibind_auto_strdupf("%s (no GPU allocated): %s", var,
                                  mpibind_get_error(h));
      return -1;
    }
  }
  return 0;
}

/* The one place the topology comes from: MPIBIND_TOPOFILE, or the
 * per-node cache (or a discovery). */
int mpibind_auto_load_topology(const struct mpibind_auto_tuning *t,
                               mpibind_t *h, int *how,
                               hwloc_topology_t *owned, char **msg) {
  const char *file = t->topofile;
  *how = MPIBIND_TOPO_NONE;
  *owned = NULL;
  if (file == NULL) {
    return mpibind_auto_topology(h, how, owned, msg);
  }
  {
    int restore, rc;
    mpibind_auto_plugins_off_begin(&restore);
    rc = mpibind_set_topology_file(h, file);
    mpibind_auto_plugins_off_end(restore);
    if (rc != 0) {
      *msg = mpibind_auto_strdupf("MPIBIND_TOPOFILE='%s': %s", file,
                                  mpibind_get_error(h));
      return -1;
    }
  }
  *how = MPIBIND_TOPO_FILE;
  /* dryrun only reports: a file of another node is how one previews a
   * GPU node's mapping */
  if (!t->dryrun && mpibind_topology_check_system(h) != 0) {
    *msg = mpibind_auto_strdupf(
        "MPIBIND_TOPOFILE='%s' does not describe this node: %s", file,
        mpibind_get_error(h));
    return -1;
  }
  return 0;
}

int mpibind_auto_compute(const struct mpibind_auto_tuning *t, mpibind_t *h,
                         int count, char **msg) {
  if (mpibind(h) != 0 || mpibind_set_env_vars(h) != 0) {
    char *ctx = tuning_context(t);
    *msg = mpibind_auto_strdupf("cannot map %d task%s on this node%s%s: %s",
                                count, count == 1 ? "" : "s",
                                ctx && *ctx ? " with " : "", ctx ? ctx : "",
                                mpibind_get_error(h));
    free(ctx);
    return -1;
  }
  return 0;
}

/* The task's memory on the NUMA node(s) of its CPUs (`membind`): strict
 * (MPOL_BIND: allocations come from those nodes only), for the calling
 * thread and the threads it starts later (Linux memory policies are per
 * thread and survive exec; at load, the process has one thread). */
static int bind_memory(mpibind_t *h, int local, hwloc_const_bitmap_t cpus,
                       char **what, char **msg) {
  hwloc_topology_t topo = mpibind_get_topology(h);
  hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
  char *list = NULL;
  int rc = -1;
  if (topo == NULL || nodes == NULL)
    goto out;
  hwloc_cpuset_to_nodeset(topo, cpus, nodes);
  hwloc_bitmap_list_asprintf(&list, nodes);
  if (hwloc_bitmap_iszero(nodes) ||
      hwloc_set_membind(topo, nodes, HWLOC_MEMBIND_BIND,
                        HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_STRICT) != 0) {
    *msg = mpibind_auto_strdupf("MPIBIND=membind: cannot bind task %d's "
                                "memory to NUMA node%s %s: %s",
                                local, hwloc_bitmap_weight(nodes) == 1 ? "" : "s",
                                list ? list : "?", strerror(errno));
    goto out;
  }
  free(*what);
  *what = mpibind_auto_strdupf("memory of task %d bound to NUMA node%s %s",
                               local, hwloc_bitmap_weight(nodes) == 1 ? "" : "s",
                               list ? list : "?");
  rc = 0;
out:
  free(list);
  hwloc_bitmap_free(nodes);
  return rc;
}

/* Binds, then checks that the kernel has the mask (issue 11.3: a topology
 * that is not this machine's makes hwloc succeed without binding
 * anything; bound=1 and MPIBIND_APPLIED=1 must not lie). */
int mpibind_auto_bind(const struct mpibind_auto_tuning *t, mpibind_t *h,
                      int local, int slot, char **mem_what, char **msg) {
  hwloc_bitmap_t *sets = mpibind_get_cpus(h);
  hwloc_bitmap_t got;
  char *cpus = NULL;
  int rc = -1;
  if (sets == NULL || sets[slot] == NULL) {
    *msg = mpibind_auto_strdupf("task %d has no CPUs in the mapping", local);
    return -1;
  }
  if (hwloc_bitmap_list_asprintf(&cpus, sets[slot]) < 0)
    cpus = NULL;
  if (mpibind_apply(h, slot) != 0) {
    *msg = mpibind_auto_strdupf("cannot bind task %d to CPUs %s: %s", local,
                                cpus ? cpus : "?", mpibind_get_error(h));
    free(cpus);
    return -1;
  }
  got = hwloc_bitmap_alloc();
  if (got == NULL || mpibind_auto_affinity(0, got) != 0 ||
      !hwloc_bitmap_isequal(got, sets[slot])) {
    char *g = NULL;
    if (got)
      hwloc_bitmap_list_asprintf(&g, got);
    *msg = mpibind_auto_strdupf(
        "task %d was bound to CPUs %s but the kernel reports CPUs %s", local,
        cpus ? cpus : "?", g ? g : "?");
    free(g);
  } else if (!t->membind ||
             bind_memory(h, local, sets[slot], mem_what, msg) == 0) {
    rc = 0;
  }
  hwloc_bitmap_free(got);
  free(cpus);
  return rc;
}

int mpibind_auto_omp_exports(const struct mpibind_auto_tuning *t) {
  return t->place_threads || !is_interpreter();
}

int mpibind_auto_export(const struct mpibind_auto_tuning *t, mpibind_t *h,
                        int local, int slot, int omp_exports,
                        mpibind_auto_setenv_f set, void *ctx) {
  int nnames = 0, has_cuda = 0, rc = 0;
  char **names = mpibind_get_env_var_names(h, &nnames);
  for (int i = 0; names && i < nnames; i++) {
    const char *name = names[i];
    char **vals;
    int keep = 0;
    if (strcmp(name, "OMP_NUM_THREADS") == 0) {
      keep = 1; /* the user's value was the nthreads input */
    } else if (strcmp(name, "OMP_PLACES") == 0) {
      if (t->no_omp_places || !omp_exports)
        continue;
      keep = 1;
    } else if (strcmp(name, "OMP_PROC_BIND") == 0) {
      if (t->no_omp_proc_bind || !omp_exports)
        continue;
      keep = 1;
    } else if (mpibind_auto_gpu_var_index(name) >= 0) {
      if (t->no_visible_devices)
        continue;
      if (strcmp(name, "CUDA_VISIBLE_DEVICES") == 0)
        has_cuda = 1;
      /* a per-task list given at launch is the task's own: kept */
      keep = slot != local || mpibind_auto_gpu_per_task(name);
    }
    vals = mpibind_get_env_var_values(h, name);
    /* A value the task has and must keep (keep) is not overwritten. */
    if (vals && vals[slot] &&
        (!keep || mpibind_auto_getenv(t, name) == NULL) &&
        set(name, vals[slot], 1, ctx) != 0)
      rc = -1;
  }
  /* CUDA numbers devices fastest first unless told otherwise; the
   * visible indexes mpibind writes follow the PCI bus order. */
  if (has_cuda && mpibind_auto_getenv(t, "CUDA_DEVICE_ORDER") == NULL &&
      set("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 1, ctx) != 0)
    rc = -1;
  return rc;
}

/* ---- The preload's application of one task, step by step ------------- */

/* Step 1: the tuning, the task count and the GPU allocation as setters
 * (per-task GPU lists recognized: gpualloc.c). */
static int set_inputs(struct task_run *r) {
  if (mpibind_init(&r->h) != 0 || r->h == NULL) {
    r->msg = mpibind_auto_strdupf("cannot create a handle: %s",
                                  mpibind_get_error(r->h));
    return -1;
  }
  if (set_tuning(r->t, r->h, r->count, &r->msg) != 0)
    return -1;
  return mpibind_auto_gpu_inputs(r->h, r->source, r->local, r->count, &r->msg);
}

/* Step 2: the topology. */
static int topology_source(struct task_run *r) {
  return mpibind_auto_load_topology(r->t, r->h, &r->how, &r->owned, &r->msg);
}

/* Step 3: the CPUs the launch gave the job on this node (issue 7.4).  Only
 * for a topology of this machine: a dryrun on another node's file maps
 * that node whole. */
static int limit_to_job(struct task_run *r) {
  hwloc_topology_t topo = mpibind_get_topology(r->h);
  hwloc_bitmap_t cpus;
  int rc;
  if (topo == NULL || (r->how == MPIBIND_TOPO_FILE &&
                       mpibind_topology_check_system(r->h) != 0))
    return 0;
  cpus = hwloc_bitmap_alloc();
  if (cpus == NULL)
    return 0;
  rc = mpibind_auto_job_cpus(r->source, hwloc_topology_get_topology_cpuset(topo),
                             cpus, &r->job_what);
  if (rc < 0) {
    r->unknown_cpus = 1;
  } else if (rc > 0) {
    char *list = NULL;
    if (mpibind_set_job_cpus(r->h, cpus) != 0) {
      r->msg = mpibind_auto_strdupf("the job's CPUs: %s", mpibind_get_error(r->h));
      hwloc_bitmap_free(cpus);
      return -1;
    }
    if (hwloc_bitmap_list_asprintf(&list, cpus) >= 0) {
      char *w = mpibind_auto_strdupf("mapping within CPUs %s: %s", list,
                                     r->job_what ? r->job_what : "");
      free(r->job_what);
      r->job_what = w;
      free(list);
    }
  }
  hwloc_bitmap_free(cpus);
  return 0;
}

/* Step 4: the node's mapping, and the task's share of it. */
static int map_node(struct task_run *r) {
  mpibind_t *h = r->h;
  hwloc_bitmap_t *sets;
  /* smt above the node's hardware threads per core is the library's
   * rule (mpibind() refuses it, and tuning_context names MPIBIND). */
  if (mpibind_auto_compute(r->t, h, r->count, &r->msg) != 0)
    return -1;
  if (mpibind_auto_gpu_slot(h, r->local, &r->slot, &r->gpu_what) != 0) {
    r->msg = mpibind_auto_strdupf("cannot map %d tasks on this node: %s",
                                  r->count, mpibind_get_error(h));
    return -1;
  }
  sets = mpibind_get_cpus(h);
  if (sets && sets[r->slot] &&
      hwloc_bitmap_list_asprintf(&r->cpus, sets[r->slot]) < 0)
    r->cpus = NULL;
  return 0;
}

/* Step 5: the verbose report, by the node's task 0. */
static void report(struct task_run *r) {
  if (r->local != 0 || !(r->t->verbose || r->t->dryrun))
    return;
  if (r->job_what)
    fprintf(stderr, "mpibind: %s\n", r->job_what);
  if (r->gpu_what)
    fprintf(stderr, "mpibind: %s\n", r->gpu_what);
  mpibind_auto_report(r->h);
}

/* Step 6: bind (checked against the kernel's mask; memory too with
 * `membind`). */
static int bind_task(struct task_run *r) {
  if (r->t->dryrun)
    return 0;
  if (mpibind_auto_bind(r->t, r->h, r->local, r->slot, &r->mem_what,
                        &r->msg) != 0)
    return -1;
  r->bound = 1;
  return 0;
}

static int set_process_env(const char *name, const char *value,
                           int overwrite, void *ctx) {
  (void)ctx;
  return setenv(name, value, overwrite);
}

/* Step 7: the task's variables (docs/algorithm.md step 6). */
static void export_task(struct task_run *r) {
  mpibind_auto_export(r->t, r->h, r->local, r->slot, r->omp_exports,
                      set_process_env, NULL);
}

/* Step 8: an OpenMP runtime already loaded.  Stale (it read OMP_* before
 * this ran): from the constructor, ask for a re-exec; otherwise tell it
 * the thread count directly. */
static void update_openmp(struct task_run *r) {
  int *nths = mpibind_get_nthreads(r->h);
  r->nthreads_out = nths ? nths[r->slot] : 0;
  if (!r->t->dryrun && r->at_load && mpibind_auto_omp_loaded() &&
      mpibind_auto_reexec_possible()) {
    hwloc_bitmap_t *sets = mpibind_get_cpus(r->h);
    r->stale = mpibind_auto_omp_stale(sets[r->slot]);
    if (r->stale) {
      r->restart = 1;
      return;
    }
  }
  if (r->t->nthreads < 0 && nths)
    mpibind_auto_omp_set_num_threads(nths[r->slot]);
}

static void run_free(struct task_run *r) {
  free(r->msg);
  free(r->cpus);
  free(r->job_what);
  free(r->gpu_what);
  free(r->mem_what);
  if (r->h)
    mpibind_finalize(r->h);
  if (r->owned)
    hwloc_topology_destroy(r->owned);
}

static int apply_task(struct task_run *r) {
  struct mpibind_auto_tuning *t = r->t;
  int rc = 0;

  if (t->help && r->local == 0)
    fputs(mpibind_auto_help_text, stderr);
  if (t->error)
    return problem(t, r->local, t->error);
  r->slot = r->local;
  r->t_nthreads_given = t->nthreads > 0;
  r->omp_exports = mpibind_auto_omp_exports(t);

  if (set_inputs(r) != 0 || topology_source(r) != 0 || limit_to_job(r) != 0)
    goto fail;
  if (r->unknown_cpus) {
    /* keep the launcher's binding: nothing is bound or exported */
    if (r->local == 0 && (t->verbose || t->dryrun))
      fprintf(stderr, "mpibind: %s; keeping the launcher's binding\n",
              r->job_what ? r->job_what : "the job's CPUs here are unknown");
    mpibind_auto_applied_mark(0);
    trace(r->local, r->count, r->how, 0, "");
    run_free(r);
    return 0;
  }
  if (map_node(r) != 0)
    goto fail;
  report(r);
  if (bind_task(r) != 0)
    goto fail;
  if (r->mem_what && t->verbose && r->local == 0)
    fprintf(stderr, "mpibind: %s\n", r->mem_what);
  export_task(r);
  update_openmp(r);
  if (r->restart && t->verbose && r->local == 0)
    fprintf(stderr, "mpibind: the program's OpenMP runtime read OMP_* "
                    "before mpibind ran (%s): starting the program again\n",
            r->stale);
  mpibind_auto_applied_mark(1);
  trace(r->local, r->count, r->how, r->bound, r->cpus);
  /* a restart draws in the program's second start */
  if (t->draw && r->local == 0 && !r->restart)
    mpibind_auto_draw(r->h, t->draw);
  run_free(r);
  return 0;

fail:
  rc = problem(t, r->local, r->msg);
  trace(r->local, r->count, r->how, 0, r->cpus);
  r->restart = 0;
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
  int rc;
  if (mpibind_auto_applied_check(extra, explicit_request))
    return 0;
  mpibind_auto_tuning_read(&t);
  if (t.off) {
    mpibind_auto_tuning_free(&t);
    return 0;
  }
  r->t = &t;
  rc = apply_task(r);
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

/* The launcher's variables; returns 0 (found, or standalone), 1 (nothing to
 * do) or the contract's value of a reported contradiction in *rc. */
static int detect(struct task_run *r, int standalone, int *rc) {
  char *lerr = NULL;
  int found = mpibind_auto_launcher_detect(&r->local, &r->count, &r->source,
                                           &lerr);
  if (found < 0) {
    struct mpibind_auto_tuning t;
    mpibind_auto_tuning_read(&t);
    /* The task number is unknown: every task that sees the
     * contradiction reports it. */
    *rc = t.off ? 0 : problem(&t, -1, lerr);
    mpibind_auto_tuning_free(&t);
    free(lerr);
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

int mpibind_auto_apply_at_load(int *restart, int *nthreads) {
  struct task_run r = {0};
  int rc = 0;
  *restart = 0;
  *nthreads = 0;
  if (detect(&r, 0, &rc))
    return rc;
  r.at_load = 1;
  rc = apply_with_tuning(&r, NULL, 0);
  *restart = r.restart;
  *nthreads = r.t_nthreads_given ? 0 : r.nthreads_out;
  return rc;
}
