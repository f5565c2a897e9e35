"""MPIBIND=draw:PATH: the preload draws each node's mapping once, by the
node's task 0, into PATH with the host name before the extension; a
picture that cannot be made is one warning and changes nothing else.

Real processes with the variables a launcher gives its tasks (as in
test_preload.py), the real preload, a real topology file (dryrun: a GPU
node's file, as the docs show it).
"""
import os
import re
import socket
import subprocess

import pytest

PRELOAD = os.environ["MPIBIND_TEST_PRELOAD"]
LASSEN = os.path.join(os.environ["MPIBIND_TEST_TOPOLOGIES"], "coral-lassen.xml")
DROP = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "FLUX_", "PALS_", "MV2_",
        "MPI_LOCAL", "HYDRA_", "PRTE_", "MPIBIND", "OMP_", "GOMP_", "CUDA_",
        "ROCR_", "HIP_", "ZE_", "LD_PRELOAD")
PROBE = "import os; print(os.environ.get('MPIBIND_APPLIED'), sorted(os.sched_getaffinity(0)))"


def task(tmp, rank, size, mpibind, topofile=LASSEN):
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
    env.update(MPI_LOCALRANKID=str(rank), MPI_LOCALNRANKS=str(size),
               MPIBIND=mpibind, MPIBIND_CACHE_DIR=str(tmp / "cache"),
               LD_PRELOAD=PRELOAD)
    if topofile:
        env["MPIBIND_TOPOFILE"] = topofile
    return subprocess.run(["/usr/bin/python3", "-c", PROBE], env=env,
                          capture_output=True, text=True, timeout=60,
                          cwd=tmp)


def legend_tasks(svg_text):
    return re.findall(r">task +(\d+) nths", svg_text)


def test_one_picture_per_node(tmp_path):
    out = tmp_path / "pics"
    out.mkdir()
    for rank in range(4):
        r = task(tmp_path, rank, 4, f"dryrun,draw:{out}/map.svg")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0] == "1", r.stdout
    want = f"map-{socket.gethostname()}.svg"
    assert os.listdir(out) == [want]
    text = (out / want).read_text()
    assert legend_tasks(text) == ["0", "1", "2", "3"]
    assert "coral-lassen.xml" in text


def test_relative_path_with_a_dot_in_the_directory(tmp_path):
    sub = tmp_path / "a.b"
    sub.mkdir()
    r = task(tmp_path, 0, 2, "dryrun,draw:a.b/m.xml")
    assert r.returncode == 0, r.stderr
    assert os.listdir(sub) == [f"m-{socket.gethostname()}.xml"]


def test_live_node_binds_and_draws(tmp_path):
    """Without a topology file: the live node, bound as without draw."""
    r = task(tmp_path, 0, 1, f"draw:{tmp_path}/live.svg", topofile=None)
    assert r.returncode == 0, r.stderr
    applied, cpus = r.stdout.split(" ", 1)
    assert applied == "1"
    assert legend_tasks((tmp_path / f"live-{socket.gethostname()}.svg")
                        .read_text()) == ["0"]


@pytest.mark.parametrize("path,words", [
    ("/nonexistent-mpibind-dir/m.svg", ["cannot write the picture"]),
    ("{tmp}/m.jpg", ["no known format"]),
])
def test_draw_failure_is_a_warning(tmp_path, path, words):
    """The task is still bound and applied; one line, by task 0 only."""
    path = path.format(tmp=tmp_path)
    r0 = task(tmp_path, 0, 2, f"draw:{path}", topofile=None)
    r1 = task(tmp_path, 1, 2, f"draw:{path}", topofile=None)
    for r in (r0, r1):
        assert r.returncode == 0 and r.stdout.split()[0] == "1", r
    lines = r0.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: MPIBIND draw:"), lines
    for w in words:
        assert w in lines[0]
    assert r1.stderr == ""


def test_empty_draw_is_a_bad_value(tmp_path):
    r = task(tmp_path, 0, 1, "dryrun,draw:")
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "draw:" in lines[0] and "PATH" in lines[0], lines
    assert r.stdout.split()[0] == "0"
