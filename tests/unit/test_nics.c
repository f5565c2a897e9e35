/*
 * test_nics.c - docs/algorithm.md, "The nearest NIC for each task": which
 * devices are NICs (OpenFabrics; Slingshot and BXI network devices; not
 * Ethernet; one NIC per PCI function), each task's nearest NICs (to its
 * GPUs, else its CPUs), the even spread among equally near NICs, the
 * getter and its lifetime, the report's "nics" field, the variables
 * (MPIBIND_NICS always; UCX_NET_DEVICES, NCCL_IB_HCA, FI_CXI_DEVICE_NAME
 * when asked, naming only devices the node has), the picture.  Expected
 * values are read from the topology files: which HCA sits beside which
 * GPU or package.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* Each task's NIC names joined by ',', tasks by ';'. */
static char *nics_of(mpibind_t *h)
{
  int n = mpibind_get_ntasks(h);
  char **tasks = ut_keep(calloc(n, sizeof(char *)));
  for (int t = 0; t < n; t++) {
    int k = -1;
    char **names = mpibind_get_nics_ptask(h, t, &k);
    ck_assert_msg(names != NULL, "task %d: %s", t, mpibind_get_error(h));
    ck_assert_ptr_null(names[k]);
    tasks[t] = ut_join(",", k, names);
  }
  return ut_join(";", n, tasks);
}

static void expect_nics(mpibind_t *h, ut_in in, const char *want)
{
  ut_map(h, in);
  char *got = nics_of(h);
  ck_assert_msg(strcmp(got, want) == 0, "ntasks %d gpu_optim %d: nics '%s', "
                "expected '%s'", in.ntasks, in.gpu_optim, got, want);
}

/* The variable's values joined by ';', or NULL when it is not set. */
static char *var_of(mpibind_t *h, const char *name)
{
  int n = -1;
  char **names = mpibind_get_env_var_names(h, &n);
  ck_assert_ptr_nonnull(names);
  int found = 0;
  for (int i = 0; i < n; i++)
    found |= strcmp(names[i], name) == 0;
  if (!found)
    return NULL;
  char **v = mpibind_get_env_var_values(h, name);
  ck_assert_ptr_nonnull(v);
  return ut_join(";", mpibind_get_ntasks(h), v);
}

static void expect_var(mpibind_t *h, const char *name, const char *want)
{
  char *got = var_of(h, name);
  if (!want) {
    ck_assert_msg(got == NULL, "%s is set ('%s'), expected unset", name, got);
    return;
  }
  ck_assert_msg(got && strcmp(got, want) == 0, "%s: '%s', expected '%s'",
                name, got ? got : "(unset)", want);
}

/* Lassen: socket 0 holds GPUs 0, 1 and the dual-port HCA's two functions
 * mlx5_0, mlx5_1; socket 1 GPUs 2, 3 and mlx5_2, mlx5_3.  Every GPU's
 * nearest NICs are its socket's two. */
START_TEST(lassen_tasks)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  expect_nics(h, UT_IN(.ntasks = 1), "mlx5_0,mlx5_1,mlx5_2,mlx5_3");
  expect_nics(h, UT_IN(.ntasks = 2), "mlx5_0,mlx5_1;mlx5_2,mlx5_3");
  expect_nics(h, UT_IN(.ntasks = 4), "mlx5_0;mlx5_1;mlx5_2;mlx5_3");
  /* four tasks on socket 0's two NICs: round robin */
  expect_nics(h, UT_IN(.ntasks = 8),
              "mlx5_0;mlx5_1;mlx5_0;mlx5_1;mlx5_2;mlx5_3;mlx5_2;mlx5_3");
  /* without gpu: the worked example's tasks (GPUs 0;0;1;2;3) */
  expect_nics(h, UT_IN(.ntasks = 5, .gpu_optim = 0),
              "mlx5_0;mlx5_1;mlx5_0;mlx5_2;mlx5_3");
  expect_nics(h, UT_IN(.ntasks = 2, .gpu_optim = 0),
              "mlx5_0,mlx5_1;mlx5_2,mlx5_3");
  mpibind_finalize(h);
}
END_TEST

