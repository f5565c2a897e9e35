/*
 * cost.c - what a mapping costs in memory, known before it is allocated.
 *
 * No fixed limit on the number of tasks, but a mapping that cannot fit
 * must be refused at once with one line: allocating ntasks bitmaps one by
 * one until malloc fails took minutes and gigabytes for
 * mpibind -n 2147483647 (and the process or the whole node's jobs could
 * be killed by the OOM killer on the way).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cost.h"
#include "fail.h"
#include "handle.h"

/* What malloc hands out for a request of n bytes (glibc: 16-byte
 * granularity, 8 bytes of header, 32 bytes at least). */
static unsigned long long chunk(unsigned long long n)
{
  unsigned long long c = (n + 8 + 15) & ~15ULL;
  return c < 32 ? 32 : c;
}

/* One hwloc bitmap able to hold ids 0..last: its structure and its words
 * (hwloc grows them by powers of two). */
static unsigned long long bitmap_bytes(long long last)
{
  unsigned long long words = 1, need = last < 0 ? 1 : last / 64 + 1;
  while (words < need)
    words *= 2;
  return chunk(24) + chunk(words * sizeof(unsigned long));
}

/* Bytes this process may still allocate, or 0 when nothing says. */
static unsigned long long available(const char **source)
{
  unsigned long long best = 0;
  *source = NULL;
  FILE *f = fopen("/proc/meminfo", "r");
  if (f) {
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        best = kb * 1024;
        *source = "available memory of this machine";
        break;
      }
    fclose(f);
  }
  /* The process's own limits, less what it already uses. */
  unsigned long long vm = 0, data = 0;
  long page = sysconf(_SC_PAGESIZE);
  f = fopen("/proc/self/statm", "r");
  if (f) {
    unsigned long long size, res, shr, text, lib, dat;
    if (fscanf(f, "%llu %llu %llu %llu %llu %llu", &size, &res, &shr, &text,
               &lib, &dat) == 6 && page > 0) {
      vm = size * (unsigned long long)page;
      data = dat * (unsigned long long)page;
    }
    fclose(f);
  }
  static const struct {
    int resource;
    const char *name;
  } limits[] = {{RLIMIT_AS, "address-space limit (ulimit -v)"},
                {RLIMIT_DATA, "data limit (ulimit -d)"}};
  for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
    struct rlimit rl;
    if (getrlimit(limits[i].resource, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
      continue;
    unsigned long long used = limits[i].resource == RLIMIT_AS ? vm : data;
    unsigned long long left = rl.rlim_cur > used ? rl.rlim_cur - used : 0;
    if (!*source || left < best) {
      best = left;
      *source = limits[i].name;
    }
  }
  return best;
}

static void human(char *buf, size_t size, unsigned long long bytes)
{
  if (bytes >= (1ULL << 30))
    snprintf(buf, size, "%.1f GiB", bytes / (double)(1ULL << 30));
  else
    snprintf(buf, size, "%.1f MiB", bytes / (double)(1ULL << 20));
}

/* Below this, the outputs fit anywhere a hwloc topology does: the limits
 * are not read (they cost a few file reads per mapping). */
#define SMALL (16ULL << 20)

int mb_check_memory(mpibind_t *h, unsigned long long need, const char *what)
{
  if (need < SMALL)
    return 0;
  const char *source;
  unsigned long long have = available(&source);
  if (!source || need <= have)
    return 0;
  char n[32], a[32];
  human(n, sizeof n, need);
  human(a, sizeof a, have);
  return mb_fail_kind(h, ENOMEM,
                 "ntasks %d is too many for this process: their %s needs "
                 "about %s, more than the %s left by the %s",
                 h->ntasks, what, n, a, source);
}

int mb_check_mapping_memory(mpibind_t *h, hwloc_topology_t topo)
{
  /* Per task: a thread count, three bitmap pointers, a CPU bitmap as
   * large as the node's last PU, a GPU bitmap, a NIC bitmap (a NIC list
   * as long as the GPU list at most, in practice). */
  unsigned long long per_task =
      sizeof(int) + 3 * sizeof(hwloc_bitmap_t) +
      bitmap_bytes(hwloc_bitmap_last(hwloc_topology_get_topology_cpuset(topo))) +
      2 * bitmap_bytes(h->gpus.n - 1);
  return mb_check_memory(h, per_task * (unsigned long long)h->ntasks,
                         "mapping");
}

int mb_check_env_memory(mpibind_t *h, int nvars)
{
  /* Per task and variable: a pointer and a short string (the longest,
   * a GPU list, is bounded by the node's GPUs). */
  unsigned long long per_value =
      sizeof(char *) + chunk(16 + 8 * (unsigned long long)h->gpus.n);
  return mb_check_memory(h,
                         per_value * (unsigned long long)nvars *
                             (unsigned long long)h->ntasks,
                         "variables");
}
