/*
 * mpibind.h - the public interface of libmpibind.
 *
 * mpibind maps the tasks (processes) of one node onto the node's hardware:
 * which CPUs each task runs on, how many threads it should start, and which
 * GPUs it should see.  The mapping is specified in docs/algorithm.md; the
 * names below are those of LLNL's mpibind so that existing code builds
 * unchanged against this library.
 *
 * ERROR CONVENTION (one for the whole API)
 *   - Functions returning int return 0 on success and -1 on failure, except
 *     the getters of a single input value, which return the value, and
 *     the snprint functions, which follow snprintf (see below).
 *   - Functions returning a pointer return NULL on failure.
 *   - After any failure, mpibind_get_error(handle) returns a one-line
 *     message naming the offending value and what was expected, and
 *     mpibind_get_errno(handle) its kind; the failing call also leaves the
 *     kind in errno.  Both stay until the next failing call on the same
 *     handle (a successful call may change errno, as in libc).  The kinds:
 *       EINVAL          a value that does not fit: a bad argument, an input
 *                       the topology rejects (smt above the node's, a
 *                       restriction that selects nothing, a GPU allocation
 *                       entry that names no GPU), a NULL handle
 *       ENOENT, EACCES, EISDIR, ...
 *                       the topology file cannot be read (the errno of
 *                       opening it); EINVAL when it is read but is not an
 *                       hwloc XML topology
 *       ENOMEM          out of memory
 *       MPIBIND_ENOMAP  this node cannot be mapped as asked (for example
 *                       the topology has no CPU to map tasks onto)
 *       ENODATA         an output read before mpibind(), or after an
 *                       input changed (see LIFETIME)
 *       EXDEV           binding with a topology that is not this
 *                       machine's (a file or the caller's): hwloc's kind
 *                       for a binding that cannot be enforced
 *       ELIBBAD         the hwloc library loaded at run time has another
 *                       API major version than the one mpibind was built
 *                       against
 *     and, for a live topology that hwloc cannot discover or a binding
 *     that the system refuses, the errno hwloc reported.
 *   - The library never prints to stdout on its own (only the *_print
 *     functions, which exist to print), never calls exit(), and treats a
 *     NULL handle as an error rather than a crash.
 *
 * LIFETIME
 *   Every pointer an output getter returns (the mpibind_get_nthreads,
 *   _cpus and _gpus arrays and their bitmaps, the per-task arrays and GPU
 *   ID strings, mpibind_get_gpu_id, the variable names and values, and
 *   the topology of mpibind_get_topology) is owned by the handle and stays
 *   valid and unchanged until the next mpibind() call or
 *   mpibind_finalize().  A setter never frees an output: it only marks the
 *   outputs stale, and the output getters then fail (ENODATA) until
 *   mpibind() maps again; what they returned before can still be read.
 *   mpibind_set_gpu_ids only changes how later calls name GPUs: it does
 *   not make the mapping stale.  Callers never free what the library
 *   returns.
 *
 * THREADS
 *   A handle is not thread safe; distinct handles are independent.
 */
#ifndef MPIBIND_H
#define MPIBIND_H

#include <hwloc.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MPIBIND_API __attribute__((visibility("default")))
#else
#define MPIBIND_API
#endif

/* MPIBIND_VERSION_MAJOR, _MINOR, _PATCH and _STRING, generated from the
 * project's version. */
#include "mpibind_version.h"

/* The failure kind "this node cannot be mapped as asked" (see the error
 * convention).  Above every errno value of the system. */
#define MPIBIND_ENOMAP 4096

/* The enum order is the original's: code that passes the numbers keeps
 * working. */
enum {
  MPIBIND_RESTRICT_CPU = 0, /* restrict_ids lists PU OS indexes */
  MPIBIND_RESTRICT_MEM,     /* restrict_ids lists NUMA node OS indexes */
  MPIBIND_ID_UNIV,          /* GPU UUID (empty string when unknown) */
  MPIBIND_ID_SMI,           /* visible index: the *_VISIBLE_DEVICES entry */
  MPIBIND_ID_PCIBUS,        /* PCI bus id, dddd:bb:dd.f */
  MPIBIND_ID_NAME           /* hwloc OS device name, e.g. nvml0, rsmi3 */
};
#define MPIBIND_ID_VISDEVS MPIBIND_ID_SMI

typedef struct mpibind_t mpibind_t;

/* ---- Life cycle ------------------------------------------------------ */

