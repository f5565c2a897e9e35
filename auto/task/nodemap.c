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
 * the machine and the mapper as a task can know them without reading a
 * file (mpibind_auto_task_machine_key), the inputs with the launcher's
 * CPUs (inputs.h) and the topology's identity: MPIBIND_TOPOFILE's, or the
 * topology cache file's.  The cache file's identity is the one part of
 * the key that is not in the file's name, and the file names the
 * topology itself: its key's last line is the identity of the topology
 * cache file the helper mapped from (the helper's answer says which),
 * and a task compares it with that file as it is now.  A topology
 * rewritten later (a stale or damaged file replaced, a machine key that
 * changed: another cgroup, other online CPUs, another hwloc) thus
 * replaces the mapping under the same name, and a task never computes
 * the topology's name, which needs the machine key's files of /proc and
 * /sys (machine.c says why that matters).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpualloc.h"
#include "cpuset.h"
#include "keyfile.h"
#include "machine.h"
#include "nodemap.h"
#include "strdupf.h"

#define HEAD "mpibind-nodemap 6\n"
#define END "nodemap-end\n"
/* The key's topology line when the mapping failed before the helper said
 * which topology it had (a failure record: it names none). */
#define NO_TOPOLOGY "topology=(none)"
/* At most this much of the recorded topology line is read: the line of
 * a name "topo-<16 hex digits>.xml" and its numbers. */
#define TOPOLOGY_LINE_MAX 256

void mpibind_auto_map_answer_free(struct mpibind_auto_map_answer *a) {
  free(a->body);
  free(a->topology);
  memset(a, 0, sizeof *a);
}

struct nodemap_ctx {
  struct mpibind_auto_inputs *in;
  int local, want_report;
  mpibind_auto_map_f map;
  void *map_ctx;
  int dirfd;      /* the cache directory, or -1 */
  char *stable;   /* the key up to the topology cache's identity */
  struct mpibind_auto_share *share;
  char **gpu_what;
  const struct mpibind_auto_share_bounds *ok; /* what a record must be */
  struct mpibind_auto_map_answer answer; /* when mapped here */
};

/* The share from a body: 1 taken, 0 unusable. */
static int use_body(struct nodemap_ctx *c, const struct mpibind_auto_body *b) {
  return mpibind_auto_share_from_body(b, c->in->ntasks, c->local,
                                      c->want_report, c->ok, c->share,
                                      c->gpu_what);
}

static int nodemap_use(void *vctx, int fd, off_t off, size_t len) {
  struct mpibind_auto_body b = {fd, off, NULL, len};
  return use_body(vctx, &b);
}

/* The node mapped (by the helper), the share taken from its answer, the
 * body handed to keyfile.c to write. */
static int nodemap_make(void *vctx, char **body, size_t *len, char **error) {
  struct nodemap_ctx *c = vctx;
  struct mpibind_auto_body b;
  *body = NULL;
  if (c->map(c->map_ctx, c->in, &c->answer, error) != 0)
    return -1;
  b = (struct mpibind_auto_body){-1, 0, c->answer.body, c->answer.len};
  if (use_body(c, &b) != 1) {
    *error = mpibind_auto_strdupf("the helper's node mapping cannot be read");
    return -1;
  }
  *body = c->answer.body;
  *len = c->answer.len;
  c->answer.body = NULL;
  return 0;
}

/* The name of the topology cache file that the key line `line` (of a
 * file's key, without its newline) names ("topology=<name> <numbers>"),
 * or NULL when it names none of ours (keyfile.h): a file's content never
 * makes a task look elsewhere. */
static const char *recorded_topology(char *line) {
  static const char pre[] = "topology=";
  char *name = line + sizeof pre - 1, *space;
  if (strncmp(line, pre, sizeof pre - 1) != 0 ||
      (space = strchr(name, ' ')) == NULL)
    return NULL;
  *space = '\0';
  return mpibind_auto_cache_keyed_name(name, "topo-") ? name : NULL;
}

/* The topology line of the key of the file fd, as the file it names is
 * now (malloc'ed; NULL out of memory): what the file recorded when that
 * file is unchanged, another line when it is not (or names none). */
static char *topology_now(struct nodemap_ctx *c, int fd) {
  size_t at = strlen(c->stable);
  char line[TOPOLOGY_LINE_MAX + 1];
  ssize_t got = pread(fd, line, TOPOLOGY_LINE_MAX, (off_t)at);
  const char *name;
  char *nl;
  line[got > 0 ? got : 0] = '\0';
  if ((nl = strchr(line, '\n')) == NULL)
    return strdup("topology=(unreadable)");
  *nl = '\0';
  if (strcmp(line, NO_TOPOLOGY) == 0)
    return strdup(line);
  if ((name = recorded_topology(line)) == NULL)
    return strdup("topology=(unreadable)");
  return mpibind_auto_topology_name_identity(name, c->dirfd);
}

/* The key as it is now (keyfile.h): with MPIBIND_TOPOFILE the stable
 * part (which has that file's identity); otherwise with the topology
 * line the helper that mapped here said, or the one file fd names as
 * that topology is now. */
static char *nodemap_key(void *vctx, int fd) {
  struct nodemap_ctx *c = vctx;
  char *now = NULL, *key;
  const char *topo = "";
  if (!c->in->t->topofile)
    topo = c->answer.topology ? c->answer.topology
           : fd >= 0          ? (now = topology_now(c, fd))
                              : NO_TOPOLOGY;
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
      (file = mpibind_auto_topology_identity(in->t, NULL, -1)) == NULL) {
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

/* One look for the inputs as they are: 0, or -1 with *error; *note:
 * why the cache could not serve the node's tasks (or NULL). */
static int share_once(struct nodemap_ctx *c, const char *machine, int *how,
                      char **error, char **note) {
  static const struct mpibind_auto_once ops = {nodemap_key, nodemap_use,
                                               nodemap_make};
  char *name = NULL, *unwritten = NULL;
  int made = 0, rc;
  c->dirfd = -1;
  c->stable = stable_key(c->in, machine);
  if (c->stable) {
    name = mpibind_auto_strdupf("map-%016llx.txt",
                                (unsigned long long)mpibind_auto_hash(c->stable));
    if (name)
      c->dirfd = mpibind_auto_cache_dirfd(*note ? NULL : note);
  }
  if (c->stable == NULL || name == NULL) {
    *error = mpibind_auto_strdupf("out of memory");
    rc = -1;
  } else {
    rc = mpibind_auto_once(c->dirfd, name, &ops, c, &made, error, &unwritten);
  }
  if (unwritten && *note == NULL)
    *note = unwritten;
  else
    free(unwritten);
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

/* What a record must satisfy here (nodemap.h): the launcher's CPUs (as
 * the key has them) within the job's when they are a list, and with
 * membind the node's online NUMA nodes.  Sets that cannot be read leave
 * the bound unknown (NULL). */
static void bounds_of(const struct mpibind_auto_inputs *in,
                      struct mpibind_auto_cpuset *cpus,
                      struct mpibind_auto_cpuset *mems,
                      struct mpibind_auto_share_bounds *ok) {
  struct mpibind_auto_cpuset job = MPIBIND_AUTO_CPUSET_INIT;
  const char *j = in->job_cpus;
  memset(ok, 0, sizeof *ok);
  ok->dryrun = in->t->dryrun;
  if (in->launch_cpus &&
      mpibind_auto_cpuset_parse_list(cpus, in->launch_cpus) == 0) {
    ok->cpus = cpus;
    /* "(node)" and "(unknown)" are not lists */
    if (j && j[0] != '(' && mpibind_auto_cpuset_parse_list(&job, j) == 0)
      mpibind_auto_cpuset_and(cpus, &job);
  }
  if (in->t->membind) {
    char *nodes = mpibind_auto_read_line("/sys/devices/system/node/online");
    /* a kernel without NUMA has node 0 alone */
    if (mpibind_auto_cpuset_parse_list(mems, nodes && *nodes ? nodes : "0") ==
        0)
      ok->mems = mems;
    free(nodes);
  }
  mpibind_auto_cpuset_free(&job);
}

int mpibind_auto_node_share(struct mpibind_auto_inputs *in, int local,
                            int want_report, mpibind_auto_map_f map,
                            void *ctx, struct mpibind_auto_share *s,
                            int *how, char **gpu_what, char **error) {
  char *machine = mpibind_auto_task_machine_key(), *note = NULL;
  struct mpibind_auto_cpuset cpus = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_cpuset mems = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_share_bounds ok;
  struct nodemap_ctx c = {in, local, want_report, map, ctx, -1,
                          NULL, s, gpu_what, &ok, {NULL, 0, 0, NULL}};
  int rc;
  memset(s, 0, sizeof *s);
  *error = NULL;
  *how = MPIBIND_TOPO_NONE;
  if (machine == NULL) {
    *error = mpibind_auto_strdupf("cannot read this node's identity (host "
                                  "name) or out of memory");
    return -1;
  }
  bounds_of(in, &cpus, &mems, &ok);
  rc = share_once(&c, machine, how, error, &note);
  if (rc == 0 && s->slot < 0 && s->keep == NULL) {
    /* no task of the node's mapping has this task's GPUs: its lists are
     * the node's allocation after all (gpualloc.c) */
    mpibind_auto_share_free(s);
    mpibind_auto_gpu_own_as_allocation(in->gpu_alloc);
    free(*gpu_what);
    *gpu_what = NULL;
    rc = share_once(&c, machine, how, error, &note);
  }
  s->note = note;
  mpibind_auto_cpuset_free(&cpus);
  mpibind_auto_cpuset_free(&mems);
  free(machine);
  return rc;
}
