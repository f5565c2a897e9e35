/*
 * test_env_report.c - docs/algorithm.md step 6: the variables a task is told,
 * and the one-line report "mpibind: task %2d nths %2d gpus %s cpus %s".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit_util.h"

static const char *vendor_vars[] = {"CUDA_VISIBLE_DEVICES",
                                    "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"};

static int has_name(mpibind_t *h, const char *name)
{
  int n = -1;
  char **names = mpibind_get_env_var_names(h, &n);
  ck_assert_msg(names != NULL && n >= 0, "no variable names: %s",
                mpibind_get_error(h));
  int found = 0;
  for (int i = 0; i < n; i++)
    found += strcmp(names[i], name) == 0;
  ck_assert_msg(found <= 1, "%s listed %d times", name, found);
  return found;
}

/* The variable's per-task values, checked against a ';' list. */
static void expect_var(mpibind_t *h, const char *name, const char *values)
{
  ck_assert_msg(has_name(h, name), "%s is not among the variables", name);
  char **v = mpibind_get_env_var_values(h, name);
  ck_assert_msg(v != NULL, "%s: %s", name, mpibind_get_error(h));
  int ntasks = mpibind_get_ntasks(h);
  for (int i = 0; i < ntasks; i++) {
    char *want = ut_item(values, i);
    ck_assert_msg(v[i] != NULL, "%s: task %d: NULL value", name, i);
    ck_assert_msg(strcmp(v[i], want) == 0, "%s: task %d: '%s', expected '%s'",
                  name, i, v[i], want);
  }
}

/* Exactly the OpenMP variables, the listed vendor ones, and on a node
 * with NICs MPIBIND_NICS. */
static void expect_names(mpibind_t *h, int nvendor, const char **vendor)
{
  int n = -1, nnics = -1;
  ck_assert_ptr_nonnull(mpibind_get_nics_ptask(h, 0, &nnics));
  ck_assert_ptr_nonnull(mpibind_get_env_var_names(h, &n));
  ck_assert_int_eq(n, 3 + nvendor + (nnics > 0));
  ck_assert(has_name(h, "MPIBIND_NICS") == (nnics > 0));
  ck_assert(has_name(h, "OMP_NUM_THREADS"));
  ck_assert(has_name(h, "OMP_PLACES"));
  ck_assert(has_name(h, "OMP_PROC_BIND"));
  for (size_t i = 0; i < 3; i++) {
    int want = 0;
    for (int j = 0; j < nvendor; j++)
      want |= strcmp(vendor[j], vendor_vars[i]) == 0;
    ck_assert_msg(has_name(h, vendor_vars[i]) == want, "%s %s expected",
                  vendor_vars[i], want ? "is" : "is not");
  }
}

static mpibind_t *env(const char *file, ut_in in)
{
  mpibind_t *h = ut_open(file);
  ut_map(h, in);
  ck_assert_msg(mpibind_set_env_vars(h) == 0, "%s", mpibind_get_error(h));
  return h;
}

START_TEST(no_gpu_node)
{
  mpibind_t *h = env("cts1-quartz-smt1.xml", UT_IN(.ntasks = 3));
  expect_names(h, 0, NULL);
  expect_var(h, "OMP_NUM_THREADS", "9;9;18");
  expect_var(h, "OMP_PLACES", "threads");
  expect_var(h, "OMP_PROC_BIND", "spread");
  ck_assert_ptr_null(mpibind_get_env_var_values(h, "CUDA_VISIBLE_DEVICES"));
  mpibind_finalize(h);
  /* a GPU without PCI parent is no GPU either */
  h = env("gpu-nopci-only.xml", UT_IN(.ntasks = 2));
  expect_names(h, 0, NULL);
  mpibind_finalize(h);
}
END_TEST

START_TEST(nvidia)
{
  mpibind_t *h = env("coral-lassen.xml", UT_IN(.ntasks = 8));
  expect_names(h, 1, (const char *[]){"CUDA_VISIBLE_DEVICES"});
  expect_var(h, "CUDA_VISIBLE_DEVICES", "0;0;1;1;2;2;3;3");
  expect_var(h, "OMP_NUM_THREADS", "5");
  mpibind_finalize(h);
}
END_TEST

