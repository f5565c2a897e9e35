/*
 * mpibind_auto_internal.h - pieces of the automatic-binding layer (auto/),
 * for its own files and the front ends built on it (compiled with hidden
 * visibility: nothing here is exported by libmpibind-preload.so, so
 * nothing can clash with a program's symbols).
 */
#ifndef MPIBIND_AUTO_INTERNAL_H
#define MPIBIND_AUTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <hwloc.h>
#include "mpibind.h"
#include "mpibind_auto.h"

/* ---- Messages -------------------------------------------------------- */

/* malloc'ed printf; NULL only when out of memory. */
char *mpibind_auto_strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ---- tuning.c: the MPIBIND* variables ------------------------------ */

/* Where the variables are read from: getenv() for the preload and the
 * wrapper; the job's environment for the Slurm plugin (which runs in
 * slurmstepd, whose own environment is not the job's).  Returns NULL for
 * an unset variable; the string must stay valid while the tuning is used. */
typedef const char *(*mpibind_auto_getenv_f)(const char *name, void *ctx);

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
  int no_visible_devices; /* do not set *_VISIBLE_DEVICES/ZE_AFFINITY_MASK */
  int membind;          /* `membind`: memory on the task's NUMA node(s) */
  int nics;             /* `nics`: the task's NICs to UCX, NCCL, libfabric */
  int place_threads;    /* `place_threads`: OMP_PLACES/OMP_PROC_BIND even
                           in an interpreter (see autobind.c) */
  const char *restrict_ids; /* NULL: not given (points into environ) */
  int restrict_type;        /* -1: not given */
  const char *topofile;     /* NULL: not given */
  int nthreads;             /* from OMP_NUM_THREADS; -1: not given */
  char *draw;               /* draw:PATH (malloc'ed), or NULL */
  char *error;              /* first problem found (malloc'ed), or NULL */
  mpibind_auto_getenv_f get; /* where the values came from (NULL: getenv) */
  void *get_ctx;
};

/* Reads MPIBIND, MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE
 * and OMP_NUM_THREADS.  Returns 0, or -1 with t->error set (one line
 * naming the variable and its value).  `off` is always honoured, even
 * next to bad words.  Free with mpibind_auto_tuning_free(). */
int mpibind_auto_tuning_read(struct mpibind_auto_tuning *t);
/* The same, reading the variables through get(name, ctx). */
int mpibind_auto_tuning_read_from(struct mpibind_auto_tuning *t,
                                  mpibind_auto_getenv_f get, void *ctx);
/* Only the word list of MPIBIND (the grammar of --mpibind=), given under
 * the name `label` (e.g. "--mpibind"), which the messages use.  For
 * checking a value where it is typed (srun, sbatch, salloc). */
int mpibind_auto_tuning_words(struct mpibind_auto_tuning *t, const char *label,
                              const char *value);
/* What messages call the value of `variable`: the option a front end
 * named with mpibind_auto_name_option(), else the variable itself. */
const char *mpibind_auto_value_name(const char *variable);
/* Those names as lines of a node-mapping key ("" when every value goes
 * by its variable's name), malloc'ed: a failure recorded for the node's
 * later tasks is reused word for word, so the names are an input. */
char *mpibind_auto_value_names_key(void);
/* A variable, read where the tuning's variables came from. */
const char *mpibind_auto_getenv(const struct mpibind_auto_tuning *t,
                                const char *name);
void mpibind_auto_tuning_free(struct mpibind_auto_tuning *t);

/* The grammar, for `help` (several lines, each ending in '\n'). */
extern const char mpibind_auto_help_text[];

/* ---- drawnode.c: MPIBIND=draw:PATH ------------------------------------ */

/* Draws h's mapping (computed) into PATH with "-<host>" before its
 * extension, by mpibind_draw(); called by the node's task 0 only, after
 * the task is applied.  A failure is one warning line on stderr and
 * changes nothing else: the picture is a by-product of the launch. */
void mpibind_auto_draw(mpibind_t *h, const char *path);

/* ---- applied.c: MPIBIND_APPLIED names the task it speaks of --------- */

/* Returns 1 when this task was already handled: MPIBIND_APPLIED is 0 or 1
 * and MPIBIND_APPLIED_TASK names this process or a process of the same
 * task (same launcher and tuning variables, plus `extra` when not NULL).
 * explicit_request (the wrapper, run with options) never skips.  Also
 * remembers this task's key for mpibind_auto_applied_mark. */
