/*
 * handle.c - the handle's life cycle, its inputs, the outputs' lifetime
 * and the error convention (see mpibind.h): every failure goes through
 * mb_fail() or mb_fail_kind(), which keep one message and one kind per
 * handle; the outputs are freed in one place (mb_clear_outputs) and
 * invalidated in one place (mb_inputs_changed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_parse.h"
#include "mpibind_internal.h"

static const char null_handle_msg[] = "mpibind: the handle is NULL";

static int vfail(mpibind_t *h, int kind, const char *fmt, va_list ap)
{
  if (kind <= 0)
    kind = EIO; /* a system call failed without saying why */
  if (h) {
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
      msg = NULL;
    /* One line, whatever the user's values inside it hold. */
    char *esc = msg ? mb_escape(msg) : NULL;
    free(msg);
    msg = esc;
    free(h->error);
    h->error = msg; /* NULL (out of memory) reads back as a generic text */
    h->errnum = kind;
  }
  errno = kind; /* last: nothing above may change it afterwards */
  return -1;
}

int mb_fail(mpibind_t *h, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(h, EINVAL, fmt, ap);
  va_end(ap);
  return rc;
}

int mb_fail_kind(mpibind_t *h, int kind, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(h, kind, fmt, ap);
  va_end(ap);
  return rc;
}

int mb_oom(mpibind_t *h)
{
  return mb_fail_kind(h, ENOMEM, "out of memory");
}

char *mb_strdup(mpibind_t *h, const char *s)
{
  char *d = strdup(s);
  if (!d)
    mb_oom(h);
  return d;
}

const char *mpibind_get_error(const mpibind_t *h)
{
  if (!h)
    return null_handle_msg;
  if (!h->error)
    return h->errnum ? "out of memory (while writing the message)" : "";
  return h->error;
}

int mpibind_get_errno(const mpibind_t *h)
{
  return h ? h->errnum : EINVAL;
}

const char *mpibind_get_version(void)
{
  return MPIBIND_VERSION_STRING;
}

/* hwloc's API version is 0xMMmmpp; only the major changes the ABI (hwloc
 * 3 changes the OS-device types, which the GPU rules read).  A site that
 * upgrades hwloc under an installed mpibind gets this message instead of
 * a mapping that silently lost its GPUs. */
int mb_check_hwloc(mpibind_t *h)
{
  unsigned built = HWLOC_API_VERSION;
  unsigned loaded = hwloc_get_api_version();
  if (built >> 16 == loaded >> 16)
    return 0;
  return mb_fail_kind(h, ELIBBAD,
                      "the hwloc library loaded at run time has API version "
                      "%u.%u.%u, but mpibind was built against API %u.%u.%u: "
                      "rebuild mpibind against the hwloc installed, or run "
                      "with an hwloc %u.x library",
                      loaded >> 16, (loaded >> 8) & 0xff, loaded & 0xff,
                      built >> 16, (built >> 8) & 0xff, built & 0xff,
                      built >> 16);
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

void mb_inputs_changed(mpibind_t *h)
{
  h->stale = 1;
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
    if (h->cpus_ptask)
      free(h->cpus_ptask[i]);
  }
  for (int k = 0; k < MB_NUM_ID_KINDS; k++)
    free_gpus_ptask(h, k);
  mb_clear_env(h);
  free(h->out_nthreads);
  free(h->out_cpus);
  free(h->out_gpus);
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
  mb_free_retired_topologies(h);
  h->mapped = 0;
  h->stale = 0;
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
const char *mpibind_get_restrict_ids(mpibind_t *h)
{
  return h ? h->restrict_ids : NULL;
}
int mpibind_get_nthreads_input(mpibind_t *h) { return h ? h->nthreads : -1; }
const char *mpibind_get_topology_file(mpibind_t *h)
{
  return h && !h->user_topo ? h->topo_file : NULL;
}

/* ---- Outputs --------------------------------------------------------- */

static int check_task(mpibind_t *h, int task)
{
  if (mb_check_mapped(h))
    return -1;
  if (task < 0 || task >= h->ntasks)
    return mb_fail(h, "task %d is invalid: expected 0 to %d", task,
                   h->ntasks - 1);
  return 0;
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
  if (check_task(h, task))
    return NULL;
  if (!h->cpus_ptask) {
    h->cpus_ptask = calloc(h->out_ntasks, sizeof(*h->cpus_ptask));
    h->ncpus_ptask = calloc(h->out_ntasks, sizeof(*h->ncpus_ptask));
    if (!h->cpus_ptask || !h->ncpus_ptask) {
      free(h->cpus_ptask);
      free(h->ncpus_ptask);
      h->cpus_ptask = NULL;
      h->ncpus_ptask = NULL;
      mb_oom(h);
      return NULL;
    }
  }
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
  if (check_task(h, task))
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
