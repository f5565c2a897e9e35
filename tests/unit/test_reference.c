/*
 * test_reference.c - the library against a second, independent reading of
 * docs/algorithm.md steps 0-5, written here directly on hwloc (it shares no
 * code with lib/), over every topology file and many inputs: same
 * nthreads, same CPUs, same GPUs (by OS device name, in task order).
 *
 * The reference is deliberately plain: arrays of hwloc objects, the rules
 * in the order docs/algorithm.md states them, plus one the library adds to step
 * 4 (a CPU-less NUMA node hwloc 2 hangs from the Machine is no domain).  Visible indexes are compared on
 * unrestricted topologies only (docs/algorithm.md leaves open whether OpenCL
 * and DRM positions count the GPUs a restriction removed).
 *
 * The rules of "Beyond the original" for nodes the original maps badly
 * are written here again, each in its own terms rather than the
 * library's: restrictions hwloc cannot apply (restrict_safely), CPUs
 * without a NUMA node (numaless_domains, top down where the library goes
 * up from each PU), hardware threads from every core (hw_smt_of), tasks in
 * proportion to uneven cores, PCI-only GPUs (pci_gpu) and one numbering
 * per vendor (gpu_list), no GPU left idle (share_stranded).  They change
 * nothing where the original maps correctly, which the real machines
 * here check.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* ---- the reference ------------------------------------------------------ */

struct rgpu {
  hwloc_obj_t os, pci, loc;
  hwloc_obj_t bloc; /* loc in the unrestricted topology */
  int rank; /* backend: 0 NVML/RSMI, 1 LevelZero, 2 CUDA, 3 OpenCL, 4 DRM */
  char visible[32];
  char *name; /* a copy: the reference's topology is gone when compared */
};

struct ref {
  int ntasks, ngpus;
  struct rgpu *gpu;
  int *nth;
  hwloc_bitmap_t *cpus;
  int **gpus; /* per task: GPU list positions in order, -1 terminated */
  int *ngpu_task;
};

static void ref_free(struct ref *r)
{
  for (int g = 0; g < r->ngpus; g++)
    free(r->gpu[g].name);
  free(r->gpu);
  for (int i = 0; i < r->ntasks; i++) {
    if (r->cpus)
      hwloc_bitmap_free(r->cpus[i]);
    if (r->gpus)
      free(r->gpus[i]);
  }
  free(r->nth);
  free(r->cpus);
  free(r->gpus);
  free(r->ngpu_task);
}

static int split(int n, int k, int j) { return n / k + (j < n % k); }

static int backend_rank(hwloc_obj_t os)
{
  static const char *sub[] = {"NVML", "RSMI", "LevelZero", "CUDA", "OpenCL"};
  static const int subrank[] = {0, 0, 1, 2, 3};
  static const char *pre[] = {"nvml", "rsmi", "ze", "cuda", "opencl", "renderD"};
  static const int prerank[] = {0, 0, 1, 2, 3, 4};
  if (os->subtype)
    for (int i = 0; i < 5; i++)
      if (strcmp(os->subtype, sub[i]) == 0)
        return subrank[i];
  if (!os->name)
    return -1;
  for (int i = 0; i < 6; i++)
    if (strncmp(os->name, pre[i], strlen(pre[i])) == 0)
      return prerank[i];
  return -1; /* card*, controlD*, anything else */
}

static int busid_less(hwloc_obj_t a, hwloc_obj_t b)
{
  struct hwloc_pcidev_attr_s *x = &a->attr->pcidev, *y = &b->attr->pcidev;
  if (x->domain != y->domain) return x->domain < y->domain;
  if (x->bus != y->bus) return x->bus < y->bus;
  if (x->dev != y->dev) return x->dev < y->dev;
  return x->func < y->func;
}

/* Beyond the original: a PCI function of class 3D (0302) or other display
 * (0380) from NVIDIA, AMD or Intel, or VGA (0300) from NVIDIA or AMD, is a
 * GPU when no OS device is. */
static int pci_gpu(hwloc_obj_t pci)
{
  unsigned v = pci->attr->pcidev.vendor_id, c = pci->attr->pcidev.class_id;
  if (v != 0x10de && v != 0x1002 && v != 0x8086)
    return 0;
  return c == 0x0302 || c == 0x0380 || (c == 0x0300 && v != 0x8086);
}

/* Did the GPU on this PCI bus id have a CPU object with CPUs in base? */
static int had_cpus(hwloc_topology_t base, hwloc_obj_t pci)
{
  struct hwloc_pcidev_attr_s *a = &pci->attr->pcidev;
  for (hwloc_obj_t p = hwloc_get_next_pcidev(base, NULL); p; p = hwloc_get_next_pcidev(base, p)) {
    struct hwloc_pcidev_attr_s *b = &p->attr->pcidev;
    if (a->domain == b->domain && a->bus == b->bus && a->dev == b->dev && a->func == b->func)
      return !hwloc_bitmap_iszero(hwloc_get_non_io_ancestor_obj(base, p)->cpuset);
  }
  return 0;
}

