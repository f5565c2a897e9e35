/*
 * test_distribute.c - docs/algorithm.md step 5: greedy and hierarchical
 * distribution, weights, largest remainders, the level walk, PU and GPU
 * splitting.  Each expected value is derived in the comment above it from
 * the rules, on the topology's structure:
 *   quartz  2 sockets x 18 PUs, no core level (hw_smt 1), no GPU
 *   lassen  2 sockets x 10 L3 x 2 cores x 4 PUs; core c of socket 0 has
 *           PUs 8+4c..11+4c, of socket 1 96+4c..; GPUs 0,1 | 2,3
 *   tioga   4 groups x 2 L3 x 8 cores x 2 PUs; domain d has PUs
 *           16d..16d+15 and 64+16d..; GPUs 4,5 | 2,3 | 6,7 | 0,1
 *   corona  (epyc-corona.xml) 8 groups x 2 L3 x 3 cores x 2 PUs; group g
 *           has PUs 6g..6g+5, 48+6g..; one GPU in groups 1, 2, 5, 7
 *   xml/gpu-weights.xml  2 packages x 4 cores x 2 PUs (core c: PUs 2c,
 *           2c+1); GPUs 0,1,2 on package 0, 3 on package 1
 *   xml/gpu-zero-weight.xml  same CPUs; the only GPU sits with a CPU-less
 *           memory node
 */
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

#define S ut_seq

static mpibind_t *map(const char *file, ut_in in)
{
  mpibind_t *h = ut_open(file);
  ut_map(h, in);
  return h;
}

/* ---- greedy ----------------------------------------------------------- */

/* tioga, 3 tasks < 4 domains: split(4, 3) = 2, 1, 1 domains; nthreads =
 * PUs of the union; GPUs of the roots in list order. */
START_TEST(greedy_uneven_split)
{
  mpibind_t *h = map("eas-tioga.xml", UT_IN(.ntasks = 3));
  ut_expect(h, "64;32;32", "0-31,64-95;32-47,96-111;48-63,112-127",
            "4,5,2,3;6,7;0,1");
  mpibind_finalize(h);
}
END_TEST

/* nthreads given: used as is. */
START_TEST(greedy_nthreads_given)
{
  mpibind_t *h = map("eas-tioga.xml", UT_IN(.ntasks = 2, .nthreads = 3));
  ut_expect(h, "3", "0-31,64-95;32-63,96-127", "4,5,2,3;6,7,0,1");
  mpibind_finalize(h);
}
END_TEST

/* greedy 0 with fewer tasks than domains: hierarchical; GPU weights 2, 2,
 * n = 0, 0, remainders 2, 2: the task goes to domain 0; t = 20 cores.
 * Step 5 gives it domain 0's GPUs 0 and 1; domain 1's are then its too
 * (No GPU left idle). */
START_TEST(greedy_off_one_task)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 1, .greedy = 0));
  ut_expect(h, "20", S(8, 84, 4, 1), "0,1,2,3");
  mpibind_finalize(h);
}
END_TEST

/* ---- weights and tasks per domain ---------------------------------------- */

/* corona, 8 tasks on 8 domains: GPU weights 0,1,1,0,0,1,0,1 -> 2 tasks in
 * each GPU domain; k = 2: t = 6 cores / 2 = 3, core level, 3 cores each;
 * q = 1 < k: both share the GPU. */
START_TEST(gpu_weights_corona)
{
  mpibind_t *h = map("epyc-corona.xml", UT_IN(.ntasks = 8));
  ut_expect(h, "3", "6-8;9-11;12-14;15-17;30-32;33-35;42-44;45-47",
            "0;0;1;1;2;2;3;3");
  mpibind_finalize(h);
}
END_TEST

/* Same with PU weights (gpu_optim 0): one task per domain, one PU per
 * core; the domains without GPU give none in step 5 (;0;1;;;2;;3), and
 * then each task shares its package's nearest GPU (No GPU left idle). */
START_TEST(pu_weights_corona)
{
  mpibind_t *h = map("epyc-corona.xml", UT_IN(.ntasks = 8, .gpu_optim = 0));
  ut_expect(h, "6", "0-5;6-11;12-17;18-23;24-29;30-35;36-41;42-47",
            "0;0;1;1;2;2;3;3");
  mpibind_finalize(h);
}
END_TEST

