from mpi4py import MPI
import mpibind
import os

comm = MPI.COMM_WORLD
size = comm.Get_size()
rank = comm.Get_rank()

print(rank, "before affinity", os.sched_getaffinity(0))
handle = mpibind.MpibindHandle(ntasks=size, restrict_ids='0-7')
handle.mpibind()
handle.apply(rank)
print(rank, "after affinity", os.sched_getaffinity(0))

if rank == 0:
    print(handle.mapping_snprint())
    data = [(i+1)**2 for i in range(size)]
else:
    data = None


data = comm.scatter(data, root=0)
assert data == (rank+1)**2