/* Step 3 (base: the unrestricted topology, or t itself). */
static int gpu_list(hwloc_topology_t t, hwloc_topology_t base, struct rgpu **out)
{
  int n = 0;
  struct rgpu *c = NULL;
  for (hwloc_obj_t os = hwloc_get_next_osdev(t, NULL); os; os = hwloc_get_next_osdev(t, os)) {
    if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_GPU &&
        os->attr->osdev.type != HWLOC_OBJ_OSDEV_COPROC)
      continue;
    if (!os->parent || os->parent->type != HWLOC_OBJ_PCI_DEVICE)
      continue;
    int r = backend_rank(os);
    if (r < 0)
      continue;
    c = realloc(c, (n + 1) * sizeof *c);
    c[n++] = (struct rgpu){.os = os, .pci = os->parent, .rank = r,
                           .loc = hwloc_get_non_io_ancestor_obj(t, os)};
  }
  int npci = 0;
  for (hwloc_obj_t p = hwloc_get_next_pcidev(t, NULL); p; p = hwloc_get_next_pcidev(t, p))
    npci++;
  struct rgpu *g = calloc(n + npci + 1, sizeof *g);
  int k = 0;
  for (int i = 0; i < n; i++) {
    int best = c[i].rank;
    for (int j = 0; j < n; j++)
      if (c[j].pci == c[i].pci && c[j].rank < best)
        best = c[j].rank;
    if (c[i].rank == best)
      g[k++] = c[i];
  }
  free(c);
  for (hwloc_obj_t p = hwloc_get_next_pcidev(t, NULL); p; p = hwloc_get_next_pcidev(t, p)) {
    int has = 0;
    for (int i = 0; i < k; i++)
      has |= g[i].pci == p;
    if (!has && pci_gpu(p))
      g[k++] = (struct rgpu){.os = NULL, .pci = p, .rank = 5,
                             .loc = hwloc_get_non_io_ancestor_obj(t, p)};
  }
  /* On a restricted topology, a GPU whose CPU object lost all its CPUs is
   * gone (hwloc kept it only for the memory beside it). */
  if (t != base) {
    int kept = 0;
    for (int i = 0; i < k; i++)
      if (!hwloc_bitmap_iszero(g[i].loc->cpuset) || !had_cpus(base, g[i].pci))
        g[kept++] = g[i];
    k = kept;
  }
  /* Visible indexes: a vendor's library numbers (NVML, RSMI, LevelZero,
   * CUDA: the digits of the name) when all of its GPUs have one and no
   * two the same; else, beyond the original, bus positions for all. */
  for (int i = 0; i < k; i++) {
    char bus[32];
    struct hwloc_pcidev_attr_s *a = &g[i].pci->attr->pcidev;
    snprintf(bus, sizeof bus, "%04x:%02x:%02x.%x", a->domain, a->bus, a->dev, a->func);
    g[i].name = strdup(g[i].os ? g[i].os->name : bus);
  }
  for (int i = 0; i < k; i++) {
    const char *name = g[i].name;
    const char *digits = name;
    while (*digits && !isdigit((unsigned char)*digits))
      digits++;
    int by_name = 1;
    for (int j = 0; j < k; j++) {
      if (g[j].pci->attr->pcidev.vendor_id != g[i].pci->attr->pcidev.vendor_id)
        continue;
      const char *dj = g[j].name;
      while (*dj && !isdigit((unsigned char)*dj))
        dj++;
      if (g[j].rank > 2 || !*dj)
        by_name = 0;
      for (int l = 0; l < j && by_name; l++) {
        const char *dl = g[l].name;
        while (*dl && !isdigit((unsigned char)*dl))
          dl++;
        if (g[l].pci->attr->pcidev.vendor_id == g[j].pci->attr->pcidev.vendor_id &&
            strcmp(dl, dj) == 0)
          by_name = 0;
      }
    }
    if (by_name) {
      snprintf(g[i].visible, sizeof g[i].visible, "%s", digits);
    } else {
      int pos = 0;
      for (int j = 0; j < k; j++)
        if (j != i && g[j].pci->attr->pcidev.vendor_id == g[i].pci->attr->pcidev.vendor_id &&
            (busid_less(g[j].pci, g[i].pci) || (g[j].pci == g[i].pci && j < i)))
          pos++;
      snprintf(g[i].visible, sizeof g[i].visible, "%d", pos);
    }
  }
  for (int i = 0; i < k; i++)
    g[i].bloc = g[i].loc;
  if (t != base) {
    /* Beyond the original (no GPU left idle): after this list, in their
     * unrestricted order, the GPUs the restriction removed (a user's
     * restriction selects the tasks' CPUs, not the job's GPUs), as the
     * unrestricted topology has them. */
    struct rgpu *b;
    int nb = gpu_list(base, base, &b);
    g = realloc(g, (k + nb + 1) * sizeof *g);
    for (int i = 0; i < nb; i++) {
      int here = 0;
      for (int j = 0; j < k; j++)
        here |= strcmp(g[j].name, b[i].name) == 0;
      for (int j = 0; j < k; j++)
        if (strcmp(g[j].name, b[i].name) == 0)
          g[j].bloc = b[i].loc;
      if (!here) {
        g[k++] = b[i];
      } else {
        free(b[i].name);
      }
    }
    free(b);
  }
  *out = g;
  return k;
}

