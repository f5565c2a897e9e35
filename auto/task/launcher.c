/*
 * launcher.c - which task of the node is this process, and how many tasks
 * does the node run, from the variables launchers set before exec.
 *
 * Order matters: the innermost launcher's variables come first.  A
 * torchrun worker's first: its agent, started by srun or mpirun, passes
 * that launch's variables on to every worker.  Then an MPI launcher's
 * own, because an MPI launcher started inside a Slurm allocation leaves
 * Slurm's variables of its own daemon in the ranks' environment (under
 * mpiexec.mpich in a Slurm step every rank sees SLURM_LOCALID=0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher.h"
#include "mb_text.h"
#include "procfile.h"
#include "strdupf.h"

/* A launcher family's node-local rank and size variables.  `paired`: the
 * launcher always sets both, so one without the other is a contradiction;
 * otherwise (Cray PALS versions differ in what they export) a missing size
 * only means the count must come from MPI_Init's communicator. */
struct pair_family {
  const char *rank_var;
  const char *size_var;
  int paired;
};

static const struct pair_family pair_families[] = {
    {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", 1}, /* Open MPI */
    {"MPI_LOCALRANKID", "MPI_LOCALNRANKS", 1}, /* MPICH hydra, Intel MPI */
    {"MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_SIZE", 1}, /* MVAPICH */
    {"PALS_LOCAL_RANKID", "PALS_LOCAL_SIZE", 0}, /* Cray PALS */
};

/* Whole string (surrounding blanks allowed) as an int >= 0 (the
 * project's one decimal rule, mb_text.h). */
static int parse_nonneg(const char *s, int *out) {
  long long v;
  size_t len;
  while (mb_ascii_space((unsigned char)*s))
    s++;
  len = strlen(s);
  while (len > 0 && mb_ascii_space((unsigned char)s[len - 1]))
    len--;
  if (mb_parse_decimal(s, len, 0, INT_MAX, &v) != 0)
    return -1;
  *out = (int)v;
  return 0;
}

/* The decimal int >= 0 at *p (its digits only); advances *p past them. */
static int take_count(const char **p, long *out) {
  long long v;
  if (mb_take_decimal(p, INT_MAX, &v) != 0)
    return -1;
  *out = (long)v;
  return 0;
}

static char *bad_number(const char *var, const char *val, const char *what) {
  return mpibind_auto_strdupf("%s='%s' is not %s", var, val, what);
}

/* Validates a (rank, count) pair read from rvar/cvar. */
static int check_pair(const char *rvar, const char *rval, const char *cvar,
                      const char *cval, int *local, int *count,
                      char **error) {
  int r, c;
  if (parse_nonneg(rval, &r) != 0) {
    *error = bad_number(rvar, rval,
                        "a node-local task number (expected an integer >= 0)");
    return -1;
  }
  if (parse_nonneg(cval, &c) != 0 || c == 0) {
    *error = bad_number(cvar, cval,
                        "a node-local task count (expected an integer >= 1)");
    return -1;
  }
  if (r >= c) {
    *error = mpibind_auto_strdupf(
        "%s=%s contradicts %s=%s (the task number must be below the count)",
        rvar, rval, cvar, cval);
    return -1;
  }
  *local = r;
  *count = c;
  return 1;
}

/* Reads the list entry by entry, never expanding "N(xM)": the cost is the
 * length of the string, whatever M says. */
int mpibind_auto_slurm_tasks_on_node(const char *spec, int nodeid) {
  const char *p = spec;
  long long node = 0;
  if (spec == NULL || nodeid < 0)
    return -1;
  while (*p) {
    long n, rep = 1;
    if (take_count(&p, &n) != 0)
      return -1;
    if (*p == '(') {
      /* "N(xM)": M nodes with N tasks each */
      if (p[1] != 'x')
        return -1;
      p += 2;
      if (take_count(&p, &rep) != 0 || *p != ')')
        return -1;
      p++;
    }
    if (*p == ',')
      p++;
    else if (*p)
      return -1;
    if (nodeid < node + rep)
      return (int)n;
    node += rep;
  }
  return -1;
}

static int detect_slurm(int *local, int *count, const char **source,
                        char **error) {
  const char *lid = getenv("SLURM_LOCALID");
  const char *tpn = getenv("SLURM_STEP_TASKS_PER_NODE");
  const char *nid = getenv("SLURM_NODEID");
  int r, node, c;

  /* SLURM_LOCALID alone (a batch script, an allocation's shell) does not
   * make a task of a step: only srun's steps carry the step layout. */
  if (lid == NULL || tpn == NULL)
    return 0;
  if (parse_nonneg(lid, &r) != 0) {
    *error = bad_number("SLURM_LOCALID", lid,
                        "a node-local task number (expected an integer >= 0)");
    return -1;
  }
  if (nid == NULL) {
    *error = mpibind_auto_strdupf(
        "SLURM_LOCALID=%s and SLURM_STEP_TASKS_PER_NODE='%s' are set but "
        "SLURM_NODEID is not",
        lid, tpn);
    return -1;
  }
  if (parse_nonneg(nid, &node) != 0) {
    *error = bad_number("SLURM_NODEID", nid,
                        "a node number (expected an integer >= 0)");
    return -1;
  }
  c = mpibind_auto_slurm_tasks_on_node(tpn, node);
  if (c <= 0) {
    *error = mpibind_auto_strdupf(
        "SLURM_STEP_TASKS_PER_NODE='%s' has no task count for "
        "SLURM_NODEID=%s (expected a list such as 2(x3),1)",
        tpn, nid);
    return -1;
  }
  if (r >= c) {
    *error = mpibind_auto_strdupf(
        "SLURM_LOCALID=%s contradicts SLURM_STEP_TASKS_PER_NODE='%s' "
        "(node %d runs %d tasks)",
        lid, tpn, node, c);
    return -1;
  }
  *local = r;
  *count = c;
  *source = "SLURM_LOCALID";
  return 1;
}

/* Flux gives the node-local task number but no node-local count; the
 * count is known only when the job has one node.  Otherwise the preload
 * takes both from the node-local communicator after MPI_Init. */
static int detect_flux(int *local, int *count, const char **source,
                       char **error) {
  const char *lid = getenv("FLUX_TASK_LOCAL_ID");
  const char *nn = getenv("FLUX_JOB_NNODES");
  const char *sz = getenv("FLUX_JOB_SIZE");
  int nodes;
  if (lid == NULL || nn == NULL || sz == NULL)
    return 0;
  if (parse_nonneg(nn, &nodes) != 0 || nodes != 1)
    return 0;
  if (check_pair("FLUX_TASK_LOCAL_ID", lid, "FLUX_JOB_SIZE", sz, local, count,
                 error) < 0)
    return -1;
  *source = "FLUX_TASK_LOCAL_ID";
  return 1;
}

/* torchrun's workers: LOCAL_RANK and LOCAL_WORLD_SIZE, named a torchrun
 * worker's by TORCHELASTIC_RUN_ID. */
static int detect_torch(int *local, int *count, const char **source,
                        char **error) {
  const char *run = getenv("TORCHELASTIC_RUN_ID");
  const char *r = getenv(MPIBIND_AUTO_TORCH_SOURCE);
  const char *c = getenv("LOCAL_WORLD_SIZE");
  if (run == NULL)
    return 0;
  if (r == NULL || c == NULL) {
    *error = mpibind_auto_strdupf(
        "TORCHELASTIC_RUN_ID='%s' (a torchrun worker) is set but %s is not",
        run, r == NULL ? MPIBIND_AUTO_TORCH_SOURCE : "LOCAL_WORLD_SIZE");
    return -1;
  }
  if (check_pair(MPIBIND_AUTO_TORCH_SOURCE, r, "LOCAL_WORLD_SIZE", c, local,
                 count, error) < 0)
    return -1;
  *source = MPIBIND_AUTO_TORCH_SOURCE;
  return 1;
}

int mpibind_auto_source_is_torch(const char *source) {
  return source != NULL && strcmp(source, MPIBIND_AUTO_TORCH_SOURCE) == 0;
}

int mpibind_auto_launcher_detect(int *local, int *count, const char **source,
                                 char **error) {
  int rc;
  *error = NULL;
  rc = detect_torch(local, count, source, error);
  if (rc != 0)
    return rc;
  return mpibind_auto_outer_launcher_detect(local, count, source, error);
}

int mpibind_auto_outer_launcher_detect(int *local, int *count,
                                       const char **source, char **error) {
  *error = NULL;
  for (size_t i = 0; i < sizeof pair_families / sizeof pair_families[0];
       i++) {
    const struct pair_family *f = &pair_families[i];
    const char *r = getenv(f->rank_var);
    const char *c = getenv(f->size_var);
    if (r == NULL && c == NULL)
      continue;
    if ((r == NULL || c == NULL) && !f->paired)
      continue;
    if (r == NULL || c == NULL) {
      const char *set = r ? f->rank_var : f->size_var;
      *error = mpibind_auto_strdupf("%s='%s' is set but %s is not", set,
                                    r ? r : c, r ? f->size_var : f->rank_var);
      return -1;
    }
    if (check_pair(f->rank_var, r, f->size_var, c, local, count, error) < 0)
      return -1;
    *source = f->rank_var;
    return 1;
  }
  int rc = detect_flux(local, count, source, error);
  if (rc != 0)
    return rc;
  return detect_slurm(local, count, source, error);
}

int mpibind_auto_is_launcher_program(void) {
  static const char *const names[] = {
      "mpirun",         "mpiexec",          "mpirun.openmpi",
      "mpiexec.openmpi", "orterun",         "orted",
      "prte",           "prted",            "prterun",
      "prun",           "mpiexec.mpich",    "mpirun.mpich",
      "mpiexec.hydra",  "mpiexec.gforker",  "hydra_pmi_proxy",
      "hydra_nameserver", "hydra_persist",  "srun",
      "salloc",         "sbatch",           "slurmstepd",
      "flux",           "flux-shell",       "flux-broker",
      "mpirun_rsh",     "mpispawn",         "aprun",
      "palsd",          "pmix_server",
  };
  const char *me = program_invocation_short_name;
  if (me == NULL)
    return 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(me, names[i]) == 0)
      return 1;
  return 0;
}

