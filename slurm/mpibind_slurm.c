/*
 * mpibind_slurm.c - the Slurm SPANK plugin: `srun --mpibind[=LIST]`.
 *
 * A site enables it with one plugstack.conf line (README.md, "Slurm plugin"; docs/interfaces.md):
 *     required|optional <libdir>/mpibind/mpibind_slurm.so [default_off]
 *                                                  [exclusive_only_off]
 * and every srun step is then mapped by libmpibind before its tasks exec,
 * so that every runtime (OpenMP, CUDA) starts with its binding and its
 * variables in place.
 *
 * Contract (docs/interfaces.md, "Slurm plugin"):
 *   - Which steps: by default the steps that own every core of their node
 *     (Slurm's S_STEP_ALLOC_CORES covers the node); with default_off only
 *     the steps that ask with --mpibind; with exclusive_only_off also the
 *     steps that share a node, then always within the step's allocated
 *     cores on that node (the library's job CPUs, mpibind_set_job_cpus)
 *     and with only the GPUs Slurm gave the step.
 *     Batch, extern and interactive steps never.  A step that is not
 *     mapped is left exactly as Slurm bound it.
 *   - What: the words of --mpibind (or of MPIBIND when the option is not
 *     given), MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE,
 *     OMP_NUM_THREADS and the *_VISIBLE_DEVICES of the step (its GPU
 *     allocation), read from the job's environment with the preload's
 *     reader (auto/task/tuning.c), mapped with the helper's steps
 *     (auto/node/steps.c): one grammar, one mapping code.
 *   - Where: the node's mapping once per node and step, in slurmstepd
 *     (slurm_spank_user_init, running as the user; the topology from the
 *     preload's per-user, per-node cache, or discovered in the preload's
 *     helper mpibind-discover, mpibind_auto_topology; mapped on that
 *     topology: the preload's per-node mapping file would save nothing
 *     here, where the node is mapped once anyway); then in each task,
 *     before exec (slurm_spank_task_init, as the user): the task's share
 *     of the mapping (mpibind_auto_share_of, as the helper writes it for
 *     the preload's tasks), bound and checked against the kernel's mask
 *     as a preload task binds (mpibind_auto_bind, auto/task/bind.c,
 *     memory too with membind), its variables
 *     exported (mpibind_auto_export; no OMP_PLACES/OMP_PROC_BIND for an
 *     interpreter) and MPIBIND_APPLIED, so that a preload in the same
 *     task does nothing; draw:PATH from task 0.
 *   - slurmstepd's environment is never changed (it has other threads):
 *     the tuning is read from the job's (spank_getenv), the task's
 *     variables set with spank_setenv, hwloc's plugins are not turned off
 *     through HWLOC_PLUGINS_PATH (mpibind_auto_plugins_off_disable), and
 *     the discovery helper gets a copy of slurmstepd's environment (the
 *     node's, not the job's: it describes the node).
 *   - Messages: a bad --mpibind value is refused where it is typed
 *     (srun, sbatch, salloc) by the option's callback; every other
 *     problem is one line on the task's stderr, printed by the node's
 *     local task 0 (by node 0 only when it is about the user's values,
 *     which every node shares), and the step runs as Slurm bound it.
 *     Only the `strict` word turns a problem into a failed task.
 *   - Never: exit, abort or fail a step it was not asked to fail; print
 *     anything in slurm_spank_init (srun --help shows it).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <slurm/spank.h>

#include <hwloc.h>

#include "mb_text.h"
#include "mpibind.h"
#include "mpibind_auto_node.h"

SPANK_PLUGIN(mpibind, 1);

/* slurm.h's: step ids above it are the batch script, the extern step
 * and the interactive step, which run no application's tasks. */
#ifndef SLURM_MAX_NORMAL_STEP_ID
#define SLURM_MAX_NORMAL_STEP_ID 0xfffffff0u
#endif

/* ---- Site configuration (plugstack.conf arguments) ------------------ */

static int conf_default_off;         /* map only steps that ask */
static int conf_exclusive_only_off;  /* map shared steps too */

static void read_plugstack_args(int ac, char **av) {
  for (int i = 0; i < ac; i++) {
    if (strcmp(av[i], "default_off") == 0)
      conf_default_off = 1;
    else if (strcmp(av[i], "exclusive_only_off") == 0)
      conf_exclusive_only_off = 1;
    else
      slurm_error("mpibind: plugstack.conf argument '%s' is unknown "
                  "(expected default_off or exclusive_only_off); ignored",
                  av[i]);
  }
}

