/*
 * test_equivalence.c - docs/algorithm.md, "Beyond the original" of step 3 and
 * step 4: the same machine exported by two hwloc versions (2.x with
 * NVML/OpenCL devices; 1.x with DRM devices, GPU memories as NUMA nodes,
 * extra groups) maps the same: same nthreads, CPUs, and GPUs (visible
 * indexes and PCI bus ids), over many inputs.
 */
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

struct pair {
  const char *a, *b;
  int max_ntasks;              /* every ntasks up to here, then a few more */
  const char *restrict_cpu[3]; /* extra restricted runs */
  const char *restrict_mem[3];
};

static const struct pair pairs[] = {
  {"coral-lassen.xml", "coral-lassen-hwloc1.xml", 44,
   {"8-47", "96-135,8-11", NULL}, {"0", "8", NULL}},
  {"epyc-corona.xml", "epyc-corona-hwloc1.xml", 52,
   {"0-23", "6-17,54-65", NULL}, {"1,2", "5", "0,3"}},
};

static int hw_smt(mpibind_t *h)
{
  hwloc_topology_t t = mpibind_get_topology(h);
  ck_assert_ptr_nonnull(t);
  int d = hwloc_get_type_or_below_depth(t, HWLOC_OBJ_CORE);
  int arity = (int)hwloc_get_obj_by_depth(t, d, 0)->arity;
  return arity ? arity : 1; /* the core level is the PU level */
}

static char *describe(const char *a, const char *b, ut_in in)
{
  return ut_fmt("%s vs %s: ntasks %d nthreads %d greedy %d gpu_optim %d smt %d "
                "restrict %s %s", a, b, in.ntasks, in.nthreads, in.greedy,
                in.gpu_optim, in.smt, in.restrict_type ? "mem" : "cpu",
                in.restrict_ids ? in.restrict_ids : "-");
}

static void compare(mpibind_t *ha, mpibind_t *hb, const struct pair *p, ut_in in)
{
  int ra = ut_set(ha, in) || mpibind(ha);
  int rb = ut_set(hb, in) || mpibind(hb);
  ck_assert_msg(ra == 0 && rb == 0, "%s: failed: '%s' / '%s'",
                describe(p->a, p->b, in), ra ? mpibind_get_error(ha) : "",
                rb ? mpibind_get_error(hb) : "");
  ck_assert_msg(mpibind_get_num_gpus(ha) == mpibind_get_num_gpus(hb),
                "%s: %d GPUs vs %d", describe(p->a, p->b, in),
                mpibind_get_num_gpus(ha), mpibind_get_num_gpus(hb));
  int *na = mpibind_get_nthreads(ha), *nb = mpibind_get_nthreads(hb);
  hwloc_bitmap_t *ca = mpibind_get_cpus(ha), *cb = mpibind_get_cpus(hb);
  for (int i = 0; i < in.ntasks; i++) {
    ck_assert_msg(na[i] == nb[i], "%s: task %d: nthreads %d vs %d",
                  describe(p->a, p->b, in), i, na[i], nb[i]);
    ck_assert_msg(hwloc_bitmap_isequal(ca[i], cb[i]), "%s: task %d: cpus %s vs %s",
                  describe(p->a, p->b, in), i, ut_cpus_str(ha, i),
                  ut_cpus_str(hb, i));
    int kinds[] = {MPIBIND_ID_SMI, MPIBIND_ID_PCIBUS};
    for (int k = 0; k < 2; k++) {
      mpibind_set_gpu_ids(ha, kinds[k]);
      mpibind_set_gpu_ids(hb, kinds[k]);
      char *ga = ut_gpus_str(ha, i), *gb = ut_gpus_str(hb, i);
      ck_assert_msg(strcmp(ga, gb) == 0, "%s: task %d: gpus %s vs %s",
                    describe(p->a, p->b, in), i, ga, gb);
    }
  }
}

START_TEST(same_mapping)
{
  const struct pair *p = &pairs[_i];
  mpibind_t *ha = ut_open(p->a), *hb = ut_open(p->b);
  int hw = hw_smt(ha);
  ck_assert_int_eq(hw, hw_smt(hb));
  int extra[] = {p->max_ntasks + 4, 64, 80, 96, 100, 160, 200};
  int nvalues = p->max_ntasks + (int)(sizeof extra / sizeof extra[0]);
  int nthreads[] = {0, 1, 3};
  for (int v = 0; v < nvalues; v++) {
    int n = v < p->max_ntasks ? v + 1 : extra[v - p->max_ntasks];
    for (int smt = 0; smt <= hw; smt++)
      for (int greedy = 0; greedy <= 1; greedy++)
        for (int gpu = 0; gpu <= 1; gpu++)
          for (int t = 0; t < 3; t++)
            compare(ha, hb, p, UT_IN(.ntasks = n, .nthreads = nthreads[t],
                                     .greedy = greedy, .gpu_optim = gpu, .smt = smt));
  }
  mpibind_finalize(ha);
  mpibind_finalize(hb);
}
END_TEST

START_TEST(same_mapping_restricted)
{
  const struct pair *p = &pairs[_i];
  mpibind_t *ha = ut_open(p->a), *hb = ut_open(p->b);
  for (int type = 0; type <= 1; type++) {
    const char *const *lists = type ? p->restrict_mem : p->restrict_cpu;
    for (int l = 0; l < 3 && lists[l]; l++)
      for (int n = 1; n <= 24; n++)
        for (int greedy = 0; greedy <= 1; greedy++)
          for (int gpu = 0; gpu <= 1; gpu++)
            compare(ha, hb, p, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu,
                                     .restrict_ids = lists[l], .restrict_type = type));
  }
  mpibind_finalize(ha);
  mpibind_finalize(hb);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("equivalence");
  TCase *tc = ut_tcase("exports");
  tcase_set_timeout(tc, 60);
  int npairs = (int)(sizeof pairs / sizeof pairs[0]);
  tcase_add_loop_test(tc, same_mapping, 0, npairs);
  tcase_add_loop_test(tc, same_mapping_restricted, 0, npairs);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
