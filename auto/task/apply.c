/*
 * autobind.c - the automatic binding of one launched task (see mpibind_auto.h
 * for the contract).
 *
 * Why the order below: a problem must leave the process exactly as it
 * was, so everything that can fail (tuning, topology, mapping, binding)
 * happens before anything is exported.  Messages are printed by the
 * node's local task 0 only, since every task of a node sees the same
 * tuning and would print the same line.
 *
 * The steps the Slurm plugin also runs (configure, compute, bind, export,
 * and applied.c's mark: mpibind_auto_internal.h) read their variables through
 * the tuning, so that the plugin, in slurmstepd, reads the job's
 * environment and sets the task's through its own callbacks; the
 * topology comes to both from topocache.c (mpibind_auto_topology).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"
#include "mpibind_auto.h"
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
  /* O_NONBLOCK: a FIFO there must not hang the task; only a regular file
   * is written to. */
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
      ssize_t w = write(fd, line, strlen(line));
      (void)w;
    } else if (local <= 0) {
      fprintf(stderr, "mpibind: MPIBIND_TRACE='%s' is not a regular file: "
                      "no trace written\n", path);
    }
    close(fd);
  } else if (local <= 0 && errno == ENXIO) {
    fprintf(stderr, "mpibind: MPIBIND_TRACE='%s' is a FIFO without a "
                    "reader: no trace written\n", path);
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

/* ---- One application, step by step ----------------------------------- */

/* Everything one application of a task carries from step to step. */
struct task_run {
  struct mpibind_auto_tuning *t;
  int local, count;       /* node-local task number and count */
  const char *source;     /* variable that gave them; NULL: no launcher */
  int at_load;            /* from the preload's constructor: may re-exec */
  mpibind_t *h;
  int how;                /* MPIBIND_TOPO_* */
  int topo_tried;         /* topology_source ran (its result in how/msg) */
  int slot;               /* the task of the node's mapping this one takes */
  int omp_exports;        /* OMP_PLACES/OMP_PROC_BIND may be exported */
  int bound;              /* the kernel's mask was checked after binding */
  int unknown_cpus;       /* the job's CPUs here are unknown: do not bind */
  char *job_key;          /* the job's CPUs as an input of the node's file */
  char *job_what;         /* where the job's CPUs came from (verbose) */
  char *gpu_what;         /* per-task GPU lists (verbose) */
  char *mem_what;         /* memory binding (verbose) */
  struct mpibind_auto_share share; /* the task's share of the mapping */
  hwloc_bitmap_t task_set; /* share.cpus as a set */
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
 * with it every later thread and child of the process, to the first place:
 * an interpreter gets no OMP_PLACES/OMP_PROC_BIND unless MPIBIND asks for
 * them (place_threads).  Python is recognized by its name or, in the
 * process itself, by its C API. */
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
  const char *var;
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

/* The task's memory on the NUMA node(s) `nodes` of its CPUs (`membind`):
 * strict (MPOL_BIND: allocations come from those nodes only), for the
 * calling thread and the threads it starts later (Linux memory policies
 * are per thread and survive exec; at load, the process has one thread).
 * The nodes come with the task's share (nodemap.c), so a task that read
 * its record binds its memory without a topology too. */
static int bind_memory(int local, const char *nodes, char **what,
                       char **msg) {
  int many = nodes && strpbrk(nodes, ",-") != NULL;
  char *why = NULL;
  if (mpibind_auto_bind_memory(nodes, &why) != 0) {
    *msg = mpibind_auto_strdupf("MPIBIND=membind: cannot bind task %d's "
                                "memory to NUMA node%s %s: %s",
                                local, many ? "s" : "",
                                nodes ? nodes : "(none)",
                                why ? why : "out of memory");
    free(why);
    return -1;
  }
  free(*what);
  *what = mpibind_auto_strdupf("memory of task %d bound to NUMA node%s %s",
                               local, many ? "s" : "", nodes);
  return 0;
}

/* The kernel's mask of the calling thread equals the share's CPUs, so
 * that bound=1 and MPIBIND_APPLIED=1 never claim a binding the kernel
 * does not have (a topology of another machine makes hwloc succeed
 * without binding anything).  0, or -1 with *msg. */
static int check_kernel_mask(int local, const char *cpus, char **msg) {
  hwloc_bitmap_t want = hwloc_bitmap_alloc(), got = hwloc_bitmap_alloc();
  int rc = -1;
  if (want != NULL && got != NULL &&
      hwloc_bitmap_list_sscanf(want, cpus) == 0 &&
      mpibind_auto_affinity(0, got) == 0 && hwloc_bitmap_isequal(got, want)) {
    rc = 0;
  } else {
    char *g = NULL;
    if (got)
      hwloc_bitmap_list_asprintf(&g, got);
    *msg = mpibind_auto_strdupf(
        "task %d was bound to CPUs %s but the kernel reports CPUs %s", local,
        cpus, g ? g : "?");
    free(g);
  }
  hwloc_bitmap_free(want);
  hwloc_bitmap_free(got);
  return rc;
}

/* The calling thread's CPUs as a list (malloc'ed), or NULL with *msg. */
static char *current_cpus(int local, char **msg) {
  hwloc_bitmap_t got = hwloc_bitmap_alloc();
  char *list = NULL;
  if (got == NULL || mpibind_auto_affinity(0, got) != 0 ||
      hwloc_bitmap_list_asprintf(&list, got) < 0) {
    free(list);
    list = NULL;
    *msg = mpibind_auto_strdupf("cannot read task %d's CPUs before "
                                "binding it", local);
  }
  hwloc_bitmap_free(got);
  return list;
}

/* A failure after binding: the CPUs the task had before, given back so
 * that the report's "running unbound" is true (all threads get the
 * calling thread's former mask; at load there is one thread). */
static void unbind(mpibind_t *h, const char *before, char **msg) {
  char *m;
  if (mpibind_apply_cpus(h, before) == 0)
    return;
  m = mpibind_auto_strdupf("%s (and its former CPUs %s could not be "
                           "restored: %s)", *msg ? *msg : "out of memory",
                           before, mpibind_get_error(h));
  if (m) {
    free(*msg);
    *msg = m;
  }
}

/* Binds CPUs, checks the kernel's mask, binds memory: the steps that
 * unbind() undoes. */
static int bind_share(const struct mpibind_auto_tuning *t, mpibind_t *h,
                      int local, const struct mpibind_auto_share *s,
                      char **mem_what, char **msg) {
  if (mpibind_apply_cpus(h, s->cpus) != 0) {
    *msg = mpibind_auto_strdupf("cannot bind task %d to CPUs %s: %s", local,
                                s->cpus, mpibind_get_error(h));
    return -1; /* threads may have been bound before one was refused */
  }
  if (check_kernel_mask(local, s->cpus, msg) != 0)
    return -1;
  if (t->membind && bind_memory(local, s->mems, mem_what, msg) != 0)
    return -1;
  return 0;
}

int mpibind_auto_bind(const struct mpibind_auto_tuning *t, mpibind_t *h,
                      int local, const struct mpibind_auto_share *s,
                      char **mem_what, char **msg) {
  char *before = current_cpus(local, msg);
  int rc;
  if (before == NULL)
    return -1;
  rc = bind_share(t, h, local, s, mem_what, msg);
  if (rc != 0)
    unbind(h, before, msg);
  free(before);
  return rc;
}

int mpibind_auto_omp_exports(const struct mpibind_auto_tuning *t) {
  return t->place_threads || !is_interpreter();
}

/* Whether variable `name` of the share is exported (0: skipped), and
 * *keep: a value the task already has is kept. */
static int export_wanted(const struct mpibind_auto_tuning *t,
                         const char *name, int per_task_slot,
                         int omp_exports, int *keep) {
  *keep = 0;
  if (strcmp(name, "OMP_NUM_THREADS") == 0) {
    *keep = 1; /* the user's value was the nthreads input */
  } else if (strcmp(name, "OMP_PLACES") == 0) {
    if (t->no_omp_places || !omp_exports)
      return 0;
    *keep = 1;
  } else if (strcmp(name, "OMP_PROC_BIND") == 0) {
    if (t->no_omp_proc_bind || !omp_exports)
      return 0;
    *keep = 1;
  } else if (mpibind_auto_gpu_var_index(name) >= 0) {
    if (t->no_visible_devices)
      return 0;
    /* a per-task list given at launch is the task's own: kept */
    *keep = per_task_slot || mpibind_auto_gpu_per_task(name);
  }
  return 1;
}

int mpibind_auto_export(const struct mpibind_auto_tuning *t,
                        const struct mpibind_auto_share *s, int local,
                        int omp_exports, mpibind_auto_setenv_f set,
                        void *ctx) {
  int has_cuda = 0, rc = 0;
  for (int i = 0; i < s->nvars; i++) {
    const char *name = s->names[i];
    int keep;
    if (!export_wanted(t, name, s->slot != local, omp_exports, &keep))
      continue;
    if (strcmp(name, "CUDA_VISIBLE_DEVICES") == 0)
      has_cuda = 1;
    /* A value the task has and must keep (keep) is not overwritten. */
    if ((!keep || mpibind_auto_getenv(t, name) == NULL) &&
        set(name, s->values[i], 1, ctx) != 0)
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
  if (set_tuning(r->t, r->h, r->count, &r->msg) != 0)
    return -1;
  return mpibind_auto_gpu_inputs(r->h, r->source, r->local, r->count, &r->msg);
}

/* The kernel's online CPUs (no topology needed); NULL when unreadable. */
static hwloc_bitmap_t online_cpus(void) {
  FILE *f = fopen("/sys/devices/system/cpu/online", "re");
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  char *line = NULL;
  size_t cap = 0;
  int ok = f && set && getline(&line, &cap, f) > 0 &&
           hwloc_bitmap_list_sscanf(set, line) == 0 && !hwloc_bitmap_iszero(set);
  if (f)
    fclose(f);
  free(line);
  if (!ok) {
    hwloc_bitmap_free(set);
    return NULL;
  }
  return set;
}

/* Step 2: the job's CPUs on this node as an input of the node's mapping
 * file (without a topology: against the kernel's online CPUs; the mapping
 * itself limits the topology in limit_to_job).  Unknown CPUs send the task
 * down the full path, where limit_to_job decides with the topology. */
static int job_key(struct task_run *r) {
  hwloc_bitmap_t online = online_cpus();
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  char *list = NULL, *what = NULL;
  int rc = 0;
  if (online && cpus)
    rc = mpibind_auto_job_cpus(r->source, online, cpus, &what);
  else
    rc = -1; /* no key without them: the topology decides (full path) */
  if (rc < 0) {
    r->unknown_cpus = 1;
    r->job_what = what;
    what = NULL;
  }
  if (rc > 0 && hwloc_bitmap_list_asprintf(&list, cpus) >= 0)
    r->job_what = mpibind_auto_strdupf("mapping within CPUs %s: %s", list,
                                       what ? what : "");
  r->job_key = mpibind_auto_strdupf("job_cpus=%s\n",
                                    rc < 0 ? "(unknown)"
                                    : rc > 0 && list ? list : "(node)");
  free(list);
  free(what);
  hwloc_bitmap_free(cpus);
  hwloc_bitmap_free(online);
  return r->job_key ? 0 : -1;
}

/* Step 3: the topology, from MPIBIND_TOPOFILE or the per-node cache (or a
 * discovery in the helper).  The one place the topology comes from. */
static int topology_source(struct task_run *r) {
  /* once per task: a cold node gets it early (see load_topology), and a
   * failed discovery (a timeout) is not waited for twice */
  if (r->topo_tried)
    return r->how != MPIBIND_TOPO_NONE ? 0 : -1;
  r->topo_tried = 1;
  return mpibind_auto_topology(r->h, r->t, &r->how, &r->msg);
}

/* topology_source for nodemap.c, on a node without a topology file yet. */
static int load_topology(void *vr) {
  return topology_source(vr);
}

/* Step 4: the CPUs the launch gave the job on this node, outside which no
 * task may be bound.  Only for a topology of this machine: a dryrun on
 * another node's file maps that node whole. */
static int limit_to_job(struct task_run *r) {
  hwloc_topology_t topo = mpibind_get_topology(r->h);
  hwloc_bitmap_t cpus;
  int rc;
  /* the topology decides, not job_key's guess without it */
  r->unknown_cpus = 0;
  free(r->job_what);
  r->job_what = NULL;
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

/* Step 5: the node's mapping on the handle's topology. */
static int map_node(struct task_run *r) {
  /* smt above the node's hardware threads per core is the library's
   * rule (mpibind() refuses it, and tuning_context names MPIBIND). */
  return mpibind_auto_compute(r->t, r->h, r->count, &r->msg);
}

/* Steps 3 to 5 for the node's first task (nodemap.c calls it): the
 * topology, the job's CPUs and the mapping of every task. */
static int map_for_node(void *vr, mpibind_t **mapped, char **error) {
  struct task_run *r = vr;
  int rc = topology_source(r) != 0 || limit_to_job(r) != 0 ? -1 : 0;
  if (rc == 0 && r->unknown_cpus)
    r->msg = mpibind_auto_strdupf("%s", r->job_what ? r->job_what
                                      : "the job's CPUs here are unknown");
  else if (rc == 0)
    rc = map_node(r);
  if (rc != 0 || r->unknown_cpus) {
    *error = r->msg;
    r->msg = NULL;
    return -1;
  }
  *mapped = r->h;
  return 0;
}

/* The key's inputs other than machine, topology and task count: the
 * tuning, the node's GPU allocation (the same in every task, per-task
 * lists or not) and the job's CPUs. */
static char *mapping_inputs(const struct task_run *r) {
  const struct mpibind_auto_tuning *t = r->t;
  char *gpus = mpibind_auto_gpu_allocation_text();
  char *inputs = gpus ? mpibind_auto_strdupf(
      "smt=%d greedy=%d gpu_optim=%d nthreads=%d dryrun=%d restrict_type=%d\n"
      "restrict=%s\n%s%s",
      t->smt, t->greedy, t->gpu_optim, t->nthreads, t->dryrun,
      t->restrict_type, t->restrict_ids ? t->restrict_ids : "(none)",
      r->job_key, gpus) : NULL;
  free(gpus);
  return inputs;
}

/* The task of the node's mapping whose GPUs this task was given (per-task
 * GPU lists), from the mapping file's GPU lines (nodemap.c). */
static int pick_slot(void *vr, const char *gpus, int *slot) {
  struct task_run *r = vr;
  return mpibind_auto_gpu_slot_in(gpus, r->local, slot, &r->gpu_what);
}

/* Steps 3 to 5 once per node (nodemap.c): the task's share read from the
 * node's mapping file, or computed here and written for the others.
 * *alone: no task of the node's mapping has this task's GPUs (its lists
 * are then the node's allocation: full_mapping maps with them). */
static int node_mapping(struct task_run *r, int *alone) {
  static const struct mpibind_auto_node_ops plain = {map_for_node,
                                                     load_topology, NULL};
  static const struct mpibind_auto_node_ops per_task = {
      map_for_node, load_topology, pick_slot};
  char *inputs = mapping_inputs(r), *error = NULL;
  int shared = 0, rc;
  *alone = 0;
  if (inputs == NULL)
    return -1;
  /* not &r->msg: map_for_node moves its message from r->msg to error */
  rc = mpibind_auto_node_mapping(
      r->t, inputs, r->local, r->count,
      (r->t->verbose || r->t->dryrun) && r->local == 0,
      mpibind_auto_gpu_any_per_task() ? &per_task : &plain, r, &r->share,
      &shared, &error);
  if (rc != 0) {
    free(r->msg);
    r->msg = error;
  } else if (r->share.slot < 0) {
    *alone = 1;
  } else {
    r->slot = r->share.slot;
    if (shared)
      r->how = r->t->topofile ? MPIBIND_TOPO_FILE : MPIBIND_TOPO_CACHE;
  }
  free(inputs);
  return rc;
}

/* What a record of the node's mapping cannot serve: task 0's picture (it
 * draws the mapping) and unknown job CPUs (decided with the topology).
 * Such a task maps the node itself, on the topology, as before the node's
 * file existed.  (membind and per-task GPU slots are served: a record
 * holds the task's NUMA nodes, the file every task's GPUs.) */
static int needs_topology(const struct task_run *r) {
  return (r->t->draw && r->local == 0) || r->unknown_cpus;
}

/* Steps 3 to 5 on this task's own handle, then the slot (per-task GPU
 * lists) and the task's share. */
static int full_mapping(struct task_run *r) {
  int want_report = (r->t->verbose || r->t->dryrun) && r->local == 0;
  if (topology_source(r) != 0 || limit_to_job(r) != 0)
    return -1;
  if (r->unknown_cpus)
    return 0;
  if (map_node(r) != 0)
    return -1;
  if (mpibind_auto_gpu_slot(r->h, r->local, &r->slot, &r->gpu_what) != 0) {
    r->msg = mpibind_auto_strdupf("cannot map %d tasks on this node: %s",
                                  r->count, mpibind_get_error(r->h));
    return -1;
  }
  if (mpibind_auto_share_of(r->h, r->slot, want_report, &r->share) != 0) {
    r->msg = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  return 0;
}

/* The task's CPUs as a list and a set, from its share. */
static int take_share(struct task_run *r) {
  r->cpus = strdup(r->share.cpus);
  r->task_set = hwloc_bitmap_alloc();
  if (r->cpus == NULL || r->task_set == NULL ||
      hwloc_bitmap_list_sscanf(r->task_set, r->cpus) != 0) {
    r->msg = mpibind_auto_strdupf("task %d's CPUs '%s' cannot be read",
                                  r->local, r->share.cpus);
    return -1;
  }
  return 0;
}

/* Step 6: the verbose report, by the node's task 0. */
static void report(struct task_run *r) {
  if (r->local != 0 || !(r->t->verbose || r->t->dryrun))
    return;
  if (r->job_what)
    fprintf(stderr, "mpibind: %s\n", r->job_what);
  if (r->gpu_what)
    fprintf(stderr, "mpibind: %s\n", r->gpu_what);
  if (r->share.report)
    fputs(r->share.report, stderr);
}

/* Step 7: bind (without a topology: the task may have read its share
 * only), checked against the kernel's mask so that bound=1 in the trace
 * never claims a binding the kernel does not have; memory too with
 * `membind`.  Under dryrun nothing is bound (bound=0), and the task is
 * still mapped and exported: MPIBIND_APPLIED=1 says that much, not that
 * its CPUs were bound.  A failure gives the CPUs back (mpibind_auto_bind):
 * the task runs as it was, unbound by mpibind. */
static int bind_task(struct task_run *r) {
  if (r->t->dryrun)
    return 0;
  if (mpibind_auto_bind(r->t, r->h, r->local, &r->share, &r->mem_what,
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

/* Step 8: the task's variables (docs/algorithm.md step 6). */
static void export_task(struct task_run *r) {
  mpibind_auto_export(r->t, &r->share, r->local, r->omp_exports,
                      set_process_env, NULL);
}

/* Step 9: an OpenMP runtime already loaded.  Stale (it read OMP_* before
 * this ran): from the constructor, ask for a re-exec; otherwise tell it
 * the thread count directly. */
static void update_openmp(struct task_run *r) {
  r->nthreads_out = r->share.nthreads;
  if (!r->t->dryrun && r->at_load && mpibind_auto_omp_loaded() &&
      mpibind_auto_reexec_possible()) {
    r->stale = mpibind_auto_omp_stale(r->task_set);
    if (r->stale) {
      r->restart = 1;
      return;
    }
  }
  if (r->t->nthreads < 0 && r->share.nthreads > 0)
    mpibind_auto_omp_set_num_threads(r->share.nthreads);
}

static void run_free(struct task_run *r) {
  free(r->msg);
  free(r->cpus);
  free(r->job_key);
  free(r->job_what);
  free(r->gpu_what);
  free(r->mem_what);
  mpibind_auto_share_free(&r->share);
  hwloc_bitmap_free(r->task_set);
  if (r->h)
    mpibind_finalize(r->h);
}

/* The launcher's binding kept: the job's CPUs here are unknown. */
static int keep_launcher_binding(struct task_run *r) {
  if (r->local == 0 && (r->t->verbose || r->t->dryrun))
    fprintf(stderr, "mpibind: %s; keeping the launcher's binding\n",
            r->job_what ? r->job_what : "the job's CPUs here are unknown");
  mpibind_auto_applied_mark(0);
  trace(r->local, r->count, r->how, 0, "");
  run_free(r);
  return 0;
}

/* Steps 1 to 5: the task's share of the node's mapping, from the node's
 * file when a record can serve this task, else mapped here. */
static int find_share(struct task_run *r) {
  if (set_inputs(r) != 0 || job_key(r) != 0)
    return -1;
  int alone = 0;
  if (needs_topology(r))
    return full_mapping(r);
  if (node_mapping(r, &alone) != 0)
    return -1;
  return alone ? full_mapping(r) : 0;
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

  if (mpibind_init(&r->h) != 0 || r->h == NULL) {
    r->msg = mpibind_auto_strdupf("cannot create a handle: %s",
                                  mpibind_get_error(r->h));
    goto fail;
  }
  if (find_share(r) != 0)
    goto fail;
  if (r->unknown_cpus)
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
  if (r->restart && t->verbose && r->local == 0)
    fprintf(stderr, "mpibind: the program's OpenMP runtime read OMP_* "
                    "before mpibind ran (%s): starting the program again\n",
            r->stale);
  mpibind_auto_applied_mark(1);
  trace(r->local, r->count, r->how, r->bound, r->cpus);
  /* a restart draws in the program's second start; the handle has the
   * mapping: needs_topology() sent task 0 down the full path */
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
