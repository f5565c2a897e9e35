"""torchrun's workers under the preload (issue 17), with the real torchrun
and torch (CPU, gloo).

What they pin down (README.md "PyTorch", docs/interfaces.md):
- each worker is a task of the node (LOCAL_RANK of LOCAL_WORLD_SIZE),
  bound at load, before Python imports torch: every thread of it on its
  share of mpibind's mapping (the `mpibind` command's preview), torch's
  thread count its share's, a gloo all_reduce across the workers right;
  torchrun's agent is no task (nothing applied in it);
- MPIBIND=off leaves the workers as torchrun started them;
- GPUs on a GPU node's XML (dryrun): every worker sees the same list of
  the node's GPUs, element LOCAL_RANK being the GPU mpibind's mapping
  gives task LOCAL_RANK: Lassen (NVIDIA, numbered in locality order) and
  Tioga (AMD, not: task 0's nearest is GPU 4); with `visible_devices` each
  worker sees its own GPUs, with `visible_devices:none` none is set;
- OMP_NUM_THREADS=1 that torchrun sets in workers is not an input (torch
  sees the share's count); a user's OMP_NUM_THREADS is, and stays.
"""
import os
import sys

import pytest

import torchlib as tl

pytestmark = pytest.mark.skipif(tl.torch_missing() is not None,
                                reason=str(tl.torch_missing()))

LASSEN = os.path.join(tl.TOPOS, "coral-lassen.xml")
TIOGA = os.path.join(tl.TOPOS, "eas-tioga.xml")


def my_cpus():
    return sorted(os.sched_getaffinity(0))


def test_workers_bound_at_load(tmp_path):
    trace = tmp_path / "trace"
    p, w = tl.run_torchrun(tmp_path, 2, "--torch", "--allreduce",
                           env={"MPIBIND_TRACE": str(trace)})
    assert p.returncode == 0 and sorted(w) == [0, 1], tl.explain(p)
    want = tl.preview(2, restrict=",".join(map(str, my_cpus())))
    for rank, worker in w.items():
        nthreads, _, cpus = want[rank]
        assert tl.every_thread_on(worker) == cpus, (rank, worker["threads"])
        assert worker["torch_threads"] == nthreads, worker
        assert worker["OMP_NUM_THREADS"] == str(nthreads), worker
        assert worker["MPIBIND_APPLIED"] == "1", worker
        assert worker["allreduce"] == 1 + 2, worker
        # torchrun's agent is no task: nothing was applied in it
        assert worker["agent"]["MPIBIND_APPLIED"] is None, worker
        assert worker["agent_cpus"] == my_cpus(), worker
    assert not set.intersection(*(tl.every_thread_on(x) for x in w.values()))
    # one line per worker, one discovery for the node
    lines = trace.read_text().splitlines()
    assert len(lines) == 2, lines
    assert sorted(l.split()[2] for l in lines) == ["task=0/2", "task=1/2"]
    assert sum("topology=discovered" in l for l in lines) == 1, lines


def test_off_leaves_the_workers_alone(tmp_path):
    p, w = tl.run_torchrun(tmp_path, 2, "--torch", env={"MPIBIND": "off"})
    assert p.returncode == 0 and sorted(w) == [0, 1], tl.explain(p)
    for worker in w.values():
        assert tl.every_thread_on(worker) == set(my_cpus()), worker
        # torchrun's own value, untouched
        assert worker["OMP_NUM_THREADS"] == "1", worker
        assert worker["MPIBIND_APPLIED"] is None, worker
    assert not (tmp_path / "cache").exists()  # nothing mapped


@pytest.mark.parametrize("xml,var,nproc", [
    (LASSEN, "CUDA_VISIBLE_DEVICES", 2),
    (LASSEN, "CUDA_VISIBLE_DEVICES", 4),
    (TIOGA, "ROCR_VISIBLE_DEVICES", 2),
    (TIOGA, "ROCR_VISIBLE_DEVICES", 8),
])
def test_every_gpu_visible_device_i_worker_is(tmp_path, xml, var, nproc):
    p, w = tl.run_torchrun(tmp_path, nproc, env={
        "MPIBIND": "dryrun", "MPIBIND_TOPOFILE": xml})
    assert p.returncode == 0 and sorted(w) == list(range(nproc)), tl.explain(p)
    want = tl.preview(nproc, topology=xml)
    values = {worker[var] for worker in w.values()}
    assert len(values) == 1, values          # the same list everywhere
    order = values.pop().split(",")
    every = {g for _, gpus, _ in want.values() for g in gpus}
    assert sorted(order) == sorted(every), (order, want)
    for rank in w:
        assert order[rank] == want[rank][1][0], (rank, order, want[rank])
    if xml == TIOGA:
        assert order[0] == "4"   # the node numbers GPUs against locality
    if var == "CUDA_VISIBLE_DEVICES":
        assert all(x["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for x in w.values())


@pytest.mark.parametrize("xml,var", [(LASSEN, "CUDA_VISIBLE_DEVICES"),
                                     (TIOGA, "ROCR_VISIBLE_DEVICES")])
def test_visible_devices_word_gives_each_worker_its_own(tmp_path, xml, var):
    p, w = tl.run_torchrun(tmp_path, 2, env={
        "MPIBIND": "dryrun,visible_devices", "MPIBIND_TOPOFILE": xml})
    assert p.returncode == 0 and sorted(w) == [0, 1], tl.explain(p)
    want = tl.preview(2, topology=xml)
    for rank, worker in w.items():
        assert worker[var] == ",".join(want[rank][1]), (rank, worker, want)
    p, w = tl.run_torchrun(tmp_path, 2, env={
        "MPIBIND": "dryrun,visible_devices:none", "MPIBIND_TOPOFILE": xml})
    assert p.returncode == 0 and sorted(w) == [0, 1], tl.explain(p)
    assert all(x[var] is None for x in w.values()), w


def test_torchruns_thread_count_is_not_an_input(tmp_path):
    """torchrun sets OMP_NUM_THREADS=1 in workers that lack it: the share's
    count replaces it (torch sees it); a user's value is the input and
    stays."""
    env = {"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": LASSEN}
    want = tl.preview(2, topology=LASSEN)
    p, w = tl.run_torchrun(tmp_path, 2, "--torch", env=env)
    assert p.returncode == 0 and sorted(w) == [0, 1], tl.explain(p)
    for rank, worker in w.items():
        assert worker["OMP_NUM_THREADS"] == str(want[rank][0]), worker
        assert worker["torch_threads"] == want[rank][0], worker
        assert worker["agent"]["OMP_NUM_THREADS"] is None, worker
    p, w = tl.run_torchrun(tmp_path, 2, env=dict(env, OMP_NUM_THREADS="3"))
    assert p.returncode == 0 and sorted(w) == [0, 1], tl.explain(p)
    assert all(x["OMP_NUM_THREADS"] == "3" for x in w.values()), w


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))