/* Creates a handle with the defaults of docs/algorithm.md (nthreads 0, greedy 1,
 * gpu_optim 1, smt 0, no restriction, restrict type cpu, the live
 * topology, GPU IDs MPIBIND_ID_SMI).  ntasks has no default: it must be set.
 * On failure (out of memory) *handle is NULL. */
MPIBIND_API int mpibind_init(mpibind_t **handle);

/* Releases the handle and everything it owns (not a topology given with
 * mpibind_set_topology).  NULL is accepted. */
MPIBIND_API int mpibind_finalize(mpibind_t *handle);

/* The message of the last failure on this handle, "" if none.  Also
 * accepts NULL and then describes that error. */
MPIBIND_API const char *mpibind_get_error(const mpibind_t *handle);

/* The kind of the last failure on this handle (see the error convention),
 * 0 if none; EINVAL for a NULL handle.  Unlike errno it survives later
 * successful calls, which is what bindings that cannot read the C errno
 * right after a call (CFFI in ABI mode) need. */
MPIBIND_API int mpibind_get_errno(const mpibind_t *handle);

/* The version of the library loaded at run time, "MAJOR.MINOR.PATCH"
 * (MPIBIND_VERSION_STRING of the header it was built with).  A program
 * built with another MPIBIND_VERSION_MAJOR must not use it. */
MPIBIND_API const char *mpibind_get_version(void);

/* ---- Inputs ---------------------------------------------------------- */
/* Setters check what they can on their own (ntasks >= 1, nthreads >= 0,
 * smt >= 0, greedy and gpu_optim 0 or 1, a known restrict type, a parsable
 * restrict list); what depends on the topology (smt <= hw_smt, a list that
 * selects nothing) is checked by mpibind(). */

MPIBIND_API int mpibind_set_ntasks(mpibind_t *handle, int ntasks);
MPIBIND_API int mpibind_set_nthreads(mpibind_t *handle, int nthreads);
MPIBIND_API int mpibind_set_greedy(mpibind_t *handle, int greedy);
MPIBIND_API int mpibind_set_gpu_optim(mpibind_t *handle, int gpu_optim);
MPIBIND_API int mpibind_set_smt(mpibind_t *handle, int smt);
/* The restrict-list grammar, one for every front end: ids and ranges
 * separated by commas, "0-3,8,10-11", with "N-" for N and up; decimal ids
 * from 0 to 2147483647 (leading zeros are decimal), ranges ascending, no
 * blank or empty item.  The whole list is checked here; ids beyond the
 * node select nothing (and cost nothing).  NULL or "" removes the
 * restriction.  The string is copied.  A restriction selects the CPUs the
 * tasks use, not the job's GPUs: those local only to the CPUs it leaves
 * out stay and are shared out (docs/algorithm.md, "No GPU left idle"). */
MPIBIND_API int mpibind_set_restrict_ids(mpibind_t *handle, const char *ids);
MPIBIND_API int mpibind_set_restrict_type(mpibind_t *handle, int type);
/* The CPUs (PU OS indexes) the launch gave this job on this node, when
 * they are narrower than what the process may use (jobs that share a node
 * without cpuset cgroups: a Slurm step with task/affinity only, Flux's
 * affinity containment, taskset or numactl around a launcher).  The
 * mapping then stays within them, on top of any restrict list: no task
 * is ever given a CPU outside them, nor a GPU local only to CPUs outside
 * them that the GPU allocation does not name (it may be another job's).
 * The set is copied; NULL removes it.
 * mpibind() fails, naming both, when they leave no CPU of the topology.
 * Beyond the original (docs/algorithm.md, "The job's CPUs"). */
MPIBIND_API int mpibind_set_job_cpus(mpibind_t *handle,
                                     hwloc_const_bitmap_t cpus);
/* Kind of GPU ID reported by mpibind_get_gpus_ptask and the reports. */
MPIBIND_API int mpibind_set_gpu_ids(mpibind_t *handle, int id_kind);
/* 1: mpibind_set_env_vars also names each task's NICs to the transports
 * that can be restricted to them: UCX_NET_DEVICES and NCCL_IB_HCA
 * (OpenFabrics NICs), FI_CXI_DEVICE_NAME (Slingshot CXI devices), each
 * only on a node with such NICs.  0 (the default): MPIBIND_NICS only.
 * They restrict what a transport may use, hence only when asked.
 * Beyond the original (docs/algorithm.md, "The nearest NIC for each
 * task"). */
