/*
 * test_nodes.c - every real node maps (docs/algorithm.md, "Beyond the
 * original"): the kinds of real node that used to abort or map badly
 * (CPUs without a NUMA node, a core that lost a hardware thread, GPUs
 * seen only on the PCI bus, mixed GPU backends, newer hwloc files), each on a real export
 * (tests/data/cases) and on small files written for the kind
 * (tests/unit/xml, gen_xml.py), plus properties checked over every file.
 *   1. no user restriction reaches an hwloc assertion;
 *   2. CPUs whose NUMA node is missing belong to exactly one domain;
 *   3. hardware threads per core from every core;
 *   4. GPUs seen only as PCI functions;
 *   5. one GPU numbering per vendor.
 * (6, files of a newer hwloc, is in test_errors.c.)  Expected values come
 * from the rules and from reading the files.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

static const char *cases[] = {"offline-numa-node.xml", "first-core-lost-a-thread.xml",
                              "pci-only-gpus.xml", "mixed-backends.xml"};
#define NCASES ((int)(sizeof cases / sizeof *cases))

/* Every topology file: the real machines, this suite's and the cases. */
static char **all;
static int nall;

static void collect_files(void)
{
  char **f = ut_topology_files(&nall);
  all = calloc(nall + NCASES, sizeof *all);
  for (int i = 0; i < nall; i++)
    all[i] = f[i];
  free(f);
  for (int i = 0; i < NCASES; i++) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", getenv("CASES"), cases[i]) < 0)
      abort();
    all[nall++] = p;
  }
}

/* The mapping of h (mapped) gives every PU of topo's cpuset exactly one
 * task, and no task a PU outside it. */
static void one_task_per_pu(mpibind_t *h, const char *what)
{
  hwloc_topology_t t = mpibind_get_topology(h);
  hwloc_const_bitmap_t pus = hwloc_topology_get_topology_cpuset(t);
  hwloc_bitmap_t seen = hwloc_bitmap_alloc();
  hwloc_bitmap_t *cpus = mpibind_get_cpus(h);
  for (int i = 0; i < mpibind_get_ntasks(h); i++) {
    ck_assert_msg(hwloc_bitmap_weight(cpus[i]) == 1, "%s: task %d has cpus %s",
                  what, i, ut_cpus_str(h, i));
    ck_assert_msg(!hwloc_bitmap_intersects(seen, cpus[i]),
                  "%s: PU %s given twice", what, ut_cpus_str(h, i));
    hwloc_bitmap_or(seen, seen, cpus[i]);
  }
  ck_assert_msg(hwloc_bitmap_isequal(seen, pus), "%s: not every PU used", what);
  hwloc_bitmap_free(seen);
}

/* ---- 1. restrictions ---------------------------------------------------- */

START_TEST(restrict_offline_numa_mem)
{
  /* NUMA node 1 is the node's only one: naming it removes no memory, and
   * no CPU (this aborted inside hwloc). */
  mpibind_t *h = ut_open("offline-numa-node.xml");
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "1", .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "17", "4-20", NULL);
  mpibind_finalize(h);
  /* Small file: node 1 (package 1) of nodes 1 and 5: package 1's CPUs,
   * and the GPU there first; package 0's stays the job's (No GPU left
   * idle). */
  h = ut_open("numa-offline.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "1", .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "2", "8,10;12,14", "1;0");
  mpibind_finalize(h);
}
END_TEST

