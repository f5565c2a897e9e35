"""Tests of libmpibind-preload.so that need no MPI launcher: real processes
started with the variables a launcher gives its tasks, the real preload,
real hwloc topologies.

What they pin down (docs/interfaces.md "Automatic binding"):
- task detection for every launcher family, the MPI launcher's variables
  before Slurm's, Slurm's `2(x3),1` tasks-per-node syntax;
- contradicting launcher variables and bad tuning: one line naming the
  variable and value (node-local task 0 only, for tuning), no binding,
  nothing exported; `strict` fails; MPIBIND=off and non-ranks: no trace;
- the exported variables and the MPIBIND words that suppress them;
- the per-node topology cache: one discovery, safety against foreign
  files and directories, stale files replaced; the MPIBIND_TRACE format;
- the node's mapping computed once: each other task reads its own record
  only, keyed by every input, unsafe files refused.

Expected mappings come from docs/algorithm.md's worked examples (through
MPIBIND_TOPOFILE + dryrun) or from the machine itself (one task gets every
CPU the process may use), never from the program's own output.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

PRELOAD = os.environ["MPIBIND_TEST_PRELOAD"]
TOPOS = os.environ["MPIBIND_TEST_TOPOLOGIES"]
LASSEN = os.path.join(TOPOS, "coral-lassen.xml")
TIOGA = os.path.join(TOPOS, "eas-tioga.xml")

# Inherited launcher or tuning variables would change what the preload sees.
DROP_PREFIXES = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "FLUX_", "PALS_", "MV2_",
                 "MPI_LOCAL", "HYDRA_", "PRTE_", "MPIBIND", "OMP_", "GOMP_",
                 "CUDA_", "ROCR_", "HIP_", "ZE_", "LD_PRELOAD")

TRACE_RE = re.compile(r"^host=(\S+) pid=(\d+) task=(\d+)/(\d+) "
                      r"topology=(discovered|cache|file|none) bound=([01]) "
                      r"cpus=(\S*)$")

# The probe: what a program sees at start (the preload's constructor ran).
PROBE = ("import json, os; print(json.dumps({'aff': sorted(os.sched_getaffinity(0)), "
         "'env': dict(os.environ)}))")

BASE_AFF = sorted(os.sched_getaffinity(0))


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(DROP_PREFIXES)}


# hwloc list syntax -> set of int: the pytest suites' shared parser
# (tests/pyhelpers, on PYTHONPATH).
from mpibind_testutil import parse_list  # noqa: E402,F401


def stepped(first, last, step):
    return set(range(first, last + 1, step))


class Run:
    def __init__(self, proc, trace_path):
        self.rc = proc.returncode
        self.stderr = proc.stderr
        out = proc.stdout.strip().splitlines()
        self.probe = json.loads(out[-1]) if out else None
        self.trace = []
        if trace_path and os.path.exists(trace_path):
            with open(trace_path) as f:
                self.trace = [TRACE_RE.match(l.rstrip("\n")) for l in f]

    @property
    def env(self):
        return self.probe["env"]

    def lines(self):
        return [l for l in self.stderr.splitlines() if l.strip()]

    def __repr__(self):
        return f"rc={self.rc}\nstderr:\n{self.stderr}\nprobe env: " + str(
            {k: v for k, v in (self.env if self.probe else {}).items()
             if k.startswith(("OMP_", "MPIBIND", "CUDA", "ROCR"))})


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def run(tmp, env=None, preload=True, cache=None, argv=None):
    e = clean_env()
    e["MPIBIND_CACHE_DIR"] = str(cache or (tmp / "cache"))
    trace = tmp / "trace"
    if trace.exists():
        trace.unlink()
    e["MPIBIND_TRACE"] = str(trace)
    e.update(env or {})
    if preload:
        e["LD_PRELOAD"] = PRELOAD
    p = subprocess.run(argv or [sys.executable, "-c", PROBE], env=e,
                       capture_output=True, text=True, timeout=60)
    return Run(p, str(trace))


def task_env(rank, size, family="MPICH"):
    names = {"OMPI": ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
             "MPICH": ("MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
             "MV2": ("MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_SIZE"),
             "PALS": ("PALS_LOCAL_RANKID", "PALS_LOCAL_SIZE")}
    if family == "SLURM":
        return {"SLURM_LOCALID": str(rank), "SLURM_NODEID": "0",
                "SLURM_STEP_TASKS_PER_NODE": str(size)}
    if family == "FLUX":
        return {"FLUX_TASK_LOCAL_ID": str(rank), "FLUX_JOB_NNODES": "1",
                "FLUX_JOB_SIZE": str(size)}
    r, s = names[family]
    return {r: str(rank), s: str(size)}


def assert_untouched(r, ctx=""):
    """Unbound, nothing exported (MPIBIND_APPLIED aside)."""
    assert r.rc == 0, f"{ctx}\n{r}"
    assert r.probe["aff"] == BASE_AFF, f"{ctx}\n{r}"
    for v in ("OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND", "CUDA_VISIBLE_DEVICES",
              "ROCR_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        assert v not in r.env, f"{ctx}: {v} exported\n{r}"


# docs/algorithm.md, coral-lassen.xml: ntasks -> per task (nthreads, cpus, gpus)
LASSEN_ROWS = {
    1: [(160, set(range(8, 88)) | set(range(96, 176)), "0,1,2,3")],
    2: [(20, stepped(8, 84, 4), "0,1"), (20, stepped(96, 172, 4), "2,3")],
    4: [(10, stepped(8, 44, 4), "0"), (10, stepped(48, 84, 4), "1"),
        (10, stepped(96, 132, 4), "2"), (10, stepped(136, 172, 4), "3")],
    8: [(5, stepped(f, f + 16, 4), str(g)) for f, g in
        [(8, 0), (28, 0), (48, 1), (68, 1), (96, 2), (116, 2), (136, 3),
         (156, 3)]],
}
# docs/algorithm.md, eas-tioga.xml, ntasks 4
TIOGA_4 = [(16, set(range(0, 16)), "4,5"), (16, set(range(16, 32)), "2,3"),
           (16, set(range(32, 48)), "6,7"), (16, set(range(48, 64)), "0,1")]


def check_lassen(r, rank, size, ctx=""):
    nths, cpus, gpus = LASSEN_ROWS[size][rank]
    assert r.rc == 0, f"{ctx}\n{r}"
    assert r.env.get("OMP_NUM_THREADS") == str(nths), f"{ctx}\n{r}"
    assert r.env.get("CUDA_VISIBLE_DEVICES") == gpus, f"{ctx}\n{r}"
    assert r.env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID", f"{ctx}\n{r}"
    assert r.env.get("MPIBIND_APPLIED") == "1", f"{ctx}\n{r}"
    assert r.probe["aff"] == BASE_AFF, f"dryrun must not bind: {ctx}\n{r}"
    assert len(r.trace) == 1 and r.trace[0], f"{ctx}: trace {r.trace}"
    t = r.trace[0]
    assert (int(t[3]), int(t[4]), t[5], t[6]) == (rank, size, "file", "0"), ctx
    assert parse_list(t[7]) == cpus, f"{ctx}: cpus {t[7]}"


def lassen_env(extra=None):
    e = {"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": LASSEN}
    e.update(extra or {})
    return e


# ---- task detection ---------------------------------------------------

@pytest.mark.parametrize("family", ["OMPI", "MPICH", "MV2", "PALS", "FLUX", "SLURM"])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_launcher_families(tmp, family, size):
    for rank in range(size):
        r = run(tmp, {**task_env(rank, size, family), **lassen_env()})
        check_lassen(r, rank, size, f"{family} task {rank}/{size}")


@pytest.mark.parametrize("spec,nodeid,count", [
    ("2(x3),4,1", "0", 2), ("2(x3),4,1", "2", 2), ("2(x3),4,1", "3", 4),
    ("2(x3),4,1", "4", 1), ("4", "0", 4), ("1,2(x2)", "2", 2)])
def test_slurm_tasks_per_node(tmp, spec, nodeid, count):
    for rank in range(count):
        r = run(tmp, {"SLURM_LOCALID": str(rank), "SLURM_NODEID": nodeid,
                      "SLURM_STEP_TASKS_PER_NODE": spec, **lassen_env()})
        check_lassen(r, rank, count, f"{spec} node {nodeid} task {rank}")


def test_mpi_launcher_before_slurm(tmp):
    """Under mpiexec inside a Slurm step every rank sees SLURM_LOCALID=0."""
    env = {"SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_STEP_TASKS_PER_NODE": "1",
           **task_env(3, 4, "MPICH"), **lassen_env()}
    check_lassen(run(tmp, env), 3, 4)
    env = {"SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_STEP_TASKS_PER_NODE": "1",
           **task_env(1, 2, "OMPI"), **lassen_env()}
    check_lassen(run(tmp, env), 1, 2)


def test_slurm_localid_alone_is_no_task(tmp):
    """A batch script's shell has SLURM_LOCALID but no step layout."""
    r = run(tmp, {"SLURM_LOCALID": "0", "SLURM_NODEID": "0"})
    assert_untouched(r)
    assert "MPIBIND_APPLIED" not in r.env and r.lines() == [] and r.trace == []


