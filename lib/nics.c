/*
 * nics.c - the node's NICs and each task's nearest ones
 * (docs/algorithm.md, "The nearest NIC for each task").
 *
 * A NIC is an OpenFabrics OS device (mlx5_0, hfi1_0, usnic_0, ...) or a
 * Network OS device of subtype Slingshot (hsn0, cxi0) or BXI (bxi0);
 * plain Ethernet interfaces are not (management networks).  The OS
 * devices on one PCI function are one NIC (mlx5_0 and its ib0; hsn0 and
 * its cxi0).  A task's NICs are the nearest to its GPUs (the deepest
 * common ancestor: the PCI switch, then the host bridge, the NUMA node,
 * the package), or without GPUs to its CPUs; tasks with the same nearest
 * NICs share them out evenly, in task order.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "distribute.h"
#include "fail.h"
#include "gpus.h"
#include "handle.h"
#include "nics.h"
#include "topology.h"

static int has_prefix(const char *s, const char *p)
{
  return s && strncmp(s, p, strlen(p)) == 0;
}

/* MB_NIC_VERBS, MB_NIC_CXI, or -1 (a NIC of neither use: hsn0, bxi0), or
 * 0 (no NIC device at all). */
static int nic_device(hwloc_obj_t os)
{
  if (os->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS)
    return MB_NIC_VERBS;
  if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_NETWORK || !os->subtype)
    return 0;
  if (strcasecmp(os->subtype, "Slingshot") == 0)
    return has_prefix(os->name, "cxi") ? MB_NIC_CXI : -1;
  if (strcasecmp(os->subtype, "BXI") == 0)
    return -1;
  return 0;
}

/* The OpenFabrics port UCX is told: the lowest N with PortNState 4
 * (active), else the lowest N hwloc lists, else 1. */
static unsigned verbs_port(hwloc_obj_t os)
{
  unsigned active = 0, any = 0;
  for (unsigned i = 0; i < os->infos_count; i++) {
    const char *name = os->infos[i].name;
    unsigned n;
    int used = 0;
    if (!name || sscanf(name, "Port%uState%n", &n, &used) != 1 ||
        name[used] != '\0' || n == 0)
      continue;
    if (!any || n < any)
      any = n;
    if (os->infos[i].value && strcmp(os->infos[i].value, "4") == 0 &&
        (!active || n < active))
      active = n;
  }
  return active ? active : any ? any : 1;
}

void mb_nic_list_free(struct mb_nic_list *list)
{
  for (int i = 0; i < list->n; i++) {
    free(list->nic[i].name);
    free(list->nic[i].verbs);
    free(list->nic[i].cxi);
  }
  free(list->nic);
  list->nic = NULL;
  list->n = 0;
}

/* The NIC of obj in list, a new one when there is none; NULL when out of
 * memory. */
static struct mb_nic *nic_of(struct mb_nic_list *list, int *cap,
                             hwloc_obj_t obj)
{
  for (int i = 0; i < list->n; i++)
    if (list->nic[i].obj == obj)
      return &list->nic[i];
  if (list->n == *cap) {
    int ncap = *cap ? 2 * *cap : 8;
    struct mb_nic *n = realloc(list->nic, (size_t)ncap * sizeof(*n));
    if (!n)
      return NULL;
    list->nic = n;
    *cap = ncap;
  }
  struct mb_nic *nic = &list->nic[list->n++];
  memset(nic, 0, sizeof(*nic));
  nic->obj = obj;
  return nic;
}

/* Records OS device os (a NIC device of use `use`) on its NIC. */
static int add_device(struct mb_nic *nic, hwloc_obj_t os, int use)
{
  char **slot = use == MB_NIC_VERBS ? &nic->verbs
                : use == MB_NIC_CXI ? &nic->cxi
                                    : NULL;
  if (slot && !*slot && !(*slot = strdup(os->name)))
    return -1;
  if (use == MB_NIC_VERBS)
    nic->port = verbs_port(os);
  /* the name: OpenFabrics first, then CXI, then the first device */
  const char *best = nic->verbs ? nic->verbs : nic->cxi ? nic->cxi : NULL;
  if (best && (!nic->name || strcmp(nic->name, best) != 0)) {
    free(nic->name);
    nic->name = strdup(best);
  } else if (!nic->name) {
    nic->name = strdup(os->name);
  }
  return nic->name ? 0 : -1;
}

int mb_nic_list_build(mpibind_t *h, hwloc_topology_t topo,
                      struct mb_nic_list *list)
{
  list->nic = NULL;
  list->n = 0;
  int cap = 0;
  for (hwloc_obj_t os = hwloc_get_next_osdev(topo, NULL); os;
       os = hwloc_get_next_osdev(topo, os)) {
    int use = nic_device(os);
    if (!use || !os->name)
      continue;
    hwloc_obj_t at = os->parent && os->parent->type == HWLOC_OBJ_PCI_DEVICE
                         ? os->parent
                         : os;
    struct mb_nic *nic = nic_of(list, &cap, at);
    if (!nic || add_device(nic, os, use)) {
      mb_nic_list_free(list);
      return mb_oom(h);
    }
  }
  return 0;
}

static int usable(const struct mb_nic *nic, int kinds)
{
  return kinds == MB_NIC_ANY || ((kinds & MB_NIC_VERBS) && nic->verbs) ||
         ((kinds & MB_NIC_CXI) && nic->cxi);
}

int mb_nics_have(const struct mb_nic_list *list, int kind)
{
  for (int i = 0; i < list->n; i++)
    if (usable(&list->nic[i], kind))
      return 1;
  return 0;
}

