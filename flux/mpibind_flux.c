/*
 * mpibind_flux.c - the Flux shell plugin: `flux run -o mpibind[=LIST]`.
 *
 * A site loads it for every job with the Lua rc file mpibind.lua in the
 * shell's lua.d/ (README.md, "Flux plugin"; docs/interfaces.md):
 *     plugin.load { file = "<libdir>/mpibind/mpibind_flux.so",
 *                   conf = { default_off = false } }
 * and a user alone with `flux run -o userrc=FILE` (FILE holding that
 * line).  Every job's tasks are then mapped by libmpibind before they exec,
 * so that every runtime (OpenMP, CUDA) starts with its binding and its
 * variables in place.
 *
 * Contract (docs/interfaces.md, "Flux plugin"):
 *   - Which jobs: every job (the option `-o mpibind=off` and MPIBIND=off
 *     excepted); with default_off only those that ask with `-o mpibind`.
 *     Always within the cores and GPUs Flux gave the job on each node (R,
 *     flux_shell_rank_info_unpack), whatever part of the node that is and
 *     whatever the shell's topology is (a nested instance's is its
 *     broker's CPUs).  A job that is not mapped is left exactly as Flux
 *     binds it: its cpu-affinity and gpu-affinity as the user set them.
 *   - What: the words of `-o mpibind` (also the original's Flux spellings
 *     and the object form, option.c), or of MPIBIND when the option is not
 *     given; MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE and
 *     OMP_NUM_THREADS of the job's environment (the preload's reader,
 *     auto/task/tuning.c).  The GPUs are R's (gpu_ids.c), never a
 *     *_VISIBLE_DEVICES the job's environment carries.
 *   - Where: the option and the tuning when the plugin is loaded (the
 *     shell's initrc, before any shell.init), so that Flux's cpu-affinity
 *     (unless dryrun) and gpu-affinity are turned off
 *     (flux_shell_setopt_pack) only for a job mpibind maps (a bad option is
 *     refused in shell.init); the
 *     node's mapping once per node in shell.init (the shell's topology,
 *     flux_shell_get_hwloc_xml, auto/node/plugin_node.c's flow), the shell then
 *     bound to the job's CPUs there, as Flux's cpu-affinity would; each
 *     task's variables and the applied mark in task.init (before fork);
 *     its binding, checked against the kernel's mask, in task.exec (the
 *     task's process, before exec).
 *   - Messages: a bad `-o mpibind` value is one line naming it and the
 *     words expected, the job's exception, and the job does not start (its
 *     shell.init fails; `flux run` ends with status 1);
 *     a bad environment value is one line from the job's first node, and
 *     the job runs as Flux binds it; a problem of one node (a topology file
 *     of another node without dryrun) one line from that node, whose tasks
 *     then run on the job's cores and GPUs as Flux's default affinity gives
 *     them.  `strict` turns a problem into a failed job.  With v (or
 *     dryrun) each node's task 0 prints the node's mapping once, on its
 *     stderr, in the report format.
 *   - Never: exit or fail a job it was not asked to fail; bind a task
 *     outside the job's CPUs on the node or give it a GPU the job does not
 *     have; change the shell's own environment.
 */
#define _GNU_SOURCE
#define FLUX_SHELL_PLUGIN_NAME "mpibind"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <flux/core.h>
#include <flux/shell.h>
#include <hwloc.h>
#include <jansson.h>

#include "flux_plugin.h"
#include "mb_text.h"
#include "mpibind.h"
#include "mpibind_auto_node.h"

/* One plugin instance (the shell loads it once; a second load, from
 * another rc file, replaces the first, each with its own state). */
