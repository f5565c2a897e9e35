/*
 * strdupf.h - messages of the automatic-binding layer are built with one
 * malloc'ed printf (libc only).
 */
#ifndef MPIBIND_AUTO_STRDUPF_H
#define MPIBIND_AUTO_STRDUPF_H

/* malloc'ed printf; NULL only when out of memory. */
char *mpibind_auto_strdupf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#endif
