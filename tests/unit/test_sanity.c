/*
 * test_sanity.c - properties every mapping has, on every topology file
 * (the real machines of tests/data/topologies and tests/unit/xml), for many inputs:
 *   - mpibind() succeeds (no crash, no error) for any valid input;
 *   - every task has nthreads >= 1 (= the input when given) and a
 *     non-empty CPU set inside the node's CPUs;
 *   - with PU weights (no GPU, or gpu_optim 0) and ntasks <= #cores, no
 *     two tasks share a CPU (step 5 gives each task its own objects then;
 *     with GPU weights tasks gather where the GPUs are and may share);
 *   - the GPU strings of a task are the IDs of its GPU positions, and
 *     the positions are in the GPU list;
 *   - the report has one line per task; OMP_NUM_THREADS is nthreads.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

static char **files;
static int nfiles;

static void check(mpibind_t *h, const char *file, ut_in in,
                  hwloc_const_bitmap_t node_cpus, int ncores)
{
  char *what = ut_fmt("%s: ntasks %d nthreads %d greedy %d gpu_optim %d smt %d",
                      file, in.ntasks, in.nthreads, in.greedy, in.gpu_optim, in.smt);
  int rc = ut_set(h, in);
  ck_assert_msg(rc == 0, "%s: setting inputs: %s", what, mpibind_get_error(h));
  rc = mpibind(h);
  ck_assert_msg(rc == 0, "%s: %s", what, mpibind_get_error(h));
  int ngpus = mpibind_get_num_gpus(h);
  ck_assert_msg(ngpus >= 0, "%s: num_gpus %d", what, ngpus);
  int *nth = mpibind_get_nthreads(h);
  hwloc_bitmap_t *cpus = mpibind_get_cpus(h), *gpus = mpibind_get_gpus(h);
  ck_assert_ptr_nonnull(nth);
  ck_assert_ptr_nonnull(cpus);
  ck_assert_ptr_nonnull(gpus);
  int disjoint = in.ntasks <= ncores && (ngpus == 0 || !in.gpu_optim);
  hwloc_bitmap_t all = hwloc_bitmap_alloc();
  for (int i = 0; i < in.ntasks; i++) {
    ck_assert_msg(nth[i] >= 1, "%s: task %d: nthreads %d", what, i, nth[i]);
    if (in.nthreads)
      ck_assert_msg(nth[i] == in.nthreads, "%s: task %d: nthreads %d", what,
                    i, nth[i]);
    ck_assert_msg(!hwloc_bitmap_iszero(cpus[i]), "%s: task %d: no CPU", what, i);
    ck_assert_msg(hwloc_bitmap_isincluded(cpus[i], node_cpus),
                  "%s: task %d: cpus %s outside the node", what, i,
                  ut_cpus_str(h, i));
    if (disjoint)
      ck_assert_msg(!hwloc_bitmap_intersects(all, cpus[i]),
                    "%s: task %d: cpus %s shared with an earlier task", what, i,
                    ut_cpus_str(h, i));
    hwloc_bitmap_or(all, all, cpus[i]);

    int n = -1;
    char **ids = mpibind_get_gpus_ptask(h, i, &n);
    ck_assert_msg(n == hwloc_bitmap_weight(gpus[i]), "%s: task %d: %d GPU ids "
                  "for %d positions", what, i, n, hwloc_bitmap_weight(gpus[i]));
    ck_assert_msg(hwloc_bitmap_last(gpus[i]) < ngpus, "%s: task %d: GPU "
                  "position beyond the list of %d", what, i, ngpus);
    int pos;
    hwloc_bitmap_foreach_begin(pos, gpus[i]) {
      const char *name = mpibind_get_gpu_id(h, pos, MPIBIND_ID_NAME);
      ck_assert_ptr_nonnull(name);
      int found = 0;
      for (int k = 0; k < n; k++)
        found += strcmp(ids[k], name) == 0;
      ck_assert_msg(found == 1, "%s: task %d: GPU %s in the bitmap, %d times "
                    "among the task's ids", what, i, name, found);
    }
    hwloc_bitmap_foreach_end();
  }
  hwloc_bitmap_free(all);

  int len = mpibind_mapping_snprint(NULL, 0, h);
  ck_assert_msg(len > 0, "%s: report: %s", what, mpibind_get_error(h));
  char *rep = malloc(len + 1);
  ck_assert_int_eq(mpibind_mapping_snprint(rep, len + 1, h), len);
  int lines = 0;
  for (char *p = rep; *p; p++)
    lines += *p == '\n';
  ck_assert_msg(lines == in.ntasks, "%s: %d report lines", what, lines);
  free(rep);

  ck_assert_msg(mpibind_set_env_vars(h) == 0, "%s: %s", what, mpibind_get_error(h));
  char **v = mpibind_get_env_var_values(h, "OMP_NUM_THREADS");
  ck_assert_ptr_nonnull(v);
  for (int i = 0; i < in.ntasks; i++)
    ck_assert_msg(atoi(v[i]) == nth[i], "%s: task %d: OMP_NUM_THREADS %s", what,
                  i, v[i]);
}

START_TEST(every_topology)
{
  const char *file = files[_i];
  mpibind_t *h = ut_open(file);
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  /* the node, from the handle's topology before any mapping */
  hwloc_topology_t t = mpibind_get_topology(h);
  ck_assert_ptr_nonnull(t);
  hwloc_bitmap_t node_cpus = hwloc_bitmap_dup(hwloc_topology_get_topology_cpuset(t));
  int cdepth = hwloc_get_type_or_below_depth(t, HWLOC_OBJ_CORE);
  int ncores = hwloc_get_nbobjs_by_depth(t, cdepth);
  int npus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  int hw = (int)hwloc_get_obj_by_depth(t, cdepth, 0)->arity;
  if (hw == 0)
    hw = 1;
  /* gpu_optim matters only with GPUs: one mapping tells */
  check(h, file, UT_IN(.ntasks = 1), node_cpus, ncores);
  int maxgpu = mpibind_get_num_gpus(h) > 0;
  int step = 2 * npus / 12 > 1 ? 2 * npus / 12 : 1;
  for (int n = 1; n <= 2 * npus; n = n < 5 ? n + 1 : n + step) {
    for (int greedy = 0; greedy <= 1; greedy++)
      for (int gpu = 0; gpu <= maxgpu; gpu++) {
        for (int smt = 0; smt <= hw; smt++)
          check(h, file, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu,
                               .smt = smt), node_cpus, ncores);
        check(h, file, UT_IN(.ntasks = n, .nthreads = 2, .greedy = greedy,
                             .gpu_optim = gpu), node_cpus, ncores);
      }
  }
  /* exactly #cores and #PUs tasks too */
  check(h, file, UT_IN(.ntasks = ncores, .gpu_optim = 0), node_cpus, ncores);
  check(h, file, UT_IN(.ntasks = ncores), node_cpus, ncores);
  check(h, file, UT_IN(.ntasks = npus), node_cpus, ncores);
  hwloc_bitmap_free(node_cpus);
  mpibind_finalize(h);
}
END_TEST

