/*
 * test_lifetime.c - the LIFETIME rule of mpibind.h: everything an output
 * getter returns stays valid and unchanged until the next mpibind() or
 * mpibind_finalize(); a setter never frees an output, it marks the outputs
 * stale and the output getters then fail with ENODATA.
 *
 * Each kind of output (the cpus and gpus bitmaps, the nthreads array, the
 * per-task CPU arrays, the GPU ID strings, the variable names and values,
 * the topology) is read after every setter.  Reading freed memory is what
 * these tests exist to catch: they are meant for the ASan build
 * (`meson test --setup asan`), where such a read aborts; in a plain build
 * they still compare every value with a copy taken before the setter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

#define GPU_NODE "coral-lassen.xml" /* 4 NVIDIA GPUs, 2 sockets */
#define NTASKS 4

/* Copies of everything the getters returned, and the pointers. */
struct seen {
  int *nthreads;
  int nthreads_copy[NTASKS];
  hwloc_bitmap_t *cpus, *gpus;
  char *cpus_copy[NTASKS], *gpus_copy[NTASKS];
  int *cpus0;
  int ncpus0;
  int cpus0_copy[1024];
  char **gpus0;
  int ngpus0;
  char *gpus0_copy[16];
  const char *gpu_id;
  char *gpu_id_copy;
  char **names;
  int nnames;
  char *names_copy[16];
  char **values0;
  char *values0_copy[NTASKS];
  hwloc_topology_t topo;
  int topo_pus;
};

static char *list(hwloc_const_bitmap_t b)
{
  char *s = NULL;
  ck_assert_int_ge(hwloc_bitmap_list_asprintf(&s, b), 0);
  return ut_keep(s);
}

static mpibind_t *mapped_gpu_node(void)
{
  mpibind_t *h = ut_open(GPU_NODE);
  ut_map(h, UT_IN(.ntasks = NTASKS));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  return h;
}

/* Takes every kind of output and a copy of its contents. */
static void take(mpibind_t *h, struct seen *s)
{
  memset(s, 0, sizeof(*s));
  ck_assert_ptr_nonnull(s->nthreads = mpibind_get_nthreads(h));
  ck_assert_ptr_nonnull(s->cpus = mpibind_get_cpus(h));
  ck_assert_ptr_nonnull(s->gpus = mpibind_get_gpus(h));
  for (int t = 0; t < NTASKS; t++) {
    s->nthreads_copy[t] = s->nthreads[t];
    s->cpus_copy[t] = list(s->cpus[t]);
    s->gpus_copy[t] = list(s->gpus[t]);
  }
  ck_assert_ptr_nonnull(s->cpus0 = mpibind_get_cpus_ptask(h, 0, &s->ncpus0));
  ck_assert_int_le(s->ncpus0, 1024);
  memcpy(s->cpus0_copy, s->cpus0, s->ncpus0 * sizeof(int));
  ck_assert_ptr_nonnull(s->gpus0 = mpibind_get_gpus_ptask(h, 0, &s->ngpus0));
  ck_assert_int_ge(s->ngpus0, 1); /* the node has GPUs: test the strings */
  ck_assert_int_le(s->ngpus0, 16);
  for (int g = 0; g < s->ngpus0; g++)
    s->gpus0_copy[g] = ut_keep(strdup(s->gpus0[g]));
  ck_assert_ptr_nonnull(s->gpu_id = mpibind_get_gpu_id(h, 0, MPIBIND_ID_PCIBUS));
  s->gpu_id_copy = ut_keep(strdup(s->gpu_id));
  ck_assert_ptr_nonnull(s->names = mpibind_get_env_var_names(h, &s->nnames));
  ck_assert_int_le(s->nnames, 16);
  for (int v = 0; v < s->nnames; v++)
    s->names_copy[v] = ut_keep(strdup(s->names[v]));
  ck_assert_ptr_nonnull(s->values0 = mpibind_get_env_var_values(h, s->names[0]));
  for (int t = 0; t < NTASKS; t++)
    s->values0_copy[t] = ut_keep(strdup(s->values0[t]));
  ck_assert_ptr_nonnull(s->topo = mpibind_get_topology(h));
  s->topo_pus = hwloc_get_nbobjs_by_type(s->topo, HWLOC_OBJ_PU);
}

/* Reads every pointer taken (freed memory aborts under ASan) and compares
 * it with the copy. */
