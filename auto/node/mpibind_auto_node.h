/*
 * mpibind_auto_node.h - the front door of the node floor of the
 * automatic-binding layer (auto/node/: the code that maps with libmpibind,
 * outside the application's process), for the front ends that map a node
 * themselves or check a user's file: the Slurm plugin (slurmstepd), the
 * Flux plugin (flux-shell) and the command.  Includes the task floor's
 * front door (binding, exports, the tuning), which they use too.
 */
#ifndef MPIBIND_AUTO_NODE_H
#define MPIBIND_AUTO_NODE_H

#include "mpibind_auto_task.h"

#include "discover.h"      /* a user's file checked in the helper; plugins */
#include "drawnode.h"      /* MPIBIND=draw:PATH */
#include "nodemap_write.h" /* a task's share of a mapped handle */
#include "plugin_node.h"   /* the node flow of a launcher's plugin */
#include "steps.h"         /* configure, compute */
#include "topocache.h"     /* the node's topology, once per node */

#endif
