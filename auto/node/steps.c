/*
 * steps.c - the steps of a node's mapping with libmpibind (steps.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "mb_gpuvar_table.h"
#include "steps.h"
#include "strdupf.h"

/* "MPIBIND='..' MPIBIND_RESTRICT='..' ..." for the tuning actually given,
 * so that a mapping failure names the values it came from. */
static char *tuning_context(const struct mpibind_auto_tuning *t) {
  static const char *const names[] = {"MPIBIND", "MPIBIND_RESTRICT",
                                      "MPIBIND_RESTRICT_TYPE",
                                      "MPIBIND_TOPOFILE", "OMP_NUM_THREADS"};
  char *s = strdup("");
  for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++) {
    const char *v = mpibind_auto_getenv(t, names[i]);
    if (v == NULL)
      continue;
    char *n = mpibind_auto_strdupf("%s%s%s='%s'", s, *s ? " " : "",
                                   mpibind_auto_value_name(names[i]), v);
    free(s);
    s = n;
  }
  return s;
}

/* The tuning and the task count as setters. */
static int set_tuning(const struct mpibind_auto_tuning *t, mpibind_t *h,
                      int count, char **msg) {
  const char *v = mpibind_auto_getenv(t, "MPIBIND");
  if (mpibind_set_ntasks(h, count) != 0) {
    *msg = mpibind_auto_strdupf("%d tasks on this node: %s", count,
                                mpibind_get_error(h));
    return -1;
  }
  if (t->nthreads > 0 && mpibind_set_nthreads(h, t->nthreads) != 0) {
    *msg = mpibind_auto_strdupf("%s='%s': %s",
                                mpibind_auto_value_name("OMP_NUM_THREADS"),
                                mpibind_auto_getenv(t, "OMP_NUM_THREADS"),
                                mpibind_get_error(h));
    return -1;
  }
  if ((t->smt >= 0 && mpibind_set_smt(h, t->smt) != 0) ||
      (t->greedy >= 0 && mpibind_set_greedy(h, t->greedy) != 0) ||
      (t->gpu_optim >= 0 && mpibind_set_gpu_optim(h, t->gpu_optim) != 0) ||
      (t->nics && mpibind_set_transport_vars(h, 1) != 0) ||
      (t->visible_devices == MPIBIND_AUTO_GPUS_ALL &&
       mpibind_set_all_gpus_visible(h, 1) != 0)) {
    *msg = mpibind_auto_strdupf("MPIBIND='%s': %s", v ? v : "",
                                mpibind_get_error(h));
    return -1;
  }
  if (t->restrict_ids && mpibind_set_restrict_ids(h, t->restrict_ids) != 0) {
    *msg = mpibind_auto_strdupf("%s='%s': %s",
                                mpibind_auto_value_name("MPIBIND_RESTRICT"),
                                t->restrict_ids, mpibind_get_error(h));
    return -1;
  }
  if (t->restrict_type >= 0 &&
      mpibind_set_restrict_type(h, t->restrict_type ==
                                           MPIBIND_AUTO_RESTRICT_MEM
                                       ? MPIBIND_RESTRICT_MEM
                                       : MPIBIND_RESTRICT_CPU) != 0) {
    *msg = mpibind_auto_strdupf(
        "%s='%s': %s", mpibind_auto_value_name("MPIBIND_RESTRICT_TYPE"),
        mpibind_auto_getenv(t, "MPIBIND_RESTRICT_TYPE"), mpibind_get_error(h));
    return -1;
  }
  return 0;
}

/* A new handle with the tuning; the GPU allocation is the caller's. */
static int configure_tuning(const struct mpibind_auto_tuning *t, int count,
                            mpibind_t **hp, char **msg) {
  mpibind_t *h = NULL;
  *hp = NULL;
  if (mpibind_init(&h) != 0 || h == NULL) {
    *msg = mpibind_auto_strdupf("cannot create a handle: %s",
                                mpibind_get_error(h));
    return -1;
  }
  *hp = h;
  return set_tuning(t, h, count, msg);
}

/* One GPU variable's allocation; the message names the value. */
static int set_allocation(mpibind_t *h, const char *var, const char *alloc,
                          char **msg) {
  if (mpibind_set_gpu_allocation(h, var, alloc) == 0)
    return 0;
  *msg = mpibind_auto_strdupf("%s='%s': %s", var, alloc, mpibind_get_error(h));
  return -1;
}

int mpibind_auto_configure(const struct mpibind_auto_tuning *t, int count,
                           mpibind_t **hp, char **msg) {
  const char *var;
  if (configure_tuning(t, count, hp, msg) != 0)
    return -1;
  /* A *_VISIBLE_DEVICES set at launch is the step's GPU allocation. */
  for (int i = 0; (var = mpibind_get_gpu_var(i)) != NULL; i++) {
    const char *alloc = mpibind_auto_getenv(t, var);
    if (alloc != NULL && set_allocation(*hp, var, alloc, msg) != 0)
      return -1;
  }
  return 0;
}

int mpibind_auto_configure_inputs(const struct mpibind_auto_inputs *in,
                                  mpibind_t **hp, char **msg) {
  if (configure_tuning(in->t, in->ntasks, hp, msg) != 0)
    return -1;
  for (int i = 0; i < mb_ngpuvars; i++)
    if (in->gpu_alloc[i] != NULL &&
        set_allocation(*hp, mb_gpuvars[i].name, in->gpu_alloc[i], msg) != 0)
      return -1;
  return 0;
}

int mpibind_auto_no_unallocated_gpus(const struct mpibind_auto_tuning *t,
                                     mpibind_t *h, char **msg) {
  const char *var;
  for (int i = 0; (var = mpibind_get_gpu_var(i)) != NULL; i++) {
    if (mpibind_auto_getenv(t, var) == NULL &&
        mpibind_set_gpu_allocation(h, var, "") != 0) {
      *msg = mpibind_auto_strdupf("%s (no GPU allocated): %s", var,
                                  mpibind_get_error(h));
      return -1;
    }
  }
  return 0;
}

int mpibind_auto_compute(const struct mpibind_auto_tuning *t, mpibind_t *h,
                         int count, char **msg) {
  if (mpibind(h) != 0 || mpibind_set_env_vars(h) != 0) {
    char *ctx = tuning_context(t);
    *msg = mpibind_auto_strdupf("cannot map %d task%s on this node%s%s: %s",
                                count, count == 1 ? "" : "s",
                                ctx && *ctx ? " with " : "", ctx ? ctx : "",
                                mpibind_get_error(h));
    free(ctx);
    return -1;
  }
  return 0;
}
