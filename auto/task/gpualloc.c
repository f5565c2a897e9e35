/*
 * gpualloc.c - the GPU allocation a task starts with: a task is mapped only
 * GPUs the launch gave the job, and a per-task list stays the task's own.
 *
 * A *_VISIBLE_DEVICES set at launch is either the node's allocation, the
 * same in every task (`srun --gpus=4`, a variable exported in the job
 * script), or each task's own list (`srun --gpus-per-task=1`, Flux
 * `-o gpu-affinity=per-task`, site scripts that give local task i GPU i).
 * Taken as the node's allocation, a per-task list makes every task map the
 * node as if it had one GPU.  Every task of the node must compute the same
 * mapping, so a per-task list is recognized from what each task can see:
 *
 * - Slurm (the task number came from SLURM_LOCALID): SLURM_STEP_GPUS is the
 *   step's GPUs on this node; a task's list that is a part of it, not all
 *   of it, is the task's own, and the node's mapping covers SLURM_STEP_GPUS.
 *   Slurm 22.05 sets SLURM_STEP_GPUS to the task's own list under
 *   --gpus-per-task: then a list shorter than SLURM_GPUS_ON_NODE is the
 *   task's own, and the mapping covers all of the vendor's GPUs.
 * - Other launchers, when the launcher's process (the task's parent) has the
 *   variable in its environment: that value is the node's allocation, and a
 *   task's list that is a part of it, not all of it, is the task's own.
 * - Otherwise (the launcher's process has no such variable: a per-task
 *   launcher, a site script, or a launcher flag such as `mpirun -x`): the
 *   list is the task's own when it is local task i's share of the node's
 *   GPUs in index order (k GPUs each: i*k to i*k+k-1), as per-task
 *   launchers give them; the node's mapping then covers all of the
 *   vendor's GPUs.
 *
 * The task then keeps its list and takes the CPUs of the node mapping's
 * task that has exactly those GPUs.  When no task of the mapping has them
 * (more tasks than GPUs, a list that is not a share after all), the list
 * is taken as the node's allocation (another set of inputs: another node
 * mapping file).  Known limit of the last
 * case: a list given alike to every task by a launcher flag (not exported
 * in the launcher's environment) that equals one task's share is taken by
 * that task as its own; export the variable instead (`export
 * CUDA_VISIBLE_DEVICES=2,3; mpirun ...`).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpualloc.h"
#include "mb_gpuvar_table.h"
#include "mb_text.h"
#include "strdupf.h"

/* Per GPU variable (mb_gpuvars[i]): the task's own list when it is
 * per-task, else NULL (mb_ngpuvars entries once allocated). */
static char **own;

int mpibind_auto_gpu_var_index(const char *name) {
  for (int i = 0; i < mb_ngpuvars; i++)
    if (strcmp(name, mb_gpuvars[i].name) == 0)
      return i;
  return -1;
}

int mpibind_auto_gpu_per_task(const char *name) {
  int i = mpibind_auto_gpu_var_index(name);
  return own != NULL && i >= 0 && own[i] != NULL;
}

int mpibind_auto_gpu_any_per_task(void) {
  for (int i = 0; own != NULL && i < mb_ngpuvars; i++)
    if (own[i] != NULL)
      return 1;
  return 0;
}

/* Number of entries of a comma list; *entry (when entry != NULL) is the
 * n-th one, trimmed, as [start, len). */
static int entry_at(const char *list, int n, const char **start, size_t *len) {
  int k = 0;
  const char *p = list;
  for (;;) {
    const char *e = strchr(p, ',');
    const char *b = p, *f = e ? e : p + strlen(p);
    while (b < f && mb_ascii_space((unsigned char)*b))
      b++;
    while (f > b && mb_ascii_space((unsigned char)f[-1]))
      f--;
    if (f > b) {
      if (k == n && start) {
        *start = b;
        *len = (size_t)(f - b);
        return 1;
      }
      k++;
    }
    if (e == NULL)
      break;
    p = e + 1;
  }
  return start ? 0 : k;
}