/* corona, 10 tasks: n = 10*1/4 = 2 in each GPU domain, remainders all 2:
 * the 2 left over go to the lower domains 1 and 2 (3, 3, 2, 2).  k = 3:
 * t = 6/3 = 2, core level, split(6, 3) = 2 cores each. */
START_TEST(remainder_ties_lower_first)
{
  mpibind_t *h = map("epyc-corona.xml", UT_IN(.ntasks = 10));
  ut_expect(h, "2;2;2;2;2;2;3;3;3;3",
            "6-7;8-9;10-11;12-13;14-15;16-17;30-32;33-35;42-44;45-47",
            "0;0;0;1;1;1;2;2;3;3");
  mpibind_finalize(h);
}
END_TEST

/* gpu-weights: w = 3, 1.  4 tasks: n = 3, 1 exactly (PU weights would give
 * 2, 2).  Domain 0, k = 3: t = 4/3 = 1, core level (4 >= 3), p = 1,
 * split(4, 3) = 2, 1, 1 cores; q = 3 = k.  Domain 1: t = 4. */
START_TEST(gpu_weights_uneven)
{
  mpibind_t *h = map("gpu-weights.xml", UT_IN(.ntasks = 4));
  ut_expect(h, "1;1;1;4", "0,2;4;6;8,10,12,14", "0;1;2;3");
  mpibind_finalize(h);
}
END_TEST

/* gpu-weights, 3 tasks: n = floor(9/4) = 2, floor(3/4) = 0; remainders
 * 9 mod 4 = 1 and 3 mod 4 = 3: the task left over goes to domain 1 (the
 * largest remainder, although it is the higher domain).  Domain 0, k = 2:
 * t = 2, split(4, 2) cores; q = 3 > k: split(3, 2) = 2, 1 GPUs. */
START_TEST(largest_remainder)
{
  mpibind_t *h = map("gpu-weights.xml", UT_IN(.ntasks = 3));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0,1;2;3");
  mpibind_finalize(h);
}
END_TEST

/* gpu-zero-weight: the GPU list is not empty but no GPU is local to a
 * domain: W = 0, PU weights 8, 8 are used (3 tasks -> 2 + 1 by the
 * lower-domain tie rule).  The GPU, beside CPU-less memory, is held by no
 * domain: no GPU left idle gives it to every task (it was: to none). */
START_TEST(gpu_on_zero_weight)
{
  mpibind_t *h = map("gpu-zero-weight.xml", UT_IN(.ntasks = 3));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 1);
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;0");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "4", "0,2,4,6;8,10,12,14", "0;0");
  mpibind_finalize(h);
}
END_TEST

/* quartz, PU weights 12 and 6 after restriction: 3 tasks -> 2 + 1. */
START_TEST(pu_weights_uneven)
{
  mpibind_t *h = map("cts1-quartz-smt1.xml",
                     UT_IN(.ntasks = 3, .restrict_ids = "0-11,18-23"));
  ut_expect(h, "6", "0-5;6-11;18-23", NULL);
  mpibind_finalize(h);
}
END_TEST

/* ---- level walk and PUs ------------------------------------------------- */

/* lassen, nthreads 4: W = 4; socket m = 1, L3 m = 10 >= 4: L3 level, one
 * PU per L3 (the first of its first core), all 10 L3s for the one task. */
