/*
 * strdupf.h - messages of the automatic-binding layer are built with one
 * malloc'ed printf (libc only).
 */
#ifndef MPIBIND_AUTO_STRDUPF_H
#define MPIBIND_AUTO_STRDUPF_H

#include <stddef.h>
#include <stdint.h>

/* malloc'ed printf; NULL only when out of memory.  Its result is
 * printf's; the conversions the keys use are formatted without libc's
 * printf engine (strdupf.c says why). */
char *mpibind_auto_strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* v's digits in base 10 or 16 (lower case) at p, no sign, no NUL: their
 * count (at most 64).  For text built in place (cpuset lists). */
size_t mpibind_auto_put_digits(char *p, uintmax_t v, unsigned base);
/* snprintf by the same means: the length of the whole result (buf holds
 * at most size - 1 bytes of it and a NUL), -1 out of memory. */
int mpibind_auto_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
