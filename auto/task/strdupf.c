/*
 * strdupf.c - one malloc'ed printf for the layer's messages (strdupf.h).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>

#include "strdupf.h"

char *mpibind_auto_strdupf(const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}