/* A restriction to every CPU (or every NUMA node), named by a list larger
 * than the node, changes nothing: same mapping as without it, no crash
 * (hwloc asserts on some such restrictions of hwloc 1 exports, whose
 * CPU-less NUMA nodes sit in CPU-less groups). */
START_TEST(restrict_to_everything)
{
  const char *file = files[_i];
  mpibind_t *h = ut_open(file), *all = ut_open(file);
  const char *lists[] = {"0-65535", "0-65535"};
  for (int type = 0; type <= 1; type++)
    for (int n = 1; n <= 9; n += 2) {
      ut_map(all, UT_IN(.ntasks = n));
      ut_map(h, UT_IN(.ntasks = n, .restrict_ids = lists[type], .restrict_type = type));
      for (int i = 0; i < n; i++) {
        ck_assert_msg(hwloc_bitmap_isequal(mpibind_get_cpus(h)[i], mpibind_get_cpus(all)[i]),
                      "%s: ntasks %d restrict %s %s: task %d: cpus %s, unrestricted %s",
                      file, n, type ? "mem" : "cpu", lists[type], i, ut_cpus_str(h, i),
                      ut_cpus_str(all, i));
        ck_assert_int_eq(mpibind_get_nthreads(h)[i], mpibind_get_nthreads(all)[i]);
        char *a = ut_gpus_str(h, i), *b = ut_gpus_str(all, i);
        ck_assert_msg(strcmp(a, b) == 0, "%s: ntasks %d restrict %s: task %d: gpus "
                      "%s, unrestricted %s", file, n, type ? "mem" : "cpu", i, a, b);
      }
    }
  mpibind_finalize(h);
  mpibind_finalize(all);
}
END_TEST

int main(void)
{
  files = ut_topology_files(&nfiles);
  if (!files)
    return 1;
  Suite *s = suite_create("sanity");
  TCase *tc = ut_tcase("files");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, every_topology, 0, nfiles);
  tcase_add_loop_test(tc, restrict_to_everything, 0, nfiles);
  suite_add_tcase(s, tc);
  int rc = ut_run(s);
  ut_files_free(files, nfiles);
  return rc;
}
