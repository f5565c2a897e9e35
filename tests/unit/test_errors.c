/*
 * test_errors.c - a topology file that cannot be used (missing, empty,
 * truncated, not XML, not hwloc's XML, a directory) makes
 * mpibind_set_topology_file() fail at once with a one-line message naming
 * the path (mpibind.h); the handle stays usable.  Also: binding with a
 * file's topology that is not this machine fails with a message.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit_util.h"

static char *tmpdir;

static char *write_file(const char *name, const char *data, size_t len)
{
  char *p = ut_fmt("%s/%s", tmpdir, name);
  FILE *f = fopen(p, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fwrite(data, 1, len, f), len);
  fclose(f);
  return p;
}

static void setup(void)
{
  tmpdir = ut_tmpdir();
}

/* The file is refused with a message naming it; the handle then takes a
 * good file and maps. */
static void refused(const char *path)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_file(h, path), -1);
  const char *m = mpibind_get_error(h);
  ck_assert_msg(strstr(m, path), "message '%s' does not name %s", m, path);
  ck_assert_msg(!strchr(m, '\n'), "message not one line: %s", m);
  char *good = ut_path("cts1-quartz-smt1.xml");
  ck_assert_int_eq(mpibind_set_topology_file(h, good), 0);
  ut_map(h, UT_IN(.ntasks = 3));
  ut_expect(h, "9;9;18", "0-8;9-17;18-35", NULL);
  mpibind_finalize(h);
}

START_TEST(missing)
{
  refused(ut_fmt("%s/no-such-topology.xml", tmpdir));
  refused("/nonexistent-dir/topo.xml");
}
END_TEST

START_TEST(empty)
{
  refused(write_file("empty.xml", "", 0));
}
END_TEST

START_TEST(truncated)
{
  char *src = ut_path("coral-lassen.xml");
  FILE *f = fopen(src, "r");
  ck_assert_ptr_nonnull(f);
  struct stat st;
  ck_assert_int_eq(stat(src, &st), 0);
  char *data = malloc(st.st_size);
  ck_assert_int_eq(fread(data, 1, st.st_size, f), (size_t)st.st_size);
  fclose(f);
  refused(write_file("half.xml", data, st.st_size / 2));
  refused(write_file("head.xml", data, 200));
  free(data);
}
END_TEST

START_TEST(not_xml)
{
  const char *text = "this is not an XML file\n0-3,8\n";
  refused(write_file("text.xml", text, strlen(text)));
  const unsigned char bin[] = {0x7f, 'E', 'L', 'F', 0, 1, 2, 3, 0xff, 0xfe};
  refused(write_file("binary.xml", (const char *)bin, sizeof bin));
}
END_TEST

START_TEST(not_hwloc_xml)
{
  const char *x = "<?xml version=\"1.0\"?>\n<html><body>hello</body></html>\n";
  refused(write_file("html.xml", x, strlen(x)));
  const char *t = "<?xml version=\"1.0\"?>\n<topology version=\"2.0\"></topology>\n";
  refused(write_file("notopo.xml", t, strlen(t)));
}
END_TEST

/* A file of hwloc 3 (XML format 3.0), which hwloc 2 refuses: the message
 * says so and how to export a file this hwloc reads, instead of calling
 * the file broken.  The real export, and a small valid file whose only
 * fault is its declared version. */
static void newer_format(const char *path)
{
  refused(path);
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_file(h, path), -1);
  const char *m = mpibind_get_error(h);
  ck_assert_msg(strstr(m, "newer hwloc") && strstr(m, "3.0") &&
                    strstr(m, "--export-xml-flags v2") &&
                    !strstr(m, "truncated"),
                "message does not name the newer format: %s", m);
  mpibind_finalize(h);
}

