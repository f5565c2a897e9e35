/*
 * mb_text.h - the project's one decimal parser, one message escaper and
 * one word comparison.
 * Internal, never installed.  libc only: they are compiled into the static
 * library mpibind-libc (lib/meson.build), which libmpibind links whole
 * (hidden there) and so does the code that runs inside the application's
 * process (auto/task/, the LD_PRELOAD library), which must load nothing
 * but libc; a value then means the same and is refused with the same
 * words wherever it is typed.
 */
#ifndef MB_TEXT_H
#define MB_TEXT_H

#include <stddef.h>

/* [s, s + len) as a decimal integer in [min, max].  Digits only, with one
 * leading '-' allowed when min < 0; leading zeros are decimal ("010" is
 * ten, never octal); no blanks, no '+', no locale.  Returns 0 and *out,
 * or -1 (nothing written) for anything else, including an empty span or a
 * value out of range.  Cost: len, whatever the digits say. */
int mb_parse_decimal(const char *s, size_t len, long long min, long long max,
                     long long *out);

/* The decimal number made of the digits at *p (no sign, no blank), in
 * [0, max], by the rule above: 0 with *out and *p moved past the digits,
 * or -1 (*p unchanged) when there is no digit or the value is out of
 * range.  For lists that put numbers between other characters ("2(x3),1",
 * "0-3,8"). */
int mb_take_decimal(const char **p, long long max, long long *out);

/* A copy of s where each control character (and DEL) is written as a C
 * escape (\n, \r, \t, \xHH): a message that echoes a user's value stays
 * the one line it promises.  NULL when out of memory (or s is NULL). */
char *mb_escape(const char *s);

/* 1 when the first n characters of a and b (or both up to a NUL within
 * them) are equal but for ASCII case, else 0: the words users type
 * (MPIBIND's, OMP_PROC_BIND's) whatever the locale (caseword.c). */
int mb_ascii_caseeq(const char *a, const char *b, size_t n);

/* 1 when c is an ASCII blank (space, \t, \n, \v, \f, \r), else 0: the
 * blanks around the words and numbers users type, whatever the locale,
 * without isspace's locale table (another page of libc in every rank). */
int mb_ascii_space(int c);

#endif
