/*
 * test_job_cpus.c - docs/algorithm.md "The job's CPUs" (beyond the
 * original): mpibind_set_job_cpus() restricts the mapping, like a CPU
 * restriction of step 2 and on top of the user's restrict list, to the
 * CPUs the launch gave the job on this node.
 *
 * cts1-quartz-smt1.xml: 36 PUs, socket 0 (NUMA 0) PUs 0-17, socket 1 (NUMA
 * 1) PUs 18-35, one PU per core.  coral-lassen.xml: PUs 8-87 (socket 0,
 * GPUs 0-1) and 96-175 (socket 1, GPUs 2-3), 4 PUs per core.
 */
#include <string.h>

#include "unit_util.h"

static void set_job(mpibind_t *h, const char *list)
{
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  ck_assert_int_eq(hwloc_bitmap_list_sscanf(b, list), 0);
  ck_assert_int_eq(mpibind_set_job_cpus(h, b), 0);
  hwloc_bitmap_free(b);
}

START_TEST(like_a_cpu_restriction)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  set_job(h, "30-35,1000");
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "6", "30-35", NULL);
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "3", "30-32;33-35", NULL);
  mpibind_finalize(h);
}
END_TEST

START_TEST(within_the_restrict_list)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  set_job(h, "6-17");
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "0-11"));
  ut_expect(h, "6", "6-11", NULL);
  /* a memory restriction first (NUMA 0: PUs 0-17), then the job's CPUs */
  set_job(h, "9-26");
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "0",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "9", "9-17", NULL);
  mpibind_finalize(h);
}
END_TEST

START_TEST(nothing_in_common)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  set_job(h, "6-17");
  const char *m = ut_map_fails(h, UT_IN(.ntasks = 1, .restrict_ids = "0-5"));
  ck_assert_msg(strstr(m, "6-17") && strstr(m, "0-5"),
                "message '%s' does not name 6-17 and 0-5", m);
  mpibind_finalize(h);
  h = ut_open("coral-lassen.xml"); /* no PU 0-7 */
  set_job(h, "0-7");
  m = ut_map_fails(h, UT_IN(.ntasks = 1));
  ck_assert_msg(strstr(m, "0-7"), "message '%s' does not name 0-7", m);
  mpibind_finalize(h);
}
END_TEST

/* A whole-node job maps exactly as without it. */
START_TEST(whole_node_unchanged)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  set_job(h, "0-35");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "18", "0-17;18-35", NULL);
  set_job(h, "0-4095");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "18", "0-17;18-35", NULL);
  mpibind_finalize(h);
}
END_TEST

/* The GPUs below the removed socket go with it, as with step 2. */
START_TEST(gpus_of_other_socket_removed)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  set_job(h, "96-175");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ck_assert_str_eq(mpibind_get_gpu_id(h, 0, MPIBIND_ID_SMI), "2");
  ck_assert_str_eq(mpibind_get_gpu_id(h, 1, MPIBIND_ID_SMI), "3");
  for (int t = 0; t < 2; t++) {
    hwloc_bitmap_t c = mpibind_get_cpus(h)[t];
    ck_assert_int_ge(hwloc_bitmap_first(c), 96);
    ck_assert_int_le(hwloc_bitmap_last(c), 175);
  }
  mpibind_finalize(h);
}
END_TEST

START_TEST(setter_values)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  ck_assert_int_eq(mpibind_set_job_cpus(h, b), -1); /* empty */
  ck_assert_msg(strstr(mpibind_get_error(h), "empty"), "%s", mpibind_get_error(h));
  hwloc_bitmap_fill(b);
  ck_assert_int_eq(mpibind_set_job_cpus(h, b), -1); /* infinite */
  ck_assert_msg(strstr(mpibind_get_error(h), "infinite"), "%s", mpibind_get_error(h));
  hwloc_bitmap_free(b);
  ck_assert_int_eq(mpibind_set_job_cpus(NULL, NULL), -1);
  /* NULL removes it: the whole node again (not sticky) */
  set_job(h, "0-5");
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "6", "0-5", NULL);
  ck_assert_int_eq(mpibind_set_job_cpus(h, NULL), 0);
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "36", "0-35", NULL);
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("job_cpus");
  TCase *tc = ut_tcase("job_cpus");
  tcase_add_test(tc, like_a_cpu_restriction);
  tcase_add_test(tc, within_the_restrict_list);
  tcase_add_test(tc, nothing_in_common);
  tcase_add_test(tc, whole_node_unchanged);
  tcase_add_test(tc, gpus_of_other_socket_removed);
  tcase_add_test(tc, setter_values);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
