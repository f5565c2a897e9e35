/*
 * buf.c - a growing byte buffer (see mb_buf.h).  The capacity doubles,
 * so n appends cost linear time in what they add.
 */
#include <stdlib.h>
#include <string.h>

#include "mb_buf.h"

int mb_buf_add(struct mb_buf *b, const char *data, size_t n)
{
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
      return -1;
    b->p = p;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}
