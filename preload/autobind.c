/*
 * autobind.c - the automatic binding of one launched task (see autobind.h
 * for the contract).
 *
 * Why the order below: a problem must leave the process exactly as it
 * was, so everything that can fail (tuning, topology, mapping, binding)
 * happens before anything is exported.  Messages are printed by the
 * node's local task 0 only, since every task of a node sees the same
 * tuning and would print the same line.
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

#include "autobind-internal.h"
#include "autobind.h"

static const char *const gpu_vars[] = {"CUDA_VISIBLE_DEVICES",
                                       "ROCR_VISIBLE_DEVICES",
                                       "HIP_VISIBLE_DEVICES",
                                       "ZE_AFFINITY_MASK"};

static int is_gpu_var(const char *name) {
  for (size_t i = 0; i < sizeof gpu_vars / sizeof gpu_vars[0]; i++)
    if (strcmp(name, gpu_vars[i]) == 0)
      return 1;
  return 0;
}

/* Reports a problem (printed by the node's task 0, or by every task when
 * the task number is unknown) and gives the return value of the contract. */
static int problem(const struct mpibind_auto_tuning *t, int local,
                   const char *msg) {
  if (local <= 0)
    fprintf(stderr, "mpibind: %s; %s\n", msg ? msg : "out of memory",
            t->strict ? "strict: failing the launch"
                      : "running unbound");
  /* The task's processes (a shell script's commands, a program's
   * children) inherit the preload: MPIBIND_APPLIED=0 tells them this task
   * was handled, so that the line is not repeated by each of them. */
  if (!t->strict)
    setenv("MPIBIND_APPLIED", "0", 1);
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

/* The number of hardware threads per core (docs/algorithm.md step 0). */
static int hw_smt(hwloc_topology_t topo) {
  int depth = hwloc_get_type_or_below_depth(topo, HWLOC_OBJ_CORE);
  hwloc_obj_t core;
  if (depth < 0)
    return 1;
  core = hwloc_get_obj_by_depth(topo, depth, 0);
  if (core == NULL || core->type == HWLOC_OBJ_PU || core->arity == 0)
    return 1;
  return (int)core->arity;
}

/* "MPIBIND='..' MPIBIND_RESTRICT='..' ..." for the tuning actually given,
 * so that a mapping failure names the values it came from. */
static char *tuning_context(void) {
  static const char *const names[] = {"MPIBIND", "MPIBIND_RESTRICT",
                                      "MPIBIND_RESTRICT_TYPE",
                                      "MPIBIND_TOPOFILE", "OMP_NUM_THREADS"};
  char *s = strdup("");
  for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v == NULL)
      continue;
    char *n = mpibind_auto_strdupf("%s%s%s='%s'", s, *s ? " " : "", names[i],
                                   v);
    free(s);
    s = n;
  }
  return s;
}

/* Sets a variable unless the user's own value must be kept. */
static void export_var(const char *name, const char *value, int keep_user) {
  if (value == NULL)
    return;
  setenv(name, value, keep_user ? 0 : 1);
}

/* Computing the node's mapping (nodemap.c calls it on the node's first
 * task): the topology, the smt check that needs it, the mapping and its
 * variables. */
struct map_ctx {
  mpibind_t *h;
  const struct mpibind_auto_tuning *t;
  int count;
  int *how;
};

static int map_node(void *vctx, mpibind_t **mapped, char **error) {
  struct map_ctx *c = vctx;
  const struct mpibind_auto_tuning *t = c->t;
  const char *v = getenv("MPIBIND");
  if (mpibind_auto_topology(c->h, t, c->how, error) != 0)
    return -1;
  if (t->smt > 0) {
    hwloc_topology_t topo = mpibind_get_topology(c->h);
    int k = topo ? hw_smt(topo) : 0;
    if (topo && t->smt > k) {
      *error = mpibind_auto_strdupf(
          "MPIBIND='%s': smt:%d exceeds the %d hardware thread%s per core "
          "of this node (expected smt:0 to smt:%d)",
          v ? v : "", t->smt, k, k == 1 ? "" : "s", k);
      return -1;
    }
  }
  if (mpibind(c->h) != 0 || mpibind_set_env_vars(c->h) != 0) {
    char *ctx = tuning_context();
    *error = mpibind_auto_strdupf(
        "cannot map %d task%s on this node%s%s: %s", c->count,
        c->count == 1 ? "" : "s", ctx && *ctx ? " with " : "", ctx ? ctx : "",
        mpibind_get_error(c->h));
    free(ctx);
    return -1;
  }
  *mapped = c->h;
  return 0;
}

