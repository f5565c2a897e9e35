/*
 * nodemap.c - the node's mapping computed once per node; every other
 * task reads only its own share.
 *
 * Why: without it every task parses the node's whole topology and maps
 * the whole node, so a node's total cost grows with tasks x PUs (about
 * 110 ms per task at 8192 PUs).  The first task of a node computes the
 * mapping (topology, step 0-6 of the library) and writes every task's
 * result into the cache directory; a task that finds it reads a fixed-size
 * index entry and its own record, and binds to the CPUs there: a few
 * small reads and one sched_setaffinity per thread, whatever the node's
 * size.
 *
 * The file is a keyfile.c file (same safety checks as the topology
 * cache).  Its key holds everything the mapping depends on: the machine
 * (mpibind_auto_machine_key), the topology's identity (the cache file's
 * or MPIBIND_TOPOFILE's inode, size and times), the caller's inputs
 * (tuning, GPU allocation, task count).  Body:
 *
 *   R\n                      R = ntasks + 1 records, 16 hex digits
 *   off_0\n ... off_R\n      16 hex digits each, from the body's start
 *   record 0 .. ntasks-1     "cpus=<list>\nnthreads=<n>\n[mems=<list>\n]"
 *                            "<NAME>=<value>\n..." (mems: the NUMA nodes
 *                            of the task's CPUs, for membind)
 *   record ntasks            the verbose report of the node
 *   record ntasks+1          every task's GPU variables, one line each:
 *                            "<task>\t<NAME>=<value>\t...\n" (a task
 *                            with a per-task GPU list finds there the
 *                            task of the mapping that has its GPUs)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"
#include "mb_parse.h"

#define HEXW 17 /* "%016zx\n" */
#define EXTRA_RECORDS 2 /* the report and the GPU lines */

void mpibind_auto_share_free(struct mpibind_auto_share *s) {
  free(s->cpus);
  for (int i = 0; i < s->nvars; i++) {
    free(s->names[i]);
    free(s->values[i]);
  }
  free(s->names);
  free(s->values);
  free(s->report);
  free(s->mems);
  memset(s, 0, sizeof *s);
}

/* ---- a task's record ------------------------------------------------- */

/* Appends to a growing string; -1 when out of memory. */
struct sbuf {
  char *p;
  size_t len, cap;
};

static int sb_add(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL)
      return -1;
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

static int sb_str(struct sbuf *b, const char *s) {
  return sb_add(b, s, strlen(s));
}

/* The NUMA nodes of a task's CPUs in the mapped topology, as a list;
 * NULL when there are none or out of memory. */
static char *task_mems(mpibind_t *h, hwloc_const_bitmap_t cpus) {
  hwloc_topology_t topo = mpibind_get_topology(h);
  hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
  char *list = NULL;
  if (topo && nodes && hwloc_cpuset_to_nodeset(topo, cpus, nodes) == 0 &&
      !hwloc_bitmap_iszero(nodes) &&
      hwloc_bitmap_list_asprintf(&list, nodes) < 0)
    list = NULL;
  hwloc_bitmap_free(nodes);
  return list;
}

/* One task's record; 1 when it cannot be written as lines (a value with a
 * newline, a name with '='), -1 out of memory. */
static int add_record(struct sbuf *b, mpibind_t *h, int task) {
  hwloc_bitmap_t *sets = mpibind_get_cpus(h);
  int *nths = mpibind_get_nthreads(h), nnames = 0;
  char **names = mpibind_get_env_var_names(h, &nnames);
  char *cpus = NULL, num[32];
  if (sets == NULL || nths == NULL ||
      hwloc_bitmap_list_asprintf(&cpus, sets[task]) < 0)
    return -1;
  snprintf(num, sizeof num, "%d", nths[task]);
  int rc = sb_str(b, "cpus=") || sb_str(b, cpus) || sb_str(b, "\nnthreads=") ||
                   sb_str(b, num) || sb_str(b, "\n")
               ? -1
               : 0;
  free(cpus);
  char *mems = rc == 0 ? task_mems(h, sets[task]) : NULL;
  if (mems && (sb_str(b, "mems=") || sb_str(b, mems) || sb_str(b, "\n")))
    rc = -1;
  free(mems);
  for (int i = 0; rc == 0 && names && i < nnames; i++) {
    char **vals = mpibind_get_env_var_values(h, names[i]);
    const char *v = vals ? vals[task] : NULL;
    if (v == NULL)
      continue;
    if (strpbrk(names[i], "=\n") || strchr(v, '\n'))
      return 1;
    rc = sb_str(b, names[i]) || sb_str(b, "=") || sb_str(b, v) ||
                 sb_str(b, "\n")
             ? -1
             : 0;
  }
  return rc;
}

