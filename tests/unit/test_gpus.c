/*
 * test_gpus.c - docs/algorithm.md step 3: the node's GPU list (which OS
 * devices are GPUs, in which order, with which IDs).
 *
 * Expected lists are read from the topology files (OS device names,
 * subtypes, PCI parents and info attributes), in hwloc's OS device order.
 * The small files of xml/ (see xml/gen_xml.py) exhibit the rules that no
 * real-machine file (tests/data/topologies) shows.
 */
#include <string.h>

#include "unit_util.h"

/* Maps one task (the GPU list is known after mpibind()) and checks the
 * list: n GPUs with these IDs (an array may be NULL: not checked). */
static void check_list(const char *file, int n, const char *const *name,
                       const char *const *smi, const char *const *pci,
                       const char *const *uuid)
{
  mpibind_t *h = ut_open(file);
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_msg(mpibind_get_num_gpus(h) == n, "%s: %d GPUs, expected %d",
                file, mpibind_get_num_gpus(h), n);
  struct { int kind; const char *const *ids; const char *what; } k[] = {
    {MPIBIND_ID_NAME, name, "name"},
    {MPIBIND_ID_SMI, smi, "visible index"},
    {MPIBIND_ID_PCIBUS, pci, "PCI bus id"},
    {MPIBIND_ID_UNIV, uuid, "UUID"},
  };
  for (size_t j = 0; j < sizeof k / sizeof k[0]; j++) {
    if (!k[j].ids)
      continue;
    for (int i = 0; i < n; i++) {
      const char *got = mpibind_get_gpu_id(h, i, k[j].kind);
      ck_assert_msg(got != NULL, "%s: GPU %d: no %s: %s", file, i, k[j].what,
                    mpibind_get_error(h));
      ck_assert_msg(strcmp(got, k[j].ids[i]) == 0,
                    "%s: GPU %d: %s '%s', expected '%s'", file, i, k[j].what,
                    got, k[j].ids[i]);
    }
  }
  mpibind_finalize(h);
}

#define L(...) ((const char *const[]){__VA_ARGS__})

/* NVML devices without a subtype (hwloc 2.2 export): named by prefix;
 * NVML is kept over CUDA on the same PCI device. */
START_TEST(lassen_nvml_over_cuda)
{
  check_list("coral-lassen.xml", 4, L("nvml0", "nvml1", "nvml2", "nvml3"),
             L("0", "1", "2", "3"),
             L("0004:04:00.0", "0004:05:00.0", "0035:03:00.0", "0035:04:00.0"),
             L("GPU-04732404-7fc3-5ae6-cddd-c879b3a379bb",
               "GPU-c6f92517-d6ad-e039-6cbf-fc1d05507a3c",
               "GPU-3e0871a1-dd1a-b447-40f2-86e6745c3206",
               "GPU-94d6ebb6-7f93-d19f-5b24-d8e69b74e4e7"));
}
END_TEST

/* nvml, cuda and opencl on each PCI device: nvml kept. */
START_TEST(pascal_nvml_over_cuda_opencl)
{
  check_list("cts1-pascal.xml", 2, L("nvml0", "nvml1"), L("0", "1"),
             L("0000:04:00.0", "0000:07:00.0"),
             L("GPU-affad486-897e-9778-18e8-26a7127927a8",
               "GPU-fa7cef9c-220f-b6d7-1bb6-ea1e99d3ad0a"));
}
END_TEST

/* NVML with subtype, plus CUDA and OpenCL per device. */
START_TEST(g4dn_nvml_subtype)
{
  check_list("g4dnmetal.xml", 8,
             L("nvml0", "nvml1", "nvml2", "nvml3", "nvml4", "nvml5", "nvml6",
               "nvml7"),
             L("0", "1", "2", "3", "4", "5", "6", "7"),
             L("0000:18:00.0", "0000:19:00.0", "0000:35:00.0", "0000:36:00.0",
               "0000:e7:00.0", "0000:e8:00.0", "0000:f4:00.0", "0000:f5:00.0"),
             NULL);
}
END_TEST

