/*
 * escape.c - messages that echo a user's value stay one line (see
 * mb_text.h).  A newline inside MPIBIND, a path or a list would
 * otherwise split "one line naming the value" into several, and a
 * terminal control sequence would reach the user's terminal.
 */
#include <stdlib.h>
#include <string.h>

#include "mb_text.h"

static int is_control(unsigned char c)
{
  return c < 0x20 || c == 0x7f;
}

char *mb_escape(const char *s)
{
  if (!s)
    return NULL;
  size_t len = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    len += is_control(*p) ? 4 : 1; /* \xHH at most */
  char *out = malloc(len + 1);
  if (!out)
    return NULL;
  static const char hex[] = "0123456789abcdef";
  char *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (!is_control(*p)) {
      *o++ = (char)*p;
      continue;
    }
    *o++ = '\\';
    switch (*p) {
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
      *o++ = 'x';
      *o++ = hex[*p >> 4];
      *o++ = hex[*p & 15];
    }
  }
  *o = '\0';
  return out;
}