START_TEST(restrict_numaless_cpus)
{
  /* CPUs without a NUMA node named alone (hwloc: "Invalid argument"). */
  mpibind_t *h = ut_open("offline-numa-node.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "4,6"));
  ut_expect(h, "1", "4;6", NULL);
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "4,5"));
  ut_expect(h, "1", "4;5", NULL);
  mpibind_finalize(h);
  /* The GPU of the package whose CPUs all went is gone with them. */
  h = ut_open("numa-none.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "0,5"));
  ut_expect(h, "1", "0;5", NULL);
  mpibind_finalize(h);
  /* (package 1's GPU stays the job's: No GPU left idle) */
  h = ut_open("numa-offline.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "0-3"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "1", "0;2", "0;1");
  mpibind_finalize(h);
}
END_TEST

START_TEST(restrict_memory_only)
{
  mpibind_t *h = ut_open("hbm-cxl.xml");
  const char *m = ut_map_fails(h, UT_IN(.ntasks = 2, .restrict_ids = "9",
                                        .restrict_type = MPIBIND_RESTRICT_MEM));
  ck_assert_msg(strstr(m, "'9'") && strstr(m, "without CPUs") && !strchr(m, '\n'), "%s", m);
  mpibind_finalize(h);
  /* Every NUMA node of a node whose only one is memory: no restriction. */
  h = ut_open("numa-none.xml");
  ut_map(h, UT_IN(.ntasks = 3, .restrict_ids = "7", .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "2", "0-1;2-3;4-5", NULL);
  mpibind_finalize(h);
}
END_TEST

/* The family: on every file, each NUMA node alone, all of them, each
 * package's CPUs, the first and the last PU, and every other PU: a mapping
 * or a one-line message, never an abort, never hwloc's errno text. */
START_TEST(restrict_family_every_file)
{
  const char *path = all[_i];
  mpibind_t *h = ut_open(path);
  hwloc_topology_t t = mpibind_get_topology(h);
  char *lists[64];
  int types[64], n = 0;
  hwloc_const_bitmap_t nodes = hwloc_topology_get_topology_nodeset(t);
  hwloc_const_bitmap_t pus = hwloc_topology_get_topology_cpuset(t);
  int id;
  hwloc_bitmap_foreach_begin(id, nodes) {
    if (n < 40) {
      lists[n] = ut_fmt("%d", id);
      types[n++] = MPIBIND_RESTRICT_MEM;
    }
  }
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_list_asprintf(&lists[n], nodes);
  ut_keep(lists[n]);
  types[n++] = MPIBIND_RESTRICT_MEM;
  for (hwloc_obj_t p = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PACKAGE, NULL);
       p && n < 56; p = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_PACKAGE, p)) {
    hwloc_bitmap_list_asprintf(&lists[n], p->cpuset);
    ut_keep(lists[n]);
    types[n++] = MPIBIND_RESTRICT_CPU;
  }
  lists[n] = ut_fmt("%d", hwloc_bitmap_first(pus));
  types[n++] = MPIBIND_RESTRICT_CPU;
  lists[n] = ut_fmt("%d", hwloc_bitmap_last(pus));
  types[n++] = MPIBIND_RESTRICT_CPU;
  hwloc_bitmap_t every_other = hwloc_bitmap_alloc();
  int k = 0;
  hwloc_bitmap_foreach_begin(id, pus) {
    if (k++ % 2)
      hwloc_bitmap_set(every_other, id);
  }
  hwloc_bitmap_foreach_end();
  if (!hwloc_bitmap_iszero(every_other)) {
    hwloc_bitmap_list_asprintf(&lists[n], every_other);
    ut_keep(lists[n]);
    types[n++] = MPIBIND_RESTRICT_CPU;
  }
  hwloc_bitmap_free(every_other);
  for (int i = 0; i < n; i++)
    for (int ntasks = 1; ntasks <= 5; ntasks += 4) {
      if (ut_set(h, UT_IN(.ntasks = ntasks, .restrict_ids = lists[i],
                          .restrict_type = types[i])) == 0 &&
          mpibind(h) == 0)
        continue;
      const char *m = mpibind_get_error(h);
      ck_assert_msg(!strchr(m, '\n') && !strstr(m, "Invalid argument") && strstr(m, lists[i]),
                    "%s: restrict %s %s: %s", path, types[i] ? "mem" : "cpu", lists[i], m);
      /* Only a list of memory-only NUMA nodes may fail. */
      ck_assert_msg(types[i] == MPIBIND_RESTRICT_MEM, "%s: restrict cpu %s: %s", path,
                    lists[i], m);
    }
  mpibind_finalize(h);
}
END_TEST

/* ---- 2. CPUs whose NUMA node is missing --------------------------------- */

START_TEST(numaless_offline_node)
{
  /* Package 0 (PUs 4-20 even) has no NUMA node: a domain of its own,
   * before package 1's (tree order); weights 9 and 8 PUs. */
  mpibind_t *h = ut_open("offline-numa-node.xml");
  ut_map(h, UT_IN(.ntasks = 17));
  ut_expect(h, "1", "4;6;8;10;12;14;16;18;20;5;7;9;11;13;15;17;19", NULL);
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "9;8", "4,6,8,10,12,14,16,18,20;5,7,9,11,13,15,17,19", NULL);
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "17", "4-20", NULL);
  mpibind_finalize(h);
  /* Small file, with a GPU per package and a CPU-less node on the
   * Machine (no domain): package 0's GPU goes to package 0's tasks. */
  h = ut_open("numa-offline.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "2", "0,2;4,6;8,10;12,14", "0;0;1;1");
  mpibind_finalize(h);
}
END_TEST

