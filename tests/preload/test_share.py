"""The helper's --share mode: one task's share of the node's mapping, for
a program that binds a task itself (the Python module's workers), through
the same node mapping file and lock as the preload's tasks.

What they pin down (auto/README.md, "The helper"; docs/interfaces.md):
- the lines printed: cpus, nthreads, mems, then the variables to export by
  the preload's rules (the user's OMP_NUM_THREADS kept, CUDA_DEVICE_ORDER,
  no OMP_PLACES/OMP_PROC_BIND for an interpreter unless place_threads),
  the worked examples' values on Lassen's XML;
- one node mapping file whatever asks first: a rank after --share reads
  it, and --share after a rank reads the rank's (an edited record is what
  it prints);
- exit 1 with one line for a bad value, 3 for no share (MPIBIND=off,
  unknown job CPUs), 2 for bad arguments;
- on this machine, task 0 of 1 gets every CPU the caller may use.
"""
import os
import subprocess
import sys

import pytest

from mpibind_testutil import TRACE_LINE_RE as TRACE_RE
from mpibind_testutil import parse_list

HELPER = os.environ["MPIBIND_TEST_HELPER"]
PRELOAD = os.environ["MPIBIND_TEST_PRELOAD"]
TOPOS = os.environ["MPIBIND_TEST_TOPOLOGIES"]
LASSEN = os.path.join(TOPOS, "coral-lassen.xml")
DROP = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "FLUX_", "PALS_", "MV2_",
        "MPI_LOCAL", "HYDRA_", "PRTE_", "MPIBIND", "OMP_", "GOMP_", "CUDA_",
        "ROCR_", "HIP_", "ZE_", "LD_PRELOAD")

# docs/algorithm.md, coral-lassen.xml, 4 tasks: (nthreads, cpus, gpus)
LASSEN_4 = [(10, set(range(8, 48, 4)), "0"), (10, set(range(48, 88, 4)), "1"),
            (10, set(range(96, 136, 4)), "2"), (10, set(range(136, 176, 4)), "3")]


