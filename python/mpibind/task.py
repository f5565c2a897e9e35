"""A worker binds itself as one task of its node: mpibind.bind_task().

    import mpibind
    share = mpibind.bind_task(local_rank, local_world_size)   # first
    import torch                                              # then
    torch.cuda.set_device(local_rank)

For workers that no launcher variable names, started from Python
(multiprocessing, inference servers, Ray): each worker calls bind_task
with its number and the node's worker count.  The node is mapped once,
by the first worker that asks, in mpibind's helper (mpibind-discover
--share), through the same node mapping file and lock as the preload's
tasks; every other worker reads its share of it.  Nothing here reads the
file or maps: the helper answers with the task's share as lines.
"""

import ctypes
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from typing import Dict, List

from ._capi import ffi, lib
from . import _helper, MpibindError, MpibindHandle, _cstr, _int

__all__ = ["TaskShare", "bind_task", "bind_process"]


@dataclass(frozen=True)
class TaskShare:
    """What bind_task gave the calling process: task `task` of `ntasks` of
    its node's mapping."""
    task: int
    ntasks: int
    cpus: List[int]           # PU OS indexes the process is bound to
    nthreads: int             # its thread count (OMP_NUM_THREADS)
    gpus: List[str]           # its own GPUs (visible indexes); [] without
    nics: List[str]           # its nearest NICs by name; [] without
    mems: List[int]           # the NUMA nodes of its CPUs
    env: Dict[str, str] = field(default_factory=dict)  # exported
    topology: str = ""        # "discovered": this call mapped the node;
                              # "cache"/"file": it read the node's mapping
    bound: bool = True        # False with dryrun (exported, not bound)


# bind_task's keywords that are MPIBIND words, and how each is written.
def _word_bool(name, word):
    def make(value):
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise ValueError("%s: expected True or False, got %r"
                             % (name, value))
        return word + (":%d" % int(value) if word in ("greedy", "gpu") else "")
    return make


def _flag(name, word):
    def make(value):
        if not isinstance(value, (bool, int)) or value not in (0, 1):
            raise ValueError("%s: expected True or False, got %r"
                             % (name, value))
        return word if value else None
    return make


def _visible(value):
    if value not in ("task", "all", "none"):
        raise ValueError("visible_devices: expected 'task' (each worker its "
                         "own GPUs), 'all' (every GPU, device i worker i's: "
                         "the default) or 'none' (not set), got %r"
                         % (value,))
    return "visible_devices:" + value


def _smt(value):
    if _int("smt", value) < 0:
        raise ValueError("smt: %d is negative (expected hardware threads "
                         "per core, 0 to choose)" % value)
    return "smt:%d" % value


_WORDS = {
    "smt": _smt,
    "greedy": _word_bool("greedy", "greedy"),
    "gpu_optim": _word_bool("gpu_optim", "gpu"),
    "visible_devices": _visible,
    "place_threads": _flag("place_threads", "place_threads"),
    "nics": _flag("nics", "nics"),
    "dryrun": _flag("dryrun", "dryrun"),
}
# bind_task's keywords that are variables of their own; the helper's
# messages name the keyword (--name).
_VARIABLES = {
    "nthreads": "OMP_NUM_THREADS",
    "restrict_ids": "MPIBIND_RESTRICT",
    "restrict_type": "MPIBIND_RESTRICT_TYPE",
    "topology_file": "MPIBIND_TOPOFILE",
}

# The process bound by bind_task, by pid (a child forked after it is a
# process of its own).
_bound = {}


# ---- what the process already started ------------------------------------