/* ---- The user's option ---------------------------------------------- */

static int option_cb(int val, const char *optarg, int remote);

static struct spank_option mpibind_option = {
    "mpibind", "LIST",
    "map the step's tasks with mpibind (LIST: on, off, v, smt:K, "
    "greedy[:0|1], gpu[:0|1], omp_places, omp_proc_bind, visible_devices, "
    "place_threads, membind, dryrun, strict, draw:PATH, help; default on)",
    2, /* the argument is optional: --mpibind alone means on */
    0, option_cb};

/* Where the value is typed (srun, sbatch, salloc; also srun reading it
 * back from the batch script's environment): a bad list is refused there
 * with one line naming it and what was expected, and the command stops
 * with status 1, as Slurm stops on a bad option of its own (returning an
 * error instead makes Slurm print a second line, "Invalid --mpibind
 * argument", that says nothing of what was expected).  Nothing has been
 * started yet at option time: no allocation, no step.  In slurmstepd
 * (remote) the value was checked already, and the plugin never exits
 * there. */
static int option_cb(int val, const char *optarg, int remote) {
  struct mpibind_auto_tuning t;
  int bad;
  (void)val;
  if (remote)
    return 0;
  bad = mpibind_auto_tuning_words(&t, "--mpibind", optarg) != 0;
  if (bad)
    slurm_error("mpibind: %s", t.error ? t.error : "out of memory");
  mpibind_auto_tuning_free(&t);
  if (bad)
    exit(1);
  return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av) {
  spank_context_t ctx = spank_context();
  read_plugstack_args(ac, av);
  /* Registered where options exist (srun, slurmstepd, and sbatch/salloc,
   * which then accept it too; Slurm carries it from there to every srun
   * of the job); not in slurmd or the prolog/epilog. */
  if ((ctx == S_CTX_LOCAL || ctx == S_CTX_REMOTE || ctx == S_CTX_ALLOCATOR) &&
      spank_option_register(sp, &mpibind_option) != ESPANK_SUCCESS)
    slurm_error("mpibind: cannot register the --mpibind option");
  return 0;
}

/* ---- The job's environment --------------------------------------------- */

/* slurmstepd's own environment is not the job's: the tuning is read from
 * the job's through spank_getenv.  The values are kept (the tuning points
 * into them) until the step ends; a value that was looked up and is unset
 * is kept as such. */
struct env_entry {
  struct env_entry *next;
  char *name;
  char *value; /* NULL: unset */
};

struct job_env {
  spank_t sp;              /* the handle of the running callback */
  const char *option;      /* --mpibind's value, replaces MPIBIND */
  int option_given;
  struct env_entry *entries;
};

static char *spank_getenv_dup(spank_t sp, const char *name) {
  size_t len = 256;
  for (;;) {
    char *buf = malloc(len);
    spank_err_t rc;
    if (buf == NULL)
      return NULL;
    rc = spank_getenv(sp, name, buf, (int)len);
    if (rc == ESPANK_SUCCESS)
      return buf;
    free(buf);
    if (rc != ESPANK_NOSPACE || len > (1u << 30))
      return NULL;
    len *= 2;
  }
}

static const char *job_getenv(const char *name, void *ctx) {
  struct job_env *env = ctx;
  struct env_entry *e;
  if (env->option_given && strcmp(name, "MPIBIND") == 0)
    return env->option;
  for (e = env->entries; e; e = e->next)
    if (strcmp(e->name, name) == 0)
      return e->value;
  e = calloc(1, sizeof *e);
  if (e == NULL || (e->name = strdup(name)) == NULL) {
    free(e);
    return NULL;
  }
  e->value = spank_getenv_dup(env->sp, name);
  e->next = env->entries;
  env->entries = e;
  return e->value;
}

static void job_env_free(struct job_env *env) {
  while (env->entries) {
    struct env_entry *e = env->entries;
    env->entries = e->next;
    free(e->name);
    free(e->value);
    free(e);
  }
}

static int job_setenv(const char *name, const char *value, int overwrite,
                      void *ctx) {
  struct job_env *env = ctx;
  return spank_setenv(env->sp, name, value, overwrite) == ESPANK_SUCCESS
             ? 0
             : -1;
}

/* applied.c's MPIBIND_APPLIED/MPIBIND_APPLIED_TASK for this task: its
 * process (the one that execs the program) and the key of its own
 * variables as it will exec (not --mpibind's value), so that a preload in
 * the task, or in its children, knows the task was handled. */
