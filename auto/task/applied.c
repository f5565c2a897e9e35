/*
 * applied.c - which task MPIBIND_APPLIED speaks of.
 *
 * A task exports MPIBIND_APPLIED (1 bound, 0 a problem reported) so that
 * its second pass (the wrapper's program after exec, MPI_Init after the
 * constructor) and its child processes (a script's commands, which
 * inherit the preload) neither redo the work nor repeat a message.  The
 * value alone cannot say *which* task it was: inherited by a nested
 * launch (mpiexec inside a task) or exported by hand, it used to switch
 * mpibind off for everything below.  MPIBIND_APPLIED_TASK therefore
 * records "<pid>:<key>", the key a hash of the variables that name a
 * launched task and its tuning.  A process skips only when it is that
 * process or has the same key (the same task's process tree); a nested
 * launch gives its tasks other launcher variables, hence another key.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "applied.h"
#include "mb_text.h"
#include "procfile.h"
#include "strdupf.h"

/* The variables that say which task of which launch this is, and how it
 * is tuned.  Never one that applying exports (OMP_*, *_VISIBLE_DEVICES):
 * the task's children must compute the same key as the task.  Nor PMI_FD,
 * a descriptor number that Flux's shell fills in only when it forks the
 * task, after its plugins marked it (PMI_RANK and PMI_SIZE name the task). */
static const char *const task_vars[] = {
    "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "OMPI_COMM_WORLD_RANK", "PMIX_NAMESPACE", "PMIX_RANK",
    "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_RANK", "PMI_SIZE",
    "PMI_PORT", "PMI_ID",
    "MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_SIZE",
    "PALS_LOCAL_RANKID", "PALS_LOCAL_SIZE", "PALS_RANKID", "PALS_APID",
    "SLURM_LOCALID", "SLURM_NODEID", "SLURM_STEP_TASKS_PER_NODE",
    "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID",
    "FLUX_TASK_LOCAL_ID", "FLUX_JOB_ID", "FLUX_JOB_SIZE", "FLUX_JOB_NNODES",
    /* torchrun's workers: an agent mapped as a launch's task (the Slurm
     * plugin's) leaves its mark to workers that are tasks of their own */
    "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MPIBIND", "MPIBIND_RESTRICT", "MPIBIND_RESTRICT_TYPE",
    "MPIBIND_TOPOFILE",
};

/* This process's key, computed by mpibind_auto_applied_check. */
static char this_key[17];

/* FNV-1a, 64 bits: a short, stable name for a set of strings. */
static uint64_t fnv(uint64_t h, const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static const char *process_getenv(const char *name, void *ctx) {
  (void)ctx;
  return getenv(name);
}

/* The key of the task variables read through get(), into key[17]. */
static void key_of(mpibind_auto_getenv_f get, void *ctx, const char *extra,
                   char key[17]) {
  uint64_t h = 14695981039346656037ULL;
  for (size_t i = 0; i < sizeof task_vars / sizeof task_vars[0]; i++) {
    const char *v = get(task_vars[i], ctx);
    if (v == NULL)
      continue;
    h = fnv(h, task_vars[i], strlen(task_vars[i]) + 1);
    h = fnv(h, v, strlen(v) + 1);
  }
  if (extra)
    h = fnv(h, extra, strlen(extra) + 1);
  mpibind_auto_snprintf(key, 17, "%016llx", (unsigned long long)h);
}

/* The variables this process was started with: /proc/self/environ, which
 * setenv() in the process does not change ("NAME=value\0" each). */
struct initial_env {
  char *buf;
  size_t len;
};

static const char *initial_getenv(const char *name, void *ctx) {
  const struct initial_env *e = ctx;
  return mpibind_auto_nul_list_getenv(e->buf, e->len, name);
}

/* 1 when `key` is the key of the variables this process was started with
 * (no `extra`); 0 otherwise, or when they cannot be read. */
static int initial_key_is(const char *key) {
  struct initial_env e;
  char k[17];
  int same = 0;
  if (mpibind_auto_read_file("/proc/self/environ", &e.buf, &e.len) != 0)
    return 0;
  key_of(initial_getenv, &e, NULL, k);
  same = strcmp(k, key) == 0;
  free(e.buf);
  return same;
}

static void compute_key(const char *extra) {
  key_of(process_getenv, NULL, extra, this_key);
}

int mpibind_auto_applied_check(const char *extra, int explicit_request) {
  const char *state = getenv("MPIBIND_APPLIED");
  const char *mark = getenv("MPIBIND_APPLIED_TASK");
  const char *colon;
  long long pid;
  compute_key(extra);
  if (explicit_request || state == NULL || mark == NULL ||
      (strcmp(state, "1") != 0 && strcmp(state, "0") != 0))
    return 0;
  colon = strchr(mark, ':');
  if (colon == NULL ||
      mb_parse_decimal(mark, (size_t)(colon - mark), 0, INT_MAX, &pid) != 0)
    return 0; /* not ours: a stray value decides nothing */
  if (pid == (long long)getpid())
    return 1; /* this very process, a second pass */
  if (strcmp(colon + 1, this_key) == 0)
    return 1; /* the same task's tree */
  /* A launcher's plugin marked the task before its exec (key without
   * `extra`), and since then this process's own variables changed: Open
   * MPI's MPI_Init adds OMPI_COMM_WORLD_* and PMIX_* in the process, and
   * under Flux with several nodes the task number comes from MPI only.
   * The task is the one the process was started as. */
  return initial_key_is(colon + 1);
}

int mpibind_auto_applied_mark_for(int bound, long pid,
                                  mpibind_auto_getenv_f get, void *get_ctx,
                                  mpibind_auto_setenv_f set, void *set_ctx) {
  char key[17], mark[64];
  int rc = 0;
  key_of(get, get_ctx, NULL, key);
  mpibind_auto_snprintf(mark, sizeof mark, "%ld:%s", pid, key);
  if (set("MPIBIND_APPLIED", bound ? "1" : "0", 1, set_ctx) != 0)
    rc = -1;
  if (set("MPIBIND_APPLIED_TASK", mark, 1, set_ctx) != 0)
    rc = -1;
  return rc;
}

void mpibind_auto_applied_mark(int bound) {
  char mark[64];
  mpibind_auto_snprintf(mark, sizeof mark, "%ld:%s", (long)getpid(), this_key);
  setenv("MPIBIND_APPLIED", bound ? "1" : "0", 1);
  setenv("MPIBIND_APPLIED_TASK", mark, 1);
}