def clean_env(tmp, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
    e["MPIBIND_CACHE_DIR"] = str(tmp / "cache")
    e.update(extra)
    return e


def share(tmp, task, ntasks, *args, **env):
    p = subprocess.run([HELPER, "--share", "--task", str(task), "--ntasks",
                        str(ntasks), *args], env=clean_env(tmp, **env),
                       capture_output=True, text=True, timeout=60)
    lines = p.stdout.splitlines()
    out = dict(l.split("=", 1) for l in lines if "=" in l)
    return p, out, [l.split("=", 1)[0] for l in lines]


def lassen(**extra):
    return {"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": LASSEN, **extra}


def map_files(tmp):
    return sorted(f for f in os.listdir(tmp / "cache")
                  if f.startswith("map-") and f.endswith(".txt"))


def test_share_lines_on_lassen(tmp_path):
    for task, (nths, cpus, gpus) in enumerate(LASSEN_4):
        p, out, names = share(tmp_path, task, 4, **lassen())
        assert p.returncode == 0 and p.stderr == "", p
        assert names[:3] == ["cpus", "nthreads", "mems"], p.stdout
        assert parse_list(out["cpus"]) == cpus and out["nthreads"] == str(nths)
        assert out["OMP_NUM_THREADS"] == str(nths), p.stdout
        assert out["CUDA_VISIBLE_DEVICES"] == gpus, p.stdout
        assert out["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID", p.stdout
        assert out["OMP_PLACES"] and out["OMP_PROC_BIND"], p.stdout
    assert len(map_files(tmp_path)) == 1   # one mapping for the four


def test_share_follows_the_export_rules(tmp_path):
    # an interpreter gets no thread placement unless place_threads
    p, out, _ = share(tmp_path, 1, 4, "--program", "/usr/bin/python3", **lassen())
    assert p.returncode == 0 and "OMP_PLACES" not in out and \
        "OMP_PROC_BIND" not in out, p.stdout
    p, out, _ = share(tmp_path, 1, 4, "--program", "/usr/bin/python3",
                      **lassen(MPIBIND="dryrun,place_threads"))
    assert "OMP_PLACES" in out and "OMP_PROC_BIND" in out, p.stdout
    # the caller's own values stay: OMP_NUM_THREADS is an input, kept
    p, out, _ = share(tmp_path, 1, 4, OMP_NUM_THREADS="3", **lassen())
    assert p.returncode == 0 and out["nthreads"] == "3", p.stdout
    assert "OMP_NUM_THREADS" not in out, p.stdout
    # the words that turn a variable off
    p, out, _ = share(tmp_path, 1, 4, **lassen(MPIBIND="dryrun,visible_devices"))
    assert "CUDA_VISIBLE_DEVICES" not in out and "CUDA_DEVICE_ORDER" not in out


def run_rank(tmp, rank, size, env):
    e = clean_env(tmp, MPI_LOCALRANKID=str(rank), MPI_LOCALNRANKS=str(size),
                  MPIBIND_TRACE=str(tmp / "trace"), LD_PRELOAD=PRELOAD, **env)
    p = subprocess.run([sys.executable, "-c",
                        "import os; print(os.environ.get('OMP_NUM_THREADS'))"],
                       env=e, capture_output=True, text=True, timeout=60)
    last = open(tmp / "trace").read().splitlines()[-1]
    return p, TRACE_RE.match(last)


def test_one_node_mapping_file_with_the_ranks(tmp_path):
    """--share made the node's mapping: a rank reads it.  A rank made it:
    --share reads the rank's file (its record, edited, is what it
    prints)."""
    p, out, _ = share(tmp_path, 0, 4, **lassen())
    assert p.returncode == 0
    (name,) = map_files(tmp_path)
    r, t = run_rank(tmp_path, 2, 4, lassen())
    assert r.returncode == 0 and r.stdout.strip() == "10" and t[4] == "file", r
    assert parse_list(t[6]) == LASSEN_4[2][1]
    assert map_files(tmp_path) == [name]
    # the other way round, on another set of inputs
    r, t = run_rank(tmp_path, 0, 2, lassen())
    assert r.returncode == 0 and len(map_files(tmp_path)) == 2
    (other,) = set(map_files(tmp_path)) - {name}
    path = tmp_path / "cache" / other
    data = path.read_bytes()
    assert data.count(b"OMP_NUM_THREADS=20\n") == 2, data
    path.write_bytes(data.replace(b"OMP_NUM_THREADS=20\n", b"OMP_NUM_THREADS=77\n"))
    p, out, _ = share(tmp_path, 1, 2, **lassen())
    assert p.returncode == 0 and out["OMP_NUM_THREADS"] == "77", p.stdout
    assert len(map_files(tmp_path)) == 2


def test_live_task_gets_the_callers_cpus(tmp_path):
    p, out, _ = share(tmp_path, 0, 1)
    assert p.returncode == 0, p.stderr
    assert parse_list(out["cpus"]) == set(os.sched_getaffinity(0)), p.stdout


@pytest.mark.parametrize("env,status,words", [
    ({"MPIBIND": "off"}, 3, ["off"]),
    ({"MPIBIND": "v,bogus"}, 1, ["MPIBIND", "bogus"]),
    ({"MPIBIND_RESTRICT": "abc"}, 1, ["MPIBIND_RESTRICT", "abc"]),
    ({"MPIBIND_TOPOFILE": "/nonexistent/t.xml"}, 1, ["/nonexistent/t.xml"]),
    ({"SLURM_LOCALID": "0", "SLURM_JOB_CPUS_PER_NODE": "1",
      "SLURM_CPU_BIND_TYPE": "none"}, 3, ["unknown"]),
])
def test_share_problems(tmp_path, env, status, words):
    if "SLURM_LOCALID" in env and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs (a job with fewer than the node's)")
    args = ["--source", "SLURM_LOCALID"] if "SLURM_LOCALID" in env else []
    p, out, _ = share(tmp_path, 0, 1, *args, **env)
    assert p.returncode == status and p.stdout == "", p
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: "), p
    for w in words:
        assert w in lines[0], p


@pytest.mark.parametrize("args", [
    ["--share"], ["--share", "--task", "2", "--ntasks", "2"],
    ["--share", "--task", "0"], ["--share", "--task", "x", "--ntasks", "2"],
    ["--share", "--task", "0", "--ntasks", "2", "--draw", "x.svg"],
    ["--share", "--map", "--task", "0", "--ntasks", "2"],
    ["--share", "--task", "0", "--ntasks", "2", "--gpu", "NOPE=0"],
])
def test_bad_arguments(tmp_path, args):
    p = subprocess.run([HELPER, *args], env=clean_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stdout == "" and "usage" in p.stderr, p


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))
