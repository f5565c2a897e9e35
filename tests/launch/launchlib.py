"""Helpers of the launch tests: real launches of the probes under
mpirun.openmpi and mpiexec.mpich, parsing of their output, and the expected
mapping from the `mpibind` command's preview.

Shared with tests/slurm (import it with tests/launch on sys.path).

Configuration comes from the environment that meson gives the tests:
  MPIBIND_TEST_PRELOAD     libmpibind-preload.so (absolute)
  MPIBIND_TEST_CMD         the mpibind command (absolute)
  MPIBIND_TEST_PROBE_C_OPENMPI, MPIBIND_TEST_PROBE_C_MPICH
  MPIBIND_TEST_PROBE_F_<MPI>_<KIND>  Fortran probes, <MPI> OPENMPI|MPICH,
                           <KIND> MPIFH|USEMPI|F08 (empty: no Fortran compiler)
  MPIBIND_TEST_PROBE_PY    probe.py;  MPIBIND_TEST_SEED  the seed example
  MPIBIND_TEST_PYTHONPATH  where `import mpibind` finds the build's module
  MPIBIND_TEST_TOPOLOGIES  the directory of the topology files
"""

import json
import os
import re
import shutil
import subprocess
import sys

PYTHON = sys.executable  # the interpreter meson chose for the tests

# Variables that would change what a launch does; the tests start from an
# environment without them so that the caller's shell cannot leak in.
_SCRUB_PREFIXES = ("MPIBIND", "OMP_", "OMPI_", "PMIX_", "PMI_", "SLURM_",
                   "FLUX_", "PALS_", "MV2_", "MPI_LOCAL", "HYDRA_", "PRTE_")
_SCRUB_NAMES = ("LD_PRELOAD", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK", "CUDA_DEVICE_ORDER",
                "GOMP_CPU_AFFINITY")

LAUNCH_TIMEOUT = 60          # seconds, per launch (coreutils timeout)

REPORT_RE = re.compile(r"^mpibind: task\s*(\d+) nths\s*(\d+) gpus (\S*)(?: nics \S*)? cpus (\S*)\s*$")
ENV_RE = re.compile(r"^mpibind: task\s*(\d+) ([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
GPUS_LINE_RE = re.compile(r"^mpibind: (\d+) GPUs on this node\s*$")


def cfg(name, required=True):
    v = os.environ.get(name, "")
    if required and not v:
        raise RuntimeError(f"{name} is not set: run these tests through meson test")
    return v


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB_NAMES}
    # Open MPI as root (the CI runs as root).
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env


# hwloc/Linux list syntax ("0-3,8") -> set of ints: the pytest suites'
# shared parser (tests/pyhelpers, on PYTHONPATH).
from mpibind_testutil import parse_list  # noqa: E402,F401


class Task:
    def __init__(self, task, nthreads, gpus, cpus, line):
        self.task = task
        self.nthreads = nthreads
        self.gpus = gpus          # the report's GPU field: comma list of IDs
        self.cpus = cpus          # set of PU OS indexes
        self.line = line          # the report line itself
        self.env = {}             # the task's variables (preview --env)

    def __repr__(self):
        return f"Task({self.task}, nths={self.nthreads}, gpus={self.gpus!r}, cpus={sorted(self.cpus)})"


def preview(ntasks, *opts):
    """The mapping of `ntasks` tasks as the mpibind command previews it
    (`mpibind -n N [opts] --env`): a list of Task, by task number, each with
    its report line and its variables."""
    cmd = [cfg("MPIBIND_TEST_CMD"), "-n", str(ntasks), *map(str, opts), "--env"]
    p = subprocess.run(cmd, env=base_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{cmd}: exit {p.returncode}, stderr {p.stderr!r}"
    tasks = []
    for line in p.stdout.splitlines():
        m = REPORT_RE.match(line)
        if m:
            tasks.append(Task(int(m[1]), int(m[2]), m[3].strip(),
                              parse_list(m[4]), line.rstrip()))
    assert [t.task for t in tasks] == list(range(ntasks)), \
        f"{cmd}: expected report lines for tasks 0..{ntasks - 1}, got {p.stdout!r}"
    for line in p.stdout.splitlines():
        m = ENV_RE.match(line)
        if m:
            tasks[int(m[1])].env[m[2]] = m[3]
    for t in tasks:
        assert t.env.get("OMP_NUM_THREADS") == str(t.nthreads), \
            f"{cmd}: no --env variables for task {t.task}: {p.stdout!r}"
    return tasks


class Result:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.records = []
        for line in proc.stdout.splitlines():
            i = line.find("PROBE ")
            if i >= 0:
                self.records.append(json.loads(line[i + 6:]))
        self.records.sort(key=lambda r: r["rank"])

    def stderr_lines(self, needle="mpibind"):
        return [l for l in self.stderr.splitlines() if needle.lower() in l.lower()]

    def __str__(self):
        return (f"command: {' '.join(self.argv)}\nexit: {self.rc}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}")


def have(launcher):
    return shutil.which(launcher) is not None


def launch(launcher, n, prog, env=None, preload=True, launcher_opts=(),
           timeout=LAUNCH_TIMEOUT):
    """Runs `prog` (argv list) as n ranks under `launcher` ('openmpi' or
    'mpich'), with the preload in the ranks' LD_PRELOAD when `preload`, and
    with `env` (dict) added to the ranks' environment.  Returns a Result."""
    extra = {}
    if os.environ.get("MPIBIND_CACHE_DIR"):
        extra["MPIBIND_CACHE_DIR"] = os.environ["MPIBIND_CACHE_DIR"]
    extra.update(env or {})
    if preload:
        extra["LD_PRELOAD"] = cfg("MPIBIND_TEST_PRELOAD")
    run_env = base_env()
    if launcher == "openmpi":
        argv = ["mpirun.openmpi", "--allow-run-as-root", "--oversubscribe",
                "-np", str(n), *launcher_opts]
        for k, v in extra.items():
            argv += ["-x", f"{k}={v}"]
        # Not in mpirun's own environment: only the ranks get the preload.
        for k, v in extra.items():
            if k != "LD_PRELOAD":
                run_env[k] = v
    elif launcher == "mpich":
        argv = ["mpiexec.mpich", "-n", str(n), *launcher_opts]
        for k, v in extra.items():
            argv += ["-genv", k, v]
        for k, v in extra.items():
            if k != "LD_PRELOAD":
                run_env[k] = v
    else:
        raise ValueError(launcher)
    argv = ["timeout", "-k", "5", str(timeout), *argv, *map(str, prog)]
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True,
                          timeout=timeout + 15)
    return Result(argv, proc)


def run_plain(prog, env=None, timeout=LAUNCH_TIMEOUT):
    """Runs `prog` directly (no launcher) with `env` added."""
    run_env = base_env()
    if os.environ.get("MPIBIND_CACHE_DIR"):
        run_env["MPIBIND_CACHE_DIR"] = os.environ["MPIBIND_CACHE_DIR"]
    run_env.update(env or {})
    argv = ["timeout", "-k", "5", str(timeout), *map(str, prog)]
    proc = subprocess.run(argv, env=run_env, capture_output=True, text=True,
                          timeout=timeout + 15)
    return Result(argv, proc)


def tasks_cpus(rec):
    """The CPU sets of all threads of a probe's process."""
    return [parse_list(v) for v in rec["tasks"].values()]