static int in_subtree(hwloc_obj_t o, hwloc_obj_t root)
{
  for (; o; o = o->parent)
    if (o == root)
      return 1;
  return 0;
}

/* Objects of depth d inside set s: non-empty cpuset included in s. */
static int inside(hwloc_topology_t t, int d, hwloc_const_bitmap_t s, hwloc_obj_t *objs)
{
  int m = 0;
  for (hwloc_obj_t o = hwloc_get_obj_by_depth(t, d, 0); o; o = o->next_cousin)
    if (!hwloc_bitmap_iszero(o->cpuset) && hwloc_bitmap_isincluded(o->cpuset, s)) {
      if (objs)
        objs[m] = o;
      m++;
    }
  return m;
}

/* Beyond the original: the largest number of PUs of any core, not the
 * first core's. */
static int hw_smt_of(hwloc_topology_t t)
{
  int d = hwloc_get_type_or_below_depth(t, HWLOC_OBJ_CORE), hw = 1;
  int n = hwloc_get_nbobjs_by_depth(t, d);
  for (int i = 0; i < n; i++) {
    hwloc_obj_t o = hwloc_get_obj_by_depth(t, d, i);
    int pus = hwloc_bitmap_weight(o->cpuset);
    if (pus > hw)
      hw = pus;
  }
  return hw;
}

static void add_gpu(struct ref *r, int task, int g)
{
  r->gpus[task] = realloc(r->gpus[task], (r->ngpu_task[task] + 2) * sizeof(int));
  r->gpus[task][r->ngpu_task[task]++] = g;
}

static void first_pus(hwloc_obj_t o, int p, hwloc_bitmap_t out)
{
  int n = 0, pu;
  hwloc_bitmap_foreach_begin(pu, o->cpuset) {
    if (n++ == p)
      break;
    hwloc_bitmap_set(out, pu);
  }
  hwloc_bitmap_foreach_end();
}

/* Step 0. */
static hwloc_topology_t load(const char *path)
{
  hwloc_topology_t t;
  hwloc_topology_init(&t);
  hwloc_topology_set_all_types_filter(t, HWLOC_TYPE_FILTER_KEEP_STRUCTURE);
  hwloc_topology_set_type_filter(t, HWLOC_OBJ_PCI_DEVICE, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  hwloc_topology_set_type_filter(t, HWLOC_OBJ_OS_DEVICE, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  hwloc_topology_set_xml(t, path);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  return t;
}

/* The restricted copy of reference() and its set, freed on any return. */
static int restricted_fails(hwloc_topology_t t, hwloc_bitmap_t set)
{
  hwloc_bitmap_free(set);
  hwloc_topology_destroy(t);
  return -1;
}

/* Step 2's hwloc_topology_restrict, as the original calls it, where that
 * works; beyond the original, where CPUs lack a NUMA node (hwloc would
 * abort or refuse), the same rule said otherwise:
 *  - by CPUs, when no NUMA node keeps a CPU, the CPUs alone (the NUMA
 *    nodes stay, CPU-less: no domain);
 *  - by NUMA nodes, first the nodes (no flag), then the PUs left without a
 *    local node.  Nothing left: an error. */
static int restrict_safely(hwloc_topology_t t, hwloc_bitmap_t set, int mem)
{
  int numaless = 0, i = 0;
  for (hwloc_obj_t pu; (pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, i)); i++)
    numaless |= hwloc_bitmap_iszero(pu->nodeset);
  if (!mem) {
    int some = 0;
    for (int j = 0; j < hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE); j++)
      some |= hwloc_bitmap_intersects(
          hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, j)->cpuset, set);
    return hwloc_topology_restrict(t, set, some ? HWLOC_RESTRICT_FLAG_REMOVE_CPULESS : 0);
  }
  if (hwloc_bitmap_isincluded(hwloc_topology_get_topology_nodeset(t), set))
    return 0; /* every NUMA node: no memory goes, no CPU goes */
  if (!numaless)
    return hwloc_topology_restrict(t, set, HWLOC_RESTRICT_FLAG_BYNODESET |
                                               HWLOC_RESTRICT_FLAG_REMOVE_MEMLESS);
  hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
  for (int j = 0; j < hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU); j++) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, j);
    if (hwloc_bitmap_intersects(pu->nodeset, set))
      hwloc_bitmap_set(cpus, pu->os_index);
  }
  int rc = hwloc_bitmap_iszero(cpus) ||
           hwloc_topology_restrict(t, set, HWLOC_RESTRICT_FLAG_BYNODESET) ||
           hwloc_topology_restrict(t, cpus, 0);
  hwloc_bitmap_free(cpus);
  return rc ? -1 : 0;
}

/* Beyond the original: the CPUs no NUMA domain covers.  Top down, every
 * object not above a package (the machine when there is no package) whose
 * PUs are all uncovered and not yet taken is a domain.  They go, by their
 * first PU, before the first NUMA domain that comes after them.  Returns
 * the new number of domains. */