/* The variables carry visible indexes whatever the ID kind chosen. */
START_TEST(visible_index_whatever_id_kind)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "CUDA_VISIBLE_DEVICES", "0,1;2,3");
  mpibind_finalize(h);
}
END_TEST

START_TEST(amd_rsmi)
{
  mpibind_t *h = env("eas-tioga.xml", UT_IN(.ntasks = 4));
  expect_names(h, 1, (const char *[]){"ROCR_VISIBLE_DEVICES"});
  expect_var(h, "ROCR_VISIBLE_DEVICES", "4,5;2,3;6,7;0,1");
  expect_var(h, "OMP_NUM_THREADS", "16");
  mpibind_finalize(h);
}
END_TEST

/* AMD GPUs seen only as DRM render nodes: 4 tasks < 8 domains, greedy,
 * 2 groups each, GPUs in groups 1, 2, 5, 7. */
START_TEST(amd_drm)
{
  mpibind_t *h = env("epyc-corona-hwloc1.xml", UT_IN(.ntasks = 4));
  expect_names(h, 1, (const char *[]){"ROCR_VISIBLE_DEVICES"});
  expect_var(h, "ROCR_VISIBLE_DEVICES", "0;1;2;3");
  mpibind_finalize(h);
}
END_TEST

/* Three vendors (xml/gpu-rules.xml, see test_gpus.c): package 0 holds
 * nvml3 and ze0, ze1; package 1 renderD130 (AMD 1), opencl0d0 (AMD 0),
 * cuda0 (NVIDIA 0).  A task without GPU of a vendor present on the node
 * gets the empty string. */
START_TEST(three_vendors)
{
  mpibind_t *h = env("gpu-rules.xml", UT_IN(.ntasks = 2));
  expect_names(h, 3, vendor_vars);
  expect_var(h, "CUDA_VISIBLE_DEVICES", "3;0");
  expect_var(h, "ZE_AFFINITY_MASK", "0,1;");
  expect_var(h, "ROCR_VISIBLE_DEVICES", ";1,0");
  expect_var(h, "OMP_NUM_THREADS", "4");
  mpibind_finalize(h);
}
END_TEST

/* xml/gpu-backends.xml (see test_gpus.c), one domain, one task: every
 * GPU, per vendor in list order. */
START_TEST(three_vendors_one_task)
{
  mpibind_t *h = env("gpu-backends.xml", UT_IN(.ntasks = 1));
  expect_names(h, 3, vendor_vars);
  expect_var(h, "CUDA_VISIBLE_DEVICES", "1,0");
  expect_var(h, "ROCR_VISIBLE_DEVICES", "1,0");
  expect_var(h, "ZE_AFFINITY_MASK", "0,1"); /* one numbering: bus order */
  mpibind_finalize(h);
}
END_TEST

/* A node with GPUs, tasks without: empty strings (Corona restricted to
 * CPUs near no GPU, without a GPU allocation). */
START_TEST(empty_for_task_without_gpu)
{
  /* A job on CPUs 0-3 of a shared node (its CPUs, no allocation) holds
   * none of the node's GPUs: every task is told so. */
  mpibind_t *h = ut_open("epyc-corona.xml");
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  hwloc_bitmap_set_range(cpus, 0, 3);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  hwloc_bitmap_free(cpus);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "ROCR_VISIBLE_DEVICES", ";");
  mpibind_finalize(h);
  /* With GPUs in the job, no task is left without one (No GPU left
   * idle): the tasks on NUMA nodes without a GPU share the nearest. */
  h = env("epyc-corona.xml", UT_IN(.ntasks = 8, .gpu_optim = 0));
  expect_var(h, "ROCR_VISIBLE_DEVICES", "0;0;1;1;2;2;3;3");
  mpibind_finalize(h);
}
END_TEST

/* HIP over ROCr (docs/algorithm.md): an allocation given through
 * HIP_VISIBLE_DEVICES (or CUDA_VISIBLE_DEVICES on a node without NVIDIA
 * GPUs), which the task inherits, is rewritten to index the devices
 * ROCR_VISIBLE_DEVICES exposes to the task; otherwise no HIP variable. */
