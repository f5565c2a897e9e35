/*
 * outputs.c - the getters of mpibind()'s outputs (mpibind.h, "Outputs").
 * Each starts with the lifetime check; the per-task views (CPU arrays,
 * GPU id strings) are built on first use and kept until the outputs are
 * freed (lifetime.c), so that what a getter returned stays valid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "gpus.h"
#include "handle.h"
#include "lifetime.h"

/* The arrays of one per-task view, built on first use: out_ntasks
 * entries of size elem and their counts (both or neither).  0, or -1
 * with a failure (out of memory). */
static int task_views(mpibind_t *h, void **views, size_t elem, int **counts)
{
  *views = calloc((size_t)h->out_ntasks, elem);
  *counts = calloc((size_t)h->out_ntasks, sizeof(**counts));
  if (*views && *counts)
    return 0;
  free(*views);
  free(*counts);
  *views = NULL;
  *counts = NULL;
  return mb_oom(h);
}

int *mpibind_get_nthreads(mpibind_t *h)
{
  return mb_check_mapped(h) ? NULL : h->out_nthreads;
}

hwloc_bitmap_t *mpibind_get_cpus(mpibind_t *h)
{
  return mb_check_mapped(h) ? NULL : h->out_cpus;
}

hwloc_bitmap_t *mpibind_get_gpus(mpibind_t *h)
{
  return mb_check_mapped(h) ? NULL : h->out_gpus;
}

int mpibind_get_num_gpus(mpibind_t *h)
{
  return mb_check_mapped(h) ? -1 : h->gpus.n;
}

int *mpibind_get_cpus_ptask(mpibind_t *h, int task, int *ncpus)
{
  if (ncpus)
    *ncpus = 0;
  if (mb_check_task(h, task))
    return NULL;
  if (!h->cpus_ptask &&
      task_views(h, (void **)&h->cpus_ptask, sizeof(*h->cpus_ptask),
                 &h->ncpus_ptask))
    return NULL;
  if (!h->cpus_ptask[task]) {
    int n = hwloc_bitmap_weight(h->out_cpus[task]);
    int *a = malloc((n > 0 ? n : 1) * sizeof(int));
    if (!a) {
      mb_oom(h);
      return NULL;
    }
    int i = 0;
    unsigned pu;
    hwloc_bitmap_foreach_begin(pu, h->out_cpus[task]) a[i++] = (int)pu;
    hwloc_bitmap_foreach_end();
    h->cpus_ptask[task] = a;
    h->ncpus_ptask[task] = n;
  }
  if (ncpus)
    *ncpus = h->ncpus_ptask[task];
  return h->cpus_ptask[task];
}

/* The task's GPU ids of the current kind, NULL-terminated, built once per
 * kind: changing the kind must not free strings already handed out. */
static char **task_gpu_strings(mpibind_t *h, int task)
{
  int n = hwloc_bitmap_weight(h->out_gpus[task]);
  char **a = calloc(n + 1, sizeof(char *));
  if (!a)
    return NULL;
  int i = 0;
  unsigned g;
  hwloc_bitmap_foreach_begin(g, h->out_gpus[task])
  {
    if (!(a[i] = strdup(mb_gpu_id(&h->gpus.gpu[g], h->gpu_id_kind)))) {
      for (int j = 0; j < i; j++)
        free(a[j]);
      free(a);
      return NULL;
    }
    i++;
  }
  hwloc_bitmap_foreach_end();
  return a;
}

char **mpibind_get_gpus_ptask(mpibind_t *h, int task, int *ngpus)
{
  if (ngpus)
    *ngpus = 0;
  if (mb_check_task(h, task) ||
      mb_gpu_ids_check_unique(h, &h->gpus, h->gpu_id_kind))
    return NULL;
  int k = h->gpu_id_kind - MPIBIND_ID_UNIV;
  if (!h->ngpus_ptask) {
    if (!(h->ngpus_ptask = calloc(h->out_ntasks, sizeof(*h->ngpus_ptask)))) {
      mb_oom(h);
      return NULL;
    }
    for (int t = 0; t < h->out_ntasks; t++)
      h->ngpus_ptask[t] = hwloc_bitmap_weight(h->out_gpus[t]);
  }
  if (!h->gpus_ptask[k] &&
      !(h->gpus_ptask[k] = calloc(h->out_ntasks, sizeof(char **)))) {
    mb_oom(h);
    return NULL;
  }
  if (!h->gpus_ptask[k][task] &&
      !(h->gpus_ptask[k][task] = task_gpu_strings(h, task))) {
    mb_oom(h);
    return NULL;
  }
  if (ngpus)
    *ngpus = h->ngpus_ptask[task];
  return h->gpus_ptask[k][task];
}

const char *mpibind_get_gpu_id(mpibind_t *h, int gpu, int kind)
{
  if (mb_check_mapped(h))
    return NULL;
  if (gpu < 0 || gpu >= h->gpus.n) {
    mb_fail(h, "GPU %d is invalid: the node's GPU list has %d GPUs", gpu,
            h->gpus.n);
    return NULL;
  }
  if (kind != MPIBIND_ID_UNIV && kind != MPIBIND_ID_SMI &&
      kind != MPIBIND_ID_PCIBUS && kind != MPIBIND_ID_NAME) {
    mb_fail(h, "GPU id kind %d is invalid: expected MPIBIND_ID_UNIV (%d), "
            "MPIBIND_ID_SMI (%d), MPIBIND_ID_PCIBUS (%d) or MPIBIND_ID_NAME "
            "(%d)",
            kind, MPIBIND_ID_UNIV, MPIBIND_ID_SMI, MPIBIND_ID_PCIBUS,
            MPIBIND_ID_NAME);
    return NULL;
  }
  return mb_gpu_id(&h->gpus.gpu[gpu], kind);
}


/* The task's NIC names, NULL-terminated, built on first use. */
static char **task_nic_strings(mpibind_t *h, int task)
{
  int n = hwloc_bitmap_weight(h->out_nics[task]);
  char **a = calloc((size_t)n + 1, sizeof(char *));
  if (!a)
    return NULL;
  int i = 0, x;
  hwloc_bitmap_foreach_begin(x, h->out_nics[task])
  {
    if (!(a[i++] = strdup(h->nics.nic[x].name))) {
      for (int j = 0; j < i - 1; j++)
        free(a[j]);
      free(a);
      return NULL;
    }
  }
  hwloc_bitmap_foreach_end();
  return a;
}

char **mpibind_get_nics_ptask(mpibind_t *h, int task, int *nnics)
{
  if (nnics)
    *nnics = 0;
  if (mb_check_task(h, task))
    return NULL;
  if (!h->nics_ptask &&
      task_views(h, (void **)&h->nics_ptask, sizeof(*h->nics_ptask),
                 &h->nnics_ptask))
    return NULL;
  if (!h->nics_ptask[task]) {
    if (!(h->nics_ptask[task] = task_nic_strings(h, task))) {
      mb_oom(h);
      return NULL;
    }
    h->nnics_ptask[task] = hwloc_bitmap_weight(h->out_nics[task]);
  }
  if (nnics)
    *nnics = h->nnics_ptask[task];
  return h->nics_ptask[task];
}
