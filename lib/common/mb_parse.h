/*
 * mb_parse.h - the project's one restrict-list parser (over hwloc
 * bitmaps), with the libc rules it builds on (mb_text.h: the decimal
 * parser and the message escaper).  Internal, never installed: compiled
 * into libmpibind (hidden) and, as the static library mpibind-common, into
 * the front ends that need the same rule (the command), so that a value
 * means the same and is refused with the same words wherever it is
 * typed.
 */
#ifndef MB_PARSE_H
#define MB_PARSE_H

#include <stddef.h>
#include <hwloc.h>

#include "mb_text.h"

/* The largest id of a restrict list: hwloc's bitmap functions take and
 * return ids as int (hwloc_bitmap_first, _next, _last), so a larger one
 * cannot be represented in a bitmap. */
#define MB_LIST_MAX 2147483647u

/* The restrict-list grammar (docs/interfaces.md "Restrict lists"):
 *   list  = item ("," item)*
 *   item  = N | N "-" M | N "-"        (N <= M; "N-" is N and up)
 * N and M decimal ids from 0 to MB_LIST_MAX.  No blanks, no empty item.
 *
 * Checks the whole of s.  When set is not NULL, the ids from 0 to last are
 * added to it: ids above last (beyond the node) select nothing, so that
 * the cost is the list's length plus last, never what the numbers say
 * ("0-2147483647" costs no more than "0-3" on a 4-CPU node).
 * Returns 0, or -1 with *why (malloc'ed, one line naming the offending
 * item and what was expected; NULL when out of memory). */
int mb_list_parse(const char *s, hwloc_bitmap_t set, unsigned last,
                  char **why);

#endif
