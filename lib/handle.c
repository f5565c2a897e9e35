/*
 * handle.c - the handle's life cycle (mpibind_init, mpibind_finalize)
 * and its inputs: the setters check what they can on their own and mark
 * the outputs stale (mb_inputs_changed), the getters of one input return
 * it.  Errors go through fail.c, the outputs' lifetime is lifetime.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "gpuvars.h"
#include "handle.h"
#include "lifetime.h"
#include "mb_parse.h"
#include "topology.h"

const char *mpibind_get_version(void)
{
  return MPIBIND_VERSION_STRING;
}

int mpibind_init(mpibind_t **handle)
{
  if (!handle) {
    errno = EINVAL;
    return -1;
  }
  mpibind_t *h = calloc(1, sizeof(*h));
  *handle = h;
  if (!h)
    return -1; /* errno ENOMEM, from calloc */
  h->greedy = 1;
  h->gpu_optim = 1;
  h->restrict_type = MPIBIND_RESTRICT_CPU;
  h->gpu_id_kind = MPIBIND_ID_SMI;
  return 0;
}

static void free_allocs(mpibind_t *h)
{
  for (int i = 0; i < h->nallocs; i++) {
    free(h->allocs[i].var);
    free(h->allocs[i].value);
  }
  free(h->allocs);
  h->allocs = NULL;
  h->nallocs = 0;
}

int mpibind_finalize(mpibind_t *h)
{
  if (!h)
    return 0;
  mb_clear_outputs(h);
  mb_free_own_topology(h); /* with the work topology */
  free_allocs(h);
  free(h->restrict_ids);
  hwloc_bitmap_free(h->job_cpus);
  free(h->error);
  free(h);
  return 0;
}

/* ---- Inputs ---------------------------------------------------------- */

/* Every setter of an input the mapping depends on makes the outputs
 * stale (mb_inputs_changed): reading a mapping computed from other inputs
 * would be a silent lie, and freeing it would break the LIFETIME rule. */
#define CHECK_HANDLE(h) MB_NEED_HANDLE(h, -1)

int mpibind_set_ntasks(mpibind_t *h, int ntasks)
{
  CHECK_HANDLE(h);
  if (ntasks < 1)
    return mb_fail(h, "ntasks %d is invalid: expected an integer >= 1",
                   ntasks);
  mb_inputs_changed(h);
  h->ntasks = ntasks;
  return 0;
}

int mpibind_set_nthreads(mpibind_t *h, int nthreads)
{
  CHECK_HANDLE(h);
  if (nthreads < 0)
    return mb_fail(h,
                   "nthreads %d is invalid: expected an integer >= 0 "
                   "(0 lets mpibind choose)",
                   nthreads);
  mb_inputs_changed(h);
  h->nthreads = nthreads;
  return 0;
}

int mpibind_set_greedy(mpibind_t *h, int greedy)
{
  CHECK_HANDLE(h);
  if (greedy != 0 && greedy != 1)
    return mb_fail(h, "greedy %d is invalid: expected 0 or 1", greedy);
  mb_inputs_changed(h);
  h->greedy = greedy;
  return 0;
}

int mpibind_set_gpu_optim(mpibind_t *h, int gpu_optim)
{
  CHECK_HANDLE(h);
  if (gpu_optim != 0 && gpu_optim != 1)
    return mb_fail(h, "gpu_optim %d is invalid: expected 0 or 1", gpu_optim);
  mb_inputs_changed(h);
  h->gpu_optim = gpu_optim;
  return 0;
}

int mpibind_set_smt(mpibind_t *h, int smt)
{
  CHECK_HANDLE(h);
  if (smt < 0)
    return mb_fail(h,
                   "smt %d is invalid: expected an integer >= 0 "
                   "(0 lets mpibind choose)",
                   smt);
  mb_inputs_changed(h);
  h->smt = smt;
  return 0;
}

int mpibind_set_restrict_ids(mpibind_t *h, const char *ids)
{
  CHECK_HANDLE(h);
  char *copy = NULL;
  if (ids && *ids) {
    /* Checked now so that a typo is reported where it was made; whether
     * the list selects anything depends on the topology (mpibind()). */
    char *why = NULL;
    if (mb_list_parse(ids, NULL, 0, &why) < 0) {
      mb_fail(h, "restrict list '%s' is invalid: %s", ids,
              why ? why : "out of memory");
      free(why);
      return -1;
    }
    if (!(copy = mb_strdup(h, ids)))
      return -1;
  }
  mb_inputs_changed(h);
  free(h->restrict_ids);
  h->restrict_ids = copy;
  return 0;
}

int mpibind_set_job_cpus(mpibind_t *h, hwloc_const_bitmap_t cpus)
{
  CHECK_HANDLE(h);
  hwloc_bitmap_t copy = NULL;
  if (cpus) {
    if (hwloc_bitmap_iszero(cpus) || hwloc_bitmap_weight(cpus) < 0)
      return mb_fail(h, "the job's CPUs are %s: expected a finite, non-empty "
                        "set of PU OS indexes",
                     hwloc_bitmap_iszero(cpus) ? "empty" : "infinite");
    if (!(copy = hwloc_bitmap_dup(cpus)))
      return mb_oom(h);
  }
  mb_free_work_topology(h); /* and the outputs mapped on it */
  hwloc_bitmap_free(h->job_cpus);
  h->job_cpus = copy;
  return 0;
}

