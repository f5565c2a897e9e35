"""mpibind for Python: the mapping of a node's tasks to CPUs, threads and GPUs.

    import mpibind
    h = mpibind.MpibindHandle(ntasks=4, restrict_ids='0-7')
    h.mpibind()
    h.apply(rank)
    print(h.mapping_snprint())

A worker started from Python (multiprocessing, a PyTorch worker) binds
itself as one task of its node's mapping, computed once per node:

    share = mpibind.bind_task(local_rank, nworkers)   # before import torch

A thin layer over libmpibind (CFFI, ABI mode): the mapping is the C
library's (docs/algorithm.md); this module checks Python values, turns C
failures into exceptions and C arrays into lists.

Errors, chosen from the kind of the C library's failure
(mpibind_get_errno, see the error convention of mpibind.h):
  ValueError    a bad value (EINVAL): wrong type, out of range, unknown
                name, a task id outside the mapping, an input that does not
                fit the topology (smt above the hardware's, a restriction
                that selects nothing, a GPU allocation entry that names no
                GPU); or a topology file that cannot be read (ENOENT,
                EACCES, EISDIR, ...).  The message is the C library's when
                the library found it.
  MemoryError   out of memory (ENOMEM).
  MpibindError  (a RuntimeError) any other kind: the node cannot be mapped
                as asked (MPIBIND_ENOMAP), binding failed or the topology
                is another machine's (EXDEV), the hwloc loaded is not the
                one built against (ELIBBAD); also the handle used after
                finalize() or read before mpibind().
  ImportError   the C library found is of another major version.
No input crashes the interpreter: task ids are checked before any C call,
no C pointer is kept across calls, a handle shared by threads runs one
call at a time (a lock per handle), and a handle cannot be copied or
pickled (TypeError).
"""

import errno
import functools
import operator
import os
import signal
import subprocess
import threading

from ._capi import ffi, lib, LIBRARY_PATH
from . import _config

__version__ = _config.VERSION

MPIBIND_RESTRICT_CPU = lib.MPIBIND_RESTRICT_CPU
MPIBIND_RESTRICT_MEM = lib.MPIBIND_RESTRICT_MEM
MPIBIND_ID_UNIV = lib.MPIBIND_ID_UNIV
MPIBIND_ID_SMI = lib.MPIBIND_ID_SMI
MPIBIND_ID_VISDEVS = MPIBIND_ID_SMI
MPIBIND_ID_PCIBUS = lib.MPIBIND_ID_PCIBUS
MPIBIND_ID_NAME = lib.MPIBIND_ID_NAME
MPIBIND_ENOMAP = lib.MPIBIND_ENOMAP

__all__ = [
    "MpibindHandle", "MpibindError", "topology_set_xml", "bind_task",
    "TaskShare",
    "MPIBIND_RESTRICT_CPU", "MPIBIND_RESTRICT_MEM", "MPIBIND_ID_UNIV",
    "MPIBIND_ID_SMI", "MPIBIND_ID_VISDEVS", "MPIBIND_ID_PCIBUS",
    "MPIBIND_ID_NAME", "MPIBIND_ENOMAP",
]

_INT_MIN, _INT_MAX = -2**31, 2**31 - 1

_RESTRICT_TYPES = {"cpu": MPIBIND_RESTRICT_CPU, "mem": MPIBIND_RESTRICT_MEM}
_ID_KINDS = {
    "uuid": MPIBIND_ID_UNIV, "univ": MPIBIND_ID_UNIV,
    "index": MPIBIND_ID_SMI, "smi": MPIBIND_ID_SMI,
    "visdevs": MPIBIND_ID_SMI,
    "pci": MPIBIND_ID_PCIBUS, "pcibus": MPIBIND_ID_PCIBUS,
    "name": MPIBIND_ID_NAME,
}

# The topology file of handles created without topology_file=; set by
# topology_set_xml().  None: the live machine.
_default_topology_file = None


class MpibindError(RuntimeError):
    """The mapping cannot be computed or applied, or the handle is unusable.
    errno is the C library's kind of failure when it comes from there."""

    def __init__(self, message, kind=0):
        super().__init__(message)
        self.errno = kind


