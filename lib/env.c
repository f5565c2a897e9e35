/*
 * env.c - the variables each task is told (docs/algorithm.md step 6).  They are
 * computed, never exported: the preload, the command and Python decide.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "fail.h"
#include "gpuvars.h"
#include "handle.h"
#include "lifetime.h"
#include "report.h"

static int add_var(mpibind_t *h, const char *name)
{
  int v = h->nvars;
  char **names = realloc(h->var_names, (v + 1) * sizeof(char *));
  if (names)
    h->var_names = names;
  char ***values = realloc(h->var_values, (v + 1) * sizeof(char **));
  if (values)
    h->var_values = values;
  if (!names || !values)
    return -1;
  h->var_names[v] = strdup(name);
  h->var_values[v] = calloc(h->ntasks + 1, sizeof(char *));
  if (!h->var_names[v] || !h->var_values[v]) {
    free(h->var_names[v]);
    free(h->var_values[v]);
    return -1;
  }
  h->nvars++;
  return v;
}

int mpibind_set_env_vars(mpibind_t *h)
{
  MB_NEED_HANDLE(h, -1);
  if (mb_check_mapped(h))
    return -1;
  if (h->var_names)
    return 0; /* computed for this mapping already: the same pointers */
  int nvars = 3;
  for (int slot = 0; slot < MB_NUM_VENDORS; slot++)
    nvars += h->node_vendors[slot] != 0;
  if (mb_check_env_memory(h, nvars))
    return -1;
  int v;
  if ((v = add_var(h, "OMP_NUM_THREADS")) < 0)
    goto oom;
  for (int t = 0; t < h->ntasks; t++)
    if (asprintf(&h->var_values[v][t], "%d", h->out_nthreads[t]) < 0) {
      h->var_values[v][t] = NULL;
      goto oom;
    }
  if ((v = add_var(h, "OMP_PLACES")) < 0)
    goto oom;
  for (int t = 0; t < h->ntasks; t++)
    if (!(h->var_values[v][t] = strdup("threads")))
      goto oom;
  if ((v = add_var(h, "OMP_PROC_BIND")) < 0)
    goto oom;
  for (int t = 0; t < h->ntasks; t++)
    if (!(h->var_values[v][t] = strdup("spread")))
      goto oom;
  /* A vendor's variable exists when the node has its GPUs; a task without
   * one of them gets "" (no device), not the variable left unset (all). */
  for (int slot = 0; slot < MB_NUM_VENDORS; slot++) {
    if (!h->node_vendors[slot])
      continue;
    if ((v = add_var(h, mb_gpu_var_written(slot))) < 0)
      goto oom;
    for (int t = 0; t < h->ntasks; t++)
      if (!(h->var_values[v][t] =
                mb_task_gpu_ids(h, t, MPIBIND_ID_SMI, slot)))
        goto oom;
  }
  return 0;
oom:
  mb_clear_env(h);
  return mb_oom(h);
}

/* The variables of the current mapping exist (else ENODATA, as for every
 * output read too early or after an input changed). */
static int check_vars(mpibind_t *h)
{
  if (mb_check_mapped(h))
    return -1;
  if (!h->var_names)
    return mb_fail_kind(h, ENODATA, "no variables yet: call "
                                    "mpibind_set_env_vars() first");
  return 0;
}

char **mpibind_get_env_var_names(mpibind_t *h, int *count)
{
  if (count)
    *count = 0;
  if (check_vars(h))
    return NULL;
  if (count)
    *count = h->nvars;
  return h->var_names;
}

char **mpibind_get_env_var_values(mpibind_t *h, const char *name)
{
  if (check_vars(h))
    return NULL;
  for (int v = 0; name && v < h->nvars; v++)
    if (strcmp(h->var_names[v], name) == 0)
      return h->var_values[v];
  mb_fail(h, "variable '%s' is not one mpibind sets for this mapping",
          name ? name : "(null)");
  return NULL;
}

int mpibind_env_vars_print(mpibind_t *h)
{
  if (check_vars(h))
    return -1;
  for (int t = 0; t < h->ntasks; t++)
    for (int v = 0; v < h->nvars; v++)
      printf("mpibind: task %2d %s=%s\n", t, h->var_names[v],
             h->var_values[v][t]);
  fflush(stdout);
  return 0;
}