static int numaless_domains(hwloc_topology_t t, hwloc_obj_t *numa, hwloc_obj_t *root,
                            int nd, int cap)
{
  hwloc_bitmap_t left = hwloc_bitmap_dup(hwloc_topology_get_topology_cpuset(t));
  for (int i = 0; i < nd; i++)
    hwloc_bitmap_andnot(left, left, root[i]->cpuset);
  int pkg = hwloc_get_type_depth(t, HWLOC_OBJ_PACKAGE);
  int from = pkg >= 0 ? pkg : 0;
  hwloc_obj_t add[cap + 1];
  int na = 0;
  for (int depth = from; depth < hwloc_topology_get_depth(t) && !hwloc_bitmap_iszero(left); depth++)
    for (hwloc_obj_t o = hwloc_get_obj_by_depth(t, depth, 0); o; o = o->next_cousin)
      if (!hwloc_bitmap_iszero(o->cpuset) && hwloc_bitmap_isincluded(o->cpuset, left)) {
        add[na++] = o;
        hwloc_bitmap_andnot(left, left, o->cpuset);
      }
  hwloc_bitmap_free(left);
  /* by first PU */
  for (int i = 0; i < na; i++)
    for (int j = i + 1; j < na; j++)
      if (hwloc_bitmap_first(add[j]->cpuset) >= 0 &&
          hwloc_get_pu_obj_by_os_index(t, hwloc_bitmap_first(add[j]->cpuset))->logical_index <
              hwloc_get_pu_obj_by_os_index(t, hwloc_bitmap_first(add[i]->cpuset))->logical_index) {
        hwloc_obj_t x = add[i];
        add[i] = add[j];
        add[j] = x;
      }
  for (int a = 0; a < na; a++) {
    unsigned first = hwloc_get_pu_obj_by_os_index(t, hwloc_bitmap_first(add[a]->cpuset))->logical_index;
    int at = nd;
    for (int i = nd - 1; i >= 0; i--)
      if (numa[i] && hwloc_get_pu_obj_by_os_index(t, hwloc_bitmap_first(root[i]->cpuset))->logical_index > first)
        at = i;
    for (int i = nd; i > at; i--) {
      numa[i] = numa[i - 1];
      root[i] = root[i - 1];
    }
    numa[at] = NULL;
    root[at] = add[a];
    nd++;
  }
  return nd;
}

/* Beyond the original: no GPU left idle.  When step 5 left a GPU to no
 * task or a task without one, every GPU serves: with k0 >= G tasks, each
 * task one GPU and each GPU k0 / G tasks, k0 % G of them one more (the
 * first to need it); with fewer tasks, task i gets split(G, k0, i), each
 * GPU one task.  Each task in order keeps its own GPUs while it needs
 * them and they have room; then the nearest (task, GPU) pair that can
 * still be made, one at a time: local first (the GPU's locality shares
 * CPUs with the task), then the deepest ancestor of the GPU's locality
 * sharing CPUs with the task, then PCI bus order, then task order; found
 * here by scanning every candidate for the best one. */
static void nearness(hwloc_bitmap_t cpus, hwloc_obj_t loc, int *local, int *depth)
{
  *local = hwloc_bitmap_intersects(loc->cpuset, cpus);
  hwloc_obj_t o = loc;
  while (o->parent && !hwloc_bitmap_intersects(o->cpuset, cpus))
    o = o->parent;
  *depth = o->depth;
}

static void share_stranded(struct ref *r)
{
  int G = r->ngpus, k0 = r->ntasks, idle = 0;
  if (G == 0)
    return;
  char *has = calloc((size_t)k0 * G, 1);
  int *count = calloc(G, sizeof(int)), *want = calloc(k0, sizeof(int));
  for (int i = 0; i < k0; i++) {
    idle |= r->ngpu_task[i] == 0;
    for (int x = 0; x < r->ngpu_task[i]; x++)
      has[(size_t)i * G + r->gpus[i][x]] = 1;
  }
  for (int g = 0; g < G; g++) {
    int used = 0;
    for (int i = 0; i < k0; i++)
      used |= has[(size_t)i * G + g];
    idle |= !used;
  }
  if (!idle) {
    free(has);
    free(count);
    free(want);
    return;
  }
  int cap = k0 >= G ? k0 / G : 1, extra = k0 >= G ? k0 % G : 0;
  for (int i = 0; i < k0; i++) {
    want[i] = k0 >= G ? 1 : split(G, k0, i);
    for (int g = 0; g < G; g++) {
      if (!has[(size_t)i * G + g])
        continue;
      has[(size_t)i * G + g] = 0;
      if (want[i] > 0 && (count[g] < cap || (count[g] == cap && extra > 0))) {
        extra -= count[g] == cap;
        count[g]++;
        want[i]--;
        has[(size_t)i * G + g] = 1;
      }
    }
  }
  for (;;) {
    int bi = -1, bg = -1, bl = -1, bd = -1;
    for (int g = 0; g < G; g++) {
      if (count[g] > cap || (count[g] == cap && extra == 0))
        continue;
      for (int i = 0; i < k0; i++) {
        if (!want[i] || has[(size_t)i * G + g])
          continue;
        int l, d;
        nearness(r->cpus[i], r->gpu[g].bloc, &l, &d);
        int better = bi < 0 || l > bl || (l == bl && d > bd);
        if (bi >= 0 && l == bl && d == bd && g != bg)
          better = busid_less(r->gpu[g].pci, r->gpu[bg].pci) ||
                   (r->gpu[g].pci == r->gpu[bg].pci && g < bg);
        if (better) {
          bi = i;
          bg = g;
          bl = l;
          bd = d;
        }
      }
    }
    if (bi < 0)
      break;
    has[(size_t)bi * G + bg] = 1;
    want[bi]--;
    extra -= count[bg] == cap;
    count[bg]++;
  }
  for (int i = 0; i < k0; i++) {
    r->ngpu_task[i] = 0;
    for (int g = 0; g < G; g++)
      if (has[(size_t)i * G + g])
        add_gpu(r, i, g);
  }
  free(count);
  free(want);
  free(has);
}

