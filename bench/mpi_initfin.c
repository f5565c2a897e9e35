/*
 * mpi_initfin.c - the smallest MPI program: MPI_Init, MPI_Finalize.
 *
 * The launch-cost benchmark (launch_cost.py) launches it with and without
 * the preload, so that what is timed is the launch and MPI's own start,
 * plus whatever the preload adds, and nothing of an application.  Built
 * twice by bench/meson.build: against Open MPI (mpi_initfin_ompi) and
 * against MPICH (mpi_initfin_mpich).
 * By hand:  mpirun.openmpi --allow-run-as-root --oversubscribe -np 4 \
 *             ./build-bench/bench/mpi_initfin_ompi
 */
#include <mpi.h>

int main(int argc, char **argv)
{
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
    return 1;
  return MPI_Finalize() == MPI_SUCCESS ? 0 : 1;
}
