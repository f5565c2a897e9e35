"""mpibind under a real mpirun: the seed's example as written, and the
mpi4py node helper (mpibind.mpi.node_mapping).

What each rank must get on this machine is derived here from the kernel's
description of the node (sysfs) and docs/algorithm.md's rules, independently of
the library.
"""

import ast
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import HERE, topo, report_line, xml_gpus
from mpibind_testutil import without_nics

MPIRUN = shutil.which("mpirun.openmpi") or shutil.which("mpirun")
LAUNCH_TIMEOUT = 120

needs_mpirun = pytest.mark.skipif(MPIRUN is None,
                                  reason="Open MPI's mpirun is not installed")


# ---- what docs/algorithm.md gives on this node ------------------------------------

def read_list(path):
    with open(path) as f:
        text = f.read().strip()
    out = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def split(n, k):
    """docs/algorithm.md's split(n, k)."""
    return [n // k + (1 if j < n % k else 0) for j in range(k)]


def runs(items, sizes):
    out, i = [], 0
    for size in sizes:
        out.append(items[i:i + size])
        i += size
    return out


def live_node(restrict):
    """This node's levels below the domain root, as lists of objects (each
    a sorted list of PU ids), restricted to the PUs in restrict and to the
    PUs this process may use.  Only for a node with a single NUMA domain
    holding CPUs (docs/algorithm.md step 4); None otherwise."""
    domains = [d for d in glob.glob("/sys/devices/system/node/node*/cpulist")
               if read_list(d)]
    if len(domains) > 1:
        return None
    allowed = os.sched_getaffinity(0) & restrict
    cpu = "/sys/devices/system/cpu/cpu%d/"

    def group(paths_of):
        objs = {}
        for pu in allowed:
            for key in paths_of(pu):
                objs.setdefault(key, set()).add(pu)
        # hwloc's logical order follows the first PU of each object.
        return sorted((sorted(o) for o in objs.values()), key=lambda o: o[0])

    cores = group(lambda pu: [frozenset(read_list(
        cpu % pu + "topology/thread_siblings_list"))])
    caches = []
    levels = set()
    for path in glob.glob(cpu % min(allowed) + "cache/index*"):
        with open(path + "/type") as f:
            if f.read().strip() == "Instruction":
                continue
        with open(path + "/level") as f:
            levels.add(int(f.read()))
    for level in sorted(levels, reverse=True):
        def keys(pu, level=level):
            out = []
            for path in glob.glob(cpu % pu + "cache/index*"):
                with open(path + "/level") as f:
                    lv = int(f.read())
                with open(path + "/type") as f:
                    kind = f.read().strip()
                if lv == level and kind != "Instruction":
                    out.append(frozenset(read_list(path + "/shared_cpu_list")))
            return out
        caches.append(group(keys))
    return [[sorted(allowed)]] + caches + [cores]


def expected_live_mapping(ntasks, restrict):
    """(nthreads, cpus) per task by docs/algorithm.md's hierarchical
    distribution over one domain (no GPU on this node, defaults: nthreads
    0, smt 0)."""
    levels = live_node(restrict)
    if levels is None:
        return None
    cores = levels[-1]
    hw = len(cores[0])
    k = ntasks
    count = len(cores)             # s = 0 < hw: count the cores
    t = count // k if count >= k else 1
    workers = t * k
    chosen = next(i for i, objs in enumerate(levels)
                  if len(objs) >= workers or i == len(levels) - 1)
    objs = levels[chosen]
    m = len(objs)
    if chosen == len(levels) - 1:
        p = next((i for i in range(1, hw + 1) if m * i >= workers), hw)
    else:
        p = 1
    contrib = [o[:p] for o in objs]
    cpus = []
    if m >= k:
        for run in runs(contrib, split(m, k)):
            cpus.append(sorted(c for o in run for c in o))
    else:
        for obj, g in zip(contrib, split(k, m)):
            c = len(obj)
            if c >= g:
                cpus.extend(sorted(r) for r in runs(obj, split(c, g)))
            else:
                for pu, share in zip(obj, split(g, c)):
                    cpus.extend([[pu]] * share)
    return [t] * k, cpus


def launch(nranks, args, outdir, timeout=LAUNCH_TIMEOUT):
    """Runs args on nranks ranks; returns each rank's stdout.  Open MPI
    writes each rank's output to its own file (--output-filename): on the
    shared stdout, lines of different ranks can interleave mid-line."""
    cmd = ["timeout", "-k", "10", str(timeout), MPIRUN,
           "--allow-run-as-root", "--oversubscribe", "-np", str(nranks),
           "--output-filename", str(outdir),
           "-x", "PYTHONPATH", "-x", "MPIBIND_LIBRARY",
           "-x", "PYTHONDONTWRITEBYTECODE"] + args
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=timeout + 30, cwd=HERE)
    assert proc.returncode == 0, (
        "%s exited %d\nstdout:\n%s\nstderr:\n%s"
        % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
    outputs = {}
    for path in glob.glob(os.path.join(str(outdir), "*", "rank.*", "stdout")):
        rank = int(os.path.basename(os.path.dirname(path))[len("rank."):])
        with open(path) as f:
            outputs[rank] = f.read()
    assert sorted(outputs) == list(range(nranks)), (outputs, proc.stdout)
    return outputs


# ---- the seed example -------------------------------------------------------

def test_seed_example_is_the_seed_verbatim():
    """examples/mpibind_example.py is the code block of the seed user
    document (docs/python-seed.md), to the character: "runs as written" means that code."""
    with open(os.path.join(HERE, "..", "..", "docs", "python-seed.md")) as f:
        readme = f.read()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    with open(os.path.join(HERE, "..", "..", "examples",
                           "mpibind_example.py")) as f:
        assert f.read() == block


@needs_mpirun
def test_seed_example_as_written_under_mpirun(tmp_path):
    """The seed document's Python example, copied verbatim into
    examples/mpibind_example.py, with 4 ranks on this node: each rank ends
    bound to its task's CPUs of the mapping of 4 tasks restricted to PUs
    0-7."""
    seed = os.path.join(HERE, "..", "..", "examples", "mpibind_example.py")
    with open(seed) as f:
        assert "restrict_ids='0-7'" in f.read()
    outs = launch(4, [sys.executable, seed], tmp_path / "out")
    after = {}
    for rank, out in outs.items():
        lines = out.splitlines()
        assert lines[0].startswith("%d before affinity " % rank), out
        assert lines[1].startswith("%d after affinity " % rank), out
        after[rank] = ast.literal_eval(lines[1].split(" affinity ")[1])
    report = [without_nics(line) for line in outs[0].splitlines()[2:] if line]

    expected = expected_live_mapping(4, set(range(8)))
    if expected is None:
        # Several NUMA domains: the derivation above covers one domain
        # only; check the binding against the module's mapping instead.
        import mpibind
        with mpibind.MpibindHandle(ntasks=4, restrict_ids="0-7") as h:
            h.mpibind()
            expected = (h.nthreads, [h.get_cpus_ptask(t) for t in range(4)])
    nthreads, cpus = expected
    for rank in range(4):
        assert after[rank] == set(cpus[rank]), (rank, outs)
    assert report == [report_line(t, nthreads[t], [], cpus[t])
                      for t in range(4)], outs


# ---- the mpi4py node helper ---------------------------------------------------

HELPER = r'''
import dataclasses, json, os, sys
from mpi4py import MPI
import mpibind
from mpibind.mpi import node_mapping

world = MPI.COMM_WORLD
kwargs = json.loads(sys.argv[1])
if kwargs.pop("split_by_parity", False):
    comm = world.Split(world.Get_rank() % 2, world.Get_rank())
else:
    comm = world
try:
    share = node_mapping(comm=comm, **kwargs)
    result = {"share": dataclasses.asdict(share)}
except (ValueError, mpibind.MpibindError) as err:
    result = {"error": type(err).__name__, "message": str(err)}
result["rank"] = world.Get_rank()
result["affinity"] = sorted(os.sched_getaffinity(0))
result["environ"] = {k: os.environ.get(k) for k in
                     ("OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND")}
print("RESULT " + json.dumps(result), flush=True)
'''


def run_helper(tmp_path, nranks, **kwargs):
    script = tmp_path / "helper.py"
    script.write_text(HELPER)
    outdir = tmp_path / ("out%d" % len(list(tmp_path.iterdir())))
    outs = launch(nranks, [sys.executable, str(script), json.dumps(kwargs)],
                  outdir)
    results = []
    for rank in range(nranks):
        lines = [line for line in outs[rank].splitlines()
                 if line.startswith("RESULT ")]
        assert len(lines) == 1, outs[rank]
        results.append(json.loads(lines[0][len("RESULT "):]))
        assert results[-1]["rank"] == rank
    return results


@needs_mpirun
def test_node_helper_applies_each_ranks_share(tmp_path):
    results = run_helper(tmp_path, 2, apply=True)
    expected = expected_live_mapping(2, set(range(os.cpu_count() or 1)))
    for r in results:
        share = r["share"]
        assert share["local_rank"] == r["rank"]
        assert share["local_size"] == 2
        assert r["affinity"] == share["cpus"]
        # an interpreter is not told OMP_PLACES/OMP_PROC_BIND unless
        # place_threads=True (its OpenMP runtime loads late: GNU libgomp
        # would pin the whole process to its first place)
        assert r["environ"] == {"OMP_NUM_THREADS": str(share["nthreads"]),
                                "OMP_PLACES": None,
                                "OMP_PROC_BIND": None}
        assert share["gpus"] == []
        if expected is not None:
            nthreads, cpus = expected
            assert share["cpus"] == cpus[r["rank"]]
            assert share["nthreads"] == nthreads[r["rank"]]


@needs_mpirun
def test_node_helper_on_a_topology_file(tmp_path):
    """Lassen, 2 ranks: each rank's share is its row of the worked example
    (ntasks 2), the GPUs as PCI bus ids read from the XML file."""
    path = topo("coral-lassen.xml")
    xml = xml_gpus(path)
    results = run_helper(tmp_path, 2, topology_file=path, gpu_ids="pci")
    rows = [(list(range(8, 85, 4)), ["0", "1"]),
            (list(range(96, 173, 4)), ["2", "3"])]
    for r, (cpus, visible) in zip(results, rows):
        share = r["share"]
        assert share["cpus"] == cpus
        assert share["nthreads"] == 20
        assert share["gpus"] == [xml[i]["busid"] for i in visible]
        assert share["env"]["CUDA_VISIBLE_DEVICES"] == ",".join(visible)
        assert without_nics(share["report"].rstrip("\n")) == report_line(
            r["rank"], 20, share["gpus"], cpus)
        # Not applied: the environment is untouched.
        assert r["environ"]["OMP_NUM_THREADS"] is None


@needs_mpirun
def test_node_helper_uses_the_given_communicator(tmp_path):
    """4 ranks split into two communicators of 2: each maps 2 tasks."""
    path = topo("eas-tioga.xml")
    results = run_helper(tmp_path, 4, topology_file=path,
                         split_by_parity=True)
    rows = [list(range(0, 32)) + list(range(64, 96)),
            list(range(32, 64)) + list(range(96, 128))]
    for r in results:
        share = r["share"]
        assert share["local_size"] == 2
        assert share["local_rank"] == r["rank"] // 2
        assert share["cpus"] == rows[share["local_rank"]]
        assert share["nthreads"] == 64


@needs_mpirun
def test_node_helper_errors_reach_every_rank(tmp_path):
    results = run_helper(tmp_path, 2, smt=99)
    for r in results:
        assert r["error"] == "ValueError" and "99" in r["message"], r
    results = run_helper(tmp_path, 2, ntasks=5)
    for r in results:
        assert r["error"] == "ValueError" and "5" in r["message"], r
    # A file of another machine cannot be applied here.
    results = run_helper(tmp_path, 2, apply=True,
                         topology_file=topo("coral-lassen.xml"))
    for r in results:
        assert r["error"] == "MpibindError", r
        assert r["environ"]["OMP_NUM_THREADS"] is None


def test_import_works_without_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import mpibind, mpibind.mpi\n"
            "try:\n"
            "    mpibind.mpi.node_mapping()\n"
            "except ImportError:\n"
            "    print('no mpi4py: ImportError')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no mpi4py: ImportError"