static void mark_task(spank_t sp, int bound) {
  struct job_env raw = {0};
  raw.sp = sp;
  mpibind_auto_applied_mark_for(bound, (long)getpid(), job_getenv, &raw,
                                job_setenv, &raw);
  job_env_free(&raw);
}

/* ---- The node's mapping (slurmstepd, once per node and step) ----------- */

static struct node {
  int asked;          /* the plugin has something to do or say */
  int mapped;         /* h holds this node's mapping */
  int ntasks;         /* the step's tasks on this node */
  uint32_t nodeid;
  char *msg;          /* one line for the user, or NULL */
  int msg_is_problem; /* "...; left as Slurm bound it" */
  int msg_node0_only; /* the same on every node: print once */
  struct mpibind_auto_tuning t;
  int tuning_read;
  struct job_env env;
  mpibind_t *h;
  hwloc_topology_t live;   /* this node's cores, when h maps a file */
  char *option_copy;       /* --mpibind's value */
} node;

static void set_msg(char *msg, int is_problem, int node0_only) {
  free(node.msg);
  node.msg = msg ? msg : strdup("out of memory");
  node.msg_is_problem = is_problem;
  node.msg_node0_only = node0_only;
}

/* The topology of this node's cores: the mapping's own when it is this
 * node's; a small live discovery (no I/O) when the mapping reads a file. */
static hwloc_topology_t cores_topology(char **msg) {
  if (!node.t.topofile)
    return mpibind_get_topology(node.h);
  if (hwloc_topology_init(&node.live) != 0 ||
      hwloc_topology_load(node.live) != 0) {
    *msg = mpibind_auto_strdupf("cannot discover this node's cores: %s",
                                strerror(errno));
    return NULL;
  }
  return node.live;
}

/* The PUs of Slurm's core ids `cores` (an index list over the node's
 * cores in hwloc's logical order, which is how Slurm numbers them when
 * slurm.conf describes the hardware).  *all is 1 when they are every core
 * of the node.  NULL with *msg when an id is not a core of this node. */
static hwloc_bitmap_t cores_to_pus(hwloc_topology_t topo, const char *cores,
                                   int *all, int *ncores_out, char **msg) {
  int depth = hwloc_get_type_or_below_depth(topo, HWLOC_OBJ_CORE);
  int ncores = hwloc_get_nbobjs_by_depth(topo, depth);
  hwloc_bitmap_t ids = hwloc_bitmap_alloc();
  hwloc_bitmap_t pus = hwloc_bitmap_alloc();
  int id;
  if (ids == NULL || pus == NULL ||
      hwloc_bitmap_list_sscanf(ids, cores) != 0 || hwloc_bitmap_iszero(ids)) {
    *msg = mpibind_auto_strdupf("the step's cores '%s' (from Slurm) are not "
                                "a list of core ids",
                                cores);
    goto fail;
  }
  hwloc_bitmap_foreach_begin(id, ids) {
    hwloc_obj_t core = hwloc_get_obj_by_depth(topo, depth, (unsigned)id);
    if (core == NULL) {
      *msg = mpibind_auto_strdupf(
          "the step's core %d (from Slurm's '%s') is not on this node, "
          "which has %d cores (slurm.conf and the hardware differ)",
          id, cores, ncores);
      goto fail;
    }
    hwloc_bitmap_or(pus, pus, core->cpuset);
  }
  hwloc_bitmap_foreach_end();
  *all = ncores > 0 && hwloc_bitmap_weight(ids) == ncores;
  *ncores_out = ncores;
  hwloc_bitmap_free(ids);
  return pus;
fail:
  hwloc_bitmap_free(ids);
  hwloc_bitmap_free(pus);
  return NULL;
}

/* A step that shares its node is mapped within its own cores' PUs: they
 * are the job's CPUs of the library's rule (mpibind_set_job_cpus, on top
 * of the user's MPIBIND_RESTRICT, as for the preload under any launcher).
 * Returns 0, or -1 with *msg. */
static int restrict_to_step(hwloc_const_bitmap_t step_pus, char **msg) {
  char *list = NULL;
  if (mpibind_set_job_cpus(node.h, step_pus) == 0)
    return 0;
  hwloc_bitmap_list_asprintf(&list, step_pus);
  *msg = mpibind_auto_strdupf("the step's CPUs %s: %s", list ? list : "?",
                              mpibind_get_error(node.h));
  free(list);
  return -1;
}

