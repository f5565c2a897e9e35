/*
 * mb_parse.h - the project's one decimal parser, one restrict-list parser
 * and one message escaper.  Internal, never installed: compiled into
 * libmpibind (hidden) and, as the static library mpibind-common, into the
 * front ends that need the same rule (the preload and the command), so
 * that a value means the same and is refused with the same words
 * wherever it is typed.
 */
#ifndef MB_PARSE_H
#define MB_PARSE_H

#include <stddef.h>
#include <hwloc.h>

/* The largest id of a restrict list: hwloc's bitmap functions take and
 * return ids as int (hwloc_bitmap_first, _next, _last), so a larger one
 * cannot be represented in a bitmap. */
#define MB_LIST_MAX 2147483647u

/* [s, s + len) as a decimal integer in [min, max].  Digits only, with one
 * leading '-' allowed when min < 0; leading zeros are decimal ("010" is
 * ten, never octal); no blanks, no '+', no locale.  Returns 0 and *out,
 * or -1 (nothing written) for anything else, including an empty span or a
 * value out of range.  Cost: len, whatever the digits say. */
int mb_parse_decimal(const char *s, size_t len, long long min, long long max,
                     long long *out);

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

/* A copy of s where each control character (and DEL) is written as a C
 * escape (\n, \r, \t, \xHH): a message that echoes a user's value stays
 * the one line it promises.  NULL when out of memory (or s is NULL). */
char *mb_escape(const char *s);

#endif
