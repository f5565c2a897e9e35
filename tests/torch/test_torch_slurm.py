"""srun ... torchrun: the workers share what the Slurm step gave torchrun's
agent (issue 17), on the test suite's private Slurm (tests/slurm/
slurm_cluster.py, two slurmd "nodes" on this machine), with the real
torchrun and torch.

What they pin down:
- `srun -N1 -n1 -c2 torchrun --nproc_per_node=2` with the preload: each
  worker (every thread) on its own CPU, within the step's (the agent's,
  as Slurm bound it); the agent, which carries the step's SLURM_* task
  variables, is no task (the preload applied nothing in it); the
  workers' variables win over the step's;
- a step with one CPU (`-c1`, a node shared): both workers on that CPU,
  never outside it;
- with the Slurm plugin too (`srun --mpibind`): the plugin maps the step's
  task, the agent, and gives it no OMP_* variable (its workers would
  inherit them as inputs); the preload then binds each worker within;
- on Lassen's XML (dryrun) with the step's 4 (fake) GPUs, with and
  without the plugin: every worker sees the step's GPUs in mpibind's task
  order (device LOCAL_RANK is its GPU) and its share's thread count.

Skips (77) only when torch, Slurm or munge are absent or we are not
root (the daemons run as root).
"""
import os
import sys

import pytest

import torchlib as tl

sys.path.insert(0, os.environ.get("MPIBIND_TEST_SLURM_DIR", ""))
import slurm_cluster  # noqa: E402

PLUGIN = os.environ.get("MPIBIND_TEST_SLURM_PLUGIN", "")

pytestmark = pytest.mark.skipif(tl.torch_missing() is not None,
                                reason=str(tl.torch_missing()))


@pytest.fixture(scope="module")
def cluster():
    if slurm_cluster.missing_components():
        pytest.skip("no Slurm here: " +
                    ", ".join(slurm_cluster.missing_components()))
    c = slurm_cluster.SlurmCluster(plugstack=[], gpus=4)
    try:
        c.start()
    except slurm_cluster.ClusterSkip as err:
        pytest.skip(str(err))
    yield c
    c.stop()


def srun_torchrun(cluster, tmp, srun_opts, env):
    """srun <opts> torchrun --nproc_per_node=2 worker.py, the preload and
    env given to the step (--export); returns (CompletedProcess, workers)."""
    e = {"LD_PRELOAD": tl.PRELOAD, "MPIBIND_CACHE_DIR": str(tmp / "cache"),
         "MPIBIND_TRACE": str(tmp / "trace"), **env}
    export = "ALL," + ",".join("%s=%s" % kv for kv in e.items())
    argv = ["timeout", "200", "srun", "-t", "5", "-N1", "-n1"] + srun_opts + \
        ["--export=" + export] + tl.torchrun_argv(2)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(tl.DROP)}
    p = cluster.run(argv, timeout=240, env=clean)
    return p, tl.workers(p.stdout)


def check_workers(p, w, cluster):
    """Each worker on its own CPUs within the step's (the agent's); returns
    the step's CPUs."""
    assert p.returncode == 0 and sorted(w) == [0, 1], \
        tl.explain(p) + cluster.logs(10)
    step = set(w[0]["agent_cpus"])
    mine = [tl.every_thread_on(w[r]) for r in (0, 1)]
    for r in (0, 1):
        assert mine[r] and mine[r] <= step, (r, w[r]["threads"], step)
        assert w[r]["SLURM_LOCALID"] == "0", w[r]  # the step's variables
        assert w[r]["MPIBIND_APPLIED"] == "1", w[r]
        assert w[r]["MPIBIND_APPLIED_TASK"].startswith("%d:" % w[r]["pid"])
    return step, mine


def test_srun_torchrun_preload(cluster, tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    cluster.set_plugstack([])
    p, w = srun_torchrun(cluster, tmp_path, ["-c2"], {})
    step, mine = check_workers(p, w, cluster)
    assert len(step) == 2 and not mine[0] & mine[1], (step, mine)
    # the workers' lines only: the agent (task 0 of the step's 1) applied
    # nothing
    trace = (tmp_path / "trace").read_text().splitlines()
    assert sorted(l.split()[2] for l in trace) == ["task=0/2", "task=1/2"], trace


def test_srun_torchrun_one_cpu(cluster, tmp_path):
    cluster.set_plugstack([])
    p, w = srun_torchrun(cluster, tmp_path, ["-c1"], {})
    step, mine = check_workers(p, w, cluster)
    assert len(step) == 1 and mine == [step, step], (step, mine)


def test_srun_torchrun_plugin_and_preload(cluster, tmp_path):
    if not PLUGIN:
        pytest.skip("the Slurm plugin is not built")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    cluster.set_plugstack(["required " + PLUGIN])
    try:
        p, w = srun_torchrun(cluster, tmp_path, ["-c2", "--mpibind"], {})
    finally:
        cluster.set_plugstack([])
    step, mine = check_workers(p, w, cluster)
    assert len(step) == 2 and not mine[0] & mine[1], (step, mine)
    for r in (0, 1):
        # the plugin mapped the agent, and gave it no thread variable
        assert w[r]["agent"]["MPIBIND_APPLIED"] == "1", w[r]
        assert w[r]["agent"]["OMP_NUM_THREADS"] is None, w[r]
        assert w[r]["OMP_NUM_THREADS"] == "1", w[r]   # one CPU each


@pytest.mark.parametrize("plugin", [False, True])
def test_srun_torchrun_lassen_gpus(cluster, tmp_path, plugin):
    if plugin and not PLUGIN:
        pytest.skip("the Slurm plugin is not built")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs (a step that owns its node)")
    lassen = os.path.join(tl.TOPOS, "coral-lassen.xml")
    cluster.set_plugstack(["required " + PLUGIN] if plugin else [])
    opts = ["-c2", "--gpus=4"] + (["--mpibind=dryrun"] if plugin else [])
    try:
        p, w = srun_torchrun(cluster, tmp_path, opts, {
            "MPIBIND": "dryrun", "MPIBIND_TOPOFILE": lassen})
    finally:
        cluster.set_plugstack([])
    assert p.returncode == 0 and sorted(w) == [0, 1], \
        tl.explain(p) + cluster.logs(10)
    want = tl.preview(2, topology=lassen)
    order = [want[0][1][0], want[1][1][0]]
    for r in (0, 1):
        cvd = w[r]["CUDA_VISIBLE_DEVICES"].split(",")
        assert sorted(cvd) == ["0", "1", "2", "3"] and cvd[:2] == order, (r, w[r])
        assert w[r]["OMP_NUM_THREADS"] == str(want[r][0]), w[r]
        assert w[r]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID", w[r]
        assert w[r]["agent"]["MPIBIND_APPLIED"] == ("1" if plugin else None)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))
