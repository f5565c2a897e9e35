/*
 * test_xml_text.c - mpibind_set_topology_xml(): the topology from XML text
 * the caller holds, loaded with the step-0 filters and owned by the handle
 * (the text can go at once), mapped exactly as the same file is, judged by
 * mpibind_topology_check_system() as a file is; bad text refused with one
 * line.  And mpibind_apply_cpus(): binding to a list without a topology.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* The whole file, not NUL-terminated (the length says where it ends). */
static char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n);
  ck_assert_ptr_nonnull(buf);
  ck_assert_int_eq(fread(buf, 1, (size_t)n, f), n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static void one_line(mpibind_t *h, const char *word)
{
  const char *m = mpibind_get_error(h);
  ck_assert_msg(strstr(m, word), "message '%s' lacks '%s'", m, word);
  ck_assert_msg(!strchr(m, '\n'), "message not one line: %s", m);
}

START_TEST(same_mapping_as_the_file)
{
  static const char *const nodes[] = {"coral-lassen.xml", "eas-tioga.xml",
                                      "cts1-quartz-smt1.xml",
                                      "coral-lassen-hwloc1.xml"};
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    size_t len;
    char *xml = slurp(ut_path(nodes[i]), &len);
    mpibind_t *h = NULL, *f = ut_open(nodes[i]);
    ck_assert_int_eq(mpibind_init(&h), 0);
    ck_assert_msg(mpibind_set_topology_xml(h, xml, len) == 0, "%s: %s",
                  nodes[i], mpibind_get_error(h));
    free(xml); /* the handle keeps what it needs */
    ck_assert_ptr_null(mpibind_get_topology_file(h));
    for (int n = 1; n <= 4; n++) {
      ut_map(h, UT_IN(.ntasks = n));
      ut_map(f, UT_IN(.ntasks = n));
      for (int t = 0; t < n; t++) {
        ck_assert_str_eq(ut_cpus_str(h, t), ut_cpus_str(f, t));
        ck_assert_str_eq(ut_gpus_str(h, t), ut_gpus_str(f, t));
      }
    }
    mpibind_finalize(h);
    mpibind_finalize(f);
  }
}
END_TEST

START_TEST(bad_text_refused)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_xml(h, "", 0), -1);
  one_line(h, "0 bytes");
  ck_assert_int_eq(mpibind_set_topology_xml(h, "<topology>\0</topology>", 22),
                   -1);
  one_line(h, "NUL");
  const char junk[] = "not xml at all";
  ck_assert_int_eq(mpibind_set_topology_xml(h, junk, sizeof junk - 1), -1);
  one_line(h, "not a valid hwloc XML");
  size_t len;
  char *xml = slurp(ut_path("coral-lassen.xml"), &len);
  ck_assert_int_eq(mpibind_set_topology_xml(h, xml, len / 2), -1);
  one_line(h, "truncated");
  free(xml);
  ck_assert_int_eq(mpibind_set_topology_xml(NULL, junk, 3), -1);
  /* still usable, and NULL is the live machine again */
  ck_assert_int_eq(mpibind_set_topology_xml(h, NULL, 0), 0);
  ut_map(h, UT_IN(.ntasks = 1));
  mpibind_finalize(h);
}
END_TEST

START_TEST(judged_as_a_file)
{
  /* another machine's text: mapped, but not this system's */
  size_t len;
  char *xml = slurp(ut_path("coral-lassen.xml"), &len);
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_xml(h, xml, len), 0);
  free(xml);
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_topology_check_system(h), -1);
  one_line(h, "XML topology");
  ck_assert_int_eq(mpibind_apply(h, 0), -1);
  mpibind_finalize(h);

  /* this machine's, exported by hwloc: accepted, and binding works */
  hwloc_topology_t t;
  char *text = NULL;
  int tlen = 0;
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(t), 0);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  ck_assert_int_eq(hwloc_topology_export_xmlbuffer(t, &text, &tlen, 0), 0);
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_xml(h, text, strlen(text)), 0);
  hwloc_free_xmlbuffer(t, text);
  hwloc_topology_destroy(t);
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_msg(mpibind_topology_check_system(h) == 0, "%s",
                mpibind_get_error(h));
  ck_assert_msg(mpibind_apply(h, 0) == 0, "%s", mpibind_get_error(h));
  mpibind_finalize(h);
}
END_TEST

START_TEST(apply_cpus)
{
  cpu_set_t before, after;
  ck_assert_int_eq(sched_getaffinity(0, sizeof before, &before), 0);
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
    if (CPU_ISSET(c, &before))
      first = c;
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  char *list = ut_fmt("%d", first);
  ck_assert_msg(mpibind_apply_cpus(h, list) == 0, "%s", mpibind_get_error(h));
  ck_assert_int_eq(sched_getaffinity(0, sizeof after, &after), 0);
  ck_assert_int_eq(CPU_COUNT(&after), 1);
  ck_assert(CPU_ISSET(first, &after));
  ck_assert_int_eq(mpibind_apply_cpus(h, "abc"), -1);
  one_line(h, "'abc'");
  ck_assert_int_eq(mpibind_apply_cpus(h, ""), -1);
  one_line(h, "empty");
  ck_assert_int_eq(mpibind_apply_cpus(NULL, "0"), -1);
  ck_assert_int_eq(sched_setaffinity(0, sizeof before, &before), 0);
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("xml_text");
  TCase *tc = ut_tcase("xml_text");
  tcase_add_test(tc, same_mapping_as_the_file);
  tcase_add_test(tc, bad_text_refused);
  tcase_add_test(tc, judged_as_a_file);
  tcase_add_test(tc, apply_cpus);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