/* Steps 1-5 on the loaded topology base (left unchanged); returns -1 on
 * an input error (no message needed here).  The caller frees r with
 * ref_free, whatever the return. */
static int reference(hwloc_topology_t base, ut_in in, struct ref *r)
{
  hwloc_topology_t t = base;
  if (in.ntasks < 1 || in.nthreads < 0 || in.smt < 0 || in.smt > hw_smt_of(t))
    return -1;
  if (in.restrict_ids && *in.restrict_ids) {
    ck_assert_int_eq(hwloc_topology_dup(&t, base), 0);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (hwloc_bitmap_list_sscanf(set, in.restrict_ids) < 0)
      return restricted_fails(t, set);
    hwloc_const_bitmap_t have = in.restrict_type ? hwloc_topology_get_topology_nodeset(t)
                                                 : hwloc_topology_get_topology_cpuset(t);
    if (!hwloc_bitmap_intersects(set, have))
      return restricted_fails(t, set);
    if (!in.restrict_type) {
      /* hwloc 2.9 asserts in a restriction by CPUs when a CPU-less NUMA
       * node sits in a CPU-less group (hwloc 1 exports): such nodes go
       * with REMOVE_CPULESS anyway, so remove them first, by nodeset. */
      hwloc_bitmap_t keep = hwloc_bitmap_alloc();
      int i = 0;
      for (hwloc_obj_t n; (n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i)); i++)
        if (!hwloc_bitmap_iszero(n->cpuset))
          hwloc_bitmap_set(keep, n->os_index);
      if (!hwloc_bitmap_iszero(keep)) /* else no NUMA node has CPUs: none goes */
        ck_assert_int_eq(hwloc_topology_restrict(t, keep, HWLOC_RESTRICT_FLAG_BYNODESET), 0);
      hwloc_bitmap_free(keep);
    }
    if (restrict_safely(t, set, in.restrict_type))
      return restricted_fails(t, set);
    hwloc_bitmap_free(set);
  }
  int hw = hw_smt_of(t), s = in.smt, k0 = in.ntasks;
  r->ntasks = k0;
  r->ngpus = gpu_list(t, base, &r->gpu);
  r->nth = calloc(k0, sizeof(int));
  r->cpus = calloc(k0, sizeof(hwloc_bitmap_t));
  r->gpus = calloc(k0, sizeof(int *));
  r->ngpu_task = calloc(k0, sizeof(int));
  for (int i = 0; i < k0; i++)
    r->cpus[i] = hwloc_bitmap_alloc();

  /* Step 4. */
  int nd = 0, nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
  int cap = nnuma + hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU) + 1;
  hwloc_obj_t *numa = calloc(cap, sizeof *numa), *root = calloc(cap, sizeof *root);
  for (int i = 0; i < nnuma; i++) {
    hwloc_obj_t n = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, i);
    if (hwloc_bitmap_iszero(n->cpuset))
      continue;
    int dup = 0;
    for (int j = 0; j < nd; j++)
      dup |= root[j] == n->parent;
    if (dup)
      continue;
    numa[nd] = n;
    root[nd++] = n->parent;
  }
  /* Beyond step 4's two rules (the library's fix of a gap they leave,
   * see test_domains.c cxl_on_machine_skipped): a domain whose root holds
   * another domain's root is none. */
  int kept = 0;
  for (int i = 0; i < nd; i++) {
    int holds = 0;
    for (int j = 0; j < nd; j++)
      holds |= root[j] != root[i] && in_subtree(root[j], root[i]);
    if (!holds) {
      numa[kept] = numa[i];
      root[kept++] = root[i];
    }
  }
  nd = kept;
  nd = numaless_domains(t, numa, root, nd, cap);
  if (nd == 0) {
    free(numa);
    free(root);
    if (t != base)
      hwloc_topology_destroy(t);
    return -1;
  }
  int gpu_on = in.gpu_optim && r->ngpus > 0;

  /* Step 5. */
  if (in.greedy && k0 < nd) {
    int d = 0;
    for (int task = 0; task < k0; task++) {
      int len = split(nd, k0, task);
      for (int j = d; j < d + len; j++)
        hwloc_bitmap_or(r->cpus[task], r->cpus[task], root[j]->cpuset);
      for (int g = 0; g < r->ngpus; g++)
        for (int j = d; j < d + len; j++)
          if (in_subtree(r->gpu[g].loc, root[j])) {
            add_gpu(r, task, g);
            break;
          }
      d += len;
      r->nth[task] = in.nthreads > 0 ? in.nthreads : hwloc_bitmap_weight(r->cpus[task]);
    }
    share_stranded(r);
    free(numa);
    free(root);
    if (t != base)
      hwloc_topology_destroy(t);
    return 0;
  }

  long long *w = calloc(nd, sizeof *w), W = 0;
  for (int d = 0; d < nd; d++) {
    if (gpu_on)
      for (int g = 0; g < r->ngpus; g++)
        w[d] += numa[d] ? hwloc_bitmap_isset(r->gpu[g].loc->nodeset, numa[d]->os_index)
                        : hwloc_bitmap_intersects(r->gpu[g].loc->cpuset, root[d]->cpuset);
    W += w[d];
  }
  if (!gpu_on || W == 0) {
    W = 0;
    for (int d = 0; d < nd; d++)
      W += w[d] = hwloc_bitmap_weight(numa[d] ? numa[d]->cpuset : root[d]->cpuset);
  }
  int *n = calloc(nd, sizeof *n), left = k0;
  char *got = calloc(nd, 1);
  for (int d = 0; d < nd; d++)
    left -= n[d] = (int)(k0 * w[d] / W);
  while (left-- > 0) {
    int best = -1;
    for (int d = 0; d < nd; d++)
      if (!got[d] && (best < 0 || (k0 * w[d]) % W > (k0 * w[best]) % W))
        best = d;
    got[best] = 1;
    n[best]++;
  }

  int core_depth = hwloc_get_type_or_below_depth(t, HWLOC_OBJ_CORE);
  int pu_depth = hwloc_get_type_depth(t, HWLOC_OBJ_PU);
  int first = 0;
  hwloc_obj_t *objs = calloc(hwloc_get_nbobjs_by_depth(t, pu_depth) + 1, sizeof *objs);
  for (int d = 0; d < nd; d++) {
    int k = n[d];
    if (k == 0)
      continue;
    hwloc_obj_t R = root[d];
    int th = in.nthreads;
    if (th == 0) {
      int count = inside(t, s < hw ? core_depth : pu_depth, R->cpuset, NULL);
      if (1 < s && s < hw)
        count *= s;
      th = count >= k ? count / k : 1;
    }
    long long workers = (long long)th * k;
    int level = core_depth;
    if (s == 0)
      for (int dd = R->depth; dd < core_depth; dd++)
        if (inside(t, dd, R->cpuset, NULL) >= workers) {
          level = dd;
          break;
        }
    int m = inside(t, level, R->cpuset, objs);
    int p = 1;
    if (s > 0) {
      p = s;
    } else if (level == core_depth) {
      p = hw;
      for (int i = 1; i <= hw; i++)
        if ((long long)m * i >= workers) {
          p = i;
          break;
        }
    }
    for (int j = 0; j < k; j++)
      r->nth[first + j] = th;
    if (m >= k) {
      int o = 0;
      for (int j = 0; j < k; j++)
        for (int x = split(m, k, j); x > 0; x--)
          first_pus(objs[o++], p, r->cpus[first + j]);
    } else {
      int task = first;
      hwloc_bitmap_t c = hwloc_bitmap_alloc();
      /* Beyond the original: when split(k, m) would share a PU although
       * the objects have k PUs in all (cores that lost a thread), they
       * serve tasks in proportion to their PUs, by largest remainders. */
      int *cnt = calloc(m, sizeof(int)), *grp = calloc(m, sizeof(int)), C = 0;
      for (int o = 0; o < m; o++) {
        hwloc_bitmap_zero(c);
        first_pus(objs[o], p, c);
        C += cnt[o] = hwloc_bitmap_weight(c);
      }
      int over = 0;
      for (int o = 0; o < m; o++)
        over |= split(k, m, o) > cnt[o];
      if (!over || k > C) {
        for (int o = 0; o < m; o++)
          grp[o] = split(k, m, o);
      } else {
        int rest = k;
        for (int o = 0; o < m; o++)
          rest -= grp[o] = (int)((long long)k * cnt[o] / C);
        char *more = calloc(m, 1);
        while (rest-- > 0) {
          int best = -1;
          for (int o = 0; o < m; o++)
            if (!more[o] && (best < 0 || (long long)k * cnt[o] % C >
                                             (long long)k * cnt[best] % C))
              best = o;
          more[best] = 1;
          grp[best]++;
        }
        free(more);
      }
      for (int o = 0; o < m; o++) {
        int g = grp[o];
        hwloc_bitmap_zero(c);
        first_pus(objs[o], p, c);
        int nc = hwloc_bitmap_weight(c);
        int pus[nc > 0 ? nc : 1], ip = 0, pu;
        hwloc_bitmap_foreach_begin(pu, c) { pus[ip++] = pu; }
        hwloc_bitmap_foreach_end();
        if (nc >= g) {
          int at = 0;
          for (int j = 0; j < g; j++, task++)
            for (int x = split(nc, g, j); x > 0; x--)
              hwloc_bitmap_set(r->cpus[task], pus[at++]);
        } else {
          for (int grp = 0; grp < nc; grp++)
            for (int x = split(g, nc, grp); x > 0; x--)
              hwloc_bitmap_set(r->cpus[task++], pus[grp]);
        }
      }
      free(cnt);
      free(grp);
      hwloc_bitmap_free(c);
    }
    /* GPUs of R */
    int q = 0, *mine = calloc(r->ngpus + 1, sizeof(int));
    for (int g = 0; g < r->ngpus; g++)
      if (in_subtree(r->gpu[g].loc, R))
        mine[q++] = g;
    if (q >= k) {
      int at = 0;
      for (int j = 0; j < k; j++)
        for (int x = split(q, k, j); x > 0; x--)
          add_gpu(r, first + j, mine[at++]);
    } else if (q > 0) {
      int task = first;
      for (int grp = 0; grp < q; grp++)
        for (int x = split(k, q, grp); x > 0; x--)
          add_gpu(r, task++, mine[grp]);
    }
    free(mine);
    first += k;
  }
  share_stranded(r);
  free(objs);
  free(w);
  free(n);
  free(got);
  free(numa);
  free(root);
  if (t != base)
    hwloc_topology_destroy(t);
  return 0;
}

