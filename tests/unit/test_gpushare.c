/*
 * test_gpushare.c - docs/algorithm.md, "No GPU left idle" and "GPU ids
 * that name each GPU once": stranded GPUs (no locality: on the Machine,
 * above sub-NUMA domains, beside CPU-less memory; or allocated but
 * outside a restriction) are shared out so that every GPU is used, the
 * counts per GPU within one, nearest first; nothing changes where no GPU
 * is stranded; a GPU id kind that names two GPUs alike is refused where
 * task lists are read.  Expected values are the worked examples of
 * docs/algorithm.md and counts read from the topology files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* Every GPU of the list is some task's, and with ntasks >= ngpus each
 * task has one GPU and the counts per GPU differ by at most one; with
 * fewer tasks, task t has split(ngpus, ntasks, t) GPUs, none shared. */
static void every_gpu_used(mpibind_t *h)
{
  int n = mpibind_get_ntasks(h), g = mpibind_get_num_gpus(h);
  hwloc_bitmap_t *gpus = mpibind_get_gpus(h);
  ck_assert_ptr_nonnull(gpus);
  int *count = calloc(g > 0 ? g : 1, sizeof(int));
  for (int t = 0; t < n; t++) {
    int want = n >= g ? 1 : g / n + (t < g % n);
    ck_assert_msg(hwloc_bitmap_weight(gpus[t]) == want,
                  "task %d has %d GPUs, expected %d", t,
                  hwloc_bitmap_weight(gpus[t]), want);
    int x;
    hwloc_bitmap_foreach_begin(x, gpus[t]) count[x]++;
    hwloc_bitmap_foreach_end();
  }
  int lo = n, hi = 0;
  for (int x = 0; x < g; x++) {
    lo = count[x] < lo ? count[x] : lo;
    hi = count[x] > hi ? count[x] : hi;
  }
  ck_assert_msg(lo >= 1, "a GPU is idle");
  ck_assert_msg(hi - lo <= 1, "GPU counts from %d to %d", lo, hi);
  free(count);
}

/* JUROPA3: 2 K20 on a host bridge of the Machine. */
START_TEST(no_locality_juropa3)
{
  mpibind_t *h = ut_open("gpus-without-locality.xml");
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "32", "0-31", "0,1");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "8", "0-7;8-15", "0;1");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "4", "0-3;4-7;8-11;12-15", "0;0;1;1");
  for (int n = 1; n <= 9; n++)
    for (int greedy = 0; greedy <= 1; greedy++)
      for (int gpu = 0; gpu <= 1; gpu++) {
        ut_map(h, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu));
        every_gpu_used(h);
      }
  mpibind_finalize(h);
}
END_TEST

/* The same kind, written for the test: 2 packages, 2 NVIDIA GPUs and an
 * HCA on host bridges of the Machine. */
START_TEST(no_locality_machine_bus)
{
  mpibind_t *h = ut_open("gpu-machine.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;1");
  for (int n = 1; n <= 16; n++) {
    ut_map(h, UT_IN(.ntasks = n));
    every_gpu_used(h);
  }
  mpibind_finalize(h);
}
END_TEST

/* GPUs on each package above its 2 sub-NUMA clusters: each task gets
 * its own package's GPUs (the nearest). */
START_TEST(above_subnuma_domains)
{
  mpibind_t *h = ut_open("gpu-snc.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "2", "0,2;4,6;8,10;12,14", "0;1;2;3");
  ut_map(h, UT_IN(.ntasks = 8));
  ut_expect(h, "1", "0;2;4;6;8;10;12;14", "0;0;1;1;2;2;3;3");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "8;4;4", "0-7;8-11;12-15", "0,1;2;3");
  ut_map(h, UT_IN(.ntasks = 2));
  ut_expect(h, "8", "0-7;8-15", "0,1;2,3");
  for (int n = 1; n <= 16; n++) {
    ut_map(h, UT_IN(.ntasks = n, .greedy = n % 2));
    every_gpu_used(h);
  }
  mpibind_finalize(h);
}
END_TEST

