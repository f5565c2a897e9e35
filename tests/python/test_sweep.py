"""Every topology file in tests/data/topologies, many inputs, through Python:
each mapping either succeeds and is sane, or raises ValueError or
MpibindError; none crashes.  "Sane" is what docs/algorithm.md guarantees for
any input: one entry per task, every task some CPUs of the node (of the
restriction when there is one), at least one thread, GPUs named by the
node's GPU IDs, and the report and the variables saying the same."""

import glob
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import mpibind
from conftest import TOPOLOGIES, report_line, to_hwloc_list
from mpibind_testutil import without_nics

FILES = sorted(glob.glob(os.path.join(TOPOLOGIES, "*.xml")))


def test_there_are_topology_files():
    assert len(FILES) >= 10, TOPOLOGIES


def check_mapping(h, ntasks, universe, restrict=None):
    nthreads = h.nthreads
    assert len(nthreads) == ntasks
    assert all(isinstance(t, int) and t >= 1 for t in nthreads)
    cpus = [h.get_cpus_ptask(t) for t in range(ntasks)]
    gpus = [h.get_gpus_ptask(t) for t in range(ntasks)]
    num_gpus = h.get_num_gpus()
    for t in range(ntasks):
        assert cpus[t], "task %d has no CPU" % t
        assert cpus[t] == sorted(set(cpus[t]))
        assert set(cpus[t]) <= universe
        if restrict is not None:
            assert set(cpus[t]) <= restrict
        assert len(set(gpus[t])) == len(gpus[t])
        assert all(g.isdigit() for g in gpus[t])
    used = {g for task in gpus for g in task}
    assert len(used) <= num_gpus
    assert without_nics(h.mapping_snprint()).splitlines() == [
        report_line(t, nthreads[t], gpus[t], cpus[t]) for t in range(ntasks)]
    env = {n: h.get_env_var_values(n) for n in h.get_env_var_names()}
    assert env["OMP_NUM_THREADS"] == [str(t) for t in nthreads]
    visible = [n for n in env if n.endswith("_VISIBLE_DEVICES")
               or n == "ZE_AFFINITY_MASK"]
    if num_gpus == 0:
        # No GPU (none on the node: a restriction removes none): no
        # variable, or one that shows no device; never one left unset on a
        # node that has GPUs.
        assert all(v == "" for n in visible for v in env[n])
    else:
        # Each task's GPUs, split by vendor, are its variables' entries.
        joined = [",".join(env[n][t] for n in visible if env[n][t])
                  for t in range(ntasks)]
        for t in range(ntasks):
            assert sorted(filter(None, joined[t].split(","))) == \
                sorted(gpus[t])


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_sweep(path):
    """Each file in its own interpreter: an abort in C fails this file's
    test, naming the inputs, without ending the others."""
    proc = subprocess.run([sys.executable, __file__, path],
                          capture_output=True, text=True, timeout=600)
    last = proc.stdout.strip().splitlines()[-1:] or ["(none)"]
    assert proc.returncode == 0, (
        "exit status %d; last inputs: %s\n%s"
        % (proc.returncode, last[0], proc.stderr[-3000:]))
    assert last[0] == "done"


def sweep(path):
    rng = random.Random(os.path.basename(path))
    universe = {int(o.get("os_index")) for o in ET.parse(path).iter("object")
                if o.get("type") == "PU"}
    assert universe
    outcomes = {"mapped": 0, "ValueError": 0}
    # One handle per file, its inputs changed between mappings: the file
    # is read once, and re-mapping a handle is exercised too.
    with mpibind.MpibindHandle(topology_file=path) as h:
        for ntasks in (1, 2, 3, 4, 5, 7, 8, 16, 33, 64, len(universe) + 3):
            for greedy in (0, 1):
                for gpu_optim in (0, 1):
                    for smt in (0, 1, 2, 4):
                        for restrict in (None, "all", "some"):
                            pick = None
                            if restrict == "all":
                                pick = set(universe)
                            elif restrict == "some":
                                pick = set(rng.sample(
                                    sorted(universe),
                                    rng.randint(1, len(universe))))
                            h.ntasks = ntasks
                            h.greedy = greedy
                            h.gpu_optim = gpu_optim
                            h.smt = smt
                            h.restrict_ids = to_hwloc_list(pick) \
                                if pick else None
                            print("inputs", dict(
                                ntasks=ntasks, greedy=greedy,
                                gpu_optim=gpu_optim, smt=smt,
                                restrict_ids=h.restrict_ids), flush=True)
                            try:
                                h.mpibind()
                            except ValueError as err:
                                # Only smt can be too high for these inputs.
                                assert smt > 1 and "smt" in str(err), err
                                outcomes["ValueError"] += 1
                                continue
                            check_mapping(h, ntasks, universe, pick)
                            outcomes["mapped"] += 1
    assert outcomes["mapped"] > 0
    print("done", flush=True)


if __name__ == "__main__":
    sweep(sys.argv[1])