int mpibind_auto_applied_check(const char *extra, int explicit_request);
/* Exports MPIBIND_APPLIED=bound (0 or 1) and MPIBIND_APPLIED_TASK. */
void mpibind_auto_applied_mark(int bound);

/* ---- launcher.c: the node-local task number and count -------------- */

/* Returns 1 and fills *local, *count and *source (the name of the
 * variable that gave the task number) when a launcher's variables are
 * found; 0 when there are none; -1 with *error (malloc'ed) when they are
 * unusable (not numbers, negative, local >= count, one of a pair
 * missing).  The MPI launchers' variables come before Slurm's. */
int mpibind_auto_launcher_detect(int *local, int *count, const char **source,
                                 char **error);

/* Parses Slurm's tasks-per-node syntax ("2(x3),1") and returns the entry
 * of node `nodeid`, or -1 when the string is malformed or too short. */
int mpibind_auto_slurm_tasks_on_node(const char *spec, int nodeid);

/* 1 when the running program is a launcher or one of its daemons
 * (mpirun, orted, prted, hydra_pmi_proxy, slurmstepd, ...): such a
 * process carries the task variables of its own launch but is no rank. */
int mpibind_auto_is_launcher_program(void);

/* ---- topocache.c: one discovery per node --------------------------- */

enum {
  MPIBIND_TOPO_NONE = 0,
  MPIBIND_TOPO_DISCOVERED,
  MPIBIND_TOPO_CACHE,
  MPIBIND_TOPO_FILE
};

/* Gives the handle its topology: MPIBIND_TOPOFILE's file (first parsed
 * in the helper; it must describe this node unless dryrun), or the
 * per-node cache when a valid one exists, otherwise a discovery in the
 * helper, written to the cache for the node's other tasks.  The handle
 * owns the topology.  On success returns 0 and sets *how; returns -1 with
 * *error (one line) when the topology cannot be had.  Cache problems are
 * never errors: they cost a discovery. */
int mpibind_auto_topology(mpibind_t *h, const struct mpibind_auto_tuning *t,
                          int *how, char **error);

/* The text that identifies this machine as the process sees it (host,
 * boot, hwloc version, uid, cpuset cgroup and its CPUs and memories,
 * online CPUs, HWLOC_* variables), lines ending with "end\n"; NULL when
 * out of memory or without a host name. */
char *mpibind_auto_machine_key(void);

/* What the node's mapping must be recomputed for when it changes: the
 * MPIBIND_TOPOFILE's or the cache file's identity (inode, size, times). */
char *mpibind_auto_topology_identity(const struct mpibind_auto_tuning *t,
                                     const char *machine);

/* ---- nodemap.c: the node's mapping once per node ----------------------- */

/* One task's share of the node's mapping. */
struct mpibind_auto_share {
  char *cpus;    /* the task's CPUs, hwloc list */
  int nthreads;  /* its thread count */
  char *mems;    /* the NUMA nodes of its CPUs, hwloc list (membind);
                    NULL when the topology has none */
  int nvars;     /* its variables (docs/algorithm.md step 6), in order */
  char **names;
  char **values;
  char *report;  /* "mpibind: N GPUs on this node" + the node's report,
                    when asked for */
  int slot;      /* the task of the mapping it is the share of; -1: no
                    task of the node's mapping has this task's GPUs */
};

/* Maps the node: gives a handle on which mpibind() and
 * mpibind_set_env_vars() succeeded (the caller of
 * mpibind_auto_node_mapping keeps owning it), or -1 with *error. */
typedef int (*mpibind_auto_map_fn)(void *ctx, mpibind_t **mapped,
                                   char **error);

/* What the node's mapping needs of its caller: map() maps the node (on
 * the node's first task); load() gives the handle its topology (0, or -1),
 * called first when the node has no topology file yet so that the key
 * names the one written then; pick() (NULL: the task takes its own
 * number) finds in the GPU lines of the node's mapping ("<task>\t<NAME>=
 * <value>..." per line) the task whose GPUs this task was given: 0 with
 * *slot, or -1 when none has them. */
