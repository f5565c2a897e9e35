/*
 * mpibind_auto.h - automatic binding of a launched task, shared by the
 * LD_PRELOAD library (libmpibind-preload.so) and the launch wrapper
 * (`mpibind [options] -- program`).
 *
 * The tuning comes from the environment only (docs/interfaces.md, "Automatic
 * binding"); a front end that takes options turns them into these
 * variables before the call:
 *
 *   MPIBIND                comma list: on, off, v|verbose, smt:K,
 *                          greedy[:0|1], gpu[:0|1], gpu_optim[:0|1],
 *                          omp_places, omp_proc_bind, visible_devices
 *                          (each: do not set that variable),
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
 *   MPIBIND_CACHE_DIR      where the per-node topology cache lives
 *                          (default $XDG_RUNTIME_DIR/mpibind or
 *                          /tmp/mpibind-<uid>)
 *   MPIBIND_TRACE          regular file to which each applying process
 *                          appends one line (see below)
 *   MPIBIND_DISCOVERY_TIMEOUT  seconds the discovery helper may take
 *                          (default 10)
 *
 * MPIBIND_TRACE line, written with a single O_APPEND write:
 *   host=<hostname> pid=<pid> task=<local>/<count>
 *   topology=<discovered|cache|file|none> bound=<0|1> cpus=<list>
 * (cpus is the task's mapped CPU list, empty when nothing was mapped).
 */
#ifndef MPIBIND_AUTO_H
#define MPIBIND_AUTO_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Does, for the calling process, what the preload does at load time:
 * reads the tuning environment, finds the node-local task number and task
 * count from the launcher's variables, computes the node's mapping within
 * the job's CPUs on this node, binds the whole process (all threads) to
 * the task's CPUs and checks the kernel's mask, exports the task's
 * variables (OMP_NUM_THREADS, OMP_PLACES, OMP_PROC_BIND, *_VISIBLE_DEVICES,
 * CUDA_DEVICE_ORDER), calls omp_set_num_threads when an OpenMP runtime is
 * loaded, and sets MPIBIND_APPLIED=1.
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
 * The program the wrapper is about to exec, before mpibind_auto_apply(1):
 * an interpreter (Python) is not given OMP_PLACES/OMP_PROC_BIND unless
 * MPIBIND has `place_threads` (its OpenMP runtime loads late and would pin
 * the whole process to its first place).  NULL: the running process.
 */
void mpibind_auto_set_program(const char *argv0);

/*
 * The option from which a front end set one of the variables above
 * before mpibind_auto_apply (the command's --topology gives
 * MPIBIND_TOPOFILE): the messages then name what the user typed,
 * "--topology='node.xml' does not describe this node", not a variable the
 * user never saw.  variable: MPIBIND_RESTRICT, MPIBIND_RESTRICT_TYPE,
 * MPIBIND_TOPOFILE or OMP_NUM_THREADS; option: a string that outlives the
 * calls (a literal), NULL to name the variable again.  Returns 0, or -1
 * for any other variable (MPIBIND may mix the user's words and the
 * options').
 */
int mpibind_auto_name_option(const char *variable, const char *option);

/*
 * Parses the user's XML topology file `path` first in the helper
 * `mpibind-discover` (a child process), since hwloc's parser crashes on
 * some malformed files.  Returns 0 when the caller may parse it too (the
 * helper loaded it, or refused it with a message the library will give
 * again); -1 with *error (malloc'ed, one line naming `what` and the path)
 * when it crashed or hung hwloc, or the helper could not run.
 */
int mpibind_auto_check_xml_file(const char *path, const char *what,
                                char **error);

#ifdef __cplusplus
}
#endif

#endif /* MPIBIND_AUTO_H */
