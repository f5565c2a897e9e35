/*
 * fuzz_gpu_alloc.c - libFuzzer target: the GPU allocation lists
 * (mpibind_set_gpu_allocation) on real GPU nodes (Lassen: NVIDIA,
 * Tioga: AMD), mapped and turned into variables.  The input: a byte
 * choosing the node, the variable and the number of tasks, then the
 * value.  Checks: a mapping that succeeds gives each task only GPUs of
 * the node's list, and every failure has a one-line message.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpibind.h"

static hwloc_topology_t nodes[2];

static hwloc_topology_t load(const char *name)
{
  const char *dir = getenv("MPIBIND_FUZZ_TOPOLOGIES");
  char path[4096];
  hwloc_topology_t t;
  snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
  if (hwloc_topology_init(&t) || mpibind_topology_load_filters(t) ||
      hwloc_topology_set_xml(t, path) || hwloc_topology_load(t)) {
    fprintf(stderr, "fuzz_gpu_alloc: cannot load %s (set "
                    "MPIBIND_FUZZ_TOPOLOGIES)\n", path);
    abort();
  }
  return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  nodes[0] = load("coral-lassen.xml");
  nodes[1] = load("eas-tioga.xml");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  int node = data[0] & 1;
  int var = (data[0] >> 1) & 3;
  int ntasks = 1 + (data[0] >> 3);
  char *value = malloc(size);
  if (!value)
    return 0;
  memcpy(value, data + 1, size - 1);
  value[size - 1] = '\0';

  mpibind_t *h = NULL;
  if (mpibind_init(&h) || mpibind_set_topology(h, nodes[node]) ||
      mpibind_set_ntasks(h, ntasks))
    abort();
  const char *name = mpibind_get_gpu_var(var);
  if (mpibind_set_gpu_allocation(h, name, value) == 0) {
    if (mpibind(h) == 0) {
      int ngpus = mpibind_get_num_gpus(h);
      hwloc_bitmap_t *gpus = mpibind_get_gpus(h);
      for (int t = 0; t < ntasks; t++)
        if (hwloc_bitmap_last(gpus[t]) >= ngpus)
          abort();
      if (mpibind_set_env_vars(h) != 0)
        abort();
      for (int t = 0; t < ntasks; t++) {
        int n = 0;
        mpibind_get_gpus_ptask(h, t, &n);
      }
    } else if (strchr(mpibind_get_error(h), '\n') ||
               !*mpibind_get_error(h)) {
      abort();
    }
  }
  mpibind_finalize(h);
  free(value);
  return 0;
}