struct mpibind_auto_node_ops {
  mpibind_auto_map_fn map;
  int (*load)(void *ctx);
  int (*pick)(void *ctx, const char *gpus, int *slot);
};

/* Fills *s with the share of this task (`local`, or the task pick()
 * finds) of the mapping of `count` tasks: read from the node's mapping
 * file when one exists for this machine, this topology and `inputs` (the
 * text of every other input of the mapping: tuning, the node's GPU
 * allocation, job CPUs), otherwise computed with ops->map() by the node's
 * first task and written for the others.  s->slot -1: no task of the
 * mapping has this task's GPUs (s is otherwise empty).  *shared: read from
 * the file.  0, or -1 with *error (this task's failure or the first
 * task's). */
int mpibind_auto_node_mapping(const struct mpibind_auto_tuning *t,
                              const char *inputs, int local, int count,
                              int want_report,
                              const struct mpibind_auto_node_ops *ops,
                              void *map_ctx, struct mpibind_auto_share *s,
                              int *shared, char **error);
void mpibind_auto_share_free(struct mpibind_auto_share *s);
/* Fills *s with task `task`'s share of a mapped handle (and the node's
 * report when want_report), for a task that mapped the node itself.  0,
 * or -1 out of memory. */
int mpibind_auto_share_of(mpibind_t *h, int task, int want_report,
                          struct mpibind_auto_share *s);

/* ---- membind.c: memory binding from a task's record ------------------ */

/* Binds the calling thread's memory (and that of the threads it starts
 * later) to the NUMA nodes of the hwloc list `nodes`, strictly (MPOL_BIND),
 * without a topology.  0, or -1 with *error (malloc'ed, the reason). */
int mpibind_auto_bind_memory(const char *nodes, char **error);

/* ---- keyfile.c: compute once per node, read everywhere else ------------ */

/* The private per-user cache directory (MPIBIND_CACHE_DIR, else
 * $XDG_RUNTIME_DIR/mpibind, else /tmp/mpibind-<uid>) as a descriptor, or
 * -1 when no safe one exists. */
int mpibind_auto_cache_dirfd(void);
uint64_t mpibind_auto_hash(const char *s);
/* pread of exactly n bytes; 0 on success. */
int mpibind_auto_pread_exact(int fd, char *buf, size_t n, off_t off);

struct mpibind_auto_once {
  /* Reads what it needs of a valid file's body (len bytes at offset off
   * of fd) and takes it into ctx: 1 used, 0 unusable (then the work is
   * done here). */
  int (*use)(void *ctx, int fd, off_t off, size_t len);
  /* Does the work into ctx and gives the body written for the others
   * (*body malloc'ed, or NULL to write nothing).  0, or -1 with *error
   * (one line, recorded for the others for a minute). */
  int (*make)(void *ctx, char **body, size_t *len, char **error);
};

/* The file `name` of dirfd holds key + body: use it when valid; else the
 * first task to come takes the key's lock (name up to its first '.' plus
 * ".lock"), makes the body and writes it, while the others wait (at most
 * 30 s) and then use it.  dirfd < 0: make, write nothing.  *made says
 * whether the work was done here.  0, or -1 with *error (the work's
 * failure, here or recorded by another task). */
int mpibind_auto_once(int dirfd, const char *name, const char *key,
                      const struct mpibind_auto_once *ops, void *ctx,
                      int *made, char **error);

/* ---- discover.c: hwloc's risky work in a child ----------------------- */

/* Removes from the environment the HWLOC_* variables that make hwloc
 * describe something other than this machine (HWLOC_XMLFILE,
 * HWLOC_SYNTHETIC, HWLOC_FSROOT, ...; HWLOC_COMPONENTS unless it only
 * excludes components).  For the helper, before its discovery. */
void mpibind_auto_hwloc_env_scrub(void);

/* Runs the live discovery in the helper `mpibind-discover`, killed after
 * MPIBIND_DISCOVERY_TIMEOUT seconds (default 10).  0 with *xml (hwloc's
 * export, malloc'ed, NUL-terminated, *len bytes), or -1 with *error (one
 * line saying what happened to the helper). */
int mpibind_auto_discover_xml(char **xml, size_t *len, char **error);

