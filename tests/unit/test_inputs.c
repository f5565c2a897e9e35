/*
 * test_inputs.c - docs/algorithm.md step 1 (input checks), the handle's
 * defaults, the error convention of mpibind.h (a one-line message naming
 * the value; a NULL handle is an error, not a crash), and the topology
 * sources (a file, a caller's topology).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* The setter fails with -1 and a non-empty one-line message containing
 * the offending value. */
#define SETTER_FAILS(h, call, value)                                     \
  do {                                                                   \
    ck_assert_int_eq((call), -1);                                        \
    const char *m_ = mpibind_get_error(h);                               \
    ck_assert_ptr_nonnull(m_);                                           \
    ck_assert_msg(strstr(m_, value) != NULL,                             \
                  "%s: message '%s' does not name %s", #call, m_, value);\
    ck_assert_msg(!strchr(m_, '\n'), "message not one line: %s", m_);    \
  } while (0)

static mpibind_t *new_handle(void)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_ptr_nonnull(h);
  return h;
}

START_TEST(defaults)
{
  mpibind_t *h = new_handle();
  ck_assert_int_eq(mpibind_get_nthreads_input(h), 0);
  ck_assert_int_eq(mpibind_get_greedy(h), 1);
  ck_assert_int_eq(mpibind_get_gpu_optim(h), 1);
  ck_assert_int_eq(mpibind_get_smt(h), 0);
  ck_assert_int_eq(mpibind_get_restrict_type(h), MPIBIND_RESTRICT_CPU);
  ck_assert_ptr_null(mpibind_get_restrict_ids(h));
  ck_assert_int_eq(mpibind_get_gpu_ids(h), MPIBIND_ID_SMI);
  ck_assert_ptr_null(mpibind_get_topology_file(h));
  ck_assert_str_eq(mpibind_get_error(h), "");
  ck_assert_int_eq(mpibind_get_num_gpus(h), -1);
  ck_assert_ptr_null(mpibind_get_nthreads(h));
  ck_assert_ptr_null(mpibind_get_cpus(h));
  mpibind_finalize(h);
}
END_TEST

START_TEST(setters_roundtrip)
{
  mpibind_t *h = new_handle();
  ck_assert_int_eq(mpibind_set_ntasks(h, 7), 0);
  ck_assert_int_eq(mpibind_get_ntasks(h), 7);
  ck_assert_int_eq(mpibind_set_nthreads(h, 3), 0);
  ck_assert_int_eq(mpibind_get_nthreads_input(h), 3);
  ck_assert_int_eq(mpibind_set_greedy(h, 0), 0);
  ck_assert_int_eq(mpibind_get_greedy(h), 0);
  ck_assert_int_eq(mpibind_set_gpu_optim(h, 0), 0);
  ck_assert_int_eq(mpibind_get_gpu_optim(h), 0);
  ck_assert_int_eq(mpibind_set_smt(h, 2), 0);
  ck_assert_int_eq(mpibind_get_smt(h), 2);
  ck_assert_int_eq(mpibind_set_restrict_type(h, MPIBIND_RESTRICT_MEM), 0);
  ck_assert_int_eq(mpibind_get_restrict_type(h), MPIBIND_RESTRICT_MEM);
  char ids[] = "0-3,8";
  ck_assert_int_eq(mpibind_set_restrict_ids(h, ids), 0);
  ids[0] = '9'; /* the string is copied */
  ck_assert_str_eq(mpibind_get_restrict_ids(h), "0-3,8");
  ck_assert_int_eq(mpibind_set_restrict_ids(h, NULL), 0);
  ck_assert_ptr_null(mpibind_get_restrict_ids(h));
  ck_assert_int_eq(mpibind_set_restrict_ids(h, "1"), 0);
  ck_assert_int_eq(mpibind_set_restrict_ids(h, ""), 0);
  ck_assert_ptr_null(mpibind_get_restrict_ids(h));
  for (int k = MPIBIND_ID_UNIV; k <= MPIBIND_ID_NAME; k++) {
    ck_assert_int_eq(mpibind_set_gpu_ids(h, k), 0);
    ck_assert_int_eq(mpibind_get_gpu_ids(h), k);
  }
  mpibind_finalize(h);
}
END_TEST

