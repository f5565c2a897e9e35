"""Preview mode of the `mpibind` command: the worked examples of
docs/algorithm.md through the real command, the GPU ID kinds, --env, and the
live node.

Every expected value is built from docs/algorithm.md's tables and rules (or, for
GPU PCI bus ids and UUIDs, read from the XML file here), never from the
command's own output.
"""
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import (check_error, hwlist, parse_list, parse_report, report,
                      run, topo)
from mpibind_testutil import without_nics, worked_examples

# --- The reference nodes, as docs/algorithm.md describes them ----------------

# cts1-quartz-smt1.xml: 2 sockets x 18 cores, SMT-1, PUs 0-35, no GPU.
QUARTZ = "cts1-quartz-smt1.xml"

# coral-lassen.xml: 2 sockets x 20 cores, SMT-4, PUs 8-87 and 96-175; the
# first PU of each core is every 4th PU.  GPUs 0,1 on socket 0, 2,3 on 1.
LASSEN = "coral-lassen.xml"
L0 = list(range(8, 88, 4))     # first PU of the 20 cores of socket 0
L1 = list(range(96, 176, 4))   # ... of socket 1

# eas-tioga.xml: 4 NUMA domains x 16 cores, SMT-2: domain d has PUs
# 16d..16d+15 and their siblings +64.  GPUs per domain, by vendor number.
TIOGA = "eas-tioga.xml"
TIOGA_GPUS = [["4", "5"], ["2", "3"], ["6", "7"], ["0", "1"]]


def T(d):
    return list(range(16 * d, 16 * d + 16))


def smt2(cores):
    """Each core's first two PUs (lassen: a core's PUs are c..c+3)."""
    return [p for c in cores for p in (c, c + 1)]


EXAMPLES = worked_examples()


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_worked_example(ex):
    """docs/algorithm.md's worked examples (tests/data/worked-examples.tsv)
    through the real command."""
    res = run(ex.options() + ["--topology", topo(ex.topology)])
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert without_nics(res.stdout) == report(ex.rows())


def test_lassen_ntasks4_exact_text():
    """The acceptance example of the command, spelled out: the four lines of the
    ntasks-4 row of the Lassen table, cpus every 4th PU."""
    res = run(["-n", "4", "--topology", topo(LASSEN)])
    assert res.returncode == 0, res.stderr
    starts = [8, 48, 96, 136]
    expected = "".join(
        "mpibind: task %2d nths 10 gpus %d nics mlx5_%d cpus %s\n"
        % (t, t, t, ",".join(str(c) for c in range(s, s + 40, 4)))
        for t, s in enumerate(starts))
    assert res.stdout == expected
    assert res.stdout.splitlines()[0] == \
        "mpibind: task  0 nths 10 gpus 0 nics mlx5_0 cpus " \
        "8,12,16,20,24,28,32,36,40,44"


def test_same_node_two_exports():
    """coral-lassen-hwloc1.xml is the same machine as coral-lassen.xml
    (hwloc 1.x export, with GPU memory as NUMA nodes): same mapping."""
    for n in ("1", "2", "4", "8"):
        a = run(["-n", n, "--topology", topo(LASSEN)])
        b = run(["-n", n, "--topology", topo("coral-lassen-hwloc1.xml")])
        assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
        assert a.stdout == b.stdout


# --- GPU ID kinds ------------------------------------------------------------

def gpu_ids_from_xml(path, prefix, uuid_info):
    """{visible index: (name, pci bus id, uuid)} for the OS devices named
    prefix<N>, read from the XML file directly."""
    root = ET.parse(path).getroot()
    parent = {c: p for p in root.iter() for c in p}
    out = {}
    for obj in root.iter("object"):
        name = obj.get("name", "")
        if obj.get("type") != "OSDev" or not re.fullmatch(prefix + r"\d+",
                                                           name):
            continue
        pci = parent[obj]
        assert pci.get("type") == "PCIDev"
        uuid = ""
        for info in obj.findall("info"):
            if info.get("name") == uuid_info:
                uuid = info.get("value")
        out[name[len(prefix):]] = (name, pci.get("pci_busid"), uuid)
    return out


@pytest.mark.parametrize("kind,field", [("index", None), ("name", 0),
                                        ("pci", 1), ("uuid", 2)])