/* Decides whether this node's tasks are mapped and computes the mapping.
 * Returns 0 (mapped, or nothing to do), or -1 with *msg (a problem). */
static int map_node(spank_t sp, int asked_explicitly, char **msg) {
  char *cores = NULL;
  hwloc_topology_t topo;
  hwloc_bitmap_t step_pus;
  int whole = 0, ncores = 0, how;

  /* The topology from the user's per-node cache (auto/topocache.c):
   * a live discovery costs some 20 to 100 ms per step here, the cached
   * XML about 2 ms.  The handle owns it. */
  if (mpibind_auto_configure(&node.t, node.ntasks, &node.h, msg) != 0 ||
      mpibind_auto_topology(node.h, &node.t, &how, msg) != 0)
    return -1;
  (void)how;

  if (spank_get_item(sp, S_STEP_ALLOC_CORES, &cores) != ESPANK_SUCCESS ||
      cores == NULL) {
    *msg = strdup("Slurm did not tell which cores the step has on this node");
    return -1;
  }
  if ((topo = cores_topology(msg)) == NULL)
    return -1;
  step_pus = cores_to_pus(topo, cores, &whole, &ncores, msg);
  if (step_pus == NULL)
    return -1;
  if (!whole) {
    if (!conf_exclusive_only_off) {
      /* Left as Slurm bound it; said only to a user who asked. */
      if (asked_explicitly || node.t.verbose)
        set_msg(mpibind_auto_strdupf(
                    "this step has cores %s of the %d cores of its node "
                    "(node %u of the step): left as Slurm bound it (the site "
                    "maps steps that share a node with exclusive_only_off)",
                    cores, ncores, node.nodeid),
                0, 0);
      hwloc_bitmap_free(step_pus);
      return 0;
    }
    /* Only what Slurm gave the step: its cores' PUs and its GPUs.  A
     * file of another node (dryrun's preview) has other PUs: its whole
     * node is previewed. */
    if (mpibind_auto_no_unallocated_gpus(&node.t, node.h, msg) != 0 ||
        ((!node.t.topofile || mpibind_topology_check_system(node.h) == 0) &&
         restrict_to_step(step_pus, msg) != 0)) {
      hwloc_bitmap_free(step_pus);
      return -1;
    }
  }
  hwloc_bitmap_free(step_pus);
  if (mpibind_auto_compute(&node.t, node.h, node.ntasks, msg) != 0)
    return -1;
  node.mapped = 1;
  return 0;
}

int slurm_spank_user_init(spank_t sp, int ac, char **av) {
  uint32_t stepid = 0, ntasks = 0;
  char *optval = NULL;
  char *msg = NULL;
  (void)ac;
  (void)av;

  if (spank_remote(sp) != 1)
    return 0;
  /* slurmstepd has other threads: its environment is not changed, not
   * even for a moment (the preload's way of loading XML without hwloc's
   * plugins). */
  mpibind_auto_plugins_off_disable();
  if (spank_get_item(sp, S_JOB_STEPID, &stepid) != ESPANK_SUCCESS ||
      stepid > SLURM_MAX_NORMAL_STEP_ID)
    return 0;
  node.env.sp = sp;
  node.env.option_given =
      spank_option_getopt(sp, &mpibind_option, &optval) == ESPANK_SUCCESS;
  node.option_copy = strdup(optval ? optval : "");
  node.env.option = node.option_copy ? node.option_copy : "";
  if (conf_default_off && !node.env.option_given)
    return 0;

  mpibind_auto_tuning_read_from(&node.t, job_getenv, &node.env);
  node.tuning_read = 1;
  if (node.t.off)
    return 0; /* off: no side effect at all */
  node.asked = 1;
  if (spank_get_item(sp, S_JOB_NODEID, &node.nodeid) != ESPANK_SUCCESS)
    node.nodeid = 0;

  if (node.t.error) {
    set_msg(strdup(node.t.error), 1, 1);
  } else if (spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &ntasks) !=
                 ESPANK_SUCCESS ||
             ntasks == 0) {
    set_msg(strdup("Slurm did not tell how many tasks run on this node"), 1,
            0);
  } else {
    node.ntasks = (int)ntasks;
    if (map_node(sp, node.env.option_given, &msg) != 0)
      set_msg(msg, 1, 0);
  }
  /* A problem leaves the tasks unbound: each task is marked
   * MPIBIND_APPLIED=0 (slurm_spank_task_init), which tells a preload in
   * it that the task was handled and the line printed. */
  return 0;
}