@pytest.mark.parametrize("env", [
    {"PALS_LOCAL_RANKID": "1"},  # PALS versions that export no local size
    {"FLUX_TASK_LOCAL_ID": "1", "FLUX_JOB_NNODES": "2", "FLUX_JOB_SIZE": "4"},
])
def test_rank_without_count_waits_for_mpi_init(tmp, env):
    """A task number without a node-local count: nothing before MPI_Init
    (the preload then takes both from the node-local communicator)."""
    r = run(tmp, env)
    assert_untouched(r)
    assert "MPIBIND_APPLIED" not in r.env and r.lines() == [] and r.trace == [], r


CONTRADICTIONS = [
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"},
     ["OMPI_COMM_WORLD_LOCAL_RANK=3", "OMPI_COMM_WORLD_LOCAL_SIZE=2"]),
    ({"MPI_LOCALRANKID": "x", "MPI_LOCALNRANKS": "2"}, ["MPI_LOCALRANKID", "'x'"]),
    ({"MPI_LOCALRANKID": "-1", "MPI_LOCALNRANKS": "2"}, ["MPI_LOCALRANKID", "'-1'"]),
    ({"MPI_LOCALRANKID": "0", "MPI_LOCALNRANKS": "0"}, ["MPI_LOCALNRANKS", "'0'"]),
    ({"MV2_COMM_WORLD_LOCAL_RANK": "0"}, ["MV2_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_SIZE"]),
    ({"SLURM_LOCALID": "3", "SLURM_NODEID": "1", "SLURM_STEP_TASKS_PER_NODE": "2(x2),3"},
     ["SLURM_LOCALID=3", "2(x2),3"]),
    ({"SLURM_LOCALID": "0", "SLURM_NODEID": "5", "SLURM_STEP_TASKS_PER_NODE": "2(x2),3"},
     ["SLURM_NODEID=5", "2(x2),3"]),
    ({"SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_STEP_TASKS_PER_NODE": "2(x"},
     ["SLURM_STEP_TASKS_PER_NODE", "'2(x'"]),
]


@pytest.mark.parametrize("env,words", CONTRADICTIONS)
def test_contradicting_launcher_variables(tmp, env, words):
    r = run(tmp, env)
    assert_untouched(r, str(env))
    lines = r.lines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: "), r
    for w in words:
        assert w in lines[0], f"{w!r} not named\n{r}"
    s = run(tmp, {**env, "MPIBIND": "strict"})
    assert s.rc == 1 and len(s.lines()) == 1, s


# ---- tuning -----------------------------------------------------------

BAD_TUNING = [
    ({"MPIBIND": "v,bogus"}, ["MPIBIND", "bogus"]),
    ({"MPIBIND": "greedy:7"}, ["MPIBIND", "greedy:7"]),
    ({"MPIBIND": "gpu:2"}, ["MPIBIND", "gpu:2"]),
    ({"MPIBIND": "smt:x"}, ["MPIBIND", "smt:x"]),
    ({"MPIBIND": "smt:9"}, ["MPIBIND", "smt:9"]),
    ({"MPIBIND_RESTRICT": "abc"}, ["MPIBIND_RESTRICT", "abc"]),
    ({"MPIBIND_RESTRICT": ""}, ["MPIBIND_RESTRICT", "empty"]),
    ({"MPIBIND_RESTRICT": "100000"}, ["MPIBIND_RESTRICT", "100000"]),
    ({"MPIBIND_RESTRICT": "0", "MPIBIND_RESTRICT_TYPE": "disk"}, ["MPIBIND_RESTRICT_TYPE", "disk"]),
    ({"MPIBIND_TOPOFILE": "/nonexistent/topo.xml"}, ["MPIBIND_TOPOFILE", "/nonexistent/topo.xml"]),
    ({"MPIBIND_TOPOFILE": ""}, ["MPIBIND_TOPOFILE", "empty"]),
    ({"MPIBIND_TOPOFILE": LASSEN}, ["MPIBIND_TOPOFILE", LASSEN]),  # foreign, no dryrun
    ({"OMP_NUM_THREADS": "many"}, ["OMP_NUM_THREADS", "many"]),
]