/* Corona, a job on a few cores holding the node's 4 GPUs. */
START_TEST(allocated_outside_the_restriction)
{
  mpibind_t *h = ut_open("epyc-corona.xml");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "ROCR_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 8, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3;3;2;2;0;0;1;1");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "44-47"));
  ut_expect(h, "2", "44-45;46-47", "3,2;0,1");
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "0-3"));
  ut_expect(h, "1", "0;1;2;3", "0;1;2;3");
  for (int n = 1; n <= 8; n++)
    for (int l = 0; l < 2; l++) {
      ut_map(h, UT_IN(.ntasks = n, .restrict_ids = l ? "0-3" : "44-47"));
      every_gpu_used(h);
    }
  /* The variable names the allocation's GPUs, the task's own first. */
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_set_env_vars(h), 0);
  char **v = mpibind_get_env_var_values(h, "ROCR_VISIBLE_DEVICES");
  ck_assert_str_eq(v[0], "3,2");
  ck_assert_str_eq(v[1], "0,1");
  mpibind_finalize(h);
}
END_TEST

/* A user's restriction selects the tasks' CPUs, not the job's GPUs: the
 * same answers without an allocation. */
START_TEST(restriction_keeps_the_job_gpus)
{
  mpibind_t *h = ut_open("epyc-corona.xml");
  ut_map(h, UT_IN(.ntasks = 8, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3;3;2;2;0;0;1;1");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "44-47"));
  ut_expect(h, "2", "44-45;46-47", "3,2;0,1");
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "0-3"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "1", "0;1;2;3", "0;1;2;3");
  /* by NUMA node: node 4 (CPUs 24-29) has no GPU; package 1's are
   * nearer (2, 3) */
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "4",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "1", "24-25;26-27;28;29", "2;3;0;1");
  mpibind_finalize(h);
  h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "2,0;3,1");
  ut_map(h, UT_IN(.ntasks = 6, .restrict_ids = "8-23"));
  ut_expect(h, "1", "8;9;12;13;16-17;20-21", "0;0;2;1;1;3");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 2, .restrict_ids = "8",
                  .restrict_type = MPIBIND_RESTRICT_MEM));
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "2,0;3,1");
  /* an allocation still limits the job to its GPUs */
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "1,2"), 0);
  ut_map(h, UT_IN(.ntasks = 4, .restrict_ids = "8-23"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "1", "8;12;16;20", "1;1;2;2");
  mpibind_finalize(h);
}
END_TEST

/* The job's CPUs (a launch on part of a shared node) remove the GPUs
 * local only to CPUs outside the job, which may be another job's, unless
 * the allocation names them. */
START_TEST(job_cpus_without_allocation)
{
  mpibind_t *h = ut_open("epyc-corona.xml");
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  hwloc_bitmap_set_range(cpus, 44, 47);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  ut_map(h, UT_IN(.ntasks = 8));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 1);
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3");
  hwloc_bitmap_zero(cpus);
  hwloc_bitmap_set_range(cpus, 0, 3);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 0);
  ut_expect(h, "1", "0;1;2;3", NULL);
  /* job CPUs: package 1; the user's list removes GPU 2's NUMA node but
   * not the job's hold on it; GPUs 0 and 1 are not the job's */
  hwloc_bitmap_zero(cpus);
  hwloc_bitmap_set_range(cpus, 24, 47);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  ut_map(h, UT_IN(.ntasks = 8, .restrict_ids = "44-47"));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3;3;3;3;2;2;2;2");
  /* with the allocation, the job holds every GPU */
  hwloc_bitmap_zero(cpus);
  hwloc_bitmap_set_range(cpus, 44, 47);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "ROCR_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 8));
  ut_expect(h, "1", "44;44;45;45;46;46;47;47", "3;3;2;2;0;0;1;1");
  hwloc_bitmap_free(cpus);
  mpibind_finalize(h);
}
END_TEST

/* The job's CPUs are a restriction too: the allocated GPUs outside them
 * stay the job's. */
START_TEST(job_cpus_with_allocation)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  hwloc_bitmap_set_range(cpus, 96, 175);
  ck_assert_int_eq(mpibind_set_job_cpus(h, cpus), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 2);
  ut_expect(h, "10", ut_fmt("%s;%s", ut_seq(96, 132, 4, 1),
                            ut_seq(136, 172, 4, 1)), "2;3");
  ck_assert_int_eq(mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES",
                                               "0,1,2,3"), 0);
  ut_map(h, UT_IN(.ntasks = 4));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  every_gpu_used(h);
  hwloc_bitmap_free(cpus);
  mpibind_finalize(h);
}
END_TEST

/* A GPU beside CPU-less memory, with and without a restriction (which
 * cannot be about it: restricting to every CPU changes nothing). */
