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
 * - A torchrun worker: likewise its agent's CPUs (torchrun, the worker's
 *   parent), which the launch around the agent gave it; under Slurm also
 *   within the step's CPUs as above (srun may leave its task unbound on a
 *   node it shares), so that the workers share what the agent was given
 *   and nothing else.
 * - No launcher (the wrapper run directly): the process's own affinity at
 *   start, which is what `taskset -c 1 mpibind -- prog` gave it.
 *
 * The task computes them against its launcher's CPUs (it has no
 * topology; mpibind_auto_launch_cpus): with those CPUs, that is the node
 * mapping file's key.  The helper computes them again against the
 * topology's CPUs, which decide; it is told the launcher's pid (its own
 * parent is the task) and inherits the task's affinity and variables.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobcpus.h"
#include "launcher.h"
#include "machine.h"
#include "mb_text.h"
#include "strdupf.h"

int mpibind_auto_online_cpus(struct mpibind_auto_cpuset *s, char **text) {
  char *line = mpibind_auto_read_line("/sys/devices/system/cpu/online");
  int rc = line && mpibind_auto_cpuset_parse_list(s, line) == 0 &&
                   !mpibind_auto_cpuset_iszero(s)
               ? 0
               : -1;
  if (text)
    *text = line;
  else
    free(line);
  return rc;
}

int mpibind_auto_launch_cpus(const char *source, long launcher,
                             struct mpibind_auto_cpuset *s) {
  /* Slurm's tasks have slurmstepd for a parent, whose CPUs may be the
   * node's specialized cores (CoreSpec) rather than the job's: the step's
   * CPUs come from Slurm's variables (slurm_cpus), within the node's */
  int slurm = source != NULL && strcmp(source, "SLURM_LOCALID") == 0;
  pid_t pid = slurm            ? -1
              : source == NULL ? 0
              : launcher > 1   ? (pid_t)launcher
                               : -1;
  if (pid >= 0 && mpibind_auto_cpuset_get_affinity(pid, s) == 0 &&
      !mpibind_auto_cpuset_iszero(s))
    return 0;
  return mpibind_auto_online_cpus(s, NULL);
}

