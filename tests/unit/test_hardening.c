/*
 * test_hardening.c - hostile input through the public API (the hardening
 * requirements): restrict lists read strictly and at the cost of the
 * node, topologies that cannot be mapped refused when given, a file of
 * part of this machine not taken for this machine, a huge task count
 * that costs nothing until it is mapped and is then refused at once, and
 * messages that stay one line.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit_util.h"

static const char *const quartz = "cts1-quartz-smt1.xml"; /* PUs 0-35 */

static void one_line(const char *m)
{
  ck_assert_msg(*m && !strpbrk(m, "\n\r\x1b"), "not one line: '%s'", m);
}

/* One task restricted to list on quartz gets cpus. */
static void restricted(const char *list, const char *cpus)
{
  mpibind_t *h = ut_open(quartz);
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = list));
  ck_assert_str_eq(ut_cpus_str(h, 0), cpus);
  mpibind_finalize(h);
}

START_TEST(restrict_lists_are_decimal_and_bounded)
{
  restricted("010", "10");        /* hwloc: CPU 8 */
  restricted("08,09", "8-9");     /* hwloc: dropped */
  restricted("30-", "30-35");     /* hwloc's open range, kept */
  restricted("34-2147483647", "34-35");
  restricted("0-2147483647", "0-35"); /* the node's cost, not 2^31 bits */
}
END_TEST

START_TEST(restrict_lists_refused)
{
  static const char *const bad[] = {"0,-1", "4294967297", "0,5-2",
                                    "0-4294967295", "1,,2", "0x3", " 1",
                                    "1\n2"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    mpibind_t *h = ut_open(quartz);
    ck_assert_int_eq(mpibind_set_restrict_ids(h, "1"), 0);
    ck_assert_msg(mpibind_set_restrict_ids(h, bad[i]) == -1, "'%s' accepted",
                  bad[i]);
    const char *m = mpibind_get_error(h);
    one_line(m);
    ck_assert_msg(strstr(m, "restrict list") && strstr(m, "expected"), "%s",
                  m);
    /* the previous list stays */
    ck_assert_str_eq(mpibind_get_restrict_ids(h), "1");
    mpibind_finalize(h);
  }
  mpibind_t *h = ut_open(quartz);
  ck_assert_int_eq(mpibind_set_restrict_ids(h, "1\n2"), -1);
  ck_assert_msg(strstr(mpibind_get_error(h), "'1\\n2'"), "%s",
                mpibind_get_error(h));
  mpibind_finalize(h);
}
END_TEST

static char *write_tmp(const char *data)
{
  char *path = ut_keep(strdup("/tmp/mpibind-unit-XXXXXX.xml"));
  int fd = mkstemps(path, 4);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
  close(fd);
  return path;
}

/* The reported input: a lone NUMA node, which hwloc loads. */
static const char no_pu_xml[] =
    "<topology><object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x3\" "
    "complete_cpuset=\"0x3\" allowed_cpuset=\"0x3\" nodeset=\"0x1\" "
    "complete_nodeset=\"0x1\" allowed_nodeset=\"0x1\" local_memory=\"1000\">"
    "</object></topology>\n";

START_TEST(topology_without_pu_refused)
{
  char *path = write_tmp(no_pu_xml);
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_file(h, path), -1);
  const char *m = mpibind_get_error(h);
  one_line(m);
  ck_assert_msg(strstr(m, path) && strstr(m, "no PU"), "%s", m);

  /* the same topology given loaded by the caller */
  hwloc_topology_t t;
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(t, path), 0);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  ck_assert_int_eq(mpibind_set_topology(h, t), -1);
  ck_assert_msg(strstr(mpibind_get_error(h), "no PU"), "%s",
                mpibind_get_error(h));
  /* nothing was kept: the handle still maps on a good file */
  ck_assert_int_eq(mpibind_set_ntasks(h, 2), 0);
  ck_assert_int_eq(mpibind_set_topology_file(h, ut_path(quartz)), 0);
  ck_assert_msg(mpibind(h) == 0, "%s", mpibind_get_error(h));
  mpibind_finalize(h);
  hwloc_topology_destroy(t);
  unlink(path);
}
END_TEST

