/*
 * test_gpushare.c - docs/algorithm.md, "No GPU left idle" and "GPU ids
 * that name each GPU once": stranded GPUs (no locality: on the Machine,
 * above sub-NUMA domains, beside CPU-less memory; or allocated but
 * outside a restriction) are shared out so that every GPU is used, the
 * counts per GPU within one, nearest first; nothing changes where no GPU
 * is stranded; a GPU id kind that names two GPUs alike is refused where
 * task lists are read.  Expected values are the worked examples of
 * docs/algorithm.md and counts read from the topology files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* Every GPU of the list is some task's, and with ntasks >= ngpus each
 * task has one GPU and the counts per GPU differ by at most one; with
 * fewer tasks, task t has split(ngpus, ntasks, t) GPUs, none shared. */
static void every_gpu_used(mpibind_t *h)
{
  int n = mpibind_get_ntasks(h), g = mpibind_get_num_gpus(h);
  hwloc_bitmap_t *gpus = mpibind_get_gpus(h);
  ck_assert_ptr_nonnull(gpus);
  int *count = calloc(g > 0 ? g : 1, sizeof(int));
  for (int t = 0; t < n; t++) {
    int want = n >= g ? 1 : g / n + (t < g % n);
    ck_assert_msg(hwloc_bitmap_weight(gpus[t]) == want,
                  "task %d has %d GPUs, expected %d", t,
                  hwloc_bitmap_weight(gpus[t]), want);
    int x;
    hwloc_bitmap_foreach_begin(x, gpus[t]) count[x]++;
    hwloc_bitmap_foreach_end();
  }
  int lo = n, hi = 0;
  for (int x = 0; x < g; x++) {
    lo = count[x] < lo ? count[x] : lo;
    hi = count[x] > hi ? count[x] : hi;
  }
  ck_assert_msg(lo >= 1, "a GPU is idle");
  ck_assert_msg(hi - lo <= 1, "GPU counts from %d to %d", lo, hi);
  free(count);
}

/* JUROPA3: 2 K20 on a host bridge of the Machine. */
START_TEST(no_locality_juropa3)
{
  mpibind_t *h = ut_open("gpus-without-locality.xml");
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "32", "0-31", "0,1");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "8", "0-7;8-15", "0;1");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "4", "0-3;4-7;8-11;12-15", "0;0;1;1");
  for (int n = 1; n <= 9; n++)
    for (int greedy = 0; greedy <= 1; greedy++)
      for (int gpu = 0; gpu <= 1; gpu++) {
        ut_map(h, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu));
        every_gpu_used(h);
      }
  mpibind_finalize(h);
}
END_TEST

/* The same kind, written for the test: 2 packages, 2 NVIDIA GPUs and an
 * HCA on host bridges of the Machine. */
START_TEST(no_locality_machine_bus)
{
  mpibind_t *h = ut_open("gpu-machine.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;1");
  for (int n = 1; n <= 16; n++) {
    ut_map(h, UT_IN(.ntasks = n));
    every_gpu_used(h);
  }
  mpibind_finalize(h);
}
END_TEST

/* GPUs on each package above its 2 sub-NUMA clusters: each task gets
 * its own package's GPUs (the nearest). */
START_TEST(above_subnuma_domains)
{
  mpibind_t *h = ut_open("gpu-snc.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "2", "0,2;4,6;8,10;12,14", "0;1;2;3");
  ut_map(h, UT_IN(.ntasks = 8));
  ut_expect(h, "1", "0;2;4;6;8;10;12;14", "0;0;1;1;2;2;3;3");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "8;4;4", "0-7;8-11;12-15", "0,1;2;3");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "8", "0-7;8-15", "0,1;2,3");
  for (int n = 1; n <= 16; n++) {
    ut_map(h, UT_IN(.ntasks = n, .greedy = n % 2));
    every_gpu_used(h);
  }
  mpibind_finalize(h);
}
END_TEST

/* Corona, a job on a few cores holding the node's 4 GPUs. */
START_TEST(allocated_outside_the_restriction)
{
  mpibind_t *h = ut_open("epyc-corona.xml");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "ROCR_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 8, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3;3;2;2;0;0;1;1");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "44-47"));
  ut_expect(h, "2", "44-45;46-47", "3,2;0,1");
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "0-3"));
  ut_expect(h, "1", "0;1;2;3", "0;1;2;3");
  for (int n = 1; n <= 8; n++)
    for (int l = 0; l < 2; l++) {
      ut_map(h, UT_IN(.ntasks = n, .restrict_ids = l ? "0-3" : "44-47"));
      every_gpu_used(h);
    }
  /* The variable names the allocation's GPUs, the task's own first. */
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  char **v = mpibind_get_env_var_values(h, "ROCR_VISIBLE_DEVICES");
  ck_assert_str_eq(v[0], "3,2");
  ck_assert_str_eq(v[1], "0,1");
  mpibind_finalize(h);
}
END_TEST