/* ---- torchrun's agent ---------------------------------------------- */

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int is_agent_module(const char *module) {
  return strcmp(module, "torch.distributed.run") == 0 ||
         strcmp(module, "torch.distributed.launch") == 0;
}

/* Python's command line (python -h): options before the script, some
 * with a value (-c CMD, -m MOD, -W ARG, -X OPT, --check-hash-based-pycs
 * MODE), single-letter flags that may be grouped (-uB, -um MOD); the
 * script is the first other word, "-" stdin.  1 when it is torchrun's
 * agent. */
static int python_runs_agent(int argc, const char *const *argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0)
      return i + 1 < argc && strcmp(base_name(argv[i + 1]), "torchrun") == 0;
    if (strcmp(a, "--check-hash-based-pycs") == 0) {
      i++;
      continue;
    }
    if (a[0] != '-' || a[1] == '\0')
      return strcmp(base_name(a), "torchrun") == 0; /* the script */
    if (a[1] == '-')
      continue; /* --version, --help, ... */
    for (const char *f = a + 1; *f; f++) {
      if (*f == 'c')
        return 0; /* -c CMD: no script */
      if (*f == 'm') {
        const char *module = f[1] ? f + 1 : i + 1 < argc ? argv[i + 1] : "";
        return is_agent_module(module);
      }
      if (*f == 'W' || *f == 'X') {
        if (f[1] == '\0')
          i++; /* the value is the next word */
        break;
      }
    }
  }
  return 0;
}

