"""`pip install .` into a virtual environment, from a copy of the source
tree (a clone), exactly as the README says:

    python3 -m venv --system-site-packages v
    v/bin/pip install --no-build-isolation .

Then: `import mpibind` loads the libmpibind installed with it (not one of
the build tree, not a system one), MPIBIND_LIBRARY still overrides it, the
seed's mpi4py example runs under mpirun with the venv's interpreter, and
the command and the preload installed in the venv work.

One venv for the module (built once: it takes a while), shared by the
tests.
"""
import os
import shutil
import subprocess
import sys

import pytest

SRC = os.environ["MPIBIND_SOURCE_ROOT"]
VERSION = os.environ["MPIBIND_VERSION"]
LASSEN = os.path.join(SRC, "tests", "data", "topologies", "coral-lassen.xml")

# What would let the venv's module find a library other than its own.
_DROP = ("MPIBIND", "PYTHONPATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "OMPI_",
         "PMIX_", "SLURM_", "OMP_", "PIP_")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    env.update(extra)
    return env


def sh(args, cwd, timeout=120, env=None):
    return subprocess.run(args, cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    top = tmp_path_factory.mktemp("pip")
    clone = top / "mpibind"
    # A clone: the tracked tree, without build directories or caches.
    shutil.copytree(SRC, clone, ignore=shutil.ignore_patterns(
        "build*", ".git", "__pycache__", "*.pyc", ".mesonpy*"))
    r = sh(["/usr/bin/python3", "-m", "venv", "--system-site-packages",
            "v"], cwd=top)
    assert r.returncode == 0, r.stderr
    r = sh([str(top / "v" / "bin" / "pip"), "install",
            "--no-build-isolation", "."], cwd=clone, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return top


def py(venv, code, **env):
    return sh([str(venv / "v" / "bin" / "python"), "-c", code], cwd=venv,
              env=clean_env(**env))


def test_import_finds_its_own_library(venv):
    r = py(venv, "import mpibind, os; print(mpibind.__file__); "
                 "print(mpibind.LIBRARY_PATH); print(mpibind.__version__)")
    assert r.returncode == 0, r.stderr
    module, library, version = r.stdout.split()
    package = os.path.dirname(module)
    assert package.startswith(str(venv / "v") + os.sep)
    assert os.path.dirname(library) == package
    assert os.path.isfile(library) and version == VERSION


def test_mapping_from_the_venv(venv):
    r = py(venv, "import mpibind; h = mpibind.MpibindHandle(ntasks=4, "
                 f"topology_file={LASSEN!r}); h.mpibind(); "
                 "print(h.mapping_snprint(), end='')")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        "mpibind: task  0 nths 10 gpus 0 nics mlx5_0 cpus 8,12,")


def test_mpibind_library_still_overrides(venv):
    r = py(venv, "import mpibind", MPIBIND_LIBRARY="/nonexistent/libx.so")
    assert r.returncode != 0
    assert "MPIBIND_LIBRARY='/nonexistent/libx.so'" in r.stderr


def test_seed_example_under_mpirun(venv):
    mpirun = shutil.which("mpirun.openmpi") or shutil.which("mpirun")
    if not mpirun:
        pytest.skip("Open MPI's mpirun is not installed")
    example = venv / "mpibind" / "examples" / "mpibind_example.py"
    # each rank's output in its own file: on the shared stdout, lines of
    # different ranks can interleave mid-line
    outdir = venv / "seed-out"
    r = sh([mpirun, "-np", "2", "--oversubscribe", "--bind-to", "none",
            "--output-filename", str(outdir),
            str(venv / "v" / "bin" / "python"), str(example)], cwd=venv,
           timeout=300, env=clean_env(OMPI_ALLOW_RUN_AS_ROOT="1",
                                      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    outs = {}
    for path in outdir.glob("*/rank.*/stdout"):
        outs[int(path.parent.name[len("rank."):])] = path.read_text().splitlines()
    assert sorted(outs) == [0, 1], (outs, r.stdout)
    for rank in (0, 1):
        assert any(l.startswith(f"{rank} after affinity") for l in outs[rank]), outs
    assert sum(l.startswith("mpibind: task ")
               for out in outs.values() for l in out) == 2, outs


def test_command_and_preload_in_the_venv(venv):
    exe = venv / "v" / "bin" / "mpibind"
    r = sh([str(exe), "--version"], cwd=venv)
    assert r.returncode == 0 and r.stdout == f"mpibind {VERSION}\n", r
    r = sh([str(exe), "-n", "2", "--topology", LASSEN], cwd=venv)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r
    preload = (venv / "v" / "lib" /
               f"python{sys.version_info[0]}.{sys.version_info[1]}" /
               "site-packages" / "mpibind" / "libmpibind-preload.so")
    r = sh(["/bin/true"], cwd=venv, env=clean_env(
        LD_PRELOAD=str(preload), MPI_LOCALRANKID="0", MPI_LOCALNRANKS="2",
        MPIBIND="v,dryrun", MPIBIND_TOPOFILE=LASSEN,
        MPIBIND_CACHE_DIR=str(venv / "cache")))
    assert r.returncode == 0, r.stderr
    assert "mpibind: task  1 nths 20 gpus 2,3" in r.stderr, r.stderr