/* ---- the comparison ----------------------------------------------------- */

static char **files;
static int nfiles;

static void compare(mpibind_t *h, hwloc_topology_t base, const char *path, ut_in in)
{
  char *what = ut_fmt("%s: ntasks %d nthreads %d greedy %d gpu_optim %d smt %d "
                      "restrict %s %s", strrchr(path, '/') + 1, in.ntasks,
                      in.nthreads, in.greedy, in.gpu_optim, in.smt,
                      in.restrict_type ? "mem" : "cpu",
                      in.restrict_ids ? in.restrict_ids : "-");
  struct ref r;
  memset(&r, 0, sizeof r);
  int rref = reference(base, in, &r);
  int rlib = ut_set(h, in) || mpibind(h);
  ck_assert_msg(!rref == !rlib, "%s: reference %s, library %s (%s)", what,
                rref ? "fails" : "maps", rlib ? "fails" : "maps",
                mpibind_get_error(h));
  if (rref) {
    ref_free(&r);
    return;
  }
  ck_assert_msg(mpibind_get_num_gpus(h) == r.ngpus, "%s: %d GPUs, reference %d",
                what, mpibind_get_num_gpus(h), r.ngpus);
  int *nth = mpibind_get_nthreads(h);
  hwloc_bitmap_t *cpus = mpibind_get_cpus(h);
  for (int i = 0; i < in.ntasks; i++) {
    ck_assert_msg(nth[i] == r.nth[i], "%s: task %d: nthreads %d, reference %d",
                  what, i, nth[i], r.nth[i]);
    if (!hwloc_bitmap_isequal(cpus[i], r.cpus[i])) {
      char *want;
      hwloc_bitmap_list_asprintf(&want, r.cpus[i]);
      ck_abort_msg("%s: task %d: cpus %s, reference %s", what, i,
                   ut_cpus_str(h, i), want);
    }
    int n = -1;
    char **ids = mpibind_get_gpus_ptask(h, i, &n); /* names */
    ck_assert_msg(n == r.ngpu_task[i], "%s: task %d: %d GPUs, reference %d",
                  what, i, n, r.ngpu_task[i]);
    for (int g = 0; g < n; g++) {
      const char *want = r.gpu[r.gpus[i][g]].name;
      ck_assert_msg(strcmp(ids[g], want) == 0, "%s: task %d: GPU %d is %s, "
                    "reference %s", what, i, g, ids[g], want);
    }
  }
  if (!in.restrict_ids)
    for (int g = 0; g < r.ngpus; g++) {
      const char *v = mpibind_get_gpu_id(h, g, MPIBIND_ID_SMI);
      ck_assert_msg(v && strcmp(v, r.gpu[g].visible) == 0, "%s: GPU %d (%s): "
                    "visible %s, reference %s", what, g, r.gpu[g].name,
                    v ? v : "(null)", r.gpu[g].visible);
    }
  ref_free(&r);
}

