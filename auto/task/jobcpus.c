/*
 * jobcpus.c - which CPUs of this node the launch gave the job: no task is
 * ever bound to a CPU outside them.
 *
 * hwloc's allowed CPUs are the cgroup's, which is the job's only where the
 * resource manager confines jobs with cpuset cgroups.  Where jobs share a
 * node by CPU affinity alone (Slurm with task/affinity only, Flux's default
 * containment, taskset or numactl around a launcher, nested launches), the
 * job's CPUs are known only from the launch itself:
 *
 * - Slurm (the task number came from SLURM_LOCALID): when every node of the
 *   job has at least as many CPUs as this node lets the process use
 *   (SLURM_JOB_CPUS_PER_NODE), the job has the whole node; otherwise the
 *   step's CPUs on this node are the union of the local tasks' masks that
 *   srun binds them to (SLURM_CPU_BIND_TYPE mask_cpu or map_cpu with
 *   SLURM_CPU_BIND_LIST).  With no such list they cannot be known.
 * - Any other launcher: the CPUs its own process on this node may use (the
 *   task's parent: mpirun, prted, hydra_pmi_proxy, flux-shell, ...).  A
 *   launcher that binds each task to one CPU binds it inside its own set.
 * - No launcher (the wrapper run directly): the process's own affinity at
 *   start, which is what `taskset -c 1 mpibind -- prog` gave it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"
#include "mb_parse.h"

/* The affinity of thread/process `pid` (0: the caller) into `set`. */
static int affinity_of(pid_t pid, hwloc_bitmap_t set) {
  for (int n = 1024; n <= (1 << 24); n *= 2) {
    cpu_set_t *cs = CPU_ALLOC(n);
    size_t size = CPU_ALLOC_SIZE(n);
    if (cs == NULL)
      return -1;
    CPU_ZERO_S(size, cs);
    if (sched_getaffinity(pid, size, cs) != 0) {
      int e = errno;
      CPU_FREE(cs);
      if (e == EINVAL)
        continue; /* the kernel's mask is larger: grow */
      return -1;
    }
    hwloc_bitmap_zero(set);
    for (int c = 0; c < n; c++)
      if (CPU_ISSET_S(c, size, cs))
        hwloc_bitmap_set(set, (unsigned)c);
    CPU_FREE(cs);
    return 0;
  }
  return -1;
}

int mpibind_auto_affinity(pid_t pid, hwloc_bitmap_t set) {
  return affinity_of(pid, set);
}

/* The smallest entry of Slurm's "N(xM),K" counts, or -1 when malformed. */
static long slurm_min_count(const char *spec) {
  long min = -1;
  const char *p = spec;
  while (p && *p) {
    size_t digits = strspn(p, "0123456789");
    long long n;
    if (mb_parse_decimal(p, digits, 0, INT_MAX, &n) != 0)
      return -1;
    p += digits;
    if (*p == '(') {
      const char *close = strchr(p, ')');
      if (close == NULL)
        return -1;
      p = close + 1;
    }
    if (*p == ',')
      p++;
    else if (*p)
      return -1;
    if (min < 0 || n < min)
      min = n;
  }
  return min;
}

/* The union of SLURM_CPU_BIND_LIST's entries: hex masks (mask_cpu) or CPU
 * numbers (map_cpu).  Returns 0, or -1 when the list is absent or not
 * understood. */
static int slurm_bind_union(hwloc_bitmap_t set) {
  const char *type = getenv("SLURM_CPU_BIND_TYPE");
  const char *list = getenv("SLURM_CPU_BIND_LIST");
  int masks;
  hwloc_bitmap_t one;
  char *copy, *save = NULL;
  if (type == NULL || list == NULL || list[0] == '\0')
    return -1;
  if (strstr(type, "mask_cpu"))
    masks = 1;
  else if (strstr(type, "map_cpu"))
    masks = 0;
  else
    return -1;
  one = hwloc_bitmap_alloc();
  copy = strdup(list);
  if (one == NULL || copy == NULL) {
    hwloc_bitmap_free(one);
    free(copy);
    return -1;
  }
  hwloc_bitmap_zero(set);
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    if (masks) {
      /* hwloc's taskset syntax is Linux's hex mask, "0x" optional */
      if (strspn(tok + (strncmp(tok, "0x", 2) == 0 ? 2 : 0),
                 "0123456789abcdefABCDEF") !=
              strlen(tok + (strncmp(tok, "0x", 2) == 0 ? 2 : 0)) ||
          hwloc_bitmap_taskset_sscanf(one, tok) < 0)
        goto bad;
      hwloc_bitmap_or(set, set, one);
    } else {
      long long c;
      if (mb_parse_decimal(tok, strlen(tok), 0, INT_MAX, &c) != 0)
        goto bad;
      hwloc_bitmap_set(set, (unsigned)c);
    }
  }
  free(copy);
  hwloc_bitmap_free(one);
  return hwloc_bitmap_iszero(set) ? -1 : 0;
bad:
  free(copy);
  hwloc_bitmap_free(one);
  return -1;
}

int mpibind_auto_job_cpus(const char *source, hwloc_const_bitmap_t allowed,
                          hwloc_bitmap_t cpus, char **what) {
  *what = NULL;
  if (source == NULL) {
    if (affinity_of(0, cpus) != 0)
      return 0;
    *what = strdup("this process's CPUs at start");
  } else if (strcmp(source, "SLURM_LOCALID") == 0) {
    const char *per_node = getenv("SLURM_JOB_CPUS_PER_NODE");
    long min = per_node ? slurm_min_count(per_node) : -1;
    if (min >= hwloc_bitmap_weight(allowed))
      return 0; /* the job has every CPU of this node */
    if (slurm_bind_union(cpus) != 0) {
      const char *type = getenv("SLURM_CPU_BIND_TYPE");
      *what = mpibind_auto_strdupf(
          "the CPUs of this Slurm step on this node are unknown (the job "
          "has %s of the node's %d CPUs, SLURM_CPU_BIND_TYPE='%s' lists no "
          "task masks)",
          per_node ? per_node : "some", hwloc_bitmap_weight(allowed),
          type ? type : "");
      return -1;
    }
    *what = strdup("the CPUs srun binds this step's tasks to "
                   "(SLURM_CPU_BIND_LIST)");
  } else {
    pid_t parent = getppid();
    char comm[64] = "?";
    char path[64];
    FILE *f;
    if (parent <= 1 || affinity_of(parent, cpus) != 0)
      return 0;
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)parent);
    f = fopen(path, "re");
    if (f) {
      if (fgets(comm, sizeof comm, f) == NULL)
        strcpy(comm, "?");
      comm[strcspn(comm, "\n")] = '\0';
      fclose(f);
    }
    *what = mpibind_auto_strdupf("the CPUs of the launcher's process "
                                 "(pid %ld, %s)",
                                 (long)parent, comm);
  }
  hwloc_bitmap_and(cpus, cpus, allowed);
  if (hwloc_bitmap_iszero(cpus) || hwloc_bitmap_isequal(cpus, allowed)) {
    free(*what);
    *what = NULL;
    return 0; /* nothing narrower than the node: map it as before */
  }
  return 1;
}
