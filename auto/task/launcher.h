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
 * missing).  A torchrun worker's variables come first (its agent may run
 * inside a Slurm step or an MPI launch, whose variables it inherits),
 * then the MPI launchers', then Flux's and Slurm's. */
int mpibind_auto_launcher_detect(int *local, int *count, const char **source,
                                 char **error);

/* The same without torchrun's variables: the launch a torchrun agent runs
 * in (srun, mpirun), as its workers see it; 0 when there is none. */
int mpibind_auto_outer_launcher_detect(int *local, int *count,
                                       const char **source, char **error);

/* The source of a torchrun worker's task number: torch's elastic agent
 * sets LOCAL_RANK, LOCAL_WORLD_SIZE and TORCHELASTIC_RUN_ID in each
 * worker it starts (LOCAL_RANK alone is other launchers' convention too). */
#define MPIBIND_AUTO_TORCH_SOURCE "LOCAL_RANK"
/* 1 when source (mpibind_auto_launcher_detect's) is a torchrun worker's. */
int mpibind_auto_source_is_torch(const char *source);

/* 1 when the command argv runs torchrun's agent, which starts workers and
 * is no task itself: the program `torchrun`, or a Python interpreter
 * running a script named torchrun or the module torch.distributed.run or
 * torch.distributed.launch. */
int mpibind_auto_is_torch_agent(int argc, const char *const *argv);
/* The same for this process (/proc/self/cmdline). */
int mpibind_auto_torch_agent_here(void);

/* 1 when this torchrun worker's OMP_NUM_THREADS=1 was set by its agent
 * (pid `agent`), not by the user: torch's agent sets it for workers when
 * it started without one (and runs several workers), and the agent's
 * initial environment (/proc/<agent>/environ, which its own setenv does
 * not change) tells.  0 when it cannot be read: the value is the user's. */
int mpibind_auto_torch_agent_threads(long agent);

/* Parses Slurm's tasks-per-node syntax ("2(x3),1") and returns the entry
 * of node `nodeid`, or -1 when the string is malformed or too short. */
int mpibind_auto_slurm_tasks_on_node(const char *spec, int nodeid);

/* 1 when the running program is a launcher or one of its daemons
 * (mpirun, orted, prted, hydra_pmi_proxy, slurmstepd, ...): such a
 * process carries the task variables of its own launch but is no rank. */
int mpibind_auto_is_launcher_program(void);

#endif