START_TEST(beside_cpuless_memory)
{
  mpibind_t *h = ut_open("gpu-zero-weight.xml");
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;0");
  ut_map(h, UT_IN(.ntasks = 3, .restrict_ids = "0-15"));
  ut_expect(h, "2;2;4", "0,2;4,6;8,10,12,14", "0;0;0");
  mpibind_finalize(h);
}
END_TEST

/* Step 5 used every GPU and gave every task one: the original's answer
 * stays, uneven counts included. */
START_TEST(every_gpu_used_unchanged)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 5, .gpu_optim = 0));
  ut_expect(h, "6;6;6;10;10",
            ut_fmt("%s;%s;%s;%s;%s", ut_seq(8, 32, 4, 1), ut_seq(36, 60, 4, 1),
                   ut_seq(64, 84, 4, 1), ut_seq(96, 132, 4, 1),
                   ut_seq(136, 172, 4, 1)),
            "0;0;1;2;3");
  ut_map(h, UT_IN(.ntasks = 3, .nthreads = 1, .greedy = 0, .gpu_optim = 0));
  ut_expect(h, "1", "8,16,24,32,40;48,56,64,72,80;96", "0;1;2,3");
  mpibind_finalize(h);
}
END_TEST

/* Step 5 left GPUs to no task: tasks in other domains. */
START_TEST(tasks_elsewhere)
{
  /* Tioga, 3 tasks on domains 0-2: domain 3's GPUs 0 and 1 go to the
   * first tasks (3, 3 and 2 GPUs). */
  mpibind_t *h = ut_open("eas-tioga.xml");
  ut_map(h, UT_IN(.ntasks = 3, .greedy = 0));
  ut_expect(h, "16", "0-15;16-31;32-47", "4,5,0;2,3,1;6,7");
  mpibind_finalize(h);
  /* Lassen, one task on socket 0's domain: all 4 GPUs */
  h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 1, .greedy = 0));
  ut_expect(h, "20", ut_seq(8, 84, 4, 1), "0,1,2,3");
  mpibind_finalize(h);
}
END_TEST

/* A task left without a GPU while the job has one (JUSUF: one GPU among 8
 * NUMA domains, local to NUMA node 3). */
