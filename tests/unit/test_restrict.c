/*
 * test_restrict.c - docs/algorithm.md step 2: the restriction by PU OS indexes
 * (cpu) or NUMA OS indexes (mem), parsed with hwloc's list syntax.
 *
 * hwloc_bitmap_list_sscanf() semantics, which the library follows:
 *   "abc", ","   are not lists: the setter fails;
 *   "1-"         is the infinite range 1, 2, ...: a valid list;
 *   "3-1"        parses to the empty set: it selects nothing, an error
 *                (from the setter or from mpibind(), either is fine).
 */
#include <string.h>

#include "unit_util.h"

#define S ut_seq

START_TEST(unparsable)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ck_assert_int_eq(mpibind_set_restrict_ids(h, "abc"), -1);
  ck_assert_msg(strstr(mpibind_get_error(h), "abc"),
                "message '%s' does not name abc", mpibind_get_error(h));
  ck_assert_int_eq(mpibind_set_restrict_ids(h, ","), -1);
  ck_assert_str_ne(mpibind_get_error(h), "");
  /* the bad list did not replace the (absent) restriction */
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "36", "0-35", NULL);
  mpibind_finalize(h);
}
END_TEST

START_TEST(open_range)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  /* PUs 1-35: both sockets keep PUs, 2 domains, 1 task: greedy */
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "1-"));
  ut_expect(h, "35", "1-35", NULL);
  mpibind_finalize(h);
}
END_TEST

START_TEST(empty_range_selects_nothing)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ut_map_fails(h, UT_IN(.ntasks = 1, .restrict_ids = "3-1"));
  mpibind_finalize(h);
}
END_TEST

START_TEST(cpu_selects_nothing)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  const char *m = ut_map_fails(h, UT_IN(.ntasks = 1, .restrict_ids = "5000"));
  ck_assert_msg(strstr(m, "5000"), "message '%s' does not name 5000", m);
  mpibind_finalize(h);
  /* lassen has no PU 0-7 */
  h = ut_open("coral-lassen.xml");
  m = ut_map_fails(h, UT_IN(.ntasks = 1, .restrict_ids = "0-7"));
  ck_assert_msg(strstr(m, "0-7"), "message '%s' does not name 0-7", m);
  mpibind_finalize(h);
}
END_TEST

START_TEST(mem_selects_nothing)
{
  mpibind_t *h = ut_open("coral-lassen.xml"); /* NUMA nodes 0 and 8 */
  const char *m = ut_map_fails(h, UT_IN(.ntasks = 1, .restrict_ids = "3",
                                        .restrict_type = MPIBIND_RESTRICT_MEM));
  ck_assert_msg(strstr(m, "3"), "message '%s' does not name 3", m);
  mpibind_finalize(h);
}
END_TEST

/* Only memory without CPUs selected (lassen's GPU memory in the hwloc 1
 * export): no PU, no domain: an error, not a crash. */
START_TEST(mem_without_cpus)
{
  mpibind_t *h = ut_open("coral-lassen-hwloc1.xml");
  ut_map_fails(h, UT_IN(.ntasks = 1, .restrict_ids = "252",
                        .restrict_type = MPIBIND_RESTRICT_MEM));
  mpibind_finalize(h);
}
END_TEST

/* A list naming some PUs that do not exist keeps those that do. */
START_TEST(cpu_partly_outside)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "30-40,1000"));
  ut_expect(h, "6", "30-35", NULL);
  mpibind_finalize(h);
}
END_TEST

/* I/O below a removed object goes with it (hwloc), but a user's
 * restriction keeps the job's GPUs (No GPU left idle): restricting
 * lassen to socket 1's memory leaves its 2 GPUs in the topology, visible
 * ids 2 and 3, first in the GPU list, then socket 0's 0 and 1. */
START_TEST(mem_keeps_gpus_of_other_socket)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ck_assert_str_eq(mpibind_get_gpu_id(h, 0, MPIBIND_ID_SMI), "2");
  ck_assert_str_eq(mpibind_get_gpu_id(h, 1, MPIBIND_ID_SMI), "3");
  ck_assert_str_eq(mpibind_get_gpu_id(h, 2, MPIBIND_ID_SMI), "0");
  ck_assert_str_eq(mpibind_get_gpu_id(h, 3, MPIBIND_ID_SMI), "1");
  ck_assert_str_eq(mpibind_get_gpu_id(h, 0, MPIBIND_ID_NAME), "nvml2");
  ck_assert_str_eq(mpibind_get_gpu_id(h, 1, MPIBIND_ID_PCIBUS), "0035:04:00.0");
  /* the GPU bitmaps are positions in the GPU list */
  hwloc_bitmap_t *g = mpibind_get_gpus(h);
  ck_assert_ptr_nonnull(g);
  ck_assert_int_eq(hwloc_bitmap_first(g[0]), 0);
  ck_assert_int_eq(hwloc_bitmap_last(g[0]), 2);
  ck_assert_int_eq(hwloc_bitmap_weight(g[0]), 2);
  ck_assert_int_eq(hwloc_bitmap_first(g[1]), 1);
  ck_assert_int_eq(hwloc_bitmap_last(g[1]), 3);
  ck_assert_int_eq(hwloc_bitmap_weight(g[1]), 2);

  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "0",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "10", ut_fmt("%s;%s", S(8, 44, 4, 1), S(48, 84, 4, 1)), "0,2;1,3");
  mpibind_finalize(h);
}
END_TEST

