/*
 * test_domains.c - docs/algorithm.md step 4: one domain per NUMA node, skipping
 * memory without CPUs (GPU memory, CXL expanders) and a second memory on
 * the same CPUs (HBM, MCDRAM beside DDR).
 *
 * Expected CPU sets are computed here with hwloc from the files (NUMA
 * cpusets, first PUs of cores), independently of the library.
 */
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

static hwloc_topology_t load(const char *file)
{
  hwloc_topology_t t;
  char *p = ut_path(file);
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(t), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(t, p), 0);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  return t;
}

/* The cpuset of the NUMA node of OS index os, as a list. */
static char *numa_cpus(hwloc_topology_t t, unsigned os)
{
  hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(t, os);
  ck_assert_ptr_nonnull(n);
  char *s;
  hwloc_bitmap_list_asprintf(&s, n->cpuset);
  return ut_keep(s);
}

/* First PU of cores first..last (logical indexes). */
static char *first_pus(hwloc_topology_t t, int first, int last)
{
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  for (int i = first; i <= last; i++) {
    hwloc_obj_t c = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, i);
    ck_assert_ptr_nonnull(c);
    hwloc_bitmap_set(b, hwloc_bitmap_first(c->cpuset));
  }
  char *s;
  hwloc_bitmap_list_asprintf(&s, b);
  hwloc_bitmap_free(b);
  return ut_keep(s);
}

/* xml/hbm-cxl.xml: 2 packages x 4 cores x 2 PUs, each package's group
 * holding DDR (nodes 0, 1) and HBM (nodes 2, 3) on the same CPUs, plus a
 * CPU-less node 9: 2 domains. */
START_TEST(hbm_and_cpuless_skipped)
{
  mpibind_t *h = ut_open("hbm-cxl.xml");
  ut_map(h, UT_IN(.ntasks = 1)); /* 1 < 2 domains: greedy, whole node */
  ut_expect(h, "16", "0-15", NULL);
  ut_map(h, UT_IN(.ntasks = 2)); /* one task per domain, one PU per core */
  ut_expect(h, "4", "0,2,4,6;8,10,12,14", NULL);
  ut_map(h, UT_IN(.ntasks = 3)); /* PU weights 8, 8: 2 + 1 */
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", NULL);
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "2", "0,2;4,6;8,10;12,14", NULL);
  mpibind_finalize(h);
}
END_TEST

/* xml/cxl-machine.xml: NUMA node 9 hangs from the Machine with the whole
 * machine's cpuset (hwloc 2 gives memory children their parent's).  The
 * literal rules of step 4 would make it a third domain rooted at the
 * Machine, handing every CPU out a second time, against step 4's "Beyond
 * the original" (no two tasks on the same CPUs with CXL memory); the
 * library skips a domain whose root holds other domains.  2 domains. */
START_TEST(cxl_on_machine_skipped)
{
  mpibind_t *h = ut_open("cxl-machine.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "4", "0,2,4,6;8,10,12,14", NULL);
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", NULL);
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "16", "0-15", NULL);
  mpibind_finalize(h);
}
END_TEST

/* KNL quadrant/flat: MCDRAM (node 1) beside DDR (node 0) under the
 * Machine: one domain. */
START_TEST(knl_quad_flat)
{
  hwloc_topology_t t = load("knl-quad-flat-hwloc1.xml");
  ck_assert_int_eq(hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE), 68);
  mpibind_t *h = ut_open("knl-quad-flat-hwloc1.xml");
  /* 1 domain, 2 tasks: hierarchical; 68 cores / 2 = 34 threads; the core
   * level is the first with >= 68 objects; one PU per core */
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "34", ut_fmt("%s;%s", first_pus(t, 0, 33), first_pus(t, 34, 67)),
            NULL);
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "68", first_pus(t, 0, 67), NULL);
  mpibind_finalize(h);
  hwloc_topology_destroy(t);
}
END_TEST

/* KNL SNC-4/flat: 4 DDR nodes (0-3) each with an MCDRAM node (4-7) on
 * the same group: 4 domains.  3 tasks, greedy: split(4, 3) = 2, 1, 1. */