@pytest.mark.parametrize("env,words", BAD_TUNING)
def test_bad_tuning(tmp, env, words):
    # task 0 prints exactly one line naming the variable and the value
    r = run(tmp, {**task_env(0, 2), **env})
    assert r.rc == 0 and r.probe["aff"] == BASE_AFF, r
    for v in ("OMP_PLACES", "OMP_PROC_BIND", "CUDA_VISIBLE_DEVICES"):
        assert v not in r.env, r
    assert r.env.get("OMP_NUM_THREADS") == env.get("OMP_NUM_THREADS"), r
    lines = r.lines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: "), r
    for w in words:
        assert w in lines[0], f"{w!r} not named\n{r}"
    assert r.env.get("MPIBIND_APPLIED") == "0", r
    # the node's other tasks stay quiet
    q = run(tmp, {**task_env(1, 2), **env})
    assert q.rc == 0 and q.probe["aff"] == BASE_AFF and q.lines() == [], q
    # strict fails the task
    s = run(tmp, {**task_env(0, 2), **env,
                  "MPIBIND": ",".join(filter(None, [env.get("MPIBIND"), "strict"]))})
    assert s.rc == 1 and len(s.lines()) == 1 and "strict" in s.lines()[0], s


def test_bad_topofile_contents(tmp):
    for name, content in [("empty.xml", b""), ("text.xml", b"not xml at all\n"),
                          ("trunc.xml", open(LASSEN, "rb").read()[:3000])]:
        path = tmp / name
        path.write_bytes(content)
        r = run(tmp, {**task_env(0, 1), "MPIBIND": "dryrun", "MPIBIND_TOPOFILE": str(path)})
        assert_untouched(r, name)
        assert len(r.lines()) == 1 and str(path) in r.lines()[0], r


def test_child_processes_do_not_repeat(tmp):
    """A task that is a shell script: its commands inherit the preload."""
    r = run(tmp, {**task_env(0, 2), "MPIBIND": "bogus"},
            argv=["/bin/sh", "-c", "/bin/true; /bin/true; /usr/bin/env >/dev/null"])
    assert r.rc == 0 and len(r.lines()) == 1, r


def test_off_leaves_no_trace(tmp):
    cache = tmp / "never"
    base = run(tmp, task_env(0, 2), preload=False, cache=cache)
    for mpibind in ["off", "v,off,bogus", "OFF"]:
        r = run(tmp, {**task_env(0, 2), "MPIBIND": mpibind, "MPIBIND_RESTRICT": "abc"},
                cache=cache)
        b = run(tmp, {**task_env(0, 2), "MPIBIND": mpibind, "MPIBIND_RESTRICT": "abc"},
                preload=False, cache=cache)
        assert r.rc == 0 and r.lines() == [] and r.trace == [], r
        assert r.probe["aff"] == BASE_AFF, r
        env = {k: v for k, v in r.env.items() if k != "LD_PRELOAD"}
        benv = {k: v for k, v in b.env.items() if k != "LD_PRELOAD"}
        assert env == benv, r
        assert not cache.exists()
    assert base.rc == 0


def test_not_a_rank_is_left_alone(tmp):
    cache = tmp / "never"
    r = run(tmp, {"MPIBIND": "v"}, cache=cache)
    b = run(tmp, {"MPIBIND": "v"}, preload=False, cache=cache)
    env = {k: v for k, v in r.env.items() if k != "LD_PRELOAD"}
    benv = {k: v for k, v in b.env.items() if k != "LD_PRELOAD"}
    assert r.rc == 0 and r.lines() == [] and r.trace == [] and env == benv, r
    assert r.probe["aff"] == BASE_AFF and not cache.exists()


def test_already_applied(tmp):
    """Skipped when MPIBIND_APPLIED_TASK names this very task (its key:
    the same launcher and tuning variables); see test_hardening.py for a
    mark that names another task."""
    first = run(tmp, {**task_env(1, 2), "MPIBIND": "v"})
    mark = first.env["MPIBIND_APPLIED_TASK"]
    for v in ("1", "0"):
        r = run(tmp, {**task_env(1, 2), "MPIBIND_APPLIED": v, "MPIBIND": "v",
                      "MPIBIND_APPLIED_TASK": mark})
        assert_untouched(r)
        assert r.env["MPIBIND_APPLIED"] == v and r.lines() == [] and r.trace == [], r


def test_live_one_task_gets_everything(tmp):
    """docs/algorithm.md: one task maps to every PU of the node (the live
    topology covers what the process may use)."""
    # the probe is Python: place_threads asks for OMP_PLACES/OMP_PROC_BIND
    r = run(tmp, {**task_env(0, 1), "MPIBIND": "on,place_threads"})
    t = r.trace[0]
    assert r.rc == 0 and t and t[6] == "1", r
    assert parse_list(t[7]) == set(BASE_AFF), r
    assert r.probe["aff"] == BASE_AFF
    assert r.env["OMP_NUM_THREADS"] == str(len(BASE_AFF)), r
    assert r.env["OMP_PLACES"] == "threads" and r.env["OMP_PROC_BIND"] == "spread", r
    assert r.env["MPIBIND_APPLIED"] == "1" and "CUDA_DEVICE_ORDER" not in r.env, r


def test_live_tasks_bound_and_disjoint(tmp):
    """As many tasks as CPUs: each bound to what the trace says, one CPU
    each, together every CPU."""
    n = len(BASE_AFF)
    seen = set()
    for rank in range(n):
        r = run(tmp, task_env(rank, n, "OMPI"))
        t = r.trace[0]
        assert r.rc == 0 and t and t[6] == "1", r
        cpus = parse_list(t[7])
        assert set(r.probe["aff"]) == cpus and len(cpus) == 1, r
        assert not (cpus & seen)
        seen |= cpus
        assert r.env["OMP_NUM_THREADS"] == "1", r
    assert seen == set(BASE_AFF)


