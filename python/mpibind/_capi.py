"""The C library seen through CFFI in ABI mode (no compiler needed).

The declarations below are those of lib/include/mpibind.h that the module uses,
with hwloc's opaque pointer types left opaque (tests/api/check_cdef.py
checks that each one is the header's).  The library is the file
named by the environment variable MPIBIND_LIBRARY when it is set (and then
only that one: a wrong path is an ImportError, not a silent fallback);
otherwise the one installed with this module (beside it after `pip
install`, _config.BUNDLED; in _config.LIBDIR after `meson install`), then
the soname through the linker's search path.
"""

import os

import cffi

from . import _config

CDEF = """
typedef struct hwloc_topology *hwloc_topology_t;
typedef struct hwloc_bitmap_s *hwloc_bitmap_t;

enum {
  MPIBIND_RESTRICT_CPU = 0,
  MPIBIND_RESTRICT_MEM,
  MPIBIND_ID_UNIV,
  MPIBIND_ID_SMI,
  MPIBIND_ID_PCIBUS,
  MPIBIND_ID_NAME
};

#define MPIBIND_ENOMAP 4096

typedef struct mpibind_t mpibind_t;

int mpibind_init(mpibind_t **handle);
int mpibind_finalize(mpibind_t *handle);
const char *mpibind_get_error(const mpibind_t *handle);
int mpibind_get_errno(const mpibind_t *handle);
const char *mpibind_get_version(void);

int mpibind_set_ntasks(mpibind_t *handle, int ntasks);
int mpibind_set_nthreads(mpibind_t *handle, int nthreads);
int mpibind_set_greedy(mpibind_t *handle, int greedy);
int mpibind_set_gpu_optim(mpibind_t *handle, int gpu_optim);
int mpibind_set_smt(mpibind_t *handle, int smt);
int mpibind_set_restrict_ids(mpibind_t *handle, const char *ids);
int mpibind_set_restrict_type(mpibind_t *handle, int type);
int mpibind_set_gpu_ids(mpibind_t *handle, int id_kind);
int mpibind_set_transport_vars(mpibind_t *handle, int on);
int mpibind_set_all_gpus_visible(mpibind_t *handle, int on);
int mpibind_set_topology_file(mpibind_t *handle, const char *path);
int mpibind_set_gpu_allocation(mpibind_t *handle, const char *var,
                               const char *value);
const char *mpibind_get_gpu_var(int i);

int mpibind_get_ntasks(mpibind_t *handle);
int mpibind_get_greedy(mpibind_t *handle);
int mpibind_get_gpu_optim(mpibind_t *handle);
int mpibind_get_smt(mpibind_t *handle);
int mpibind_get_restrict_type(mpibind_t *handle);
int mpibind_get_gpu_ids(mpibind_t *handle);
int mpibind_get_transport_vars(mpibind_t *handle);
int mpibind_get_all_gpus_visible(mpibind_t *handle);
const char *mpibind_get_restrict_ids(mpibind_t *handle);
int mpibind_get_nthreads_input(mpibind_t *handle);
const char *mpibind_get_topology_file(mpibind_t *handle);

int mpibind_topology_load(mpibind_t *handle);
int mpibind_topology_check_system(mpibind_t *handle);

int mpibind(mpibind_t *handle);

int *mpibind_get_nthreads(mpibind_t *handle);
int mpibind_get_num_gpus(mpibind_t *handle);
int *mpibind_get_cpus_ptask(mpibind_t *handle, int taskid, int *ncpus);
char **mpibind_get_gpus_ptask(mpibind_t *handle, int taskid, int *ngpus);
char **mpibind_get_nics_ptask(mpibind_t *handle, int taskid, int *nnics);
const char *mpibind_get_gpu_id(mpibind_t *handle, int gpu, int id_kind);

int mpibind_mapping_snprint(char *buf, int size, mpibind_t *handle);
int mpibind_mapping_ptask_snprint(char *buf, int size, mpibind_t *handle,
                                  int taskid);

int mpibind_set_env_vars(mpibind_t *handle);
char **mpibind_get_env_var_names(mpibind_t *handle, int *count);
char **mpibind_get_env_var_values(mpibind_t *handle, const char *name);

int mpibind_apply(mpibind_t *handle, int taskid);
int mpibind_apply_cpus(mpibind_t *handle, const char *cpus);
"""

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _candidates():
    """Where to look for the library, most specific first."""
    if getattr(_config, "BUNDLED", False):
        # pip install: the one built with this module, beside it
        yield "installed with this module", os.path.join(
            os.path.dirname(os.path.abspath(__file__)), _config.SONAME)
    if _config.LIBDIR:
        yield "installed", os.path.join(_config.LIBDIR, _config.SONAME)
    yield "linker search path", _config.SONAME


def _reason(err):
    """dlopen's own words, without cffi's note about find_library."""
    return str(err).split(".  Additionally,")[0]


def _load():
    env = os.environ.get("MPIBIND_LIBRARY")
    if env:
        # An explicit choice: loading another library instead would hide
        # the mistake, so a failure here is final.
        try:
            return ffi.dlopen(env), env
        except OSError as err:
            raise ImportError("mpibind: cannot load MPIBIND_LIBRARY=%r: %s"
                              % (env, _reason(err))) from None
    tried = []
    for origin, name in _candidates():
        try:
            return ffi.dlopen(name), name
        except OSError as err:
            tried.append("%s (%s): %s" % (name, origin, _reason(err)))
    raise ImportError("mpibind: cannot load the C library libmpibind; tried: "
                      + "; ".join(tried)
                      + ". Set MPIBIND_LIBRARY to the path of libmpibind.so.")


def _check_version(library, path):
    """The library must be of this module's major version (its soname says
    so when it was found by soname, not when MPIBIND_LIBRARY names a file):
    another major has another ABI, and calling it through this cdef would
    be undefined behaviour."""
    try:
        get_version = library.mpibind_get_version
    except AttributeError:
        raise ImportError(
            "mpibind: the Python module %s needs libmpibind %d.x, but %s has "
            "no mpibind_get_version() (a library older than 1.0)"
            % (_config.VERSION, _config.MAJOR, path)) from None
    version = ffi.string(get_version()).decode("ascii", "replace")
    major = version.split(".")[0]
    if not major.isdigit() or int(major) != _config.MAJOR:
        raise ImportError(
            "mpibind: the Python module %s needs libmpibind %d.x, but %s is "
            "version %s" % (_config.VERSION, _config.MAJOR, path, version))


lib, LIBRARY_PATH = _load()
_check_version(lib, LIBRARY_PATH)