static int count_entries(const char *list) {
  return entry_at(list, 0, NULL, NULL);
}

static int has_entry(const char *list, const char *s, size_t len) {
  const char *b;
  size_t l;
  for (int i = 0; entry_at(list, i, &b, &l); i++)
    if (l == len && strncmp(b, s, len) == 0)
      return 1;
  return 0;
}

/* Every entry of a is one of b. */
static int subset(const char *a, const char *b) {
  const char *s;
  size_t l;
  for (int i = 0; entry_at(a, i, &s, &l); i++)
    if (!has_entry(b, s, l))
      return 0;
  return 1;
}

static int same_set(const char *a, const char *b) {
  return subset(a, b) && subset(b, a);
}

/* The list is exactly local task `local`'s share in index order. */
static int is_share(const char *list, int local) {
  int k = count_entries(list);
  const char *s;
  size_t l;
  if (k <= 0)
    return 0;
  for (int i = 0; entry_at(list, i, &s, &l); i++) {
    char buf[24];
    snprintf(buf, sizeof buf, "%ld", (long)local * k + i);
    if (strlen(buf) != l || strncmp(buf, s, l) != 0)
      return 0;
  }
  return 1;
}

/* The launcher's process's environment (as it was at its exec):
 * NUL-separated, *len bytes; NULL when it cannot be read. */