START_TEST(enum_values)
{
  /* The original's numbering, relied upon by callers passing numbers. */
  ck_assert_int_eq(MPIBIND_RESTRICT_CPU, 0);
  ck_assert_int_eq(MPIBIND_RESTRICT_MEM, 1);
  ck_assert_int_eq(MPIBIND_ID_UNIV, 2);
  ck_assert_int_eq(MPIBIND_ID_SMI, 3);
  ck_assert_int_eq(MPIBIND_ID_PCIBUS, 4);
  ck_assert_int_eq(MPIBIND_ID_NAME, 5);
  ck_assert_int_eq(MPIBIND_ID_VISDEVS, MPIBIND_ID_SMI);
}
END_TEST

START_TEST(bad_ntasks)
{
  mpibind_t *h = new_handle();
  SETTER_FAILS(h, mpibind_set_ntasks(h, 0), "0");
  SETTER_FAILS(h, mpibind_set_ntasks(h, -7), "-7");
  mpibind_finalize(h);
}
END_TEST

START_TEST(bad_nthreads)
{
  mpibind_t *h = new_handle();
  SETTER_FAILS(h, mpibind_set_nthreads(h, -13), "-13");
  ck_assert_int_eq(mpibind_get_nthreads_input(h), 0);
  mpibind_finalize(h);
}
END_TEST

START_TEST(bad_smt)
{
  mpibind_t *h = new_handle();
  SETTER_FAILS(h, mpibind_set_smt(h, -3), "-3");
  ck_assert_int_eq(mpibind_get_smt(h), 0);
  mpibind_finalize(h);
}
END_TEST

START_TEST(bad_greedy_gpu_optim)
{
  mpibind_t *h = new_handle();
  SETTER_FAILS(h, mpibind_set_greedy(h, 7), "7");
  SETTER_FAILS(h, mpibind_set_greedy(h, -1), "-1");
  ck_assert_int_eq(mpibind_get_greedy(h), 1);
  SETTER_FAILS(h, mpibind_set_gpu_optim(h, 9), "9");
  SETTER_FAILS(h, mpibind_set_gpu_optim(h, -2), "-2");
  ck_assert_int_eq(mpibind_get_gpu_optim(h), 1);
  mpibind_finalize(h);
}
END_TEST

START_TEST(bad_restrict_type)
{
  mpibind_t *h = new_handle();
  SETTER_FAILS(h, mpibind_set_restrict_type(h, 42), "42");
  SETTER_FAILS(h, mpibind_set_restrict_type(h, -1), "-1");
  /* MPIBIND_ID_* values are not restriction types. */
  SETTER_FAILS(h, mpibind_set_restrict_type(h, MPIBIND_ID_SMI), "3");
  ck_assert_int_eq(mpibind_get_restrict_type(h), MPIBIND_RESTRICT_CPU);
  mpibind_finalize(h);
}
END_TEST

START_TEST(bad_gpu_id_kind)
{
  mpibind_t *h = new_handle();
  SETTER_FAILS(h, mpibind_set_gpu_ids(h, 17), "17");
  SETTER_FAILS(h, mpibind_set_gpu_ids(h, -4), "-4");
  /* The restriction types share the enum but are not ID kinds. */
  SETTER_FAILS(h, mpibind_set_gpu_ids(h, MPIBIND_RESTRICT_CPU), "0");
  SETTER_FAILS(h, mpibind_set_gpu_ids(h, MPIBIND_RESTRICT_MEM), "1");
  ck_assert_int_eq(mpibind_get_gpu_ids(h), MPIBIND_ID_SMI);
  mpibind_finalize(h);
}
END_TEST

START_TEST(ntasks_required)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ck_assert_int_eq(mpibind(h), -1);
  ck_assert_str_ne(mpibind_get_error(h), "");
  mpibind_finalize(h);
}
END_TEST

/* smt <= hw_smt, hw_smt being the children of the first core (SMT-4 on
 * lassen, 1 on quartz whose core level is the PU level). */