START_TEST(hip_over_rocr)
{
  mpibind_t *h = ut_open("eas-tioga.xml");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "HIP_VISIBLE_DEVICES", "4,5"),
                   0);
  ut_map(h, UT_IN(.ntasks = 2, .greedy = 0));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "ROCR_VISIBLE_DEVICES", "4;5");
  expect_var(h, "HIP_VISIBLE_DEVICES", "0;0");
  ck_assert(!has_name(h, "CUDA_VISIBLE_DEVICES"));
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "ROCR_VISIBLE_DEVICES", "4,5");
  expect_var(h, "HIP_VISIBLE_DEVICES", "0,1");
  /* CUDA_VISIBLE_DEVICES: no NVIDIA GPU here, so it allocates nothing,
   * but HIP reads it over ROCr's devices too */
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "HIP_VISIBLE_DEVICES", NULL),
                   0);
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "4,5"), 0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "ROCR_VISIBLE_DEVICES", "4,5;2,3;6,7;0,1");
  expect_var(h, "CUDA_VISIBLE_DEVICES", "0,1;0,1;0,1;0,1");
  ck_assert(!has_name(h, "HIP_VISIBLE_DEVICES"));
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", NULL),
                   0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  ck_assert(!has_name(h, "HIP_VISIBLE_DEVICES"));
  ck_assert(!has_name(h, "CUDA_VISIBLE_DEVICES"));
  mpibind_finalize(h);
  /* An NVIDIA node: CUDA_VISIBLE_DEVICES is CUDA's own, as before. */
  h = ut_open("coral-lassen.xml");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "CUDA_VISIBLE_DEVICES", "2;3");
  mpibind_finalize(h);
}
END_TEST

/* docs/algorithm.md, "Every GPU visible, in task order": one value for
 * every task, task i's first GPU at position i, then the others. */
static void expect_all_visible(const char *file, int ntasks, const char *var,
                               const char *value)
{
  mpibind_t *h = ut_open(file);
  ck_assert_int_eq(mpibind_get_all_gpus_visible(h), 0);
  ck_assert_int_eq(mpibind_set_all_gpus_visible(h, 1), 0);
  ck_assert_int_eq(mpibind_get_all_gpus_visible(h), 1);
  ut_map(h, UT_IN(.ntasks = ntasks));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  char **v = mpibind_get_env_var_values(h, var);
  ck_assert_ptr_nonnull(v);
  for (int t = 0; t < ntasks; t++)
    ck_assert_msg(strcmp(v[t], value) == 0, "%s ntasks %d: task %d: %s='%s', "
                  "expected '%s'", file, ntasks, t, var, v[t], value);
  mpibind_finalize(h);
}

START_TEST(all_gpus_visible_task_order)
{
  expect_all_visible("coral-lassen.xml", 4, "CUDA_VISIBLE_DEVICES", "0,1,2,3");
  expect_all_visible("coral-lassen.xml", 2, "CUDA_VISIBLE_DEVICES", "0,2,1,3");
  /* Tioga: RSMI numbers against locality, task 0's nearest is 4 */
  expect_all_visible("eas-tioga.xml", 8, "ROCR_VISIBLE_DEVICES",
                     "4,5,2,3,6,7,0,1");
  expect_all_visible("eas-tioga.xml", 4, "ROCR_VISIBLE_DEVICES",
                     "4,2,6,0,5,3,7,1");
  expect_all_visible("eas-tioga.xml", 16, "ROCR_VISIBLE_DEVICES",
                     "4,5,2,3,6,7,0,1");
  /* the mapping and the setter's rules */
  mpibind_t *h = ut_open("eas-tioga.xml");
  ck_assert_int_eq(mpibind_set_all_gpus_visible(h, 2), -1);
  ck_assert_int_eq(errno, EINVAL);
  ut_map(h, UT_IN(.ntasks = 8));
  ck_assert_int_eq(mpibind_set_all_gpus_visible(h, 1), 0);
  ck_assert_int_eq(mpibind_set_env_vars(h), -1); /* an input: stale */
  ck_assert_int_eq(errno, ENODATA);
  ut_map(h, UT_IN(.ntasks = 8));
  ut_expect(h, "8", "0-7;8-15;16-23;24-31;32-39;40-47;48-55;56-63",
            "4;5;2;3;6;7;0;1");
  /* an inherited HIP_VISIBLE_DEVICES indexes all of ROCr's devices */
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "HIP_VISIBLE_DEVICES",
                                               "4,5,2,3,6,7,0,1"), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "ROCR_VISIBLE_DEVICES", "4,6,5,2,3,7,0,1;4,6,5,2,3,7,0,1");
  expect_var(h, "HIP_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7;0,1,2,3,4,5,6,7");
  ck_assert_int_eq(mpibind_set_all_gpus_visible(NULL, 1), -1);
  ck_assert_int_eq(mpibind_get_all_gpus_visible(NULL), -1);
  mpibind_finalize(h);
}
END_TEST

