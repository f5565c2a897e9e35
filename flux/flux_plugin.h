/*
 * flux_plugin.h - the pieces of the Flux shell plugin mpibind_flux.so that
 * are Flux's own (the node's flow and every rule of the mapping are the
 * layer's: auto/node/plugin_node.h).  Each returns what it says, or NULL / -1
 * with *msg (malloc'ed, one line naming the value).
 */
#ifndef MPIBIND_FLUX_PLUGIN_H
#define MPIBIND_FLUX_PLUGIN_H

#include <hwloc.h>

#include "mpibind.h"

/* option.c: the value of `-o mpibind[=...]` (JSON, as the shell keeps its
 * options) as a word list of the project's grammar (MPIBIND's), malloc'ed,
 * judged by the grammar (mpibind_auto_tuning_words).  1 or true is on, 0
 * or false off; a string holding a word is the list itself, where the
 * original Flux plugin's spelling WORD:N of a word that takes no value
 * (verbose:1) means WORD when N > 0 and nothing when N is 0; an object
 * (-o mpibind.smt=2 -o mpibind.verbose) gives one word per key,
 * KEY:VALUE read the same way.  Anything else (another number, an empty
 * value, a list, null, a word the grammar refuses): NULL with *msg, one
 * line naming the value as the user typed it and what was expected. */
char *mpibind_flux_option_words(const char *json, char **msg);

/* gpu_ids.c: gives h the job's GPUs on this node, `gpus` (Flux's GPU ids,
 * an idset such as "0-1"; NULL or "": none) numbered as Flux numbers the
 * GPUs of `flux_topo` (the shell's topology as Flux loads it), as the
 * allocation of each GPU variable the node has (their visible indexes,
 * mpibind_set_gpu_allocation), so that a task is given only the job's
 * GPUs, named as the task's runtime numbers them, and every one of them:
 * the allocation is given also when it is every GPU of the node.  h has
 * its topology and is not mapped yet. */
int mpibind_flux_gpu_allocation(mpibind_t *h, hwloc_topology_t flux_topo,
                                const char *gpus, char **msg);

#endif /* MPIBIND_FLUX_PLUGIN_H */
