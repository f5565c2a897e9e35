/*
 * strdupf.c - one malloc'ed printf for the layer's keys and messages
 * (strdupf.h).
 *
 * Why not vasprintf alone: every task of a job builds its keys with this
 * (machine.c, inputs.c, nodemap.c), and a process that never printed
 * before faults in the pages of libc's printf engine (vfprintf and its
 * helpers span several of them) on its first call.  On a virtual machine
 * each such fault costs a task some 5 us, more than the formatting.  So
 * the conversions the keys use (strings, decimal and hexadecimal integers
 * with a width and zero padding, "%.*s") are written here; any other
 * format, and any conversion this code does not take, goes to vasprintf
 * whole, so the result is always printf's (tests/unit/test_strdupf.c
 * compares them).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strdupf.h"

/* A growing string; len excludes the NUL; failed: out of memory. */
struct text {
  char *s;
  size_t len, cap;
  int failed;
};

static void put(struct text *t, const char *p, size_t n) {
  if (t->failed)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->len + n + 1)
      cap *= 2;
    char *s = realloc(t->s, cap);
    if (s == NULL) {
      t->failed = 1;
      return;
    }
    t->s = s;
    t->cap = cap;
  }
  memcpy(t->s + t->len, p, n);
  t->len += n;
  t->s[t->len] = '\0';
}

size_t mpibind_auto_put_digits(char *p, uintmax_t v, unsigned base) {
  char d[sizeof(uintmax_t) * 8];
  size_t n = 0;
  do {
    d[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    p[i] = d[n - 1 - i];
  return n;
}

/* An unsigned value in base 10 or 16 (lower case), at least width
 * digits, padded with zeros or spaces, a minus sign first. */
static void put_number(struct text *t, uintmax_t v, int negative, int base,
                       int width, int zero) {
  char digits[sizeof(uintmax_t) * 8];
  size_t n = mpibind_auto_put_digits(digits, v, (unsigned)base);
  int pad = width - (int)n - negative;
  if (!zero)
    for (; pad > 0; pad--)
      put(t, " ", 1);
  if (negative)
    put(t, "-", 1);
  for (; pad > 0; pad--)
    put(t, "0", 1);
  put(t, digits, n);
}

enum size { SIZE_INT, SIZE_LONG, SIZE_LLONG, SIZE_MAX_T, SIZE_SIZE_T };

/* Formats fmt into t when every conversion is one this code takes; 0, or
 * -1 (nothing to use: the caller formats with vasprintf). */
static int format(struct text *t, const char *fmt, va_list ap) {
  for (const char *p = fmt; *p;) {
    const char *pct = strchr(p, '%');
    if (pct == NULL) {
      put(t, p, strlen(p));
      break;
    }
    put(t, p, (size_t)(pct - p));
    p = pct + 1;
    if (*p == '%') {
      put(t, "%", 1);
      p++;
      continue;
    }
    int zero = 0, width = 0, precision = -1;
    enum size size = SIZE_INT;
    if (*p == '0') {
      zero = 1;
      p++;
    }
    while (*p >= '0' && *p <= '9' && width < 1000)
      width = width * 10 + (*p++ - '0');
    if (p[0] == '.' && p[1] == '*') {
      precision = va_arg(ap, int);
      p += 2;
    }
    if (p[0] == 'l' && p[1] == 'l') {
      size = SIZE_LLONG;
      p += 2;
    } else if (*p == 'l') {
      size = SIZE_LONG;
      p++;
    } else if (*p == 'j') {
      size = SIZE_MAX_T;
      p++;
    } else if (*p == 'z') {
      size = SIZE_SIZE_T;
      p++;
    }
    char c = *p++;
    if (c == 's' && size == SIZE_INT && width == 0 && !zero) {
      const char *s = va_arg(ap, const char *);
      if (s == NULL)
        return -1; /* glibc's "(null)": its business */
      put(t, s, precision < 0 ? strlen(s) : strnlen(s, (size_t)precision));
    } else if ((c == 'd' || c == 'u' || c == 'x') && precision < 0) {
      intmax_t sv = 0;
      uintmax_t uv;
      if (c == 'd') {
        sv = size == SIZE_INT     ? va_arg(ap, int)
             : size == SIZE_LONG  ? va_arg(ap, long)
             : size == SIZE_LLONG ? va_arg(ap, long long)
             : size == SIZE_MAX_T ? va_arg(ap, intmax_t)
                                  : (intmax_t)va_arg(ap, ptrdiff_t);
        uv = sv < 0 ? -(uintmax_t)sv : (uintmax_t)sv;
      } else {
        uv = size == SIZE_INT     ? va_arg(ap, unsigned)
             : size == SIZE_LONG  ? va_arg(ap, unsigned long)
             : size == SIZE_LLONG ? va_arg(ap, unsigned long long)
             : size == SIZE_MAX_T ? va_arg(ap, uintmax_t)
                                  : va_arg(ap, size_t);
      }
      put_number(t, uv, sv < 0, c == 'x' ? 16 : 10, width, zero);
    } else {
      return -1;
    }
  }
  return 0;
}

static char *vstrdupf(const char *fmt, va_list ap) {
  struct text t = {NULL, 0, 0, 0};
  va_list again;
  int rc;
  va_copy(again, ap);
  rc = format(&t, fmt, ap);
  if (rc == 0 && !t.failed) {
    va_end(again);
    if (t.s == NULL) /* an empty result */
      t.s = calloc(1, 1);
    return t.s;
  }
  free(t.s);
  t.s = NULL;
  if (rc != 0 && vasprintf(&t.s, fmt, again) < 0)
    t.s = NULL;
  va_end(again);
  return t.s;
}

char *mpibind_auto_strdupf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vstrdupf(fmt, ap);
  va_end(ap);
  return s;
}

int mpibind_auto_snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vstrdupf(fmt, ap);
  va_end(ap);
  if (s == NULL) {
    if (size > 0)
      buf[0] = '\0';
    return -1;
  }
  size_t n = strlen(s);
  if (size > 0) {
    size_t k = n < size - 1 ? n : size - 1;
    memcpy(buf, s, k);
    buf[k] = '\0';
  }
  free(s);
  return n > INT32_MAX ? -1 : (int)n;
}
