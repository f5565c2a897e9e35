/*
 * lifetime.c - the outputs' lifetime (the LIFETIME rule of mpibind.h):
 * whether the handle holds a mapping of its current inputs
 * (mb_check_mapped, which every output getter starts with), and the one
 * place where the outputs are freed (mb_clear_outputs, called only by
 * mpibind() and mpibind_finalize()).  Setters only mark the outputs
 * stale (mb_inputs_changed, handle.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "fail.h"
#include "gpus.h"
#include "handle.h"
#include "lifetime.h"
#include "nics.h"
#include "topology.h"

/* The cached id strings of kind k of every task (mpibind_get_gpus_ptask). */
static void free_gpus_ptask(mpibind_t *h, int k)
{
  if (!h->gpus_ptask[k])
    return;
  for (int t = 0; t < h->out_ntasks; t++) {
    for (int g = 0; h->gpus_ptask[k][t] && h->gpus_ptask[k][t][g]; g++)
      free(h->gpus_ptask[k][t][g]);
    free(h->gpus_ptask[k][t]);
  }
  free(h->gpus_ptask[k]);
  h->gpus_ptask[k] = NULL;
}

void mb_clear_env(mpibind_t *h)
{
  for (int v = 0; v < h->nvars; v++) {
    for (int t = 0; t < h->out_ntasks; t++)
      free(h->var_values[v][t]);
    free(h->var_values[v]);
    free(h->var_names[v]);
  }
  free(h->var_names);
  free(h->var_values);
  h->var_names = NULL;
  h->var_values = NULL;
  h->nvars = 0;
}


int mb_check_mapped(mpibind_t *h)
{
  MB_NEED_HANDLE(h, -1);
  if (!h->mapped)
    return mb_fail_kind(h, ENODATA, "no mapping yet: call mpibind() first");
  if (h->stale)
    return mb_fail_kind(h, ENODATA,
                        "an input changed since the last mpibind(): call "
                        "mpibind() again");
  return 0;
}

/* Every per-task array has out_ntasks entries, whatever ntasks is now.
 * Also frees a half-built mapping. */
void mb_clear_outputs(mpibind_t *h)
{
  /* out_ntasks, not ntasks: constant time when nothing is mapped, however
   * large ntasks is (set_ntasks(INT_MAX)). */
  for (int i = 0; i < h->out_ntasks; i++) {
    if (h->out_cpus)
      hwloc_bitmap_free(h->out_cpus[i]);
    if (h->out_gpus)
      hwloc_bitmap_free(h->out_gpus[i]);
    if (h->out_nics)
      hwloc_bitmap_free(h->out_nics[i]);
    if (h->nics_ptask) {
      for (int n = 0; h->nics_ptask[i] && h->nics_ptask[i][n]; n++)
        free(h->nics_ptask[i][n]);
      free(h->nics_ptask[i]);
    }
    if (h->cpus_ptask)
      free(h->cpus_ptask[i]);
  }
  for (int k = 0; k < MB_NUM_ID_KINDS; k++)
    free_gpus_ptask(h, k);
  mb_clear_env(h);
  free(h->out_nthreads);
  free(h->out_cpus);
  free(h->out_gpus);
  free(h->out_nics);
  free(h->nics_ptask);
  free(h->nnics_ptask);
  h->out_nics = NULL;
  h->nics_ptask = NULL;
  h->nnics_ptask = NULL;
  free(h->cpus_ptask);
  free(h->ncpus_ptask);
  free(h->ngpus_ptask);
  h->out_nthreads = NULL;
  h->out_cpus = h->out_gpus = NULL;
  h->cpus_ptask = NULL;
  h->ncpus_ptask = NULL;
  h->ngpus_ptask = NULL;
  h->out_ntasks = 0;
  mb_gpu_list_free(&h->gpus);
  mb_nic_list_free(&h->nics);
  mb_free_retired_topologies(h);
  h->mapped = 0;
  h->stale = 0;
}

int mb_check_task(mpibind_t *h, int task)
{
  if (mb_check_mapped(h))
    return -1;
  if (task < 0 || task >= h->ntasks)
    return mb_fail(h, "task %d is invalid: expected 0 to %d", task,
                   h->ntasks - 1);
  return 0;
}