/* Every task's GPU variables, one line per task (record ntasks+1); 1 when
 * a value cannot be written as a field, -1 out of memory. */
static int add_gpu_lines(struct sbuf *b, mpibind_t *h, int count) {
  int nnames = 0;
  char **names = mpibind_get_env_var_names(h, &nnames);
  for (int t = 0; t < count; t++) {
    char num[32];
    snprintf(num, sizeof num, "%d", t);
    if (sb_str(b, num))
      return -1;
    for (int i = 0; names && i < nnames; i++) {
      char **vals = mpibind_get_env_var_values(h, names[i]);
      if (mpibind_auto_gpu_var_index(names[i]) < 0 || !vals || !vals[t])
        continue;
      if (strpbrk(vals[t], "\t\n"))
        return 1;
      if (sb_str(b, "\t") || sb_str(b, names[i]) || sb_str(b, "=") ||
          sb_str(b, vals[t]))
        return -1;
    }
    if (sb_str(b, "\n"))
      return -1;
  }
  return 0;
}

/* "mpibind: N GPUs on this node" and the report of every task. */
static char *node_report(mpibind_t *h) {
  int n = mpibind_mapping_snprint(NULL, 0, h);
  char *head = mpibind_auto_strdupf("mpibind: %d GPUs on this node\n",
                                    mpibind_get_num_gpus(h));
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL, *all = NULL;
  if (head && buf && mpibind_mapping_snprint(buf, n + 1, h) >= 0)
    all = mpibind_auto_strdupf("%s%s", head, buf);
  free(head);
  free(buf);
  return all;
}

