/*
 * fuzz_list.c - libFuzzer target: the restrict-list grammar, the decimal
 * parser and the message escaper (lib/mb_parse.h), as every front end
 * uses them.  Checks, besides the sanitizers: an accepted list builds a
 * set within 0..last whatever its numbers; a refused one says why in
 * one line once escaped.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mb_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  unsigned last = data[0] * 8u + 7; /* nodes of 8 to 2048 ids */
  char *s = malloc(size);
  if (!s)
    return 0;
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';

  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  char *why = NULL;
  int rc = mb_list_parse(s, set, last, &why);
  if (rc == 0) {
    if (why || hwloc_bitmap_last(set) > (int)last)
      abort();
  } else {
    char *esc = mb_escape(why);
    if (!why || !esc || strchr(esc, '\n'))
      abort();
    free(esc);
  }
  free(why);
  hwloc_bitmap_free(set);

  long long v;
  if (mb_parse_decimal(s, strlen(s), -1000, 2147483647, &v) == 0 &&
      (v < -1000 || v > 2147483647))
    abort();
  char *esc = mb_escape(s);
  if (esc && strpbrk(esc, "\n\r\t\x1b"))
    abort();
  free(esc);
  free(s);
  return 0;
}
