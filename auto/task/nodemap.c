/*
 * nodemap.c - the node's mapping once per node; every task reads only its
 * own share (the file's format: nodemap.h).
 *
 * Why: mapping a node means parsing its whole topology and mapping every
 * task, which grows with the node (about 110 ms at 8192 PUs), and needs
 * hwloc and libmpibind, which must not be loaded into the application.
 * The node's first task has the helper map the node for its inputs and
 * writes every task's result into the cache directory; a task that finds
 * it reads the key, a fixed-size index entry and its own record, and
 * binds to the CPUs there: a few small reads, whatever the node's size.
 *
 * The file is a keyfile.h file (same safety checks and lock protocol as
 * the topology cache).  Its key holds everything the mapping depends on:
 * the machine and the mapper (machine.h), the inputs (inputs.h) and the
 * topology's identity: MPIBIND_TOPOFILE's, or the topology cache file's.
 * The cache file's identity is the one part of the key that is not in the
 * file's name: on a node without a topology yet the first task keys its
 * look with "none", the helper discovers and writes the topology, and
 * the mapping is written under the identity of the file the helper wrote
 * (it says which); the tasks that waited for the name's lock look again
 * with the identity they now find, and a topology rewritten later (a
 * stale or damaged file replaced) replaces the mapping under the same
 * name.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpualloc.h"
#include "keyfile.h"
#include "machine.h"
#include "mb_text.h"
#include "nodemap.h"
#include "strdupf.h"

#define HEXW MPIBIND_AUTO_NODEMAP_HEXW
#define EXTRA MPIBIND_AUTO_NODEMAP_EXTRA
#define HEAD "mpibind-nodemap 5\n"
#define END "nodemap-end\n"

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
  memset(s, 0, sizeof *s);
}

void mpibind_auto_map_answer_free(struct mpibind_auto_map_answer *a) {
  free(a->body);
  free(a->topology);
  memset(a, 0, sizeof *a);
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
      if (mb_parse_decimal(eq + 1, strlen(eq + 1), 0, 1L << 30, &v) != 0)
        return -1;
      s->nthreads = (int)v;
    } else if (add_var(s, line, eq + 1) != 0) {
      return -1;
    }
  }
  return s->cpus != NULL ? 0 : -1;
}

/* ---- reading a body, in the file or in memory ------------------------ */

struct body {
  int fd;          /* the file, or -1: mem */
  off_t off;       /* the body's offset in the file */
  const char *mem; /* the body in memory (the helper's answer) */
  size_t len;
};

static int body_read(const struct body *b, char *buf, size_t n, size_t at) {
  if (at > b->len || n > b->len - at)
    return -1;
  if (b->fd < 0) {
    memcpy(buf, b->mem + at, n);
    return 0;
  }
  return mpibind_auto_pread_exact(b->fd, buf, n, b->off + (off_t)at);
}

/* Record r ([start, end) from the index) as a string; NULL when the index
 * is not sane. */
static char *read_record(const struct body *b, int r, int nrec) {
  char ent[2 * HEXW + 1], *rec, *end;
  size_t head = (size_t)HEXW * ((size_t)nrec + 2);
  if (body_read(b, ent, 2 * HEXW, (size_t)HEXW * (size_t)(r + 1)) != 0)
    return NULL;
  ent[2 * HEXW] = '\0';
  if (ent[HEXW - 1] != '\n' || ent[2 * HEXW - 1] != '\n')
    return NULL;
  unsigned long long a = strtoull(ent, &end, 16);
  if (end != ent + HEXW - 1)
    return NULL;
  unsigned long long z = strtoull(ent + HEXW, &end, 16);
  if (end != ent + 2 * HEXW - 1 || a < head || a > z || z > b->len)
    return NULL;
  rec = malloc((size_t)(z - a) + 1);
  if (rec == NULL || body_read(b, rec, (size_t)(z - a), (size_t)a) != 0) {
    free(rec);
    return NULL;
  }
  rec[z - a] = '\0';
  if (strlen(rec) != z - a) {
    free(rec);
    return NULL;
  }
  return rec;
}

