/*
 * test_parse.c - the project's one decimal parser, restrict-list parser
 * and message escaper (lib/mb_parse.h), which the library, the preload
 * and the command share.  Expected values come from the grammar written
 * in mb_parse.h and docs/interfaces.md, never from hwloc's parser (which
 * reads '010' as 8 and wraps 4294967297 to 1).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "mb_parse.h"
#include "unit_util.h"

static long long dec(const char *s, long long min, long long max, int *rc)
{
  long long v = -777;
  *rc = mb_parse_decimal(s, strlen(s), min, max, &v);
  return v;
}

START_TEST(decimal_accepts)
{
  int rc;
  ck_assert_int_eq(dec("0", 0, INT_MAX, &rc), 0);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(dec("2147483647", 0, INT_MAX, &rc), INT_MAX);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(dec("010", 0, INT_MAX, &rc), 10); /* never octal */
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(dec("08", 0, INT_MAX, &rc), 8);
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(dec("-5", -10, 10, &rc), -5);
  ck_assert_int_eq(rc, 0);
  ck_assert(dec("9223372036854775807", LLONG_MIN, LLONG_MAX, &rc) ==
            LLONG_MAX);
  ck_assert_int_eq(rc, 0);
  ck_assert(dec("-9223372036854775808", LLONG_MIN, LLONG_MAX, &rc) ==
            LLONG_MIN);
  ck_assert_int_eq(rc, 0);
  /* only the span counts */
  long long v;
  ck_assert_int_eq(mb_parse_decimal("12,34", 2, 0, 100, &v), 0);
  ck_assert_int_eq(v, 12);
}
END_TEST

START_TEST(decimal_refuses)
{
  static const char *const bad[] = {
      "", "-", "+1", " 1", "1 ", "1a", "0x10", "1e3", "4.0", "-1",
      "2147483648", "4294967297", "99999999999999999999999",
      "9223372036854775808"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    long long v = 42;
    ck_assert_msg(mb_parse_decimal(bad[i], strlen(bad[i]), 0, INT_MAX,
                                   &v) == -1,
                  "'%s' accepted", bad[i]);
    ck_assert_int_eq(v, 42); /* nothing written */
  }
  long long v;
  ck_assert_int_eq(mb_parse_decimal("-9223372036854775809", 20, LLONG_MIN,
                                    LLONG_MAX, &v),
                   -1);
  ck_assert_int_eq(mb_parse_decimal("5", 1, 6, 9, &v), -1);
  ck_assert_int_eq(mb_parse_decimal(NULL, 0, 0, 9, &v), -1);
}
END_TEST

/* mb_take_decimal: the digits at the cursor, the cursor past them. */
START_TEST(decimal_taken)
{
  const char *spec = "12(x3),010", *p = spec;
  long long v = 42;
  ck_assert_int_eq(mb_take_decimal(&p, INT_MAX, &v), 0);
  ck_assert_int_eq(v, 12);
  ck_assert_ptr_eq(p, spec + 2);
  /* no digit at the cursor, or out of range: nothing moves */
  ck_assert_int_eq(mb_take_decimal(&p, INT_MAX, &v), -1);
  ck_assert_ptr_eq(p, spec + 2);
  p = spec + 7;
  ck_assert_int_eq(mb_take_decimal(&p, 9, &v), -1);
  ck_assert_ptr_eq(p, spec + 7);
  ck_assert_int_eq(mb_take_decimal(&p, 10, &v), 0);
  ck_assert_int_eq(v, 10); /* decimal, never octal */
  ck_assert_int_eq(*p, '\0');
  p = "-1";
  ck_assert_int_eq(mb_take_decimal(&p, INT_MAX, &v), -1);
}
END_TEST

/* The set the list gives on a node whose last id is last, as a list. */
static char *parsed(const char *s, unsigned last)
{
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  char *why = NULL, *out = NULL;
  ck_assert_msg(mb_list_parse(s, set, last, &why) == 0, "'%s': %s", s,
                why ? why : "?");
  hwloc_bitmap_list_asprintf(&out, set);
  hwloc_bitmap_free(set);
  return ut_keep(out);
}

