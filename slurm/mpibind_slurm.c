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
 *     (auto/node/steps.c) in the flow the Flux plugin shares
 *     (auto/node/plugin_node.c): one grammar, one mapping code.
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
    "greedy[:0|1], gpu[:0|1], omp_places, omp_proc_bind, "
    "visible_devices[:task|all|none], "
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
  if (bad) {
    /* it quotes the user's value: control characters escaped, one line */
    char *esc = mb_escape(t.error);
    slurm_error("mpibind: %s", esc ? esc : "out of memory");
    free(esc);
  }
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

/* ---- The node's mapping (slurmstepd, once per node and step) ----------- */

static struct node {
  int asked;          /* the plugin has something to do or say */
  uint32_t nodeid;
  char *msg;          /* one line for the user, or NULL */
  int msg_is_problem; /* "...; left as Slurm bound it" */
  int msg_node0_only; /* the same on every node: print once */
  struct mpibind_auto_tuning t;
  int tuning_read;
  struct job_env env;
  struct mpibind_plugin_node map; /* the node's mapping (auto/node/plugin_node.c) */
  hwloc_topology_t live;   /* this node's cores, when the mapping reads a file */
  char *option_copy;       /* --mpibind's value */
  int asked_explicitly;    /* --mpibind was given */
  const char *cores;       /* Slurm's core ids of the step here */
} node;

static void set_msg(char *msg, int is_problem, int node0_only) {
  free(node.msg);
  node.msg = msg ? msg : strdup("out of memory");
  node.msg_is_problem = is_problem;
  node.msg_node0_only = node0_only;
}

/* The topology from the user's per-node cache (auto/node/topocache.c): a live
 * discovery costs some 20 to 100 ms per step here, the cached XML about
 * 2 ms.  The handle owns it. */
static int node_topology(struct mpibind_plugin_node *n, void *ctx,
                         char **msg) {
  int how;
  (void)ctx;
  return mpibind_auto_topology(n->h, n->t, &how, msg);
}

/* Slurm's core ids of the step on this node (an index list over the
 * node's cores in hwloc's logical order, which is how Slurm numbers them
 * when slurm.conf describes the hardware), on the topology of this node's
 * cores: the mapping's own when it is this node's; a small live discovery
 * (no I/O) when the mapping reads a file. */
static int step_cores(struct mpibind_plugin_node *n, void *ctx,
                      const char **cores, hwloc_topology_t *topo,
                      char **msg) {
  spank_t sp = ctx;
  char *ids = NULL;
  if (spank_get_item(sp, S_STEP_ALLOC_CORES, &ids) != ESPANK_SUCCESS ||
      ids == NULL) {
    *msg = strdup("Slurm did not tell which cores the step has on this node");
    return -1;
  }
  *cores = node.cores = ids;
  *topo = NULL;
  if (!n->t->topofile)
    return 0;
  if (hwloc_topology_init(&node.live) != 0 ||
      hwloc_topology_load(node.live) != 0) {
    *msg = mpibind_auto_strdupf("cannot discover this node's cores: %s",
                                strerror(errno));
    return -1;
  }
  *topo = node.live;
  return 0;
}

/* A step that shares its node is mapped only with exclusive_only_off;
 * otherwise it is left as Slurm bound it, which only a user who asked is
 * told. */
static int shared_step(struct mpibind_plugin_node *n, void *ctx, char **msg) {
  hwloc_topology_t topo = node.live ? node.live : mpibind_get_topology(n->h);
  int ncores = hwloc_get_nbobjs_by_depth(
      topo, hwloc_get_type_or_below_depth(topo, HWLOC_OBJ_CORE));
  (void)ctx;
  if (n->whole || conf_exclusive_only_off)
    return 0;
  if (node.asked_explicitly || n->t->verbose)
    *msg = mpibind_auto_strdupf(
        "this step has cores %s of the %d cores of its node (node %u of the "
        "step): left as Slurm bound it (the site maps steps that share a "
        "node with exclusive_only_off)",
        node.cores, ncores, node.nodeid);
  return 1;
}

