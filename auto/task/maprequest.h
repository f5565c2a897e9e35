/*
 * maprequest.h - a task asks the helper to map its node (or to draw it),
 * and reads the answer.  libc only.
 *
 * Request (the tuning and the launcher's variables are in the environment
 * the helper inherits; the rest it is told):
 *
 *   mpibind-discover --map --ntasks N [--source VAR] [--launcher PID]
 *                    [--gpu NAME=LIST]... [--name VAR=OPTION]...
 *                    [--draw PATH]
 *
 *   --source    the variable that gave the task number (the job's CPUs
 *               are found as jobcpus.h says for it)
 *   --launcher  the pid of the launcher's process on this node
 *   --gpu       the node's allocation of a GPU variable as the task found
 *               it (gpualloc.h); variables not named: no allocation
 *   --name      the option a front end set VAR from
 *               (mpibind_auto_name_option): the helper's messages name it
 *   --draw      draw the node's mapping into PATH (MPIBIND=draw:PATH)
 *               instead of answering with the mapping
 *
 * Answer on stdout, one item per line:
 *
 *   step topofile|discovery|map   before each step that can crash or hang
 *                                 (written at once: a helper killed in it
 *                                 says what it was doing)
 *   how discovered|cache|file     where the topology came from
 *   topology <identity>           the topology cache file's identity
 *                                 (machine.h), without MPIBIND_TOPOFILE
 *   warning <line>                --draw: the picture was not made
 *   failed <message>              a problem, one line (exit status 1)
 *   body <length>                 last: then <length> bytes, the node
 *                                 mapping file's body (nodemap.h)
 */
#ifndef MPIBIND_AUTO_MAPREQUEST_H
#define MPIBIND_AUTO_MAPREQUEST_H

#include "inputs.h"
#include "nodemap.h"

/* The words of the answer, for the helper that writes it. */
#define MPIBIND_AUTO_ANSWER_STEP "step "
#define MPIBIND_AUTO_ANSWER_HOW "how "
#define MPIBIND_AUTO_ANSWER_TOPOLOGY "topology "
#define MPIBIND_AUTO_ANSWER_WARNING "warning "
#define MPIBIND_AUTO_ANSWER_FAILED "failed "
#define MPIBIND_AUTO_ANSWER_BODY "body "

/* A mpibind_auto_map_f (nodemap.h): the node mapped in the helper.  ctx
 * is unused. */
int mpibind_auto_map_in_helper(void *ctx, const struct mpibind_auto_inputs *in,
                               struct mpibind_auto_map_answer *a,
                               char **error);

/* The node's mapping drawn into `path` (with the host name, as
 * MPIBIND=draw:PATH says) by the helper.  NULL, or the warning line to
 * print when no picture was made (malloc'ed). */
char *mpibind_auto_draw_in_helper(const struct mpibind_auto_inputs *in,
                                  const char *path);

#endif