/* RSMI numbering from the name, not in PCI or domain order. */
START_TEST(tioga_rsmi_numbering)
{
  check_list("eas-tioga.xml", 8,
             L("rsmi4", "rsmi5", "rsmi2", "rsmi3", "rsmi6", "rsmi7", "rsmi0",
               "rsmi1"),
             L("4", "5", "2", "3", "6", "7", "0", "1"),
             L("0000:d1:00.0", "0000:d6:00.0", "0000:c9:00.0", "0000:ce:00.0",
               "0000:d9:00.0", "0000:de:00.0", "0000:c1:00.0", "0000:c6:00.0"),
             L("e850aef0615db971", "b37f6c6d134d9698", "d5cfd2e3f280ffdd",
               "ffc79f350ee5ff7a", "226d71390992870e", "7afa7c692a198e0f",
               "4a7c19da329a2b8c", "4b2293c2b81539dc"));
}
END_TEST

/* RSMI kept over OpenCL; numbers from the names. */
START_TEST(corona_p2_rsmi_over_opencl)
{
  check_list("epyc-corona-p2.xml", 8,
             L("rsmi2", "rsmi3", "rsmi1", "rsmi0", "rsmi6", "rsmi7", "rsmi5",
               "rsmi4"),
             L("2", "3", "1", "0", "6", "7", "5", "4"),
             L("0000:03:00.0", "0000:27:00.0", "0000:43:00.0", "0000:63:00.0",
               "0000:83:00.0", "0000:a3:00.0", "0000:c3:00.0", "0000:e3:00.0"),
             L("4c04714172e6268f", "fd6050c17326b1e1", "518a706172e62697",
               "956a110172e620f5", "f62596172e6212b", "fd6678e17326b1e1",
               "ce888172edb11f", "f88c684172e62691"));
}
END_TEST

/* OpenCL-only node: visible index = position by PCI bus id; no UUID. */
START_TEST(corona_opencl_only)
{
  check_list("epyc-corona.xml", 4,
             L("opencl0d0", "opencl0d1", "opencl0d2", "opencl0d3"),
             L("0", "1", "2", "3"),
             L("0000:13:00.0", "0000:23:00.0", "0000:53:00.0", "0000:73:00.0"),
             L("", "", "", ""));
}
END_TEST

/* DRM-only (hwloc 1 exports): renderD kept, card/controlD never, a BMC
 * VGA (ASPEED, card + controlD) is no GPU; positions by PCI bus id. */
START_TEST(drm_only_lassen)
{
  check_list("coral-lassen-hwloc1.xml", 4,
             L("renderD128", "renderD129", "renderD130", "renderD131"),
             L("0", "1", "2", "3"),
             L("0004:04:00.0", "0004:05:00.0", "0035:03:00.0", "0035:04:00.0"),
             L("", "", "", ""));
}
END_TEST

START_TEST(drm_only_butte_rzansel)
{
  /* renderD128 before card0 under the first GPU: order of kept devices */
  const char *const *names = L("renderD128", "renderD129", "renderD130", "renderD131");
  const char *const *pci = L("0004:04:00.0", "0004:05:00.0", "0035:03:00.0", "0035:04:00.0");
  check_list("coral-butte-hwloc1.xml", 4, names, L("0", "1", "2", "3"), pci, NULL);
  check_list("coral-rzansel-hwloc1.xml", 4, names, L("0", "1", "2", "3"), pci, NULL);
}
END_TEST

START_TEST(drm_only_ea)
{
  check_list("coral-ea-hwloc1.xml", 4,
             L("renderD128", "renderD129", "renderD130", "renderD131"),
             L("0", "1", "2", "3"),
             L("0002:01:00.0", "0003:01:00.0", "0006:01:00.0", "0007:01:00.0"),
             NULL);
}
END_TEST

/* AMD render nodes next to an ASPEED BMC whose card0/controlD64 have no
 * render node: 2 GPUs. */
START_TEST(drm_only_ulna_bmc_vga)
{
  check_list("arm64-ulna-hwloc1.xml", 2, L("renderD128", "renderD129"),
             L("0", "1"), L("0000:02:00.0", "0000:82:00.0"), L("", ""));
}
END_TEST

START_TEST(drm_only_corona)
{
  check_list("epyc-corona-hwloc1.xml", 4,
             L("renderD128", "renderD129", "renderD130", "renderD131"),
             L("0", "1", "2", "3"),
             L("0000:13:00.0", "0000:23:00.0", "0000:53:00.0", "0000:73:00.0"),
             NULL);
}
END_TEST