/* cpu: objects left without PUs go, with their I/O, and the GPUs stay
 * the job's: PUs of socket 0 only list GPUs 0 and 1 first; PUs of socket
 * 1 only, GPUs 2 and 3. */
START_TEST(cpu_keeps_gpus_of_other_socket)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 6, .restrict_ids = "8-23"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ck_assert_str_eq(mpibind_get_gpu_id(h, 1, MPIBIND_ID_NAME), "nvml1");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "96-175"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ck_assert_str_eq(mpibind_get_gpu_id(h, 0, MPIBIND_ID_NAME), "nvml2");
  ut_expect(h, "10", ut_fmt("%s;%s", S(96, 132, 4, 1), S(136, 172, 4, 1)),
            "2,0;3,1");
  mpibind_finalize(h);
}
END_TEST

/* After mpibind() the handle's topology is the restricted one. */
START_TEST(restricted_topology_getter)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(mpibind_get_topology(h), HWLOC_OBJ_PU), 160);
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8", .restrict_type = MPIBIND_RESTRICT_MEM));
  hwloc_topology_t t = mpibind_get_topology(h);
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU), 80);
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE), 1);
  mpibind_finalize(h);
}
END_TEST

/* hw_smt is recomputed on the restricted topology: with 2 PUs per core
 * left (hw 2) and smt 3 (<= 4 before restriction), s >= hw so the count
 * is of PUs (8), not 4 cores x 3. */
START_TEST(hw_smt_recomputed)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 1, .smt = 3,
                  .restrict_ids = "8-9,12-13,16-17,20-21"));
  ut_expect(h, "8", "8-9,12-13,16-17,20-21", "0,1,2,3");
  /* smt 0 < hw 2: count the cores, one PU of each */
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "8-9,12-13,16-17,20-21"));
  ut_expect(h, "4", "8,12,16,20", "0,1,2,3");
  mpibind_finalize(h);
}
END_TEST

/* The restriction applies to one mapping: removing it maps the whole
 * node again (the restriction works on a private copy). */
START_TEST(restriction_not_sticky)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "0-7"));
  ut_expect(h, "8", "0-7", NULL);
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = NULL));
  ut_expect(h, "36", "0-35", NULL);
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "1", .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "18", "18-35", NULL);
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = ""));
  ut_expect(h, "36", "0-35", NULL);
  mpibind_finalize(h);

  /* the GPU list too: socket 1's GPUs first when restricted to it */
  h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "8", .restrict_type = MPIBIND_RESTRICT_MEM));
  ck_assert_str_eq(mpibind_get_gpu_id(h, 0, MPIBIND_ID_SMI), "2");
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ck_assert_str_eq(mpibind_get_gpu_id(h, 0, MPIBIND_ID_SMI), "0");
  ut_expect(h, "160", "8-87,96-175", "0,1,2,3");
  mpibind_finalize(h);
}
END_TEST

/* mem keeps the listed NUMA nodes with their local CPUs: quartz's two
 * sockets restricted to both nodes is the whole node; cpu restriction
 * across sockets keeps both domains. */
START_TEST(mem_and_cpu_across_domains)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "0-1", .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "18", "0-17;18-35", NULL);
  /* PUs 0-11 and 18-23: PU weights 12 and 6, 3 tasks -> 2 and 1 */
  ut_map(h, UT_IN(.ntasks = 3, .restrict_ids = "0-11,18-23"));
  ut_expect(h, "6;6;6", "0-5;6-11;18-23", NULL);
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("restrict");
  TCase *tc = ut_tcase("step2");
  tcase_add_test(tc, unparsable);
  tcase_add_test(tc, open_range);
  tcase_add_test(tc, empty_range_selects_nothing);
  tcase_add_test(tc, cpu_selects_nothing);
  tcase_add_test(tc, mem_selects_nothing);
  tcase_add_test(tc, mem_without_cpus);
  tcase_add_test(tc, cpu_partly_outside);
  tcase_add_test(tc, mem_keeps_gpus_of_other_socket);
  tcase_add_test(tc, cpu_keeps_gpus_of_other_socket);
  tcase_add_test(tc, restricted_topology_getter);
  tcase_add_test(tc, hw_smt_recomputed);
  tcase_add_test(tc, restriction_not_sticky);
  tcase_add_test(tc, mem_and_cpu_across_domains);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