# Kinds of C failures that are a bad value given by the caller: the value
# of a setter or of an input the topology rejects (EINVAL), or a topology
# file that cannot be read (what open(2) says about the path).
_VALUE_KINDS = frozenset((errno.EINVAL, errno.ENOENT, errno.EACCES,
                          errno.EISDIR, errno.ENOTDIR, errno.ELOOP,
                          errno.ENAMETOOLONG, errno.EPERM))


def _exception(h):
    """The exception for the last failure of C handle h, by its kind."""
    kind = lib.mpibind_get_errno(h)
    message = _pystr(lib.mpibind_get_error(h))
    if kind in _VALUE_KINDS:
        return ValueError(message)
    if kind == errno.ENOMEM:
        return MemoryError(message)
    return MpibindError(message, kind)


def _int(name, value):
    """value as a C int, or ValueError naming it (bool is not an int here)."""
    if isinstance(value, bool):
        raise ValueError("%s: expected an integer, got the bool %r"
                         % (name, value))
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError("%s: expected an integer, got %r (%s)"
                         % (name, value, type(value).__name__)) from None
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValueError("%s: %d is out of range (expected an int from %d "
                         "to %d)" % (name, number, _INT_MIN, _INT_MAX))
    return number


def _cstr(name, value):
    """value (a str, or a path) as bytes for C, or ValueError naming it."""
    if hasattr(value, "__fspath__"):
        value = value.__fspath__()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if not isinstance(value, str):
        raise ValueError("%s: expected a string, got %r (%s)"
                         % (name, value, type(value).__name__))
    if "\0" in value:
        raise ValueError("%s: %r contains a NUL character" % (name, value))
    return value.encode("utf-8", "surrogateescape")


def _check_size(size):
    """The snprint size argument: checked, then not used (the whole report
    is returned, so nothing can be cut)."""
    if size is not None and _int("size", size) < 0:
        raise ValueError("size: %d is negative (expected a buffer size >= 0)"
                         % size)


def _pystr(ptr):
    return ffi.string(ptr).decode("utf-8", "replace")


def _library_file():
    """The file of the C library this process loaded (found through the
    linker path when LIBRARY_PATH is a bare soname)."""
    if os.sep in LIBRARY_PATH:
        return os.path.realpath(LIBRARY_PATH)
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if os.path.basename(path).startswith("libmpibind.so"):
                    return os.path.realpath(path)
    except OSError:
        pass
    return ""


def _helper():
    """The helper of the library in use, as the preload finds its own: the
    build tree's for a library of the build tree (tests), else the
    installed one."""
    root = os.path.realpath(_config.BUILD_ROOT) + os.sep
    if _library_file().startswith(root):
        return _config.HELPER_BUILD
    if _config.BUNDLED:
        # a wheel: beside the library, in this package's directory
        return os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "mpibind-discover")
    return _config.HELPER


