/*
 * mapping.h - a node mapped for a set of inputs, in the helper: the
 * topology had once per node (topocache.h), limited to the job's CPUs on
 * this node, mapped with libmpibind (steps.h).
 */
#ifndef MPIBIND_AUTO_MAPPING_H
#define MPIBIND_AUTO_MAPPING_H

#include "helper.h"
#include "inputs.h"
#include "mpibind.h"
#include "nodemap.h"

struct mpibind_auto_node_mapping {
  mpibind_t *h;    /* mpibind() and mpibind_set_env_vars() done; NULL
                      with keep */
  int how;         /* MPIBIND_TOPO_*: where the topology came from */
  char *identity;  /* the topology cache file's identity (machine.h);
                      NULL with MPIBIND_TOPOFILE */
  char *job_line;  /* "mapping within CPUs <list>: <where they come
                      from>", when the job has fewer CPUs than the node */
  char *keep;      /* the job's CPUs here are unknown (why): no mapping */
};

/* Maps the node for `in` (step: announces the steps that can crash or
 * hang, maprequest.h; NULL: none).  0 with *m (free with
 * mpibind_auto_node_mapping_free), or -1 with *error (one line). */
int mpibind_auto_map_node(const struct mpibind_auto_inputs *in,
                          void (*step)(enum mpibind_auto_helper_step),
                          struct mpibind_auto_node_mapping *m, char **error);
void mpibind_auto_node_mapping_free(struct mpibind_auto_node_mapping *m);

/* The steps' announcer, through a mpibind_auto_map_f's ctx. */
struct mpibind_auto_steps {
  void (*step)(enum mpibind_auto_helper_step);
};

/* A mpibind_auto_map_f (nodemap.h) for the helper itself: the node mapped
 * in this process for `in`, answered as the node mapping file's body.
 * ctx: a struct mpibind_auto_steps, or NULL. */
int mpibind_auto_map_here(void *ctx, const struct mpibind_auto_inputs *in,
                          struct mpibind_auto_map_answer *a, char **error);

#endif