/* Compares the library (h) and the reference (on base) over many inputs. */
static void exercise(mpibind_t *h, hwloc_topology_t base, const char *path, unsigned seed)
{
  hwloc_topology_t t = base;
  ck_assert_int_eq(mpibind_set_gpu_ids(h, MPIBIND_ID_NAME), 0);
  int npus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
  int hw = hw_smt_of(t);
  int step = npus / 10 > 1 ? npus / 10 : 1;
  int nth[] = {0, 1, 3};
  for (int n = 1; n <= npus + step; n = n < 9 ? n + 1 : n + step)
    for (int greedy = 0; greedy <= 1; greedy++)
      for (int gpu = 0; gpu <= 1; gpu++)
        for (int smt = 0; smt <= hw + 1; smt++)
          for (int k = 0; k < 3; k++)
            if (k == 0 || smt <= 1)
              compare(h, base, path, UT_IN(.ntasks = n, .nthreads = nth[k], .greedy = greedy,
                                     .gpu_optim = gpu, .smt = smt));
  /* restricted: the first half of the PUs, the odd PUs, the last NUMA node */
  hwloc_bitmap_t half = hwloc_bitmap_alloc(), odd = hwloc_bitmap_alloc();
  int pu = -1, c = 0;
  while ((pu = hwloc_bitmap_next(hwloc_topology_get_topology_cpuset(t), pu)) >= 0) {
    if (c++ < npus / 2)
      hwloc_bitmap_set(half, pu);
    if (pu % 2)
      hwloc_bitmap_set(odd, pu);
  }
  char *lists[3];
  hwloc_bitmap_list_asprintf(&lists[0], half);
  hwloc_bitmap_list_asprintf(&lists[1], odd);
  ut_keep(lists[0]);
  ut_keep(lists[1]);
  hwloc_bitmap_free(half);
  hwloc_bitmap_free(odd);
  lists[2] = ut_fmt("%d", hwloc_bitmap_last(hwloc_topology_get_topology_nodeset(t)));
  for (int l = 0; l < 3; l++)
    for (int n = 1; n <= 40; n += n < 10 ? 1 : 7)
      for (int greedy = 0; greedy <= 1; greedy++)
        for (int gpu = 0; gpu <= 1; gpu++)
          for (int smt = 0; smt <= 1; smt++)
            compare(h, base, path, UT_IN(.ntasks = n, .greedy = greedy, .gpu_optim = gpu,
                                   .smt = smt, .restrict_ids = lists[l],
                                   .restrict_type = l == 2));
  /* random restrictions (a fixed seed per file): PU subsets of several
   * densities, NUMA node subsets */
  hwloc_const_bitmap_t allcpus = hwloc_topology_get_topology_cpuset(t);
  hwloc_const_bitmap_t allnodes = hwloc_topology_get_topology_nodeset(t);
  for (int trial = 0; trial < 24; trial++) {
    int mem = trial % 3 == 2;
    int keep_in = 1 + trial % 7; /* keep about 1 in keep_in */
    hwloc_const_bitmap_t from = mem ? allnodes : allcpus;
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    int id;
    hwloc_bitmap_foreach_begin(id, from) {
      seed = seed * 1103515245u + 12345u;
      if ((seed >> 16) % keep_in == 0)
        hwloc_bitmap_set(b, id);
    }
    hwloc_bitmap_foreach_end();
    if (hwloc_bitmap_iszero(b))
      hwloc_bitmap_set(b, hwloc_bitmap_last(from));
    char *list;
    hwloc_bitmap_list_asprintf(&list, b);
    ut_keep(list);
    hwloc_bitmap_free(b);
    int ns[] = {1, 2, 3, 5, 8, 13};
    for (int k = 0; k < 6; k++)
      for (int greedy = 0; greedy <= 1; greedy++)
        compare(h, base, path, UT_IN(.ntasks = ns[k], .greedy = greedy,
                                     .smt = trial % 2, .restrict_ids = list,
                                     .restrict_type = mem));
  }
}