START_TEST(unknown_name)
{
  mpibind_t *h = env("coral-lassen.xml", UT_IN(.ntasks = 2));
  ck_assert_ptr_null(mpibind_get_env_var_values(h, "NO_SUCH_VARIABLE"));
  ck_assert_msg(strstr(mpibind_get_error(h), "NO_SUCH_VARIABLE"),
                "message '%s' does not name the variable", mpibind_get_error(h));
  ck_assert_ptr_null(mpibind_get_env_var_values(h, "ROCR_VISIBLE_DEVICES"));
  mpibind_finalize(h);
}
END_TEST

/* A new mapping gives new values. */
START_TEST(recomputed)
{
  mpibind_t *h = env("coral-lassen.xml", UT_IN(.ntasks = 2));
  expect_var(h, "OMP_NUM_THREADS", "20");
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "OMP_NUM_THREADS", "10");
  expect_var(h, "CUDA_VISIBLE_DEVICES", "0;1;2;3");
  mpibind_finalize(h);
}
END_TEST

/* Runs f(h) with stdout captured; returns what it printed. */
static char *capture(int (*f)(mpibind_t *), mpibind_t *h, int *rc)
{
  fflush(stdout);
  FILE *tmp = tmpfile();
  ck_assert_ptr_nonnull(tmp);
  int saved = dup(1);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_ge(dup2(fileno(tmp), 1), 0);
  *rc = f(h);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  off_t len = lseek(fileno(tmp), 0, SEEK_END); /* written through fd 1 */
  ck_assert_int_ge(len, 0);
  char *buf = ut_keep(calloc(1, len + 1));
  lseek(fileno(tmp), 0, SEEK_SET);
  ck_assert_int_eq(read(fileno(tmp), buf, len), len);
  fclose(tmp);
  return buf;
}

START_TEST(env_vars_print)
{
  mpibind_t *h = env("coral-lassen.xml", UT_IN(.ntasks = 2));
  int rc;
  char *out = capture(mpibind_env_vars_print, h, &rc);
  ck_assert_int_eq(rc, 0);
  const char *want[] = {
    "mpibind: task  0 OMP_NUM_THREADS=20\n", "mpibind: task  1 OMP_NUM_THREADS=20\n",
    "mpibind: task  0 OMP_PLACES=threads\n", "mpibind: task  1 OMP_PROC_BIND=spread\n",
    "mpibind: task  0 CUDA_VISIBLE_DEVICES=0,1\n",
    "mpibind: task  1 CUDA_VISIBLE_DEVICES=2,3\n",
    "mpibind: task  0 MPIBIND_NICS=mlx5_0,mlx5_1\n",
    "mpibind: task  1 MPIBIND_NICS=mlx5_2,mlx5_3\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(strstr(out, want[i]), "no line '%.*s' in:\n%s",
                  (int)strlen(want[i]) - 1, want[i], out);
  /* one line per task and variable */
  int lines = 0;
  for (char *p = out; *p; p++)
    lines += *p == '\n';
  ck_assert_int_eq(lines, 2 * 5);
  mpibind_finalize(h);
}
END_TEST

/* ---- report ------------------------------------------------------------- */

