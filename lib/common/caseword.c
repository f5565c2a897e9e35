/*
 * caseword.c - words compared without regard to ASCII case, and the ASCII
 * blanks around them (mb_text.h).
 *
 * Why not strncasecmp: the words of MPIBIND and OMP_PROC_BIND are ASCII,
 * and strncasecmp follows the locale (in a Turkish one, 'I' is not the
 * capital of 'i'); and the preload, which runs in every process of a
 * job, would fault in another page of libc for it.
 */
#include "mb_text.h"

static unsigned char lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

int mb_ascii_caseeq(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char x = lower((unsigned char)a[i]);
    if (x != lower((unsigned char)b[i]))
      return 0;
    if (x == '\0')
      return 1;
  }
  return 1;
}

int mb_ascii_space(int c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}