int mpibind_set_restrict_type(mpibind_t *h, int type)
{
  CHECK_HANDLE(h);
  if (type != MPIBIND_RESTRICT_CPU && type != MPIBIND_RESTRICT_MEM)
    return mb_fail(h,
                   "restrict type %d is invalid: expected "
                   "MPIBIND_RESTRICT_CPU (0) or MPIBIND_RESTRICT_MEM (1)",
                   type);
  mb_inputs_changed(h);
  h->restrict_type = type;
  return 0;
}

int mpibind_set_gpu_ids(mpibind_t *h, int kind)
{
  CHECK_HANDLE(h);
  if (kind != MPIBIND_ID_UNIV && kind != MPIBIND_ID_SMI &&
      kind != MPIBIND_ID_PCIBUS && kind != MPIBIND_ID_NAME)
    return mb_fail(h,
                   "GPU id kind %d is invalid: expected MPIBIND_ID_UNIV (%d), "
                   "MPIBIND_ID_SMI (%d), MPIBIND_ID_PCIBUS (%d) or "
                   "MPIBIND_ID_NAME (%d)",
                   kind, MPIBIND_ID_UNIV, MPIBIND_ID_SMI, MPIBIND_ID_PCIBUS,
                   MPIBIND_ID_NAME);
  /* The id kind changes only how GPUs are named: the mapping stays, and
   * so do the strings of the other kinds already handed out (they are
   * cached per kind). */
  h->gpu_id_kind = kind;
  return 0;
}

int mpibind_set_gpu_allocation(mpibind_t *h, const char *var,
                               const char *value)
{
  CHECK_HANDLE(h);
  if (!mb_gpu_var_vendor(var)) {
    char *names = mb_gpu_vars_expected();
    mb_fail(h, "GPU allocation variable '%s' is unknown: expected %s",
            var ? var : "(null)", names ? names : "a GPU variable");
    free(names);
    return -1;
  }
  mb_inputs_changed(h);
  int at = 0;
  while (at < h->nallocs && strcmp(h->allocs[at].var, var) != 0)
    at++;
  if (!value) { /* forget it */
    if (at < h->nallocs) {
      free(h->allocs[at].var);
      free(h->allocs[at].value);
      h->allocs[at] = h->allocs[--h->nallocs];
    }
    return 0;
  }
  char *v = mb_strdup(h, value);
  if (!v)
    return -1;
  if (at == h->nallocs) {
    struct mb_alloc *a =
        realloc(h->allocs, (h->nallocs + 1) * sizeof(*h->allocs));
    char *name = strdup(var);
    if (!a || !name) {
      if (a)
        h->allocs = a;
      free(name);
      free(v);
      return mb_oom(h);
    }
    h->allocs = a;
    h->allocs[at].var = name;
    h->allocs[at].value = NULL;
    h->nallocs++;
  }
  free(h->allocs[at].value);
  h->allocs[at].value = v;
  return 0;
}

int mpibind_set_transport_vars(mpibind_t *h, int on)
{
  CHECK_HANDLE(h);
  if (on != 0 && on != 1)
    return mb_fail(h, "transport variables %d is invalid: expected 0 or 1",
                   on);
  /* The variables of mpibind_set_env_vars depend on it: an input. */
  mb_inputs_changed(h);
  h->transport_vars = on;
  return 0;
}

int mpibind_set_all_gpus_visible(mpibind_t *h, int on)
{
  CHECK_HANDLE(h);
  if (on != 0 && on != 1)
    return mb_fail(h, "all GPUs visible %d is invalid: expected 0 or 1", on);
  mb_inputs_changed(h); /* the variables of mpibind_set_env_vars */
  h->all_gpus_visible = on;
  return 0;
}

/* The getters of one input value return it (-1 for a NULL handle). */
int mpibind_get_ntasks(mpibind_t *h) { return h ? h->ntasks : -1; }
int mpibind_get_greedy(mpibind_t *h) { return h ? h->greedy : -1; }
int mpibind_get_gpu_optim(mpibind_t *h) { return h ? h->gpu_optim : -1; }
int mpibind_get_smt(mpibind_t *h) { return h ? h->smt : -1; }
int mpibind_get_restrict_type(mpibind_t *h)
{
  return h ? h->restrict_type : -1;
}
int mpibind_get_gpu_ids(mpibind_t *h) { return h ? h->gpu_id_kind : -1; }
int mpibind_get_transport_vars(mpibind_t *h)
{
  return h ? h->transport_vars : -1;
}
int mpibind_get_all_gpus_visible(mpibind_t *h)
{
  return h ? h->all_gpus_visible : -1;
}
const char *mpibind_get_restrict_ids(mpibind_t *h)
{
  return h ? h->restrict_ids : NULL;
}
int mpibind_get_nthreads_input(mpibind_t *h) { return h ? h->nthreads : -1; }
const char *mpibind_get_topology_file(mpibind_t *h)
{
  return h && !h->user_topo ? h->topo_file : NULL;
}