struct flux_node {
  flux_shell_t *shell;
  int shell_rank;            /* this node's shell: 0 prints user's errors */
  int default_off;           /* site: map only jobs that ask */
  char *words;               /* -o mpibind as MPIBIND words, NULL: unset */
  char *refusal;             /* a bad -o mpibind: the line that says so */
  struct mpibind_auto_tuning t;
  int tuning_read;
  int user_cpu_off;          /* the user's cpu-affinity was off */
  int user_gpu_off;          /* the user's gpu-affinity was off */
  struct mpibind_plugin_node map;
  const char *cores, *gpus;  /* Flux's ids of the job's cores, GPUs here */
  hwloc_topology_t flux_topo; /* the shell's topology as Flux reads it */
  int problem;               /* the node could not be mapped */
  struct mpibind_auto_share share; /* the task being started */
  int local;                 /* its number on the node; -1: none */
};

/* ---- The job's and the task's environments ---------------------------- */

/* The job's environment (the jobspec's), with `-o mpibind` as MPIBIND.
 * The GPU variables are not the job's allocation under Flux: R is. */
static const char *job_getenv(const char *name, void *ctx) {
  struct flux_node *fx = ctx;
  if (fx->words && strcmp(name, "MPIBIND") == 0)
    return fx->words;
  if (mpibind_auto_gpu_var_index(name) >= 0)
    return NULL;
  return flux_shell_getenv(fx->shell, name);
}

static const char *task_getenv(const char *name, void *ctx) {
  return flux_cmd_getenv(ctx, name);
}

static int task_setenv(const char *name, const char *value, int overwrite,
                       void *ctx) {
  return flux_cmd_setenvf(ctx, overwrite, name, "%s", value) < 0 ? -1 : 0;
}

/* ---- Messages ------------------------------------------------------------ */

/* One line in the job's output, through the shell's log (control
 * characters of the user's values escaped: one line whatever they hold). */
static void shell_line(int level, const char *line, const char *end) {
  char *esc = mb_escape(line ? line : "out of memory");
  flux_shell_log(FLUX_SHELL_PLUGIN_NAME, level, __FILE__, __LINE__, "%s%s",
                 esc ? esc : "out of memory", end);
  free(esc);
}

/* ---- Loading (the shell's initrc) ------------------------------------- */

/* The site's arguments, the rc file's conf table. */
static void read_conf(flux_plugin_t *p, struct flux_node *fx) {
  const char *conf = flux_plugin_get_conf(p);
  json_t *o = conf ? json_loads(conf, 0, NULL) : NULL;
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    if (strcmp(key, "default_off") == 0 &&
        (json_is_boolean(v) || json_is_integer(v))) {
      fx->default_off = json_is_true(v) ||
                        (json_is_integer(v) && json_integer_value(v) != 0);
    } else if (fx->shell_rank == 0) {
      char *line = mpibind_auto_strdupf(
          "rc file argument '%s' is unknown or not true/false (expected "
          "default_off = true or false); ignored",
          key);
      shell_line(FLUX_SHELL_WARN, line, "");
      free(line);
    }
  }
  json_decref(o);
}

/* A bad `-o mpibind`: the job does not start.  Refused in shell.init, as
 * Flux's own plugins refuse a bad option of theirs (rlimit, for one): the
 * first node's shell raises the job's one exception, with the line, and
 * fails its shell.init, before any task starts.  The exception carries the
 * job's exit status (1), so that `flux run` ends with 1 whichever shells
 * Flux kills on the way (a killed shell's 143 would otherwise win).  The
 * other shells wait for that (they neither map nor raise: an exception of
 * theirs, "shell_init: ...", could come first and hide the line). */
static int refuse(flux_plugin_t *p, const char *topic, flux_plugin_arg_t *args,
                  void *data) {
  struct flux_node *fx = data;
  char *esc;
  (void)p;
  (void)topic;
  (void)args;
  if (fx->shell_rank != 0)
    return 0;
  esc = mb_escape(fx->refusal);
  flux_shell_raise_exit_status(1 << 8, "mpibind: %s",
                               esc ? esc : "out of memory");
  free(esc);
  errno = EINVAL;
  return -1;
}

/* `-o mpibind`: 0 not given, 1 given (fx->words), -1 a bad value
 * (fx->refusal). */
