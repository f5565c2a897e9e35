/*
 * test_strdupf.c - the layer's printf (auto/task/strdupf.c) gives what
 * libc's printf gives, for the conversions it formats itself (strings,
 * "%.*s", decimal and hexadecimal integers of every size with a width and
 * zero padding, "%%") and for those it hands to vasprintf (anything
 * else); and its snprintf truncates as snprintf does.  The reference is
 * glibc's asprintf/snprintf on the same format and arguments.
 */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strdupf.h"

/* Both printfs on the same format and arguments: equal results. */
#define SAME(...)                                                       \
  do {                                                                  \
    char *ours = mpibind_auto_strdupf(__VA_ARGS__), *ref = NULL;        \
    ck_assert_int_ge(asprintf(&ref, __VA_ARGS__), 0);                   \
    ck_assert_ptr_nonnull(ours);                                        \
    ck_assert_str_eq(ours, ref);                                        \
    free(ours);                                                         \
    free(ref);                                                          \
  } while (0)

START_TEST(strings_and_literals)
{
  SAME("%s", "");
  SAME("plain text, no conversion");
  SAME("%s=%s\n", "MPIBIND", "v,smt:2");
  SAME("100%% of %s", "the node");
  SAME("%.*s|", 3, "abcdef");
  SAME("%.*s|", 0, "abcdef");
  SAME("%.*s|", 10, "abc");
  SAME("%s%s%s", "a", "", "c");
  SAME("[%s]", "%d %s %%");  /* a value that looks like a format */
}
END_TEST

START_TEST(integers)
{
  SAME("%d %d %d", 0, -1, 42);
  SAME("%d %d", INT_MIN, INT_MAX);
  SAME("%ld %ld", LONG_MIN, LONG_MAX);
  SAME("%lld %lld", LLONG_MIN, LLONG_MAX);
  SAME("%u %lu %llu", UINT_MAX, ULONG_MAX, ULLONG_MAX);
  SAME("%jd %ju", INTMAX_MIN, UINTMAX_MAX);
  SAME("%zu", (size_t)SIZE_MAX);
  SAME("%x %lx %llx %jx", 0xbeefu, 0xdeadbeefUL, 0x1234567890abcdefULL,
       (uintmax_t)255);
  SAME("map-%016llx.txt", 0x2aULL);
  SAME("map-%016llx.txt", 0xfedcba9876543210ULL);
  SAME("%ld.%09ld", 1700000000L, 5L);
  SAME("%ld.%09ld", 1L, 999999999L);
  SAME("%5d|%-d|%05d|%3d", 42, 7, -42, 123456);
  SAME("%2d|%02d", -5, -5);
}
END_TEST

/* What it does not format itself goes to vasprintf whole. */
START_TEST(other_conversions_are_printf)
{
  SAME("%04o", 0755u);
  SAME("%c%c", 'o', 'k');
  SAME("%-8s|%8s|", "left", "right");
  SAME("%.3d", 7);
  SAME("%g %f", 1.5, 2.25);
  SAME("%p", (void *)0);
  SAME("%s then %04o", "text", 0700u);
  SAME("%+d %i", 5, -3);
}
END_TEST

START_TEST(snprintf_truncates_as_snprintf)
{
  char ours[8], ref[8];
  /* volatile: the truncation is the point (no compiler warning) */
  volatile size_t cap = sizeof ref;
  int a = mpibind_auto_snprintf(ours, cap, "%ld:%s", 123456L, "0123456789");
  int b = snprintf(ref, cap, "%ld:%s", 123456L, "0123456789");
  ck_assert_int_eq(a, b);
  ck_assert_str_eq(ours, ref);
  a = mpibind_auto_snprintf(ours, cap, "%d", 7);
  b = snprintf(ref, cap, "%d", 7);
  ck_assert_int_eq(a, b);
  ck_assert_str_eq(ours, ref);
  ck_assert_int_eq(mpibind_auto_snprintf(NULL, 0, "%s", "abc"), 3);
}
END_TEST

/* Long results grow as needed (no fixed limit). */
START_TEST(long_results)
{
  size_t n = 1 << 20;
  char *big = malloc(n + 1);
  ck_assert_ptr_nonnull(big);
  memset(big, 'x', n);
  big[n] = '\0';
  SAME("<%s|%s>%d", big, big, 5);
  free(big);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("strdupf");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, strings_and_literals);
  tcase_add_test(tc, integers);
  tcase_add_test(tc, other_conversions_are_printf);
  tcase_add_test(tc, snprintf_truncates_as_snprintf);
  tcase_add_test(tc, long_results);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