int mpibind_auto_is_torch_agent(int argc, const char *const *argv) {
  const char *prog;
  if (argc < 1 || argv == NULL || argv[0] == NULL)
    return 0;
  prog = base_name(argv[0]);
  if (strcmp(prog, "torchrun") == 0)
    return 1;
  return strncmp(prog, "python", 6) == 0 && python_runs_agent(argc, argv);
}

int mpibind_auto_torch_agent_here(void) {
  const char *me = program_invocation_short_name;
  char *buf;
  size_t len;
  int argc = 0, agent = 0;
  const char **argv;
  /* a rank of any other program pays no read */
  if (me == NULL ||
      (strncmp(me, "python", 6) != 0 && strcmp(me, "torchrun") != 0))
    return 0;
  if (mpibind_auto_read_file("/proc/self/cmdline", &buf, &len) != 0)
    return 0;
  argv = mpibind_auto_nul_list_argv(buf, len, &argc);
  if (argv)
    agent = mpibind_auto_is_torch_agent(argc, argv);
  free(argv);
  free(buf);
  return agent;
}

int mpibind_auto_torch_agent_threads(long agent) {
  const char *v = getenv("OMP_NUM_THREADS");
  char path[64], *buf;
  size_t len;
  int set_by_agent;
  if (agent <= 1 || v == NULL || strcmp(v, "1") != 0)
    return 0;
  snprintf(path, sizeof path, "/proc/%ld/environ", agent);
  if (mpibind_auto_read_file(path, &buf, &len) != 0)
    return 0;
  set_by_agent =
      mpibind_auto_nul_list_getenv(buf, len, "OMP_NUM_THREADS") == NULL;
  free(buf);
  return set_by_agent;
}