MPIBIND_API int mpibind_set_transport_vars(mpibind_t *handle, int on);
/* 1: mpibind_set_env_vars gives every task every GPU of the mapping (of
 * the node, or of the allocation) in its visible-devices variables, in
 * one order, the same for every task: task 0's first GPU, task 1's, ...
 * (each GPU once), then the GPUs no earlier element named.  With no more
 * tasks than GPUs and one GPU per task, element i is task i's GPU: the
 * order PyTorch workers need (torch.cuda.set_device(LOCAL_RANK), every
 * GPU visible for peer-to-peer and IPC).  0 (the default): each task sees
 * its own GPUs.  The mapping and the report do not change.  Beyond the
 * original (docs/algorithm.md, "Every GPU visible, in task order"). */
MPIBIND_API int mpibind_set_all_gpus_visible(mpibind_t *handle, int on);

/* Uses a topology the caller loaded.  The handle never modifies or frees
 * it (restriction works on a private copy).  A topology without what a
 * mapping needs (no PU, no NUMA node, PU objects that disagree with its
 * cpuset) is refused here, as mpibind_set_topology_file refuses such a
 * file.  For the mapping to follow
 * docs/algorithm.md it should be loaded with mpibind's filters: see
 * mpibind_topology_load_filters().  NULL returns to the default. */
MPIBIND_API int mpibind_set_topology(mpibind_t *handle, hwloc_topology_t topo);

/* Uses the hwloc XML file at path (hwloc 1.x or 2.x export) instead of the
 * live machine.  The file is read here, so a missing, empty, truncated or
 * non-XML file fails now with a message naming it.  NULL returns to the
 * live machine. */
MPIBIND_API int mpibind_set_topology_file(mpibind_t *handle, const char *path);

/* Uses the hwloc XML text buf[0..len) (an export of hwloc 1.x or 2.x;
 * NUL-terminated or not) instead of the live machine, loaded here with
 * the step-0 filters and owned by the handle, so that a caller never
 * needs hwloc to hold a topology that outlives the handle.  Like a file:
 * loaded as this system's, limited to the resources this process may use
 * when it describes this machine; mpibind_topology_check_system() and
 * mpibind_apply() then judge it as they judge a file.  The text is not
 * kept.  buf NULL returns to the live machine.
 *
 * UNTRUSTED XML (this call and mpibind_set_topology_file): the text is
 * parsed by hwloc, in the calling process.  hwloc 2.9 accepts most damage
 * with an error, but some malformed exports make its parser crash the
 * process (an object without complete_cpuset: SIGSEGV; a bitmap written
 * ",,0x0": an assertion, SIGABRT); lstopo crashes on them too.  The
 * library cannot catch that.  A caller that takes XML from users should
 * parse it first in a child process, as mpibind's own front ends do
 * (docs/interfaces.md, "Untrusted topology files"). */
MPIBIND_API int mpibind_set_topology_xml(mpibind_t *handle, const char *buf,
                                         size_t len);

/* Binds the calling process, all its threads, to the CPUs of the hwloc
 * list cpus (PU OS indexes, e.g. one task's entry of a stored mapping)
 * without any topology: for a front end that keeps each task's share of
 * a node's mapping and must not load the whole node again to bind.  The
 * handle only receives the message of a failure (a bad list, CPUs the
 * kernel refuses).  Unlike mpibind_apply(), nothing checks that the list
 * comes from this machine's mapping: that is the caller's part. */
MPIBIND_API int mpibind_apply_cpus(mpibind_t *handle, const char *cpus);

/* Sets the step-0 filters of docs/algorithm.md on a topology that is about to
 * be loaded by the caller. */
MPIBIND_API int mpibind_topology_load_filters(hwloc_topology_t topo);

/* The GPU allocation: the launch already limited the GPUs this job may
 * see through a variable such as CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES,
 * HIP_VISIBLE_DEVICES or ZE_AFFINITY_MASK.  Only the listed GPUs of that
 * variable's vendor are mapped, and the variable written for each task
 * uses the entries of this list (indexes, UUIDs or PCI bus ids, as given).
 * value "" allocates no GPU of that vendor; NULL removes a previous call.
 * On a node without GPUs of that vendor the variable is ignored (sites set
 * such variables on CPU nodes too); on a node with them, an entry that
 * names none of them makes mpibind() fail. */
