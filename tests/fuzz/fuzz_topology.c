/*
 * fuzz_topology.c - libFuzzer target: the library's topology loader
 * (mpibind_set_topology_file: its checks of what a mapping needs and of
 * this machine) and the mapping on what it accepts.
 *
 * The XML files are written by hwloc itself from a synthetic node the
 * input describes (levels and arities, a NUMA level or not, PUs per core),
 * never mutated as text: hwloc 2.9's own XML parser crashes on some
 * malformed files (an object without complete_cpuset, a bitmap ",,0x0"),
 * a bug of hwloc that fuzzing would find again and again.  What this
 * target covers is therefore our code on every shape of node, not
 * hwloc's parser; the front ends read a user's file where a crash of
 * hwloc costs nothing (see docs/interfaces.md).
 *
 * The input: 6 bytes of shape and inputs, then a restrict list.
 * Checks: every task of a successful mapping has CPUs, all of the node's,
 * and at least one thread; every failure has a one-line message.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpibind.h"

static char path[] = "/tmp/mpibind-fuzz-topology-XXXXXX.xml";
/* hwloc loads its plugins when the process's first topology is created
 * and unloads them with its last: one kept alive saves a dlopen of each
 * plugin per input (3 runs/s otherwise). */
static hwloc_topology_t keep_alive;

static void remove_file(void)
{
  unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  if (hwloc_topology_init(&keep_alive))
    abort();
  atexit(remove_file);
  int fd = mkstemps(path, 4);
  if (fd < 0)
    abort();
  close(fd);
  return 0;
}

static void one_line(mpibind_t *h)
{
  const char *m = mpibind_get_error(h);
  if (!*m || strchr(m, '\n'))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 6)
    return 0;
  /* pack:1-4 l3:1-2 core:1-8 pu:1-4 (at most 256 PUs), NUMA nodes at one
   * of four places: memory beside a package or an L3, or a level. */
  static const char *const shapes[] = {
      "pack:%d [numa] l3:%d core:%d pu:%d",
      "pack:%d numa:2 l3:%d core:%d pu:%d",
      "pack:%d l3:%d [numa] core:%d pu:%d",
      "pack:%d numa:1 l3:%d core:%d pu:%d"};
  char desc[128];
  snprintf(desc, sizeof desc, shapes[data[0] >> 2 & 3], 1 + (data[0] & 3),
           1 + (data[0] >> 4 & 1), 1 + (data[1] & 7), 1 + (data[1] >> 3 & 3));
  hwloc_topology_t t;
  if (hwloc_topology_init(&t))
    abort();
  if (hwloc_topology_set_synthetic(t, desc) || hwloc_topology_load(t)) {
    hwloc_topology_destroy(t);
    return 0; /* hwloc refuses this shape */
  }
  if (hwloc_topology_export_xml(t, path, 0)) {
    hwloc_topology_destroy(t);
    return 0;
  }
  hwloc_topology_destroy(t);

  char *list = malloc(size - 6 + 1);
  if (!list)
    abort();
  memcpy(list, data + 6, size - 6);
  list[size - 6] = '\0';

  mpibind_t *h = NULL;
  if (mpibind_init(&h))
    abort();
  if (mpibind_set_topology_file(h, path) != 0) {
    one_line(h);
  } else {
    int ntasks = 1 + data[2] % 64;
    mpibind_set_ntasks(h, ntasks);
    mpibind_set_nthreads(h, data[3] % 5);
    mpibind_set_smt(h, data[4] % 5);
    mpibind_set_greedy(h, data[5] & 1);
    mpibind_set_gpu_optim(h, data[5] >> 1 & 1);
    mpibind_set_restrict_type(h, data[5] >> 2 & 1);
    if (*list && mpibind_set_restrict_ids(h, list) != 0)
      one_line(h);
    if (mpibind(h) != 0) {
      one_line(h);
    } else {
      hwloc_topology_t topo = mpibind_get_topology(h);
      hwloc_const_bitmap_t all = hwloc_topology_get_topology_cpuset(topo);
      hwloc_bitmap_t *cpus = mpibind_get_cpus(h);
      int *nths = mpibind_get_nthreads(h);
      for (int i = 0; i < ntasks; i++)
        if (hwloc_bitmap_iszero(cpus[i]) ||
            !hwloc_bitmap_isincluded(cpus[i], all) || nths[i] < 1)
          abort();
      (void)mpibind_topology_check_system(h); /* never this machine's */
    }
  }
  mpibind_finalize(h);
  free(list);
  return 0;
}
