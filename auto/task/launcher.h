/*
 * launcher.h - which task of the node is this process, and how many tasks
 * does the node run, from the variables launchers set before exec.  libc
 * only.
 */
#ifndef MPIBIND_AUTO_LAUNCHER_H
#define MPIBIND_AUTO_LAUNCHER_H

/* Returns 1 and fills *local, *count and *source (the name of the
 * variable that gave the task number) when a launcher's variables are
 * found; 0 when there are none; -1 with *error (malloc'ed) when they are
 * unusable (not numbers, negative, local >= count, one of a pair
 * missing).  The MPI launchers' variables come before Slurm's. */
int mpibind_auto_launcher_detect(int *local, int *count, const char **source,
                                 char **error);

/* Parses Slurm's tasks-per-node syntax ("2(x3),1") and returns the entry
 * of node `nodeid`, or -1 when the string is malformed or too short. */
int mpibind_auto_slurm_tasks_on_node(const char *spec, int nodeid);

/* 1 when the running program is a launcher or one of its daemons
 * (mpirun, orted, prted, hydra_pmi_proxy, slurmstepd, ...): such a
 * process carries the task variables of its own launch but is no rank. */
int mpibind_auto_is_launcher_program(void);

#endif