static int read_option(struct flux_node *fx) {
  char *json = NULL;
  int rc = flux_shell_getopt(fx->shell, "mpibind", &json);
  if (rc <= 0) {
    free(json);
    return 0;
  }
  fx->words = mpibind_flux_option_words(json, &fx->refusal);
  free(json);
  return fx->words ? 1 : -1;
}

/* 1 when the user's `name` option is "off". */
static int option_off(flux_shell_t *shell, const char *name) {
  const char *v = NULL;
  return flux_shell_getopt_unpack(shell, name, "s", &v) > 0 && v &&
         strcmp(v, "off") == 0;
}

/* The user's cpu-affinity and gpu-affinity, read once per shell: a second
 * load of the plugin (a site's rc and a user's) must not take the first
 * one's "off" for the user's. */
static const int *user_affinity(flux_shell_t *shell) {
  static const char key[] = "mpibind::user-affinity";
  int *off = flux_shell_aux_get(shell, key);
  if (off == NULL && (off = calloc(2, sizeof *off)) != NULL) {
    off[0] = option_off(shell, "cpu-affinity");
    off[1] = option_off(shell, "gpu-affinity");
    if (flux_shell_aux_set(shell, key, off, free) < 0) {
      free(off);
      return NULL;
    }
  }
  return off;
}

/* Flux's own affinity would bind the tasks again, evenly: off while mpibind
 * maps the job (cpu-affinity stays under dryrun, which binds nothing). */
static int affinity_off(struct flux_node *fx) {
  const int *off = user_affinity(fx->shell);
  if (off == NULL) {
    shell_line(FLUX_SHELL_ERROR, "out of memory", "");
    return -1;
  }
  fx->user_cpu_off = off[0];
  fx->user_gpu_off = off[1];
  if (flux_shell_setopt_pack(fx->shell, "gpu-affinity", "s", "off") < 0 ||
      (!fx->t.dryrun &&
       flux_shell_setopt_pack(fx->shell, "cpu-affinity", "s", "off") < 0)) {
    shell_line(FLUX_SHELL_ERROR,
               "cannot turn Flux's cpu-affinity and gpu-affinity off", "");
    return -1;
  }
  return 0;
}

/* ---- The node (shell.init) --------------------------------------------- */

/* The shell's topology as Flux's own plugins read it (its core and GPU
 * ids are numbered on it). */
static hwloc_topology_t flux_topology(struct flux_node *fx, char **msg) {
  const char *xml = NULL;
  if (fx->flux_topo)
    return fx->flux_topo;
  if (flux_shell_get_hwloc_xml(fx->shell, &xml) < 0 || xml == NULL ||
      hwloc_topology_init(&fx->flux_topo) != 0 ||
      hwloc_topology_set_io_types_filter(fx->flux_topo,
                                         HWLOC_TYPE_FILTER_KEEP_IMPORTANT) !=
          0 ||
      hwloc_topology_set_xmlbuffer(fx->flux_topo, xml, (int)strlen(xml)) !=
          0 ||
      hwloc_topology_load(fx->flux_topo) != 0) {
    *msg = mpibind_auto_strdupf("cannot read the shell's topology of this "
                                "node: %s", strerror(errno));
    if (fx->flux_topo)
      hwloc_topology_destroy(fx->flux_topo);
    fx->flux_topo = NULL;
  }
  return fx->flux_topo;
}

/* The mapping's topology: the shell's (no discovery at all), or the user's
 * MPIBIND_TOPOFILE, checked in the helper as the preload checks it. */
static int node_topology(struct mpibind_plugin_node *n, void *ctx,
                         char **msg) {
  struct flux_node *fx = ctx;
  const char *xml = NULL;
  int how;
  if (n->t->topofile)
    return mpibind_auto_topology(n->h, n->t, &how, msg);
  if (flux_shell_get_hwloc_xml(fx->shell, &xml) < 0 || xml == NULL) {
    *msg = strdup("the shell has no topology of this node");
    return -1;
  }
  if (mpibind_set_topology_xml(n->h, xml, strlen(xml)) != 0) {
    *msg = mpibind_auto_strdupf("the shell's topology of this node: %s",
                                mpibind_get_error(n->h));
    return -1;
  }
  return 0;
}

