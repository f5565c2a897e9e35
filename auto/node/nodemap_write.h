/*
 * nodemap_write.h - a mapped node's shares: the node mapping file's body
 * that the tasks read (its format: auto/task/nodemap.h), and a task's
 * share taken from the handle by a mapper that binds the tasks itself
 * (the Slurm plugin).
 */
#ifndef MPIBIND_AUTO_NODEMAP_WRITE_H
#define MPIBIND_AUTO_NODEMAP_WRITE_H

#include <stddef.h>

#include "mapping.h"
#include "mpibind.h"
#include "nodemap.h"

/* Fills *s with task `task`'s share of a mapped handle (and the node's
 * report when want_report).  0, or -1 out of memory. */
int mpibind_auto_share_of(mpibind_t *h, int task, int want_report,
                          struct mpibind_auto_share *s);

/* The body of the node mapping file for mapping m of `count` tasks
 * (malloc'ed, *len bytes).  0; 1 when a value cannot be written as lines
 * (no file: *body NULL); -1 out of memory. */
int mpibind_auto_nodemap_body(const struct mpibind_auto_node_mapping *m,
                              int count, char **body, size_t *len);

#endif