/* hwloc loads every plugin it finds (libxml2, OpenCL, GL with X11, PCI,
 * a site's CUDA/NVML/RSMI/LevelZero) when the process's first topology
 * is created: about 15 ms per task, and GPU runtimes pulled into the
 * task, for nothing when the topology comes from XML.  Between _begin and
 * _end, a topology created by this process starts without plugins (the
 * user's HWLOC_PLUGINS_PATH, saved in *saved, comes back at _end).
 * Plugins come back once the process has no topology left. */
void mpibind_auto_plugins_off_begin(char **saved);
void mpibind_auto_plugins_off_end(char *saved);
/* From now on _begin and _end do nothing: for a host process whose other
 * threads may read the environment while it would be changed
 * (slurmstepd). */
void mpibind_auto_plugins_off_disable(void);

/* mpibind_auto_check_xml_file(): see mpibind_auto.h. */

/* ---- autobind.c: the steps shared with the Slurm plugin ------------- */
/* The preload (one task, in its own process) and the Slurm plugin (the
 * node's mapping once in slurmstepd, then each task before exec) read the
 * same variables, map the same way, bind and export the same way.  Each
 * step returns 0, or -1 with *msg (malloc'ed, one line naming the
 * value). */

/* A new handle for `count` tasks with the tuning's inputs and the GPU
 * allocation of the *_VISIBLE_DEVICES variables, each taken as the node's
 * allocation (the plugin reads the step's, which every task shares; the
 * preload's own step 1 also recognizes per-task lists, gpualloc.c).  On
 * failure *hp may hold a half-configured handle: the caller finalizes
 * it. */
