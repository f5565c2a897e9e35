/*
 * fail.c - the error convention of mpibind.h, the ground floor of lib/:
 * every failure goes through mb_fail() or mb_fail_kind(), which keep one
 * message (one line: the user's values in it are escaped) and one kind
 * per handle.  Calls nothing else of the library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "handle.h"
#include "mb_parse.h"

static const char null_handle_msg[] = "mpibind: the handle is NULL";

static int vfail(mpibind_t *h, int kind, const char *fmt, va_list ap)
{
  if (kind <= 0)
    kind = EIO; /* a system call failed without saying why */
  if (h) {
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
      msg = NULL;
    /* One line, whatever the user's values inside it hold. */
    char *esc = msg ? mb_escape(msg) : NULL;
    free(msg);
    msg = esc;
    free(h->error);
    h->error = msg; /* NULL (out of memory) reads back as a generic text */
    h->errnum = kind;
  }
  errno = kind; /* last: nothing above may change it afterwards */
  return -1;
}

int mb_fail(mpibind_t *h, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(h, EINVAL, fmt, ap);
  va_end(ap);
  return rc;
}

int mb_fail_kind(mpibind_t *h, int kind, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = vfail(h, kind, fmt, ap);
  va_end(ap);
  return rc;
}

int mb_oom(mpibind_t *h)
{
  return mb_fail_kind(h, ENOMEM, "out of memory");
}

char *mb_strdup(mpibind_t *h, const char *s)
{
  char *d = strdup(s);
  if (!d)
    mb_oom(h);
  return d;
}

const char *mpibind_get_error(const mpibind_t *h)
{
  if (!h)
    return null_handle_msg;
  if (!h->error)
    return h->errnum ? "out of memory (while writing the message)" : "";
  return h->error;
}

int mpibind_get_errno(const mpibind_t *h)
{
  return h ? h->errnum : EINVAL;
}
