/*
 * mb_buf.h - a growing byte buffer, always NUL-terminated, for output
 * gathered piece by piece (a child's output, a file body written as
 * lines).  Internal, never installed.  libc only (the static library
 * mpibind-libc): the child runner (spawn.c) and the layer's node mapping
 * writer (auto/node/nodemap_write.c) append the same way.
 */
#ifndef MB_BUF_H
#define MB_BUF_H

#include <stddef.h>

struct mb_buf {
  char *p;    /* malloc'ed, NUL-terminated; NULL before the first append */
  size_t len; /* bytes held, the NUL not counted */
  size_t cap; /* bytes allocated */
};

/* Appends [data, data + n) (n may be 0: p then exists, "").  0, or -1
 * when out of memory (the buffer is left as it was).  The caller frees
 * p. */
int mb_buf_add(struct mb_buf *b, const char *data, size_t n);

#endif
