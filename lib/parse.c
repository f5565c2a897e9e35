/*
 * parse.c - the restrict lists users type (see mb_parse.h for the
 * contract); their ids are read by the project's decimal rule (decimal.c).
 *
 * Why not hwloc_bitmap_list_sscanf: it reads numbers with strtoul in base
 * 0 ("010" is CPU 8, "08" is dropped), wraps ids above 4294967295, reads
 * "5-2" as an empty range, skips what it does not understand, and
 * allocates what the numbers say ("0,-1" makes a 512 MiB bitmap).  One
 * strict parser closes all of these for every front end.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_parse.h"

static char *whyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *whyf(const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0)
    s = NULL;
  va_end(ap);
  return s;
}

/* One id of an item: the digits at [p, p + len). */
static int parse_id(const char *p, size_t len, unsigned *id, char **why)
{
  long long v;
  if (len == 0)
    return -1; /* the caller says what was missing */
  if (mb_parse_decimal(p, len, 0, MB_LIST_MAX, &v) == 0) {
    *id = (unsigned)v;
    return 0;
  }
  *why = whyf("id '%.*s' is out of range: expected 0 to %u", (int)len, p,
              MB_LIST_MAX);
  return -2;
}

/* The length of the run of digits at p. */
static size_t digits(const char *p)
{
  return strspn(p, "0123456789");
}

int mb_list_parse(const char *s, hwloc_bitmap_t set, unsigned last,
                  char **why)
{
  static const char expected[] =
      "expected ids and ranges such as 0-3,8,10-11 (decimal, ranges "
      "ascending, 'N-' for N and up)";
  *why = NULL;
  if (!s || !*s) {
    *why = whyf("the list is empty: %s", expected);
    return -1;
  }
  const char *p = s;
  for (;;) {
    const char *item = p;
    size_t item_len = strcspn(item, ",");
    unsigned a, b = MB_LIST_MAX;
    size_t n = digits(p);
    int rc = parse_id(p, n, &a, why);
    if (rc == -2)
      return -1;
    if (rc < 0)
      goto bad_item;
    p += n;
    if (*p == '-') {
      p++;
      n = digits(p);
      if (n > 0) {
        rc = parse_id(p, n, &b, why);
        if (rc < 0)
          return -1;
        p += n;
        if (b < a) {
          *why = whyf("range '%.*s' is descending: expected N-M with N <= M",
                      (int)item_len, item);
          return -1;
        }
      }
    } else {
      b = a;
    }
    if (*p != ',' && *p != '\0')
      goto bad_item;
    if (set && a <= last &&
        hwloc_bitmap_set_range(set, a, (int)(b < last ? b : last)) < 0) {
      *why = whyf("out of memory");
      return -1;
    }
    if (*p == '\0')
      return 0;
    p++;
    continue;
  bad_item:
    if (item_len == 0)
      *why = whyf("an item is empty (at offset %zu): %s",
                  (size_t)(item - s), expected);
    else
      *why = whyf("item '%.*s' is not an id or a range: %s", (int)item_len,
                  item, expected);
    return -1;
  }
}