START_TEST(lassen_variables)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "MPIBIND_NICS", "mlx5_0;mlx5_1;mlx5_2;mlx5_3");
  expect_var(h, "UCX_NET_DEVICES", NULL); /* only when asked */
  expect_var(h, "NCCL_IB_HCA", NULL);
  ck_assert_int_eq(mpibind_get_transport_vars(h), 0);
  ck_assert_int_eq(mpibind_set_transport_vars(h, 1), 0);
  ck_assert_int_eq(mpibind_get_transport_vars(h), 1);
  /* an input: the variables are stale until the next mapping */
  ck_assert_int_eq(mpibind_set_env_vars(h), -1);
  ck_assert_int_eq(errno, ENODATA);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "MPIBIND_NICS", "mlx5_0,mlx5_1;mlx5_2,mlx5_3");
  /* Port 1 is each HCA's active port (Port1State 4 in the file). */
  expect_var(h, "UCX_NET_DEVICES", "mlx5_0:1,mlx5_1:1;mlx5_2:1,mlx5_3:1");
  expect_var(h, "NCCL_IB_HCA", "=mlx5_0,mlx5_1;=mlx5_2,mlx5_3");
  expect_var(h, "FI_CXI_DEVICE_NAME", NULL); /* no CXI device here */
  ck_assert_int_eq(mpibind_set_transport_vars(h, 2), -1);
  ck_assert_int_eq(errno, EINVAL);
  mpibind_finalize(h);
}
END_TEST

/* Each GPU shares a PCI switch with an HCA (numbered against the GPUs:
 * mlx5_1 beside GPU 0): the same switch wins over the same package. */
START_TEST(same_pci_switch)
{
  mpibind_t *h = ut_open("nic-gpu-switch.xml");
  expect_nics(h, UT_IN(.ntasks = 4), "mlx5_1;mlx5_0;mlx5_2;mlx5_3");
  expect_nics(h, UT_IN(.ntasks = 8),
              "mlx5_1;mlx5_1;mlx5_0;mlx5_0;mlx5_2;mlx5_2;mlx5_3;mlx5_3");
  expect_nics(h, UT_IN(.ntasks = 2), "mlx5_1,mlx5_0;mlx5_2,mlx5_3");
  ck_assert_int_eq(mpibind_set_transport_vars(h, 1), 0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "UCX_NET_DEVICES", "mlx5_1:1;mlx5_0:1;mlx5_2:1;mlx5_3:1");
  expect_var(h, "NCCL_IB_HCA", "=mlx5_1;=mlx5_0;=mlx5_2;=mlx5_3");
  mpibind_finalize(h);
}
END_TEST

/* Slingshot NICs beside APUs: named by their CXI device; the one hwloc
 * knows only as hsn3 keeps that name, and no CXI variable names it. */
START_TEST(slingshot)
{
  mpibind_t *h = ut_open("nic-apu-slingshot.xml");
  expect_nics(h, UT_IN(.ntasks = 4), "cxi0;cxi1;cxi2;hsn3");
  expect_nics(h, UT_IN(.ntasks = 8),
              "cxi0;cxi0;cxi1;cxi1;cxi2;cxi2;hsn3;hsn3");
  ck_assert_int_eq(mpibind_set_transport_vars(h, 1), 0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "MPIBIND_NICS", "cxi0;cxi1;cxi2;hsn3");
  /* Task 3's nearest CXI devices are the three others, equally far. */
  expect_var(h, "FI_CXI_DEVICE_NAME", "cxi0;cxi1;cxi2;cxi0,cxi1,cxi2");
  expect_var(h, "UCX_NET_DEVICES", NULL);
  expect_var(h, "NCCL_IB_HCA", NULL);
  mpibind_finalize(h);
}
END_TEST

