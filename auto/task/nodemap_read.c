/*
 * nodemap_read.c - a task's share read from a node mapping file's body,
 * and a share written as a record (nodemap.h has the format).
 *
 * Why a record is checked before it is used: the file is read by every
 * later launch with the same inputs, so a record that cannot be applied
 * here (a CPU the node lacks, an empty list, one outside the job's CPUs)
 * would make each of them run unbound, and a list with a huge index
 * (cpus=0,4294967295) would cost each task memory in proportion to the
 * number.  Such a body counts as unusable: the node is mapped again and
 * the file replaced.  Reading a record costs its length and the node's
 * size, never what its numbers say.
 *
 * The reader is apart from the protocol (nodemap.c) so that the fuzz
 * target (tests/fuzz/fuzz_nodemap.c) runs it alone, on bodies in memory.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpualloc.h"
#include "keyfile.h"
#include "mb_text.h"
#include "nodemap.h"

#define HEXW MPIBIND_AUTO_NODEMAP_HEXW
#define EXTRA MPIBIND_AUTO_NODEMAP_EXTRA

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
  free(s->gpus);
  free(s->keep);
  free(s->note);
  memset(s, 0, sizeof *s);
}

/* ---- a task's record ------------------------------------------------- */

int mpibind_auto_share_record(const struct mpibind_auto_share *s,
                              char **text) {
  size_t len = 64 + strlen(s->cpus) + (s->mems ? strlen(s->mems) : 0) +
               (s->gpus ? strlen(s->gpus) + 6 : 0);
  char *p;
  *text = NULL;
  for (int i = 0; i < s->nvars; i++) {
    if (strpbrk(s->names[i], "=\n") || strchr(s->values[i], '\n'))
      return 1;
    len += strlen(s->names[i]) + strlen(s->values[i]) + 2;
  }
  if (strchr(s->cpus, '\n') || (s->mems && strchr(s->mems, '\n')) ||
      (s->gpus && strchr(s->gpus, '\n')))
    return 1;
  p = *text = malloc(len);
  if (p == NULL)
    return -1;
  p += sprintf(p, "cpus=%s\nnthreads=%d\n", s->cpus, s->nthreads);
  if (s->mems)
    p += sprintf(p, "mems=%s\n", s->mems);
  if (s->gpus)
    p += sprintf(p, "gpus=%s\n", s->gpus);
  for (int i = 0; i < s->nvars; i++)
    p += sprintf(p, "%s=%s\n", s->names[i], s->values[i]);
  return 0;
}

/* Appends a variable to the share; -1 out of memory. */
static int add_var(struct mpibind_auto_share *s, const char *name,
                   const char *value) {
  char **nn = realloc(s->names, (s->nvars + 1) * sizeof *nn);
  if (nn == NULL)
    return -1;
  s->names = nn;
  char **nv = realloc(s->values, (s->nvars + 1) * sizeof *nv);
  if (nv == NULL)
    return -1;
  s->values = nv;
  s->names[s->nvars] = strdup(name);
  s->values[s->nvars] = strdup(value);
  s->nvars++;
  return s->names[s->nvars - 1] && s->values[s->nvars - 1] ? 0 : -1;
}

/* Reads a record's lines into the share (empty lines skipped). */
static int parse_record(char *rec, struct mpibind_auto_share *s) {
  char *next;
  for (char *line = rec; *line; line = next) {
    char *nl = strchr(line, '\n');
    next = nl ? nl + 1 : line + strlen(line);
    if (nl)
      *nl = '\0';
    if (*line == '\0')
      continue;
    char *eq = strchr(line, '=');
    if (eq == NULL)
      return -1;
    *eq = '\0';
    if (strcmp(line, "cpus") == 0) {
      free(s->cpus);
      if ((s->cpus = strdup(eq + 1)) == NULL)
        return -1;
    } else if (strcmp(line, "mems") == 0) {
      free(s->mems);
      if ((s->mems = strdup(eq + 1)) == NULL)
        return -1;
    } else if (strcmp(line, "gpus") == 0) {
      free(s->gpus);
      if ((s->gpus = strdup(eq + 1)) == NULL)
        return -1;
    } else if (strcmp(line, "nthreads") == 0) {
      long long v;
      /* the tuning's bound (OMP_NUM_THREADS), which the writer follows */
      if (mb_parse_decimal(eq + 1, strlen(eq + 1), 0,
                           MPIBIND_AUTO_NTHREADS_MAX, &v) != 0)
        return -1;
      s->nthreads = (int)v;
    } else if (add_var(s, line, eq + 1) != 0) {
      return -1;
    }
  }
  return s->cpus != NULL ? 0 : -1;
}

/* 1 when the share can be applied under the bounds (nodemap.h).  Its
 * gpus line is not checked: nothing is bound from it (the task's GPUs
 * reach it through its variables); it is only reported (the helper's
 * --share, bind_task's share), its entries the visible-devices entries
 * whatever their form, and it costs its length. */
static int applicable(const struct mpibind_auto_share *s,
                      const struct mpibind_auto_share_bounds *ok) {
  if (ok->dryrun || ok->cpus == NULL)
    /* nothing is bound: a list need only be a list (checked without a
     * set: its numbers cost nothing) */
    return mpibind_auto_cpuset_parse_list_within(NULL, s->cpus, NULL) == 0;
  /* "" is the one list without a CPU */
  return s->cpus[0] != '\0' &&
         mpibind_auto_cpuset_parse_list_within(NULL, s->cpus, ok->cpus) == 0 &&
         /* no NUMA node in the record: membind says so itself */
         (ok->mems == NULL || s->mems == NULL ||
          mpibind_auto_cpuset_parse_list_within(NULL, s->mems, ok->mems) ==
              0);
}