int mpibind_auto_configure(const struct mpibind_auto_tuning *t, int count,
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

/* Binds the calling thread (and so the task it becomes) to the CPUs of
 * the share s, without a topology (mpibind_apply_cpus), then checks that
 * the kernel reports exactly them; with `membind`, also its memory to the
 * share's NUMA nodes (*mem_what then says where, for the verbose report).
 * A failure gives the thread back the CPUs it had (the task then runs
 * as it was).  `local` is the task's own number, for messages.  0, or -1
 * with *msg. */
int mpibind_auto_bind(const struct mpibind_auto_tuning *t, mpibind_t *h,
                      int local, const struct mpibind_auto_share *s,
                      char **mem_what, char **msg);

/* 1 when OMP_PLACES and OMP_PROC_BIND may be exported: not for an
 * interpreter (the program named by mpibind_auto_set_program(), else this
 * process), unless the tuning has `place_threads` (autobind.c says why). */
int mpibind_auto_omp_exports(const struct mpibind_auto_tuning *t);

/* Sets a variable for the task; returns 0 or -1. */
typedef int (*mpibind_auto_setenv_f)(const char *name, const char *value,
                                     int overwrite, void *ctx);

/* Exports, for task `local`, the variables of its share s (task s->slot of
 * the mapping: the same task, except with per-task GPU lists, gpualloc.c)
 * through set(): OMP_NUM_THREADS, OMP_PLACES and OMP_PROC_BIND unless the
 * user set them (their values were inputs), the tuning says not to or
 * omp_exports is 0; *_VISIBLE_DEVICES unless the tuning says not to (a
 * per-task list given at launch is kept); CUDA_DEVICE_ORDER=PCI_BUS_ID
 * with CUDA devices unless set.  Returns 0, or -1 when a set() failed. */
int mpibind_auto_export(const struct mpibind_auto_tuning *t,
                        const struct mpibind_auto_share *s, int local,
                        int omp_exports, mpibind_auto_setenv_f set,
                        void *ctx);

/* applied.c's mark for a task whose environment is not this process's
 * (the Slurm plugin, before the task's exec): MPIBIND_APPLIED=bound and
 * MPIBIND_APPLIED_TASK naming process `pid` and the key of the variables
 * read through get(), written through set(), so that the preload in that
 * task (same pid) and in its children (same key) skips, exactly as after
 * mpibind_auto_applied_mark().  Returns 0, or -1 when a set() failed. */
int mpibind_auto_applied_mark_for(int bound, long pid,
                                  mpibind_auto_getenv_f get, void *get_ctx,
                                  mpibind_auto_setenv_f set, void *set_ctx);

/* ---- gpualloc.c: the GPU allocation a task starts with -------------- */

/* The GPU variables are the library's (mpibind_get_gpu_var): when set at
 * launch, the GPU allocation.  Index of `name` among them, or -1. */
int mpibind_auto_gpu_var_index(const char *name);
/* Gives the handle the node's GPU allocation from the variables set at
 * launch, recognizing per-task lists (see gpualloc.c).  0, or -1 with
 * *msg. */
int mpibind_auto_gpu_inputs(mpibind_t *h, const char *source, int local,
                            int count, char **msg);
/* After mpibind() and mpibind_set_env_vars(): *slot is the task of the
 * node's mapping this task takes (its own number, or, with per-task GPU
 * lists, the task that has its GPUs; *what then says so).  When no task
 * has them, maps again with the lists as the node's allocation.  0, or -1
 * with the handle's error. */
int mpibind_auto_gpu_slot(mpibind_t *h, int local, int *slot, char **what);
/* 1 when the task's value of `name` is its own per-task list (kept). */
int mpibind_auto_gpu_per_task(const char *name);
/* 1 when any of the task's GPU variables is its own per-task list (after
 * mpibind_auto_gpu_inputs). */
int mpibind_auto_gpu_any_per_task(void);
/* The node's GPU allocation as given to the handle by
 * mpibind_auto_gpu_inputs ("<NAME>=<list|(all)|(unset)>\n" per variable;
 * the same in every task of the node, per-task lists or not), for the key
 * of the node's mapping; NULL out of memory. */
char *mpibind_auto_gpu_allocation_text(void);
/* mpibind_auto_gpu_slot from the GPU lines of a node's mapping file (see
 * struct mpibind_auto_node_ops), without remapping: 0 with *slot (local
 * when the task has no per-task list of the node's vendors) and *what as
 * there; -1 when no single task has the task's GPUs. */
int mpibind_auto_gpu_slot_in(const char *gpus, int local, int *slot,
                             char **what);

/* ---- jobcpus.c: the CPUs the launch gave the job on this node ------ */

/* The affinity of `pid` (0: the calling thread) into `set`; 0 or -1. */
int mpibind_auto_affinity(pid_t pid, hwloc_bitmap_t set);

/* `source`: the variable that gave the task number (NULL: no launcher, the
 * wrapper run directly); `allowed`: the CPUs of the topology.  Returns 1
 * with `cpus` and *what (malloc'ed phrase for the verbose report) when the
 * job's CPUs on this node are fewer than `allowed`; 0 when the whole
 * topology is the job's (or nothing narrower is known); -1 with *what
 * saying why when they cannot be known and the task must not be bound. */
int mpibind_auto_job_cpus(const char *source, hwloc_const_bitmap_t allowed,
                          hwloc_bitmap_t cpus, char **what);

/* ---- openmp.c: the OpenMP runtime already in the process ----------- */

/* 1 when an OpenMP runtime (4.5 or later) is loaded. */
int mpibind_auto_omp_loaded(void);
/* NULL when the loaded runtime (if any) follows OMP_PROC_BIND and
 * OMP_PLACES as they are now in the environment, for a task bound to
 * task_cpus; otherwise a phrase saying what it got wrong. */
const char *mpibind_auto_omp_stale(hwloc_const_bitmap_t task_cpus);
/* omp_set_num_threads(n) when a runtime is loaded. */
void mpibind_auto_omp_set_num_threads(int n);

/* ---- reexec.c: the program started again in the same process -------- */

/* 1 when this image is the re-executed one (MPIBIND_REEXEC is our pid). */
int mpibind_auto_reexec_done(void);
/* Removes MPIBIND_REEXEC from the environment (the program never sees it). */
void mpibind_auto_reexec_forget(void);
/* 1 when a re-exec is allowed here (see reexec.c for the exclusions). */
int mpibind_auto_reexec_possible(void);
/* Re-executes the program (never returns) or returns -1. */
int mpibind_auto_reexec(void);

/* ---- autobind.c: the load-time application -------------------------- */

/* mpibind_auto_apply(0) from the preload's constructor: sets *restart to
 * 1 (and then skips omp_set_num_threads) when an OpenMP runtime already
 * loaded has stale places or binding and a re-exec is possible; the
 * caller then calls mpibind_auto_reexec(), and on its failure
 * mpibind_auto_omp_set_num_threads(*nthreads). */
int mpibind_auto_apply_at_load(int *restart, int *nthreads);

#endif /* MPIBIND_AUTO_INTERNAL_H */