START_TEST(smt_above_hw_smt)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  const char *m = ut_map_fails(h, UT_IN(.ntasks = 2, .smt = 6));
  ck_assert_msg(strstr(m, "6"), "message '%s' does not name smt 6", m);
  ut_map(h, UT_IN(.ntasks = 2, .smt = 4)); /* = hw_smt: fine */
  mpibind_finalize(h);

  h = ut_open("cts1-quartz-smt1.xml");
  m = ut_map_fails(h, UT_IN(.ntasks = 2, .smt = 2));
  ck_assert_msg(strstr(m, "2"), "message '%s' does not name smt 2", m);
  ut_map(h, UT_IN(.ntasks = 2, .smt = 1));
  mpibind_finalize(h);
}
END_TEST

/* hw_smt for the smt check is taken before the restriction: one PU per
 * core left (restricted hw_smt 1) still accepts smt 4, and the mapping
 * then uses the restricted topology (each core contributes what it has). */
START_TEST(smt_checked_before_restriction)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 1, .smt = 4, .restrict_ids = "8,12,16,20"));
  /* one domain, k = 1, s = 4 >= restricted hw 1: PU count 4 -> t = 4;
   * core level, p = 4, each core has 1 PU; the restriction keeps the
   * node's 4 GPUs, all the one task's (No GPU left idle) */
  ut_expect(h, "4", "8,12,16,20", "0,1,2,3");
  ut_map_fails(h, UT_IN(.ntasks = 1, .smt = 5, .restrict_ids = "8,12,16,20"));
  mpibind_finalize(h);
}
END_TEST

/* hw_smt is computed once per topology (when it is given, and per
 * restricted copy), never kept across topologies: one handle moved
 * between nodes of SMT-4 and SMT-1, and between restrictions whose cores
 * keep 1 or 4 threads, checks smt and splits cores by the topology of
 * the call. */
START_TEST(hw_smt_follows_the_topology)
{
  /* Restricted copies: one thread per core left (hw_smt 1), then two
   * whole cores (hw_smt 4), smt 2: 2 threads per task, the cores' count
   * times smt over the tasks (with the first copy's hw_smt 1, the PUs'
   * count: 4). */
  mpibind_t *h = ut_open("coral-lassen.xml");
  /* (socket 1's GPUs 2 and 3 stay the job's: No GPU left idle) */
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "8,12,16,20"));
  ut_expect(h, "1", "8;12;16;20", "0;2;1;3");
  ut_map(h, UT_IN(.ntasks = 2, .smt = 2, .restrict_ids = "8-15"));
  ut_expect(h, "2", "8-9;12-13", "0,2;1,3");

  /* Other nodes: SMT-4, SMT-1 from a file, SMT-4 from the caller. */
  ut_map(h, UT_IN(.ntasks = 2, .smt = 4));
  ck_assert_int_eq(mpibind_set_topology_file(h, ut_path("cts1-quartz-smt1.xml")),
                   0);
  ut_map_fails(h, UT_IN(.ntasks = 2, .smt = 4));
  ut_map(h, UT_IN(.ntasks = 2, .smt = 1));
  hwloc_topology_t lassen;
  ck_assert_int_eq(hwloc_topology_init(&lassen), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(lassen), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(lassen, ut_path("coral-lassen.xml")),
                   0);
  ck_assert_int_eq(hwloc_topology_load(lassen), 0);
  ck_assert_int_eq(mpibind_set_topology(h, lassen), 0);
  ut_map(h, UT_IN(.ntasks = 2, .smt = 4));
  mpibind_finalize(h);
  hwloc_topology_destroy(lassen);
}
END_TEST

/* The message stays until the next failing call; a new failure replaces
 * it. */
START_TEST(message_persists)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ck_assert_int_eq(mpibind_set_ntasks(h, -7), -1);
  char *m = strdup(mpibind_get_error(h));
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_str_eq(mpibind_get_error(h), m);
  ck_assert_int_eq(mpibind_set_nthreads(h, -13), -1);
  ck_assert_msg(strstr(mpibind_get_error(h), "-13"), "message '%s'",
                mpibind_get_error(h));
  free(m);
  mpibind_finalize(h);
}
END_TEST

