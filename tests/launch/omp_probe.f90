! The OpenMP placement probe as a Fortran program (gfortran -fopenmp):
! the fields of omp_probe_lib.c; each thread reads its own CPUs from
! /proc/thread-self/status (Cpus_allowed_list).  Lines of any length.
module omp_probe_util
  implicit none
  type :: str
    character(len=:), allocatable :: s
  end type str
contains
  function itoa(i) result(s)
    integer, intent(in) :: i
    character(len=:), allocatable :: s
    character(len=24) :: tmp
    write (tmp, '(i0)') i
    s = trim(tmp)
  end function itoa

  ! One whole line of unit u; ios /= 0 at the end of the file.
  subroutine read_line(u, line, ios)
    integer, intent(in) :: u
    character(len=:), allocatable, intent(out) :: line
    integer, intent(out) :: ios
    character(len=256) :: chunk
    integer :: n
    line = ''
    do
      read (u, '(a)', advance='no', iostat=ios, size=n) chunk
      line = line // chunk(1:n)
      if (is_iostat_eor(ios)) then
        ios = 0
        return
      end if
      if (ios /= 0) return
    end do
  end subroutine read_line

  ! The Cpus_allowed_list value of a status file ('' when unreadable).
  function status_cpus(path) result(s)
    character(len=*), intent(in) :: path
    character(len=:), allocatable :: s, line
    integer :: u, ios, k
    s = ''
    open (newunit=u, file=path, action='read', status='old', iostat=ios)
    if (ios /= 0) return
    do
      call read_line(u, line, ios)
      if (ios /= 0) exit
      if (len(line) >= 18) then
        if (line(1:18) == 'Cpus_allowed_list:') then
          k = verify(line(19:), ' ' // achar(9))
          if (k > 0) s = trim(line(18 + k:))
          exit
        end if
      end if
    end do
    close (u)
  end function status_cpus
end module omp_probe_util

program omp_probe
  use omp_lib
  use omp_probe_util
  implicit none
  type(str), allocatable :: aff(:)
  character(len=:), allocatable :: line
  integer :: n, i, maxt
  maxt = omp_get_max_threads()
  n = 0
  !$omp parallel
  !$omp single
  n = omp_get_num_threads()
  allocate (aff(0:n - 1))
  !$omp end single
  !$omp critical
  aff(omp_get_thread_num())%s = status_cpus('/proc/thread-self/status')
  !$omp end critical
  !$omp end parallel
  line = 'OMPPLACE {"lang":"fortran","cpus":"' // status_cpus('/proc/self/status') // &
       '","max_threads":' // itoa(maxt) // ',"num_places":' // itoa(omp_get_num_places()) // &
       ',"proc_bind":' // itoa(int(omp_get_proc_bind())) // ',"threads_lists":['
  do i = 0, n - 1
    if (i > 0) line = line // ','
    line = line // '"' // aff(i)%s // '"'
  end do
  line = line // ']}'
  write (*, '(a)') line
  flush (6)
end program omp_probe