static char *launcher_environ(long launcher, size_t *len) {
  char path[64];
  size_t cap = 8192, n = 0;
  char *buf;
  FILE *f;
  if (launcher <= 1)
    return NULL;
  snprintf(path, sizeof path, "/proc/%ld/environ", launcher);
  f = fopen(path, "re");
  buf = f ? malloc(cap) : NULL;
  if (buf == NULL) {
    if (f)
      fclose(f);
    return NULL;
  }
  for (;;) {
    size_t r;
    if (n + 1 >= cap) {
      char *b = realloc(buf, cap * 2);
      if (b == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = b;
      cap *= 2;
    }
    r = fread(buf + n, 1, cap - n - 1, f);
    if (r == 0)
      break;
    n += r;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* The value of `var` in a NUL-separated environment, or NULL. */
static const char *env_value(const char *env, size_t len, const char *var) {
  size_t vl = strlen(var);
  for (size_t i = 0; env && i < len; i += strlen(env + i) + 1)
    if (strncmp(env + i, var, vl) == 0 && env[i + vl] == '=')
      return env + i + vl + 1;
  return NULL;
}

/* Finds the node's allocation of variable `var` set to `value` in this
 * task: *alloc (NULL: all of the vendor's GPUs) and the task's own list
 * when it is one (*mine, malloc'ed).  *penv caches the launcher's
 * environment. */
static void find_allocation(const char *var, const char *value, int slurm,
                            long launcher, int local, int count,
                            char **penv, size_t *plen, const char **alloc,
                            char **mine) {
  const char *node = NULL;
  *alloc = value;
  *mine = NULL;
  if (value == NULL || count_entries(value) == 0)
    return;
  if (slurm) {
    /* Slurm 22.05 sets SLURM_STEP_GPUS per task too: then only the count
     * SLURM_GPUS_ON_NODE says that the step has more GPUs here */
    const char *step = getenv("SLURM_STEP_GPUS");
    const char *on_node = getenv("SLURM_GPUS_ON_NODE");
    long long n = 0;
    node = step;
    if ((step == NULL || same_set(step, value)) && on_node &&
        mb_parse_decimal(on_node, strlen(on_node), 0, INT_MAX, &n) == 0 &&
        n > count_entries(value)) {
      *alloc = NULL; /* all of the vendor's GPUs */
      *mine = strdup(value);
      return;
    }
  } else if (launcher > 0 && count > 1) {
    if (*penv == NULL)
      *penv = launcher_environ(launcher, plen);
    node = *penv ? env_value(*penv, *plen, var) : NULL;
    if (*penv && node == NULL && is_share(value, local)) {
      *alloc = NULL; /* all of the vendor's GPUs */
      *mine = strdup(value);
      return;
    }
  }
  if (node && count_entries(node) > 0 && !same_set(value, node) &&
      subset(value, node)) {
    *alloc = node;
    *mine = strdup(value);
  }
}

int mpibind_auto_gpu_detect(const char *source, long launcher, int local,
                            int count, char **alloc, int *set) {
  int slurm = source && strcmp(source, "SLURM_LOCALID") == 0;
  char *penv = NULL;
  size_t plen = 0;
  int rc = 0;
  if (own == NULL && (own = calloc((size_t)mb_ngpuvars, sizeof *own)) == NULL)
    return -1;
  for (int i = 0; i < mb_ngpuvars; i++) {
    const char *value = getenv(mb_gpuvars[i].name), *node;
    free(own[i]);
    find_allocation(mb_gpuvars[i].name, value, slurm, source ? launcher : 0,
                    local, count, &penv, &plen, &node, &own[i]);
    free(alloc[i]);
    alloc[i] = node ? strdup(node) : NULL;
    set[i] = value != NULL;
    if (node && alloc[i] == NULL)
      rc = -1;
  }
  free(penv);
  return rc;
}

void mpibind_auto_gpu_own_as_allocation(char **alloc) {
  for (int i = 0; own != NULL && i < mb_ngpuvars; i++) {
    if (own[i] == NULL)
      continue;
    free(alloc[i]);
    alloc[i] = own[i];
    own[i] = NULL;
  }
}

/* The value of `var` in task line `line` ("<task>\t<NAME>=<value>..."),
 * copied; NULL when absent. */
static char *line_value(const char *line, size_t len, const char *var) {
  size_t vl = strlen(var);
  const char *p = line, *end = line + len;
  while ((p = memchr(p, '\t', (size_t)(end - p))) != NULL) {
    p++;
    if ((size_t)(end - p) > vl && strncmp(p, var, vl) == 0 && p[vl] == '=') {
      const char *v = p + vl + 1, *e = memchr(v, '\t', (size_t)(end - v));
      return strndup(v, (size_t)((e ? e : end) - v));
    }
  }
  return NULL;
}

/* slot_of on the GPU lines: the single task whose value of var has the
 * entries of `list`; -1 when none or several.  *mapped: var appears. */
static int slot_of_lines(const char *gpus, const char *var, const char *list,
                         int *mapped) {
  int found = -1;
  for (const char *l = gpus; *l;) {
    const char *nl = strchr(l, '\n');
    size_t len = nl ? (size_t)(nl - l) : strlen(l);
    char *v = line_value(l, len, var);
    if (v) {
      *mapped = 1;
      if (same_set(v, list)) {
        if (found >= 0) {
          free(v);
          return -1;
        }
        const char *tab = memchr(l, '\t', len);
        long long t;
        if (tab == NULL ||
            mb_parse_decimal(l, (size_t)(tab - l), 0, INT_MAX, &t) != 0) {
          free(v);
          return -1; /* a damaged line names no task */
        }
        found = (int)t;
      }
      free(v);
    }
    l += len + (nl ? 1 : 0);
  }
  return found;
}

int mpibind_auto_gpu_slot_in(const char *gpus, int local, int *slot,
                             char **what) {
  int s = -1, any = 0;
  *slot = local;
  for (int i = 0; own != NULL && i < mb_ngpuvars; i++) {
    int mapped = 0, si;
    if (own[i] == NULL)
      continue;
    si = slot_of_lines(gpus, mb_gpuvars[i].name, own[i], &mapped);
    /* Slurm sets every vendor's variable alike: only those of the node's
     * GPUs (the variables the mapping writes) choose the task */
    if (!mapped)
      continue;
    any = 1;
    if (si < 0 || (s >= 0 && si != s))
      return -1;
    s = si;
  }
  if (!any)
    return 0;
  *slot = s;
  free(*what);
  *what = mpibind_auto_strdupf(
      "GPU lists given per task: the node's mapping covers the node's "
      "GPUs, and each task takes the CPUs of the mapping's task that has "
      "its GPUs");
  return 0;
}
