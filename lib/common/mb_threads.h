/*
 * mb_threads.h - binding every thread of the calling process to a CPU
 * mask.  Internal, never installed.  libc only (the static library
 * mpibind-libc): the library's mpibind_apply_cpus() and the code in the
 * application's process (auto/task/, which binds a task from its record
 * without loading libmpibind) bind the same way.
 */
#ifndef MB_THREADS_H
#define MB_THREADS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stddef.h>

/* sched_setaffinity(cs) for the calling thread, then for every other
 * thread of the process (listed in /proc/self/task), as hwloc's
 * HWLOC_CPUBIND_PROCESS does on Linux: MPI libraries start threads, and
 * every one of them must follow.  Threads that end meanwhile are no error.
 * A process that glibc knows has started no thread
 * (__libc_single_threaded) binds its one thread without listing them: a
 * rank bound by the preload's constructor opens no file of /proc for it.
 * 0, or -1 with errno (the first refusal). */
int mb_bind_all_threads(const cpu_set_t *cs, size_t size);

#endif