START_TEST(task_without_gpu)
{
  mpibind_t *h = ut_open("one-gpu-eight-domains.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 1);
  ut_expect(h, "128", "0-63,128-191;64-127,192-255", "0;0");
  ut_map(h, UT_IN(.ntasks = 4, .greedy = 0, .gpu_optim = 0));
  ut_expect(h, "16", "0-15;16-31;32-47;48-63", "0");
  /* gpu_optim puts every task where the GPU is: nothing to do */
  ut_map(h, UT_IN(.ntasks = 4, .greedy = 0));
  ut_expect(h, "4", "48-51;52-55;56-59;60-63", "0");
  mpibind_finalize(h);
}
END_TEST

/* A GPU local to the task before an equally deep one that is not (task
 * 1 spans both packages: GPU 1 on package 0 is local to it, GPU 0 in
 * package 1's last cluster is not, and comes first in PCI order). */
START_TEST(local_gpu_first)
{
  mpibind_t *h = ut_open("gpu-local-first.xml");
  ut_map(h, UT_IN(.ntasks = 4));
  ut_expect(h, "4;4;2;2", "0-3;4-7;8-9;10-11", "1;1;0;0");
  mpibind_finalize(h);
}
END_TEST

/* ---- every GPU node, many inputs ----------------------------------------- */

/* The real nodes: the machines of tests/data/topologies and the GPU
 * nodes of tests/data/cases.  (This suite's small files hold nodes the
 * original maps with every GPU used and every task given one, but a
 * task two GPUs while others share: its answer stays, see above.) */
static const char *gpu_cases[] = {"gpus-without-locality.xml", "pci-only-gpus.xml",
                                  "mixed-backends.xml", "one-gpu-eight-domains.xml"};
static char **files;
static int nfiles;

/* 0, or -1 with a message on stderr (outside any test: no ck_assert). */
static int collect_files(void)
{
  int n = 0;
  char **f = ut_topology_files(&n);
  const char *cases = getenv("CASES");
  if (!f || !cases) {
    fprintf(stderr, "the topology files or $CASES are missing\n");
    return -1;
  }
  int ncases = (int)(sizeof gpu_cases / sizeof *gpu_cases);
  files = calloc((size_t)(n + ncases), sizeof *files);
  if (!files)
    return -1;
  const char *real = getenv("TOPOLOGIES");
  for (int i = 0; i < n; i++) {
    if (real && strncmp(f[i], real, strlen(real)) == 0)
      files[nfiles++] = f[i];
    else
      free(f[i]);
  }
  free(f);
  for (int i = 0; i < ncases; i++)
    if (asprintf(&files[nfiles++], "%s/%s", cases, gpu_cases[i]) < 0)
      return -1;
  return 0;
}

/* A node's GPUs, read from its file with hwloc (not through the
 * library): each one's name (the library's ID kind name: the OS
 * device's, or the PCI bus id of a GPU seen only on the bus) and the
 * CPUs of its locality, NULL where it has none (its PCI bus on an object
 * holding every CPU, or none). */
struct node {
  hwloc_topology_t topo;
  int k;
  char **name;
  hwloc_bitmap_t *near;
};

static hwloc_obj_t gpu_object(hwloc_topology_t t, const char *name)
{
  for (hwloc_obj_t o = hwloc_get_next_osdev(t, NULL); o;
       o = hwloc_get_next_osdev(t, o))
    if (o->name && strcmp(o->name, name) == 0)
      return o;
  return hwloc_get_pcidev_by_busidstring(t, name);
}

/* The library's GPU list on the unrestricted node, h mapped on it. */
static void node_read(struct node *nd, mpibind_t *h, const char *path)
{
  ck_assert_int_eq(hwloc_topology_init(&nd->topo), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(nd->topo), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(nd->topo, path), 0);
  ck_assert_int_eq(hwloc_topology_load(nd->topo), 0);
  nd->k = mpibind_get_num_gpus(h);
  nd->name = calloc((size_t)nd->k + 1, sizeof *nd->name);
  nd->near = calloc((size_t)nd->k + 1, sizeof *nd->near);
  hwloc_const_bitmap_t all = hwloc_topology_get_topology_cpuset(nd->topo);
  for (int g = 0; g < nd->k; g++) {
    nd->name[g] = strdup(mpibind_get_gpu_id(h, g, MPIBIND_ID_NAME));
    hwloc_obj_t o = gpu_object(nd->topo, nd->name[g]);
    ck_assert_msg(o != NULL, "%s: GPU %s not in the file", path, nd->name[g]);
    hwloc_obj_t loc = hwloc_get_non_io_ancestor_obj(nd->topo, o);
    if (!hwloc_bitmap_iszero(loc->cpuset) && !hwloc_bitmap_isequal(loc->cpuset, all))
      nd->near[g] = hwloc_bitmap_dup(loc->cpuset);
  }
}

static void node_free(struct node *nd)
{
  for (int g = 0; g < nd->k; g++) {
    free(nd->name[g]);
    hwloc_bitmap_free(nd->near[g]);
  }
  free(nd->name);
  free(nd->near);
  hwloc_topology_destroy(nd->topo);
}

/* Is the node's GPU g local to these CPUs (it has locality, and it
 * shares CPUs with them)? */
static int local(const struct node *nd, int g, hwloc_const_bitmap_t cpus)
{
  return nd->near[g] && hwloc_bitmap_intersects(nd->near[g], cpus);
}

/* What the rule promises for any mapping of a GPU node (h mapped):
 *  - every GPU of the node is the job's (a user's restriction removes
 *    none), every GPU is used, every task has one;
 *  - ntasks >= ngpus: one GPU per task, the counts per GPU within one
 *    (k tasks: one each; 2k: two each); fewer tasks: task t has
 *    split(ngpus, ntasks, t), none shared;
 *  - locality: a task holds a GPU that is not local to its CPUs only
 *    where no local GPU could be its instead: every GPU local to it
 *    serves as many tasks as that one (taking it would unbalance the
 *    counts), and only tasks it is local to. */
static void check_share(mpibind_t *h, const struct node *nd, const char *what)
{
  int n = mpibind_get_ntasks(h), k = nd->k;
  ck_assert_msg(mpibind_get_num_gpus(h) == k, "%s: %d GPUs, the node has %d",
                what, mpibind_get_num_gpus(h), k);
  hwloc_bitmap_t *cpus = mpibind_get_cpus(h);
  hwloc_bitmap_t *mine = calloc((size_t)n, sizeof *mine); /* node GPU indexes */
  int *count = calloc((size_t)k, sizeof(int));
  int **holder = calloc((size_t)k, sizeof(int *)); /* tasks per GPU */
  for (int g = 0; g < k; g++)
    holder[g] = calloc((size_t)n + 1, sizeof(int));
  for (int t = 0; t < n; t++) {
    mine[t] = hwloc_bitmap_alloc();
    int m = -1;
    char **ids = mpibind_get_gpus_ptask(h, t, &m);
    ck_assert_msg(m >= 0, "%s: %s", what, mpibind_get_error(h));
    for (int i = 0; i < m; i++) {
      int g = 0;
      while (g < k && strcmp(nd->name[g], ids[i]) != 0)
        g++;
      ck_assert_msg(g < k, "%s: task %d: GPU %s is not the node's", what, t, ids[i]);
      hwloc_bitmap_set(mine[t], (unsigned)g);
      holder[g][count[g]++] = t;
    }
    ck_assert_msg(n >= k ? m == 1 : m >= 1, "%s: task %d has %d GPUs", what, t, m);
  }
  for (int g = 0; g < k; g++) {
    ck_assert_msg(count[g] >= 1, "%s: GPU %s idle", what, nd->name[g]);
    for (int x = 0; x < k; x++)
      ck_assert_msg(count[g] - count[x] <= 1, "%s: GPU %s serves %d tasks, %s %d",
                    what, nd->name[g], count[g], nd->name[x], count[x]);
  }
  for (int t = 0; t < n; t++) {
    int g;
    hwloc_bitmap_foreach_begin(g, mine[t])
    {
      if (local(nd, g, cpus[t]))
        continue;
      for (int x = 0; x < k; x++) {
        if (x == g || !local(nd, x, cpus[t]) || hwloc_bitmap_isset(mine[t], (unsigned)x))
          continue;
        ck_assert_msg(n < k || count[x] >= count[g],
                      "%s: task %d (cpus %s) has GPU %s, not local to it, while "
                      "%s, local, serves fewer tasks",
                      what, t, ut_cpus_str(h, t), nd->name[g], nd->name[x]);
        for (int i = 0; i < count[x]; i++)
          ck_assert_msg(local(nd, x, cpus[holder[x][i]]),
                        "%s: task %d (cpus %s) has GPU %s, not local to it, while "
                        "%s, local, is task %d's (cpus %s), not local to that one",
                        what, t, ut_cpus_str(h, t), nd->name[g], nd->name[x],
                        holder[x][i], ut_cpus_str(h, holder[x][i]));
      }
    }
    hwloc_bitmap_foreach_end();
  }
  for (int t = 0; t < n; t++)
    hwloc_bitmap_free(mine[t]);
  for (int g = 0; g < k; g++)
    free(holder[g]);
  free(holder);
  free(mine);
  free(count);
}

static void sweep_map(mpibind_t *h, const struct node *nd, const char *path,
                      ut_in in)
{
  ut_map(h, in);
  check_share(h, nd, ut_fmt("%s: ntasks %d greedy %d gpu_optim %d restrict %s %s",
                            strrchr(path, '/') + 1, in.ntasks, in.greedy,
                            in.gpu_optim, in.restrict_type ? "mem" : "cpu",
                            in.restrict_ids ? in.restrict_ids : "-"));
}

/* Every GPU node: 1 to 2k tasks (k GPUs), greedy and gpu_optim 0 and 1;
 * restricted to each NUMA node with CPUs, to the first and the last 4
 * PUs, with 1, 2, k and 2k tasks. */
START_TEST(every_gpu_node)
{
  const char *path = files[_i];
  mpibind_t *h = ut_open(path);
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ut_map(h, UT_IN(.ntasks = 1));
  if (mpibind_get_num_gpus(h) == 0) {
    mpibind_finalize(h);
    return;
  }
  struct node nd;
  node_read(&nd, h, path);
  int k = nd.k;
  for (int n = 1; n <= 2 * k || n <= 4; n++)
    for (int greedy = 0; greedy <= 1; greedy++)
      for (int gpu = 0; gpu <= 1; gpu++)
        sweep_map(h, &nd, path, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu));
  char *lists[64];
  int types[64], nl = 0;
  hwloc_const_bitmap_t pus = hwloc_topology_get_topology_cpuset(nd.topo);
  hwloc_bitmap_t first = hwloc_bitmap_alloc(), last = hwloc_bitmap_alloc();
  int npus = hwloc_bitmap_weight(pus), i = 0, pu;
  hwloc_bitmap_foreach_begin(pu, pus)
  {
    hwloc_bitmap_set(i < 4 ? first : last, (unsigned)pu);
    if (i++ < npus - 4)
      hwloc_bitmap_clr(last, (unsigned)pu);
  }
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_list_asprintf(&lists[nl], first);
  types[nl++] = MPIBIND_RESTRICT_CPU;
  hwloc_bitmap_list_asprintf(&lists[nl], last);
  types[nl++] = MPIBIND_RESTRICT_CPU;
  hwloc_bitmap_free(first);
  hwloc_bitmap_free(last);
  for (hwloc_obj_t o = hwloc_get_next_obj_by_type(nd.topo, HWLOC_OBJ_NUMANODE, NULL);
       o && nl < 64; o = hwloc_get_next_obj_by_type(nd.topo, HWLOC_OBJ_NUMANODE, o))
    if (!hwloc_bitmap_iszero(o->cpuset)) {
      lists[nl] = ut_fmt("%u", o->os_index);
      types[nl++] = MPIBIND_RESTRICT_MEM;
    }
  int ns[] = {1, 2, k, 2 * k};
  for (int l = 0; l < nl; l++)
    for (int i = 0; i < 4; i++)
      for (int greedy = 0; greedy <= 1; greedy++)
        sweep_map(h, &nd, path, UT_IN(.ntasks = ns[i], .greedy = greedy,
                                      .restrict_ids = lists[l],
                                      .restrict_type = types[l]));
  for (int l = 0; l < 2; l++)
    free(lists[l]);
  node_free(&nd);
  mpibind_finalize(h);
}
END_TEST

