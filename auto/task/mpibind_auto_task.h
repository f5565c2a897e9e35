/*
 * mpibind_auto_task.h - the front door of the task floor of the
 * automatic-binding layer (auto/task/: libc only, the code that runs in
 * the application's process): automatic binding of a launched task,
 * shared by the LD_PRELOAD library (libmpibind-preload.so) and the launch
 * wrapper (`mpibind [options] -- program`), and the steps every front end
 * binds and exports a task with (the Slurm plugin too).
 *
 * The tuning comes from the environment only (docs/interfaces.md, "Automatic
 * binding"); a front end that takes options turns them into these
 * variables before the call:
 *
 *   MPIBIND                comma list: on, off, v|verbose, smt:K,
 *                          greedy[:0|1], gpu[:0|1], gpu_optim[:0|1],
 *                          omp_places, omp_proc_bind (each: do not set
 *                          that variable), visible_devices[:task|all|none]
 *                          (which GPUs the visible-devices variables name;
 *                          the word alone: none, for workers task),
 *                          place_threads (set OMP_PLACES/OMP_PROC_BIND in
 *                          an interpreter too), membind, dryrun,
 *                          strict, help
 *   MPIBIND_RESTRICT       hwloc list of PU (or NUMA) OS indexes
 *   MPIBIND_RESTRICT_TYPE  cpu | mem
 *   MPIBIND_TOPOFILE       hwloc XML file that must describe this node
 *                          (any file is accepted with dryrun)
 *   OMP_NUM_THREADS        the nthreads input (kept as the user set it)
 *   CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES,
 *   ZE_AFFINITY_MASK       when set at launch: the GPU allocation
 *   MPIBIND_CACHE_DIR      where the per-node topology and mapping cache
 *                          lives (default $XDG_RUNTIME_DIR/mpibind or
 *                          /tmp/mpibind-<uid>)
 *   MPIBIND_TRACE          regular file to which each applying process
 *                          appends one line (see below)
 *   MPIBIND_DISCOVERY_TIMEOUT  seconds the helper (discovery, mapping)
 *                          may take (default 10)
 *
 * MPIBIND_TRACE line, written with a single O_APPEND write:
 *   host=<hostname> pid=<pid> task=<local>/<count>
 *   topology=<discovered|cache|file|none> bound=<0|1> cpus=<list>
 * (cpus is the task's mapped CPU list, empty when nothing was mapped).
 */
#ifndef MPIBIND_AUTO_TASK_H
#define MPIBIND_AUTO_TASK_H

/* The steps and pieces the front ends use: */
#include "applied.h"  /* MPIBIND_APPLIED, for a task or another process */
#include "bind.h"     /* a task bound to its share, checked */
#include "export.h"   /* a task's variables through a setter */
#include "gpualloc.h" /* the GPU variables by index */
#include "launcher.h" /* the launcher's variables */
#include "nodemap.h"  /* a task's share */
#include "openmp.h"   /* the OpenMP runtime already loaded */
#include "reexec.h"   /* the program started again */
#include "strdupf.h"  /* messages */
#include "tuning.h"   /* the MPIBIND* variables */

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Does, for the calling process, what the preload does at load time:
 * reads the tuning environment, finds the node-local task number and task
 * count from the launcher's variables, takes the task's share of the
 * node's mapping within the job's CPUs on this node (from the node
 * mapping file; on the node's first task the helper mpibind-discover maps
 * the node, in a child process: nothing here loads hwloc or libmpibind),
 * binds the whole process (all threads) to the task's CPUs and checks the
 * kernel's mask, exports the task's variables (OMP_NUM_THREADS,
 * OMP_PLACES, OMP_PROC_BIND, *_VISIBLE_DEVICES, CUDA_DEVICE_ORDER), calls
 * omp_set_num_threads when an OpenMP runtime is loaded, and sets
 * MPIBIND_APPLIED=1.
 *
 * standalone != 0: without launcher variables the process is task 0 of 1
 * (the wrapper run directly); standalone == 0: without launcher variables
 * nothing is done.
 *
 * Returns
 *    0  applied, or nothing to do (MPIBIND=off, this task already
 *       applied, not a launched task);
 *    1  a problem was reported on stderr (one line, by the node's local
 *       task 0) and the process was left unbound and unchanged;
 *   -1  the same, but MPIBIND has `strict`: the caller must fail.
 * MPIBIND_APPLIED is 1 after a binding, 0 after a reported problem (so
 * that the task's child processes, which inherit the preload, neither
 * retry nor repeat the message), with MPIBIND_APPLIED_TASK naming the
 * process and the task (applied.c).  When they name this process or this
 * task at entry, nothing is done and 0 is returned; standalone != 0 (the
 * wrapper, an explicit request) always applies.
 * Never exits, never prints on stdout.
 */
int mpibind_auto_apply(int standalone);

/*
 * The same with the node-local task number and count already known (the
 * preload uses it after MPI_Init, from the node-local communicator).
 * `source` names where they come from, for messages.
 */
int mpibind_auto_apply_task(int local, int count, const char *source);

/*
 * mpibind_auto_apply(0) from the preload's constructor, given the argc and
 * argv that glibc passes to ELF constructors, except that a process
 * without launcher variables gets MPIBIND_AUTO_NOT_A_TASK (below), and
 * torchrun's agent, a launcher that carries an outer launch's task
 * variables, 0 with nothing done.  When an OpenMP runtime
 * already loaded read OMP_* before this ran (stale places or binding),
 * the program is started again with those arguments (reexec.h), once
 * they are checked to be the ones it was started with; the call then
 * does not return.  When it cannot be (the arguments were written over,
 * execve failed near the argument-size limit, a setuid program, ld.so,
 * valgrind), one line from the node's task 0 says why, and the task's
 * threads stay within its CPUs: told the thread count when the runtime's
 * places lie within them, otherwise the task gives its binding and
 * exports up and runs unbound (a problem: 1, or -1 with strict).
 */
int mpibind_auto_apply_at_load(int argc, char **argv);
/* mpibind_auto_apply_at_load's answer for a process without launcher
 * variables: not a task yet (the preload then waits for MPI_Init). */
#define MPIBIND_AUTO_NOT_A_TASK 2

/*
 * The option from which a front end set one of the variables above
 * before mpibind_auto_apply (the command's --topology gives
 * MPIBIND_TOPOFILE): the messages then name what the user typed,
 * "--topology='node.xml' does not describe this node", not a variable the
 * user never saw (the helper that maps the node is told the names too).
 * variable: MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE or
 * OMP_NUM_THREADS; option: a string that outlives the calls (a literal),
 * NULL to name the variable again.  Returns 0, or -1 for any other
 * variable (MPIBIND may mix the user's words and the options').
 */
int mpibind_auto_name_option(const char *variable, const char *option);

#ifdef __cplusplus
}
#endif

#endif /* MPIBIND_AUTO_TASK_H */