static void still_valid(const struct seen *s, const char *after)
{
  for (int t = 0; t < NTASKS; t++) {
    ck_assert_msg(s->nthreads[t] == s->nthreads_copy[t], "%s: nthreads", after);
    char *c = NULL, *g = NULL;
    hwloc_bitmap_list_asprintf(&c, s->cpus[t]);
    hwloc_bitmap_list_asprintf(&g, s->gpus[t]);
    ck_assert_msg(c && strcmp(c, s->cpus_copy[t]) == 0, "%s: cpus of %d",
                  after, t);
    ck_assert_msg(g && strcmp(g, s->gpus_copy[t]) == 0, "%s: gpus of %d",
                  after, t);
    free(c);
    free(g);
    ck_assert_msg(strcmp(s->values0[t], s->values0_copy[t]) == 0,
                  "%s: value of %s for task %d", after, s->names_copy[0], t);
  }
  ck_assert_msg(memcmp(s->cpus0, s->cpus0_copy, s->ncpus0 * sizeof(int)) == 0,
                "%s: cpus_ptask", after);
  for (int g = 0; g < s->ngpus0; g++)
    ck_assert_msg(strcmp(s->gpus0[g], s->gpus0_copy[g]) == 0,
                  "%s: gpus_ptask", after);
  ck_assert_ptr_null(s->gpus0[s->ngpus0]);
  ck_assert_msg(strcmp(s->gpu_id, s->gpu_id_copy) == 0, "%s: gpu id", after);
  for (int v = 0; v < s->nnames; v++)
    ck_assert_msg(strcmp(s->names[v], s->names_copy[v]) == 0,
                  "%s: variable name %d", after, v);
  ck_assert_msg(hwloc_get_nbobjs_by_type(s->topo, HWLOC_OBJ_PU) == s->topo_pus,
                "%s: topology", after);
}

/* After a setter the getters refuse the stale mapping (ENODATA). */
static void stale(mpibind_t *h, const char *after)
{
  int n;
  errno = 0;
  ck_assert_msg(mpibind_get_cpus(h) == NULL, "%s: cpus still readable", after);
  ck_assert_int_eq(errno, ENODATA);
  ck_assert_int_eq(mpibind_get_errno(h), ENODATA);
  ck_assert_msg(strstr(mpibind_get_error(h), "mpibind() again"), "%s: '%s'",
                after, mpibind_get_error(h));
  ck_assert_ptr_null(mpibind_get_nthreads(h));
  ck_assert_ptr_null(mpibind_get_gpus(h));
  ck_assert_ptr_null(mpibind_get_cpus_ptask(h, 0, &n));
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 0, &n));
  ck_assert_ptr_null(mpibind_get_gpu_id(h, 0, MPIBIND_ID_SMI));
  ck_assert_ptr_null(mpibind_get_env_var_names(h, &n));
  ck_assert_ptr_null(mpibind_get_env_var_values(h, "OMP_NUM_THREADS"));
  ck_assert_int_eq(mpibind_set_env_vars(h), -1);
  ck_assert_int_eq(mpibind_get_num_gpus(h), -1);
  ck_assert_int_eq(mpibind_mapping_snprint(NULL, 0, h), -1);
  ck_assert_int_eq(mpibind_get_errno(h), ENODATA);
}

/* Every setter of an input, with a value that is valid. */
enum { S_NTASKS, S_NTHREADS, S_GREEDY, S_GPU_OPTIM, S_SMT, S_RESTRICT_IDS,
       S_RESTRICT_TYPE, S_ALLOCATION, S_TOPOLOGY_FILE, S_TOPOLOGY_LIVE,
       S_TOPOLOGY_CALLER, S_COUNT };
static const char *const setter_names[S_COUNT] = {
    "set_ntasks", "set_nthreads", "set_greedy", "set_gpu_optim", "set_smt",
    "set_restrict_ids", "set_restrict_type", "set_gpu_allocation",
    "set_topology_file", "set_topology_file(NULL)", "set_topology"};

static hwloc_topology_t caller_topo;

static void call_setter(mpibind_t *h, int which)
{
  int rc = -1;
  switch (which) {
  case S_NTASKS: rc = mpibind_set_ntasks(h, 2); break;
  case S_NTHREADS: rc = mpibind_set_nthreads(h, 1); break;
  case S_GREEDY: rc = mpibind_set_greedy(h, 0); break;
  case S_GPU_OPTIM: rc = mpibind_set_gpu_optim(h, 0); break;
  case S_SMT: rc = mpibind_set_smt(h, 1); break;
  case S_RESTRICT_IDS: rc = mpibind_set_restrict_ids(h, "8-15"); break;
  case S_RESTRICT_TYPE:
    rc = mpibind_set_restrict_type(h, MPIBIND_RESTRICT_MEM);
    break;
  case S_ALLOCATION:
    rc = mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", "0,1");
    break;
  case S_TOPOLOGY_FILE:
    rc = mpibind_set_topology_file(h, ut_path("cts1-quartz-smt1.xml"));
    break;
  case S_TOPOLOGY_LIVE: rc = mpibind_set_topology_file(h, NULL); break;
  case S_TOPOLOGY_CALLER:
    ck_assert_int_eq(hwloc_topology_init(&caller_topo), 0);
    ck_assert_int_eq(mpibind_topology_load_filters(caller_topo), 0);
    ck_assert_int_eq(
        hwloc_topology_set_xml(caller_topo, ut_path("cts1-quartz-smt1.xml")),
        0);
    ck_assert_int_eq(hwloc_topology_load(caller_topo), 0);
    rc = mpibind_set_topology(h, caller_topo);
    break;
  }
  ck_assert_msg(rc == 0, "%s: %s", setter_names[which], mpibind_get_error(h));
}

