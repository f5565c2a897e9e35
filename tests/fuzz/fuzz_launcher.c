/*
 * fuzz_launcher.c - libFuzzer target: the launcher variables
 * (auto/launcher.c): SLURM_STEP_TASKS_PER_NODE read for one node
 * without expanding it, and the task number and count of every family.
 * The input: a family byte, a node id, then NUL-separated values.
 * Checks: a detected task is 0 <= local < count; the Slurm list reader
 * answers in time proportional to the string (libFuzzer's -timeout).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "launcher.h"
#include "tuning.h"

static const char *const families[][3] = {
    {"OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", NULL},
    {"MPI_LOCALRANKID", "MPI_LOCALNRANKS", NULL},
    {"PALS_LOCAL_RANKID", "PALS_LOCAL_SIZE", NULL},
    {"SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE", "SLURM_NODEID"},
    {"FLUX_TASK_LOCAL_ID", "FLUX_JOB_SIZE", "FLUX_JOB_NNODES"},
};
#define NFAM (sizeof families / sizeof *families)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 5)
    return 0;
  size_t fam = data[0] % NFAM;
  int nodeid = (int)((data[1] | data[2] << 8 | (uint32_t)data[3] << 16) &
                     0x7fffffff);
  char *buf = malloc(size - 4 + 1);
  if (!buf)
    return 0;
  memcpy(buf, data + 4, size - 4);
  buf[size - 4] = '\0';

  int n = mpibind_auto_slurm_tasks_on_node(buf, nodeid);
  if (n < -1)
    abort();

  /* A private environment per input (setenv never frees what it
   * replaces, which a long run would pile up). */
  char *env[4];
  size_t nenv = 0;
  const char *p = buf, *end = buf + (size - 4);
  for (int i = 0; i < 3 && families[fam][i] && p <= end; i++) {
    if (asprintf(&env[nenv], "%s=%s", families[fam][i], p) < 0)
      abort();
    nenv++;
    p += strlen(p) + 1;
  }
  env[nenv] = NULL;
  char **saved = environ;
  environ = env;
  int local = -1, count = -1;
  const char *source = NULL;
  char *error = NULL;
  int rc = mpibind_auto_launcher_detect(&local, &count, &source, &error);
  if (rc == 1 && (local < 0 || count < 1 || local >= count || !source))
    abort();
  if ((rc < 0) != (error != NULL))
    abort();
  free(error);
  environ = saved;
  for (size_t i = 0; i < nenv; i++)
    free(env[i]);
  free(buf);
  return 0;
}