START_TEST(numaless_no_numa_with_cpus)
{
  /* No CPU has a NUMA node: one domain per package. */
  mpibind_t *h = ut_open("numa-none.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "2", "0-1;2-3;4-5", NULL);
  ut_map(h, UT_IN(.ntasks = 6));
  ut_expect(h, "1", "0;1;2;3;4;5", NULL);
  mpibind_finalize(h);
}
END_TEST

START_TEST(numaless_outside_mems)
{
  /* cpuset.mems leaves NUMA node 0 out: hwloc hides it, its CPUs stay. */
  mpibind_t *h = ut_open("numa-outside-mems.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "2", "0,2;4,6;8,10;12,14", NULL);
  ut_map(h, UT_IN(.ntasks = 16, .gpu_optim = 0));
  one_task_per_pu(h, "numa-outside-mems.xml");
  mpibind_finalize(h);
}
END_TEST

/* As many tasks as PUs, placed by PUs: one task per PU, on every file. */
START_TEST(one_task_per_pu_every_file)
{
  mpibind_t *h = ut_open(all[_i]);
  int npus = hwloc_bitmap_weight(
      hwloc_topology_get_topology_cpuset(mpibind_get_topology(h)));
  /* By PUs: with gpu_optim, tasks follow the GPUs instead (step 5). */
  ut_map(h, UT_IN(.ntasks = npus, .gpu_optim = 0));
  one_task_per_pu(h, all[_i]);
  mpibind_finalize(h);
}
END_TEST

/* ---- 3. hardware threads per core ---------------------------------------- */

START_TEST(smt_first_core_lost_a_thread)
{
  /* Core 0 has PU 0 only, core 1 PUs 4 and 12, then one-PU cores 1, 6,
   * 3, 15: seven tasks, one per PU. */
  mpibind_t *h = ut_open("first-core-lost-a-thread.xml");
  ut_map(h, UT_IN(.ntasks = 7));
  ut_expect(h, "1", "0;4;12;1;6;3;15", NULL);
  ut_map(h, UT_IN(.ntasks = 1, .smt = 2));
  ut_expect(h, "7", "0-1,3-4,6,12,15", NULL);
  ck_assert_str_eq(ut_map_fails(h, UT_IN(.ntasks = 1, .smt = 3)),
                   "smt 3 is invalid: expected 0 to 2, the hardware threads "
                   "per core of this node");
  mpibind_finalize(h);
  h = ut_open("smt-first-core-short.xml");
  ut_map(h, UT_IN(.ntasks = 14));
  one_task_per_pu(h, "smt-first-core-short.xml");
  ut_map(h, UT_IN(.ntasks = 2, .smt = 2));
  ut_expect(h, "7", "1-7;9-15", NULL);
  ut_map(h, UT_IN(.ntasks = 2, .smt = 1));
  ut_expect(h, "4", "1,2,4,6;9,10,12,14", NULL);
  mpibind_finalize(h);
}
END_TEST

/* ---- 4. GPUs seen only on the PCI bus ------------------------------------ */

static void expect_gpu(mpibind_t *h, int g, const char *pci, const char *visible)
{
  ck_assert_str_eq(mpibind_get_gpu_id(h, g, MPIBIND_ID_PCIBUS), pci);
  ck_assert_str_eq(mpibind_get_gpu_id(h, g, MPIBIND_ID_SMI), visible);
}

START_TEST(pci_only_production_node)
{
  /* 4 A100 (3D controllers) without OS devices; the ASPEED VGA is no GPU.
   * The list in the walk's order, numbered in bus order. */
  mpibind_t *h = ut_open("pci-only-gpus.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  expect_gpu(h, 0, "0000:44:00.0", "1");
  expect_gpu(h, 1, "0000:03:00.0", "0");
  expect_gpu(h, 2, "0000:c4:00.0", "3");
  expect_gpu(h, 3, "0000:84:00.0", "2");
  ut_expect(h, "64", "0-31,128-159;32-63,160-191;64-95,192-223;96-127,224-255",
            "1;0;3;2");
  mpibind_finalize(h);
}
END_TEST

START_TEST(pci_only_small)
{
  mpibind_t *h = ut_open("gpu-pci-only.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 5);
  expect_gpu(h, 0, "0000:05:00.0", "1");
  expect_gpu(h, 1, "0000:03:00.0", "0");
  expect_gpu(h, 2, "0000:81:00.0", "0"); /* AMD */
  expect_gpu(h, 3, "0000:82:00.0", "2"); /* a DRM card only: still PCI */
  expect_gpu(h, 4, "0000:83:00.0", "0"); /* Intel data-centre */
  ck_assert_str_eq(mpibind_get_gpu_id(h, 3, MPIBIND_ID_NAME), "0000:82:00.0");
  ut_expect(h, "4", "0,2,4,6;8,10,12,14", "1,0;0,2,0");
  /* A restriction keeps the numbering (package 1's GPUs first, then
   * package 0's, which stay the job's). */
  ut_map(h, UT_IN(.ntasks = 1, .restrict_ids = "8-15"));
  ut_expect(h, "4", "8,10,12,14", "0,2,0,1,0");
  mpibind_finalize(h);
}
END_TEST

/* ---- 5. one numbering per vendor ----------------------------------------- */

START_TEST(mixed_backends_real)
{
  /* Two V100 known by DRM only, two by CUDA (numbered 0, 1 in a job). */
  mpibind_t *h = ut_open("mixed-backends.xml");
  ut_map(h, UT_IN(.ntasks = 1));
  ut_expect(h, "176", "0-175", "0,1,2,3");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "11", ut_fmt("%s;%s;%s;%s", ut_seq(0, 40, 4, 1), ut_seq(44, 84, 4, 1),
                            ut_seq(88, 128, 4, 1), ut_seq(132, 172, 4, 1)),
            "0;1;2;3");
  mpibind_finalize(h);
}
END_TEST

START_TEST(mixed_backends_small)
{
  mpibind_t *h = ut_open("gpu-mixed.xml");
  ut_map(h, UT_IN(.ntasks = 1));
  /* NVIDIA by bus order; AMD's RSMI numbers kept (all RSMI, distinct);
   * Intel's repeated 0 (ze0, accel0): bus order. */
  ut_expect(h, "16", "0-15", "0,1,1,0,2,3,0,1");
  mpibind_finalize(h);
}
END_TEST

/* Never a repeated entry: on every file, a vendor's visible indexes are
 * distinct. */
START_TEST(distinct_visible_every_file)
{
  mpibind_t *h = ut_open(all[_i]);
  ut_map(h, UT_IN(.ntasks = 1));
  int n = mpibind_get_num_gpus(h);
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) {
      const char *pa = mpibind_get_gpu_id(h, a, MPIBIND_ID_PCIBUS);
      const char *pb = mpibind_get_gpu_id(h, b, MPIBIND_ID_PCIBUS);
      hwloc_obj_t oa = hwloc_get_pcidev_by_busidstring(mpibind_get_topology(h), pa);
      hwloc_obj_t ob = hwloc_get_pcidev_by_busidstring(mpibind_get_topology(h), pb);
      ck_assert(oa && ob);
      if (oa->attr->pcidev.vendor_id != ob->attr->pcidev.vendor_id)
        continue;
      ck_assert_msg(strcmp(mpibind_get_gpu_id(h, a, MPIBIND_ID_SMI),
                           mpibind_get_gpu_id(h, b, MPIBIND_ID_SMI)) != 0,
                    "%s: GPUs %d and %d share visible index %s", all[_i], a, b,
                    mpibind_get_gpu_id(h, a, MPIBIND_ID_SMI));
    }
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  collect_files();
  Suite *s = suite_create("nodes");
  TCase *r = ut_tcase("restrict");
  tcase_add_test(r, restrict_offline_numa_mem);
  tcase_add_test(r, restrict_numaless_cpus);
  tcase_add_test(r, restrict_memory_only);
  tcase_add_loop_test(r, restrict_family_every_file, 0, nall);
  suite_add_tcase(s, r);
  TCase *d = ut_tcase("numaless");
  tcase_add_test(d, numaless_offline_node);
  tcase_add_test(d, numaless_no_numa_with_cpus);
  tcase_add_test(d, numaless_outside_mems);
  tcase_add_loop_test(d, one_task_per_pu_every_file, 0, nall);
  suite_add_tcase(s, d);
  TCase *t = ut_tcase("smt");
  tcase_add_test(t, smt_first_core_lost_a_thread);
  suite_add_tcase(s, t);
  TCase *g = ut_tcase("gpus");
  tcase_add_test(g, pci_only_production_node);
  tcase_add_test(g, pci_only_small);
  tcase_add_test(g, mixed_backends_real);
  tcase_add_test(g, mixed_backends_small);
  tcase_add_loop_test(g, distinct_visible_every_file, 0, nall);
  suite_add_tcase(s, g);
  int rc = ut_run(s);
  ut_files_free(all, nall);
  return rc;
}
