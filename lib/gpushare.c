/*
 * gpushare.c - no GPU left idle (docs/algorithm.md, "No GPU left idle"):
 * when step 5 left a GPU of the job to no task (its PCI bus hangs above
 * or beside the domains, a restriction removed its CPUs, or the tasks
 * sit in other domains) or a task without any GPU, the GPUs are shared
 * out so that every GPU is used and every task has its share:
 *   - ntasks >= ngpus: each task one GPU, each GPU ntasks / ngpus tasks
 *     or one more (so the counts differ by at most one);
 *   - ntasks < ngpus: task t gets split(ngpus, ntasks, t) GPUs (the
 *     remainder to the first tasks), each GPU one task.
 * A task first keeps its own GPUs of step 5 (task order) while they have
 * room; then the (task, GPU) pairs left take room nearest first.
 * "Nearest": a GPU whose locality shares CPUs with the task (local),
 * then the deepest ancestor of the GPU's locality, in the unrestricted
 * topology, that shares CPUs with the task, then PCI bus order, then
 * task order.  Where step 5 used every GPU and gave every task one,
 * nothing changes (the original's mapping, which the reference cases
 * check).
 */
#include <stdlib.h>
#include <string.h>

#include "distribute.h"
#include "fail.h"
#include "gpus.h"
#include "gpushare.h"
#include "handle.h"

/* Did step 5 leave a GPU to no task, or a task without a GPU? */
static int someone_idle(const mpibind_t *h)
{
  hwloc_bitmap_t used = hwloc_bitmap_alloc();
  if (!used)
    return -1;
  int idle = 0;
  for (int t = 0; t < h->ntasks && !idle; t++) {
    idle = hwloc_bitmap_iszero(h->out_gpus[t]);
    hwloc_bitmap_or(used, used, h->out_gpus[t]);
  }
  for (int g = 0; g < h->gpus.n && !idle; g++)
    idle = !hwloc_bitmap_isset(used, (unsigned)g);
  hwloc_bitmap_free(used);
  return idle;
}

/* How near a GPU (its locality loc, in the unrestricted topology) is to
 * a task's CPUs: local (loc shares CPUs with the task) first, then the
 * depth of loc's deepest ancestor (or loc) that shares CPUs with it. */
struct nearness {
  int local;
  int depth;
};

static struct nearness near_to(hwloc_obj_t loc, hwloc_const_bitmap_t cpus)
{
  struct nearness n = {hwloc_bitmap_intersects(loc->cpuset, cpus), 0};
  hwloc_obj_t o = loc;
  while (o->parent && !hwloc_bitmap_intersects(o->cpuset, cpus))
    o = o->parent;
  n.depth = o->depth;
  return n;
}

/* One (task, GPU) candidate pair. */
struct pair {
  struct nearness near;
  int pci;   /* the GPU's rank in PCI bus order */
  int gpu;   /* position in the GPU list */
  int task;
};

/* Nearest first, then PCI bus order, then task order. */
static int pair_cmp(const void *pa, const void *pb)
{
  const struct pair *a = pa, *b = pb;
  if (a->near.local != b->near.local)
    return a->near.local > b->near.local ? -1 : 1;
  if (a->near.depth != b->near.depth)
    return a->near.depth > b->near.depth ? -1 : 1;
  if (a->pci != b->pci)
    return a->pci < b->pci ? -1 : 1;
  return a->task < b->task ? -1 : a->task > b->task;
}

static int gpu_ptr_cmp(const void *pa, const void *pb)
{
  const struct mb_gpu *a = *(const struct mb_gpu *const *)pa;
  const struct mb_gpu *b = *(const struct mb_gpu *const *)pb;
  int c = mb_gpu_busid_cmp(a, b);
  return c ? c : (a < b ? -1 : a > b); /* list order among equals */
}

/* Each GPU's rank in PCI bus order (list order among equal bus ids).
 * NULL when out of memory. */
