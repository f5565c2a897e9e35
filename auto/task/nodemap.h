/*
 * nodemap.h - the node's mapping computed once per node and set of
 * inputs, in the helper; every task reads only its own share of it from
 * the node mapping file (nodemap.c says why and how).  libc only: this is
 * the protocol and the key (nodemap.c) and the reader of a body
 * (nodemap_read.c); the writer is auto/node/nodemap_write.c.
 *
 * File: <cache dir>/map-<hash>.txt (keyfile.h), key then body:
 *
 *   key    "mpibind-nodemap 6\n", the task's machine key (machine.h),
 *          the inputs (inputs.h), the topology's identity line (the
 *          cache file's, "topology=topo-<16 hex>.xml ...", which a task
 *          checks against that file; "topology=(none)" in a failure
 *          record; empty with MPIBIND_TOPOFILE, whose identity is in the
 *          inputs' lines), "nodemap-end\n"
 *   body   R\n                      R = ntasks + 2 records, 16 hex digits
 *          off_0\n ... off_R\n      16 hex digits each, from the body's
 *                                   start
 *          record 0 .. ntasks-1     a task's share: "cpus=<list>\n"
 *                                   "nthreads=<n>\n" ["mems=<list>\n"]
 *                                   ["gpus=<list>\n"]
 *                                   "<NAME>=<value>\n"... (mems: the NUMA
 *                                   nodes of the task's CPUs, membind;
 *                                   gpus: the task's GPUs, visible
 *                                   indexes, on a node with GPUs)
 *          record ntasks            the verbose report of the node (its
 *                                   first line the job's CPUs when the
 *                                   mapping is limited to them)
 *          record ntasks+1          every task's GPU variables, one line
 *                                   each: "<task>\t<NAME>=<value>\t...\n"
 *   or     "keep: <why>\n"          the job's CPUs here are unknown: every
 *                                   task keeps the launcher's binding
 *   or     "failed: <message>\n"    (keyfile.h) a failure, for a minute
 */
#ifndef MPIBIND_AUTO_NODEMAP_H
#define MPIBIND_AUTO_NODEMAP_H

#include <stddef.h>
#include <sys/types.h>

#include "cpuset.h"
#include "inputs.h"

#define MPIBIND_AUTO_NODEMAP_HEXW 17   /* "%016zx\n" */
#define MPIBIND_AUTO_NODEMAP_EXTRA 2   /* the report and the GPU lines */
#define MPIBIND_AUTO_NODEMAP_KEEP "keep: "
/* The report's first line when the mapping is limited to the job's CPUs
 * (then "<list>: <where they come from>"). */
#define MPIBIND_AUTO_NODEMAP_JOB_LINE "mpibind: mapping within CPUs "

/* One task's share of the node's mapping. */
struct mpibind_auto_share {
  char *cpus;    /* the task's CPUs, hwloc list */
  int nthreads;  /* its thread count */
  char *mems;    /* the NUMA nodes of its CPUs, hwloc list (membind);
                    NULL when the topology has none */
  char *gpus;    /* its GPUs in the mapping, visible indexes comma-
                    separated (its own, whatever its visible-devices
                    variables say); NULL on a node without GPUs */
  int nvars;     /* its variables (docs/algorithm.md step 6), in order */
  char **names;
  char **values;
  char *report;  /* the node's verbose report (lines), when asked for */
  int slot;      /* the task of the mapping it is the share of; -1: no
                    task of the node's mapping has this task's GPUs */
  char *keep;    /* not NULL: the job's CPUs here are unknown (why); the
                    task keeps the launcher's binding, the rest is empty */
  char *note;    /* not NULL: why the cache could not serve the node's
                    tasks (an unusable MPIBIND_CACHE_DIR, a file system
                    that takes no file): one line for the node's task 0 */
};

void mpibind_auto_share_free(struct mpibind_auto_share *s);
/* The share as a record (the form above, also the helper's --share
 * answer): 0 with *text (malloc'ed), 1 when it cannot be written as
 * lines (a value with a newline, a name with '='), -1 out of memory. */
int mpibind_auto_share_record(const struct mpibind_auto_share *s,
                              char **text);

/* A node mapping file's body: in the file (fd, from offset off), or in
 * memory (fd -1: mem), len bytes. */
struct mpibind_auto_body {
  int fd;
  off_t off;
  const char *mem;
  size_t len;
};

/* What a record must satisfy to be applied on this node. */
struct mpibind_auto_share_bounds {
  int dryrun;  /* nothing is bound: its lists need only be lists */
  const struct mpibind_auto_cpuset *cpus; /* the CPUs a record may name:
                                             the launcher's CPUs
                                             within the job's; NULL:
                                             unknown (lists only) */
  const struct mpibind_auto_cpuset *mems; /* the NUMA nodes its mems may
                                             name (membind); NULL: not
                                             checked */
};

/* Task `local`'s share (of `ntasks`) from a body, with the node's report
 * when want_report; with per-task GPU lists (gpualloc.h), the share of
 * the mapping's task that has the task's GPUs (*gpu_what says so;
 * s->slot -1 when none has them).  1 taken into *s, 0 when the body
 * cannot be used here: malformed, or a record that cannot be applied
 * under `ok` (a CPU outside ok->cpus, an empty list, an index beyond the
 * node's), which the caller then maps again.  Costs the body's
 * lengths read and the node's size, never what a record's numbers say.
 * (nodemap_read.c) */
int mpibind_auto_share_from_body(const struct mpibind_auto_body *b,
                                 int ntasks, int local, int want_report,
                                 const struct mpibind_auto_share_bounds *ok,
                                 struct mpibind_auto_share *s,
                                 char **gpu_what);

/* What the helper (or this process, when it is the helper) answers for a
 * node's mapping. */
struct mpibind_auto_map_answer {
  char *body;     /* the node mapping file's body (malloc'ed) */
  size_t len;
  int how;        /* MPIBIND_TOPO_*: where the topology came from */
  char *topology; /* the topology's identity line it mapped (machine.h),
                     NULL with MPIBIND_TOPOFILE */
};
void mpibind_auto_map_answer_free(struct mpibind_auto_map_answer *a);

/* Maps the node for the inputs in: 0 with *a, or -1 with *error (one
 * line, recorded for the node's other tasks for a minute). */
typedef int (*mpibind_auto_map_f)(void *ctx,
                                  const struct mpibind_auto_inputs *in,
                                  struct mpibind_auto_map_answer *a,
                                  char **error);

/* Fills *s with task `local`'s share of the node's mapping for `in`
 * (want_report: with the node's report): read from the node mapping file
 * when one exists for this machine, mapper, topology and inputs,
 * otherwise mapped by map(ctx) (the node's first task) and written for
 * the others.  With per-task GPU lists (gpualloc.h) the share is that of
 * the mapping's task that has the task's GPUs (*gpu_what says so); when
 * none has them, the task's lists are the node's allocation (in changes)
 * and the share is read or mapped for those inputs.  *how: where the
 * topology came from (MPIBIND_TOPO_FILE or _CACHE when read).  0, or -1
 * with *error (this task's failure or the first task's). */
int mpibind_auto_node_share(struct mpibind_auto_inputs *in, int local,
                            int want_report, mpibind_auto_map_f map,
                            void *ctx, struct mpibind_auto_share *s,
                            int *how, char **gpu_what, char **error);

#endif