/* Only a BMC/VGA chip's card and controlD nodes, or none at all: no GPU. */
START_TEST(no_gpu_nodes)
{
  const char *files[] = {"epyc-dual-sock-hwloc1.xml", "knl-quad-cache-hwloc1.xml",
                         "knl-snc4-flat-hwloc1.xml", "cts1-quartz-smt1.xml",
                         "cascade-lake-ap-snl-hwloc1.xml", "gpu-nopci-only.xml"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    mpibind_t *h = ut_open(files[i]);
    ut_map(h, UT_IN(.ntasks = 2));
    ck_assert_msg(mpibind_get_num_gpus(h) == 0, "%s: %d GPUs, expected 0",
                  files[i], mpibind_get_num_gpus(h));
    ut_expect(h, mpibind_get_nthreads(h)[0] == mpibind_get_nthreads(h)[1]
                     ? ut_fmt("%d", mpibind_get_nthreads(h)[0])
                     : ut_fmt("%d;%d", mpibind_get_nthreads(h)[0],
                              mpibind_get_nthreads(h)[1]),
              ut_fmt("%s;%s", ut_cpus_str(h, 0), ut_cpus_str(h, 1)), NULL);
    mpibind_finalize(h);
  }
}
END_TEST

/* xml/gpu-rules.xml, in OS device order:
 *   package 0, PCI 0000:01:00.0 NVIDIA: opencl0d1, cuda1, nvml3 (UUID),
 *              card1, renderD129                    -> nvml3, visible 3
 *   package 0, PCI 0000:02:00.0 ASPEED: card0, controlD64  -> no GPU
 *   package 0, PCI 0000:03:00.0 Intel: opencl0d2, ze0 (UUID), ze1
 *              -> partitioned: ze0 and ze1, visible 0 and 1
 *   package 1, nvml7 attached to the package, no PCI parent -> skipped
 *   package 1, PCI 0000:82:00.0 AMD: card3, renderD130
 *              -> renderD130, AMD position by bus id: 1
 *   package 1, PCI 0000:81:00.0 AMD: card2, renderD128, opencl0d0
 *              -> opencl0d0, AMD position by bus id: 0
 *   package 1, PCI 0000:84:00.0 NVIDIA: cuda0 only  -> cuda0, visible 0 */
START_TEST(synthetic_rules)
{
  check_list("gpu-rules.xml", 6,
             L("nvml3", "ze0", "ze1", "renderD130", "opencl0d0", "cuda0"),
             L("3", "0", "1", "1", "0", "0"),
             L("0000:01:00.0", "0000:03:00.0", "0000:03:00.0", "0000:82:00.0",
               "0000:81:00.0", "0000:84:00.0"),
             L("GPU-11111111-2222-3333-4444-555555555555", "ze-uuid-0", "", "",
               "", ""));
}
END_TEST

/* xml/gpu-backends.xml, one package, in OS device order:
 *   0000:02:00.0 NVIDIA: opencl0d0, cuda1, card1, renderD129 -> cuda1, 1
 *   0000:03:00.0 NVIDIA: cuda0                              -> cuda0, 0
 *   0000:05:00.0 AMD: opencl0d1, card2, renderD130   -> opencl0d1, AMD 1
 *   0000:04:00.0 AMD: card3, renderD131              -> renderD131, AMD 0
 *   0000:06:00.0 Intel: card4, renderD132            -> renderD132, Intel 0
 *   0000:07:00.0 Intel: opencl0d2, accel3 (subtype LevelZero: the
 *                backend comes from the subtype)     -> accel3, Intel 1
 *   0000:01:00.0 ASPEED: card0, controlD64           -> no GPU
 * Intel's GPUs come from DRM and LevelZero: one numbering for the vendor,
 * the PCI bus order (docs/algorithm.md, "Beyond the original"), not
 * accel3's library number beside renderD132's position. */
START_TEST(synthetic_backends)
{
  check_list("gpu-backends.xml", 6,
             L("cuda1", "cuda0", "opencl0d1", "renderD131", "renderD132", "accel3"),
             L("1", "0", "1", "0", "0", "1"),
             L("0000:02:00.0", "0000:03:00.0", "0000:05:00.0", "0000:04:00.0",
               "0000:06:00.0", "0000:07:00.0"),
             L("", "", "", "", "", ""));
}
END_TEST

