/*
 * nodemap_write.c - a mapped node's shares, as the node mapping file's
 * body (auto/task/nodemap.h) and for one task (nodemap_write.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpualloc.h"
#include "mb_buf.h"
#include "nodemap_write.h"
#include "strdupf.h"

#define HEXW MPIBIND_AUTO_NODEMAP_HEXW
#define EXTRA_RECORDS MPIBIND_AUTO_NODEMAP_EXTRA

/* Appends a string to a growing buffer (mb_buf.h); -1 when out of
 * memory. */
static int sb_str(struct mb_buf *b, const char *s) {
  return mb_buf_add(b, s, strlen(s));
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

/* The task's GPUs (their visible indexes, the handle's ID kind),
 * comma-separated; NULL on a node without GPUs or out of memory. */
static char *task_gpus(mpibind_t *h, int task) {
  int n = 0;
  char **ids;
  struct mb_buf b = {0};
  if (mpibind_get_num_gpus(h) <= 0 ||
      (ids = mpibind_get_gpus_ptask(h, task, &n)) == NULL)
    return NULL;
  for (int i = 0; i < n; i++)
    if ((i > 0 && mb_buf_add(&b, ",", 1) != 0) || sb_str(&b, ids[i]) != 0) {
      free(b.p);
      return NULL;
    }
  if (mb_buf_add(&b, "", 0) != 0) /* "" for a task without GPU */
    return NULL;
  return b.p;
}

/* The job's CPUs when the mapping is limited to them, "mpibind: N GPUs on
 * this node" and the report of every task. */
static char *node_report(mpibind_t *h, const char *job_line) {
  int n = mpibind_mapping_snprint(NULL, 0, h);
  char *head = mpibind_auto_strdupf("%s%s%smpibind: %d GPUs on this node\n",
                                    job_line ? "mpibind: " : "",
                                    job_line ? job_line : "",
                                    job_line ? "\n" : "",
                                    mpibind_get_num_gpus(h));
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL, *all = NULL;
  if (head && buf && mpibind_mapping_snprint(buf, n + 1, h) >= 0)
    all = mpibind_auto_strdupf("%s%s", head, buf);
  free(head);
  free(buf);
  return all;
}

/* The share of task `task` from a mapped handle. */
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
  s->gpus = task_gpus(h, task);
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
      (want_report && (s->report = node_report(h, NULL)) == NULL)) {
    mpibind_auto_share_free(s);
    return -1;
  }
  return 0;
}

/* One task's record; 1 when it cannot be written as lines, -1 out of
 * memory. */
static int add_record(struct mb_buf *b, mpibind_t *h, int task) {
  struct mpibind_auto_share s;
  char *text = NULL;
  int rc = mpibind_auto_share_of(h, task, 0, &s) != 0
               ? -1
               : mpibind_auto_share_record(&s, &text);
  if (rc == 0 && sb_str(b, text) != 0)
    rc = -1;
  free(text);
  mpibind_auto_share_free(&s);
  return rc;
}

/* Every task's GPU variables, one line per task (record ntasks+1); 1 when
 * a value cannot be written as a field, -1 out of memory. */
static int add_gpu_lines(struct mb_buf *b, mpibind_t *h, int count) {
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

/* Every task's record after the index. */
static int serialize(mpibind_t *h, int count, const char *job_line,
                     char **body, size_t *blen) {
  struct mb_buf recs = {0}, out = {0};
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
      rc = r; /* 1: not writable as lines, no file */
      goto out;
    }
  }
  offs[count] = head + HEXW + recs.len;
  char *rep = node_report(h, job_line);
  if (rep == NULL || sb_str(&recs, rep) != 0) {
    free(rep);
    goto out;
  }
  free(rep);
  offs[count + 1] = head + HEXW + recs.len;
  int g = add_gpu_lines(&recs, h, count);
  if (g != 0) {
    rc = g; /* 1: not writable as lines, no file */
    goto out;
  }
  offs[nrec] = head + HEXW + recs.len;
  snprintf(ent, sizeof ent, "%016zx\n", nrec);
  if (mb_buf_add(&out, ent, HEXW) != 0)
    goto out;
  for (size_t r = 0; r <= nrec; r++) {
    snprintf(ent, sizeof ent, "%016zx\n", offs[r]);
    if (mb_buf_add(&out, ent, HEXW) != 0)
      goto out;
  }
  if (mb_buf_add(&out, recs.p, recs.len) != 0)
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

int mpibind_auto_nodemap_body(const struct mpibind_auto_node_mapping *m,
                              int count, char **body, size_t *len) {
  *body = NULL;
  if (m->keep) {
    *body = mpibind_auto_strdupf(MPIBIND_AUTO_NODEMAP_KEEP "%s\n", m->keep);
    *len = *body ? strlen(*body) : 0;
    return *body ? 0 : -1;
  }
  return serialize(m->h, count, m->job_line, body, len);
}