/* R's cores of the job on this node, numbered on the shell's topology. */
static int job_cores(struct mpibind_plugin_node *n, void *ctx,
                     const char **cores, hwloc_topology_t *topo, char **msg) {
  struct flux_node *fx = ctx;
  (void)n;
  *cores = fx->cores;
  *topo = flux_topology(fx, msg);
  return *topo ? 0 : -1;
}

static int job_gpus(struct mpibind_plugin_node *n, void *ctx, char **msg) {
  struct flux_node *fx = ctx;
  hwloc_topology_t topo = flux_topology(fx, msg);
  return topo ? mpibind_flux_gpu_allocation(n->h, topo, fx->gpus, msg) : -1;
}

static const struct mpibind_plugin_node_ops flux_node_ops = {
    node_topology, job_cores, NULL, job_gpus};

/* The shell bound to the job's CPUs on this node, as Flux's cpu-affinity
 * binds it by default: the tasks start there, and a task whose own binding
 * fails stays there, never outside the job.  Checked against the kernel's
 * mask (every thread bound, the calling one read back, as a task is
 * bound): every task's CPUs are some of the job's, so a shell bound to them
 * all says, before any fork, that each task's binding will hold.  That must
 * be known in the shell: Flux fixes a task's variables before the fork (the
 * task execs with a copy of its command made then), so a task that finds
 * out in its own process cannot take back MPIBIND_APPLIED=1.  0, or -1 with
 * *msg and the shell on the CPUs it had. */
static int bind_shell(struct flux_node *fx, char **msg) {
  char *list = NULL;
  int rc;
  *msg = NULL;
  if (fx->map.pus == NULL ||
      hwloc_bitmap_list_asprintf(&list, fx->map.pus) < 0) {
    *msg = strdup("cannot read the job's CPUs");
    return -1;
  }
  rc = mpibind_auto_bind_cpus("the shell", "the job's CPUs", list, msg);
  free(list);
  if (rc != 0 && *msg == NULL)
    *msg = strdup("out of memory");
  return rc;
}

/* Flux's GPU ids as CUDA reads them: "0,1,3" (no ranges), "-1" for none.
 * Malloc'ed; NULL out of memory. */
static char *cuda_list(const char *gpus) {
  hwloc_bitmap_t ids = hwloc_bitmap_alloc();
  char *list = strdup("");
  int id;
  if (ids && gpus && hwloc_bitmap_list_sscanf(ids, gpus) == 0 &&
      hwloc_bitmap_weight(ids) > 0) {
    hwloc_bitmap_foreach_begin(id, ids) {
      char *more = list ? mpibind_auto_strdupf("%s%s%d", list,
                                               *list ? "," : "", id)
                        : NULL;
      free(list);
      list = more;
    }
    hwloc_bitmap_foreach_end();
  }
  hwloc_bitmap_free(ids);
  if (list && *list == '\0') {
    free(list);
    list = strdup("-1");
  }
  return list;
}

/* A node that could not be mapped: its tasks get what Flux's default
 * cpu-affinity and gpu-affinity give them (the job's cores, the job's GPUs
 * in CUDA_VISIBLE_DEVICES), unless the user had turned those off; the
 * shell is not bound again when that was the node's problem (shell_bound
 * -1). */