/* After a failed mpibind() the previous outputs are gone. */
START_TEST(failure_clears_outputs)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_ptr_nonnull(mpibind_get_cpus(h));
  ut_map_fails(h, UT_IN(.ntasks = 2, .smt = 8));
  ck_assert_ptr_null(mpibind_get_cpus(h));
  ck_assert_ptr_null(mpibind_get_nthreads(h));
  ck_assert_ptr_null(mpibind_get_gpus(h));
  int n = 5;
  ck_assert_ptr_null(mpibind_get_cpus_ptask(h, 0, &n));
  mpibind_finalize(h);
}
END_TEST

/* Task and GPU indexes out of range are errors, not crashes. */
START_TEST(out_of_range)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  int n = 0;
  ck_assert_ptr_null(mpibind_get_cpus_ptask(h, 0, &n)); /* not mapped */
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 0, &n));
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_ptr_null(mpibind_get_cpus_ptask(h, 2, &n));
  ck_assert_str_ne(mpibind_get_error(h), "");
  ck_assert_ptr_null(mpibind_get_cpus_ptask(h, -1, &n));
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 2, &n));
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, -1, &n));
  ck_assert_ptr_null(mpibind_get_gpu_id(h, 4, MPIBIND_ID_SMI));
  ck_assert_ptr_null(mpibind_get_gpu_id(h, -1, MPIBIND_ID_SMI));
  ck_assert_ptr_null(mpibind_get_gpu_id(h, 0, 99));
  char buf[64];
  ck_assert_int_eq(mpibind_mapping_ptask_snprint(buf, sizeof buf, h, 2), -1);
  ck_assert_int_eq(mpibind_mapping_ptask_snprint(buf, sizeof buf, h, -1), -1);
  mpibind_finalize(h);
}
END_TEST

START_TEST(null_handle)
{
  char buf[32];
  int n = 0;
  ck_assert_int_eq(mpibind_init(NULL), -1);
  mpibind_finalize(NULL);
  ck_assert_ptr_nonnull(mpibind_get_error(NULL));
  ck_assert_str_ne(mpibind_get_error(NULL), "");
  ck_assert_int_eq(mpibind_set_ntasks(NULL, 1), -1);
  ck_assert_int_eq(mpibind_set_nthreads(NULL, 1), -1);
  ck_assert_int_eq(mpibind_set_greedy(NULL, 1), -1);
  ck_assert_int_eq(mpibind_set_gpu_optim(NULL, 1), -1);
  ck_assert_int_eq(mpibind_set_smt(NULL, 1), -1);
  ck_assert_int_eq(mpibind_set_restrict_ids(NULL, "0"), -1);
  ck_assert_int_eq(mpibind_set_restrict_type(NULL, 0), -1);
  ck_assert_int_eq(mpibind_set_gpu_ids(NULL, MPIBIND_ID_SMI), -1);
  ck_assert_int_eq(mpibind_set_topology(NULL, NULL), -1);
  ck_assert_int_eq(mpibind_set_topology_file(NULL, "x.xml"), -1);
  ck_assert_int_eq(mpibind_set_gpu_allocation(NULL, "CUDA_VISIBLE_DEVICES", "0"), -1);
  ck_assert_int_eq(mpibind_topology_load_filters(NULL), -1);
  /* getters of one input: any value, but no crash */
  (void)mpibind_get_ntasks(NULL);
  (void)mpibind_get_greedy(NULL);
  (void)mpibind_get_gpu_optim(NULL);
  (void)mpibind_get_smt(NULL);
  (void)mpibind_get_restrict_type(NULL);
  (void)mpibind_get_gpu_ids(NULL);
  (void)mpibind_get_nthreads_input(NULL);
  ck_assert_ptr_null(mpibind_get_restrict_ids(NULL));
  ck_assert_ptr_null(mpibind_get_topology_file(NULL));
  ck_assert_int_eq(mpibind_topology_load(NULL), -1);
  ck_assert_ptr_null(mpibind_get_topology(NULL));
  ck_assert_int_eq(mpibind_topology_check_system(NULL), -1);
  ck_assert_int_eq(mpibind(NULL), -1);
  ck_assert_ptr_null(mpibind_get_nthreads(NULL));
  ck_assert_ptr_null(mpibind_get_cpus(NULL));
  ck_assert_ptr_null(mpibind_get_gpus(NULL));
  ck_assert_int_eq(mpibind_get_num_gpus(NULL), -1);
  ck_assert_ptr_null(mpibind_get_cpus_ptask(NULL, 0, &n));
  ck_assert_ptr_null(mpibind_get_gpus_ptask(NULL, 0, &n));
  ck_assert_ptr_null(mpibind_get_gpu_id(NULL, 0, MPIBIND_ID_SMI));
  ck_assert_int_eq(mpibind_mapping_snprint(buf, sizeof buf, NULL), -1);
  ck_assert_int_eq(mpibind_mapping_ptask_snprint(buf, sizeof buf, NULL, 0), -1);
  ck_assert_int_eq(mpibind_mapping_print(NULL), -1);
  ck_assert_int_eq(mpibind_set_env_vars(NULL), -1);
  ck_assert_ptr_null(mpibind_get_env_var_names(NULL, &n));
  ck_assert_ptr_null(mpibind_get_env_var_values(NULL, "OMP_NUM_THREADS"));
  ck_assert_int_eq(mpibind_env_vars_print(NULL), -1);
  ck_assert_int_eq(mpibind_apply(NULL, 0), -1);
}
END_TEST