def test_words_and_user_values(tmp):
    r = run(tmp, {**task_env(1, 4), **lassen_env(), "MPIBIND": "dryrun,omp_places,visible_devices,place_threads"})
    assert "OMP_PLACES" not in r.env and "CUDA_VISIBLE_DEVICES" not in r.env, r
    assert "CUDA_DEVICE_ORDER" not in r.env and r.env["OMP_PROC_BIND"] == "spread", r
    r = run(tmp, {**task_env(1, 4), **lassen_env(), "MPIBIND": "dryrun,omp_proc_bind,place_threads"})
    assert "OMP_PROC_BIND" not in r.env and r.env["OMP_PLACES"] == "threads", r
    # the user's values stay
    r = run(tmp, {**task_env(1, 4), **lassen_env(), "OMP_PLACES": "cores",
                  "OMP_PROC_BIND": "close", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
    assert (r.env["OMP_PLACES"], r.env["OMP_PROC_BIND"], r.env["CUDA_DEVICE_ORDER"]) == \
        ("cores", "close", "FASTEST_FIRST"), r
    r = run(tmp, {**task_env(1, 4), **lassen_env(), "OMP_NUM_THREADS": "3"})
    assert r.env["OMP_NUM_THREADS"] == "3", r
    # AMD GPUs: ROCR_VISIBLE_DEVICES, no CUDA_DEVICE_ORDER
    for rank, (nths, cpus, gpus) in enumerate(TIOGA_4):
        r = run(tmp, {**task_env(rank, 4), "MPIBIND": "dryrun", "MPIBIND_TOPOFILE": TIOGA})
        assert r.env["ROCR_VISIBLE_DEVICES"] == gpus and r.env["OMP_NUM_THREADS"] == str(nths), r
        assert "CUDA_DEVICE_ORDER" not in r.env and parse_list(r.trace[0][7]) == cpus, r


def test_verbose_and_help_from_task_0_only(tmp):
    r = run(tmp, {**task_env(0, 4), **lassen_env({"MPIBIND": "dryrun,v,help"})})
    lines = r.lines()
    assert "mpibind: 4 GPUs on this node" in lines, r
    report = [l for l in lines if l.startswith("mpibind: task ")]
    assert len(report) == 4, r
    assert report[1].startswith(
        "mpibind: task  1 nths 10 gpus 1 nics mlx5_1 cpus 48,52,"), r
    assert any("MPIBIND_RESTRICT" in l for l in lines), "help names the variables"
    check_lassen(r, 0, 4)
    q = run(tmp, {**task_env(2, 4), **lassen_env({"MPIBIND": "dryrun,v,help"})})
    assert q.lines() == [], q
    check_lassen(q, 2, 4)


# ---- the per-node topology cache ---------------------------------------

# The nearest NIC of each task (docs/algorithm.md): Lassen's socket 0 holds
# GPUs 0, 1 and mlx5_0, mlx5_1; socket 1 GPUs 2, 3 and mlx5_2, mlx5_3.
LASSEN_NICS = {1: ["mlx5_0,mlx5_1,mlx5_2,mlx5_3"],
               2: ["mlx5_0,mlx5_1", "mlx5_2,mlx5_3"],
               4: ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"],
               8: ["mlx5_0", "mlx5_1", "mlx5_0", "mlx5_1",
                   "mlx5_2", "mlx5_3", "mlx5_2", "mlx5_3"]}


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_each_task_told_its_nics(tmp, size):
    """dryrun on Lassen's XML: every task exports MPIBIND_NICS; with the
    word `nics`, also UCX_NET_DEVICES (port 1, the active one) and
    NCCL_IB_HCA (exact names), and nothing names a device the node lacks
    (no FI_CXI_DEVICE_NAME: no CXI device)."""
    for rank in range(size):
        r = run(tmp, {**task_env(rank, size), **lassen_env()})
        nics = LASSEN_NICS[size][rank]
        assert r.env.get("MPIBIND_NICS") == nics, r
        assert "UCX_NET_DEVICES" not in r.env and "NCCL_IB_HCA" not in r.env, r
        r = run(tmp, {**task_env(rank, size),
                      **lassen_env({"MPIBIND": "dryrun,nics"})})
        check_lassen(r, rank, size)
        assert r.env.get("MPIBIND_NICS") == nics, r
        assert r.env.get("UCX_NET_DEVICES") == ",".join(
            n + ":1" for n in nics.split(",")), r
        assert r.env.get("NCCL_IB_HCA") == "=" + nics, r
        assert "FI_CXI_DEVICE_NAME" not in r.env, r


def test_inherited_hip_visible_devices_indexes_rocr_devices(tmp):
    """G06: an AMD allocation given as HIP_VISIBLE_DEVICES=4,5 (Tioga,
    dryrun, 2 tasks: task 0 spans NUMA nodes 0 and 1, where GCDs 4 and 5
    are, task 1 the others; each task one of them, "No GPU left idle").
    ROCm applies ROCR_VISIBLE_DEVICES first and HIP indexes what it
    exposes: each task's HIP_VISIBLE_DEVICES must name its ROCr devices
    0..k-1 (it kept 4,5 and the task saw no GPU)."""
    want = [("4", "0"), ("5", "0")]
    for rank in range(2):
        r = run(tmp, {**task_env(rank, 2, "OMPI"), "MPIBIND": "dryrun",
                      "MPIBIND_TOPOFILE": TIOGA, "HIP_VISIBLE_DEVICES": "4,5"})
        assert r.rc == 0, r
        assert (r.env.get("ROCR_VISIBLE_DEVICES"),
                r.env.get("HIP_VISIBLE_DEVICES")) == want[rank], r


def topology_of(r):
    return r.trace[0][5]


def test_cache_one_discovery_then_reuse(tmp):
    cache = tmp / "c"
    r = run(tmp, task_env(0, 2), cache=cache)
    assert topology_of(r) == "discovered", r
    st = os.stat(cache, follow_symlinks=False)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    files = sorted(f for f in os.listdir(cache) if f.startswith("topo-"))
    # the topology and the lock file of its key (readers take no lock)
    assert len(files) == 2 and re.fullmatch(r"topo-[0-9a-f]{16}\.lock", files[0]), files
    assert files[1] == files[0][:-5] + ".xml", files
    assert stat.S_IMODE(os.stat(cache / files[1]).st_mode) == 0o600
    # and the node's mapping, with its lock
    maps = sorted(f for f in os.listdir(cache) if f.startswith("map-"))
    assert len(maps) == 2 and re.fullmatch(r"map-[0-9a-f]{16}\.txt", maps[1]), maps
    q = run(tmp, task_env(1, 2), cache=cache)
    assert topology_of(q) == "cache", q
    # the same mapping either way
    d = run(tmp, task_env(1, 2), cache=tmp / "other")
    assert topology_of(d) == "discovered" and d.trace[0][7] == q.trace[0][7]


def test_cache_concurrent_tasks_discover_once(tmp):
    n = 8
    cache = tmp / "c"
    trace = tmp / "trace8"
    procs = []
    for rank in range(n):
        e = clean_env()
        e.update(task_env(rank, n), MPIBIND_CACHE_DIR=str(cache),
                 MPIBIND_TRACE=str(trace), LD_PRELOAD=PRELOAD)
        procs.append(subprocess.Popen([sys.executable, "-c", "pass"], env=e))
    assert all(p.wait(timeout=60) == 0 for p in procs)
    lines = [TRACE_RE.match(l.rstrip("\n")) for l in open(trace)]
    assert len(lines) == n and all(lines)
    assert sorted(int(m[3]) for m in lines) == list(range(n))
    assert sum(m[5] == "discovered" for m in lines) == 1, [m[0] for m in lines]


def only_file(cache):
    (name,) = [f for f in os.listdir(cache) if f.startswith("topo-") and f.endswith(".xml")]
    return cache / name


def test_cache_stale_or_tampered_files_are_replaced(tmp):
    cache = tmp / "c"
    run(tmp, task_env(0, 1), cache=cache)
    path = only_file(cache)
    good = path.read_bytes()
    header, _, xml = good.partition(b"end\n")
    variants = {
        # the very file, written before this boot began (its time says so)
        "other boot": good,
        "truncated": good[: len(header) + 200],
        "no xml": header + b"end\n",
        "other host inside": header + b"end\n" + re.sub(
            rb'name="HostName" value="[^"]*"', b'name="HostName" value="elsewhere"', xml),
        "garbage": b"\x00\x01garbage",
    }
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    for what, content in variants.items():
        path.write_bytes(content)
        os.chmod(path, 0o600)
        if what == "other boot":
            os.utime(path, (boot - 3600, boot - 3600))
        r = run(tmp, task_env(0, 1), cache=cache)
        assert topology_of(r) == "discovered", f"{what}\n{r}"
        assert r.trace[0][6] == "1" and parse_list(r.trace[0][7]) == set(BASE_AFF), what
        assert path.read_bytes().startswith(header + b"end\n<?xml"), f"{what}: not rewritten"
        assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "cache", what


def test_cache_unsafe_files_and_directories_are_refused(tmp):
    cache = tmp / "c"
    run(tmp, task_env(0, 1), cache=cache)
    path = only_file(cache)
    # a file others may write
    os.chmod(path, 0o666)
    assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "discovered"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # a symlink in place of the file
    target = tmp / "elsewhere.xml"
    shutil.copy(path, target)
    os.unlink(path)
    os.symlink(target, path)
    assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "discovered"
    assert not os.path.islink(path)
    # a directory others may write: not used at all
    os.chmod(cache, 0o777)
    before = sorted(os.listdir(cache))
    for _ in range(2):
        assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "discovered"
    assert sorted(os.listdir(cache)) == before
    os.chmod(cache, 0o700)
    # a symlink to the directory: not used
    link = tmp / "link"
    os.symlink(cache, link)
    assert topology_of(run(tmp, task_env(0, 1), cache=link)) == "discovered"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file of another user")
def test_cache_file_of_another_user_is_refused(tmp):
    cache = tmp / "c"
    run(tmp, task_env(0, 1), cache=cache)
    path = only_file(cache)
    os.chown(path, 65534, 65534)
    assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "discovered"
    assert os.stat(path).st_uid == os.geteuid()
    os.chown(cache, 65534, 65534)
    assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "discovered"
    assert topology_of(run(tmp, task_env(0, 1), cache=cache)) == "discovered"


def test_topofile_skips_discovery(tmp):
    cache = tmp / "never"
    r = run(tmp, {**task_env(0, 1), **lassen_env()}, cache=cache)
    assert topology_of(r) == "file", r
    # no topology cached or discovered (the node's mapping is kept)
    assert not [f for f in os.listdir(cache) if f.startswith("topo-")], r


# ---- the node's mapping, once per node ---------------------------------

def map_file(cache):
    (name,) = [f for f in os.listdir(cache) if f.startswith("map-") and f.endswith(".txt")]
    return cache / name


def map_records(data):
    """(body offset, [(start, end)] of every record) of a node mapping file."""
    body = data.index(b"nodemap-end\n") + len(b"nodemap-end\n")
    nrec = int(data[body:body + 16], 16)
    offs = [int(data[body + 17 * (i + 1):body + 17 * (i + 1) + 16], 16) for i in range(nrec + 1)]
    return [(body + offs[i], body + offs[i + 1]) for i in range(nrec)]


def test_node_mapping_each_task_reads_its_own_record(tmp):
    """The node's first task maps; the others take their share from the
    node's mapping file, reading only their own record: edited in place,
    task 1's record is what task 1 exports, and garbage in the other
    tasks' records does not disturb it."""
    cache = tmp / "c"
    check_lassen(run(tmp, {**task_env(0, 4), **lassen_env()}, cache=cache), 0, 4)
    path = map_file(cache)
    data = bytearray(path.read_bytes())
    recs = map_records(bytes(data))
    assert len(recs) == 6  # 4 tasks, the node's report, every task's GPUs
    a, b = recs[1]
    assert b"\nOMP_NUM_THREADS=10\n" in data[a:b] and b"nthreads=10\n" in data[a:b]
    data[a:b] = data[a:b].replace(b"OMP_NUM_THREADS=10", b"OMP_NUM_THREADS=77")
    for i in (0, 2, 3):
        x, y = recs[i]
        data[x:y] = b"x" * (y - x)
    path.write_bytes(bytes(data))
    r = run(tmp, {**task_env(1, 4), **lassen_env()}, cache=cache)
    assert r.env["OMP_NUM_THREADS"] == "77" and r.trace[0][5] == "file", r
    assert parse_list(r.trace[0][7]) == LASSEN_ROWS[4][1][1]
    # a damaged record: that task maps on its own (and rewrites the file)
    check_lassen(run(tmp, {**task_env(2, 4), **lassen_env()}, cache=cache), 2, 4)
    assert b"xxxx" not in map_file(cache).read_bytes()



def test_node_mapping_once_from_a_cold_node(tmp):
    """On a node without a topology file yet, the first task's mapping is
    keyed by the topology file it writes: the next task reads it instead of
    mapping again under another key."""
    cache = tmp / "c"
    first = run(tmp, task_env(0, 2), cache=cache)
    assert first.rc == 0 and first.trace[0][5] == "discovered", first
    second = run(tmp, task_env(1, 2), cache=cache)
    assert second.rc == 0 and second.trace[0][5] == "cache", second
    maps = [f for f in os.listdir(cache) if f.startswith("map-") and f.endswith(".txt")]
    assert len(maps) == 1, maps


def test_node_mapping_per_task_gpus_from_the_file(tmp):
    """Per-task GPU lists (srun --gpus-per-task) share one node mapping,
    keyed by the step's GPUs: each task takes the record of the mapping's
    task that has its GPUs, found in the file's GPU lines."""
    cache = tmp / "c"

    def env(rank, gpu):
        return {**task_env(rank, 4, "SLURM"), **lassen_env(),
                "SLURM_STEP_GPUS": "0,1,2,3", "SLURM_JOB_CPUS_PER_NODE": "100000",
                "CUDA_VISIBLE_DEVICES": gpu}

    r = run(tmp, env(0, "2"), cache=cache)
    nths, cpus, _ = LASSEN_ROWS[4][2]
    assert r.rc == 0 and r.env["CUDA_VISIBLE_DEVICES"] == "2", r
    assert parse_list(r.trace[0][7]) == cpus and r.env["OMP_NUM_THREADS"] == str(nths), r
    path = map_file(cache)
    data = bytearray(path.read_bytes())
    a, b = map_records(bytes(data))[3]
    data[a:b] = data[a:b].replace(b"OMP_NUM_THREADS=10", b"OMP_NUM_THREADS=77")
    path.write_bytes(bytes(data))
    r = run(tmp, env(1, "3"), cache=cache)
    assert r.rc == 0 and r.env["CUDA_VISIBLE_DEVICES"] == "3", r
    assert parse_list(r.trace[0][7]) == LASSEN_ROWS[4][3][1], r
    assert r.env["OMP_NUM_THREADS"] == "77", r   # task 3's record, from the file
    assert map_file(cache) == path                # one mapping for both lists

@pytest.mark.parametrize("junk", ["+4", " 4", "4 ", "4x", "0x4", "99999999999999999999"])
def test_slurm_gpus_on_node_is_a_decimal_count(tmp, junk):
    """Slurm 22.05 sets SLURM_STEP_GPUS per task: a task's one GPU of the
    node's four is then a share only because SLURM_GPUS_ON_NODE counts
    more.  That count is read by the project's one decimal rule: a value
    with a sign, blanks, other characters or beyond any count is no count,
    and the task's list is its allocation."""
    def env(on_node):
        return {**task_env(0, 4, "SLURM"), **lassen_env(),
                "SLURM_JOB_CPUS_PER_NODE": "100000", "SLURM_STEP_GPUS": "2",
                "CUDA_VISIBLE_DEVICES": "2", "SLURM_GPUS_ON_NODE": on_node}

    share = run(tmp, env("4"), cache=tmp / "share")
    assert share.rc == 0 and share.env["CUDA_VISIBLE_DEVICES"] == "2", share
    assert parse_list(share.trace[0][7]) == LASSEN_ROWS[4][2][1], share
    alone = run(tmp, env("1"), cache=tmp / "alone")   # no more GPUs than its own
    assert parse_list(alone.trace[0][7]) != LASSEN_ROWS[4][2][1], alone
    r = run(tmp, env(junk), cache=tmp / "junk")
    assert r.rc == 0 and r.trace[0][7] == alone.trace[0][7], r
    assert r.env.get("OMP_NUM_THREADS") == alone.env.get("OMP_NUM_THREADS"), r


def test_node_mapping_keyed_by_every_input(tmp):
    """Another tuning, task count, GPU allocation or topology file (even
    the same path, changed) is another mapping."""
    cache = tmp / "c"
    topo = tmp / "node.xml"
    shutil.copy(LASSEN, topo)
    env = {"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": str(topo)}
    runs = [{**task_env(1, 4), **env},
            {**task_env(1, 2), **env},
            {**task_env(1, 4), **env, "MPIBIND": "dryrun,smt:1"},
            {**task_env(1, 4), **env, "CUDA_VISIBLE_DEVICES": "0,1"},
            {**task_env(1, 4), **env, "MPIBIND_RESTRICT": "8-87"}]
    for n, e in enumerate(runs, 1):
        r = run(tmp, e, cache=cache)
        alone = run(tmp, e, cache=tmp / f"alone{n}")  # computed on its own
        assert (r.env["OMP_NUM_THREADS"], r.trace[0][7]) == \
            (alone.env["OMP_NUM_THREADS"], alone.trace[0][7]), (e, r)
        assert len([f for f in os.listdir(cache) if f.startswith("map-") and f.endswith(".txt")]) == n
    # the same file changed in place (times, size): a new mapping
    with open(topo, "a") as f:
        f.write("\n")
    r = run(tmp, runs[0], cache=cache)
    assert r.env["OMP_NUM_THREADS"] == "10"
    assert len([f for f in os.listdir(cache) if f.startswith("map-") and f.endswith(".txt")]) == 6


def test_node_mapping_unsafe_files_are_refused(tmp):
    cache = tmp / "c"
    e = {**task_env(1, 4), **lassen_env()}
    check_lassen(run(tmp, e, cache=cache), 1, 4)
    path = map_file(cache)
    good = path.read_bytes()
    bad = good.replace(b"OMP_NUM_THREADS=10", b"OMP_NUM_THREADS=77")
    # others may write it
    path.write_bytes(bad)
    os.chmod(path, 0o666)
    check_lassen(run(tmp, e, cache=cache), 1, 4)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # a symlink to a file with the right key
    target = tmp / "elsewhere"
    target.write_bytes(bad)
    os.chmod(target, 0o600)
    os.unlink(path)
    os.symlink(target, path)
    check_lassen(run(tmp, e, cache=cache), 1, 4)
    assert not os.path.islink(path)
    # a FIFO: no hang
    os.unlink(path)
    os.mkfifo(path, 0o600)
    check_lassen(run(tmp, e, cache=cache), 1, 4)
    assert path.is_file()


def test_node_mapping_report_from_the_file(tmp):
    """Task 0's verbose report is the node's, also when another task
    mapped the node first."""
    fresh = run(tmp, {**task_env(0, 4), **lassen_env({"MPIBIND": "dryrun,v"})},
                cache=tmp / "fresh")
    cache = tmp / "c"
    check_lassen(run(tmp, {**task_env(2, 4), **lassen_env({"MPIBIND": "dryrun,v"})},
                     cache=cache), 2, 4)
    r = run(tmp, {**task_env(0, 4), **lassen_env({"MPIBIND": "dryrun,v"})}, cache=cache)
    check_lassen(r, 0, 4)
    assert r.lines() == fresh.lines() and len(r.lines()) == 5, r


def test_trace_format(tmp):
    r = run(tmp, task_env(1, 2, "OMPI"))
    assert len(r.trace) == 1 and r.trace[0], r.trace
    m = r.trace[0]
    assert m[1] == os.uname().nodename and (m[3], m[4]) == ("1", "2")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))