/* Reads a record's lines into the share. */
static int parse_record(char *rec, struct mpibind_auto_share *s) {
  char *line, *save = NULL;
  for (line = strtok_r(rec, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *eq = strchr(line, '=');
    if (eq == NULL)
      return -1;
    *eq = '\0';
    if (strcmp(line, "cpus") == 0) {
      free(s->cpus);
      s->cpus = strdup(eq + 1);
      if (s->cpus == NULL)
        return -1;
    } else if (strcmp(line, "mems") == 0) {
      free(s->mems);
      s->mems = strdup(eq + 1);
      if (s->mems == NULL)
        return -1;
    } else if (strcmp(line, "nthreads") == 0) {
      long long v;
      if (mb_parse_decimal(eq + 1, strlen(eq + 1), 0, 1L << 30, &v) != 0)
        return -1;
      s->nthreads = (int)v;
    } else {
      char **nn = realloc(s->names, (s->nvars + 1) * sizeof *nn);
      if (nn == NULL)
        return -1;
      s->names = nn;
      char **nv = realloc(s->values, (s->nvars + 1) * sizeof *nv);
      if (nv == NULL)
        return -1;
      s->values = nv;
      s->names[s->nvars] = strdup(line);
      s->values[s->nvars] = strdup(eq + 1);
      s->nvars++;
      if (!s->names[s->nvars - 1] || !s->values[s->nvars - 1])
        return -1;
    }
  }
  return s->cpus != NULL ? 0 : -1;
}

/* The share of task from a mapped handle (when no record can be written). */
static int share_from_handle(mpibind_t *h, int task,
                             struct mpibind_auto_share *s) {
  hwloc_bitmap_t *sets = mpibind_get_cpus(h);
  int *nths = mpibind_get_nthreads(h), nnames = 0;
  char **names = mpibind_get_env_var_names(h, &nnames);
  if (sets == NULL || nths == NULL ||
      hwloc_bitmap_list_asprintf(&s->cpus, sets[task]) < 0)
    return -1;
  s->nthreads = nths[task];
  s->slot = task;
  s->mems = task_mems(h, sets[task]);
  s->names = calloc((size_t)nnames + 1, sizeof *s->names);
  s->values = calloc((size_t)nnames + 1, sizeof *s->values);
  if (s->names == NULL || s->values == NULL)
    return -1;
  for (int i = 0; names && i < nnames; i++) {
    char **vals = mpibind_get_env_var_values(h, names[i]);
    if (vals == NULL || vals[task] == NULL)
      continue;
    s->names[s->nvars] = strdup(names[i]);
    s->values[s->nvars] = strdup(vals[task]);
    s->nvars++;
    if (!s->names[s->nvars - 1] || !s->values[s->nvars - 1])
      return -1;
  }
  return 0;
}

int mpibind_auto_share_of(mpibind_t *h, int task, int want_report,
                          struct mpibind_auto_share *s) {
  memset(s, 0, sizeof *s);
  if (share_from_handle(h, task, s) != 0 ||
      (want_report && (s->report = node_report(h)) == NULL)) {
    mpibind_auto_share_free(s);
    return -1;
  }
  return 0;
}

/* ---- the file -------------------------------------------------------- */

struct nodemap_ctx {
  int local, count, want_report;
  const struct mpibind_auto_node_ops *ops;
  void *map_ctx;
  struct mpibind_auto_share *share;
};

/* The task of the mapping whose share this task takes: its own number, or
 * what ops->pick finds in the GPU lines (-1: none; share->slot says so). */
static int pick_slot(struct nodemap_ctx *c, const char *gpus) {
  int slot = c->local;
  if (c->ops->pick && c->ops->pick(c->map_ctx, gpus, &slot) != 0)
    return -1;
  return slot >= 0 && slot < c->count ? slot : -1;
}

/* Reads [start, end) of record r; NULL when the index is not sane. */
static char *read_record(int fd, off_t off, size_t len, int r, int nrec) {
  char ent[2 * HEXW + 1], *rec, *end;
  size_t head = (size_t)HEXW * ((size_t)nrec + 2);
  if (mpibind_auto_pread_exact(fd, ent, 2 * HEXW,
                               off + (off_t)HEXW * (r + 1)) != 0)
    return NULL;
  ent[2 * HEXW] = '\0';
  if (ent[HEXW - 1] != '\n' || ent[2 * HEXW - 1] != '\n')
    return NULL;
  unsigned long long a = strtoull(ent, &end, 16);
  if (end != ent + HEXW - 1)
    return NULL;
  unsigned long long b = strtoull(ent + HEXW, &end, 16);
  if (end != ent + 2 * HEXW - 1 || a < head || a > b || b > len)
    return NULL;
  rec = malloc((size_t)(b - a) + 1);
  if (rec == NULL ||
      mpibind_auto_pread_exact(fd, rec, (size_t)(b - a), off + (off_t)a) != 0) {
    free(rec);
    return NULL;
  }
  rec[b - a] = '\0';
  if (strlen(rec) != b - a) {
    free(rec);
    return NULL;
  }
  return rec;
}

/* The slot from the file's GPU lines (record ntasks+1), when needed;
 * -2 when the record cannot be read. */
static int slot_from_file(struct nodemap_ctx *c, int fd, off_t off,
                          size_t len, int nrec) {
  if (c->ops->pick == NULL)
    return c->local;
  char *gpus = read_record(fd, off, len, c->count + 1, nrec);
  if (gpus == NULL)
    return -2;
  int slot = pick_slot(c, gpus);
  free(gpus);
  return slot;
}

static int nodemap_use(void *vctx, int fd, off_t off, size_t len) {
  struct nodemap_ctx *c = vctx;
  char head[HEXW + 1], *end, *rec;
  int nrec = c->count + EXTRA_RECORDS, slot;
  if (len < (size_t)HEXW || mpibind_auto_pread_exact(fd, head, HEXW, off) != 0)
    return 0;
  head[HEXW] = '\0';
  if (strtoull(head, &end, 16) != (unsigned long long)nrec ||
      end != head + HEXW - 1)
    return 0;
  slot = slot_from_file(c, fd, off, len, nrec);
  if (slot == -2)
    return 0;
  c->share->slot = slot;
  if (slot < 0)
    return 1; /* a valid file that has no task for this one's GPUs */
  rec = read_record(fd, off, len, slot, nrec);
  if (rec == NULL || parse_record(rec, c->share) != 0) {
    free(rec);
    mpibind_auto_share_free(c->share);
    return 0;
  }
  free(rec);
  c->share->slot = slot;
  if (c->want_report) {
    c->share->report = read_record(fd, off, len, c->count, nrec);
    if (c->share->report == NULL) {
      mpibind_auto_share_free(c->share);
      return 0;
    }
  }
  return 1;
}

/* Every task's record after the index; NULL body when one cannot be
 * written (the mapping is still this task's). */
static int serialize(mpibind_t *h, int count, char **body, size_t *blen) {
  struct sbuf recs = {0}, out = {0};
  size_t nrec = (size_t)count + EXTRA_RECORDS, head = (size_t)HEXW * (nrec + 1);
  size_t *offs = malloc((nrec + 1) * sizeof *offs);
  char ent[HEXW + 1];
  int rc = -1;
  if (offs == NULL)
    return -1;
  for (int t = 0; t < count; t++) {
    offs[t] = head + HEXW + recs.len;
    int r = add_record(&recs, h, t);
    if (r != 0) {
      rc = r > 0 ? 0 : -1; /* not writable: no file, not an error */
      goto out;
    }
  }
  offs[count] = head + HEXW + recs.len;
  char *rep = node_report(h);
  if (rep == NULL || sb_str(&recs, rep) != 0) {
    free(rep);
    goto out;
  }
  free(rep);
  offs[count + 1] = head + HEXW + recs.len;
  int g = add_gpu_lines(&recs, h, count);
  if (g != 0) {
    rc = g > 0 ? 0 : -1; /* not writable: no file, not an error */
    goto out;
  }
  offs[nrec] = head + HEXW + recs.len;
  snprintf(ent, sizeof ent, "%016zx\n", nrec);
  if (sb_add(&out, ent, HEXW) != 0)
    goto out;
  for (size_t r = 0; r <= nrec; r++) {
    snprintf(ent, sizeof ent, "%016zx\n", offs[r]);
    if (sb_add(&out, ent, HEXW) != 0)
      goto out;
  }
  if (sb_add(&out, recs.p, recs.len) != 0)
    goto out;
  *body = out.p;
  *blen = out.len;
  out.p = NULL;
  rc = 0;
out:
  free(offs);
  free(recs.p);
  free(out.p);
  return rc;
}

/* The slot from a mapped handle's GPU lines, when needed (-1: none). */
static int slot_from_handle(struct nodemap_ctx *c, mpibind_t *h) {
  struct sbuf gpus = {0};
  int slot;
  if (c->ops->pick == NULL)
    return c->local;
  if (add_gpu_lines(&gpus, h, c->count) != 0) {
    free(gpus.p);
    return -1;
  }
  slot = pick_slot(c, gpus.p ? gpus.p : "");
  free(gpus.p);
  return slot;
}

static int nodemap_make(void *vctx, char **body, size_t *len, char **error) {
  struct nodemap_ctx *c = vctx;
  mpibind_t *h = NULL;
  *body = NULL;
  if (c->ops->map(c->map_ctx, &h, error) != 0)
    return -1;
  if (serialize(h, c->count, body, len) != 0) {
    *error = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  int slot = slot_from_handle(c, h);
  if (slot < 0) {
    c->share->slot = -1; /* the file is the node's; this task maps alone */
    return 0;
  }
  if (share_from_handle(h, slot, c->share) != 0 ||
      (c->want_report && (c->share->report = node_report(h)) == NULL)) {
    free(*body);
    *body = NULL;
    *error = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  return 0;
}

/* The topology's identity for the key.  On a cold node (no topology
 * file yet) the task gets the topology first (`load`), so that the key
 * names the file the node's other tasks will find: keyed "none", the
 * first task's mapping would serve no one. */
static char *keyed_topology(const struct mpibind_auto_tuning *t,
                            const char *machine,
                            const struct mpibind_auto_node_ops *ops,
                            void *ctx) {
  char *topo = mpibind_auto_topology_identity(t, machine);
  size_t n = topo ? strlen(topo) : 0;
  if (t->topofile || n < 5 || strcmp(topo + n - 5, " none") != 0)
    return topo;
  if (ops->load(ctx) != 0)
    return topo; /* the mapping will say why */
  free(topo);
  return mpibind_auto_topology_identity(t, machine);
}

int mpibind_auto_node_mapping(const struct mpibind_auto_tuning *t,
                              const char *inputs, int local, int count,
                              int want_report,
                              const struct mpibind_auto_node_ops *nops,
                              void *map_ctx, struct mpibind_auto_share *s,
                              int *shared, char **error) {
  static const struct mpibind_auto_once ops = {nodemap_use, nodemap_make};
  struct nodemap_ctx c = {local, count, want_report, nops, map_ctx, s};
  char *machine = mpibind_auto_machine_key();
  char *topo = machine ? keyed_topology(t, machine, nops, map_ctx) : NULL;
  char *key = NULL, *name = NULL;
  int dirfd = -1, made = 0, rc;

  memset(s, 0, sizeof *s);
  *error = NULL;
  if (machine && topo)
    key = mpibind_auto_strdupf("mpibind-nodemap 3\n%s%s\n%s\nntasks=%d\n"
                               "nodemap-end\n",
                               machine, topo, inputs, count);
  if (key) {
    name = mpibind_auto_strdupf("map-%016llx.txt",
                                (unsigned long long)mpibind_auto_hash(key));
    if (name)
      dirfd = mpibind_auto_cache_dirfd();
  }
  rc = mpibind_auto_once(dirfd, name, key, &ops, &c, &made, error);
  if (dirfd >= 0)
    close(dirfd);
  *shared = rc == 0 && !made;
  if (rc != 0)
    mpibind_auto_share_free(s);
  free(machine);
  free(topo);
  free(key);
  free(name);
  return rc;
}