static char *report(mpibind_t *h)
{
  int len = mpibind_mapping_snprint(NULL, 0, h);
  ck_assert_int_ge(len, 0);
  char *buf = ut_keep(malloc(len + 1));
  ck_assert_int_eq(mpibind_mapping_snprint(buf, len + 1, h), len);
  ck_assert_int_eq((int)strlen(buf), len);
  return buf;
}

START_TEST(report_no_gpu)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ck_assert_str_eq(report(h),
                   "mpibind: task  0 nths  9 gpus  nics hfi1_0 cpus 0-8\n"
                   "mpibind: task  1 nths  9 gpus  nics hfi1_0 cpus 9-17\n"
                   "mpibind: task  2 nths 18 gpus  nics hfi1_0 cpus 18-35\n");
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "0-7"));
  ck_assert_str_eq(report(h),
                   "mpibind: task  0 nths  2 gpus  nics hfi1_0 cpus 0-1\n"
                   "mpibind: task  1 nths  2 gpus  nics hfi1_0 cpus 2-3\n"
                   "mpibind: task  2 nths  2 gpus  nics hfi1_0 cpus 4-5\n"
                   "mpibind: task  3 nths  2 gpus  nics hfi1_0 cpus 6-7\n");
  mpibind_finalize(h);
}
END_TEST

START_TEST(report_gpus_and_id_kinds)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  char *c0 = ut_seq(8, 84, 4, 1), *c1 = ut_seq(96, 172, 4, 1);
  ck_assert_str_eq(report(h),
                   ut_fmt("mpibind: task  0 nths 20 gpus 0,1 nics mlx5_0,mlx5_1 cpus %s\n"
                          "mpibind: task  1 nths 20 gpus 2,3 nics mlx5_2,mlx5_3 cpus %s\n",
                          c0, c1));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ck_assert_str_eq(report(h),
                   ut_fmt("mpibind: task  0 nths 20 gpus nvml0,nvml1 nics mlx5_0,mlx5_1 cpus %s\n"
                          "mpibind: task  1 nths 20 gpus nvml2,nvml3 nics mlx5_2,mlx5_3 cpus %s\n",
                          c0, c1));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_PCIBUS), 0);
  ck_assert_str_eq(report(h),
                   ut_fmt("mpibind: task  0 nths 20 gpus 0004:04:00.0,0004:05:00.0 nics mlx5_0,mlx5_1 cpus %s\n"
                          "mpibind: task  1 nths 20 gpus 0035:03:00.0,0035:04:00.0 nics mlx5_2,mlx5_3 cpus %s\n",
                          c0, c1));
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_SMI), 0);
  ck_assert_str_eq(report(h),
                   "mpibind: task  0 nths 160 gpus 0,1,2,3 nics mlx5_0,mlx5_1,mlx5_2,mlx5_3 "
                   "cpus 8-87,96-175\n");
  mpibind_finalize(h);
}
END_TEST

/* Two-digit task numbers; every line equals its ptask line. */
START_TEST(report_many_tasks)
{
  mpibind_t *h = ut_open("eas-tioga.xml");
  ut_map(h, UT_IN(.ntasks = 12));
  char *all = report(h);
  ck_assert_msg(strstr(all, "mpibind: task 10 nths  5 gpus 0 cpus 54-58\n"),
                "report:\n%s", all);
  ck_assert_msg(strstr(all, "mpibind: task 11 nths  5 gpus 1 cpus 59-63\n"),
                "report:\n%s", all);
  size_t off = 0;
  for (int i = 0; i < 12; i++) {
    int len = mpibind_mapping_ptask_snprint(NULL, 0, h, i);
    ck_assert_int_gt(len, 0);
    char *line = malloc(len + 1);
    ck_assert_int_eq(mpibind_mapping_ptask_snprint(line, len + 1, h, i), len);
    ck_assert_msg(strncmp(all + off, line, len) == 0,
                  "task %d: ptask line '%s' differs from the report", i, line);
    off += len;
    free(line);
  }
  ck_assert_int_eq(off, strlen(all));
  mpibind_finalize(h);
}
END_TEST

/* snprintf semantics: the whole length is returned, the output truncated
 * and NUL-terminated. */