START_TEST(every_topology)
{
  const char *path = files[_i];
  mpibind_t *h = ut_open(path);
  hwloc_topology_t base = load(path);
  exercise(h, base, path, 12345u + (unsigned)_i);
  mpibind_finalize(h);
  hwloc_topology_destroy(base);
}
END_TEST

/* hwloc synthetic nodes (a caller's topology for the library): larger,
 * SMT-3, NUMA nodes at two levels, interleaved PU numbering, no package. */
static const char *synthetic[] = {
  "pack:2 numa:2 l3:2 core:4 pu:2",
  "pack:4 [numa] l3:4 core:8 pu:4",
  "pack:2 [numa] group:2 [numa] core:4 pu:2",
  "pack:2 core:4 pu:2(indexes=0,8,1,9,2,10,3,11,4,12,5,13,6,14,7,15)",
  "numa:4 core:6 pu:1",
  "pack:1 l3:3 core:5 pu:3",
};

START_TEST(synthetic_nodes)
{
  hwloc_topology_t base, mine;
  ck_assert_int_eq(hwloc_topology_init(&base), 0);
  hwloc_topology_set_all_types_filter(base, HWLOC_TYPE_FILTER_KEEP_STRUCTURE);
  ck_assert_int_eq(hwloc_topology_set_synthetic(base, synthetic[_i]), 0);
  ck_assert_int_eq(hwloc_topology_load(base), 0);
  ck_assert_int_eq(hwloc_topology_init(&mine), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(mine), 0);
  ck_assert_int_eq(hwloc_topology_set_synthetic(mine, synthetic[_i]), 0);
  ck_assert_int_eq(hwloc_topology_load(mine), 0);
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology(h, mine), 0);
  exercise(h, base, ut_fmt("/synthetic %s", synthetic[_i]), 777u + (unsigned)_i);
  mpibind_finalize(h);
  hwloc_topology_destroy(mine);
  hwloc_topology_destroy(base);
}
END_TEST

int main(void)
{
  files = ut_topology_files(&nfiles);
  if (!files)
    return 1;
  Suite *s = suite_create("reference");
  TCase *tc = ut_tcase("files");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, every_topology, 0, nfiles);
  tcase_add_loop_test(tc, synthetic_nodes, 0, (int)(sizeof synthetic / sizeof *synthetic));
  suite_add_tcase(s, tc);
  int rc = ut_run(s);
  ut_files_free(files, nfiles);
  return rc;
}