/* _i: the setter.  Outputs survive it, getters refuse them, mpibind()
 * maps again. */
START_TEST(outputs_survive_setter)
{
  mpibind_t *h = mapped_gpu_node();
  struct seen s;
  take(h, &s);
  call_setter(h, _i);
  still_valid(&s, setter_names[_i]);
  stale(h, setter_names[_i]);
  /* A second setter (the stale outputs are not freed twice) */
  ck_assert_int_eq(mpibind_set_nthreads(h, 0), 0);
  still_valid(&s, setter_names[_i]);
  ck_assert_msg(mpibind(h) == 0, "%s then mpibind(): %s", setter_names[_i],
                mpibind_get_error(h));
  ck_assert_ptr_nonnull(mpibind_get_cpus(h));
  mpibind_finalize(h);
  if (caller_topo) {
    hwloc_topology_destroy(caller_topo);
    caller_topo = NULL;
  }
}
END_TEST

/* The GPU ID kind only renames: the mapping stays readable, and strings of
 * the previous kind stay valid. */
START_TEST(gpu_ids_keep_strings)
{
  mpibind_t *h = mapped_gpu_node();
  struct seen s;
  take(h, &s);
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_PCIBUS), 0);
  still_valid(&s, "set_gpu_ids");
  int n;
  char **pci = mpibind_get_gpus_ptask(h, 0, &n);
  ck_assert_ptr_nonnull(pci);
  ck_assert_int_eq(n, s.ngpus0);
  ck_assert_str_eq(pci[0], mpibind_get_gpu_id(h, hwloc_bitmap_first(s.gpus[0]),
                                              MPIBIND_ID_PCIBUS));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_SMI), 0);
  char **again = mpibind_get_gpus_ptask(h, 0, &n);
  ck_assert_ptr_eq(again, s.gpus0); /* the same strings as before */
  still_valid(&s, "set_gpu_ids twice");
  ck_assert_str_eq(pci[0], s.gpu_id_copy);
  mpibind_finalize(h);
}
END_TEST

/* mpibind_set_env_vars again for the same mapping: the same pointers. */
START_TEST(env_vars_again)
{
  mpibind_t *h = mapped_gpu_node();
  struct seen s;
  take(h, &s);
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  int n;
  ck_assert_ptr_eq(mpibind_get_env_var_names(h, &n), s.names);
  ck_assert_ptr_eq(mpibind_get_env_var_values(h, s.names[0]), s.values0);
  still_valid(&s, "set_env_vars");
  mpibind_finalize(h);
}
END_TEST

/* The topology of mpibind_get_topology before any mapping survives a
 * topology setter too (it is retired, not destroyed). */
START_TEST(topology_before_mapping)
{
  mpibind_t *h = ut_open(GPU_NODE);
  hwloc_topology_t t = mpibind_get_topology(h);
  ck_assert_ptr_nonnull(t);
  int pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  ck_assert_int_eq(mpibind_set_topology_file(h, ut_path("cts1-quartz-smt1.xml")),
                   0);
  ck_assert_int_eq(mpibind_set_topology_file(h, ut_path("eas-tioga.xml")), 0);
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU), pus);
  ut_map(h, UT_IN(.ntasks = 2));
  mpibind_finalize(h);
}
END_TEST

/* A failed mpibind() leaves no outputs (freed, and nothing to read). */
START_TEST(failed_mapping_leaves_none)
{
  mpibind_t *h = mapped_gpu_node();
  ck_assert_int_eq(mpibind_set_smt(h, 64), 0);
  ck_assert_int_eq(mpibind(h), -1);
  ck_assert_int_eq(mpibind_get_errno(h), EINVAL);
  ck_assert_ptr_null(mpibind_get_cpus(h));
  ck_assert_int_eq(mpibind_get_errno(h), ENODATA);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "call mpibind() first"));
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("lifetime");
  TCase *tc = ut_tcase("outputs");
  tcase_add_loop_test(tc, outputs_survive_setter, 0, S_COUNT);
  tcase_add_test(tc, gpu_ids_keep_strings);
  tcase_add_test(tc, env_vars_again);
  tcase_add_test(tc, topology_before_mapping);
  tcase_add_test(tc, failed_mapping_leaves_none);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