def _loaded(name):
    """The shared object `name` when this process has it loaded already
    (dlopen's RTLD_NOLOAD: nothing is loaded here), else None."""
    try:
        return ctypes.CDLL(name, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None


# GPU drivers asked whether they were initialized, by a call that only
# answers (it never initializes): CUDA's cuDeviceGetCount returns
# CUDA_ERROR_NOT_INITIALIZED before cuInit; ROCm's HSA runtime, which HIP
# starts, returns HSA_STATUS_ERROR_NOT_INITIALIZED before hsa_init; Level
# Zero's loader returns ZE_RESULT_ERROR_UNINITIALIZED before zeInit.  0 is
# success in all three.
def _cuda_started(so):
    n = ctypes.c_int(0)
    return so.cuDeviceGetCount(ctypes.byref(n)) == 0


def _hsa_started(so):
    major = ctypes.c_uint16(0)
    return so.hsa_system_get_info(0, ctypes.byref(major)) == 0


def _ze_started(so):
    count = ctypes.c_uint32(0)
    return so.zeDriverGet(ctypes.byref(count), None) == 0


_DRIVERS = (("libcuda.so.1", "CUDA", _cuda_started),
            ("libhsa-runtime64.so.1", "ROCm (HSA)", _hsa_started),
            ("libze_loader.so.1", "Level Zero", _ze_started))


def _gpu_runtime_started():
    """The GPU runtime already initialized in this process (its name), or
    None: its device list was read, so *_VISIBLE_DEVICES can no longer
    change which GPUs it sees."""
    torch = sys.modules.get("torch")
    for backend in ("cuda", "xpu"):
        is_init = getattr(getattr(torch, backend, None), "is_initialized",
                          None)
        if is_init is not None and is_init():
            return "torch.%s" % backend
    for name, what, started in _DRIVERS:
        so = _loaded(name)
        try:
            if so is not None and started(so):
                return "%s (%s)" % (what, name)
        except (AttributeError, OSError):
            pass  # not the driver's interface: nothing to ask
    return None


_OPENMP = ("libgomp.so.1", "libomp.so.5", "libomp.so", "libiomp5.so")


def _openmp_loaded():
    """The OpenMP runtime already loaded (GNU libgomp read OMP_* when it
    was loaded; LLVM's and Intel's at first use), or None."""
    for name in _OPENMP:
        if _loaded(name) is not None:
            return name
    return None


# ---- binding --------------------------------------------------------------

def _thread_ids():
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def _masks():
    """Each thread's CPUs as the kernel has them."""
    masks = {}
    for tid in _thread_ids():
        try:
            masks[tid] = os.sched_getaffinity(tid)
        except ProcessLookupError:
            pass  # the thread ended meanwhile
    return masks


def _apply_cpus(listing):
    """Every thread bound to the CPU list by the library (the preload's and
    mpibind_apply_cpus's one way); MpibindError with its message."""
    hp = ffi.new("mpibind_t **")
    if lib.mpibind_init(hp) != 0 or hp[0] == ffi.NULL:
        raise MemoryError("mpibind: cannot create a handle")
    try:
        if lib.mpibind_apply_cpus(hp[0], _cstr("cpus", listing)) != 0:
            raise MpibindError(ffi.string(lib.mpibind_get_error(hp[0]))
                               .decode("utf-8", "replace"),
                               lib.mpibind_get_errno(hp[0]))
    finally:
        lib.mpibind_finalize(hp[0])


def _as_list(cpus):
    return ",".join(str(c) for c in sorted(cpus))


def bind_process(cpus):
    """Binds every thread of this process to cpus (threads created later
    inherit the binding of the thread that creates them) and reads each
    thread's mask back from the kernel.  A thread whose mask differs makes
    the process get back the CPUs each thread had, and MpibindError.
    (os.sched_setaffinity(0, ...) binds the calling thread only.)"""
    want = set(cpus)
    before = _masks()
    _apply_cpus(_as_list(want))
    wrong = {tid: m for tid, m in _masks().items() if m != want}
    if wrong:
        for tid, mask in before.items():
            try:
                os.sched_setaffinity(tid, mask)
            except OSError:
                pass
        tid, mask = sorted(wrong.items())[0]
        raise MpibindError("mpibind: thread %d of process %d has CPUs %s "
                           "after binding to %s: the process runs on the "
                           "CPUs it had" % (tid, os.getpid(),
                                            _as_list(mask), _as_list(want)))


# ---- the helper's answer --------------------------------------------------

def _ids(text, convert=str):
    return [convert(x) for x in text.split(",") if x] if text else []


def _parse_list(text):
    """An hwloc list ("0-3,8") as ints."""
    out = []
    for item in _ids(text):
        lo, _, hi = item.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _helper_env(tuning):
    """The caller's environment with the keywords as the helper reads
    them, and the --name options that make its messages name them."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)  # the helper maps; it is no task
    words, names = [], []
    for key, value in tuning.items():
        if value is None:
            continue
        if key in _WORDS:
            word = _WORDS[key](value)
            if word:
                words.append(word)
        else:
            env[_VARIABLES[key]] = str(value)
            names += ["--name", "%s=%s" % (_VARIABLES[key], key)]
    if words:
        given = env.get("MPIBIND", "")
        env["MPIBIND"] = ",".join(([given] if given else []) + words)
    return env, names


def _check_tuning(tuning):
    """The keywords' values, checked by the library's setters (one grammar
    for every front end): ValueError naming the bad one."""
    unknown = sorted(set(tuning) - set(_WORDS) - set(_VARIABLES))
    if unknown:
        raise TypeError("bind_task() got an unexpected keyword argument %r "
                        "(expected %s)" % (unknown[0], ", ".join(
                            sorted(set(_WORDS) | set(_VARIABLES)))))
    checked = {k: tuning[k] for k in ("nthreads", "restrict_ids",
                                      "restrict_type") if tuning.get(k) is not None}
    if checked.get("nthreads") is not None and _int("nthreads", checked["nthreads"]) < 1:
        raise ValueError("nthreads: %d is not a thread count (expected an "
                         "integer >= 1)" % checked["nthreads"])
    if checked:
        MpibindHandle(**checked).finalize()
    if tuning.get("topology_file") is not None:
        tuning["topology_file"] = os.fsdecode(os.fspath(tuning["topology_file"]))


def _ask_helper(task, ntasks, tuning):
    """The helper's lines for the task, or None (and a warning) when it
    gives no share (MPIBIND has off; the job's CPUs here are unknown)."""
    env, names = _helper_env(tuning)
    try:
        seconds = max(int(env.get("MPIBIND_DISCOVERY_TIMEOUT", "10")), 1)
    except ValueError:
        seconds = 10
    argv = [_helper(), "--share", "--task", str(task), "--ntasks",
            str(ntasks), "--workers", "--program", sys.executable] + names
    try:
        # the helper's own limit covers discovery and mapping; this one
        # covers waiting for another worker's lock as well
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True,
                           timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise MpibindError("mpibind: bind_task(%d, %d): the helper %s did "
                           "not answer within %d seconds"
                           % (task, ntasks, argv[0], seconds + 60)) from None
    except OSError as err:
        raise MpibindError("mpibind: bind_task(%d, %d): cannot run the "
                           "helper %s: %s" % (task, ntasks, argv[0],
                                              err.strerror)) from None
    line = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    if p.returncode == 3:
        warnings.warn("%s; bind_task(%d, %d) left the process as it was"
                      % (line, task, ntasks), RuntimeWarning, stacklevel=3)
        return None
    if p.returncode != 0:
        raise MpibindError(line or "mpibind: bind_task(%d, %d): the helper "
                           "failed (exit status %d)"
                           % (task, ntasks, p.returncode))
    return dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)


def bind_task(task, ntasks, **tuning):
    """Binds this process as task `task` of the `ntasks` workers of this
    node and returns its TaskShare (CPUs, threads, GPUs, NICs), or None
    when MPIBIND has `off` or the CPUs the launch gave the job here are
    unknown (a RuntimeWarning says which; nothing changes).

    Call it first thing in each worker: before importing torch, CuPy, JAX
    or anything that starts a GPU runtime or an OpenMP runtime.  A GPU
    runtime already initialized here raises MpibindError (its devices are
    chosen: *_VISIBLE_DEVICES would no longer change them); an OpenMP
    runtime already loaded (torch, numpy with OpenMP) gets a
    RuntimeWarning, since its pool keeps the size it read (fix it with
    torch.set_num_threads(share.nthreads)).

    The node is mapped once for its workers: the first call maps it in
    mpibind's helper within the CPUs this process has (the ones the
    workers were started with) and stores every worker's share in the
    node mapping file the preload uses; the others read theirs.  Workers
    that call it at once agree, since they have the same inputs.  The
    process, every thread, is bound to the task's CPUs (checked against
    the kernel's masks), and its variables are exported into os.environ:
    OMP_NUM_THREADS (unless the user set it), the visible-devices
    variables (every GPU of the node in task order by default, so that
    device `task` is its nearest GPU: torch.cuda.set_device(task);
    visible_devices='task' gives each worker its own GPUs only, 'none'
    leaves them), CUDA_DEVICE_ORDER, MPIBIND_NICS.  No OMP_PLACES or
    OMP_PROC_BIND (place_threads=True sets them), no memory policy (a
    task's first touch lands on its NUMA nodes; MPIBIND's membind gets a
    RuntimeWarning).  MPIBIND's dryrun (or dryrun=True): computed and
    exported, not bound.

    tuning, each None by default (the environment's MPIBIND* variables
    apply, these come after them): smt, greedy, gpu_optim, nthreads,
    restrict_ids, restrict_type, topology_file (with dryrun, any node's
    XML), visible_devices ('task', 'all', 'none'), place_threads, nics,
    dryrun (compute and export, do not bind).

    ValueError for a bad argument; MpibindError when the node cannot be
    mapped as asked, a GPU runtime is started, the process was bound by
    bind_task already, or the binding fails.
    """
    task, ntasks = _int("task", task), _int("ntasks", ntasks)
    if ntasks < 1 or not 0 <= task < ntasks:
        raise ValueError("task %d of %d: expected 0 <= task < ntasks, "
                         "ntasks >= 1" % (task, ntasks))
    _check_tuning(tuning)
    if os.getpid() in _bound:
        raise MpibindError("mpibind: this process is task %d of %d already "
                           "(bind_task binds a process once)"
                           % _bound[os.getpid()])
    started = _gpu_runtime_started()
    if started:
        raise MpibindError(
            "mpibind: bind_task(%d, %d): the GPU runtime %s is already "
            "initialized in this process, and its devices cannot change: "
            "call bind_task before anything uses a GPU" % (task, ntasks, started))
    openmp = _openmp_loaded()
    out = _ask_helper(task, ntasks, tuning)
    if out is None:
        return None
    fixed = ("cpus", "nthreads", "mems", "gpus", "topology", "dryrun",
             "membind")
    env = {k: v for k, v in out.items() if k not in fixed}
    if tuning.get("nthreads") is not None:
        env["OMP_NUM_THREADS"] = str(tuning["nthreads"])
    share = TaskShare(task=task, ntasks=ntasks,
                      cpus=_parse_list(out["cpus"]),
                      nthreads=int(out["nthreads"]),
                      gpus=_ids(out.get("gpus", "")),
                      nics=_ids(env.get("MPIBIND_NICS", "")),
                      mems=_parse_list(out.get("mems", "")),
                      env=env, topology=out.get("topology", ""),
                      bound=out.get("dryrun") != "1")
    if share.bound:
        bind_process(share.cpus)
    os.environ.update(env)
    _bound[os.getpid()] = (task, ntasks)
    if out.get("membind") == "1":
        warnings.warn(
            "mpibind: bind_task(%d, %d): MPIBIND has membind, which bind_task "
            "does not apply (no memory policy is set: the task's first touch "
            "places its memory on its NUMA nodes %s); the preload applies it"
            % (task, ntasks, out.get("mems", "")), RuntimeWarning,
            stacklevel=2)
    if openmp:
        warnings.warn(
            "mpibind: bind_task(%d, %d): the OpenMP runtime %s was loaded "
            "before it (torch imported first?) and sized its thread pool "
            "then: it keeps that size; call torch.set_num_threads(%d), or "
            "bind_task before importing torch"
            % (task, ntasks, openmp, share.nthreads),
            RuntimeWarning, stacklevel=2)
    return share
