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
#include "nics.h"
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

/* Was the GPU allocation given through var (the task inherits it)? */
static int allocated_by(mpibind_t *h, const char *var)
{
  for (int a = 0; a < h->nallocs; a++)
    if (strcmp(h->allocs[a].var, var) == 0)
      return 1;
  return 0;
}

/* The HIP runtime's variables over ROCr's (docs/algorithm.md step 6, G06):
 * ROCm applies ROCR_VISIBLE_DEVICES first, and HIP_VISIBLE_DEVICES (and
 * CUDA_VISIBLE_DEVICES, which HIP reads as the same thing on AMD GPUs)
 * then index the devices ROCr exposes.  A task that inherits one of them
 * from the allocation gets it rewritten to every device ROCr exposes to
 * it, "0,...,k-1": its inherited physical ids would select others, or
 * none.  Bit 0: HIP_VISIBLE_DEVICES, bit 1: CUDA_VISIBLE_DEVICES. */
static int hip_over_rocr(mpibind_t *h)
{
  int amd = mb_vendor_slot(MB_VENDOR_AMD);
  int nvidia = mb_vendor_slot(MB_VENDOR_NVIDIA);
  if (!h->node_vendors[amd])
    return 0;
  return (allocated_by(h, "HIP_VISIBLE_DEVICES") ? 1 : 0) |
         (!h->node_vendors[nvidia] && allocated_by(h, "CUDA_VISIBLE_DEVICES")
              ? 2
              : 0);
}

/* "0,1,...,k-1" for the k AMD GPUs ROCR_VISIBLE_DEVICES shows the task
 * (every AMD GPU when all are visible). */
static char *rocr_indexes(mpibind_t *h, int task)
{
  int k = 0, amd = mb_vendor_slot(MB_VENDOR_AMD), g;
  if (h->all_gpus_visible) {
    for (g = 0; g < h->gpus.n; g++)
      k += mb_vendor_slot(h->gpus.gpu[g].vendor) == amd;
  } else {
    hwloc_bitmap_foreach_begin(g, h->out_gpus[task])
      k += mb_vendor_slot(h->gpus.gpu[g].vendor) == amd;
    hwloc_bitmap_foreach_end();
  }
  char *s = malloc((size_t)k * 12 + 1);
  if (!s)
    return NULL;
  s[0] = '\0';
  for (int i = 0, len = 0; i < k; i++)
    len += sprintf(s + len, i ? ",%d" : "%d", i);
  return s;
}

/* The task's NICs of `kinds` as a transport names them: "name" (prefix
 * ""), "name:port" (UCX), the CXI device; comma-separated. */
enum nic_form { NIC_NAME, NIC_UCX, NIC_NCCL, NIC_CXI };

static char *nic_value(mpibind_t *h, hwloc_const_bitmap_t set,
                       enum nic_form form)
{
  size_t len = 2;
  int x;
  hwloc_bitmap_foreach_begin(x, set)
    len += strlen(h->nics.nic[x].name) + 16;
  hwloc_bitmap_foreach_end();
  char *s = malloc(len), *p = s;
  if (!s)
    return NULL;
  *p = '\0';
  if (form == NIC_NCCL) /* exact names, not prefixes (mlx5_1 vs mlx5_10) */
    *p++ = '=';
  int first = 1;
  hwloc_bitmap_foreach_begin(x, set)
  {
    const struct mb_nic *n = &h->nics.nic[x];
    const char *name = form == NIC_NAME ? n->name
                       : form == NIC_CXI ? n->cxi
                                         : n->verbs;
    p += sprintf(p, "%s%s", first ? "" : ",", name);
    if (form == NIC_UCX)
      p += sprintf(p, ":%u", n->port);
    first = 0;
  }
  hwloc_bitmap_foreach_end();
  *p = '\0';
  return s;
}

/* A variable naming each task's NICs chosen among `kinds`, in form. */
static int add_nic_var(mpibind_t *h, const char *name, int kinds,
                       enum nic_form form)
{
  hwloc_bitmap_t *sets = h->out_nics;
  int v, rc = -1;
  if (kinds != MB_NIC_ANY) {
    sets = calloc((size_t)h->ntasks, sizeof(*sets));
    for (int t = 0; sets && t < h->ntasks; t++)
      if (!(sets[t] = hwloc_bitmap_alloc()))
        goto out;
    if (!sets || mb_nics_choose(h, kinds, sets))
      goto out;
  }
  if ((v = add_var(h, name)) < 0)
    goto out;
  for (int t = 0; t < h->ntasks; t++)
    if (!(h->var_values[v][t] = nic_value(h, sets[t], form)))
      goto out;
  rc = 0;
out:
  if (sets != h->out_nics) {
    for (int t = 0; sets && t < h->ntasks; t++)
      hwloc_bitmap_free(sets[t]);
    free(sets);
  }
  return rc;
}

