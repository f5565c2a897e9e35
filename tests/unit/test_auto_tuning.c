/*
 * test_auto_tuning.c - the cost and the line of a bad MPIBIND, through
 * the automatic-binding layer's front door (auto/task/mpibind_auto_task.h),
 * which the preload, the plugins and the command share.
 *
 * A value of many bad words gets one line on stderr, which names the
 * variable, its value and the first bad word; the work is linear in the
 * value.  The work is counted, not timed: this executable is linked with
 * -Wl,--wrap=vasprintf, so every message the layer formats passes through
 * __wrap_vasprintf below, which adds up the bytes formatted.  Formatting
 * one message per bad word, each quoting the whole value, costs
 * words x length (a 128 KiB value: seconds per task).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpibind_auto_task.h"
#include "tuning.h"
#include "unit_util.h"

int __real_vasprintf(char **out, const char *fmt, va_list ap);

static size_t formatted; /* bytes formatted by the layer's vasprintf */

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
  int n = __real_vasprintf(out, fmt, ap);
  if (n > 0)
    formatted += (size_t)n;
  return n;
}

/* n copies of word joined with commas, and `last` at the end. */
static char *words(const char *word, size_t n, const char *last)
{
  size_t w = strlen(word), len = n * (w + 1) + strlen(last);
  char *s = ut_keep(malloc(len + 1));
  ck_assert_ptr_nonnull(s);
  char *p = s;
  for (size_t i = 0; i < n; i++) {
    memcpy(p, word, w);
    p += w;
    *p++ = ',';
  }
  strcpy(p, last);
  return s;
}

/* Runs mpibind_auto_apply(1) (the command's call: task 0 of 1) with
 * MPIBIND=value; returns what it wrote on stderr. */
static char *apply_with(const char *value, int *rc)
{
  char *dir = ut_tmpdir();
  char *err_path = ut_fmt("%s/stderr", dir);
  ck_assert_int_eq(setenv("MPIBIND", value, 1), 0);
  ck_assert_int_eq(setenv("MPIBIND_CACHE_DIR", dir, 1), 0);
  unsetenv("MPIBIND_APPLIED");
  unsetenv("MPIBIND_APPLIED_TASK");
  fflush(stderr);
  int saved = dup(2);
  int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(saved, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_ge(dup2(fd, 2), 0);
  close(fd);
  formatted = 0;
  *rc = mpibind_auto_apply(1);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  unsetenv("MPIBIND");

  FILE *f = fopen(err_path, "r");
  ck_assert_ptr_nonnull(f);
  char *text = NULL;
  size_t cap = 0;
  ssize_t got = getdelim(&text, &cap, '\0', f);
  fclose(f);
  ut_keep(text);
  return got < 0 ? "" : text;
}

/* Each kind of bad word, thousands of times: one line naming MPIBIND and
 * the first bad word, and a few copies of the value formatted in all
 * (before: one message per word, 4000 words x 8 kB). */
START_TEST(many_bad_words_one_line_linear_work)
{
  static const struct {
    const char *word, *named;
  } kinds[] = {
      {"x", "unknown word 'x'"},
      {"smt:x", "bad value in 'smt:x'"},
      {"greedy:2", "bad value in 'greedy:2'"},
      {"gpu:7", "bad value in 'gpu:7'"},
      {"draw:", "missing file in 'draw:'"},
  };
  const size_t n = 4000;
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    /* a control character at the end: the line stays one line */
    char *value = words(kinds[k].word, n, "bad\nword");
    size_t len = strlen(value);
    int rc;
    char *err = apply_with(value, &rc);
    ck_assert_int_eq(rc, 1); /* reported, running unbound */
    ck_assert_msg(formatted <= 4 * len + 4096,
                  "MPIBIND of %zu '%s' words (%zu bytes): %zu bytes "
                  "formatted, expected at most %zu (linear in the value)",
                  n, kinds[k].word, len, formatted, 4 * len + 4096);
    size_t elen = strlen(err);
    ck_assert_msg(elen > 0 && strchr(err, '\n') == err + elen - 1,
                  "expected one line on stderr, got %zu bytes with %s",
                  elen, strchr(err, '\n') ? "several lines" : "no newline");
    ck_assert_msg(strncmp(err, "mpibind: MPIBIND='", 18) == 0 &&
                      strstr(err, kinds[k].named) != NULL &&
                      strstr(err, "bad\\nword") != NULL,
                  "the line does not name MPIBIND, %s and the escaped "
                  "value: %.200s...",
                  kinds[k].named, err);
    /* the value once (escaped: at most 4 bytes a character) and the
     * words expected */
    ck_assert_msg(elen <= 4 * len + 1024, "a %zu-byte line for a %zu-byte value",
                  elen, len);
  }
}
END_TEST

/* The preload's early way out for MPIBIND=off says 1 for that spelling
 * alone, and only where the full reader finds off and nothing to say. */
START_TEST(plainly_off_is_what_the_reader_finds)
{
  static const char *const values[] = {"off", "OFF", " off", "off ",
                                       "off,v", "v,off", "of", "offf",
                                       "on", "", "off,help"};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    struct mpibind_auto_tuning t;
    ck_assert_int_eq(setenv("MPIBIND", values[i], 1), 0);
    int quick = mpibind_auto_tuning_plainly_off();
    mpibind_auto_tuning_read(&t);
    ck_assert_msg(quick == (strcmp(values[i], "off") == 0), "'%s'",
                  values[i]);
    if (quick)
      ck_assert_msg(t.off && t.error == NULL && !t.help && !t.verbose, "'%s'",
                    values[i]);
    mpibind_auto_tuning_free(&t);
  }
  unsetenv("MPIBIND");
  ck_assert_int_eq(mpibind_auto_tuning_plainly_off(), 0);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("auto_tuning");
  TCase *tc = ut_tcase("auto_tuning");
  tcase_add_test(tc, many_bad_words_one_line_linear_work);
  tcase_add_test(tc, plainly_off_is_what_the_reader_finds);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
