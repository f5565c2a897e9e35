"""Nothing but libc in the ranks: real launches under mpirun.openmpi and
mpiexec.mpich, on a cold node (no topology, no node mapping yet: the
helper discovers and maps) and a warm one, with LD_DEBUG=files in the
ranks only.

What they pin down (auto/README.md, "Two floors"):
- ranks that are no MPI program (/bin/true): no libhwloc, libmpibind,
  libudev, libxml2 or hwloc plugin is loaded in them at all, and they are
  bound (bound=1), one discovery on the cold node;
- MPI programs (the C probe): the MPI library loads its own hwloc inside
  MPI_Init; nothing of that list is loaded by the preload or by libmpibind,
  and libmpibind is never loaded.

The ranks' pids come from MPIBIND_TRACE; LD_DEBUG lines of other
processes (the launcher's daemons) are not theirs.
"""

import os
import shutil

import pytest

from launchlib import cfg, have, launch
from mpibind_testutil import NOT_IN_APPLICATION as FORBIDDEN
from mpibind_testutil import TRACE_LINE_RE as TRACE_RE
from mpibind_testutil import ld_debug_loads as loads

LAUNCHER_BIN = {"openmpi": "mpirun.openmpi", "mpich": "mpiexec.mpich"}
TRUE = shutil.which("true") or "/bin/true"
NRANKS = 2


def need(launcher):
    if not have(LAUNCHER_BIN[launcher]):
        pytest.skip(f"{LAUNCHER_BIN[launcher]} is not installed")


def traced_launch(launcher, prog, tmp, cache):
    trace = tmp / "trace"
    if trace.exists():
        trace.unlink()
    r = launch(launcher, NRANKS, prog,
               env={"LD_DEBUG": "files", "MPIBIND_CACHE_DIR": str(cache),
                    "MPIBIND_TRACE": str(trace)})
    assert r.rc == 0, str(r)[-4000:]
    lines = [TRACE_RE.match(l) for l in open(trace).read().splitlines()]
    assert len(lines) == NRANKS and all(lines), lines
    return r, lines


@pytest.mark.parametrize("launcher", ["openmpi", "mpich"])
def test_ranks_that_are_no_mpi_program(launcher, tmp_path):
    need(launcher)
    cache = tmp_path / "cache"
    for cold in (True, False):
        r, lines = traced_launch(launcher, [TRUE], tmp_path, cache)
        hows = sorted(t[4] for t in lines)
        assert hows == (["cache", "discovered"] if cold else ["cache"] * NRANKS), hows
        assert all(t[5] == "1" for t in lines), lines
        seen = loads(r.stderr)
        for t in lines:
            mine = seen.get(int(t[1]), [])
            assert mine, "LD_DEBUG did not reach rank %s" % t[1]
            assert [f for f, _ in mine if FORBIDDEN.search(f)] == [], (cold, mine)


@pytest.mark.parametrize("launcher", ["openmpi", "mpich"])
def test_mpi_ranks_load_hwloc_only_through_mpi(launcher, tmp_path):
    need(launcher)
    cache = tmp_path / "cache"
    prog = [cfg("MPIBIND_TEST_PROBE_C_" + launcher.upper())]
    preload = os.path.basename(cfg("MPIBIND_TEST_PRELOAD"))
    for cold in (True, False):
        r, lines = traced_launch(launcher, prog, tmp_path, cache)
        assert all(t[5] == "1" for t in lines), lines
        seen = loads(r.stderr)
        for t in lines:
            mine = seen.get(int(t[1]), [])
            assert mine, "LD_DEBUG did not reach rank %s" % t[1]
            assert not [f for f, _ in mine if "libmpibind.so" in f], mine
            # whatever of the list is loaded, the MPI library brought it
            ours = [(f, by) for f, by in mine if FORBIDDEN.search(f) and
                    (by.endswith(preload) or "libmpibind" in by)]
            assert ours == [], (cold, ours)
