"""What the torch suite's tests share: running torchrun (the real one, with
the real torch) and reading what its workers say (worker.py), and the
mapping mpibind's own command previews, which every expectation comes
from (never a hard-coded answer)."""
import json
import os
import re
import shutil
import subprocess
import sys

from mpibind_testutil import parse_list

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "worker.py")
TORCHRUN = shutil.which("torchrun", path="/usr/bin:" + os.environ.get("PATH", ""))
CLI = os.environ.get("MPIBIND_TEST_CLI", "")
PRELOAD = os.environ.get("MPIBIND_TEST_PRELOAD", "")
TOPOS = os.environ.get("MPIBIND_TEST_TOPOLOGIES", "")

# The variables of the launch around the test and of other launchers: a
# worker's environment is what each test gives it.
DROP = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "FLUX_", "PALS_", "MV2_",
        "MPI_LOCAL", "HYDRA_", "PRTE_", "MPIBIND", "OMP_", "GOMP_", "CUDA_",
        "ROCR_", "HIP_", "ZE_", "LD_PRELOAD", "TORCHELASTIC_", "LOCAL_RANK",
        "LOCAL_WORLD_SIZE")

# torchrun's own options: -r 1 -t 1 (redirect and tee the workers' output)
# because Python 3.11 breaks torch 1.13's parsing of their defaults; a
# short monitor interval so that the agent notices its workers' end soon.
TORCHRUN_OPTS = ["--standalone", "-r", "1", "-t", "1",
                 "--monitor_interval", "0.2"]

REPORT_RE = re.compile(r"^mpibind: task +(\d+) nths +(\d+) gpus (\S*)"
                       r"(?: nics \S*)? cpus (\S*)$")


def torch_missing():
    """Why the real PyTorch cannot run here, or None."""
    if TORCHRUN is None:
        return "torchrun is not installed (python3-torch)"
    try:
        import torch  # noqa: F401
        import torch.distributed as dist
    except ImportError as err:
        return "torch cannot be imported: %s" % err
    if not dist.is_available() or not dist.is_gloo_available():
        return "torch has no gloo backend"
    return None


# What the tests themselves need of mpibind's variables (the build's
# library for the Python module).
KEEP = ("MPIBIND_LIBRARY", "MPIBIND_TEST_")


def clean_env(tmp, **extra):
    env = {k: v for k, v in os.environ.items()
           if k.startswith(KEEP) or not k.startswith(DROP)}
    env["MPIBIND_CACHE_DIR"] = str(tmp / "cache")
    if os.environ.get("MPIBIND_TEST_SANITIZERS"):
        # a sanitized build's library in an uninstrumented interpreter
        env["LD_PRELOAD"] = os.environ["MPIBIND_TEST_SANITIZERS"]
    env.update(extra)
    return env


def torchrun_argv(nproc, *worker_args):
    return [TORCHRUN] + TORCHRUN_OPTS + ["--nproc_per_node=%d" % nproc,
                                         WORKER] + list(worker_args)


def workers(stdout):
    """LOCAL_RANK -> what the worker said."""
    out = {}
    for line in stdout.splitlines():
        at = line.find("MPIBIND_WORKER ")
        if at >= 0:
            w = json.loads(line[at + len("MPIBIND_WORKER "):])
            out[int(w["LOCAL_RANK"])] = w
    return out


def run_torchrun(tmp, nproc, *worker_args, env=None, preload=True,
                 timeout=240):
    """torchrun started by this process (the agent's CPUs are ours), with
    the preload in LD_PRELOAD.  Returns (CompletedProcess, workers)."""
    e = clean_env(tmp, **(env or {}))
    if preload:
        e["LD_PRELOAD"] = PRELOAD
    p = subprocess.run(torchrun_argv(nproc, *worker_args), env=e,
                       capture_output=True, text=True, timeout=timeout)
    return p, workers(p.stdout)


def preview(ntasks, topology=None, restrict=None):
    """mpibind's own mapping: task -> (nthreads, [gpus], {cpus})."""
    argv = [CLI, "-n", str(ntasks)]
    if topology:
        argv += ["--topology", topology]
    if restrict:
        argv += ["--restrict", restrict]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items()
                            if not k.startswith(DROP)})
    assert p.returncode == 0, p
    tasks = {}
    for line in p.stdout.splitlines():
        m = REPORT_RE.match(line)
        if m:
            tasks[int(m.group(1))] = (int(m.group(2)),
                                      [g for g in m.group(3).split(",") if g],
                                      parse_list(m.group(4)))
    assert sorted(tasks) == list(range(ntasks)), p.stdout
    return tasks


def every_thread_on(worker):
    """The one CPU set all of a worker's threads have, or None when they
    differ."""
    masks = {tuple(m) for m in worker["threads"].values()}
    return set(masks.pop()) if len(masks) == 1 else None


def explain(p):
    return "exit %s\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout[-4000:],
                                                  p.stderr[-4000:])


if __name__ == "__main__":
    sys.exit("a module of the torch suite's tests")
