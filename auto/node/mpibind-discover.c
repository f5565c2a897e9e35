/*
 * mpibind-discover - the helper in which mpibind runs hwloc and maps a
 * node, out of the application's process (auto/task/helper.c starts it;
 * installed in <libexecdir>/mpibind/, not for users to run by hand,
 * except --share, which other programs use).
 *
 *   mpibind-discover
 *       Discovers this machine with mpibind's step-0 filters (I/O
 *       included) and writes hwloc's XML export on stdout; exit 0.  The
 *       HWLOC_* variables that would make hwloc describe something else
 *       (HWLOC_XMLFILE, HWLOC_SYNTHETIC, ...) are ignored.
 *   mpibind-discover --check FILE
 *       Loads FILE as mpibind_set_topology_file() does and prints "ok"
 *       on stdout (exit 0), or the library's one-line message (exit 1).
 *       A crash or hang of hwloc's parser shows as a signal to the parent.
 *   mpibind-discover --map --ntasks N [--source VAR] [--launcher PID]
 *                    [--gpu NAME=LIST]... [--name VAR=OPTION]...
 *                    [--draw PATH]
 *       Maps the node for a task that asks (auto/task/maprequest.h has
 *       the request and the answer): the topology from MPIBIND_TOPOFILE,
 *       or the per-node cache, discovered here when there is none; the
 *       tuning from the environment, its values named in messages as
 *       --name says (the command's --topology for MPIBIND_TOPOFILE).
 *       With --draw, draws the mapping instead of answering with it.
 *   mpibind-discover --share --task I --ntasks N [--source VAR]
 *                    [--launcher PID] [--program ARGV0] [--workers]
 *       Task I's share of the node's mapping for N tasks, for a program
 *       that binds a task itself (the Python module's workers): read from
 *       the node mapping file, which is made first when it does not exist
 *       (the same file and lock as the preload's tasks use), as lines on
 *       stdout: cpus=<list> (bind there), nthreads=<n>, mems=<list> (its
 *       NUMA nodes, when the node has some), gpus=<list> (its GPUs'
 *       visible indexes, when the node has GPUs), topology=<how> (where
 *       the node's topology came from: discovered by this helper, or the
 *       cache or file of the task that mapped the node, as
 *       MPIBIND_TRACE's), dryrun=1 (MPIBIND has dryrun: do not bind)
 *       and membind=1 (bind the memory to mems too) when asked, then
 *       <NAME>=<value> for each
 *       variable to export, by the preload's rules for the caller's
 *       environment and for the program ARGV0 (an interpreter gets no
 *       OMP_PLACES/OMP_PROC_BIND unless MPIBIND has place_threads; default:
 *       this helper).  --workers: the tasks are workers that pick their
 *       GPU by number (torch.cuda.set_device(i)): every GPU visible in
 *       task order unless MPIBIND says otherwise (as for torchrun's
 *       workers, --source LOCAL_RANK).
 *       Exit 0; 1 a problem, 3 no share (MPIBIND has off,
 *       or the job's CPUs here are unknown), each with one line on
 *       stderr.  Without --launcher the job's CPUs are this process's (its
 *       caller's) at start.
 *
 * The tuning (MPIBIND, MPIBIND_RESTRICT, ..., OMP_NUM_THREADS) and the
 * launcher's variables come from the environment, inherited from the
 * task (without LD_PRELOAD, auto/task/helper.c); the renderer that --draw
 * starts gets MPIBIND=off too.
 * Failures: one line on stderr (or the answer's `failed`), exit 1;
 * usage: exit 2.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "discover.h"
#include "drawnode.h"
#include "export.h"
#include "gpualloc.h"
#include "helper.h"
#include "inputs.h"
#include "machine.h"
#include "mapping.h"
#include "maprequest.h"
#include "mb_gpuvar_table.h"
#include "mb_text.h"
#include "mpibind_auto_task.h" /* mpibind_auto_name_option */
#include "nodemap.h"
#include "strdupf.h"
#include "tuning.h"

#define EXIT_NO_SHARE 3

/* ---- no option: a discovery --------------------------------------------- */

static int discover(void) {
  char *xml = NULL, *error = NULL;
  size_t len = 0;
  int rc = 1;
  if (mpibind_auto_discover_here(&xml, &len, &error) != 0)
    fprintf(stderr, "%s\n", error ? error : "out of memory");
  else if (fwrite(xml, 1, len, stdout) != len || fflush(stdout) != 0)
    fprintf(stderr, "cannot write the topology's XML\n");
  else
    rc = 0;
  free(xml);
  free(error);
  return rc;
}

/* ---- --check FILE ----------------------------------------------------- */

