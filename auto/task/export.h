/*
 * export.h - a task's variables, exported the same way by every front end
 * through a setter (the process's own environment, or a task's before its
 * exec).  libc only.
 */
#ifndef MPIBIND_AUTO_EXPORT_H
#define MPIBIND_AUTO_EXPORT_H

#include "nodemap.h"
#include "task_env.h"
#include "tuning.h"

/* The program the front end is about to exec (the wrapper's, the Slurm
 * step's command): an interpreter (Python) is not given
 * OMP_PLACES/OMP_PROC_BIND unless MPIBIND has `place_threads` (its OpenMP
 * runtime loads late and would pin the whole process to its first place).
 * NULL: the running process. */
void mpibind_auto_set_program(const char *argv0);
/* The same with the program's whole command line (argc words of argv):
 * torchrun's agent (launcher.h) is given no OMP_* variable, which its
 * workers would inherit as their own. */
void mpibind_auto_set_command(int argc, const char *const *argv);

/* 1 when OMP_PLACES and OMP_PROC_BIND may be exported: not for an
 * interpreter (the program named by mpibind_auto_set_program(), else this
 * process), unless the tuning has `place_threads`. */
int mpibind_auto_omp_exports(const struct mpibind_auto_tuning *t);

/* Exports, for task `local`, the variables of its share s (task s->slot of
 * the mapping: the same task, except with per-task GPU lists, gpualloc.h)
 * through set(): OMP_NUM_THREADS, OMP_PLACES and OMP_PROC_BIND unless the
 * user set them (their values were inputs; OMP_NUM_THREADS=1 of
 * torchrun's agent is replaced, t->agent_threads), the tuning says not to,
 * omp_exports is 0, or the program is torchrun's agent; *_VISIBLE_DEVICES
 * unless the tuning says not to (visible_devices none; a per-task list
 * given at launch is kept); CUDA_DEVICE_ORDER=PCI_BUS_ID
 * with CUDA devices unless set.  Returns 0, or -1 when a set() failed. */
int mpibind_auto_export(const struct mpibind_auto_tuning *t,
                        const struct mpibind_auto_share *s, int local,
                        int omp_exports, mpibind_auto_setenv_f set,
                        void *ctx);

#endif