/* A file of this machine that lists only its first online CPU. */
START_TEST(part_of_this_machine_is_not_this_machine)
{
  hwloc_topology_t t;
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  hwloc_const_bitmap_t all = hwloc_topology_get_topology_cpuset(t);
  if (hwloc_bitmap_weight(all) < 2) {
    hwloc_topology_destroy(t);
    return; /* one CPU: no part of it to leave out */
  }
  hwloc_bitmap_t first = hwloc_bitmap_alloc();
  hwloc_bitmap_only(first, hwloc_bitmap_first(all));
  ck_assert_int_eq(hwloc_topology_restrict(t, first, 0), 0);
  char *path = ut_keep(strdup("/tmp/mpibind-unit-XXXXXX.xml"));
  int fd = mkstemps(path, 4);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(hwloc_topology_export_xml(t, path, 0), 0);
  hwloc_topology_destroy(t);

  mpibind_t *h = ut_open(path);
  ck_assert_int_eq(mpibind_topology_check_system(h), -1);
  const char *m = mpibind_get_error(h);
  one_line(m);
  ck_assert_msg(strstr(m, "exactly") && strstr(m, "online"), "%s", m);
  /* and so it never binds: task 1 of 2 is not put on the first CPU */
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_apply(h, 1), -1);
  mpibind_finalize(h);
  hwloc_bitmap_free(first);
  unlink(path);
}
END_TEST

/* set_ntasks(INT_MAX) allocates nothing: the setters and finalize after it
 * cost what they did before (they walked 2^31 tasks each, seconds per
 * call, which the test's timeout would catch). */
START_TEST(huge_ntasks_costs_nothing_until_mapped)
{
  mpibind_t *h = ut_open(quartz);
  ck_assert_int_eq(mpibind_set_ntasks(h, INT_MAX), 0);
  for (int i = 0; i < 200; i++) {
    ck_assert_int_eq(mpibind_set_greedy(h, i % 2), 0);
    ck_assert_int_eq(mpibind_set_smt(h, 0), 0);
    ck_assert_int_eq(mpibind_set_restrict_ids(h, i % 2 ? "0-3" : NULL), 0);
    ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_SMI), 0);
    ck_assert_int_eq(
        mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", "0"), 0);
  }
  /* the mapping's memory is known before it is allocated: refused at
   * once, with one line naming the count */
  ck_assert_int_eq(mpibind(h), -1);
  const char *m = mpibind_get_error(h);
  one_line(m);
  ck_assert_msg(strstr(m, "2147483647") && strstr(m, "needs about"), "%s",
                m);
  ck_assert_int_eq(mpibind_finalize(h), 0);
}
END_TEST

/* One table of GPU variables: the list the front ends read is exactly
 * what the allocation setter accepts and what the variables use. */
START_TEST(gpu_vars_table)
{
  static const char *const want[] = {"CUDA_VISIBLE_DEVICES",
                                     "ROCR_VISIBLE_DEVICES",
                                     "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"};
  mpibind_t *h = ut_open("eas-tioga.xml"); /* AMD GPUs */
  int n = 0;
  for (; mpibind_get_gpu_var(n); n++) {
    ck_assert_str_eq(mpibind_get_gpu_var(n), want[n]);
    ck_assert_int_eq(mpibind_set_gpu_allocation(h, want[n], NULL), 0);
  }
  ck_assert_int_eq(n, 4);
  ck_assert_ptr_null(mpibind_get_gpu_var(-1));
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "GPU_DEVICE_ORDINAL", "0"),
                   -1);
  const char *m = mpibind_get_error(h);
  for (int i = 0; i < n; i++)
    ck_assert_msg(strstr(m, want[i]), "%s", m);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  int count = 0;
  char **names = mpibind_get_env_var_names(h, &count);
  int gpu_vars = 0;
  for (int v = 0; v < count; v++)
    for (int i = 0; i < n; i++)
      gpu_vars += strcmp(names[v], mpibind_get_gpu_var(i)) == 0;
  ck_assert_int_eq(gpu_vars, 1); /* ROCR_VISIBLE_DEVICES */
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("hardening");
  TCase *tc = ut_tcase("hardening");
  tcase_add_test(tc, restrict_lists_are_decimal_and_bounded);
  tcase_add_test(tc, restrict_lists_refused);
  tcase_add_test(tc, topology_without_pu_refused);
  tcase_add_test(tc, part_of_this_machine_is_not_this_machine);
  tcase_add_test(tc, huge_ntasks_costs_nothing_until_mapped);
  tcase_add_test(tc, gpu_vars_table);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
