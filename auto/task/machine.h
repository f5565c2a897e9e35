/*
 * machine.h - what identifies this machine as the process sees it, the
 * mapper that maps it, and the files that describe its topology: the keys
 * of the per-node cache (keyfile.h).  Computed alike by every task (for
 * the node mapping file, nodemap.c) and by the helper (for the topology
 * file, auto/node/topocache.c), without hwloc.  libc only.
 */
#ifndef MPIBIND_AUTO_MACHINE_H
#define MPIBIND_AUTO_MACHINE_H

#include "tuning.h"

/* Where a task's topology came from (MPIBIND_TRACE's topology=). */
enum {
  MPIBIND_TOPO_NONE = 0,
  MPIBIND_TOPO_DISCOVERED,
  MPIBIND_TOPO_CACHE,
  MPIBIND_TOPO_FILE
};
/* Their names, by value (MPIBIND_TRACE, the helper's answer). */
extern const char *const mpibind_auto_how_names[4];

/* The first line of a topology cache file's key. */
#define MPIBIND_AUTO_TOPOLOGY_HEAD "mpibind-topology-cache 2\n"

/* The topology cache's machine key, "name=value" lines (no end mark):
 * the project's version and the mapper's identity (the helper and the
 * libmpibind it loads: device, inode, size, modification time), host
 * name, uid, the process's cpuset cgroup and its CPUs and memories,
 * online CPUs, HWLOC_* variables.  It reads files of /proc and /sys: the
 * helper's and the plugins' key, not a task's.  NULL when out of memory
 * or without a host name. */
char *mpibind_auto_machine_key(void);
/* The node mapping file's machine lines, from system calls only (a task
 * computes it in every launch): the same lines but the cgroup's and the
 * online CPUs, which give way to the memories the process may use
 * (mpibind_auto_mems_allowed).  The CPUs are the inputs' (the launcher's,
 * inputs.h) and the topology is checked by the file itself (nodemap.h).
 * NULL when out of memory or without a host name. */
char *mpibind_auto_task_machine_key(void);

/* A small system file as one line (newlines inside made ';', trailing
 * blanks removed), malloc'ed; "" when unreadable, NULL out of memory. */
char *mpibind_auto_read_line(const char *path);

/* The topology cache file's name for this machine key,
 * "topo-<16 hex digits>.xml" (malloc'ed, NULL out of memory). */
char *mpibind_auto_topology_cache_name(const char *machine);

/* What the node's mapping must be recomputed for when it changes, one
 * line: MPIBIND_TOPOFILE's identity (path, device, inode, size, times),
 * or the topology cache file's (name, inode, size, times; "none" when
 * there is none) in the cache directory dirfd (-1: opened here).
 * malloc'ed, NULL out of memory. */
char *mpibind_auto_topology_identity(const struct mpibind_auto_tuning *t,
                                     const char *machine, int dirfd);
/* The topology cache file's identity line by the file's name (as
 * mpibind_auto_topology_identity gives it for the machine whose cache
 * name it is).  malloc'ed, NULL out of memory. */
char *mpibind_auto_topology_name_identity(const char *name, int dirfd);

#endif