static void flux_defaults(struct flux_node *fx, int shell_bound) {
  char *list, *msg = NULL;
  if (!fx->user_cpu_off && !fx->t.dryrun && shell_bound == 0 &&
      bind_shell(fx, &msg) != 0)
    shell_line(FLUX_SHELL_WARN, msg, "");
  free(msg);
  if (fx->user_gpu_off || (list = cuda_list(fx->gpus)) == NULL)
    return;
  flux_shell_setenvf(fx->shell, 1, "CUDA_VISIBLE_DEVICES", "%s", list);
  flux_shell_setenvf(fx->shell, 0, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
  free(list);
}

static int shell_init(flux_plugin_t *p, const char *topic,
                      flux_plugin_arg_t *args, void *data) {
  struct flux_node *fx = data;
  char *msg = NULL;
  int ntasks = 0, rc, shell_bound = 0;
  (void)p;
  (void)topic;
  (void)args;
  fx->map.t = &fx->t;
  fx->map.launcher = "Flux";
  fx->map.unit = "job";
  if (flux_shell_rank_info_unpack(fx->shell, -1, "{s:i s:{s:s s?s}}",
                                  "ntasks", &ntasks, "resources", "cores",
                                  &fx->cores, "gpus", &fx->gpus) < 0 ||
      ntasks < 1) {
    msg = strdup("Flux did not tell this node's tasks and cores");
    rc = -1;
  } else {
    fx->map.ntasks = ntasks;
    rc = mpibind_plugin_node_map(&fx->map, &flux_node_ops, fx, &msg);
  }
  /* a shell that cannot be bound to the job's CPUs: nor can its tasks */
  if (rc == 0 && !fx->t.dryrun && bind_shell(fx, &msg) != 0)
    rc = shell_bound = -1;
  if (rc == 0)
    return 0;
  fx->problem = 1;
  if (fx->t.strict) {
    shell_line(FLUX_SHELL_ERROR, msg, "; strict: failing the job");
    free(msg);
    return -1;
  }
  shell_line(FLUX_SHELL_WARN, msg,
             "; left as Flux binds by default (the job's cores and GPUs on "
             "this node)");
  free(msg);
  flux_defaults(fx, shell_bound);
  return 0;
}

/* ---- Each task ------------------------------------------------------------- */

/* The current task, its command and its number on the node. */
static flux_cmd_t *current_task(struct flux_node *fx, int *local) {
  flux_shell_task_t *task = flux_shell_current_task(fx->shell);
  *local = -1;
  if (task == NULL ||
      flux_shell_task_info_unpack(task, "{s:i}", "localid", local) < 0)
    return NULL;
  return flux_shell_task_cmd(task);
}

/* The task's variables and mark, for the command it will exec (an
 * interpreter gets no OMP_PLACES/OMP_PROC_BIND, torchrun's agent no
 * OMP_*).  0, or -1 when a variable could not be set. */
static int task_export(struct flux_node *fx, int local, flux_cmd_t *cmd,
                       const struct mpibind_plugin_task_env *env) {
  int argc = flux_cmd_argc(cmd), rc;
  const char **argv = calloc((size_t)(argc > 0 ? argc : 0) + 1, sizeof *argv);
  if (argv == NULL)
    return -1;
  for (int i = 0; i < argc; i++)
    argv[i] = flux_cmd_arg(cmd, i);
  rc = mpibind_plugin_task_export(&fx->map, local, &fx->share, argc, argv,
                                  env);
  free(argv);
  return rc;
}

/* Before fork, in the shell: the task's share, its variables and the
 * applied mark (MPIBIND_APPLIED_TASK names the shell, which sets it, and
 * the key of the task's own variables). */
static int task_init(flux_plugin_t *p, const char *topic,
                     flux_plugin_arg_t *args, void *data) {
  struct flux_node *fx = data;
  struct mpibind_plugin_task_env env;
  char *msg = NULL;
  int local;
  flux_cmd_t *cmd = current_task(fx, &local);
  (void)p;
  (void)topic;
  (void)args;
  mpibind_auto_share_free(&fx->share);
  fx->local = -1;
  if (cmd == NULL)
    return 0;
  env.get = task_getenv;
  env.get_ctx = cmd;
  env.set = task_setenv;
  env.set_ctx = cmd;
  env.pid = (long)getpid();
  if (!fx->map.mapped || fx->problem) {
    if (fx->problem)
      mpibind_plugin_task_mark_problem(&env);
    return 0;
  }
  if (mpibind_plugin_task_share(&fx->map, local, &fx->share, &msg) != 0) {
    shell_line(FLUX_SHELL_WARN, msg,
               fx->t.strict ? "; strict: failing the job"
                            : "; left as Flux binds by default");
    free(msg);
    mpibind_plugin_task_mark_problem(&env);
    return fx->t.strict ? -1 : 0;
  }
  if (task_export(fx, local, cmd, &env) != 0)
    shell_line(FLUX_SHELL_WARN,
               "cannot set the task's variables in its environment", "");
  fx->local = local;
  return 0;
}

/* In the task's process, before exec: the node's task 0 says what was
 * asked (help, the node's report), then the task is bound to its share and
 * checked.  A failure leaves it on the shell's CPUs (the job's); with
 * strict the task exits. */
static int task_exec(flux_plugin_t *p, const char *topic,
                     flux_plugin_arg_t *args, void *data) {
  struct flux_node *fx = data;
  char *msg = NULL;
  (void)p;
  (void)topic;
  (void)args;
  if (fx->local == 0 && fx->t.help && fx->shell_rank == 0) {
    fputs(mpibind_auto_help_text, stderr);
    fflush(stderr);
  }
  if (fx->local < 0)
    return 0;
  if (mpibind_plugin_task_bind(&fx->map, fx->local, &fx->share, &msg) != 0) {
    mpibind_plugin_say(&fx->map, msg, 1);
    free(msg);
    if (fx->t.strict)
      _exit(1);
  }
  return 0;
}

/* ---- Life cycle ------------------------------------------------------------- */

static void node_destroy(void *arg) {
  struct flux_node *fx = arg;
  mpibind_auto_share_free(&fx->share);
  mpibind_plugin_node_free(&fx->map);
  if (fx->flux_topo)
    hwloc_topology_destroy(fx->flux_topo);
  if (fx->tuning_read)
    mpibind_auto_tuning_free(&fx->t);
  free(fx->words);
  free(fx->refusal);
  free(fx);
}

/* The one symbol the shell looks up (the rest is hidden). */
__attribute__((visibility("default"))) int flux_plugin_init(flux_plugin_t *p);

int flux_plugin_init(flux_plugin_t *p) {
  flux_shell_t *shell = flux_plugin_get_shell(p);
  struct flux_node *fx;
  int given;
  if (shell == NULL)
    return 0; /* not in a job shell: nothing to map */
  if ((fx = calloc(1, sizeof *fx)) == NULL ||
      flux_plugin_aux_set(p, NULL, fx, node_destroy) < 0) {
    free(fx);
    return -1;
  }
  fx->shell = shell;
  fx->local = -1;
  /* the shell has other threads: its environment is never changed (the
   * preload's way of loading XML without hwloc's plugins) */
  mpibind_auto_plugins_off_disable();
  if (flux_shell_info_unpack(shell, "{s:i}", "rank", &fx->shell_rank) < 0)
    fx->shell_rank = 0;
  read_conf(p, fx);
  if ((given = read_option(fx)) < 0)
    /* a bad -o mpibind: the job does not start */
    return flux_plugin_add_handler(p, "shell.init", refuse, fx) < 0 ? -1 : 0;
  if (fx->default_off && !given)
    return 0;
  mpibind_auto_tuning_read_from(&fx->t, job_getenv, fx);
  fx->tuning_read = 1;
  fx->map.t = &fx->t;
  if (fx->t.off)
    return 0; /* off: Flux's affinity exactly as the user set it */
  if (fx->t.error) {
    if (fx->shell_rank == 0)
      shell_line(FLUX_SHELL_WARN, fx->t.error, "; left as Flux binds it");
    return 0;
  }
  if (affinity_off(fx) != 0 ||
      flux_plugin_add_handler(p, "shell.init", shell_init, fx) < 0 ||
      flux_plugin_add_handler(p, "task.init", task_init, fx) < 0 ||
      flux_plugin_add_handler(p, "task.exec", task_exec, fx) < 0)
    return -1;
  return 0;
}
