/*
 * threads.c - every thread of the process bound to one mask (see
 * mb_threads.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/types.h>
#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define MB_KNOWS_SINGLE_THREADED 1
#endif
#endif

#include "mb_threads.h"

int mb_bind_all_threads(const cpu_set_t *cs, size_t size)
{
#ifdef MB_KNOWS_SINGLE_THREADED
  /* glibc >= 2.32: true only while no thread was ever started (threads
   * made with a bare clone() are not supported by glibc anyway) */
  if (__libc_single_threaded)
    return sched_setaffinity(0, size, cs);
#endif
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return sched_setaffinity(0, size, cs);
  /* the calling thread is in the list too */
  int rc = 0, e = 0, any = 0;
  struct dirent *ent;
  while (rc == 0 && (ent = readdir(d)) != NULL) {
    char *end;
    long tid = strtol(ent->d_name, &end, 10);
    if (ent->d_name[0] == '.' || *end != '\0' || tid <= 0)
      continue;
    any = 1;
    if (sched_setaffinity((pid_t)tid, size, cs) != 0 && errno != ESRCH) {
      rc = -1;
      e = errno;
    }
  }
  closedir(d);
  if (!any) /* no list after all: the calling thread at least */
    return sched_setaffinity(0, size, cs);
  errno = e;
  return rc;
}