/* ---- reading a body, in the file or in memory ------------------------ */

static int body_read(const struct mpibind_auto_body *b, char *buf, size_t n,
                     size_t at) {
  if (at > b->len || n > b->len - at)
    return -1;
  if (b->fd < 0) {
    memcpy(buf, b->mem + at, n);
    return 0;
  }
  return mpibind_auto_pread_exact(b->fd, buf, n, b->off + (off_t)at);
}

/* The number of an index entry: HEXW - 1 lowercase hex digits (as the
 * writer puts them) and the newline.  0, or -1 when s is not one.  A loop
 * rather than strtoull, which also takes blanks, signs and "0x": the
 * entry is what the writer wrote or nothing, and a rank's warm path calls
 * no libc function it can do without (nodemap.c). */
static int index_entry(const char *s, unsigned long long *v) {
  *v = 0;
  for (int i = 0; i < HEXW - 1; i++) {
    int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
            : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                         : -1;
    if (d < 0)
      return -1;
    *v = *v << 4 | (unsigned)d;
  }
  return s[HEXW - 1] == '\n' ? 0 : -1;
}

/* Record r ([start, end) from the index) as a string; NULL when the index
 * is not sane. */
static char *read_record(const struct mpibind_auto_body *b, int r, int nrec) {
  char ent[2 * HEXW + 1], *rec;
  size_t head = (size_t)HEXW * ((size_t)nrec + 2);
  unsigned long long a, z;
  if (body_read(b, ent, 2 * HEXW, (size_t)HEXW * (size_t)(r + 1)) != 0)
    return NULL;
  ent[2 * HEXW] = '\0';
  if (index_entry(ent, &a) != 0 || index_entry(ent + HEXW, &z) != 0 ||
      a < head || a > z || z > b->len)
    return NULL;
  rec = malloc((size_t)(z - a) + 1);
  if (rec == NULL || body_read(b, rec, (size_t)(z - a), (size_t)a) != 0) {
    free(rec);
    return NULL;
  }
  rec[z - a] = '\0';
  /* the writer ends every record that has lines with its last newline:
   * an index entry moved off a record's bounds (a damaged or edited
   * file) cuts a line, which must not be taken for a value */
  if (strlen(rec) != z - a || (z > a && rec[z - a - 1] != '\n')) {
    free(rec);
    return NULL;
  }
  return rec;
}

/* The task of the mapping whose share this task takes: its own number, or,
 * with per-task GPU lists, the one the GPU lines name (-1: none); -2 when
 * the lines cannot be read. */
static int pick_slot(const struct mpibind_auto_body *b, int ntasks,
                     int local, int nrec, char **gpu_what) {
  int slot = local;
  if (!mpibind_auto_gpu_any_per_task())
    return slot;
  char *gpus = read_record(b, ntasks + 1, nrec);
  if (gpus == NULL)
    return -2;
  if (mpibind_auto_gpu_slot_in(gpus, local, &slot, gpu_what) != 0)
    slot = -1;
  free(gpus);
  return slot >= 0 && slot < ntasks ? slot : -1;
}

/* "keep: <why>\n": one line, written by the helper; a bounded part is
 * read.  1 taken, 0 unusable. */
static int read_keep(const struct mpibind_auto_body *b,
                     struct mpibind_auto_share *s) {
  static const char keep[] = MPIBIND_AUTO_NODEMAP_KEEP;
  size_t len = b->len < 4096 ? b->len : 4096;
  char *why = calloc(1, len + 1);
  if (why == NULL || body_read(b, why, len, 0) != 0) {
    free(why);
    return 0;
  }
  memmove(why, why + sizeof keep - 1, len - (sizeof keep - 1) + 1);
  why[strcspn(why, "\n")] = '\0';
  s->keep = why;
  return 1;
}

int mpibind_auto_share_from_body(const struct mpibind_auto_body *b,
                                 int ntasks, int local, int want_report,
                                 const struct mpibind_auto_share_bounds *ok,
                                 struct mpibind_auto_share *s,
                                 char **gpu_what) {
  static const char keep[] = MPIBIND_AUTO_NODEMAP_KEEP;
  char head[HEXW + 1], *rec;
  unsigned long long count;
  int nrec = ntasks + EXTRA, slot;
  size_t n = b->len < HEXW ? b->len : HEXW;
  if (ntasks < 1 || local < 0 || local >= ntasks ||
      body_read(b, head, n, 0) != 0)
    return 0;
  head[n] = '\0';
  if (strncmp(head, keep, sizeof keep - 1) == 0)
    return read_keep(b, s);
  if (n < HEXW || index_entry(head, &count) != 0 ||
      count != (unsigned long long)nrec)
    return 0;
  slot = pick_slot(b, ntasks, local, nrec, gpu_what);
  if (slot == -2)
    return 0;
  s->slot = slot;
  if (slot < 0)
    return 1; /* a valid mapping that has no task for this one's GPUs */
  rec = read_record(b, slot, nrec);
  if (rec == NULL || parse_record(rec, s) != 0 || !applicable(s, ok) ||
      (want_report && (s->report = read_record(b, ntasks, nrec)) == NULL)) {
    free(rec);
    mpibind_auto_share_free(s);
    return 0;
  }
  free(rec);
  s->slot = slot;
  return 1;
}