START_TEST(knl_snc4_flat_greedy)
{
  hwloc_topology_t t = load("knl-snc4-flat-hwloc1.xml");
  mpibind_t *h = ut_open("knl-snc4-flat-hwloc1.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  hwloc_bitmap_t b01 = hwloc_bitmap_alloc();
  hwloc_bitmap_or(b01, hwloc_get_numanode_obj_by_os_index(t, 0)->cpuset,
                  hwloc_get_numanode_obj_by_os_index(t, 1)->cpuset);
  char *s01;
  hwloc_bitmap_list_asprintf(&s01, b01);
  ut_keep(s01);
  int w01 = hwloc_bitmap_weight(b01);
  hwloc_bitmap_free(b01);
  int w2 = hwloc_bitmap_weight(hwloc_get_numanode_obj_by_os_index(t, 2)->cpuset);
  int w3 = hwloc_bitmap_weight(hwloc_get_numanode_obj_by_os_index(t, 3)->cpuset);
  ut_expect(h, ut_fmt("%d;%d;%d", w01, w2, w3),
            ut_fmt("%s;%s;%s", s01, numa_cpus(t, 2), numa_cpus(t, 3)), NULL);
  /* 4 tasks: one per DDR node, one PU per core of its group */
  ut_map(h, UT_IN(.ntasks = 4));
  for (int i = 0; i < 4; i++) {
    hwloc_bitmap_t *c = mpibind_get_cpus(h);
    hwloc_obj_t n = hwloc_get_numanode_obj_by_os_index(t, i);
    int ncores = hwloc_get_nbobjs_inside_cpuset_by_type(t, n->cpuset, HWLOC_OBJ_CORE);
    ck_assert_msg(hwloc_bitmap_isincluded(c[i], n->cpuset),
                  "task %d: cpus %s not in NUMA node %d", i, ut_cpus_str(h, i), i);
    ck_assert_int_eq(hwloc_bitmap_weight(c[i]), ncores);
    ck_assert_int_eq(mpibind_get_nthreads(h)[i], ncores);
  }
  mpibind_finalize(h);
  hwloc_topology_destroy(t);
}
END_TEST

/* lassen's hwloc 1 export shows the 4 GPU memories as CPU-less NUMA nodes
 * (252-255): 2 domains, mapped like lassen (3 tasks: GPU weights 2, 2 ->
 * 2 + 1). */
START_TEST(lassen_gpu_memory_skipped)
{
  mpibind_t *h = ut_open("coral-lassen-hwloc1.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "10;10;20",
            ut_fmt("%s;%s;%s", ut_seq(8, 44, 4, 1), ut_seq(48, 84, 4, 1),
                   ut_seq(96, 172, 4, 1)),
            "0;1;2,3");
  ut_map(h, UT_IN(.ntasks = 1)); /* greedy over 2 domains, not 6 */
  ut_expect(h, "160", "8-87,96-175", "0,1,2,3");
  mpibind_finalize(h);
}
END_TEST

/* Every task gets CPUs, and when ntasks <= #cores no two tasks share a
 * CPU, on every node with memory-only or duplicate NUMA nodes. */
START_TEST(disjoint_and_nonempty)
{
  const char *files[] = {"knl-quad-flat-hwloc1.xml", "knl-snc4-flat-hwloc1.xml",
                         "knl-quad-cache-hwloc1.xml", "knl-snc4-cache-hwloc1.xml",
                         "coral-lassen-hwloc1.xml", "coral-butte-hwloc1.xml",
                         "coral-rzansel-hwloc1.xml", "hbm-cxl.xml",
                         "gpu-zero-weight.xml", "cxl-machine.xml"};
  const char *file = files[_i];
  hwloc_topology_t t = load(file);
  int ncores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
  mpibind_t *h = ut_open(file);
  int step = ncores > 24 ? ncores / 24 : 1;
  for (int n = 1; n <= ncores; n = n < 8 ? n + 1 : n + step)
    for (int greedy = 0; greedy <= 1; greedy++)
      for (int gpu = 0; gpu <= 1; gpu++) {
        ut_map(h, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu));
        hwloc_bitmap_t *c = mpibind_get_cpus(h);
        hwloc_bitmap_t all = hwloc_bitmap_alloc();
        for (int i = 0; i < n; i++) {
          ck_assert_msg(!hwloc_bitmap_iszero(c[i]),
                        "%s ntasks %d greedy %d gpu_optim %d: task %d has no CPU",
                        file, n, greedy, gpu, i);
          ck_assert_msg(!hwloc_bitmap_intersects(all, c[i]),
                        "%s ntasks %d greedy %d gpu_optim %d: task %d (%s) "
                        "shares CPUs with an earlier task", file, n, greedy,
                        gpu, i, ut_cpus_str(h, i));
          hwloc_bitmap_or(all, all, c[i]);
        }
        hwloc_bitmap_free(all);
      }
  mpibind_finalize(h);
  hwloc_topology_destroy(t);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("domains");
  TCase *tc = ut_tcase("step4");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, hbm_and_cpuless_skipped);
  tcase_add_test(tc, cxl_on_machine_skipped);
  tcase_add_test(tc, knl_quad_flat);
  tcase_add_test(tc, knl_snc4_flat_greedy);
  tcase_add_test(tc, lassen_gpu_memory_skipped);
  tcase_add_loop_test(tc, disjoint_and_nonempty, 0, 10);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
