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
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
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

int mpibind_auto_configure(const struct mpibind_auto_tuning *t, int count,
                           mpibind_t **hp, char **msg) {
  mpibind_t *h = NULL;
  const char *v = mpibind_auto_getenv(t, "MPIBIND");

  *hp = NULL;
  if (mpibind_init(&h) != 0 || h == NULL) {
    *msg = mpibind_auto_strdupf("cannot create a handle: %s",
                                mpibind_get_error(h));
    return -1;
  }
  *hp = h;
  if (mpibind_set_ntasks(h, count) != 0) {
    *msg = mpibind_auto_strdupf("%d tasks on this node: %s", count,
                                mpibind_get_error(h));
    return -1;
  }
  if ((t->nthreads > 0 && mpibind_set_nthreads(h, t->nthreads) != 0)) {
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
  /* A *_VISIBLE_DEVICES set at launch is the job's GPU allocation. */
  for (size_t i = 0; i < sizeof gpu_vars / sizeof gpu_vars[0]; i++) {
    const char *alloc = mpibind_auto_getenv(t, gpu_vars[i]);
    if (alloc != NULL &&
        mpibind_set_gpu_allocation(h, gpu_vars[i], alloc) != 0) {
      *msg = mpibind_auto_strdupf("%s='%s': %s", gpu_vars[i], alloc,
                                  mpibind_get_error(h));
      return -1;
    }
  }
  return 0;
}

int mpibind_auto_no_unallocated_gpus(const struct mpibind_auto_tuning *t,
                                     mpibind_t *h, char **msg) {
  for (size_t i = 0; i < sizeof gpu_vars / sizeof gpu_vars[0]; i++)
    if (mpibind_auto_getenv(t, gpu_vars[i]) == NULL &&
        mpibind_set_gpu_allocation(h, gpu_vars[i], "") != 0) {
      *msg = mpibind_auto_strdupf("%s (no GPU allocated): %s", gpu_vars[i],
                                  mpibind_get_error(h));
      return -1;
    }
  return 0;
}

int mpibind_auto_load_topology(const struct mpibind_auto_tuning *t,
                               mpibind_t *h, int use_cache, int *how,
                               hwloc_topology_t *owned, char **msg) {
  const char *v = mpibind_auto_getenv(t, "MPIBIND");
  *how = MPIBIND_TOPO_NONE;
  *owned = NULL;
  if (t->topofile) {
    int restore, rc;
    mpibind_auto_plugins_off_begin(&restore);
    rc = mpibind_set_topology_file(h, t->topofile);
    mpibind_auto_plugins_off_end(restore);
    if (rc != 0) {
      *msg = mpibind_auto_strdupf("MPIBIND_TOPOFILE='%s': %s", t->topofile,
                                  mpibind_get_error(h));
      return -1;
    }
    *how = MPIBIND_TOPO_FILE;
    /* dryrun only reports: a file of another node is how one previews a
     * GPU node's mapping */
    if (!t->dryrun && mpibind_topology_check_system(h) != 0) {
      *msg = mpibind_auto_strdupf(
          "MPIBIND_TOPOFILE='%s' does not describe this node: %s",
          t->topofile, mpibind_get_error(h));
      return -1;
    }
  } else if (use_cache) {
    if (mpibind_auto_topology(h, how, owned, msg) != 0)
      return -1;
  } else {
    if (mpibind_topology_load(h) != 0) {
      *msg = mpibind_auto_strdupf("%s", mpibind_get_error(h));
      return -1;
    }
    *how = MPIBIND_TOPO_DISCOVERED;
  }

  if (t->smt > 0) {
    hwloc_topology_t topo = mpibind_get_topology(h);
    int k = topo ? hw_smt(topo) : 0;
    if (topo && t->smt > k) {
      *msg = mpibind_auto_strdupf(
          "MPIBIND='%s': smt:%d exceeds the %d hardware thread%s per core "
          "of this node (expected smt:0 to smt:%d)",
          v ? v : "", t->smt, k, k == 1 ? "" : "s", k);
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

static int set_process_env(const char *name, const char *value,
                           int overwrite, void *ctx) {
  (void)ctx;
  return setenv(name, value, overwrite);
}

int mpibind_auto_export(const struct mpibind_auto_tuning *t, mpibind_t *h,
                        int local, mpibind_auto_setenv_f set, void *ctx) {
  int nnames = 0, has_cuda = 0, rc = 0;
  char **names = mpibind_get_env_var_names(h, &nnames);
  for (int i = 0; names && i < nnames; i++) {
    const char *name = names[i];
    char **vals;
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
    vals = mpibind_get_env_var_values(h, name);
    /* A variable the user set is kept (keep): its value was an input. */
    if (vals && vals[local] &&
        (!keep || mpibind_auto_getenv(t, name) == NULL) &&
        set(name, vals[local], 1, ctx) != 0)
      rc = -1;
  }
  /* CUDA numbers devices fastest first unless told otherwise; the
   * visible indexes mpibind writes follow the PCI bus order. */
  if (has_cuda && mpibind_auto_getenv(t, "CUDA_DEVICE_ORDER") == NULL &&
      set("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 1, ctx) != 0)
    rc = -1;
  return rc;
}

static int apply_task(struct mpibind_auto_tuning *t, int local, int count) {
  mpibind_t *h = NULL;
  hwloc_topology_t owned = NULL;
  int how = MPIBIND_TOPO_NONE, bound = 0, rc = 0;
  char *msg = NULL, *cpus = NULL;

  if (t->help && local == 0)
    fputs(mpibind_auto_help_text, stderr);
  if (t->error) {
    rc = problem(t, local, t->error);
    goto out;
  }

  if (mpibind_auto_configure(t, count, &h, &msg) != 0 ||
      mpibind_auto_load_topology(t, h, 1, &how, &owned, &msg) != 0 ||
      mpibind_auto_compute(t, h, count, &msg) != 0)
    goto fail;
  {
    hwloc_bitmap_t *sets = mpibind_get_cpus(h);
    if (sets && sets[local] &&
        hwloc_bitmap_list_asprintf(&cpus, sets[local]) < 0)
      cpus = NULL;
  }

  if ((t->verbose || t->dryrun) && local == 0)
    mpibind_auto_report(h);

  if (!t->dryrun) {
    if (mpibind_apply(h, local) != 0) {
      msg = mpibind_auto_strdupf("cannot bind task %d to CPUs %s: %s", local,
                                 cpus ? cpus : "?", mpibind_get_error(h));
      goto fail;
    }
    bound = 1;
  }

  /* Export the task's variables (docs/algorithm.md step 6). */
  mpibind_auto_export(t, h, local, set_process_env, NULL);
  /* GNU libgomp read OMP_NUM_THREADS before this ran (its constructor
   * runs first): tell the runtime directly. */
  if (t->nthreads < 0) {
    int *nths = mpibind_get_nthreads(h);
    void (*set_threads)(int) =
        (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (nths && nths[local] > 0 && set_threads)
      set_threads(nths[local]);
  }
  setenv("MPIBIND_APPLIED", mpibind_auto_applied_value(), 1);
  trace(local, count, how, bound, cpus);
  goto out;

fail:
  rc = problem(t, local, msg);
  trace(local, count, how, 0, cpus);
out:
  free(msg);
  free(cpus);
  if (h)
    mpibind_finalize(h);
  if (owned)
    hwloc_topology_destroy(owned);
  return rc;
}

const char *mpibind_auto_applied_value(void) { return "1"; }

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