static int *pci_ranks(const struct mb_gpu_list *list)
{
  int *rank = malloc((size_t)list->n * sizeof(int));
  const struct mb_gpu **by_bus = malloc((size_t)list->n * sizeof(*by_bus));
  if (!rank || !by_bus) {
    free(rank);
    free(by_bus);
    return NULL;
  }
  for (int g = 0; g < list->n; g++)
    by_bus[g] = &list->gpu[g];
  qsort(by_bus, (size_t)list->n, sizeof(*by_bus), gpu_ptr_cmp);
  for (int r = 0; r < list->n; r++)
    rank[by_bus[r] - list->gpu] = r;
  free(by_bus);
  return rank;
}

/* The room of the GPUs: each may serve cap tasks, and extra of them one
 * more (ntasks % ngpus when every task gets one GPU: the first GPUs to
 * need the extra place take it). */
struct share {
  mpibind_t *h;
  int n, g;
  int cap, extra;
  int *count; /* tasks each GPU serves */
  int *want;  /* GPUs each task still needs */
};

static int has_room(const struct share *s, int g)
{
  return s->count[g] < s->cap || (s->count[g] == s->cap && s->extra > 0);
}

static void give(struct share *s, int t, int g)
{
  if (s->count[g] == s->cap)
    s->extra--;
  s->count[g]++;
  s->want[t]--;
  hwloc_bitmap_set(s->h->out_gpus[t], (unsigned)g);
}

/* Each task, in task order, keeps its GPUs of step 5 (list order) while
 * it wants more and they have room; it lets go of the others. */
static void keep_own(struct share *s)
{
  mpibind_t *h = s->h;
  for (int t = 0; t < s->n; t++) {
    s->want[t] = s->n >= s->g ? 1 : mb_split_part(s->g, s->n, t);
    hwloc_bitmap_t own = hwloc_bitmap_dup(h->out_gpus[t]);
    if (!own) {
      s->g = -1; /* out of memory, reported by the caller */
      return;
    }
    hwloc_bitmap_zero(h->out_gpus[t]);
    for (int g = hwloc_bitmap_first(own); g >= 0 && s->want[t] > 0;
         g = hwloc_bitmap_next(own, g))
      if (has_room(s, g))
        give(s, t, g);
    hwloc_bitmap_free(own);
  }
}

/* Gives the tasks that still want GPUs the GPUs that still have room,
 * nearest pairs first.  0, or -1 (out of memory). */
static int match(struct share *s)
{
  mpibind_t *h = s->h;
  long long npairs = 0;
  for (int t = 0; t < s->n; t++)
    if (s->want[t] > 0)
      npairs += s->g;
  if (npairs == 0)
    return 0;
  struct pair *p = malloc((size_t)npairs * sizeof(*p));
  int *pci = pci_ranks(&h->gpus);
  if (!p || !pci) {
    free(p);
    free(pci);
    return -1;
  }
  long long k = 0;
  for (int t = 0; t < s->n; t++)
    if (s->want[t] > 0)
      for (int g = 0; g < s->g; g++)
        p[k++] = (struct pair){
            near_to(h->gpus.gpu[g].base_locality, h->out_cpus[t]), pci[g],
            g, t};
  qsort(p, (size_t)npairs, sizeof(*p), pair_cmp);
  for (k = 0; k < npairs; k++) {
    int t = p[k].task, g = p[k].gpu;
    if (s->want[t] > 0 && has_room(s, g) &&
        !hwloc_bitmap_isset(h->out_gpus[t], (unsigned)g))
      give(s, t, g);
  }
  free(p);
  free(pci);
  return 0;
}

int mb_share_idle_gpus(mpibind_t *h)
{
  if (h->gpus.n == 0)
    return 0;
  int idle = someone_idle(h);
  if (idle <= 0)
    return idle ? mb_oom(h) : 0;
  struct share s = {.h = h, .n = h->ntasks, .g = h->gpus.n};
  s.cap = s.n >= s.g ? s.n / s.g : 1;
  s.extra = s.n >= s.g ? s.n % s.g : 0;
  s.count = calloc((size_t)s.g, sizeof(int));
  s.want = calloc((size_t)s.n, sizeof(int));
  int rc = -1;
  if (s.count && s.want) {
    keep_own(&s);
    rc = s.g < 0 ? -1 : match(&s);
  }
  free(s.count);
  free(s.want);
  return rc ? mb_oom(h) : 0;
}