struct nodemap_ctx {
  struct mpibind_auto_inputs *in;
  int local, want_report;
  mpibind_auto_map_f map;
  void *map_ctx;
  const char *machine;
  int dirfd;      /* the cache directory, or -1 */
  char *stable;   /* the key up to the topology cache's identity */
  struct mpibind_auto_share *share;
  char **gpu_what;
  struct mpibind_auto_map_answer answer; /* when mapped here */
};

/* The task of the mapping whose share this task takes: its own number, or,
 * with per-task GPU lists, the one the GPU lines name (-1: none); -2 when
 * the lines cannot be read. */
static int pick_slot(struct nodemap_ctx *c, const struct body *b, int nrec) {
  int slot = c->local;
  if (!mpibind_auto_gpu_any_per_task())
    return slot;
  char *gpus = read_record(b, c->in->ntasks + 1, nrec);
  if (gpus == NULL)
    return -2;
  if (mpibind_auto_gpu_slot_in(gpus, c->local, &slot, c->gpu_what) != 0)
    slot = -1;
  free(gpus);
  return slot >= 0 && slot < c->in->ntasks ? slot : -1;
}

/* The share from a body: 1 taken, 0 unusable. */
static int use_body(struct nodemap_ctx *c, const struct body *b) {
  static const char keep[] = MPIBIND_AUTO_NODEMAP_KEEP;
  char head[HEXW + 1], *end, *rec;
  int nrec = c->in->ntasks + EXTRA, slot;
  size_t n = b->len < HEXW ? b->len : HEXW;
  if (body_read(b, head, n, 0) != 0)
    return 0;
  head[n] = '\0';
  if (strncmp(head, keep, sizeof keep - 1) == 0) {
    /* one line, written by the helper: a bounded part is read */
    size_t len = b->len < 4096 ? b->len : 4096;
    char *why = calloc(1, len + 1);
    if (why == NULL || body_read(b, why, len, 0) != 0) {
      free(why);
      return 0;
    }
    memmove(why, why + sizeof keep - 1, len - (sizeof keep - 1) + 1);
    why[strcspn(why, "\n")] = '\0';
    c->share->keep = why;
    return 1;
  }
  if (n < HEXW || strtoull(head, &end, 16) != (unsigned long long)nrec ||
      end != head + HEXW - 1)
    return 0;
  slot = pick_slot(c, b, nrec);
  if (slot == -2)
    return 0;
  c->share->slot = slot;
  if (slot < 0)
    return 1; /* a valid mapping that has no task for this one's GPUs */
  rec = read_record(b, slot, nrec);
  if (rec == NULL || parse_record(rec, c->share) != 0 ||
      (c->want_report &&
       (c->share->report = read_record(b, c->in->ntasks, nrec)) == NULL)) {
    free(rec);
    mpibind_auto_share_free(c->share);
    return 0;
  }
  free(rec);
  c->share->slot = slot;
  return 1;
}

static int nodemap_use(void *vctx, int fd, off_t off, size_t len) {
  struct body b = {fd, off, NULL, len};
  return use_body(vctx, &b);
}

/* The node mapped (by the helper), the share taken from its answer, the
 * body handed to keyfile.c to write. */
static int nodemap_make(void *vctx, char **body, size_t *len, char **error) {
  struct nodemap_ctx *c = vctx;
  struct body b;
  *body = NULL;
  if (c->map(c->map_ctx, c->in, &c->answer, error) != 0)
    return -1;
  b = (struct body){-1, 0, c->answer.body, c->answer.len};
  if (use_body(c, &b) != 1) {
    *error = mpibind_auto_strdupf("the helper's node mapping cannot be read");
    return -1;
  }
  *body = c->answer.body;
  *len = c->answer.len;
  c->answer.body = NULL;
  return 0;
}

