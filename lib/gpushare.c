/*
 * gpushare.c - no GPU left idle (docs/algorithm.md, "No GPU left idle"):
 * after step 5 has given each task the GPUs local to its domain, the GPUs
 * that no domain holds (stranded: their PCI bus hangs above or beside the
 * domains, or the restriction removed their CPUs while the allocation
 * names them) are shared out, nearest first, so that every GPU is used:
 *   - ntasks >= ngpus: each task one GPU, the counts per GPU differing by
 *     at most one; a task keeps its local GPU while that GPU is within
 *     its count;
 *   - ntasks < ngpus: task t gets split(ngpus, ntasks, t) GPUs (the
 *     remainder to the first tasks), its local ones first.
 * "Nearest": the deepest common ancestor of the task's CPUs and the GPU's
 * locality in the unrestricted topology, then PCI bus order, then task
 * order.  Nothing changes where no GPU is stranded (the original's
 * mapping, which the reference cases check).
 */
#include <stdlib.h>
#include <string.h>

#include "distribute.h"
#include "fail.h"
#include "gpus.h"
#include "gpushare.h"
#include "handle.h"
#include "topology.h"

/* Is GPU g held by no domain?  Its locality is in no domain's subtree
 * (the machine, a package above sub-NUMA domains, a CPU-less group), or
 * it is an allocated GPU the restriction left outside. */
static int stranded(const struct mb_gpu *g, const struct mb_domain *d, int nd)
{
  if (g->outside)
    return 1;
  for (int i = 0; i < nd; i++)
    if (mb_in_subtree(g->locality, d[i].root))
      return 0;
  return 1;
}

/* Depth of the deepest common ancestor of a and b. */
static int common_depth(hwloc_obj_t a, hwloc_obj_t b)
{
  while (a && b && a != b) {
    if (a->depth > b->depth)
      a = a->parent;
    else if (b->depth > a->depth)
      b = b->parent;
    else {
      a = a->parent;
      b = b->parent;
    }
  }
  return a && a == b ? a->depth : 0;
}

/* One (task, GPU) candidate pair, nearest first. */
struct pair {
  int near;  /* common ancestor's depth: larger is nearer */
  int gpu;   /* position in the GPU list */
  int task;
};

static const struct mb_gpu_list *sort_list; /* qsort has no argument */

static int pair_cmp(const void *pa, const void *pb)
{
  const struct pair *a = pa, *b = pb;
  if (a->near != b->near)
    return a->near > b->near ? -1 : 1;
  if (a->gpu != b->gpu) {
    int c = mb_gpu_busid_cmp(&sort_list->gpu[a->gpu], &sort_list->gpu[b->gpu]);
    if (c)
      return c;
    return a->gpu < b->gpu ? -1 : 1;
  }
  return a->task < b->task ? -1 : a->task > b->task;
}

struct share {
  mpibind_t *h;
  int n, g;
  hwloc_obj_t *task_obj; /* each task's CPUs, covered, in the base topology */
  int *want;             /* GPUs each task still needs */
  int *room;             /* tasks each GPU can still take */
};

/* Gives the tasks that still want GPUs the GPUs that still have room,
 * nearest pairs first.  0, or -1 (out of memory). */
static int match(struct share *s)
{
  long long npairs = 0;
  for (int t = 0; t < s->n; t++)
    if (s->want[t] > 0)
      for (int g = 0; g < s->g; g++)
        npairs += s->room[g] > 0;
  if (npairs == 0)
    return 0;
  struct pair *p = malloc((size_t)npairs * sizeof(*p));
  if (!p)
    return -1;
  long long k = 0;
  for (int t = 0; t < s->n; t++)
    if (s->want[t] > 0)
      for (int g = 0; g < s->g; g++)
        if (s->room[g] > 0)
          p[k++] = (struct pair){
              common_depth(s->task_obj[t], s->h->gpus.gpu[g].base_locality), g,
              t};
  sort_list = &s->h->gpus;
  qsort(p, (size_t)npairs, sizeof(*p), pair_cmp);
  for (k = 0; k < npairs; k++) {
    int t = p[k].task, g = p[k].gpu;
    if (s->want[t] > 0 && s->room[g] > 0 &&
        !hwloc_bitmap_isset(s->h->out_gpus[t], (unsigned)g)) {
      hwloc_bitmap_set(s->h->out_gpus[t], (unsigned)g);
      s->want[t]--;
      s->room[g]--;
    }
  }
  free(p);
  return 0;
}

