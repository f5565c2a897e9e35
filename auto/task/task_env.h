/*
 * task_env.h - where a task's variables are read and written: this
 * process's environment (the preload, the wrapper, the helper) or the
 * environment of a task that is not this process (the Slurm plugin reads
 * the job's in slurmstepd and sets the task's before its exec).
 */
#ifndef MPIBIND_AUTO_TASK_ENV_H
#define MPIBIND_AUTO_TASK_ENV_H

/* Returns the value of `name`, NULL when unset; the string must stay
 * valid while it is used. */
typedef const char *(*mpibind_auto_getenv_f)(const char *name, void *ctx);

/* Sets a variable for the task; returns 0 or -1. */
typedef int (*mpibind_auto_setenv_f)(const char *name, const char *value,
                                     int overwrite, void *ctx);

#endif