/* Calls before a mapping, and NULL out-pointers, are errors, not crashes. */
START_TEST(calls_before_mapping)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  char buf[32];
  int n;
  ck_assert_int_eq(mpibind_mapping_snprint(buf, sizeof buf, h), -1);
  ck_assert_int_eq(mpibind_mapping_print(h), -1);
  ck_assert_int_eq(mpibind_set_env_vars(h), -1);
  ck_assert_ptr_null(mpibind_get_env_var_names(h, &n));
  ck_assert_int_eq(mpibind_apply(h, 0), -1);
  ck_assert_str_ne(mpibind_get_error(h), "");
  mpibind_finalize(h);
}
END_TEST

/* A topology the caller loaded with mpibind's filters maps like the same
 * file, and the handle neither modifies nor frees it (restriction works on
 * a private copy). */
START_TEST(caller_topology)
{
  hwloc_topology_t topo;
  char *path = ut_path("coral-lassen.xml");
  ck_assert_int_eq(hwloc_topology_init(&topo), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(topo), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(topo, path), 0);
  ck_assert_int_eq(hwloc_topology_load(topo), 0);
  int npus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  ck_assert_int_eq(npus, 160);

  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology(h, topo), 0);
  ck_assert_ptr_null(mpibind_get_topology_file(h));
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "10", ut_fmt("%s;%s;%s;%s", ut_seq(8, 44, 4, 1),
                            ut_seq(48, 84, 4, 1), ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "0;1;2;3");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8", .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "2,0;3,1");
  mpibind_finalize(h);
  /* still the caller's, whole */
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU), npus);
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE), 2);
  hwloc_topology_destroy(topo);
}
END_TEST

/* Step 0: every type KEEP_STRUCTURE, PCI and OS devices KEEP_IMPORTANT;
 * the handle loads files with them (lassen's L2/L1 caches, one per core,
 * add no structure and go). */
START_TEST(load_filters)
{
  hwloc_topology_t t;
  enum hwloc_type_filter_e f;
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(t), 0);
  hwloc_obj_type_t structure[] = {HWLOC_OBJ_PACKAGE, HWLOC_OBJ_CORE, HWLOC_OBJ_L1CACHE,
                                  HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE, HWLOC_OBJ_GROUP};
  for (size_t i = 0; i < sizeof structure / sizeof structure[0]; i++) {
    ck_assert_int_eq(hwloc_topology_get_type_filter(t, structure[i], &f), 0);
    ck_assert_msg(f == HWLOC_TYPE_FILTER_KEEP_STRUCTURE, "%s: filter %d",
                  hwloc_obj_type_string(structure[i]), (int)f);
  }
  ck_assert_int_eq(hwloc_topology_get_type_filter(t, HWLOC_OBJ_PCI_DEVICE, &f), 0);
  ck_assert_int_eq(f, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  ck_assert_int_eq(hwloc_topology_get_type_filter(t, HWLOC_OBJ_OS_DEVICE, &f), 0);
  ck_assert_int_eq(f, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  hwloc_topology_destroy(t);

  mpibind_t *h = ut_open("coral-lassen.xml");
  t = mpibind_get_topology(h);
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(hwloc_get_type_depth(t, HWLOC_OBJ_L2CACHE), HWLOC_TYPE_DEPTH_UNKNOWN);
  ck_assert_int_eq(hwloc_get_type_depth(t, HWLOC_OBJ_L1CACHE), HWLOC_TYPE_DEPTH_UNKNOWN);
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_L3CACHE), 20);
  ck_assert_int_eq(hwloc_topology_get_depth(t), 5);
  mpibind_finalize(h);
}
END_TEST