/* The key as it is now: the topology cache's identity as the helper that
 * mapped said, or as it is on disk. */
static char *nodemap_key(void *vctx) {
  struct nodemap_ctx *c = vctx;
  char *now = NULL, *key;
  const char *topo = "";
  if (!c->in->t->topofile)
    topo = c->answer.topology
               ? c->answer.topology
               : (now = mpibind_auto_topology_identity(c->in->t, c->machine,
                                                       c->dirfd));
  key = topo ? mpibind_auto_strdupf("%s%s\n" END, c->stable, topo) : NULL;
  free(now);
  return key;
}

/* The part of the key that names the file: all but the topology cache's
 * identity (MPIBIND_TOPOFILE's is an input: another file, another
 * mapping). */
static char *stable_key(const struct mpibind_auto_inputs *in,
                        const char *machine) {
  char *inputs = mpibind_auto_inputs_key(in), *file = NULL, *key;
  if (in->t->topofile &&
      (file = mpibind_auto_topology_identity(in->t, machine, -1)) == NULL) {
    free(inputs);
    return NULL;
  }
  key = inputs ? mpibind_auto_strdupf(HEAD "%s%s%s%s", machine, inputs,
                                      file ? file : "", file ? "\n" : "")
               : NULL;
  free(inputs);
  free(file);
  return key;
}

/* One look for the inputs as they are: 0, or -1 with *error. */
static int share_once(struct nodemap_ctx *c, int *how, char **error) {
  static const struct mpibind_auto_once ops = {nodemap_key, nodemap_use,
                                               nodemap_make};
  char *name = NULL;
  int made = 0, rc;
  c->dirfd = -1;
  c->stable = stable_key(c->in, c->machine);
  if (c->stable) {
    name = mpibind_auto_strdupf("map-%016llx.txt",
                                (unsigned long long)mpibind_auto_hash(c->stable));
    if (name)
      c->dirfd = mpibind_auto_cache_dirfd();
  }
  if (c->stable == NULL || name == NULL) {
    *error = mpibind_auto_strdupf("out of memory");
    rc = -1;
  } else {
    rc = mpibind_auto_once(c->dirfd, name, &ops, c, &made, error);
  }
  if (c->dirfd >= 0)
    close(c->dirfd);
  c->dirfd = -1;
  *how = made ? c->answer.how
         : c->in->t->topofile ? MPIBIND_TOPO_FILE
                              : MPIBIND_TOPO_CACHE;
  if (rc != 0)
    mpibind_auto_share_free(c->share);
  mpibind_auto_map_answer_free(&c->answer);
  free(c->stable);
  c->stable = NULL;
  free(name);
  return rc;
}

int mpibind_auto_node_share(struct mpibind_auto_inputs *in, int local,
                            int want_report, mpibind_auto_map_f map,
                            void *ctx, struct mpibind_auto_share *s,
                            int *how, char **gpu_what, char **error) {
  char *machine = mpibind_auto_machine_key_with(in->online);
  struct nodemap_ctx c = {in, local, want_report, map, ctx, machine, -1,
                          NULL, s, gpu_what, {NULL, 0, 0, NULL}};
  int rc;
  memset(s, 0, sizeof *s);
  *error = NULL;
  *how = MPIBIND_TOPO_NONE;
  if (machine == NULL) {
    *error = mpibind_auto_strdupf("cannot read this node's identity (host "
                                  "name) or out of memory");
    return -1;
  }
  rc = share_once(&c, how, error);
  if (rc == 0 && s->slot < 0 && s->keep == NULL) {
    /* no task of the node's mapping has this task's GPUs: its lists are
     * the node's allocation after all (gpualloc.c) */
    mpibind_auto_share_free(s);
    mpibind_auto_gpu_own_as_allocation(in->gpu_alloc);
    free(*gpu_what);
    *gpu_what = NULL;
    rc = share_once(&c, how, error);
  }
  free(machine);
  return rc;
}