static int check(const char *path) {
  mpibind_t *h = NULL;
  int rc = 1;
  if (mpibind_init(&h) != 0) {
    fprintf(stderr, "%s\n", mpibind_get_error(h));
    return 1;
  }
  if (mpibind_set_topology_file(h, path) != 0) {
    printf("%s\n", mpibind_get_error(h));
  } else {
    /* Also map one task on it: what the caller does next must not crash
     * either (a topology hwloc accepts is not always one the mapping can
     * use; failing is fine, crashing is not). */
    if (mpibind_set_ntasks(h, 1) == 0)
      (void)mpibind(h);
    printf("ok\n");
    rc = 0;
  }
  fflush(stdout);
  mpibind_finalize(h);
  return rc;
}

/* ---- --map and --share: the options ------------------------------------ */

struct opts {
  int map, share;
  int workers;         /* --workers */
  int task, ntasks;
  const char *source;
  long launcher;
  const char **gpu;    /* per GPU variable (mb_gpuvar_table.h): the LIST
                          of --gpu NAME=LIST, or NULL */
  const char *draw;
  const char *program;
};

static int number(const char *s, long long max, long long *v) {
  return s == NULL || mb_parse_decimal(s, strlen(s), 0, max, v) != 0 ? -1 : 0;
}

/* 0, or -1 (usage) */
static int parse_options(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->task = o->ntasks = -1;
  o->gpu = calloc((size_t)mb_ngpuvars, sizeof *o->gpu);
  if (o->gpu == NULL)
    return -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long long n;
    if (strcmp(a, "--map") == 0) {
      o->map = 1;
      continue;
    }
    if (strcmp(a, "--share") == 0) {
      o->share = 1;
      continue;
    }
    if (strcmp(a, "--workers") == 0) {
      o->workers = 1;
      continue;
    }
    if (v == NULL)
      return -1;
    i++;
    if (strcmp(a, "--ntasks") == 0 && number(v, INT_MAX, &n) == 0 && n > 0) {
      o->ntasks = (int)n;
    } else if (strcmp(a, "--task") == 0 && number(v, INT_MAX, &n) == 0) {
      o->task = (int)n;
    } else if (strcmp(a, "--launcher") == 0 &&
               number(v, LONG_MAX, &n) == 0 && n > 0) {
      o->launcher = (long)n;
    } else if (strcmp(a, "--source") == 0) {
      o->source = v;
    } else if (strcmp(a, "--draw") == 0) {
      o->draw = v;
    } else if (strcmp(a, "--program") == 0) {
      o->program = v;
    } else if (strcmp(a, "--name") == 0) {
      /* VAR=OPTION: messages name OPTION (argv outlives the run) */
      const char *eq = strchr(v, '=');
      char *var = eq ? strndup(v, (size_t)(eq - v)) : NULL;
      int bad = var == NULL || mpibind_auto_name_option(var, eq + 1) != 0;
      free(var);
      if (bad)
        return -1;
    } else if (strcmp(a, "--gpu") == 0) {
      const char *eq = strchr(v, '=');
      char *name = eq ? strndup(v, (size_t)(eq - v)) : NULL;
      int k = name ? mpibind_auto_gpu_var_index(name) : -1;
      free(name);
      if (k < 0)
        return -1;
      o->gpu[k] = eq + 1;
    } else {
      return -1;
    }
  }
  if (o->map == o->share || o->ntasks < 1 ||
      (o->share && (o->task < 0 || o->task >= o->ntasks || o->draw)) ||
      (o->map && o->program))
    return -1;
  return 0;
}

/* ---- --map: the answer (auto/task/maprequest.h) ---------------------- */

static void say_step(enum mpibind_auto_helper_step step) {
  static const char *const names[] = {"map", "topofile", "discovery"};
  printf(MPIBIND_AUTO_ANSWER_STEP "%s\n", names[step]);
  fflush(stdout);
}

/* "failed <message>": one line whatever the message holds. */
static int say_failed(const char *msg) {
  char *esc = mb_escape(msg ? msg : "out of memory");
  printf(MPIBIND_AUTO_ANSWER_FAILED "%s\n", esc ? esc : "out of memory");
  free(esc);
  fflush(stdout);
  return 1;
}

static int say_mapping(const struct mpibind_auto_map_answer *a) {
  printf(MPIBIND_AUTO_ANSWER_HOW "%s\n", mpibind_auto_how_names[a->how]);
  if (a->topology)
    printf(MPIBIND_AUTO_ANSWER_TOPOLOGY "%s\n", a->topology);
  printf(MPIBIND_AUTO_ANSWER_BODY "%zu\n", a->len);
  if (fwrite(a->body, 1, a->len, stdout) != a->len || fflush(stdout) != 0)
    return 1;
  return 0;
}

