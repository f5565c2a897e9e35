/*
 * helper.h - the helper `mpibind-discover` (auto/node/mpibind-discover.c),
 * found and run with a time limit.  hwloc's risky work (a discovery with
 * its I/O plugins, a user's XML file, the mapping with libmpibind) runs
 * there, never in the application's process.  libc only.
 */
#ifndef MPIBIND_AUTO_HELPER_H
#define MPIBIND_AUTO_HELPER_H

#include <stddef.h>

#include "mb_spawn.h"

/* The helper of this build: the build tree's for objects running from
 * the build tree (tests), the installed one otherwise (in a wheel: in the
 * package directory, beside libmpibind and the preload). */
const char *mpibind_auto_helper_path(void);
/* The libmpibind that helper loads, found by the same rule (part of the
 * mapper's identity, machine.c). */
const char *mpibind_auto_helper_library_path(void);

/* What a run of the helper gave: the child runner's outputs (run.out,
 * run.out_len, run.err_line, run.status, run.timed_out; mb_spawn.h) and
 * the time limit.  Free with mpibind_auto_helper_output_free. */
struct mpibind_auto_helper_output {
  struct mb_spawn run;
  int seconds; /* the time limit */
};

/* The helper's time limit: MPIBIND_DISCOVERY_TIMEOUT's value by
 * mpibind_auto_timeout_seconds (tuning.h), which its caller enforces and
 * the helper itself keeps too (mpibind-discover.c).  -1 with *error
 * (malloc'ed, one line) when malformed. */
int mpibind_auto_helper_seconds(char **error);
/* Runs argv (argv[0]: the helper) with mb_spawn (lib/common/mb_spawn.h:
 * stdin /dev/null, no other descriptor, no blocked signal, killed at the
 * time limit, always reaped), in this process's environment less
 * LD_PRELOAD, and gathers its output; the limit is
 * MPIBIND_DISCOVERY_TIMEOUT seconds (default 10).  0 (o filled), or -1
 * with *error when it could not run or the time limit is malformed (o
 * then holds nothing to free). */
int mpibind_auto_helper_run(char *const argv[],
                            struct mpibind_auto_helper_output *o,
                            char **error);
void mpibind_auto_helper_output_free(struct mpibind_auto_helper_output *o);

/* The step a helper was in when it crashed, hung or ended without an
 * answer (it says so on stdout before each, maprequest.h). */
enum mpibind_auto_helper_step {
  MPIBIND_AUTO_STEP_MAP = 0,  /* anything else: mapping, drawing */
  MPIBIND_AUTO_STEP_TOPOFILE, /* parsing a user's XML file */
  MPIBIND_AUTO_STEP_DISCOVERY /* discovering this node */
};

/* One line saying what happened to the helper in that step (malloc'ed):
 * a user's file `file` given as `what` (MPIBIND_TOPOFILE, --topology)
 * that crashes or hangs hwloc's parser, a discovery that did not end
 * within the time limit, ... */
char *mpibind_auto_helper_problem(enum mpibind_auto_helper_step step,
                                  const char *what, const char *file,
                                  const struct mpibind_auto_helper_output *o);

#endif