/* The IDs a task is given follow mpibind_set_gpu_ids(). */
START_TEST(task_id_kinds)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  const char *cpus = ut_fmt("%s;%s", ut_seq(8, 84, 4, 1), ut_seq(96, 172, 4, 1));
  ut_expect(h, "20", cpus, "0,1;2,3");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ut_expect(h, "20", cpus, "nvml0,nvml1;nvml2,nvml3");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_PCIBUS), 0);
  ut_expect(h, "20", cpus, "0004:04:00.0,0004:05:00.0;0035:03:00.0,0035:04:00.0");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_UNIV), 0);
  ut_expect(h, "20", cpus,
            "GPU-04732404-7fc3-5ae6-cddd-c879b3a379bb,"
            "GPU-c6f92517-d6ad-e039-6cbf-fc1d05507a3c;"
            "GPU-3e0871a1-dd1a-b447-40f2-86e6745c3206,"
            "GPU-94d6ebb6-7f93-d19f-5b24-d8e69b74e4e7");
  /* set before mapping too */
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "10",
            ut_fmt("%s;%s;%s;%s", ut_seq(8, 44, 4, 1), ut_seq(48, 84, 4, 1),
                   ut_seq(96, 132, 4, 1), ut_seq(136, 172, 4, 1)),
            "GPU-04732404-7fc3-5ae6-cddd-c879b3a379bb;"
            "GPU-c6f92517-d6ad-e039-6cbf-fc1d05507a3c;"
            "GPU-3e0871a1-dd1a-b447-40f2-86e6745c3206;"
            "GPU-94d6ebb6-7f93-d19f-5b24-d8e69b74e4e7");
  mpibind_finalize(h);
}
END_TEST

/* Missing UUIDs are empty strings in a task's list. */
START_TEST(task_missing_uuid)
{
  mpibind_t *h = ut_open("gpu-rules.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_UNIV), 0);
  int n = -1;
  char **ids = mpibind_get_gpus_ptask(h, 1, &n);
  ck_assert_int_eq(n, 3);
  for (int i = 0; i < 3; i++)
    ck_assert_str_eq(ids[i], "");
  ck_assert_ptr_null(ids[3]);
  ids = mpibind_get_gpus_ptask(h, 0, &n);
  ck_assert_int_eq(n, 3);
  ck_assert_str_eq(ids[0], "GPU-11111111-2222-3333-4444-555555555555");
  ck_assert_str_eq(ids[1], "ze-uuid-0");
  ck_assert_str_eq(ids[2], "");
  mpibind_finalize(h);
}
END_TEST

/* The GPU bitmaps are positions in the node's GPU list. */
START_TEST(gpu_bitmaps_are_positions)
{
  mpibind_t *h = ut_open("eas-tioga.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  hwloc_bitmap_t *g = mpibind_get_gpus(h);
  ck_assert_ptr_nonnull(g);
  const char *want[] = {"0-1", "2-3", "4-5", "6-7"};
  for (int i = 0; i < 4; i++) {
    char *s = NULL;
    hwloc_bitmap_list_asprintf(&s, g[i]);
    ut_keep(s);
    ck_assert_msg(strcmp(s, want[i]) == 0, "task %d: GPU positions %s, expected %s",
                  i, s, want[i]);
  }
  mpibind_finalize(h);
}
END_TEST

/* The GPU allocation (mpibind.h): only the listed GPUs of that vendor are
 * mapped, and the tasks' IDs are the list's entries.  GPUs 2 and 3 are on
 * socket 1: GPU weights 0 and 2 put both tasks there. */
START_TEST(gpu_allocation)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", "2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1), ut_seq(136, 172, 4, 1)),
            "2;3");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", NULL), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  mpibind_finalize(h);
}
END_TEST

/* Allocation entries may be UUIDs or PCI bus ids; the tasks' IDs (and
 * variables) are then those entries. */
