/*
 * distribute.c - step 5 of docs/algorithm.md: the tasks over the domains
 * (greedy or hierarchical), then each domain's CPUs and GPUs over its
 * tasks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "distribute.h"
#include "fail.h"
#include "handle.h"
#include "topology.h"

/* Greedy: fewer tasks than domains, each task spans whole domains. */
static void distribute_greedy(mpibind_t *h, struct mb_domain *d, int nd)
{
  int first = 0;
  for (int t = 0; t < h->ntasks; t++) {
    int len = mb_split_part(nd, h->ntasks, t);
    for (int i = first; i < first + len; i++) {
      hwloc_bitmap_or(h->out_cpus[t], h->out_cpus[t], d[i].root->cpuset);
      for (int g = 0; g < h->gpus.n; g++)
        if (mb_in_subtree(h->gpus.gpu[g].locality, d[i].root))
          hwloc_bitmap_set(h->out_gpus[t], g);
    }
    first += len;
    h->out_nthreads[t] = h->nthreads > 0 ? h->nthreads
                                         : hwloc_bitmap_weight(h->out_cpus[t]);
  }
}

/* Tasks per domain: proportional to the weights, leftovers to the largest
 * remainders, the lower domain first among equals. */
static int tasks_per_domain(mpibind_t *h, struct mb_domain *d, int nd, int gpu_on)
{
  long long W = 0;
  for (int i = 0; i < nd; i++) {
    long long w = 0;
    if (gpu_on) {
      for (int g = 0; g < h->gpus.n; g++) {
        hwloc_obj_t loc = h->gpus.gpu[g].locality;
        if (!loc)
          continue;
        if (d[i].numa ? loc->nodeset &&
                            hwloc_bitmap_isset(loc->nodeset, d[i].numa->os_index)
                      : hwloc_bitmap_intersects(loc->cpuset, d[i].root->cpuset))
          w++;
      }
    }
    d[i].weight = w;
    W += w;
  }
  if (!gpu_on || W == 0) { /* the original divides by zero here */
    W = 0;
    for (int i = 0; i < nd; i++) {
      d[i].weight = hwloc_bitmap_weight(d[i].numa ? d[i].numa->cpuset
                                                  : d[i].root->cpuset);
      W += d[i].weight;
    }
  }
  if (W <= 0)
    return mb_fail_kind(h, MPIBIND_ENOMAP,
                        "the domains have no CPU: nothing to map tasks onto");

  long long left = h->ntasks;
  char *extra = calloc(nd, 1);
  if (!extra)
    return mb_oom(h);
  for (int i = 0; i < nd; i++) {
    d[i].ntasks = (int)((long long)h->ntasks * d[i].weight / W);
    left -= d[i].ntasks;
  }
  for (; left > 0; left--) {
    int best = -1;
    long long best_rem = -1;
    for (int i = 0; i < nd; i++) {
      long long rem = (long long)h->ntasks * d[i].weight % W;
      if (!extra[i] && rem > best_rem) {
        best = i;
        best_rem = rem;
      }
    }
    extra[best] = 1;
    d[best].ntasks++;
  }
  free(extra);
  return 0;
}

/* "The objects of depth d inside R's cpuset" are exactly R's descendants
 * at depth d with a non-empty cpuset (objects of one depth have disjoint
 * cpusets), and they are consecutive cousins.  Walking them costs what
 * they are; hwloc's *_inside_cpuset_by_depth helpers test every object of
 * the level, which makes a mapping quadratic in the node's size. */
/* Has o any PU?  A PU at the end of the first-child path says yes at the
 * cost of the depth; hwloc_bitmap_iszero would scan o's cpuset from PU 0,
 * which over a whole level is quadratic again. */
static int has_pus(hwloc_obj_t o)
{
  hwloc_obj_t leaf = o;
  while (leaf->first_child)
    leaf = leaf->first_child;
  return leaf->type == HWLOC_OBJ_PU || !hwloc_bitmap_iszero(o->cpuset);
}

static hwloc_obj_t below_next(hwloc_obj_t R, hwloc_obj_t o)
{
  while (o && !has_pus(o))
    o = o->next_cousin;
  return o && mb_in_subtree(o, R) ? o : NULL;
}

static hwloc_obj_t below_first(hwloc_topology_t topo, hwloc_obj_t R, int d)
{
  hwloc_obj_t o = R;
  while (o->depth < d && o->first_child)
    o = o->first_child;
  if (o->depth != d) /* an asymmetric tree: no such object on this path */
    return hwloc_get_next_obj_inside_cpuset_by_depth(topo, R->cpuset, d,
                                                     NULL);
  return below_next(R, o);
}