/* Every GPU of the mapping's list in one order, the same for every task
 * (docs/algorithm.md, "Every GPU visible, in task order"): task 0's
 * first GPU, task 1's, ... (each GPU once), then the GPUs no earlier
 * element named, in list order.  *n receives their number; caller frees;
 * NULL when out of memory. */
static int *task_order(mpibind_t *h, int *n)
{
  int *order = malloc((size_t)(h->gpus.n > 0 ? h->gpus.n : 1) * sizeof(int));
  char *named = calloc((size_t)(h->gpus.n > 0 ? h->gpus.n : 1), 1);
  if (!order || !named) {
    free(order);
    free(named);
    return NULL;
  }
  int k = 0;
  for (int t = 0; t < h->ntasks && k < h->gpus.n; t++) {
    int g = hwloc_bitmap_first(h->out_gpus[t]);
    if (g >= 0 && !named[g]) {
      named[g] = 1;
      order[k++] = g;
    }
  }
  for (int g = 0; g < h->gpus.n; g++)
    if (!named[g])
      order[k++] = g;
  free(named);
  *n = k;
  return order;
}

/* The visible-devices value of vendor slot for every task when all GPUs
 * are visible: the task order, the vendor's GPUs only. */
static char *all_gpu_ids(mpibind_t *h, const int *order, int n, int slot)
{
  size_t len = 1;
  for (int i = 0; i < n; i++)
    len += strlen(mb_gpu_id(&h->gpus.gpu[order[i]], MPIBIND_ID_SMI)) + 1;
  char *s = malloc(len);
  if (!s)
    return NULL;
  s[0] = '\0';
  for (int i = 0; i < n; i++) {
    const struct mb_gpu *g = &h->gpus.gpu[order[i]];
    if (mb_vendor_slot(g->vendor) != slot)
      continue;
    if (s[0])
      strcat(s, ",");
    strcat(s, mb_gpu_id(g, MPIBIND_ID_SMI));
  }
  return s;
}

int mpibind_set_env_vars(mpibind_t *h)
{
  MB_NEED_HANDLE(h, -1);
  if (mb_check_mapped(h))
    return -1;
  if (h->var_names)
    return 0; /* computed for this mapping already: the same pointers */
  int hip = hip_over_rocr(h);
  int nic = h->nics.n > 0;
  int verbs = nic && h->transport_vars && mb_nics_have(&h->nics, MB_NIC_VERBS);
  int cxi = nic && h->transport_vars && mb_nics_have(&h->nics, MB_NIC_CXI);
  int nvars = 3 + nic + 2 * verbs + cxi + (hip & 1) + (hip >> 1);
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
  int norder = 0, *order = NULL;
  if (h->all_gpus_visible && !(order = task_order(h, &norder)))
    goto oom;
  for (int slot = 0; slot < MB_NUM_VENDORS; slot++) {
    if (!h->node_vendors[slot])
      continue;
    if ((v = add_var(h, mb_gpu_var_written(slot))) < 0) {
      free(order);
      goto oom;
    }
    for (int t = 0; t < h->ntasks; t++)
      if (!(h->var_values[v][t] =
                order ? all_gpu_ids(h, order, norder, slot)
                      : mb_task_gpu_ids(h, t, MPIBIND_ID_SMI, slot))) {
        free(order);
        goto oom;
      }
  }
  free(order);
  static const char *const hip_vars[] = {"HIP_VISIBLE_DEVICES",
                                         "CUDA_VISIBLE_DEVICES"};
  for (int i = 0; i < 2; i++) {
    if (!(hip & (1 << i)))
      continue;
    if ((v = add_var(h, hip_vars[i])) < 0)
      goto oom;
    for (int t = 0; t < h->ntasks; t++)
      if (!(h->var_values[v][t] = rocr_indexes(h, t)))
        goto oom;
  }
  /* NICs (docs/algorithm.md, "The nearest NIC for each task"): the names
   * always, the transports' variables when asked, each naming only
   * devices of the node. */
  if (nic && add_nic_var(h, "MPIBIND_NICS", MB_NIC_ANY, NIC_NAME))
    goto oom;
  if (verbs && (add_nic_var(h, "UCX_NET_DEVICES", MB_NIC_VERBS, NIC_UCX) ||
                add_nic_var(h, "NCCL_IB_HCA", MB_NIC_VERBS, NIC_NCCL)))
    goto oom;
  if (cxi && add_nic_var(h, "FI_CXI_DEVICE_NAME", MB_NIC_CXI, NIC_CXI))
    goto oom;
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
