"""mpibind for mpi4py programs: one mapping per node, each rank its share.

    from mpibind.mpi import node_mapping
    share = node_mapping(apply=True)          # bind and export, then work
    print(share.local_rank, share.cpus, share.gpus, share.nthreads)

The ranks of a node are found with comm.Split_type(MPI.COMM_TYPE_SHARED);
its local rank 0 computes the mapping of all of them (one topology
discovery per node) and scatters each rank its task's share, task i being
local rank i.  mpi4py is imported here only, so that `import mpibind`
works without it.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List

from . import MpibindHandle, MpibindError
from .task import bind_process  # every thread, checked


@dataclass(frozen=True)
class NodeShare:
    """What one rank gets: its task of the node's mapping."""
    local_rank: int           # task number on the node
    local_size: int           # tasks (ranks) on the node
    cpus: List[int]           # PU OS indexes
    gpus: List[str]           # GPU IDs of the requested kind
    nthreads: int
    env: Dict[str, str] = field(default_factory=dict)  # docs/algorithm.md step 6
    report: str = ""          # this task's report line


def _compute(local_size, inputs, gpu_ids, check_system):
    """The shares of all local ranks (run by local rank 0 only)."""
    ntasks = inputs.pop("ntasks", None)
    if ntasks is not None and ntasks != local_size:
        raise ValueError("ntasks: %r given, but this node has %d ranks; "
                         "node_mapping maps the node's ranks" %
                         (ntasks, local_size))
    with MpibindHandle(ntasks=local_size, **inputs) as h:
        if gpu_ids is not None:
            h.set_gpu_ids(gpu_ids)
        h.mpibind()
        if check_system:
            h.topology_check_system()
        names = h.get_env_var_names()
        values = {name: h.get_env_var_values(name) for name in names}
        nthreads = h.nthreads
        return [NodeShare(local_rank=t, local_size=local_size,
                          cpus=h.get_cpus_ptask(t),
                          gpus=h.get_gpus_ptask(t),
                          nthreads=nthreads[t],
                          env={name: values[name][t] for name in names},
                          report=h.mapping_ptask_snprint(t))
                for t in range(local_size)]


# Not exported by apply=True unless place_threads=True: an interpreter loads
# its OpenMP runtime late (numpy, scipy, torch, an extension), and GNU
# libgomp then binds the loading thread, and every thread and child started
# after it, to the first place (one CPU of the task).
_THREAD_PLACEMENT = ("OMP_PLACES", "OMP_PROC_BIND")


def node_mapping(comm=None, apply=False, gpu_ids=None, place_threads=False,
                 **inputs):
    """Computes the node's mapping once and returns this rank's NodeShare.

    comm: the communicator whose ranks are mapped (default COMM_WORLD); it
    is split by node.  inputs: MpibindHandle's keywords (ntasks, if given,
    must be the node's rank count).  gpu_ids: the GPU ID kind of the
    shares.  apply=True also binds this process to its CPUs and exports
    its variables into os.environ, except OMP_PLACES and OMP_PROC_BIND
    unless place_threads=True (see _THREAD_PLACEMENT); with a
    topology_file, that file must describe this machine.

    Collective over comm.  An error (ValueError, MpibindError) is raised on
    every rank of the node, never on one only.
    """
    from mpi4py import MPI

    if comm is None:
        comm = MPI.COMM_WORLD
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        local_rank, local_size = node.Get_rank(), node.Get_size()
        shares = None
        if local_rank == 0:
            try:
                shares = _compute(local_size, dict(inputs), gpu_ids, apply)
            except Exception as err:    # every rank must learn of it
                shares = [err] * local_size
        share = node.scatter(shares, root=0)
    finally:
        node.Free()
    if isinstance(share, BaseException):
        raise share
    if apply:
        bind_process(share.cpus)
        os.environ.update({k: v for k, v in share.env.items()
                           if place_threads or k not in _THREAD_PLACEMENT})
    return share