MPIBIND_API int mpibind_set_gpu_allocation(mpibind_t *handle, const char *var,
                                           const char *value);

/* The GPU variables mpibind knows, for i from 0 (NULL past the last):
 * the names mpibind_set_gpu_allocation accepts, and the only GPU
 * variables mpibind_set_env_vars may set.  Front ends read the GPU
 * allocation from the environment, and recognise these variables among
 * the results, through this list rather than a copy of their own. */
MPIBIND_API const char *mpibind_get_gpu_var(int i);

MPIBIND_API int mpibind_get_ntasks(mpibind_t *handle);
MPIBIND_API int mpibind_get_greedy(mpibind_t *handle);
MPIBIND_API int mpibind_get_gpu_optim(mpibind_t *handle);
MPIBIND_API int mpibind_get_smt(mpibind_t *handle);
MPIBIND_API int mpibind_get_restrict_type(mpibind_t *handle);
MPIBIND_API int mpibind_get_gpu_ids(mpibind_t *handle);
MPIBIND_API int mpibind_get_transport_vars(mpibind_t *handle);
MPIBIND_API int mpibind_get_all_gpus_visible(mpibind_t *handle);
/* The restriction list, or NULL when there is none. */
MPIBIND_API const char *mpibind_get_restrict_ids(mpibind_t *handle);
/* The nthreads input (0: choose).  The per-task result is
 * mpibind_get_nthreads(). */
MPIBIND_API int mpibind_get_nthreads_input(mpibind_t *handle);
/* The topology file in use, or NULL for the live machine or a caller's
 * topology. */
MPIBIND_API const char *mpibind_get_topology_file(mpibind_t *handle);

/* ---- Topology -------------------------------------------------------- */

/* Loads the topology now (live with the step-0 filters, or the file) if it
 * is not loaded yet.  mpibind() does this on its own; call it to read or
 * export the topology before mapping. */
MPIBIND_API int mpibind_topology_load(mpibind_t *handle);

/* The topology the mapping works on: after a successful mpibind() whose
 * inputs have not changed since, the restricted one; otherwise the loaded
 * one (loading it if needed).  Owned by the handle (unless it is the
 * caller's); valid as LIFETIME says, even across a topology setter. */
MPIBIND_API hwloc_topology_t mpibind_get_topology(mpibind_t *handle);

/* 0 when the handle's topology describes the machine this process runs
 * on (the live topology always does; a file or a caller's topology must
 * have this host's name, when it records one, and exactly this machine's
 * online PUs: every online CPU is in its complete cpuset, and every PU it
 * maps onto is online, so that a topology limited to this process's
 * allowed CPUs (a cgroup) passes and a file of part of the machine does
 * not); -1 with a message saying what differs otherwise. */
MPIBIND_API int mpibind_topology_check_system(mpibind_t *handle);

/* ---- Mapping --------------------------------------------------------- */

/* Computes the mapping (docs/algorithm.md steps 1-5).  Frees the previous
 * outputs first (see LIFETIME), so on failure there are none; the message
 * and the kind say why.  The memory the outputs need is known before they
 * are allocated: more than this process can have (available memory,
 * ulimit -v/-d) fails at once, naming ntasks. */
MPIBIND_API int mpibind(mpibind_t *handle);

/* ---- Outputs (valid after a successful mpibind(); see LIFETIME) ------ */

/* ntasks thread counts. */
MPIBIND_API int *mpibind_get_nthreads(mpibind_t *handle);
/* ntasks cpusets of PU OS indexes. */
MPIBIND_API hwloc_bitmap_t *mpibind_get_cpus(mpibind_t *handle);
/* ntasks sets of positions in the node's GPU list. */
MPIBIND_API hwloc_bitmap_t *mpibind_get_gpus(mpibind_t *handle);
/* Number of GPUs in the job's GPU list: the node's, after the allocation
 * and the job's CPUs (a restrict list removes none: docs/algorithm.md,
 * "No GPU left idle").  Valid after mpibind(); -1 before. */
MPIBIND_API int mpibind_get_num_gpus(mpibind_t *handle);
/* The task's PU OS indexes, ascending; *ncpus receives their number. */
MPIBIND_API int *mpibind_get_cpus_ptask(mpibind_t *handle, int taskid,
                                        int *ncpus);
/* The task's GPUs as strings of the chosen ID kind, in mapping order;
 * *ngpus receives their number (the array is NULL-terminated too). */