# --- membind; bound=1 only when the kernel's mask is the task's CPUs ---------

# get_mempolicy(2) through the C library's syscall(): the policy the task's
# threads allocate with, and its NUMA nodes.
MEMPOLICY_PROBE = r"""
import ctypes, json, os, platform
nr = {"x86_64": 239, "aarch64": 236, "ppc64le": 260}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
mode = ctypes.c_int(-1)
words = 64
mask = (ctypes.c_ulong * words)()
rc = libc.syscall(nr, ctypes.byref(mode), mask, ctypes.c_ulong(words * 64), None, ctypes.c_ulong(0))
nodes = [w * 64 + b for w in range(words) for b in range(64) if mask[w] >> b & 1]
print(json.dumps({"aff": sorted(os.sched_getaffinity(0)), "env": dict(os.environ),
                  "rc": rc, "mode": mode.value, "nodes": nodes}))
"""
MPOL_DEFAULT, MPOL_BIND = 0, 2


def machine_numa_nodes():
    base = "/sys/devices/system/node"
    return {int(d[4:]) for d in os.listdir(base) if d.startswith("node") and d[4:].isdigit()}


def numa_of_cpu(cpu):
    d = f"/sys/devices/system/cpu/cpu{cpu}"
    return {int(n[4:]) for n in os.listdir(d) if n.startswith("node") and n[4:].isdigit()}