START_TEST(level_walk_cache)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .nthreads = 4));
  ut_expect(h, "4", ut_fmt("%s;%s", S(8, 80, 8, 1), S(96, 168, 8, 1)),
            "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* lassen, nthreads 40: no level has >= 40 objects up to the cores (20):
 * core level, p = smallest i with 20 i >= 40 = 2. */
START_TEST(level_walk_core_two_pus)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .nthreads = 40));
  ut_expect(h, "40", ut_fmt("%s;%s", S(8, 84, 4, 2), S(96, 172, 4, 2)),
            "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* nthreads 100 > 4 PUs x 20 cores: no i in 1..4 suffices, p = hw = 4. */
START_TEST(level_walk_core_all_pus)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .nthreads = 100));
  ut_expect(h, "100", "8-87;96-175", "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* quartz, nthreads 3, 2 tasks: one per socket; W = 3; socket m = 1, PU
 * (= core) level m = 18 >= 3; split(18, 1): all 18 PUs. */
START_TEST(nthreads_given_hierarchical)
{
  mpibind_t *h = map("cts1-quartz-smt1.xml", UT_IN(.ntasks = 2, .nthreads = 3));
  ut_expect(h, "3", "0-17;18-35", NULL);
  mpibind_finalize(h);
}
END_TEST

/* ---- m < k ----------------------------------------------------------- */

/* lassen restricted to 4 cores (8-23), 10 tasks: t = 1, W = 10, core level
 * m = 4, p = 3 (4*3 >= 10); split(10, 4) = 3, 3, 2, 2 tasks per core;
 * c = 3 >= g: split(3, 3) = one PU each, split(3, 2) = 2, 1.
 * GPUs: q = 2 < 10: split(10, 2) = 5, 5; then socket 1's GPUs 2 and 3,
 * which the restriction keeps, take the tasks beyond 3 per GPU (No GPU
 * left idle: 10 tasks on 4 GPUs, 3, 3, 2, 2). */
START_TEST(m_lt_k_c_ge_g)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 10, .restrict_ids = "8-23"));
  ut_expect(h, "1", "8;9;10;12;13;14;16-17;18;20-21;22",
            "0;0;0;2;2;1;1;1;3;3");
  mpibind_finalize(h);
}
END_TEST

/* 20 tasks on those 4 cores: p = hw = 4 (4*4 < 20); split(20, 4) = 5 per
 * core; c = 4 < g = 5: split(5, 4) = 2, 1, 1, 1 tasks per PU.  GPUs: 5
 * tasks each (No GPU left idle). */
START_TEST(m_lt_k_c_lt_g)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 20, .restrict_ids = "8-23"));
  ut_expect(h, "1",
            "8;8;9;10;11;12;12;13;14;15;16;16;17;18;19;20;20;21;22;23",
            "0;0;0;0;0;2;2;2;2;2;1;1;1;1;1;3;3;3;3;3");
  mpibind_finalize(h);
}
END_TEST

/* quartz restricted to PUs 0-1 (hw_smt 1), 5 tasks: m = 2 < 5, p = 1;
 * split(5, 2) = 3, 2 tasks per PU, all sharing it. */
START_TEST(m_lt_k_smt1)
{
  mpibind_t *h = map("cts1-quartz-smt1.xml", UT_IN(.ntasks = 5, .restrict_ids = "0-1"));
  ut_expect(h, "1", "0;0;0;1;1", NULL);
  mpibind_finalize(h);
}
END_TEST

/* ---- smt ---------------------------------------------------------------- */