START_TEST(gpu_allocation_uuid_pcibus)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  const char *uuid2 = "GPU-3e0871a1-dd1a-b447-40f2-86e6745c3206"; /* nvml2 */
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                              ut_fmt("%s,0035:04:00.0", uuid2)), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1), ut_seq(136, 172, 4, 1)),
            ut_fmt("%s;0035:04:00.0", uuid2));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  char **v = mpibind_get_env_var_values(h, "CUDA_VISIBLE_DEVICES");
  ck_assert_ptr_nonnull(v);
  ck_assert_str_eq(v[0], uuid2);
  ck_assert_str_eq(v[1], "0035:04:00.0");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1), ut_seq(136, 172, 4, 1)),
            "nvml2;nvml3");
  mpibind_finalize(h);
}
END_TEST

/* AMD: ROCR_VISIBLE_DEVICES (and HIP_VISIBLE_DEVICES) name RSMI indexes;
 * tioga's rsmi4 and rsmi5 are both in domain 0: with greedy 0, GPU
 * weights 2, 0, 0, 0 give it every task; greedy (2 < 4 domains), task 0
 * spans domains 0-1 and task 1 domains 2-3, without GPU. */
START_TEST(gpu_allocation_amd)
{
  const char *vars[] = {"ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"};
  for (int i = 0; i < 2; i++) {
    mpibind_t *h = ut_open("eas-tioga.xml");
    ck_assert_int_eq(mpibind_set_gpu_allocation(h, vars[i], "4,5"), 0);
    ut_map(h, UT_IN(.ntasks = 2, .greedy = 0));
    ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
    ut_expect(h, "8", "0-7;8-15", "4;5");
    /* greedy: task 1's domains hold neither; one GPU each (No GPU left
     * idle) */
    ut_map(h, UT_IN(.ntasks = 2));
    ut_expect(h, "64", "0-31,64-95;32-63,96-127", "4;5");
    mpibind_finalize(h);
  }
}
END_TEST

/* An entry that names no GPU of the node is an error naming it. */
START_TEST(gpu_allocation_bad_entry)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  int rc = mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", "1,17");
  if (rc == 0) {
    ck_assert_int_eq(mpibind_set_ntasks(h, 1), 0);
    rc = mpibind(h);
  }
  ck_assert_int_eq(rc, -1);
  ck_assert_msg(strstr(mpibind_get_error(h), "17"), "message '%s' does not "
                "name the entry 17", mpibind_get_error(h));
  mpibind_finalize(h);
}
END_TEST

/* "" allocates no GPU of that vendor; the node still has them, so every
 * task is told CUDA_VISIBLE_DEVICES="" (no device), never left without
 * the variable (every device). */
START_TEST(gpu_allocation_none)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", ""), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 0);
  ut_expect(h, "20", ut_fmt("%s;%s", ut_seq(8, 84, 4, 1), ut_seq(96, 172, 4, 1)),
            NULL);
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  char **cvd = mpibind_get_env_var_values(h, "CUDA_VISIBLE_DEVICES");
  ck_assert_ptr_nonnull(cvd);
  ck_assert_str_eq(cvd[0], "");
  ck_assert_str_eq(cvd[1], "");
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("gpus");
  TCase *tc = ut_tcase("step3");
  tcase_add_test(tc, lassen_nvml_over_cuda);
  tcase_add_test(tc, pascal_nvml_over_cuda_opencl);
  tcase_add_test(tc, g4dn_nvml_subtype);
  tcase_add_test(tc, tioga_rsmi_numbering);
  tcase_add_test(tc, corona_p2_rsmi_over_opencl);
  tcase_add_test(tc, corona_opencl_only);
  tcase_add_test(tc, drm_only_lassen);
  tcase_add_test(tc, drm_only_butte_rzansel);
  tcase_add_test(tc, drm_only_ea);
  tcase_add_test(tc, drm_only_ulna_bmc_vga);
  tcase_add_test(tc, drm_only_corona);
  tcase_add_test(tc, no_gpu_nodes);
  tcase_add_test(tc, synthetic_rules);
  tcase_add_test(tc, synthetic_backends);
  tcase_add_test(tc, task_id_kinds);
  tcase_add_test(tc, task_missing_uuid);
  tcase_add_test(tc, gpu_bitmaps_are_positions);
  tcase_add_test(tc, gpu_allocation);
  tcase_add_test(tc, gpu_allocation_uuid_pcibus);
  tcase_add_test(tc, gpu_allocation_amd);
  tcase_add_test(tc, gpu_allocation_bad_entry);
  tcase_add_test(tc, gpu_allocation_none);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