START_TEST(newer_hwloc)
{
  newer_format(ut_path("xml-v3.xml"));
  const char *t =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
      "<topology version=\"3.0\">\n"
      "  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\" "
      "complete_cpuset=\"0x1\" allowed_cpuset=\"0x1\" nodeset=\"0x1\" "
      "complete_nodeset=\"0x1\" allowed_nodeset=\"0x1\" gp_index=\"1\">\n"
      "    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "
      "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "
      "gp_index=\"2\"/>\n"
      "    <object type=\"PU\" os_index=\"0\" cpuset=\"0x1\" "
      "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "
      "gp_index=\"3\"/>\n"
      "  </object>\n"
      "</topology>\n";
  newer_format(write_file("v3.xml", t, strlen(t)));
  /* The same file declaring 2.0 loads: the version is the only fault. */
  char *v2 = ut_keep(strdup(t));
  memcpy(strstr(v2, "version=\"3.0\"") + 9, "2.0", 3);
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology_file(h, write_file("v2.xml", v2,
                                                            strlen(v2))), 0);
  mpibind_finalize(h);
}
END_TEST

START_TEST(directory)
{
  refused(tmpdir);
}
END_TEST

/* After a refused file the handle maps the topology set before, or fails
 * with a message (mpibind.h does not say which). */
START_TEST(failure_keeps_previous)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  char *bad = write_file("bad.xml", "junk", 4);
  ck_assert_int_eq(mpibind_set_topology_file(h, bad), -1);
  /* either the previous (lassen) topology or an error, never a crash */
  if (ut_set(h, UT_IN(.ntasks = 1)) == 0 && mpibind(h) == 0)
    ut_expect(h, "160", "8-87,96-175", "0,1,2,3");
  else
    ck_assert_str_ne(mpibind_get_error(h), "");
  mpibind_finalize(h);
}
END_TEST

/* A file that does not describe this machine cannot be applied. */
START_TEST(apply_foreign_topology)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  ut_map(h, UT_IN(.ntasks = 2));
  ck_assert_int_eq(mpibind_topology_check_system(h), -1);
  ck_assert_str_ne(mpibind_get_error(h), "");
  ck_assert_int_eq(mpibind_apply(h, 0), -1);
  ck_assert_str_ne(mpibind_get_error(h), "");
  mpibind_finalize(h);
}
END_TEST

/* The live machine maps and applies (a forked test process binds
 * itself to all its CPUs: harmless). */
START_TEST(live_machine)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_int_eq(mpibind_topology_check_system(h), 0);
  ck_assert_msg(mpibind_apply(h, 0) == 0, "%s", mpibind_get_error(h));
  hwloc_bitmap_t *c = mpibind_get_cpus(h);
  ck_assert(!hwloc_bitmap_iszero(c[0]));
  mpibind_finalize(h);
}
END_TEST

/* A file exported from this machine (with mpibind's filters) matches it:
 * the check passes and the mapping can be applied. */
START_TEST(apply_matching_file)
{
  hwloc_topology_t t;
  ck_assert_int_eq(hwloc_topology_init(&t), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(t), 0);
  ck_assert_int_eq(hwloc_topology_load(t), 0);
  char *path = ut_fmt("%s/this-machine.xml", tmpdir);
  ck_assert_int_eq(hwloc_topology_export_xml(t, path, 0), 0);
  hwloc_topology_destroy(t);
  mpibind_t *h = ut_open(path);
  ut_map(h, UT_IN(.ntasks = 1));
  ck_assert_msg(mpibind_topology_check_system(h) == 0, "%s", mpibind_get_error(h));
  ck_assert_msg(mpibind_apply(h, 0) == 0, "%s", mpibind_get_error(h));
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("errors");
  TCase *tc = ut_tcase("topology_file"); /* ut_free_all removes tmpdir */
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, missing);
  tcase_add_test(tc, empty);
  tcase_add_test(tc, truncated);
  tcase_add_test(tc, not_xml);
  tcase_add_test(tc, not_hwloc_xml);
  tcase_add_test(tc, directory);
  tcase_add_test(tc, newer_hwloc);
  tcase_add_test(tc, failure_keeps_previous);
  tcase_add_test(tc, apply_foreign_topology);
  tcase_add_test(tc, live_machine);
  tcase_add_test(tc, apply_matching_file);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
