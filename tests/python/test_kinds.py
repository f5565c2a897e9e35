"""The exception of a failure follows the C library's kind of failure
(mpibind_get_errno): a bad value is ValueError, whatever else is set;
the module refuses a C library of another major version; the library
refuses an hwloc of another API major at run time.
"""

import errno
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

import mpibind
from mpibind._capi import ffi, lib
from conftest import topo

LASSEN = "coral-lassen.xml"     # 4 NVIDIA GPUs, SMT-4
SOURCE_ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.mark.parametrize("inputs", [
    {}, {"smt": 2}, {"restrict_ids": "8-39"}, {"smt": 1, "greedy": 0},
], ids=repr)
def test_bad_gpu_allocation_entry_is_a_value_error(handles, inputs):
    """An entry of CUDA_VISIBLE_DEVICES that names no GPU of the node is a
    bad value with every other input: the exception does not depend on
    whether smt or a restriction was set."""
    h = handles(ntasks=4, topology_file=topo(LASSEN), **inputs)
    h.set_gpu_allocation("CUDA_VISIBLE_DEVICES", "0,7")
    with pytest.raises(ValueError) as err:
        h.mpibind()
    assert "'7'" in str(err.value)
    assert lib.mpibind_get_errno(h._h) == errno.EINVAL
    # The same handle maps once the entry is fixed.
    h.set_gpu_allocation("CUDA_VISIBLE_DEVICES", "0,3")
    h.mpibind()
    assert 1 <= h.get_num_gpus() <= 2   # a restriction may drop one
    assert {g for t in range(4) for g in h.get_gpus_ptask(t)} <= {"0", "3"}


def test_inputs_the_topology_rejects_are_value_errors(handles):
    h = handles(ntasks=2, topology_file=topo(LASSEN), smt=5)
    with pytest.raises(ValueError, match="smt 5"):
        h.mpibind()
    h.smt = 0
    h.restrict_ids = "1000-1010"
    with pytest.raises(ValueError, match="1000-1010"):
        h.mpibind()


def test_foreign_topology_binding_is_mpibind_error_exdev(handles):
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    with pytest.raises(mpibind.MpibindError) as err:
        h.apply(0)
    assert err.value.errno == errno.EXDEV
    assert "lassen" in str(err.value)


def test_missing_topology_file_is_a_value_error(tmp_path):
    path = str(tmp_path / "missing.xml")
    with pytest.raises(ValueError, match="missing.xml"):
        mpibind.MpibindHandle(ntasks=1, topology_file=path)


def test_version_is_the_librarys():
    version = ffi.string(lib.mpibind_get_version()).decode()
    assert version == mpibind.__version__
    assert int(version.split(".")[0]) == mpibind._config.MAJOR


def _python_env(**extra):
    env = dict(os.environ)
    env.update(extra)
    return env


def _cc():
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which("pkg-config"):
        pytest.skip("needs a C compiler and pkg-config")
    return cc


def _hwloc_flags():
    out = subprocess.run(["pkg-config", "--cflags", "--libs", "hwloc"],
                         check=True, capture_output=True, text=True)
    return out.stdout.split()


def test_library_of_another_major_is_refused(tmp_path):
    """The library's own sources built as version 99.1.0: importing the
    module over it is an ImportError naming both versions."""
    cc = _cc()
    (tmp_path / "mpibind_version.h").write_text(textwrap.dedent("""\
        #define MPIBIND_VERSION_MAJOR 99
        #define MPIBIND_VERSION_MINOR 1
        #define MPIBIND_VERSION_PATCH 0
        #define MPIBIND_VERSION_STRING "99.1.0"
        """))
    lib_dir = os.path.join(SOURCE_ROOT, "lib")
    dirs = [lib_dir, os.path.join(lib_dir, "include"),
            os.path.join(lib_dir, "common")]
    sources = sorted(os.path.join(d, f) for d in dirs for f in os.listdir(d)
                     if f.endswith(".c"))
    so = tmp_path / "libmpibind.so.99"
    # mpibind.h includes "mpibind_version.h": lib/include has none (the
    # build generates it), so the first -I directory's is the one used.
    includes = [a for d in [str(tmp_path)] + dirs for a in ("-I", d)]
    subprocess.run([cc, "-shared", "-fPIC", "-O0", "-std=gnu11",
                    "-fvisibility=hidden"] + includes +
                   ["-o", str(so)] + sources + _hwloc_flags(), check=True,
                   timeout=240)
    proc = subprocess.run([sys.executable, "-c", "import mpibind"],
                          env=_python_env(MPIBIND_LIBRARY=str(so)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError"), proc.stderr
    assert "99.1.0" in last and mpibind.__version__ in last, last
    assert "%d.x" % mpibind._config.MAJOR in last, last


def test_hwloc_of_another_api_major_is_refused(tmp_path):
    """A site that upgrades hwloc under an installed mpibind: the hwloc
    loaded reports API 3.0 (a preloaded hwloc_get_api_version, as a newer
    libhwloc would), and every topology use fails with ELIBBAD naming
    both versions instead of mapping without GPUs."""
    cc = _cc()
    shim_c = tmp_path / "hwloc3.c"
    shim_c.write_text("unsigned hwloc_get_api_version(void) "
                      "{ return 0x00030000; }\n")
    shim = tmp_path / "libhwloc3.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(shim), str(shim_c)],
                   check=True, timeout=60)
    code = textwrap.dedent("""\
        import errno, mpibind
        for make in (lambda: mpibind.MpibindHandle(ntasks=1,
                                                   topology_file=%r),
                     lambda: mpibind.MpibindHandle(ntasks=1).mpibind()):
            try:
                make()
            except mpibind.MpibindError as err:
                assert err.errno == errno.ELIBBAD, err.errno
                print(err)
            else:
                raise SystemExit("no error")
        """ % topo(LASSEN))
    preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), str(shim)]))
    proc = subprocess.run([sys.executable, "-c", code],
                          env=_python_env(LD_PRELOAD=preload),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "3.0.0" in line and "hwloc" in line, line