/* smt 1 < hw 4: count cores (no multiply), t = 20; core level, p = 1. */
START_TEST(smt1)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .smt = 1));
  ut_expect(h, "20", ut_fmt("%s;%s", S(8, 84, 4, 1), S(96, 172, 4, 1)), "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* smt 3: 1 < s < hw: 20 cores x 3 = 60 threads; first 3 PUs of each core. */
START_TEST(smt3)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .smt = 3));
  ut_expect(h, "60", ut_fmt("%s;%s", S(8, 84, 4, 3), S(96, 172, 4, 3)), "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* smt 4 = hw: count PUs (80); every PU. */
START_TEST(smt4)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .smt = 4));
  ut_expect(h, "80", "8-87;96-175", "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* smt 2 with nthreads given: the walk is the core level only (s > 0)
 * even though the L3 level has >= 4 objects; p = s = 2. */
START_TEST(smt_skips_walk)
{
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 2, .smt = 2, .nthreads = 4));
  ut_expect(h, "4", ut_fmt("%s;%s", S(8, 84, 4, 2), S(96, 172, 4, 2)), "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* smt 2, 60 tasks: 30 per socket; count 20 x 2 = 40 -> t = 1; core level
 * m = 20 < 30, p = 2: split(30, 20) = 2 tasks on each of the first 10
 * cores (one PU each), 1 task on each of the last 10 (both PUs).
 * GPUs: split(30, 2) = 15, 15. */
START_TEST(smt2_m_lt_k)
{
  char *cpus[60], *gpus[60];
  for (int d = 0; d < 2; d++) {
    int base = d ? 96 : 8;
    for (int j = 0; j < 30; j++) {
      int t = d * 30 + j;
      if (j < 20) /* cores 0-9, two tasks each */
        cpus[t] = ut_fmt("%d", base + 4 * (j / 2) + j % 2);
      else /* cores 10-19 */
        cpus[t] = ut_fmt("%d-%d", base + 4 * (j - 10), base + 4 * (j - 10) + 1);
      gpus[t] = ut_fmt("%d", 2 * d + (j >= 15));
    }
  }
  mpibind_t *h = map("coral-lassen.xml", UT_IN(.ntasks = 60, .smt = 2));
  ut_expect(h, "1", ut_join(";", 60, cpus), ut_join(";", 60, gpus));
  mpibind_finalize(h);
}
END_TEST

/* No size limit: 5000 tasks on quartz's 36 PUs.  PU weights 18, 18: 2500
 * tasks per socket; t = 1 (18 < 2500); the core level is the PU level,
 * m = 18 < k: split(2500, 18) = 139 tasks on each of the first 16 PUs,
 * 138 on the last 2 of each socket. */
START_TEST(many_tasks)
{
  int ntasks = 5000;
  char **cpus = malloc(ntasks * sizeof *cpus);
  int task = 0;
  for (int d = 0; d < 2; d++)
    for (int pu = 0; pu < 18; pu++)
      for (int x = 0; x < (pu < 16 ? 139 : 138); x++)
        cpus[task++] = ut_fmt("%d", 18 * d + pu);
  ck_assert_int_eq(task, ntasks);
  mpibind_t *h = map("cts1-quartz-smt1.xml", UT_IN(.ntasks = ntasks));
  ut_expect(h, "1", ut_join(";", ntasks, cpus), NULL);
  int len = mpibind_mapping_snprint(NULL, 0, h);
  char *rep = ut_keep(malloc(len + 1));
  ck_assert_int_eq(mpibind_mapping_snprint(rep, len + 1, h), len);
  ck_assert_msg(strstr(rep, "mpibind: task 4999 nths  1 gpus  nics hfi1_0 cpus 35\n"), "no last line");
  free(cpus);
  mpibind_finalize(h);
}
END_TEST

/* ---- GPUs ----------------------------------------------------------------- */

/* tioga 4 tasks: q = 2 >= k = 1 each; 12 tasks: 3 per domain, q = 2 < 3:
 * split(3, 2) = 2, 1 tasks per GPU. */
START_TEST(gpu_split_q_lt_k_uneven)
{
  mpibind_t *h = map("eas-tioga.xml", UT_IN(.ntasks = 12));
  /* k = 3: t = 16/3 = 5, W = 15; L3 m = 2, core m = 16 >= 15, p = 1;
   * split(16, 3) = 6, 5, 5 cores */
  ut_expect(h, "5",
            "0-5;6-10;11-15;16-21;22-26;27-31;32-37;38-42;43-47;48-53;54-58;59-63",
            "4;4;5;2;2;3;6;6;7;0;0;1");
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("distribute");
  TCase *g = ut_tcase("greedy");
  tcase_add_test(g, greedy_uneven_split);
  tcase_add_test(g, greedy_nthreads_given);
  tcase_add_test(g, greedy_off_one_task);
  suite_add_tcase(s, g);
  TCase *w = ut_tcase("weights");
  tcase_add_test(w, gpu_weights_corona);
  tcase_add_test(w, pu_weights_corona);
  tcase_add_test(w, remainder_ties_lower_first);
  tcase_add_test(w, gpu_weights_uneven);
  tcase_add_test(w, largest_remainder);
  tcase_add_test(w, gpu_on_zero_weight);
  tcase_add_test(w, pu_weights_uneven);
  suite_add_tcase(s, w);
  TCase *c = ut_tcase("cpus");
  tcase_add_test(c, level_walk_cache);
  tcase_add_test(c, level_walk_core_two_pus);
  tcase_add_test(c, level_walk_core_all_pus);
  tcase_add_test(c, nthreads_given_hierarchical);
  tcase_add_test(c, m_lt_k_c_ge_g);
  tcase_add_test(c, m_lt_k_c_lt_g);
  tcase_add_test(c, m_lt_k_smt1);
  tcase_add_test(c, smt1);
  tcase_add_test(c, smt3);
  tcase_add_test(c, smt4);
  tcase_add_test(c, smt_skips_walk);
  tcase_add_test(c, smt2_m_lt_k);
  tcase_add_test(c, many_tasks);
  suite_add_tcase(s, c);
  TCase *gp = ut_tcase("gpus");
  tcase_add_test(gp, gpu_split_q_lt_k_uneven);
  suite_add_tcase(s, gp);
  return ut_run(s);
}