/* ntasks >= ngpus: every task ends with one GPU; GPU g serves n/g tasks,
 * one more for the n % g GPUs that most tasks have locally (list order
 * among equals), so that local GPUs lose as few tasks as possible. */
static void plan_one_each(struct share *s)
{
  mpibind_t *h = s->h;
  int *demand = calloc((size_t)s->g, sizeof(int));
  int *first = malloc((size_t)s->n * sizeof(int));
  if (!demand || !first) {
    free(demand);
    free(first);
    s->g = -1; /* out of memory, reported by the caller */
    return;
  }
  for (int t = 0; t < s->n; t++) {
    first[t] = hwloc_bitmap_first(h->out_gpus[t]);
    if (first[t] >= 0)
      demand[first[t]]++;
  }
  for (int g = 0; g < s->g; g++)
    s->room[g] = s->n / s->g;
  for (int extra = s->n % s->g; extra > 0; extra--) {
    int best = -1;
    for (int g = 0; g < s->g; g++)
      if (s->room[g] == s->n / s->g && (best < 0 || demand[g] > demand[best]))
        best = g;
    s->room[best]++;
  }
  for (int t = 0; t < s->n; t++) {
    hwloc_bitmap_zero(h->out_gpus[t]);
    int g = first[t];
    if (g >= 0 && s->room[g] > 0) {
      hwloc_bitmap_set(h->out_gpus[t], (unsigned)g);
      s->room[g]--;
      s->want[t] = 0;
    } else {
      s->want[t] = 1;
    }
  }
  free(demand);
  free(first);
}

/* ntasks < ngpus: each GPU goes to one task; task t keeps up to
 * split(g, n, t) of its local GPUs that no earlier task kept, and wants
 * the rest. */
static void plan_several_each(struct share *s)
{
  mpibind_t *h = s->h;
  for (int g = 0; g < s->g; g++)
    s->room[g] = 1;
  for (int t = 0; t < s->n; t++) {
    int share = mb_split_part(s->g, s->n, t), kept = 0;
    int g = hwloc_bitmap_first(h->out_gpus[t]);
    for (; g >= 0; g = hwloc_bitmap_next(h->out_gpus[t], g)) {
      if (kept < share && s->room[g] > 0) {
        kept++;
        s->room[g] = 0;
      } else {
        hwloc_bitmap_clr(h->out_gpus[t], (unsigned)g);
      }
    }
    s->want[t] = share - kept;
  }
}

int mb_share_stranded_gpus(mpibind_t *h, const struct mb_domain *d, int nd)
{
  int any = 0;
  for (int g = 0; g < h->gpus.n && !any; g++)
    any = stranded(&h->gpus.gpu[g], d, nd);
  if (!any)
    return 0;
  hwloc_topology_t base = mb_base_topology(h);
  if (!base)
    return -1;
  struct share s = {.h = h, .n = h->ntasks, .g = h->gpus.n};
  s.task_obj = malloc((size_t)s.n * sizeof(*s.task_obj));
  s.want = calloc((size_t)s.n, sizeof(int));
  s.room = calloc((size_t)s.g, sizeof(int));
  int rc = -1;
  if (s.task_obj && s.want && s.room) {
    for (int t = 0; t < s.n; t++) {
      hwloc_obj_t o = hwloc_get_obj_covering_cpuset(base, h->out_cpus[t]);
      s.task_obj[t] = o ? o : hwloc_get_root_obj(base);
    }
    if (s.n >= s.g)
      plan_one_each(&s);
    else
      plan_several_each(&s);
    rc = s.g < 0 ? -1 : match(&s);
  }
  free(s.task_obj);
  free(s.want);
  free(s.room);
  return rc ? mb_oom(h) : 0;
}