static int count_below(hwloc_topology_t topo, hwloc_obj_t R, int d)
{
  int n = 0;
  for (hwloc_obj_t o = below_first(topo, R, d); o;
       o = below_next(R, o->next_cousin))
    n++;
  return n;
}

/* The p lowest PU OS indexes of obj (all of them when it has fewer) into
 * pus[], ascending; returns how many.  obj's PUs are its PU descendants,
 * consecutive at the PU level: walking them costs obj's size, where
 * searching obj's cpuset costs the node's size (quadratic over a level).
 * PUs are not always numbered in logical order (hwloc sorts by the
 * original first PU, and a restriction can remove it), hence the sort. */
static int first_pus(hwloc_topology_t topo, hwloc_obj_t obj, int p, int *pus)
{
  hwloc_obj_t pu = obj;
  while (pu->type != HWLOC_OBJ_PU && pu->first_child)
    pu = pu->first_child;
  if (pu->type != HWLOC_OBJ_PU) { /* a first child without PUs */
    int first = hwloc_bitmap_first(obj->cpuset);
    pu = first < 0 ? NULL : hwloc_get_pu_obj_by_os_index(topo, first);
  }
  int n = 0;
  for (; pu && mb_in_subtree(pu, obj); pu = pu->next_cousin) {
    int idx = (int)pu->os_index;
    if (n == p && idx >= pus[n - 1])
      continue;
    int at = n < p ? n++ : n - 1; /* insert, dropping the largest */
    while (at > 0 && pus[at - 1] > idx) {
      pus[at] = pus[at - 1];
      at--;
    }
    pus[at] = idx;
  }
  return n;
}

/* How many of k tasks (k > m) each of the m objects serves: split(k, m)
 * as in docs/algorithm.md, unless that gives an object more tasks than it
 * contributes PUs while the objects contribute enough in all (k <= C):
 * objects of unequal size (a core that lost a hardware thread) then serve
 * tasks in proportion to their PUs, the leftovers going to the largest
 * remainders, the lower object first among equals.  So with no more tasks
 * than PUs no PU is shared, and wherever split(k, m) shares none, or
 * sharing cannot be avoided, the original's answer stays.  pus is scratch
 * space for p PUs.  NULL when out of memory. */
static int *tasks_per_object(hwloc_topology_t topo, hwloc_obj_t *objs, int m,
                             int k, int p, int *pus)
{
  int *g = calloc(m, sizeof(*g));
  int *c = calloc(m, sizeof(*c));
  char *extra = calloc(m, 1);
  if (!g || !c || !extra) {
    free(g);
    free(c);
    free(extra);
    return NULL;
  }
  long long C = 0;
  int shares = 0;
  for (int o = 0; o < m; o++) {
    c[o] = first_pus(topo, objs[o], p, pus);
    C += c[o];
    g[o] = mb_split_part(k, m, o);
    shares |= g[o] > c[o];
  }
  if (shares && k <= C) {
    int left = k;
    for (int o = 0; o < m; o++) {
      g[o] = (int)((long long)k * c[o] / C);
      left -= g[o];
    }
    for (; left > 0; left--) {
      int best = -1;
      long long best_rem = -1;
      for (int o = 0; o < m; o++) {
        long long rem = (long long)k * c[o] % C;
        if (!extra[o] && rem > best_rem) {
          best = o;
          best_rem = rem;
        }
      }
      extra[best] = 1;
      g[best]++;
    }
  }
  free(c);
  free(extra);
  return g;
}