/* The task's share of the node's mapping; every input of the mapping
 * other than the topology goes into the text that keys the node's file. */
static int node_mapping(const struct mpibind_auto_tuning *t, mpibind_t *h,
                        int local, int count, int *how,
                        struct mpibind_auto_share *share, char **msg) {
  struct map_ctx c = {h, t, count, how};
  char *inputs = mpibind_auto_strdupf(
      "smt=%d greedy=%d gpu_optim=%d nthreads=%d dryrun=%d restrict_type=%d\n"
      "restrict=%s\n",
      t->smt, t->greedy, t->gpu_optim, t->nthreads, t->dryrun,
      t->restrict_type, t->restrict_ids ? t->restrict_ids : "(none)");
  int shared = 0, rc;
  for (size_t i = 0; inputs && i < sizeof gpu_vars / sizeof gpu_vars[0]; i++) {
    const char *alloc = getenv(gpu_vars[i]);
    char *more = mpibind_auto_strdupf("%s%s=%s\n", inputs, gpu_vars[i],
                                      alloc ? alloc : "(unset)");
    free(inputs);
    inputs = more;
  }
  if (inputs == NULL) {
    *msg = NULL;
    return -1;
  }
  rc = mpibind_auto_node_mapping(t, inputs, local, count,
                                 (t->verbose || t->dryrun) && local == 0,
                                 map_node, &c, share, &shared, msg);
  if (rc == 0 && shared)
    *how = t->topofile ? MPIBIND_TOPO_FILE : MPIBIND_TOPO_CACHE;
  free(inputs);
  return rc;
}

