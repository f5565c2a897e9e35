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
 * is taken as the node's allocation, as before.  Known limit of the last
 * case: a list given alike to every task by a launcher flag (not exported
 * in the launcher's environment) that equals one task's share is taken by
 * that task as its own; export the variable instead (`export
 * CUDA_VISIBLE_DEVICES=2,3; mpirun ...`).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"
#include "mb_parse.h"

/* Per GPU variable of the library (mpibind_get_gpu_var(i)): the task's
 * own list when it is per-task, else NULL.  nown entries. */
static char **own;
static int nown;

/* Per GPU variable, nown entries too: the node's allocation given to the
 * handle (NULL: none, all of the vendor's GPUs), and whether the variable
 * was set at launch. */
static char **node_alloc;
static int *var_set;

/* own, node_alloc and var_set have an entry for every GPU variable the
 * library knows. */
static int own_fit(void) {
  int n = 0;
  while (mpibind_get_gpu_var(n) != NULL)
    n++;
  if (n > nown) {
    char **more = realloc(own, n * sizeof(*own));
    if (more == NULL)
      return -1;
    own = more;
    more = realloc(node_alloc, n * sizeof(*node_alloc));
    if (more == NULL)
      return -1;
    node_alloc = more;
    int *set = realloc(var_set, n * sizeof(*var_set));
    if (set == NULL)
      return -1;
    var_set = set;
    for (int i = nown; i < n; i++) {
      own[i] = node_alloc[i] = NULL;
      var_set[i] = 0;
    }
    nown = n;
  }
  return 0;
}

int mpibind_auto_gpu_var_index(const char *name) {
  const char *v;
  for (int i = 0; (v = mpibind_get_gpu_var(i)) != NULL; i++)
    if (strcmp(name, v) == 0)
      return i;
  return -1;
}

int mpibind_auto_gpu_per_task(const char *name) {
  int i = mpibind_auto_gpu_var_index(name);
  return i >= 0 && i < nown && own[i] != NULL;
}

int mpibind_auto_gpu_any_per_task(void) {
  for (int i = 0; i < nown; i++)
    if (own[i] != NULL)
      return 1;
  return 0;
}

char *mpibind_auto_gpu_allocation_text(void) {
  char *text = strdup("");
  for (int i = 0; text && i < nown; i++) {
    const char *v = node_alloc[i] ? node_alloc[i]
                    : var_set[i]  ? "(all)"
                                  : "(unset)";
    char *more = mpibind_auto_strdupf("%s%s=%s\n", text,
                                      mpibind_get_gpu_var(i), v);
    free(text);
    text = more;
  }
  return text;
}

/* Number of entries of a comma list; *entry (when entry != NULL) is the
 * n-th one, trimmed, as [start, len). */
static int entry_at(const char *list, int n, const char **start, size_t *len) {
  int k = 0;
  const char *p = list;
  for (;;) {
    const char *e = strchr(p, ',');
    const char *b = p, *f = e ? e : p + strlen(p);
    while (b < f && isspace((unsigned char)*b))
      b++;
    while (f > b && isspace((unsigned char)f[-1]))
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

/* The launcher's process's environment (its parent's, as it was at its
 * exec): NUL-separated, *len bytes; NULL when it cannot be read. */
static char *parent_environ(size_t *len) {
  char path[64];
  size_t cap = 8192, n = 0;
  char *buf;
  FILE *f;
  snprintf(path, sizeof path, "/proc/%ld/environ", (long)getppid());
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

int mpibind_auto_gpu_inputs(mpibind_t *h, const char *source, int local,
                            int count, char **msg) {
  int slurm = source && strcmp(source, "SLURM_LOCALID") == 0;
  const char *step = slurm ? getenv("SLURM_STEP_GPUS") : NULL;
  char *penv = NULL;
  size_t plen = 0;
  int rc = 0;
  if (own_fit() != 0) {
    *msg = mpibind_auto_strdupf("the GPU allocation: out of memory");
    return -1;
  }
  for (int i = 0; i < nown; i++) {
    const char *var = mpibind_get_gpu_var(i);
    const char *value = getenv(var);
    const char *alloc = value, *node = NULL;
    free(own[i]);
    own[i] = NULL;
    if (value == NULL || count_entries(value) == 0)
      goto set;
    if (slurm) {
      /* Slurm 22.05 sets SLURM_STEP_GPUS per task too: then only the count
       * SLURM_GPUS_ON_NODE says that the step has more GPUs here */
      const char *on_node = getenv("SLURM_GPUS_ON_NODE");
      long long n = 0;
      node = step;
      if ((step == NULL || same_set(step, value)) && on_node &&
          mb_parse_decimal(on_node, strlen(on_node), 0, INT_MAX, &n) == 0 &&
          n > count_entries(value)) {
        alloc = NULL; /* all of the vendor's GPUs */
        own[i] = strdup(value);
        goto set;
      }
    } else if (source && count > 1) {
      if (penv == NULL)
        penv = parent_environ(&plen);
      node = penv ? env_value(penv, plen, var) : NULL;
      if (penv && node == NULL && is_share(value, local)) {
        alloc = NULL; /* all of the vendor's GPUs */
        own[i] = strdup(value);
        goto set;
      }
    }
    if (node && count_entries(node) > 0 && !same_set(value, node) &&
        subset(value, node)) {
      alloc = node;
      own[i] = strdup(value);
    }
  set:
    free(node_alloc[i]);
    node_alloc[i] = alloc ? strdup(alloc) : NULL;
    var_set[i] = value != NULL;
    if (alloc && mpibind_set_gpu_allocation(h, var, alloc) != 0) {
      *msg = mpibind_auto_strdupf("%s='%s': %s", var, alloc,
                                  mpibind_get_error(h));
      rc = -1;
      break;
    }
  }
  free(penv);
  return rc;
}

/* The mapping writes variable i (the node has GPUs of its vendor). */
static int var_mapped(mpibind_t *h, int i) {
  int n = 0;
  char **names = mpibind_get_env_var_names(h, &n);
  for (int k = 0; names && k < n; k++)
    if (strcmp(names[k], mpibind_get_gpu_var(i)) == 0)
      return 1;
  return 0;
}

/* The task of the mapping whose value of var (as it would be told) has
 * the same entries as `list`; -1 when none or several. */
static int slot_of(mpibind_t *h, const char *var, const char *list) {
  char **vals = mpibind_get_env_var_values(h, var);
  int n = mpibind_get_ntasks(h), found = -1;
  for (int s = 0; vals && s < n; s++)
    if (vals[s] && same_set(vals[s], list)) {
      if (found >= 0)
        return -1;
      found = s;
    }
  return found;
}

int mpibind_auto_gpu_slot(mpibind_t *h, int local, int *slot, char **what) {
  int s = -1, any = 0;
  *slot = local;
  for (int i = 0; i < nown; i++) {
    int si;
    /* Slurm sets every vendor's variable alike: only those of the node's
     * GPUs (the variables the mapping writes) choose the task */
    if (own[i] == NULL || !var_mapped(h, i))
      continue;
    any = 1;
    si = slot_of(h, mpibind_get_gpu_var(i), own[i]);
    if (si < 0 || (s >= 0 && si != s)) {
      s = -1;
      break;
    }
    s = si;
  }
  if (!any) {
    /* no per-task list of the node's vendors: the others are ignored by
     * the mapping anyway; nothing to choose */
    return 0;
  }
  if (s >= 0) {
    *slot = s;
    free(*what);
    *what = mpibind_auto_strdupf(
        "GPU lists given per task: the node's mapping covers the node's "
        "GPUs, and each task takes the CPUs of the mapping's task that has "
        "its GPUs");
    return 0;
  }
  /* not a share after all: the list is the node's allocation */
  for (int i = 0; i < nown; i++) {
    if (own[i] == NULL)
      continue;
    if (mpibind_set_gpu_allocation(h, mpibind_get_gpu_var(i), own[i]) != 0)
      return -1;
    free(own[i]);
    own[i] = NULL;
  }
  return mpibind(h) == 0 && mpibind_set_env_vars(h) == 0 ? 0 : -1;
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
  for (int i = 0; i < nown; i++) {
    int mapped = 0, si;
    if (own[i] == NULL)
      continue;
    si = slot_of_lines(gpus, mpibind_get_gpu_var(i), own[i], &mapped);
    if (!mapped)
      continue; /* not a variable of the node's GPUs: as gpu_slot */
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
