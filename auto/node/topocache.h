/*
 * topocache.h - where a node's topology comes from, with at most one
 * hardware discovery per node (topocache.c says how).
 */
#ifndef MPIBIND_AUTO_TOPOCACHE_H
#define MPIBIND_AUTO_TOPOCACHE_H

#include "helper.h"
#include "mpibind.h"
#include "tuning.h"

/* Gives the handle its topology: MPIBIND_TOPOFILE's file (first parsed
 * in the helper; it must describe this node unless dryrun), or the
 * per-node cache when a valid one exists, otherwise a discovery in the
 * helper, written to the cache for the node's other mappers.  For a
 * process that is not the helper (the Slurm plugin).  The handle owns the
 * topology.  On success returns 0 and sets *how (MPIBIND_TOPO_*); returns
 * -1 with *error (one line) when the topology cannot be had.  Cache
 * problems are never errors: they cost a discovery. */
int mpibind_auto_topology(mpibind_t *h, const struct mpibind_auto_tuning *t,
                          int *how, char **error);

/* The same in the helper itself: the file parsed and the discovery run in
 * this process, each announced first with step(), so that a crash or a
 * hang in it is reported as what it is (maprequest.h).  *identity: the
 * cache file's identity line (machine.h) after the topology was had, NULL
 * with MPIBIND_TOPOFILE. */
int mpibind_auto_topology_in_helper(mpibind_t *h,
                                    const struct mpibind_auto_tuning *t,
                                    void (*step)(enum mpibind_auto_helper_step),
                                    int *how, char **identity, char **error);

#endif
