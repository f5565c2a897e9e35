/*
 * decimal.c - the decimal numbers users and launchers type (see mb_text.h
 * for the contract).  libc only: the code in the application's process
 * (auto/task/) reads its numbers with it too.
 *
 * Why not strtol: it skips blanks, takes a '+', reads "010" as octal with
 * base 0, and clamps what overflows; every one of these made a value mean
 * something else than what was typed.
 */
#include <string.h>

#include "mb_text.h"

int mb_parse_decimal(const char *s, size_t len, long long min, long long max,
                     long long *out)
{
  int neg = 0;
  size_t i = 0;
  if (!s || min > max)
    return -1;
  if (len > 0 && s[0] == '-' && min < 0) {
    neg = 1;
    i = 1;
  }
  if (i == len)
    return -1;
  /* Accumulate as a negative number: its range holds LLONG_MIN. */
  long long v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    int d = s[i] - '0';
    if (v < (-9223372036854775807LL - 1 + d) / 10)
      return -1; /* beyond long long, so beyond [min, max] too */
    v = v * 10 - d;
  }
  if (!neg) {
    if (v < -9223372036854775807LL)
      return -1;
    v = -v;
  }
  if (v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

int mb_take_decimal(const char **p, long long max, long long *out)
{
  /* a loop, not strspn: the preload's warm path calls no libc function
   * it can do without (each first call costs a rank a lazy binding, and
   * often a page of libc) */
  size_t n = 0;
  while ((*p)[n] >= '0' && (*p)[n] <= '9')
    n++;
  if (mb_parse_decimal(*p, n, 0, max, out) != 0)
    return -1;
  *p += n;
  return 0;
}