def _parse_in_child(what, data):
    """hwloc's XML parser crashes on some malformed files (an object
    without complete_cpuset, a bitmap written ',,0x0'): the helper
    mpibind-discover parses the file first, so that such a file gives a
    ValueError instead of killing the interpreter."""
    path = data.decode("utf-8", "surrogateescape")
    env = dict(os.environ, MPIBIND="off")
    try:
        seconds = int(os.environ.get("MPIBIND_DISCOVERY_TIMEOUT", "10"))
    except ValueError:
        seconds = 10
    try:
        p = subprocess.run([_helper(), "--check", data], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
        raise ValueError("%s '%s': hwloc did not finish parsing it within %d "
                         "seconds: expected an hwloc XML export"
                         % (what, path, max(seconds, 1))) from None
    except OSError as err:
        raise MpibindError("%s '%s': cannot check it in the helper %s: %s"
                           % (what, path, _helper(), err.strerror)) from None
    if p.returncode < 0:
        sig = -p.returncode
        raise ValueError("%s '%s' crashes hwloc's XML parser (signal %d, %s): "
                         "expected an hwloc XML export (lstopo --of xml)"
                         % (what, path, sig, signal.strsignal(sig)))


def _check_topology_file(path):
    """Reads path with a scratch handle: ValueError with the C message when
    the file is missing or not a topology."""
    data = _cstr("topology file", path)
    _parse_in_child("topology file", data)
    hp = ffi.new("mpibind_t **")
    if lib.mpibind_init(hp) != 0 or hp[0] == ffi.NULL:
        raise MemoryError("mpibind: cannot create a handle")
    try:
        if lib.mpibind_set_topology_file(hp[0], data) != 0:
            raise _exception(hp[0])
    finally:
        lib.mpibind_finalize(hp[0])
    return data.decode("utf-8", "surrogateescape")


def topology_set_xml(path):
    """Makes the hwloc XML file at path the topology of the handles created
    from now on without topology_file= (None: the live machine again).  The
    file is checked now.  Handles that exist are not affected."""
    global _default_topology_file
    _default_topology_file = None if path is None else \
        _check_topology_file(path)


def _locked(method):
    """method, run holding its handle's lock.  CFFI releases the GIL in
    every C call and the C handle is not thread safe (mpibind.h), so two
    threads must never be inside the library with one handle, nor read
    what a getter returns (pointers into the handle) while another thread
    changes it.  Every public method and property takes it; reentrant, as
    they call each other."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    locked.holds_handle_lock = True
    return locked


class MpibindHandle:
    """One mapping problem: its inputs, and after mpibind() its mapping.

    Every keyword left None keeps the library's default (docs/algorithm.md).
    topology_file applies to this handle only; without it the handle uses
    the file of topology_set_xml(), if any, else the live machine.
    Changing an input discards the mapping: call mpibind() again.

    Threads: a handle may be shared between threads.  Each call holds the
    handle's lock (the C handle is not thread safe), so calls from several
    threads run one after the other, each whole: a getter never sees a
    mapping half-changed by another thread's setter or mpibind().  Use one
    handle per thread for calls that run at the same time.

    A handle owns its C handle: copy.copy(), copy.deepcopy() and pickle
    raise TypeError (create another handle with the same inputs).
    """

    def __init__(self, ntasks=None, nthreads=None, greedy=None,
                 gpu_optim=None, smt=None, restrict_ids=None,
                 restrict_type=None, topology_file=None):
        # first: finalize() (also from __del__ after a failure below) takes it
        self._lock = threading.RLock()
        self._h = None
        self._mapped_ntasks = 0     # > 0: a mapping of that many tasks
        self._env_done = False
        hp = ffi.new("mpibind_t **")
        if lib.mpibind_init(hp) != 0 or hp[0] == ffi.NULL:
            raise MemoryError("mpibind: cannot create a handle")
        self._h = hp[0]
        try:
            if topology_file is None:
                topology_file = _default_topology_file
            if topology_file is not None:
                self.topology_file = topology_file
            if ntasks is not None:
                self.ntasks = ntasks
            if nthreads is not None:
                self.nthreads = nthreads
            if greedy is not None:
                self.greedy = greedy
            if gpu_optim is not None:
                self.gpu_optim = gpu_optim
            if smt is not None:
                self.smt = smt
            if restrict_type is not None:
                self.restrict_type = restrict_type
            if restrict_ids is not None:
                self.restrict_ids = restrict_ids
        except BaseException:
            self.finalize()
            raise

    # ---- plumbing ------------------------------------------------------

    def _handle(self):
        if self._h is None:
            raise MpibindError("mpibind: the handle was finalized")
        return self._h

    def _failure(self):
        """The exception for the last C failure on this handle."""
        return _exception(self._h)

    def _set(self, setter, value):
        """Calls a C setter."""
        h = self._handle()
        if setter(h, value) != 0:
            raise self._failure()
        self._mapped_ntasks = 0
        self._env_done = False

    def _mapped(self):
        h = self._handle()
        if self._mapped_ntasks <= 0:
            raise MpibindError("mpibind: no mapping: call mpibind() first "
                               "(changing an input discards the mapping)")
        return h

    def _task(self, taskid):
        """Checks taskid against the mapping before C sees it."""
        h = self._mapped()
        if isinstance(taskid, bool):
            raise ValueError("taskid: expected an integer, got the bool %r"
                             % taskid)
        try:
            t = operator.index(taskid)
        except TypeError:
            raise ValueError("taskid: expected an integer, got %r (%s)"
                             % (taskid, type(taskid).__name__)) from None
        if not 0 <= t < self._mapped_ntasks:
            raise ValueError("taskid: %d is not a task of this mapping "
                             "(expected 0 to %d)"
                             % (t, self._mapped_ntasks - 1))
        return h, t

    def __reduce_ex__(self, protocol):
        raise TypeError("mpibind.MpibindHandle cannot be copied or pickled: "
                        "it owns its C handle (create another handle with "
                        "the same inputs)")

    def __copy__(self):
        self.__reduce_ex__(0)

    def __deepcopy__(self, memo):
        self.__reduce_ex__(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.finalize()
        return False

    def __del__(self):
        try:
            self.finalize()
        except Exception:
            pass

    @_locked
    def __repr__(self):
        if self._h is None:
            return "<mpibind.MpibindHandle finalized>"
        return ("<mpibind.MpibindHandle ntasks=%d topology=%s%s>"
                % (lib.mpibind_get_ntasks(self._h),
                   self.topology_file or "live",
                   " mapped" if self._mapped_ntasks else ""))

    # ---- life cycle ----------------------------------------------------

    @_locked
    def finalize(self):
        """Releases the handle; using it afterwards raises MpibindError.
        Calling it twice is harmless."""
        if self._h is not None:
            h, self._h = self._h, None
            self._mapped_ntasks = 0
            lib.mpibind_finalize(h)

    @_locked
    def mpibind(self):
        """Computes the mapping.  ValueError when an input does not fit
        (including ones only the topology can judge); MpibindError when
        the node cannot be mapped as asked."""
        h = self._handle()
        self._mapped_ntasks = 0
        self._env_done = False
        if lib.mpibind(h) != 0:
            raise self._failure()
        self._mapped_ntasks = lib.mpibind_get_ntasks(h)

    @_locked
    def apply(self, taskid):
        """Binds this process (all its threads) to task taskid's CPUs.
        With a topology file, only when the file describes this machine."""
        h, t = self._task(taskid)
        if lib.mpibind_apply(h, t) != 0:
            raise self._failure()

    @_locked
    def topology_check_system(self):
        """Raises MpibindError unless the handle's topology describes the
        machine this process runs on (what apply() requires)."""
        h = self._handle()
        if lib.mpibind_topology_check_system(h) != 0:
            raise self._failure()

    # ---- inputs --------------------------------------------------------

    @property
    @_locked
    def ntasks(self):
        return lib.mpibind_get_ntasks(self._handle())

    @ntasks.setter
    @_locked
    def ntasks(self, value):
        self._set(lib.mpibind_set_ntasks, _int("ntasks", value))

    @property
    @_locked
    def nthreads(self):
        """The per-task thread counts (a list) once mapped; before, the
        input (0: let mpibind choose)."""
        h = self._handle()
        if self._mapped_ntasks > 0:
            arr = lib.mpibind_get_nthreads(h)
            if arr == ffi.NULL:
                raise self._failure()
            return [arr[i] for i in range(self._mapped_ntasks)]
        return lib.mpibind_get_nthreads_input(h)

    @nthreads.setter
    @_locked
    def nthreads(self, value):
        self._set(lib.mpibind_set_nthreads, _int("nthreads", value))

    @property
    @_locked
    def greedy(self):
        return lib.mpibind_get_greedy(self._handle())

    @greedy.setter
    @_locked
    def greedy(self, value):
        self._set(lib.mpibind_set_greedy, _int("greedy", value))

    @property
    @_locked
    def gpu_optim(self):
        return lib.mpibind_get_gpu_optim(self._handle())

    @gpu_optim.setter
    @_locked
    def gpu_optim(self, value):
        self._set(lib.mpibind_set_gpu_optim, _int("gpu_optim", value))

    @property
    @_locked
    def smt(self):
        return lib.mpibind_get_smt(self._handle())

    @smt.setter
    @_locked
    def smt(self, value):
        self._set(lib.mpibind_set_smt, _int("smt", value))

    @property
    @_locked
    def restrict_ids(self):
        """The restriction list (hwloc list syntax), or None."""
        ids = lib.mpibind_get_restrict_ids(self._handle())
        return None if ids == ffi.NULL else _pystr(ids)

    @restrict_ids.setter
    @_locked
    def restrict_ids(self, value):
        data = ffi.NULL if value is None else _cstr("restrict_ids", value)
        self._set(lib.mpibind_set_restrict_ids, data)

    @property
    @_locked
    def restrict_type(self):
        """MPIBIND_RESTRICT_CPU (0) or MPIBIND_RESTRICT_MEM (1); set also
        with 'cpu' or 'mem'."""
        return lib.mpibind_get_restrict_type(self._handle())

    @restrict_type.setter
    @_locked
    def restrict_type(self, value):
        if isinstance(value, str):
            key = value.strip().lower()
            if key not in _RESTRICT_TYPES:
                raise ValueError("restrict_type: unknown type %r (expected "
                                 "'cpu', 'mem', %d or %d)"
                                 % (value, MPIBIND_RESTRICT_CPU,
                                    MPIBIND_RESTRICT_MEM))
            value = _RESTRICT_TYPES[key]
        self._set(lib.mpibind_set_restrict_type, _int("restrict_type", value))

    @property
    @_locked
    def topology_file(self):
        """The XML file of this handle's topology, or None (live machine).
        Setting it reads the file now (ValueError if it is unusable)."""
        path = lib.mpibind_get_topology_file(self._handle())
        return None if path == ffi.NULL else \
            ffi.string(path).decode("utf-8", "surrogateescape")

    @topology_file.setter
    @_locked
    def topology_file(self, value):
        data = ffi.NULL if value is None else _cstr("topology_file", value)
        if value is not None:
            _parse_in_child("topology file", data)
        self._set(lib.mpibind_set_topology_file, data)

    @_locked
    def set_gpu_ids(self, kind):
        """The kind of GPU ID that get_gpus_ptask() and the reports give:
        an MPIBIND_ID_* constant, or 'uuid', 'index', 'pci', 'name'."""
        if isinstance(kind, str):
            key = kind.strip().lower()
            if key not in _ID_KINDS:
                raise ValueError("gpu id kind: unknown kind %r (expected one "
                                 "of %s)" % (kind, ", ".join(sorted(_ID_KINDS))))
            kind = _ID_KINDS[key]
        h = self._handle()
        # The ID kind only changes how GPUs are named: the mapping stays.
        if lib.mpibind_set_gpu_ids(h, _int("gpu id kind", kind)) != 0:
            raise self._failure()

    @_locked
    def get_gpu_ids(self):
        return lib.mpibind_get_gpu_ids(self._handle())

    def _set_switch(self, setter, name, on):
        """An input of the variables that is on or off (a bool, or 0/1):
        the mapping must be computed again."""
        value = int(on) if isinstance(on, bool) else _int(name, on)
        h = self._handle()
        if setter(h, value) != 0:
            raise self._failure()
        self._mapped_ntasks = 0
        self._env_done = False

    @_locked
    def set_transport_vars(self, on):
        """True: set_env_vars() also names each task's NICs to the
        transports (UCX_NET_DEVICES, NCCL_IB_HCA, FI_CXI_DEVICE_NAME, on
        nodes with such NICs); False (the default): MPIBIND_NICS only."""
        self._set_switch(lib.mpibind_set_transport_vars, "transport vars",
                         on)

    @_locked
    def get_transport_vars(self):
        return bool(lib.mpibind_get_transport_vars(self._handle()))

    @_locked
    def set_all_gpus_visible(self, on):
        """True: set_env_vars() gives every task every GPU in one order,
        the same for all: task 0's GPU, task 1's, ..., then the others
        (PyTorch workers: torch.cuda.set_device(LOCAL_RANK)); False (the
        default): each task sees its own GPUs."""
        self._set_switch(lib.mpibind_set_all_gpus_visible,
                         "all gpus visible", on)

    @_locked
    def get_all_gpus_visible(self):
        return bool(lib.mpibind_get_all_gpus_visible(self._handle()))

    @_locked
    def set_gpu_allocation(self, var, value):
        """The GPUs this job may use, as a launcher's variable would say
        (e.g. 'CUDA_VISIBLE_DEVICES', '0,2'); value None removes it."""
        name = _cstr("GPU allocation variable", var)
        data = ffi.NULL if value is None else \
            _cstr("GPU allocation " + str(var), value)
        h = self._handle()
        if lib.mpibind_set_gpu_allocation(h, name, data) != 0:
            raise self._failure()
        self._mapped_ntasks = 0
        self._env_done = False

    # ---- outputs -------------------------------------------------------

    @_locked
    def get_cpus_ptask(self, taskid):
        """Task taskid's CPUs: PU OS indexes, ascending."""
        h, t = self._task(taskid)
        n = ffi.new("int *")
        arr = lib.mpibind_get_cpus_ptask(h, t, n)
        if arr == ffi.NULL:
            raise self._failure()
        return [arr[i] for i in range(n[0])]

    @_locked
    def get_gpus_ptask(self, taskid):
        """Task taskid's GPUs as IDs of the kind chosen by set_gpu_ids()."""
        h, t = self._task(taskid)
        n = ffi.new("int *")
        arr = lib.mpibind_get_gpus_ptask(h, t, n)
        if arr == ffi.NULL:
            raise self._failure()
        return [_pystr(arr[i]) for i in range(n[0])]

    @_locked
    def get_nics_ptask(self, taskid):
        """Task taskid's nearest NICs, by name (mlx5_0, cxi0); [] on a
        node without NICs."""
        h, t = self._task(taskid)
        n = ffi.new("int *")
        arr = lib.mpibind_get_nics_ptask(h, t, n)
        if arr == ffi.NULL:
            raise self._failure()
        return [_pystr(arr[i]) for i in range(n[0])]

    @_locked
    def get_num_gpus(self):
        """The number of GPUs of the job in the mapping: the node's, after
        the GPU allocation (a restriction removes none)."""
        h = self._mapped()
        return lib.mpibind_get_num_gpus(h)

    @_locked
    def mapping_snprint(self, size=None):
        """The report, one line per task.  size is accepted for
        compatibility with the original; the whole report is always
        returned (never cut to size)."""
        h = self._mapped()
        _check_size(size)
        return self._snprint(lambda buf, n: lib.mpibind_mapping_snprint(
            buf, n, h))

    @_locked
    def mapping_ptask_snprint(self, taskid, size=None):
        """Task taskid's line of the report (whole, whatever size is)."""
        h, t = self._task(taskid)
        _check_size(size)
        return self._snprint(lambda buf, n: lib.mpibind_mapping_ptask_snprint(
            buf, n, h, t))

    def _snprint(self, call):
        need = call(ffi.NULL, 0)
        if need < 0:
            raise self._failure()
        buf = ffi.new("char[]", need + 1)
        got = call(buf, need + 1)
        if got < 0:
            raise self._failure()
        if got > need:   # cannot happen with a snprintf-like contract
            raise MpibindError("mpibind: the report grew from %d to %d bytes"
                               % (need, got))
        return _pystr(buf)

    @_locked
    def mapping_print(self):
        """Prints the report on sys.stdout."""
        print(self.mapping_snprint(), end="", flush=True)

    # ---- environment ---------------------------------------------------

    @_locked
    def set_env_vars(self):
        """Computes every task's variables (nothing is exported)."""
        h = self._mapped()
        if lib.mpibind_set_env_vars(h) != 0:
            raise self._failure()
        self._env_done = True

    def _env(self):
        h = self._mapped()
        if not self._env_done:
            self.set_env_vars()
        return h

    @_locked
    def get_env_var_names(self):
        """The variables' names (computing them if needed)."""
        h = self._env()
        n = ffi.new("int *")
        arr = lib.mpibind_get_env_var_names(h, n)
        if arr == ffi.NULL:
            raise self._failure()
        return [_pystr(arr[i]) for i in range(n[0])]

    @_locked
    def get_env_var_values(self, name):
        """The values of variable name, one per task."""
        data = _cstr("variable name", name)
        h = self._env()
        arr = lib.mpibind_get_env_var_values(h, data)
        if arr == ffi.NULL:
            raise self._failure()
        return [_pystr(arr[i]) for i in range(self._mapped_ntasks)]

    @_locked
    def get_env_vars_ptask(self, taskid):
        """Task taskid's variables as a dict."""
        h, t = self._task(taskid)
        return {name: self.get_env_var_values(name)[t]
                for name in self.get_env_var_names()}

    @_locked
    def env_vars_print(self):
        """Prints every task's variables on sys.stdout, one
        'mpibind: task %2d NAME=VALUE' line each."""
        names = self.get_env_var_names()
        values = {name: self.get_env_var_values(name) for name in names}
        lines = ["mpibind: task %2d %s=%s" % (t, name, values[name][t])
                 for t in range(self._mapped_ntasks) for name in names]
        print("".join(line + "\n" for line in lines), end="", flush=True)


# Workers that bind themselves (task.py); last: it uses the names above.
from .task import TaskShare, bind_task  # noqa: E402