static int draw(const struct mpibind_auto_inputs *in, const char *path) {
  struct mpibind_auto_node_mapping m;
  char *error = NULL, *warning = NULL;
  if (mpibind_auto_map_node(in, say_step, &m, &error) != 0) {
    warning = mpibind_auto_strdupf("mpibind: MPIBIND draw:%s: %s; the "
                                   "mapping is applied, without a picture",
                                   path, error ? error : "out of memory");
  } else if (m.h) { /* not m.keep: the task is not applied, no picture */
    say_step(MPIBIND_AUTO_STEP_MAP);
    /* the renderer, a child, must not map again */
    setenv("MPIBIND", "off", 1);
    warning = mpibind_auto_draw_warning(m.h, path);
    mpibind_auto_node_mapping_free(&m);
  }
  if (warning)
    printf(MPIBIND_AUTO_ANSWER_WARNING "%s\n", warning);
  free(warning);
  free(error);
  return fflush(stdout) != 0;
}

static int map(const struct opts *o) {
  static const struct mpibind_auto_steps steps = {say_step};
  struct mpibind_auto_tuning t;
  struct mpibind_auto_inputs in;
  struct mpibind_auto_map_answer a = {NULL, 0, 0, NULL};
  char *error = NULL;
  int rc;
  mpibind_auto_tuning_read(&t);
  mpibind_auto_tuning_of_task(&t, o->source, o->launcher, o->workers);
  if (t.error || mpibind_auto_inputs_init(&in, &t, o->ntasks, o->source,
                                          o->launcher) != 0) {
    rc = say_failed(t.error);
    mpibind_auto_tuning_free(&t);
    return rc;
  }
  for (int i = 0; i < mb_ngpuvars; i++)
    if (o->gpu[i] && (in.gpu_alloc[i] = strdup(o->gpu[i])) == NULL)
      error = mpibind_auto_strdupf("out of memory");
  if (error)
    rc = say_failed(error);
  else if (o->draw)
    rc = draw(&in, o->draw);
  else if (mpibind_auto_map_here((void *)&steps, &in, &a, &error) != 0)
    rc = say_failed(error);
  else
    rc = say_mapping(&a);
  mpibind_auto_map_answer_free(&a);
  free(error);
  mpibind_auto_inputs_free(&in);
  mpibind_auto_tuning_free(&t);
  return rc;
}

/* ---- --share: one task's share, for a program that binds it itself ------ */

/* One line on stderr; returns the exit status. */
static int complain(const char *msg, int status) {
  char *esc = mb_escape(msg ? msg : "out of memory");
  fprintf(stderr, "mpibind: %s\n", esc ? esc : "out of memory");
  free(esc);
  return status;
}

/* The variables to export, as "NAME=VALUE\n" lines (a mpibind_auto_setenv_f
 * into a growing string). */
struct lines {
  char *text;
  int bad; /* a name or value that is not one line */
};

static int add_line(const char *name, const char *value, int overwrite,
                    void *ctx) {
  struct lines *l = ctx;
  char *more;
  (void)overwrite;
  if (strpbrk(name, "=\n") || strchr(value, '\n')) {
    l->bad = 1;
    return -1;
  }
  more = mpibind_auto_strdupf("%s%s=%s\n", l->text, name, value);
  if (more == NULL)
    return -1;
  free(l->text);
  l->text = more;
  return 0;
}

/* The share as lines: its CPUs, thread count, NUMA nodes, GPUs, where
 * the topology came from (how), what the tuning asks of the binding
 * (dryrun, membind), then the variables the task exports, by
 * the preload's rules for this process's environment (the caller's) and
 * program (--program). */
static int say_share(const struct mpibind_auto_tuning *t,
                     const struct mpibind_auto_share *s, int task, int how) {
  struct lines l = {mpibind_auto_strdupf("cpus=%s\nnthreads=%d\n%s%s%s%s%s%s"
                                         "topology=%s\n%s%s",
                                         s->cpus, s->nthreads,
                                         s->mems ? "mems=" : "",
                                         s->mems ? s->mems : "",
                                         s->mems ? "\n" : "",
                                         s->gpus ? "gpus=" : "",
                                         s->gpus ? s->gpus : "",
                                         s->gpus ? "\n" : "",
                                         mpibind_auto_how_names[how],
                                         t->dryrun ? "dryrun=1\n" : "",
                                         t->membind ? "membind=1\n" : ""),
                    0};
  int rc;
  if (l.text == NULL ||
      mpibind_auto_export(t, s, task, mpibind_auto_omp_exports(t), add_line,
                          &l) != 0)
    rc = complain(l.bad ? "the task's share cannot be written as lines"
                        : "out of memory", 1);
  else
    rc = fputs(l.text, stdout) == EOF || fflush(stdout) != 0;
  free(l.text);
  return rc;
}