@pytest.mark.skipif(__import__("platform").machine() not in ("x86_64", "aarch64", "ppc64le"),
                    reason="get_mempolicy's syscall number is known for x86_64, aarch64, ppc64le")
def test_membind(tmp):
    """MPIBIND=membind binds each task's memory to the NUMA node(s) of its
    CPUs (MPOL_BIND, as srun --mem-bind=local), and says so in verbose
    mode; without it the policy stays the default."""
    argv = ["/usr/bin/python3", "-c", MEMPOLICY_PROBE]
    plain = run(tmp, task_env(0, 2), argv=argv)
    assert plain.rc == 0 and plain.probe["rc"] == 0, plain
    assert plain.probe["mode"] == MPOL_DEFAULT, plain
    for rank in (0, 1):
        r = run(tmp, {**task_env(rank, 2), "MPIBIND": "membind,v"}, argv=argv)
        assert r.rc == 0 and r.probe["rc"] == 0, r
        assert r.probe["mode"] == MPOL_BIND, r
        want = set().union(*(numa_of_cpu(c) for c in r.probe["aff"]))
        assert want and set(r.probe["nodes"]) == want, r
        assert set(r.probe["nodes"]) <= machine_numa_nodes(), r
        said = [l for l in r.stderr.splitlines() if "memory of task" in l]
        if rank == 0:
            assert len(said) == 1 and "NUMA node" in said[0], r
        else:
            assert said == [], r      # printed by the node's task 0 only



