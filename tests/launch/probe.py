"""Launch probe for mpi4py: after MPI initialization, print one line per
rank, "PROBE " and a JSON object with the fields of the C probe (probe.c)
that Python can observe: world and node-local rank and size, the process's
Cpus_allowed_list, every thread's Cpus_allowed_list, the calling thread's
sched_getaffinity, and the variables the binding may set (null when unset).
It has no OpenMP runtime, so omp_max_threads is null."""

import json
import os
import sys

from mpi4py import MPI

ENV_NAMES = ("OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
             "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
             "ZE_AFFINITY_MASK", "CUDA_DEVICE_ORDER", "MPIBIND_APPLIED")


def cpus_allowed_list(path):
    with open(path) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return None


def tasks():
    res = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            res[tid] = cpus_allowed_list(f"/proc/self/task/{tid}/status")
        except FileNotFoundError:   # the thread ended meanwhile
            pass
    return res


def main():
    world = MPI.COMM_WORLD
    node = world.Split_type(MPI.COMM_TYPE_SHARED, world.Get_rank())
    rec = {
        "lang": "mpi4py",
        "rank": world.Get_rank(), "size": world.Get_size(),
        "local_rank": node.Get_rank(), "local_size": node.Get_size(),
        "cpus": cpus_allowed_list("/proc/self/status"),
        "tasks": tasks(),
        "omp_max_threads": None,
        "omp_threads": [sorted(os.sched_getaffinity(0))],
        "env": {n: os.environ.get(n) for n in ENV_NAMES},
    }
    node.Free()
    sys.stdout.write("PROBE " + json.dumps(rec) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