static int apply_task(struct mpibind_auto_tuning *t, int local, int count) {
  mpibind_t *h = NULL;
  struct mpibind_auto_share share = {0};
  int how = MPIBIND_TOPO_NONE, bound = 0, rc = 0;
  char *msg = NULL, *cpus = NULL;
  const char *v;

  if (t->help && local == 0)
    fputs(mpibind_auto_help_text, stderr);
  if (t->error) {
    rc = problem(t, local, t->error);
    goto out;
  }

  if (mpibind_init(&h) != 0 || h == NULL) {
    msg = mpibind_auto_strdupf("cannot create a handle: %s",
                               mpibind_get_error(h));
    goto fail;
  }
  if (mpibind_set_ntasks(h, count) != 0) {
    msg = mpibind_auto_strdupf("%d tasks on this node: %s", count,
                               mpibind_get_error(h));
    goto fail;
  }
  v = getenv("MPIBIND");
  if ((t->nthreads > 0 && mpibind_set_nthreads(h, t->nthreads) != 0)) {
    msg = mpibind_auto_strdupf("OMP_NUM_THREADS='%s': %s",
                               getenv("OMP_NUM_THREADS"), mpibind_get_error(h));
    goto fail;
  }
  if ((t->smt >= 0 && mpibind_set_smt(h, t->smt) != 0) ||
      (t->greedy >= 0 && mpibind_set_greedy(h, t->greedy) != 0) ||
      (t->gpu_optim >= 0 && mpibind_set_gpu_optim(h, t->gpu_optim) != 0)) {
    msg = mpibind_auto_strdupf("MPIBIND='%s': %s", v ? v : "",
                               mpibind_get_error(h));
    goto fail;
  }
  if (t->restrict_ids && mpibind_set_restrict_ids(h, t->restrict_ids) != 0) {
    msg = mpibind_auto_strdupf("MPIBIND_RESTRICT='%s': %s", t->restrict_ids,
                               mpibind_get_error(h));
    goto fail;
  }
  if (t->restrict_type >= 0 &&
      mpibind_set_restrict_type(h, t->restrict_type) != 0) {
    msg = mpibind_auto_strdupf("MPIBIND_RESTRICT_TYPE='%s': %s",
                               getenv("MPIBIND_RESTRICT_TYPE"),
                               mpibind_get_error(h));
    goto fail;
  }
  /* A *_VISIBLE_DEVICES set at launch is the job's GPU allocation. */
  for (size_t i = 0; i < sizeof gpu_vars / sizeof gpu_vars[0]; i++) {
    const char *alloc = getenv(gpu_vars[i]);
    if (alloc != NULL &&
        mpibind_set_gpu_allocation(h, gpu_vars[i], alloc) != 0) {
      msg = mpibind_auto_strdupf("%s='%s': %s", gpu_vars[i], alloc,
                                 mpibind_get_error(h));
      goto fail;
    }
  }

  /* The node's mapping, computed once per node (nodemap.c). */
  if (node_mapping(t, h, local, count, &how, &share, &msg) != 0)
    goto fail;
  cpus = strdup(share.cpus);

  if ((t->verbose || t->dryrun) && local == 0 && share.report)
    fputs(share.report, stderr);

  if (!t->dryrun) {
    if (mpibind_apply_cpus(h, share.cpus) != 0) {
      msg = mpibind_auto_strdupf("cannot bind task %d to CPUs %s: %s", local,
                                 share.cpus, mpibind_get_error(h));
      goto fail;
    }
    bound = 1;
  }

  /* Export the task's variables (docs/algorithm.md step 6). */
  {
    int has_cuda = 0;
    for (int i = 0; i < share.nvars; i++) {
      const char *name = share.names[i];
      int keep = 0;
      if (strcmp(name, "OMP_NUM_THREADS") == 0) {
        keep = 1; /* the user's value was the nthreads input */
      } else if (strcmp(name, "OMP_PLACES") == 0) {
        if (t->no_omp_places)
          continue;
        keep = 1;
      } else if (strcmp(name, "OMP_PROC_BIND") == 0) {
        if (t->no_omp_proc_bind)
          continue;
        keep = 1;
      } else if (is_gpu_var(name)) {
        if (t->no_visible_devices)
          continue;
        if (strcmp(name, "CUDA_VISIBLE_DEVICES") == 0)
          has_cuda = 1;
      }
      export_var(name, share.values[i], keep);
    }
    /* CUDA numbers devices fastest first unless told otherwise; the
     * visible indexes mpibind writes follow the PCI bus order. */
    if (has_cuda)
      setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 0);
  }
  /* GNU libgomp read OMP_NUM_THREADS before this ran (its constructor
   * runs first): tell the runtime directly. */
  if (t->nthreads < 0) {
    void (*set_threads)(int) =
        (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (share.nthreads > 0 && set_threads)
      set_threads(share.nthreads);
  }
  setenv("MPIBIND_APPLIED", "1", 1);
  trace(local, count, how, bound, cpus);
  goto out;

fail:
  rc = problem(t, local, msg);
  trace(local, count, how, 0, cpus);
out:
  free(msg);
  free(cpus);
  mpibind_auto_share_free(&share);
  if (h)
    mpibind_finalize(h);
  return rc;
}

/* 1: bound by an earlier step (the wrapper, a parent process); 0: an
 * earlier step reported a problem and left the task unbound. */
static int already_applied(void) {
  const char *v = getenv("MPIBIND_APPLIED");
  return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "0") == 0);
}

int mpibind_auto_apply_task(int local, int count, const char *source) {
  struct mpibind_auto_tuning t;
  int rc;
  (void)source;
  if (already_applied())
    return 0;
  mpibind_auto_tuning_read(&t);
  if (t.off) {
    mpibind_auto_tuning_free(&t);
    return 0;
  }
  rc = apply_task(&t, local, count);
  mpibind_auto_tuning_free(&t);
  return rc;
}

int mpibind_auto_apply(int standalone) {
  struct mpibind_auto_tuning t;
  int local = 0, count = 1, rc;
  const char *source = NULL;
  char *lerr = NULL;

  if (already_applied())
    return 0;
  mpibind_auto_tuning_read(&t);
  if (t.off) {
    mpibind_auto_tuning_free(&t);
    return 0;
  }
  rc = mpibind_auto_launcher_detect(&local, &count, &source, &lerr);
  if (rc < 0) {
    /* The task number is unknown: every task that sees the contradiction
     * reports it. */
    rc = problem(&t, -1, lerr);
    free(lerr);
    mpibind_auto_tuning_free(&t);
    return rc;
  }
  if (rc == 0) {
    if (!standalone) {
      mpibind_auto_tuning_free(&t);
      return 0;
    }
    local = 0;
    count = 1;
  }
  rc = apply_task(&t, local, count);
  mpibind_auto_tuning_free(&t);
  return rc;
}