def test_tioga_gpu_ids(kind, field):
    ids = gpu_ids_from_xml(topo(TIOGA), "rsmi", "AMDUUID")
    assert sorted(ids) == [str(i) for i in range(8)]

    def conv(g):
        return g if field is None else ids[g][field]
    res = run(["-n", "4", "--gpu-ids", kind, "--topology", topo(TIOGA)])
    assert res.returncode == 0, res.stderr
    rows = [(16, [conv(g) for g in TIOGA_GPUS[d]], T(d)) for d in range(4)]
    assert without_nics(res.stdout) == report(rows)
    if kind == "name":
        assert "gpus rsmi4,rsmi5 " in res.stdout.splitlines()[0]


@pytest.mark.parametrize("kind,field", [("name", 0), ("pci", 1),
                                        ("uuid", 2)])
def test_lassen_gpu_ids(kind, field):
    """Lassen exports each GPU twice (cuda<N> and nvml<N>): the NVML device
    is the one kept."""
    ids = gpu_ids_from_xml(topo(LASSEN), "nvml", "NVIDIAUUID")
    assert sorted(ids) == ["0", "1", "2", "3"]
    res = run(["-n", "2", "--gpu-ids", kind, "--topology", topo(LASSEN)])
    assert res.returncode == 0, res.stderr
    rows = [(20, [ids["0"][field], ids["1"][field]], L0),
            (20, [ids["2"][field], ids["3"][field]], L1)]
    assert without_nics(res.stdout) == report(rows)


# --- --env ------------------------------------------------------------------

_ENV_LINE = re.compile(r"^mpibind: task +(\d+) ([A-Z_]+)=(.*)$")


def env_of(options, ntasks):
    """Runs with --env; checks that the report part is the output without
    --env; returns {task: {name: value}}."""
    plain = run(options)
    res = run(options + ["--env"])
    assert plain.returncode == 0 and res.returncode == 0, res.stderr
    assert res.stdout.startswith(plain.stdout)
    env = {t: {} for t in range(ntasks)}
    for line in res.stdout[len(plain.stdout):].splitlines():
        m = _ENV_LINE.match(line)
        assert m, f"not a variable line: {line!r}"
        t = int(m.group(1))
        assert m.group(2) not in env[t], f"{m.group(2)} twice for task {t}"
        env[t][m.group(2)] = m.group(3)
    return env


def test_env_tioga():
    env = env_of(["-n", "4", "--topology", topo(TIOGA)], 4)
    for d in range(4):
        assert env[d] == {"OMP_NUM_THREADS": "16", "OMP_PLACES": "threads",
                          "OMP_PROC_BIND": "spread",
                          "ROCR_VISIBLE_DEVICES": ",".join(TIOGA_GPUS[d])}