START_TEST(list_accepts)
{
  ck_assert_str_eq(parsed("0-3,8,10-11", 63), "0-3,8,10-11");
  ck_assert_str_eq(parsed("010", 63), "10");          /* decimal */
  ck_assert_str_eq(parsed("08,09", 63), "8-9");       /* hwloc dropped them */
  ck_assert_str_eq(parsed("5,0", 63), "0,5");         /* any order of items */
  ck_assert_str_eq(parsed("3-3", 63), "3");
  ck_assert_str_eq(parsed("30-", 35), "30-35");       /* hwloc's open range */
  /* ids beyond the node select nothing, whatever they cost to write */
  ck_assert_str_eq(parsed("0-2147483647", 3), "0-3");
  ck_assert_str_eq(parsed("2,100-2147483647", 3), "2");
  ck_assert_str_eq(parsed("2147483647", 3), "");
  /* checking alone (the setter) builds nothing */
  char *why = NULL;
  ck_assert_int_eq(mb_list_parse("0-2147483647,7-", NULL, 0, &why), 0);
  ck_assert_ptr_null(why);
}
END_TEST

/* The list is refused; the reason names `named`. */
static void refused(const char *s, const char *named)
{
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  char *why = NULL;
  ck_assert_msg(mb_list_parse(s, set, 63, &why) == -1, "'%s' accepted", s);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strstr(why, named), "'%s': reason '%s' does not name '%s'",
                s, why, named);
  ck_assert_msg(strstr(why, "expected"), "'%s': '%s' says nothing expected",
                s, why);
  free(why);
  hwloc_bitmap_free(set);
}

START_TEST(list_refuses)
{
  refused("0,-1", "'-1'");
  refused("4294967297", "4294967297");
  refused("0-4294967295", "4294967295");
  refused("2147483648", "2147483648");
  refused("0,5-2", "'5-2'");
  refused("0x1", "'0x1'");
  refused("1,,2", "empty");
  refused("1,", "empty");
  refused(",1", "empty");
  refused("", "empty");
  refused(" 1", "' 1'");
  refused("1 ", "'1 '");
  refused("+1", "'+1'");
  refused("1--2", "'1--2'");
  refused("1-2-3", "'1-2-3'");
  refused("-", "'-'");
  refused("a", "'a'");
}
END_TEST

/* MPIBIND's words whatever the case, ASCII only, the locale aside. */
START_TEST(ascii_words)
{
  ck_assert_int_eq(mb_ascii_caseeq("VERBOSE", "verbose", 7), 1);
  ck_assert_int_eq(mb_ascii_caseeq("Smt:2", "smt", 3), 1);
  ck_assert_int_eq(mb_ascii_caseeq("smx", "smt", 3), 0);
  ck_assert_int_eq(mb_ascii_caseeq("VISIBLE_DEVICES", "visible_devices", 15),
                   1);
  /* a NUL in both ends the comparison; in one only, they differ */
  ck_assert_int_eq(mb_ascii_caseeq("ab", "AB", 10), 1);
  ck_assert_int_eq(mb_ascii_caseeq("ab", "abc", 3), 0);
  ck_assert_int_eq(mb_ascii_caseeq("", "", 0), 1);
  /* not ASCII letters: only equal bytes are equal */
  ck_assert_int_eq(mb_ascii_caseeq("\xc4\xb0", "i", 1), 0);
  ck_assert_int_eq(mb_ascii_caseeq("[", "{", 1), 0);
  ck_assert_int_eq(mb_ascii_caseeq("@", "`", 1), 0);
}
END_TEST

START_TEST(escape)
{
  char *e = ut_keep(mb_escape("a\nb\rc\td\x1b[2J\x7f\x01z"));
  ck_assert_str_eq(e, "a\\nb\\rc\\td\\x1b[2J\\x7f\\x01z");
  e = ut_keep(mb_escape("caf\xc3\xa9 0-3"));  /* UTF-8 stays */
  ck_assert_str_eq(e, "caf\xc3\xa9 0-3");
  e = ut_keep(mb_escape(""));
  ck_assert_str_eq(e, "");
  ck_assert_ptr_null(mb_escape(NULL));
}
END_TEST

int main(void)
{
  Suite *s = suite_create("parse");
  TCase *tc = ut_tcase("parse");
  tcase_add_test(tc, decimal_accepts);
  tcase_add_test(tc, decimal_refuses);
  tcase_add_test(tc, decimal_taken);
  tcase_add_test(tc, list_accepts);
  tcase_add_test(tc, list_refuses);
  tcase_add_test(tc, ascii_words);
  tcase_add_test(tc, escape);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