/* Ancestors counted from the root (I/O objects included). */
static int height(hwloc_obj_t o)
{
  int n = 0;
  while (o && o->parent) {
    o = o->parent;
    n++;
  }
  return n;
}

/* The height of the deepest common ancestor of a and b. */
static int nearness(hwloc_obj_t a, hwloc_obj_t b)
{
  int ha = height(a), hb = height(b);
  for (; ha > hb; ha--)
    a = a->parent;
  for (; hb > ha; hb--)
    b = b->parent;
  while (a != b) {
    a = a->parent;
    b = b->parent;
    ha--;
  }
  return ha;
}

/* The candidates of one anchor (a GPU's PCI device, or the object
 * holding a task's CPUs): the usable NICs at the deepest common ancestor
 * with it that any usable NIC reaches. */
static void candidates(mpibind_t *h, hwloc_obj_t anchor, int kinds,
                       hwloc_bitmap_t out)
{
  int best = -1;
  hwloc_bitmap_zero(out);
  for (int n = 0; n < h->nics.n; n++)
    if (usable(&h->nics.nic[n], kinds)) {
      int x = nearness(anchor, h->nics.nic[n].obj);
      if (x > best) {
        best = x;
        hwloc_bitmap_zero(out);
      }
      if (x == best)
        hwloc_bitmap_set(out, (unsigned)n);
    }
}

/* Who asks for NICs: each GPU of a task (a task spanning two sockets'
 * GPUs gets a NIC near each), or a task without GPUs for its CPUs. */
struct requester {
  int task, gpu;      /* gpu -1: the task's CPUs */
  hwloc_bitmap_t set; /* its candidates */
};

/* Requesters by candidate set, then task, then GPU (a stable grouping). */
static int by_set(const void *pa, const void *pb)
{
  const struct requester *a = pa, *b = pb;
  int c = hwloc_bitmap_compare(a->set, b->set);
  if (c)
    return c;
  if (a->task != b->task)
    return (a->task > b->task) - (a->task < b->task);
  return (a->gpu > b->gpu) - (a->gpu < b->gpu);
}

/* The k requesters of one group (in order) share its q NICs: runs of
 * split(q, k) when there are enough, else round robin; each NIC goes to
 * the requester's task. */
static void share_group(hwloc_bitmap_t *out, const struct requester *r, int k)
{
  int q = hwloc_bitmap_weight(r[0].set);
  if (q <= 0)
    return;
  int n = hwloc_bitmap_first(r[0].set);
  if (q >= k) {
    for (int j = 0; j < k; j++)
      for (int x = mb_split_part(q, k, j); x > 0; x--) {
        hwloc_bitmap_set(out[r[j].task], (unsigned)n);
        n = hwloc_bitmap_next(r[0].set, n);
      }
    return;
  }
  for (int j = 0; j < k; j++) {
    hwloc_bitmap_set(out[r[j].task], (unsigned)n);
    n = hwloc_bitmap_next(r[0].set, n);
    if (n < 0)
      n = hwloc_bitmap_first(r[0].set);
  }
}

/* The requesters of every task with their candidates (*count of them,
 * malloc'ed), or NULL out of memory. */
static struct requester *requesters(mpibind_t *h, hwloc_topology_t base,
                                    int kinds, int *count)
{
  int nt = h->ntasks, nr = 0, i = 0;
  for (int t = 0; t < nt; t++) {
    int g = hwloc_bitmap_weight(h->out_gpus[t]);
    nr += g > 0 ? g : 1;
  }
  struct requester *r = calloc((size_t)nr, sizeof(*r));
  if (!r)
    return NULL;
  for (int t = 0; t < nt; t++) {
    int g = hwloc_bitmap_first(h->out_gpus[t]);
    do {
      hwloc_obj_t anchor;
      if (g >= 0) {
        anchor = h->gpus.gpu[g].base_obj;
      } else {
        anchor = hwloc_get_obj_covering_cpuset(base, h->out_cpus[t]);
        if (!anchor)
          anchor = hwloc_get_root_obj(base);
      }
      r[i].task = t;
      r[i].gpu = g;
      if (!(r[i].set = hwloc_bitmap_alloc())) {
        for (int j = 0; j < i; j++)
          hwloc_bitmap_free(r[j].set);
        free(r);
        return NULL;
      }
      candidates(h, anchor, kinds, r[i].set);
      i++;
    } while (g >= 0 && (g = hwloc_bitmap_next(h->out_gpus[t], g)) >= 0);
  }
  *count = nr;
  return r;
}

int mb_nics_choose(mpibind_t *h, int kinds, hwloc_bitmap_t *out)
{
  int nt = h->ntasks, nr = 0;
  for (int t = 0; t < nt; t++)
    hwloc_bitmap_zero(out[t]);
  if (h->nics.n == 0 || !mb_nics_have(&h->nics, kinds))
    return 0;
  hwloc_topology_t base = mb_base_topology(h);
  if (!base)
    return -1;
  struct requester *r = requesters(h, base, kinds, &nr);
  if (!r)
    return mb_oom(h);
  qsort(r, (size_t)nr, sizeof(*r), by_set);
  for (int i = 0; i < nr;) {
    int j = i + 1;
    while (j < nr && hwloc_bitmap_isequal(r[j].set, r[i].set))
      j++;
    share_group(out, r + i, j - i);
    i = j;
  }
  for (int i = 0; i < nr; i++)
    hwloc_bitmap_free(r[i].set);
  free(r);
  return 0;
}
