/*
 * fuzz_nodemap.c - libFuzzer target: the node mapping file's reader
 * (auto/task/nodemap_read.c), a task's share read from a body in memory,
 * as a task reads the file another process wrote (issue 19, G11).  The
 * input: a byte for the task count and number, a byte of switches
 * (dryrun; the node's CPUs known; the job's CPUs a part of them;
 * membind; the node's report asked for; a per-task GPU list), then the
 * body.  Checks: a share taken from a body can be applied here (its CPUs
 * a non-empty list of the bound's, its NUMA nodes the bound's, under
 * dryrun a list), and reading costs what the body's length and the
 * node's size cost (libFuzzer's -timeout and -rss_limit_mb: a record
 * "cpus=0,2147483647" cost 256 MiB); no leak.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"
#include "gpualloc.h"
#include "mb_gpuvar_table.h"
#include "nodemap.h"

/* A list (in: whose every index is in `in`), checked without building
 * a set of what its numbers say. */
static void check_list(const char *list, const struct mpibind_auto_cpuset *in)
{
  struct mpibind_auto_cpuset s = MPIBIND_AUTO_CPUSET_INIT;
  if (list == NULL ||
      mpibind_auto_cpuset_parse_list_within(in ? &s : NULL, list, in) != 0 ||
      (in && !mpibind_auto_cpuset_included(&s, in)))
    abort();
  mpibind_auto_cpuset_free(&s);
}

/* The task's GPU lists as a launch would give them: per-task (Slurm's
 * step GPUs and the task's own) or none. */
static void gpu_lists(int per_task, int local, int ntasks)
{
  char *alloc[16] = {0};
  int set[16] = {0};
  if (mb_ngpuvars > 16)
    abort();
  if (per_task) {
    setenv("SLURM_STEP_GPUS", "0,1,2,3", 1);
    setenv("CUDA_VISIBLE_DEVICES", "2", 1);
  } else {
    unsetenv("SLURM_STEP_GPUS");
    unsetenv("CUDA_VISIBLE_DEVICES");
  }
  mpibind_auto_gpu_detect("SLURM_LOCALID", 0, local, ntasks, alloc, set);
  for (int i = 0; i < mb_ngpuvars; i++)
    free(alloc[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct mpibind_auto_cpuset node = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_cpuset job = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_cpuset mems = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_share_bounds ok = {0, NULL, NULL};
  struct mpibind_auto_share s;
  char *gpu_what = NULL;
  if (size < 2)
    return 0;
  int ntasks = 1 + (data[0] & 7), local = (data[0] >> 3) % ntasks;
  int flags = data[1];
  struct mpibind_auto_body b = {-1, 0, (const char *)data + 2, size - 2};

  ok.dryrun = flags & 1;
  if (flags & 2) {
    if (mpibind_auto_cpuset_parse_list(&node, "0-7") != 0 ||
        mpibind_auto_cpuset_parse_list(&job, "2-5") != 0)
      abort();
    if (flags & 4)
      mpibind_auto_cpuset_and(&node, &job);
    ok.cpus = &node;
  }
  if (flags & 8) {
    if (mpibind_auto_cpuset_parse_list(&mems, "0-1") != 0)
      abort();
    ok.mems = &mems;
  }
  gpu_lists(flags & 32, local, ntasks);

  memset(&s, 0, sizeof s);
  int rc = mpibind_auto_share_from_body(&b, ntasks, local, flags & 16, &ok,
                                        &s, &gpu_what);
  if (rc != 0 && rc != 1)
    abort();
  if (rc == 1 && s.keep == NULL && s.slot >= 0) {
    if (s.slot >= ntasks || s.nthreads < 0)
      abort();
    if (ok.dryrun || ok.cpus == NULL) {
      check_list(s.cpus, NULL);
    } else {
      if (s.cpus == NULL || s.cpus[0] == '\0')
        abort();
      check_list(s.cpus, ok.cpus);
      if (ok.mems && s.mems)
        check_list(s.mems, ok.mems);
    }
    if ((flags & 16) && s.report == NULL)
      abort();
  }
  mpibind_auto_share_free(&s);
  free(gpu_what);
  mpibind_auto_cpuset_free(&node);
  mpibind_auto_cpuset_free(&job);
  mpibind_auto_cpuset_free(&mems);
  return 0;
}
