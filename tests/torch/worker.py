"""A torchrun worker that says what it was given: one line
"MPIBIND_WORKER <json>" on stdout.

    worker.py [--torch] [--allreduce]

Without --torch it imports nothing of torch (a cheap worker for the GPU
variables); --torch imports torch after reading the environment and adds
torch.get_num_threads(); --allreduce also joins the gloo group torchrun
set up and sums LOCAL_RANK + 1 over the workers.  The masks are every
thread's, read after torch started its threads.
"""
import json
import os
import sys

VARS = ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMP_NUM_THREADS", "OMP_PLACES",
        "OMP_PROC_BIND", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "MPIBIND_APPLIED",
        "MPIBIND_APPLIED_TASK", "SLURM_LOCALID")


def initial_env(pid):
    """The variables process pid was started with ({} when unreadable)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return {}
    return dict(i.decode("utf-8", "replace").split("=", 1)
                for i in items if b"=" in i)


def thread_masks():
    masks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            masks[tid] = sorted(os.sched_getaffinity(int(tid)))
        except OSError:
            pass
    return masks


def main():
    out = {k: os.environ.get(k) for k in VARS}
    agent = initial_env(os.getppid())
    out["pid"] = os.getpid()
    out["agent"] = {k: agent.get(k) for k in ("MPIBIND_APPLIED",
                                              "OMP_NUM_THREADS")}
    out["agent_cpus"] = sorted(os.sched_getaffinity(os.getppid()))
    if "--torch" in sys.argv:
        import torch
        out["torch_threads"] = torch.get_num_threads()
        # a parallel operation, so that the intra-op pool exists
        torch.ones(1 << 16).sum()
        if "--allreduce" in sys.argv:
            import torch.distributed as dist
            dist.init_process_group("gloo")
            t = torch.tensor([int(os.environ["LOCAL_RANK"]) + 1])
            dist.all_reduce(t)
            out["allreduce"] = int(t.item())
            dist.destroy_process_group()
    out["threads"] = thread_masks()
    print("MPIBIND_WORKER " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
