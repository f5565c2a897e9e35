/*
 * fail.h - the error convention of mpibind.h (fail.c), the ground floor
 * of lib/: every file reports through it, and it calls no other file.
 */
#ifndef MB_FAIL_H
#define MB_FAIL_H

#include <errno.h>

#include "mpibind.h"

/* Each records a failure message (printf format; the values' control
 * characters are escaped) and its kind on h (h may be NULL), sets errno
 * to the kind and returns -1. */
/* A value that does not fit: EINVAL. */
int mb_fail(mpibind_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Any other kind: an errno value or MPIBIND_ENOMAP. */
int mb_fail_kind(mpibind_t *h, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Out of memory: ENOMEM. */
int mb_oom(mpibind_t *h);
/* A strdup that records out-of-memory on h. */
char *mb_strdup(mpibind_t *h, const char *s);

/* The guard of every public function taking a handle: a NULL handle is an
 * EINVAL failure returning ret. */
#define MB_NEED_HANDLE(h, ret)                                               \
  do {                                                                       \
    if (!(h)) {                                                              \
      errno = EINVAL;                                                        \
      return ret;                                                            \
    }                                                                        \
  } while (0)

#endif