START_TEST(ids_not_unique)
{
  mpibind_t *h = ut_open("gpu-same-uuid.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_get_num_gpus(h), 4);
  ut_expect(h, "2", "0,2;4,6", "0,1;2,3"); /* visible indexes */
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_UNIV), 0);
  int n = -1;
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 0, &n));
  ck_assert_int_eq(mpibind_get_errno(h), EINVAL);
  const char *m = mpibind_get_error(h);
  ck_assert_msg(strstr(m, "uuid") && strstr(m, "0x1a2b3c4d") &&
                    strstr(m, "rsmi0") && strstr(m, "rsmi1") &&
                    strstr(m, "index") && strstr(m, "name") &&
                    !strchr(m, '\n'),
                "message '%s'", m);
  ck_assert_int_eq(mpibind_mapping_snprint(NULL, 0, h), -1);
  /* one GPU's id stays readable; the kinds that tell them apart work */
  ck_assert_str_eq(mpibind_get_gpu_id(h, 3, MPIBIND_ID_UNIV), "0x5e6f7a8b");
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_PCIBUS), 0);
  ck_assert_ptr_null(mpibind_get_gpus_ptask(h, 0, &n));
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "0000:01:00.0"));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  ut_expect(h, "2", "0,2;4,6", "rsmi0,rsmi1;rsmi2,rsmi3");
  ck_assert_int_gt(mpibind_mapping_snprint(NULL, 0, h), 0);
  mpibind_finalize(h);
  /* Unknown UUIDs ("") may repeat, as before. */
  h = ut_open("gpu-rules.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_UNIV), 0);
  ck_assert_ptr_nonnull(mpibind_get_gpus_ptask(h, 1, &n));
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("gpushare");
  TCase *tc = ut_tcase("gpushare");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, no_locality_juropa3);
  tcase_add_test(tc, no_locality_machine_bus);
  tcase_add_test(tc, above_subnuma_domains);
  tcase_add_test(tc, allocated_outside_the_restriction);
  tcase_add_test(tc, restriction_keeps_the_job_gpus);
  tcase_add_test(tc, job_cpus_without_allocation);
  tcase_add_test(tc, job_cpus_with_allocation);
  tcase_add_test(tc, beside_cpuless_memory);
  tcase_add_test(tc, every_gpu_used_unchanged);
  tcase_add_test(tc, tasks_elsewhere);
  tcase_add_test(tc, task_without_gpu);
  tcase_add_test(tc, local_gpu_first);
  tcase_add_test(tc, ids_not_unique);
  suite_add_tcase(s, tc);
  if (collect_files())
    return 1;
  TCase *sweep = ut_tcase("sweep");
  tcase_set_timeout(sweep, 120);
  tcase_add_loop_test(sweep, every_gpu_node, 0, nfiles);
  suite_add_tcase(s, sweep);
  int rc = ut_run(s);
  ut_files_free(files, nfiles);
  return rc;
}