@pytest.mark.skipif(__import__("platform").machine() not in ("x86_64", "aarch64", "ppc64le"),
                    reason="get_mempolicy's syscall number is known for x86_64, aarch64, ppc64le")
def test_membind_from_the_node_mapping_record(tmp):
    """A task that reads its record of the node's mapping binds its memory
    to the NUMA nodes stored there, without a topology.  A record edited
    to name a node the machine lacks cannot be applied: it is discarded,
    the node mapped again and the file replaced (issue 19, G11), and the
    task binds its memory to its own nodes."""
    argv = ["/usr/bin/python3", "-c", MEMPOLICY_PROBE]
    cache = tmp / "c"
    env = {"MPIBIND": "membind"}
    first = run(tmp, {**task_env(0, 2), **env}, cache=cache, argv=argv)
    assert first.rc == 0 and first.probe["mode"] == MPOL_BIND, first
    path = map_file(cache)
    data = bytearray(path.read_bytes())
    a, b = map_records(bytes(data))[1]
    nodes = sorted(set().union(*(numa_of_cpu(c) for c in parse_list(
        re.search(rb"cpus=([^\n]*)\n", bytes(data[a:b])).group(1).decode()))))
    stored = ",".join(map(str, nodes)).encode()
    assert b"\nmems=" + stored + b"\n" in data[a:b], bytes(data[a:b])
    r = run(tmp, {**task_env(1, 2), **env}, cache=cache, argv=argv)
    assert r.rc == 0 and r.probe["mode"] == MPOL_BIND, r
    assert set(r.probe["nodes"]) == set(nodes), r
    absent = str(max(machine_numa_nodes()) + 1)
    gone = absent * len(stored) if len(absent) == 1 else None
    if gone is None:
        pytest.skip("node numbers too wide to edit the record in place")
    data[a:b] = data[a:b].replace(b"\nmems=" + stored + b"\n",
                                  b"\nmems=" + gone[:len(stored)].encode() + b"\n")
    path.write_bytes(bytes(data))
    r = run(tmp, {**task_env(1, 2), **env}, cache=cache, argv=argv)
    assert r.rc == 0 and r.probe["mode"] == MPOL_BIND and r.lines() == [], r
    assert set(r.probe["nodes"]) == set(nodes), r
    assert r.env.get("MPIBIND_APPLIED") == "1" and r.trace[0][6] == "1", r
    assert b"\nmems=" + stored + b"\n" in map_file(cache).read_bytes()


def refuse_set_mempolicy():
    """preexec_fn: the kernel refuses set_mempolicy(2) to the process and
    its children with EPERM, as a container's seccomp profile does without
    CAP_SYS_NICE (Docker's default)."""
    import ctypes
    import platform
    nr = {"x86_64": 238, "aarch64": 237, "ppc64le": 261}[platform.machine()]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                    ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]
    code = (Filter * 4)(Filter(0x20, 0, 0, 0),                 # ld syscall nr
                        Filter(0x15, 0, 1, nr),                # jeq set_mempolicy
                        Filter(0x06, 0, 0, 0x00050000 | 1),    # ret ERRNO(EPERM)
                        Filter(0x06, 0, 0, 0x7fff0000))        # ret ALLOW
    prog = Prog(4, code)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or \
            libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # NO_NEW_PRIVS, SECCOMP
        raise OSError(ctypes.get_errno(), "seccomp")