def test_env_tioga_visible_devices_are_indexes_whatever_the_report_kind():
    env = env_of(["-n", "8", "--gpu-ids", "pci", "--topology", topo(TIOGA)],
                 8)
    for t in range(8):
        assert env[t]["ROCR_VISIBLE_DEVICES"] == TIOGA_GPUS[t // 2][t % 2]
        assert env[t]["OMP_NUM_THREADS"] == "8"


def test_env_lassen():
    env = env_of(["-n", "4", "--topology", topo(LASSEN)], 4)
    for t in range(4):
        assert env[t] == {"OMP_NUM_THREADS": "10", "OMP_PLACES": "threads",
                          "OMP_PROC_BIND": "spread",
                          "CUDA_VISIBLE_DEVICES": str(t),
                          "MPIBIND_NICS": "mlx5_%d" % t}


def test_env_lassen_shared_gpus():
    env = env_of(["-n", "3", "--nthreads", "1", "--greedy", "0",
                  "--gpu-optim", "0", "--topology", topo(LASSEN)], 3)
    assert [env[t]["CUDA_VISIBLE_DEVICES"] for t in range(3)] == \
        ["0", "1", "2,3"]
    assert [env[t]["OMP_NUM_THREADS"] for t in range(3)] == ["1"] * 3


def test_env_quartz_has_no_visible_devices():
    env = env_of(["-n", "3", "--topology", topo(QUARTZ)], 3)
    for t, n in enumerate(("9", "9", "18")):
        assert env[t] == {"OMP_NUM_THREADS": n, "OMP_PLACES": "threads",
                          "OMP_PROC_BIND": "spread", "MPIBIND_NICS": "hfi1_0"}


# --- verbose, help, version --------------------------------------------------

@pytest.mark.parametrize("topofile,ngpus", [(QUARTZ, 0), (LASSEN, 4),
                                            (TIOGA, 8)])
def test_verbose_gpu_count(topofile, ngpus):
    plain = run(["-n", "2", "--topology", topo(topofile)])
    res = run(["-n", "2", "-v", "--topology", topo(topofile)])
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"mpibind: {ngpus} GPUs on this node\n" + plain.stdout


def test_help_and_version():
    for opt in ("-h", "--help"):
        res = run([opt])
        assert res.returncode == 0 and res.stderr == ""
        assert res.stdout.startswith("Usage: mpibind")
        for word in ("--ntasks", "--smt", "--greedy", "--gpu-optim",
                     "--nthreads", "--restrict", "--restrict-type",
                     "--topology", "--gpu-ids", "--env", "--dryrun",
                     "--strict", "-- PROGRAM"):
            assert word in res.stdout, word
    res = run(["--version"])
    assert res.returncode == 0
    assert re.fullmatch(r"mpibind \d+\.\d+\.\d+\n", res.stdout)


# --- the live node -----------------------------------------------------------

def hwloc_calc(*args):
    out = subprocess.run(["hwloc-calc"] + list(args), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return out.strip()


def live():
    """This node as hwloc-calc (not the library) sees it."""
    pus = parse_list(hwloc_calc("--physical-output", "--intersect", "pu",
                                "all"))
    return {"pus": pus,
            "cores": int(hwloc_calc("--number-of", "core", "all")),
            "numas": int(hwloc_calc("--number-of", "numa", "all"))}


def split(n, k):
    return [n // k + (1 if j < n % k else 0) for j in range(k)]


@pytest.mark.parametrize("ntasks", [1, 2, 3])
def test_live_node(ntasks):
    node = live()
    assert os.sched_getaffinity(0) <= node["pus"]
    res = run(["-n", str(ntasks)])
    assert res.returncode == 0, res.stderr
    rows = parse_report(res.stdout)
    assert len(rows) == ntasks
    for nths, gpus, cpus in rows:
        assert cpus and cpus <= node["pus"]
        assert nths >= 1
    if ntasks <= node["cores"]:
        for i in range(ntasks):
            for j in range(i + 1, ntasks):
                assert not rows[i][2] & rows[j][2], "tasks share CPUs"
    if node["numas"] == 1 and node["cores"] == len(node["pus"]) \
            and ntasks <= node["cores"]:
        # One domain, one PU per core (this test machine): the tasks split
        # the cores in order, split(cores, ntasks), one thread per core.
        pus = sorted(node["pus"])
        sizes = split(len(pus), ntasks)
        start = 0
        for t, size in enumerate(sizes):
            assert rows[t][2] == set(pus[start:start + size])
            assert rows[t][0] == len(pus) // ntasks
            start += size
    if ntasks == 2:
        # The CPUs partition the allowed CPUs when there is one domain and
        # no SMT; in general, they cover every core.
        union = rows[0][2] | rows[1][2]
        cores = parse_list(hwloc_calc("--intersect", "core", "all"))
        assert len(cores) == node["cores"]
        for core in cores:  # logical indexes: unique across sockets
            core_pus = parse_list(hwloc_calc("--physical-output",
                                             "--intersect", "pu",
                                             f"core:{core}"))
            assert core_pus & union, f"core L#{core} unused"


def test_nics_report_and_variables():
    """The report names each task's NICs on a node that has them; --env
    lists MPIBIND_NICS, and with --nics the transports' variables."""
    res = run(["-n", "4", "--env", "--topology", topo(LASSEN)])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert [l for l in lines if "MPIBIND_NICS" in l] == [
        "mpibind: task  %d MPIBIND_NICS=mlx5_%d" % (t, t) for t in range(4)]
    assert not any("UCX_NET_DEVICES" in l for l in lines)
    res = run(["-n", "4", "--env", "--nics", "--topology", topo(LASSEN)])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "mpibind: task  2 UCX_NET_DEVICES=mlx5_2:1" in lines
    assert "mpibind: task  3 NCCL_IB_HCA==mlx5_3" in lines
    assert not any("FI_CXI_DEVICE_NAME" in l for l in lines)
    res = run(["-n", "2", "--topology", topo("eas-tioga.xml")])
    assert " nics " not in res.stdout