/* No GPU: the NICs nearest to the task's CPUs; a BXI NIC is one (named,
 * no transport variable); Ethernet is none. */
START_TEST(cpus_only)
{
  mpibind_t *h = ut_open("nic-cpu-only.xml");
  expect_nics(h, UT_IN(.ntasks = 1), "mlx5_0,mlx5_1,bxi0");
  expect_nics(h, UT_IN(.ntasks = 2), "mlx5_0,mlx5_1;bxi0");
  expect_nics(h, UT_IN(.ntasks = 4), "mlx5_0;mlx5_1;bxi0;bxi0");
  expect_nics(h, UT_IN(.ntasks = 8),
              "mlx5_0;mlx5_1;mlx5_0;mlx5_1;bxi0;bxi0;bxi0;bxi0");
  ck_assert_int_eq(mpibind_set_transport_vars(h, 1), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  /* UCX and NCCL get each task's nearest HCAs, the BXI task's too: both
   * tasks' nearest are the same two, shared out evenly */
  expect_var(h, "UCX_NET_DEVICES", "mlx5_0:1;mlx5_1:1");
  expect_var(h, "FI_CXI_DEVICE_NAME", NULL);
  mpibind_finalize(h);

  h = ut_open("hwloc-16intel64-manyVFs.xml"); /* Cisco usNIC */
  expect_nics(h, UT_IN(.ntasks = 2), "usnic_0,usnic_1;usnic_2");
  expect_nics(h, UT_IN(.ntasks = 4), "usnic_0;usnic_1;usnic_2;usnic_2");
  mpibind_finalize(h);
}
END_TEST

START_TEST(no_nics)
{
  mpibind_t *h = ut_open("nic-ethernet-only.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  int n = -1;
  char **names = mpibind_get_nics_ptask(h, 1, &n);
  ck_assert_ptr_nonnull(names);
  ck_assert_int_eq(n, 0);
  ck_assert_ptr_null(names[0]);
  char buf[128];
  ck_assert_int_gt(mpibind_mapping_ptask_snprint(buf, sizeof buf, h, 0), 0);
  ck_assert_ptr_null(strstr(buf, "nics"));
  ck_assert_int_eq(mpibind_set_transport_vars(h, 1), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  expect_var(h, "MPIBIND_NICS", NULL);
  expect_var(h, "UCX_NET_DEVICES", NULL);
  mpibind_finalize(h);
}
END_TEST

/* The report line names the task's NICs between its GPUs and CPUs. */
START_TEST(report_field)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  char buf[256];
  mpibind_mapping_ptask_snprint(buf, sizeof buf, h, 2);
  ck_assert_str_eq(buf, ut_fmt("mpibind: task  2 nths 10 gpus 2 nics mlx5_2 "
                               "cpus %s\n", ut_seq(96, 132, 4, 1)));
  mpibind_finalize(h);
}
END_TEST

/* NICs are shared, not allocated: a restriction keeps the node's, and a
 * task far from every NIC gets the nearest (Corona's HCA is on NUMA node
 * 3; CPUs 0-3 are NUMA node 0's). */
START_TEST(restricted)
{
  mpibind_t *h = ut_open("epyc-corona.xml");
  expect_nics(h, UT_IN(.ntasks = 2, .restrict_ids = "0-3"), "mlx5_0;mlx5_0");
  mpibind_finalize(h);
  /* Two cores of Lassen's socket 0 and the node's 4 GPUs (shared out:
   * GPUs 0,2 and 1,3): each GPU brings a NIC of its own socket, so a
   * task never has a GPU without a NIC near it (task 0: mlx5_0 for GPU
   * 0, mlx5_2 for GPU 2). */
  h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8-15"));
  ck_assert_str_eq(ut_gpus_str(h, 0), "0,2");
  expect_nics(h, UT_IN(.ntasks = 2, .restrict_ids = "8-15"),
              "mlx5_0,mlx5_2;mlx5_1,mlx5_3");
  mpibind_finalize(h);
}
END_TEST

/* The LIFETIME rule: valid until the next mpibind(); ENODATA after an
 * input changed; a task out of range is EINVAL. */
START_TEST(lifetime)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  int n;
  ck_assert_ptr_null(mpibind_get_nics_ptask(h, 0, &n));
  ck_assert_int_eq(mpibind_get_errno(h), ENODATA);
  ut_map(h, UT_IN(.ntasks = 2));
  char **a = mpibind_get_nics_ptask(h, 0, &n);
  ck_assert_ptr_eq(mpibind_get_nics_ptask(h, 0, &n), a);
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ck_assert_ptr_eq(mpibind_get_nics_ptask(h, 0, &n), a);
  ck_assert_ptr_null(mpibind_get_nics_ptask(h, 2, &n));
  ck_assert_int_eq(mpibind_get_errno(h), EINVAL);
  ck_assert_ptr_null(mpibind_get_nics_ptask(h, -1, &n));
  ck_assert_int_eq(mpibind_set_ntasks(h, 4), 0);
  ck_assert_ptr_null(mpibind_get_nics_ptask(h, 0, &n));
  ck_assert_int_eq(mpibind_get_errno(h), ENODATA);
  ck_assert_str_eq(a[0], "mlx5_0"); /* still readable */
  ck_assert_ptr_null(mpibind_get_nics_ptask(NULL, 0, &n));
  ck_assert_int_eq(mpibind_set_transport_vars(NULL, 1), -1);
  ck_assert_int_eq(mpibind_get_transport_vars(NULL), -1);
  mpibind_finalize(h);
}
END_TEST

/* The picture: a task's NICs (the PCI function and its OS devices) in
 * the task's colour, as its GPUs. */
START_TEST(picture)
{
  mpibind_t *h = ut_open("nic-gpu-switch.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  char *path = ut_fmt("%s/nics.xml", ut_tmpdir());
  ck_assert_msg(mpibind_draw(h, path) == 0, "%s", mpibind_get_error(h));
  hwloc_topology_t t;
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  hwloc_topology_set_all_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL);
  ck_assert_int_eq(hwloc_topology_set_xml(t, path), 0);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  const char *style[4] = {NULL};
  for (hwloc_obj_t o = hwloc_get_next_osdev(t, NULL); o;
       o = hwloc_get_next_osdev(t, o)) {
    const char *s = hwloc_obj_get_info_by_name(o, "lstopoStyle");
    const char *p = hwloc_obj_get_info_by_name(o->parent, "lstopoStyle");
    if (strcmp(o->name, "nvml0") == 0)
      style[0] = s;
    else if (strcmp(o->name, "mlx5_1") == 0)
      style[1] = s, style[2] = p;
    else if (strcmp(o->name, "ib1") == 0)
      style[3] = s;
  }
  ck_assert_ptr_nonnull(style[0]);
  ck_assert_ptr_nonnull(style[1]);
  ck_assert_str_eq(style[1], style[0]); /* task 0's colour */
  ck_assert_str_eq(style[2], style[0]); /* the PCI function */
  ck_assert_str_eq(style[3], style[0]); /* its other OS device */
  hwloc_topology_destroy(t);
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("nics");
  TCase *tc = ut_tcase("nics");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, lassen_tasks);
  tcase_add_test(tc, lassen_variables);
  tcase_add_test(tc, same_pci_switch);
  tcase_add_test(tc, slingshot);
  tcase_add_test(tc, cpus_only);
  tcase_add_test(tc, no_nics);
  tcase_add_test(tc, report_field);
  tcase_add_test(tc, restricted);
  tcase_add_test(tc, lifetime);
  tcase_add_test(tc, picture);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
