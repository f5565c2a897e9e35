! Launch probe, Fortran with use mpi_f08 (see probe_common.inc).
program probe_f08
  use mpi_f08
  use omp_lib
  implicit none
  type(MPI_Comm) :: node
  integer :: rank, size, lrank, lsize
  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, size)
  call MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, &
       MPI_INFO_NULL, node)
  call MPI_Comm_rank(node, lrank)
  call MPI_Comm_size(node, lsize)
  call report('use mpi_f08', rank, size, lrank, lsize)
  call MPI_Comm_free(node)
  call MPI_Finalize()
contains
  include 'probe_common.inc'
end program probe_f08