/* CPUs of the k tasks first..first+k-1 under root R. */
static int cpus_of_domain(mpibind_t *h, hwloc_topology_t topo, hwloc_obj_t R,
                          int first, int k, int hw)
{
  int s = h->smt;
  int core_depth = mb_core_depth(topo);
  int pu_depth = hwloc_get_type_depth(topo, HWLOC_OBJ_PU);

  int t = h->nthreads;
  if (t == 0) {
    int count = count_below(topo, R, s < hw ? core_depth : pu_depth);
    if (1 < s && s < hw)
      count *= s;
    t = count >= k ? count / k : 1;
  }
  for (int j = 0; j < k; j++)
    h->out_nthreads[first + j] = t;
  long long workers = (long long)t * k;

  /* The level: the first from R down whose objects are at least as many
   * as the workers; the core level otherwise (and always with smt). */
  int depth = core_depth > R->depth ? core_depth : R->depth;
  int m = count_below(topo, R, depth);
  if (s == 0) {
    for (int dd = R->depth; dd < depth; dd++) {
      int mm = count_below(topo, R, dd);
      if (mm >= workers) {
        depth = dd;
        m = mm;
        break;
      }
    }
  }
  if (m <= 0)
    return mb_fail_kind(h, MPIBIND_ENOMAP,
                        "no CPU under the domain rooted at %s %u",
                        hwloc_obj_type_string(R->type), R->logical_index);

  int p = 1;
  if (s > 0) {
    p = s;
  } else if (depth == core_depth) {
    p = hw;
    for (int i = 1; i <= hw; i++)
      if ((long long)m * i >= workers) {
        p = i;
        break;
      }
  }

  hwloc_obj_t *objs = malloc(m * sizeof(*objs));
  int *pus = malloc(p * sizeof(*pus));
  if (!objs || !pus) {
    free(objs);
    free(pus);
    return mb_oom(h);
  }
  int i = 0;
  for (hwloc_obj_t o = below_first(topo, R, depth); o && i < m;
       o = below_next(R, o->next_cousin))
    objs[i++] = o;

  if (m >= k) {
    int o = 0;
    for (int j = 0; j < k; j++) {
      hwloc_bitmap_t set = h->out_cpus[first + j];
      for (int x = mb_split_part(m, k, j); x > 0; x--) {
        int c = first_pus(topo, objs[o++], p, pus);
        for (int y = 0; y < c; y++)
          hwloc_bitmap_set(set, pus[y]);
      }
    }
  } else {
    int *groups = tasks_per_object(topo, objs, m, k, p, pus);
    if (!groups) {
      free(objs);
      free(pus);
      return mb_oom(h);
    }
    int task = first;
    for (int o = 0; o < m; o++) {
      int g = groups[o];
      int c = first_pus(topo, objs[o], p, pus);
      if (c >= g) { /* the PUs, in order, in g runs */
        int y = 0;
        for (int j = 0; j < g; j++, task++)
          for (int x = mb_split_part(c, g, j); x > 0; x--)
            hwloc_bitmap_set(h->out_cpus[task], pus[y++]);
      } else { /* g tasks in c groups, a group per PU */
        for (int y = 0; y < c; y++)
          for (int x = mb_split_part(g, c, y); x > 0; x--, task++)
            hwloc_bitmap_set(h->out_cpus[task], pus[y]);
      }
    }
    free(groups);
  }
  free(objs);
  free(pus);
  return 0;
}

/* GPUs of the k tasks first..first+k-1 under root R. */
static void gpus_of_domain(mpibind_t *h, hwloc_obj_t R, int first, int k)
{
  int q = 0;
  for (int g = 0; g < h->gpus.n; g++)
    q += mb_in_subtree(h->gpus.gpu[g].locality, R);
  if (q == 0)
    return;
  int g = 0;
  if (q >= k) {
    for (int j = 0; j < k; j++)
      for (int x = mb_split_part(q, k, j); x > 0; g++)
        if (mb_in_subtree(h->gpus.gpu[g].locality, R)) {
          hwloc_bitmap_set(h->out_gpus[first + j], g);
          x--;
        }
  } else {
    int task = first;
    for (int grp = 0; grp < q; grp++, g++) {
      while (!mb_in_subtree(h->gpus.gpu[g].locality, R))
        g++;
      for (int x = mb_split_part(k, q, grp); x > 0; x--, task++)
        hwloc_bitmap_set(h->out_gpus[task], g);
    }
  }
}

static int distribute_hierarchical(mpibind_t *h, hwloc_topology_t topo,
                                   struct mb_domain *d, int nd)
{
  int gpu_on = h->gpu_optim && h->gpus.n > 0;
  if (tasks_per_domain(h, d, nd, gpu_on))
    return -1;
  int hw = mb_work_hw_smt(h);
  int first = 0;
  for (int i = 0; i < nd; i++) {
    if (d[i].ntasks == 0)
      continue;
    if (cpus_of_domain(h, topo, d[i].root, first, d[i].ntasks, hw))
      return -1;
    gpus_of_domain(h, d[i].root, first, d[i].ntasks);
    first += d[i].ntasks;
  }
  return 0;
}

int mb_distribute(mpibind_t *h, struct mb_domain *d, int nd)
{
  if (h->greedy && h->ntasks < nd) {
    distribute_greedy(h, d, nd);
    return 0;
  }
  return distribute_hierarchical(h, h->work_topo, d, nd);
}