static const struct mpibind_plugin_node_ops slurm_node_ops = {
    node_topology, step_cores, shared_step, NULL};

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
  node.map.t = &node.t;
  node.map.launcher = "Slurm";
  node.map.unit = "step";
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
    int rc;
    node.map.ntasks = (int)ntasks;
    node.asked_explicitly = node.env.option_given;
    rc = mpibind_plugin_node_map(&node.map, &slurm_node_ops, sp, &msg);
    if (rc < 0)
      set_msg(msg, 1, 0);
    else if (msg)
      set_msg(msg, 0, 0);
  }
  /* A problem leaves the tasks unbound: each task is marked
   * MPIBIND_APPLIED=0 (slurm_spank_task_init), which tells a preload in
   * it that the task was handled and the line printed. */
  return 0;
}

/* ---- Each task, before exec (as the user) ------------------------------ */

/* The task's variables through spank_setenv; the applied mark's key from
 * the task's own variables as it will exec (not --mpibind's value). */
static void task_env(spank_t sp, struct job_env *raw,
                     struct mpibind_plugin_task_env *env) {
  memset(raw, 0, sizeof *raw);
  raw->sp = sp;
  env->get = job_getenv;
  env->get_ctx = raw;
  env->set = job_setenv;
  env->set_ctx = &node.env;
  env->pid = (long)getpid();
}

/* A problem in one task: said on its stderr; the task fails with
 * `strict`, else runs as Slurm bound it, marked handled. */
static int task_problem(const struct mpibind_plugin_task_env *env,
                        const char *line) {
  mpibind_plugin_say(&node.map, line, 1);
  if (!node.t.strict)
    mpibind_plugin_task_mark_problem(env);
  return node.t.strict ? -1 : 0;
}

/* The command the task execs (the step's): an interpreter gets no
 * OMP_PLACES/OMP_PROC_BIND, torchrun's agent no OMP_* (auto/task/export.c).
 * 0 words when Slurm does not say. */
static int step_command(spank_t sp, const char *const **argv) {
  int argc = 0;
  char **av = NULL;
  *argv = NULL;
  if (spank_get_item(sp, S_JOB_ARGV, &argc, &av) != ESPANK_SUCCESS ||
      argc <= 0 || av == NULL)
    return 0;
  *argv = (const char *const *)av;
  return argc;
}

/* The task's share, bound in its process and checked, then its variables
 * and the applied mark (auto/node/plugin_node.c). */
static int apply_task(spank_t sp, int local,
                      const struct mpibind_plugin_task_env *env) {
  struct mpibind_auto_share share;
  const char *const *argv;
  int argc = step_command(sp, &argv);
  char *m = NULL;
  int rc = 0;
  if (mpibind_plugin_task_share(&node.map, local, &share, &m) != 0 ||
      mpibind_plugin_task_bind(&node.map, local, &share, &m) != 0) {
    rc = task_problem(env, m);
  } else if (mpibind_plugin_task_export(&node.map, local, &share, argc, argv,
                                        env) != 0) {
    mpibind_plugin_say(&node.map,
                       "cannot set the task's variables in its environment",
                       0);
  }
  free(m);
  mpibind_auto_share_free(&share);
  return rc;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av) {
  struct mpibind_plugin_task_env env;
  struct job_env raw;
  int local = -1, rc = 0;
  (void)ac;
  (void)av;

  if (spank_remote(sp) != 1 || !node.asked)
    return 0;
  node.env.sp = sp;
  task_env(sp, &raw, &env);
  if (spank_get_item(sp, S_TASK_ID, &local) != ESPANK_SUCCESS)
    local = -1;

  if (local == 0) {
    if (node.t.help && node.nodeid == 0)
      fputs(mpibind_auto_help_text, stderr);
    if (node.msg && (!node.msg_node0_only || node.nodeid == 0))
      mpibind_plugin_say(&node.map, node.msg, node.msg_is_problem);
    fflush(stderr);
  }
  if (!node.map.mapped) {
    if (node.msg && node.msg_is_problem && node.t.strict)
      rc = -1;
    else if (node.msg && node.msg_is_problem)
      mpibind_plugin_task_mark_problem(&env);
  } else {
    rc = apply_task(sp, local, &env);
  }
  job_env_free(&raw);
  return rc;
}

/* ---- End of the step ------------------------------------------------------ */

int slurm_spank_exit(spank_t sp, int ac, char **av) {
  (void)ac;
  (void)av;
  if (spank_remote(sp) != 1)
    return 0;
  mpibind_plugin_node_free(&node.map);
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
