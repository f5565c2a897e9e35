! Launch probe, Fortran with use mpi (see probe_common.inc).
program probe_usempi
  use mpi
  use omp_lib
  implicit none
  integer :: rank, size, lrank, lsize, node, ierr
  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, size, ierr)
  call MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, &
       MPI_INFO_NULL, node, ierr)
  call MPI_Comm_rank(node, lrank, ierr)
  call MPI_Comm_size(node, lsize, ierr)
  call report('use mpi', rank, size, lrank, lsize)
  call MPI_Comm_free(node, ierr)
  call MPI_Finalize(ierr)
contains
  include 'probe_common.inc'
end program probe_usempi
