/*
 * test_examples.c - every worked example of docs/algorithm.md, with the
 * expected values written from its tables (the "..." expanded by the
 * pattern each row states).
 */
#include "unit_util.h"

#define S ut_seq

static void example(const char *file, ut_in in, const char *nthreads,
                    const char *cpus, const char *gpus)
{
  mpibind_t *h = ut_open(file);
  ut_map(h, in);
  ut_expect(h, nthreads, cpus, gpus);
  mpibind_finalize(h);
}

/* ---- cts1-quartz-smt1.xml: 2 sockets x 18 cores, SMT-1, no GPU ------ */

START_TEST(quartz_4_restrict_0_7)
{
  example("cts1-quartz-smt1.xml", UT_IN(.ntasks = 4, .restrict_ids = "0-7"),
          "2;2;2;2", "0-1;2-3;4-5;6-7", NULL);
}
END_TEST

START_TEST(quartz_3)
{
  example("cts1-quartz-smt1.xml", UT_IN(.ntasks = 3), "9;9;18",
          "0-8;9-17;18-35", NULL);
}
END_TEST

START_TEST(quartz_1)
{
  example("cts1-quartz-smt1.xml", UT_IN(.ntasks = 1), "36", "0-35", NULL);
}
END_TEST

/* ---- coral-lassen.xml: 2 x 20 cores, SMT-4, 4 NVIDIA GPUs ----------- */

START_TEST(lassen_1)
{
  example("coral-lassen.xml", UT_IN(.ntasks = 1), "160", "8-87,96-175",
          "0,1,2,3");
}
END_TEST

START_TEST(lassen_2)
{
  example("coral-lassen.xml", UT_IN(.ntasks = 2), "20;20",
          ut_fmt("%s;%s", S(8, 84, 4, 1), S(96, 172, 4, 1)), "0,1;2,3");
}
END_TEST

START_TEST(lassen_4)
{
  example("coral-lassen.xml", UT_IN(.ntasks = 4), "10;10;10;10",
          ut_fmt("%s;%s;%s;%s", S(8, 44, 4, 1), S(48, 84, 4, 1),
                 S(96, 132, 4, 1), S(136, 172, 4, 1)),
          "0;1;2;3");
}
END_TEST

START_TEST(lassen_8)
{
  /* 5 cores (every 4th PU) per task, consecutively: 8-24, 28-44, ... */
  char *c[8];
  int first[8] = {8, 28, 48, 68, 96, 116, 136, 156};
  for (int i = 0; i < 8; i++)
    c[i] = S(first[i], first[i] + 16, 4, 1);
  ck_assert_str_eq(c[0], "8,12,16,20,24");
  example("coral-lassen.xml", UT_IN(.ntasks = 8), "5", ut_join(";", 8, c),
          "0;0;1;1;2;2;3;3");
}
END_TEST

START_TEST(lassen_4_smt2)
{
  example("coral-lassen.xml", UT_IN(.ntasks = 4, .smt = 2), "20;20;20;20",
          ut_fmt("%s;%s;%s;%s", S(8, 44, 4, 2), S(48, 84, 4, 2),
                 S(96, 132, 4, 2), S(136, 172, 4, 2)),
          "0;1;2;3");
}
END_TEST

START_TEST(lassen_5_gpu_optim0)
{
  example("coral-lassen.xml", UT_IN(.ntasks = 5, .gpu_optim = 0),
          "6;6;6;10;10",
          ut_fmt("%s;%s;%s;%s;%s", S(8, 32, 4, 1), S(36, 60, 4, 1),
                 S(64, 84, 4, 1), S(96, 132, 4, 1), S(136, 172, 4, 1)),
          "0;0;1;2;3");
}
END_TEST

START_TEST(lassen_6_restrict_8_23)
{
  example("coral-lassen.xml", UT_IN(.ntasks = 6, .restrict_ids = "8-23"),
          "1;1;1;1;1;1", "8;9;12;13;16-17;20-21", "0;0;0;1;1;1");
}
END_TEST

START_TEST(lassen_2_restrict_mem_8)
{
  example("coral-lassen.xml",
          UT_IN(.ntasks = 2, .restrict_ids = "8",
                .restrict_type = MPIBIND_RESTRICT_MEM),
          "10;10", ut_fmt("%s;%s", S(96, 132, 4, 1), S(136, 172, 4, 1)),
          "2;3");
}
END_TEST

START_TEST(lassen_3_nthreads1_greedy0_gpu_optim0)
{
  example("coral-lassen.xml",
          UT_IN(.ntasks = 3, .nthreads = 1, .greedy = 0, .gpu_optim = 0),
          "1;1;1", "8,16,24,32,40;48,56,64,72,80;96", "0;1;2,3");
}
END_TEST

/* ---- eas-tioga.xml: 4 domains x 16 cores, SMT-2, 8 AMD GPUs (RSMI) --- */

START_TEST(tioga_4)
{
  example("eas-tioga.xml", UT_IN(.ntasks = 4), "16;16;16;16",
          "0-15;16-31;32-47;48-63", "4,5;2,3;6,7;0,1");
}
END_TEST

START_TEST(tioga_8)
{
  example("eas-tioga.xml", UT_IN(.ntasks = 8), "8",
          "0-7;8-15;16-23;24-31;32-39;40-47;48-55;56-63",
          "4;5;2;3;6;7;0;1");
}
END_TEST

START_TEST(tioga_2)
{
  example("eas-tioga.xml", UT_IN(.ntasks = 2), "64;64",
          "0-31,64-95;32-63,96-127", "4,5,2,3;6,7,0,1");
}
END_TEST

START_TEST(tioga_3_greedy0)
{
  example("eas-tioga.xml", UT_IN(.ntasks = 3, .greedy = 0), "16;16;16",
          "0-15;16-31;32-47", "4,5;2,3;6,7");
}
END_TEST

int main(void)
{
  Suite *s = suite_create("examples");
  TCase *q = ut_tcase("quartz");
  tcase_add_test(q, quartz_4_restrict_0_7);
  tcase_add_test(q, quartz_3);
  tcase_add_test(q, quartz_1);
  suite_add_tcase(s, q);
  TCase *l = ut_tcase("lassen");
  tcase_add_test(l, lassen_1);
  tcase_add_test(l, lassen_2);
  tcase_add_test(l, lassen_4);
  tcase_add_test(l, lassen_8);
  tcase_add_test(l, lassen_4_smt2);
  tcase_add_test(l, lassen_5_gpu_optim0);
  tcase_add_test(l, lassen_6_restrict_8_23);
  tcase_add_test(l, lassen_2_restrict_mem_8);
  tcase_add_test(l, lassen_3_nthreads1_greedy0_gpu_optim0);
  suite_add_tcase(s, l);
  TCase *t = ut_tcase("tioga");
  tcase_add_test(t, tioga_4);
  tcase_add_test(t, tioga_8);
  tcase_add_test(t, tioga_2);
  tcase_add_test(t, tioga_3_greedy0);
  suite_add_tcase(s, t);
  return ut_run(s);
}