static int share(const struct opts *o) {
  struct mpibind_auto_tuning t;
  struct mpibind_auto_inputs in = {0};
  struct mpibind_auto_share s = {0};
  char *error = NULL, *gpu_what = NULL;
  int how, rc;
  mpibind_auto_tuning_read(&t);
  mpibind_auto_tuning_of_task(&t, o->source, o->launcher, o->workers);
  mpibind_auto_set_program(o->program);
  if (t.off)
    rc = complain("MPIBIND has off", EXIT_NO_SHARE);
  else if (t.error)
    rc = complain(t.error, 1);
  else if (mpibind_auto_inputs_init(&in, &t, o->ntasks, o->source,
                                    o->launcher) != 0 ||
           mpibind_auto_inputs_of_task(&in, o->task) != 0)
    rc = complain("out of memory", 1);
  else if (mpibind_auto_node_share(&in, o->task, 0, mpibind_auto_map_here,
                                   NULL, &s, &how, &gpu_what, &error) != 0)
    rc = complain(error, 1);
  else if (s.keep)
    rc = complain(s.keep, EXIT_NO_SHARE);
  else
    rc = say_share(&t, &s, o->task, how);
  free(error);
  free(gpu_what);
  mpibind_auto_share_free(&s);
  mpibind_auto_inputs_free(&in);
  mpibind_auto_tuning_free(&t);
  return rc;
}

/* Started by a process that runs as the user only in its effective ids
 * (the Slurm plugin in slurmstepd, which keeps root as its real uid), the
 * helper would parse the user's XML with root as its real uid and every
 * capability permitted.  It becomes the effective user entirely before
 * anything else (allowed without privilege: the new ids are current
 * ones).  0, or -1 when the ids cannot be dropped. */
static int drop_to_effective_ids(void) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 ||
      getresgid(&rgid, &egid, &sgid) != 0)
    return -1;
  if (rgid != egid || sgid != egid)
    if (setresgid(egid, egid, egid) != 0)
      return -1;
  if (ruid != euid || suid != euid)
    if (setresuid(euid, euid, euid) != 0)
      return -1;
  return 0;
}

/* Seconds the helper outlives its caller's time limit: the caller kills
 * it first and says what it was doing; this is for a caller that cannot
 * (stopped, or itself hung). */
#define OWN_DEADLINE_GRACE 2

/* The helper ends on its own, whatever happens to its caller, which
 * enforces its time limit only while alive: a task killed (SIGKILL, the
 * OOM killer) during a hung discovery would leave it running forever
 * under init.  It is killed when the thread that started it ends
 * (PR_SET_PDEATHSIG: the callers wait for it in that thread; and a
 * caller already gone shows as another parent), and at its own deadline
 * (a POSIX timer that sends SIGKILL, which no plugin can block or catch;
 * alarm() where there is none).  After the ids are dropped: a change of
 * ids clears the parent-death signal. */
static void end_on_its_own(void) {
  pid_t parent = getppid();
  char *error = NULL;
  int seconds = mpibind_auto_helper_seconds(&error);
  struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGKILL};
  timer_t timer;
  free(error);
  if (seconds < 0)
    seconds = 10; /* malformed: the caller refused it already */
  seconds += OWN_DEADLINE_GRACE;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0) {
    struct itimerspec at = {.it_value = {.tv_sec = seconds}};
    if (timer_settime(timer, 0, &at, NULL) != 0)
      alarm((unsigned)seconds);
  } else {
    signal(SIGALRM, SIG_DFL);
    alarm((unsigned)seconds);
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != parent)
    _exit(1); /* the caller died before the signal was asked for */
}

int main(int argc, char **argv) {
  struct opts o;
  if (drop_to_effective_ids() != 0) {
    fprintf(stderr, "cannot run as the effective user only\n");
    return 1;
  }
  end_on_its_own();
  if (argc == 1)
    return discover();
  if (argc == 3 && strcmp(argv[1], "--check") == 0)
    return check(argv[2]);
  if (parse_options(argc, argv, &o) == 0) {
    int rc = o.map ? map(&o) : share(&o);
    free(o.gpu);
    return rc;
  }
  free(o.gpu);
  fprintf(stderr, "usage: mpibind-discover [--check FILE | --map --ntasks N "
                  "[--source VAR] [--launcher PID] [--gpu NAME=LIST]... "
                  "[--name VAR=OPTION]... [--draw PATH] | --share --task I --ntasks N [--source VAR] "
                  "[--launcher PID] [--program ARGV0] [--workers]] (mpibind's helper)\n");
  return 2;
}
