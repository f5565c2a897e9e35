/*
 * applied.h - MPIBIND_APPLIED names the task it speaks of (applied.c says
 * why).  libc only.
 */
#ifndef MPIBIND_AUTO_APPLIED_H
#define MPIBIND_AUTO_APPLIED_H

#include "task_env.h"

/* Returns 1 when this task was already handled: MPIBIND_APPLIED is 0 or 1
 * and MPIBIND_APPLIED_TASK names this process or a process of the same
 * task (same launcher and tuning variables, plus `extra` when not NULL).
 * explicit_request (the wrapper, run with options) never skips.  Also
 * remembers this task's key for mpibind_auto_applied_mark. */
int mpibind_auto_applied_check(const char *extra, int explicit_request);
/* Exports MPIBIND_APPLIED=bound (0 or 1) and MPIBIND_APPLIED_TASK. */
void mpibind_auto_applied_mark(int bound);

/* The mark for a task whose environment is not this process's (the Slurm
 * plugin, before the task's exec): MPIBIND_APPLIED=bound and
 * MPIBIND_APPLIED_TASK naming process `pid` and the key of the variables
 * read through get(), written through set(), so that the preload in that
 * task (same pid) and in its children (same key) skips, exactly as after
 * mpibind_auto_applied_mark().  Returns 0, or -1 when a set() failed. */
int mpibind_auto_applied_mark_for(int bound, long pid,
                                  mpibind_auto_getenv_f get, void *get_ctx,
                                  mpibind_auto_setenv_f set, void *set_ctx);

#endif