/* The smallest entry of Slurm's "N(xM),K" counts, or -1 when malformed. */
static long slurm_min_count(const char *spec) {
  long min = -1;
  const char *p = spec;
  while (p && *p) {
    long long n;
    if (mb_take_decimal(&p, INT_MAX, &n) != 0)
      return -1;
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
static int slurm_bind_union(struct mpibind_auto_cpuset *set) {
  const char *type = getenv("SLURM_CPU_BIND_TYPE");
  const char *list = getenv("SLURM_CPU_BIND_LIST");
  struct mpibind_auto_cpuset one = MPIBIND_AUTO_CPUSET_INIT;
  char *copy, *save = NULL;
  int masks, rc = -1;
  if (type == NULL || list == NULL || list[0] == '\0')
    return -1;
  if (strstr(type, "mask_cpu"))
    masks = 1;
  else if (strstr(type, "map_cpu"))
    masks = 0;
  else
    return -1;
  copy = strdup(list);
  if (copy == NULL)
    return -1;
  mpibind_auto_cpuset_zero(set);
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    long long c;
    if (masks ? mpibind_auto_cpuset_parse_mask(&one, tok) != 0 ||
                    mpibind_auto_cpuset_or(set, &one) != 0
              : mb_parse_decimal(tok, strlen(tok), 0, INT_MAX, &c) != 0 ||
                    mpibind_auto_cpuset_set(set, (unsigned)c) != 0)
      goto out;
  }
  rc = mpibind_auto_cpuset_iszero(set) ? -1 : 0;
out:
  free(copy);
  mpibind_auto_cpuset_free(&one);
  return rc;
}

/* The CPUs of the launcher's process (the task's parent), and its name
 * for the report when what is not NULL. */
static int launcher_cpus(long launcher, struct mpibind_auto_cpuset *cpus,
                         char **what) {
  char comm[64] = "?";
  char path[64];
  FILE *f;
  if (launcher <= 1 ||
      mpibind_auto_cpuset_get_affinity((pid_t)launcher, cpus) != 0)
    return -1;
  if (what == NULL)
    return 0;
  snprintf(path, sizeof path, "/proc/%ld/comm", launcher);
  f = fopen(path, "re");
  if (f) {
    if (fgets(comm, sizeof comm, f) == NULL)
      strcpy(comm, "?");
    comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
  }
  *what = mpibind_auto_strdupf("the CPUs of the launcher's process "
                               "(pid %ld, %s)",
                               launcher, comm);
  return 0;
}

/* Under Slurm: 0 the job has the node, 1 the step's CPUs in `cpus`, -1
 * unknown (*what says why). */
static int slurm_cpus(const struct mpibind_auto_cpuset *allowed,
                      struct mpibind_auto_cpuset *cpus, char **what) {
  const char *per_node = getenv("SLURM_JOB_CPUS_PER_NODE");
  long min = per_node ? slurm_min_count(per_node) : -1;
  int weight = mpibind_auto_cpuset_weight(allowed);
  if (min >= weight)
    return 0; /* the job has every CPU of this node */
  if (slurm_bind_union(cpus) != 0) {
    const char *type = getenv("SLURM_CPU_BIND_TYPE");
    if (what)
      *what = mpibind_auto_strdupf(
          "the CPUs of this Slurm step on this node are unknown (the job "
          "has %s of the node's %d CPUs, SLURM_CPU_BIND_TYPE='%s' lists no "
          "task masks)",
          per_node ? per_node : "some", weight, type ? type : "");
    return -1;
  }
  if (what)
    *what = strdup("the CPUs srun binds this step's tasks to "
                   "(SLURM_CPU_BIND_LIST)");
  return 1;
}

/* A torchrun worker: its agent's CPUs (the launcher's process), within
 * the Slurm step's when the agent is a task of one.  0 found, 1 nothing
 * narrower than the node is known, -1 unknown (*what says why). */
static int torch_worker_cpus(long agent,
                             const struct mpibind_auto_cpuset *allowed,
                             struct mpibind_auto_cpuset *cpus, char **what) {
  struct mpibind_auto_cpuset step = MPIBIND_AUTO_CPUSET_INIT;
  const char *outer = NULL;
  char *err = NULL;
  int local, count, rc;
  if (launcher_cpus(agent, cpus, what) != 0)
    return 1;
  if (mpibind_auto_outer_launcher_detect(&local, &count, &outer, &err) <= 0 ||
      strcmp(outer, "SLURM_LOCALID") != 0) {
    free(err);
    return 0;
  }
  rc = slurm_cpus(allowed, &step, NULL);
  if (rc > 0)
    mpibind_auto_cpuset_and(cpus, &step);
  else if (rc < 0 && what) {
    free(*what);
    *what = strdup("the CPUs of the Slurm step around torchrun's agent on "
                   "this node are unknown (SLURM_CPU_BIND_LIST lists no task "
                   "masks)");
  }
  mpibind_auto_cpuset_free(&step);
  return rc < 0 ? -1 : 0;
}

int mpibind_auto_job_cpus(const char *source, long launcher,
                          const struct mpibind_auto_cpuset *allowed,
                          struct mpibind_auto_cpuset *cpus, char **what) {
  if (what)
    *what = NULL;
  if (source == NULL) {
    if (mpibind_auto_cpuset_get_affinity(0, cpus) != 0)
      return 0;
    if (what)
      *what = strdup("this process's CPUs at start");
  } else if (strcmp(source, "SLURM_LOCALID") == 0) {
    int rc = slurm_cpus(allowed, cpus, what);
    if (rc <= 0)
      return rc;
  } else if (mpibind_auto_source_is_torch(source)) {
    int rc = torch_worker_cpus(launcher, allowed, cpus, what);
    if (rc != 0)
      return rc < 0 ? -1 : 0;
  } else if (launcher_cpus(launcher, cpus, what) != 0) {
    return 0;
  }
  mpibind_auto_cpuset_and(cpus, allowed);
  if (mpibind_auto_cpuset_iszero(cpus) ||
      mpibind_auto_cpuset_equal(cpus, allowed)) {
    if (what) {
      free(*what);
      *what = NULL;
    }
    return 0; /* nothing narrower than the node: map it as before */
  }
  return 1;
}