/* ---- Each task, before exec (as the user) ------------------------------ */

/* One line for the user; the message may echo the user's values, whose
 * control characters are escaped (mb_escape) so that it stays one line. */
static void say(const char *line, int is_problem) {
  char *esc = mb_escape(line);
  fprintf(stderr, "mpibind: %s%s\n", esc ? esc : "out of memory",
          !is_problem     ? ""
          : node.t.strict ? "; strict: failing the task"
                          : "; left as Slurm bound it");
  free(esc);
}

/* A problem in one task: said on its stderr; the task fails with
 * `strict`, else runs as Slurm bound it, marked handled. */
static int task_problem(spank_t sp, const char *line) {
  say(line ? line : "out of memory", 1);
  if (!node.t.strict)
    mark_task(sp, 0);
  return node.t.strict ? -1 : 0;
}

/* The program the task execs (the step's command): an interpreter gets no
 * OMP_PLACES/OMP_PROC_BIND (auto/task/export.c). */
static void name_program(spank_t sp) {
  int argc = 0;
  char **argv = NULL;
  if (spank_get_item(sp, S_JOB_ARGV, &argc, &argv) == ESPANK_SUCCESS &&
      argc > 0 && argv)
    mpibind_auto_set_program(argv[0]);
}

/* Binds the task's process, before its exec, to its share, as the preload
 * binds a task (checked; memory too with membind).  0, or the callback's
 * return value after a problem in *rc. */
static int bind_share(spank_t sp, int local,
                      const struct mpibind_auto_share *share, int *rc) {
  char *m = NULL, *mem = NULL;
  if (node.t.dryrun)
    return 0;
  if (mpibind_auto_bind(&node.t, local, share, &mem, &m) != 0) {
    *rc = task_problem(sp, m);
    free(m);
    free(mem);
    return -1;
  }
  if (mem && node.t.verbose && local == 0)
    say(mem, 0);
  free(mem);
  return 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av) {
  struct mpibind_auto_share share;
  int local = -1, rc = 0;
  (void)ac;
  (void)av;

  if (spank_remote(sp) != 1 || !node.asked)
    return 0;
  node.env.sp = sp;
  if (spank_get_item(sp, S_TASK_ID, &local) != ESPANK_SUCCESS)
    local = -1;

  if (local == 0) {
    if (node.t.help && node.nodeid == 0)
      fputs(mpibind_auto_help_text, stderr);
    if (node.msg && (!node.msg_node0_only || node.nodeid == 0))
      say(node.msg, node.msg_is_problem);
    fflush(stderr);
  }
  if (!node.mapped) {
    if (node.msg && node.msg_is_problem && node.t.strict)
      return -1;
    if (node.msg && node.msg_is_problem)
      mark_task(sp, 0);
    return 0;
  }
  if (local < 0 || local >= node.ntasks)
    return task_problem(sp, "Slurm gave a task number outside the node's "
                            "tasks");
  if (mpibind_auto_share_of(node.h, local,
                            local == 0 && (node.t.verbose || node.t.dryrun),
                            &share) != 0)
    return task_problem(sp, "out of memory");
  if (share.report) {
    fputs(share.report, stderr);
    fflush(stderr);
  }
  if (bind_share(sp, local, &share, &rc) == 0) {
    name_program(sp);
    if (mpibind_auto_export(&node.t, &share, local,
                            mpibind_auto_omp_exports(&node.t), job_setenv,
                            &node.env) != 0)
      say("cannot set the task's variables in its environment", 0);
    mark_task(sp, 1);
    /* draw:PATH: the node's task 0 draws, as under the preload (in the
     * task's process, as the user, in the job's working directory) */
    if (node.t.draw && local == 0)
      mpibind_auto_draw(node.h, node.t.draw);
  }
  mpibind_auto_share_free(&share);
  return rc;
}

/* ---- End of the step ------------------------------------------------------ */

int slurm_spank_exit(spank_t sp, int ac, char **av) {
  (void)ac;
  (void)av;
  if (spank_remote(sp) != 1)
    return 0;
  if (node.h)
    mpibind_finalize(node.h);
  if (node.live)
    hwloc_topology_destroy(node.live);
  if (node.tuning_read)
    mpibind_auto_tuning_free(&node.t);
  job_env_free(&node.env);
  free(node.option_copy);
  free(node.msg);
  memset(&node, 0, sizeof node);
  return 0;
}