@pytest.mark.skipif(__import__("platform").machine() not in ("x86_64", "aarch64", "ppc64le"),
                    reason="get_mempolicy's syscall number is known for x86_64, aarch64, ppc64le")
@pytest.mark.skipif(len(BASE_AFF) < 2, reason="needs two CPUs (task 0 of two gets fewer than all)")
def test_membind_failure_leaves_the_task_unbound(tmp):
    """The kernel refuses the memory binding after the CPUs were bound
    (set_mempolicy refused, as in a container): the one line says the
    task runs unbound, and it does (its CPUs are given back), with
    nothing exported."""
    argv = ["/usr/bin/python3", "-c", MEMPOLICY_PROBE]
    e = clean_env()
    e.update(task_env(0, 2), MPIBIND="membind", MPIBIND_CACHE_DIR=str(tmp / "c"),
             MPIBIND_TRACE=str(tmp / "trace"), LD_PRELOAD=PRELOAD)
    p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=60,
                       preexec_fn=refuse_set_mempolicy)
    r = Run(p, str(tmp / "trace"))
    assert r.rc == 0 and r.probe["mode"] == MPOL_DEFAULT, r
    lines = [l for l in r.stderr.splitlines() if "mpibind" in l]
    assert len(lines) == 1 and "memory" in lines[0] and "running unbound" in lines[0], r
    assert "Operation not permitted" in lines[0], r
    assert r.probe["aff"] == BASE_AFF, r      # what the line says
    assert r.env.get("MPIBIND_APPLIED") == "0" and "OMP_NUM_THREADS" not in r.env, r
    assert r.trace[0][6] == "0", r

def test_bound_means_the_kernel_mask(tmp):
    """HWLOC_XMLFILE makes hwloc describe a file instead of the machine;
    a binding on such a topology is a silent no-op in hwloc.  bound=1 and
    MPIBIND_APPLIED=1 only after the kernel's mask was read back and equals
    the task's CPUs; otherwise one line and the task runs unbound."""
    if len(BASE_AFF) < 2:
        pytest.skip("needs two CPUs (one task of two must get fewer than all)")
    xml = tmp / "this-node.xml"
    p = subprocess.run(["lstopo-no-graphics", "--of", "xml", str(xml)], capture_output=True)
    if p.returncode != 0:
        pytest.skip("lstopo-no-graphics (hwloc-nox) is not installed")
    fresh = tmp / "fresh-cache"
    r = run(tmp, {**task_env(0, 2), "HWLOC_XMLFILE": str(xml)}, cache=fresh)
    t = r.trace[0]
    assert r.rc == 0 and t, r
    if r.probe["aff"] == BASE_AFF:          # hwloc bound nothing
        assert t[6] == "0", f"bound=1 although the mask is unchanged\n{r}"
        assert r.env.get("MPIBIND_APPLIED") != "1", r
        lines = [l for l in r.stderr.splitlines() if "mpibind" in l]
        assert len(lines) == 1 and "kernel reports" in lines[0], r
    else:                                   # it did bind: then it is true
        assert t[6] == "1" and parse_list(t[7]) == set(r.probe["aff"]), r


# --- the job's CPUs under Slurm (never bind outside them), from the step's
# variables ---------------------------------------------------------------

def slurm_step(rank, size, job_cpus, bind_type, bind_list):
    env = task_env(rank, size, "SLURM")
    env.update({"SLURM_JOB_CPUS_PER_NODE": job_cpus, "SLURM_CPU_BIND_TYPE": bind_type,
                "SLURM_CPU_BIND_LIST": bind_list})
    return env


@pytest.mark.skipif(len(BASE_AFF) < 2, reason="needs two CPUs")
def test_slurm_step_cpus(tmp):
    """A step that has some of the node's CPUs (SLURM_JOB_CPUS_PER_NODE below
    the node's count): the tasks map within the union of the masks srun
    binds them to; a job with every CPU of its nodes maps the node."""
    last = BASE_AFF[-1]
    mask = hex(1 << last)
    r = run(tmp, {**slurm_step(0, 1, "1", "mask_cpu:", mask), "MPIBIND": "v"})
    assert r.rc == 0 and r.probe["aff"] == [last], r
    assert r.trace[0][6] == "1" and parse_list(r.trace[0][7]) == {last}, r
    assert any(f"mapping within CPUs {last}" in l for l in r.stderr.splitlines()), r
    # map_cpu lists CPU numbers
    r = run(tmp, slurm_step(0, 1, "1", "map_cpu:", str(last)))
    assert r.probe["aff"] == [last], r
    # the job has the node (every node of it has at least this node's CPUs)
    r = run(tmp, slurm_step(0, 1, f"{len(BASE_AFF)}(x2)", "mask_cpu:", mask))
    assert r.probe["aff"] == BASE_AFF, r


@pytest.mark.skipif(len(BASE_AFF) < 2, reason="needs two CPUs")
def test_slurm_step_cpus_unknown(tmp):
    """Part of the node, and no task masks (--cpu-bind=none): the step's CPUs
    cannot be known, so the task keeps Slurm's binding and verbose mode
    says why; nothing is exported."""
    r = run(tmp, {**slurm_step(0, 1, "1", "none", ""), "MPIBIND": "v"})
    assert r.rc == 0 and r.probe["aff"] == BASE_AFF, r
    assert r.env.get("MPIBIND_APPLIED") == "0" and "OMP_NUM_THREADS" not in r.env, r
    lines = [l for l in r.stderr.splitlines() if "mpibind" in l]
    assert len(lines) == 1 and "unknown" in lines[0] and "keeping" in lines[0], r
    assert r.trace[0][6] == "0", r
    r = run(tmp, slurm_step(0, 1, "1", "none", ""))
    assert [l for l in r.stderr.splitlines() if "mpibind" in l] == [], r
    # a map_cpu entry is a decimal CPU number (the project's one rule):
    # signed, blank-padded or overflowing entries are not understood
    for entry in (f"+{BASE_AFF[-1]}", f" {BASE_AFF[-1]}", "9" * 20):
        r = run(tmp, {**slurm_step(0, 1, "1", "map_cpu:", entry), "MPIBIND": "v"})
        assert r.rc == 0 and r.probe["aff"] == BASE_AFF, (entry, r)
        lines = [l for l in r.stderr.splitlines() if "mpibind" in l]
        assert len(lines) == 1 and "unknown" in lines[0], (entry, r)