START_TEST(report_truncation)
{
  mpibind_t *h = ut_open("cts1-quartz-smt1.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  const char *full = "mpibind: task  0 nths  9 gpus  nics hfi1_0 cpus 0-8\n"
                     "mpibind: task  1 nths  9 gpus  nics hfi1_0 cpus 9-17\n"
                     "mpibind: task  2 nths 18 gpus  nics hfi1_0 cpus 18-35\n";
  char buf[16];
  memset(buf, 'x', sizeof buf);
  ck_assert_int_eq(mpibind_mapping_snprint(buf, 10, h), (int)strlen(full));
  ck_assert_str_eq(buf, "mpibind: ");
  ck_assert_int_eq(buf[10], 'x');
  ck_assert_int_eq(mpibind_mapping_snprint(buf, 1, h), (int)strlen(full));
  ck_assert_str_eq(buf, "");
  memset(buf, 'x', sizeof buf);
  ck_assert_int_eq(mpibind_mapping_ptask_snprint(buf, 12, h, 2),
                   (int)strlen("mpibind: task  2 nths 18 gpus  nics hfi1_0 cpus 18-35\n"));
  ck_assert_str_eq(buf, "mpibind: ta");
  mpibind_finalize(h);
}
END_TEST

START_TEST(report_print)
{
  mpibind_t *h = ut_open("eas-tioga.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  int rc;
  char *out = capture(mpibind_mapping_print, h, &rc);
  ck_assert_int_eq(rc, 0);
  ck_assert_str_eq(out, "mpibind: task  0 nths 16 gpus 4,5 cpus 0-15\n"
                        "mpibind: task  1 nths 16 gpus 2,3 cpus 16-31\n"
                        "mpibind: task  2 nths 16 gpus 6,7 cpus 32-47\n"
                        "mpibind: task  3 nths 16 gpus 0,1 cpus 48-63\n");
  ck_assert_str_eq(out, report(h));
  mpibind_finalize(h);
}
END_TEST

/* The library prints nothing on its own (mpibind.h): mapping, errors,
 * variables and snprint write nothing to stdout. */
static int quiet_calls(mpibind_t *h)
{
  char buf[64];
  int n;
  if (ut_set(h, UT_IN(.ntasks = 4)) || mpibind(h))
    return -1;
  mpibind_set_env_vars(h);
  mpibind_get_env_var_names(h, &n);
  mpibind_get_env_var_values(h, "NOPE");
  mpibind_mapping_snprint(buf, sizeof buf, h);
  mpibind_set_smt(h, -1);
  mpibind_set_smt(h, 9);
  mpibind(h); /* fails: smt 9 */
  mpibind_set_topology_file(h, "/nonexistent/x.xml");
  return 0;
}

START_TEST(silent)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  int rc;
  char *out = capture(quiet_calls, h, &rc);
  ck_assert_int_eq(rc, 0);
  ck_assert_msg(*out == '\0', "printed on stdout: %s", out);
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("env_report");
  TCase *e = ut_tcase("env");
  tcase_add_test(e, no_gpu_node);
  tcase_add_test(e, nvidia);
  tcase_add_test(e, visible_index_whatever_id_kind);
  tcase_add_test(e, amd_rsmi);
  tcase_add_test(e, amd_drm);
  tcase_add_test(e, three_vendors);
  tcase_add_test(e, three_vendors_one_task);
  tcase_add_test(e, empty_for_task_without_gpu);
  tcase_add_test(e, hip_over_rocr);
  tcase_add_test(e, all_gpus_visible_task_order);
  tcase_add_test(e, unknown_name);
  tcase_add_test(e, recomputed);
  tcase_add_test(e, env_vars_print);
  suite_add_tcase(s, e);
  TCase *r = ut_tcase("report");
  tcase_add_test(r, report_no_gpu);
  tcase_add_test(r, report_gpus_and_id_kinds);
  tcase_add_test(r, report_many_tasks);
  tcase_add_test(r, report_truncation);
  tcase_add_test(r, report_print);
  tcase_add_test(r, silent);
  suite_add_tcase(s, r);
  return ut_run(s);
}