/* Without an allocation a restriction selects its part of the node, GPUs
 * included: the original's answer. */
START_TEST(restriction_without_allocation_unchanged)
{
  mpibind_t *h = ut_open("epyc-corona.xml");
  ut_map(h, UT_IN(.ntasks = 8, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 1);
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3");
  ut_map(h, UT_IN(.ntasks = 8, .restrict_ids = "0-3"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 0);
  ut_expect(h, "1", "0;0;1;1;2;2;3;3", NULL);
  mpibind_finalize(h);
  h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "2;3");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "2,0;3,1");
  mpibind_finalize(h);
}
END_TEST

/* The job's CPUs are a restriction too. */
START_TEST(job_cpus_with_allocation)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  hwloc_bitmap_set_range(cpus, 96, 175);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  every_gpu_used(h);
  hwloc_bitmap_free(cpus);
  mpibind_finalize(h);
}
END_TEST

/* A GPU beside CPU-less memory, with and without a restriction (which
 * cannot be about it: restricting to every CPU changes nothing). */
START_TEST(beside_cpuless_memory)
{
  mpibind_t *h = ut_open("gpu-zero-weight.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;0");
  ut_map(h, UT_IN(.ntasks = 3, .restrict_ids = "0-15"));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;0");
  mpibind_finalize(h);
}
END_TEST

/* Nothing stranded: the worked examples' GPUs stay (Tioga with 3 tasks,
 * greedy 0, leaves GPUs 0 and 1 to no task: they are local to CPUs the
 * mapping may use, and the original's answer stays). */
START_TEST(nothing_stranded_unchanged)
{
  mpibind_t *h = ut_open("eas-tioga.xml");
  ut_map(h, UT_IN(.ntasks = 3, .greedy = 0));
  ut_expect(h, "16", "0-15;16-31;32-47", "4,5;2,3;6,7");
  mpibind_finalize(h);
}
END_TEST

START_TEST(ids_not_unique)
{
  mpibind_t *h = ut_open("gpu-same-uuid.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "2", "0,2;4,6", "0,1;2,3"); /* visible indexes */
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_UNIV), 0);
  int n = -1;
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 0, &n));
  ck_assert_int_eq(mpibind_get_errno(h), EINVAL);
  const char *m = mpibind_get_error(h);
  ck_assert_msg(strstr(m, "uuid") && strstr(m, "0x1a2b3c4d") &&
                    strstr(m, "rsmi0") && strstr(m, "rsmi1") &&
                    strstr(m, "index") && strstr(m, "name") &&
                    !strchr(m, '\n'),
                "message '%s'", m);
  ck_assert_int_eq(mpibind_mapping_snprint(NULL, 0, h), -1);
  /* one GPU's id stays readable; the kinds that tell them apart work */
  ck_assert_str_eq(mpibind_get_gpu_id(h, 3, MPIBIND_ID_UNIV), "0x5e6f7a8b");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_PCIBUS), 0);
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 0, &n));
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "0000:01:00.0"));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ut_expect(h, "2", "0,2;4,6", "rsmi0,rsmi1;rsmi2,rsmi3");
  ck_assert_int_gt(mpibind_mapping_snprint(NULL, 0, h), 0);
  mpibind_finalize(h);
  /* Unknown UUIDs ("") may repeat, as before. */
  h = ut_open("gpu-rules.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_UNIV), 0);
  ck_assert_ptr_nonnull(mpibind_get_gpus_ptask(h, 1, &n));
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("gpushare");
  TCase *tc = ut_tcase("gpushare");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, no_locality_juropa3);
  tcase_add_test(tc, no_locality_machine_bus);
  tcase_add_test(tc, above_subnuma_domains);
  tcase_add_test(tc, allocated_outside_the_restriction);
  tcase_add_test(tc, restriction_without_allocation_unchanged);
  tcase_add_test(tc, job_cpus_with_allocation);
  tcase_add_test(tc, beside_cpuless_memory);
  tcase_add_test(tc, nothing_stranded_unchanged);
  tcase_add_test(tc, ids_not_unique);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