MPIBIND_API char **mpibind_get_gpus_ptask(mpibind_t *handle, int taskid,
                                          int *ngpus);
/* ID of kind id_kind of the node's GPU at position gpu of the GPU list. */
MPIBIND_API const char *mpibind_get_gpu_id(mpibind_t *handle, int gpu,
                                           int id_kind);
/* The task's NICs, by name (mlx5_0, cxi0, hfi1_0: an OpenFabrics
 * device's name, else the Slingshot CXI device's), in the node's NIC
 * order; *nnics receives their number (the array is NULL-terminated
 * too).  The nearest NICs to the task's GPUs, or without GPUs to its
 * CPUs, shared evenly among the tasks they are nearest to; none on a
 * node without NICs.  Beyond the original (docs/algorithm.md, "The
 * nearest NIC for each task"). */
MPIBIND_API char **mpibind_get_nics_ptask(mpibind_t *handle, int taskid,
                                          int *nnics);

/* ---- Reports --------------------------------------------------------- */
/* One line per task:  "mpibind: task %2d nths %2d gpus %s cpus %s\n",
 * with " nics %s" (the task's NICs) before " cpus" on a node with NICs.
 * The snprint functions behave like snprintf: they write at most size
 * bytes including the terminating NUL, and return the length the whole
 * report has (so a return >= size means it was truncated; call with
 * buf NULL and size 0 to learn the size), or -1 on error. */
MPIBIND_API int mpibind_mapping_snprint(char *buf, int size,
                                        mpibind_t *handle);
MPIBIND_API int mpibind_mapping_ptask_snprint(char *buf, int size,
                                              mpibind_t *handle, int taskid);
/* Prints the report on stdout. */
MPIBIND_API int mpibind_mapping_print(mpibind_t *handle);

/* ---- Picture ---------------------------------------------------------- */

/* Draws the node and its mapping into the file path, whose extension
 * gives the format: .svg, .png, .pdf (drawn by hwloc's lstopo, found in
 * PATH: lstopo-no-graphics or lstopo for SVG; for PNG and PDF lstopo's
 * cairo output, else its SVG converted by rsvg-convert) or
 * .xml (the annotated topology itself, for `lstopo -i FILE` later).  The
 * whole node is drawn (also what a restriction left out); each task's PUs,
 * cores, GPUs and NICs (PCI device and OS devices) are filled with the
 * task's colour through hwloc's `lstopoStyle` info; a PU, GPU or NIC of
 * several tasks
 * is dark grey and holds a box naming them; a key of one box per task and
 * a legend with each task's report line complete it.  Valid after a
 * successful mpibind().  The file is written whole or not at all (a
 * temporary file beside it is renamed onto it, mode 0644).  The renderers
 * run as child processes (without LD_PRELOAD) with their output
 * discarded, each for at most 120 seconds (then killed: a stuck renderer
 * fails the drawing, never hangs the caller); the first line of their
 * errors, or how they ended, is in the message.  Fails, with the file
 * name in the message, on an unknown extension, a missing renderer ("no
 * renderer"), an unwritable file ("cannot write the picture") or a
 * renderer failure. */
MPIBIND_API int mpibind_draw(mpibind_t *handle, const char *path);

/* ---- Environment (docs/algorithm.md step 6) ------------------------------- */

/* Computes the variables of every task.  Nothing is exported: the caller
 * decides what to do with them.  Calling it again for the same mapping
 * returns the same variables (pointers included). */
MPIBIND_API int mpibind_set_env_vars(mpibind_t *handle);
/* The variable names, in a stable order; *count receives their number. */
MPIBIND_API char **mpibind_get_env_var_names(mpibind_t *handle, int *count);
/* ntasks values of the variable name, indexed by task; NULL (with a
 * message) for a name that is not one of them. */
MPIBIND_API char **mpibind_get_env_var_values(mpibind_t *handle,
                                              const char *name);
/* Prints every task's variables on stdout, one "mpibind: task %2d
 * NAME=VALUE" line each. */
MPIBIND_API int mpibind_env_vars_print(mpibind_t *handle);

/* ---- Binding --------------------------------------------------------- */

/* Binds the calling process, all its threads, to the CPUs of task taskid.
 * With a topology from a file or from the caller, it binds only when
 * mpibind_topology_check_system() accepts it, and fails otherwise. */
MPIBIND_API int mpibind_apply(mpibind_t *handle, int taskid);

#ifdef __cplusplus
}
#endif

#endif /* MPIBIND_H */