/* NULL returns to the live machine, after a caller's topology too. */
START_TEST(back_to_live)
{
  hwloc_topology_t topo;
  char *path = ut_path("coral-lassen.xml");
  ck_assert_int_eq(hwloc_topology_init(&topo), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(topo), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(topo, path), 0);
  ck_assert_int_eq(hwloc_topology_load(topo), 0);
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology(h, topo), 0);
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "160", "8-87,96-175", "0,1,2,3");
  ck_assert_int_eq(mpibind_set_topology(h, NULL), 0);
  hwloc_topology_t live;
  ck_assert_int_eq(hwloc_topology_init(&live), 0);
  ck_assert_int_eq(hwloc_topology_load(live), 0);
  /* one task with smt = hw_smt: every PU of the node (greedy over several
   * domains, or all PUs of every core of the only one) */
  int cd = hwloc_get_type_or_below_depth(live, HWLOC_OBJ_CORE);
  hwloc_obj_t core = hwloc_get_obj_by_depth(live, cd, 0);
  int hw = core->type == HWLOC_OBJ_PU ? 1 : (int)core->arity;
  ut_map(h, UT_IN(.ntasks = 1, .smt = hw));
  ck_assert_msg(hwloc_bitmap_isequal(mpibind_get_cpus(h)[0],
                                     hwloc_topology_get_topology_cpuset(live)),
                "one task on the live machine: cpus %s", ut_cpus_str(h, 0));
  hwloc_topology_destroy(live);
  mpibind_finalize(h);
  hwloc_topology_destroy(topo);
}
END_TEST

START_TEST(topology_file_getter)
{
  char *path = ut_path("eas-tioga.xml");
  mpibind_t *h = ut_open(path);
  ck_assert_str_eq(mpibind_get_topology_file(h), path);
  ck_assert_int_eq(mpibind_topology_load(h), 0);
  hwloc_topology_t t = mpibind_get_topology(h);
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU), 128);
  ck_assert_int_eq(mpibind_set_topology_file(h, NULL), 0);
  ck_assert_ptr_null(mpibind_get_topology_file(h));
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("inputs");
  TCase *tc = ut_tcase("step1");
  tcase_add_test(tc, defaults);
  tcase_add_test(tc, setters_roundtrip);
  tcase_add_test(tc, enum_values);
  tcase_add_test(tc, bad_ntasks);
  tcase_add_test(tc, bad_nthreads);
  tcase_add_test(tc, bad_smt);
  tcase_add_test(tc, bad_greedy_gpu_optim);
  tcase_add_test(tc, bad_restrict_type);
  tcase_add_test(tc, bad_gpu_id_kind);
  tcase_add_test(tc, ntasks_required);
  tcase_add_test(tc, smt_above_hw_smt);
  tcase_add_test(tc, smt_checked_before_restriction);
  tcase_add_test(tc, hw_smt_follows_the_topology);
  tcase_add_test(tc, message_persists);
  tcase_add_test(tc, failure_clears_outputs);
  tcase_add_test(tc, out_of_range);
  tcase_add_test(tc, null_handle);
  tcase_add_test(tc, calls_before_mapping);
  tcase_add_test(tc, caller_topology);
  tcase_add_test(tc, load_filters);
  tcase_add_test(tc, topology_file_getter);
  tcase_add_test(tc, back_to_live);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
