/*
 * test_draw.c - mpibind_draw() (mpibind.h): the error convention (NULL
 * handle, no mapping yet, a file name without a known format, no renderer:
 * -1 and a message naming the file, nothing left behind) and the annotated
 * topology (.xml, no renderer needed): each task's PUs carry one
 * lstopoStyle of their own, a key box (Misc "task i") and a legend line
 * per task; the caller's topology is neither modified nor its userdata
 * touched.  Pictures themselves are checked in tests/cli/test_draw.py.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit_util.h"

static char *tmpdir;

static void setup(void)
{
  tmpdir = ut_tmpdir();
}

static int files_in(const char *dir)
{
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

START_TEST(errors)
{
  ck_assert_int_eq(mpibind_draw(NULL, "x.svg"), -1);

  mpibind_t *h = ut_open("coral-lassen.xml");
  char *path = ut_fmt("%s/m.svg", tmpdir);
  ck_assert_int_eq(mpibind_draw(h, path), -1);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "mpibind()"));

  ut_map(h, UT_IN(.ntasks = 4));
  char *jpg = ut_fmt("%s/m.jpg", tmpdir);
  ck_assert_int_eq(mpibind_draw(h, jpg), -1);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), jpg));
  ck_assert_int_eq(mpibind_draw(h, NULL), -1);
  ck_assert_int_eq(mpibind_draw(h, ""), -1);

  /* No renderer: the message says so, and no file (not even a
   * temporary one) is left. */
  char *saved = ut_keep(strdup(getenv("PATH") ? getenv("PATH") : ""));
  setenv("PATH", tmpdir, 1);
  ck_assert_int_eq(mpibind_draw(h, path), -1);
  setenv("PATH", saved, 1);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "no renderer"));
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), path));
  ck_assert_int_eq(files_in(tmpdir), 0);

  char *nodir = ut_fmt("%s/no-such-dir/m.xml", tmpdir);
  ck_assert_int_eq(mpibind_draw(h, nodir), -1);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "cannot write"));
  mpibind_finalize(h);
}
END_TEST

/* The lstopoStyle of PU os_index in t, or NULL. */
static const char *pu_style(hwloc_topology_t t, unsigned os_index)
{
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t, os_index);
  ck_assert_ptr_nonnull(pu);
  return hwloc_obj_get_info_by_name(pu, "lstopoStyle");
}

START_TEST(annotated_xml)
{
  /* The caller's topology, with userdata of its own on every PU. */
  hwloc_topology_t mine;
  ck_assert_int_eq(hwloc_topology_init(&mine), 0);
  ck_assert_int_eq(mpibind_topology_load_filters(mine), 0);
  ck_assert_int_eq(hwloc_topology_set_xml(mine, ut_path("coral-lassen.xml")),
                   0);
  ck_assert_int_eq(hwloc_topology_load(mine), 0);
  static int marker;
  hwloc_obj_t pu = NULL;
  while ((pu = hwloc_get_next_obj_by_type(mine, HWLOC_OBJ_PU, pu)) != NULL)
    pu->userdata = &marker;

  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_set_topology(h, mine), 0);
  ut_map(h, UT_IN(.ntasks = 2));
  char *xml = ut_fmt("%s/m.xml", tmpdir);
  ck_assert_msg(mpibind_draw(h, xml) == 0, "%s", mpibind_get_error(h));
  ck_assert_int_eq(files_in(tmpdir), 1);

  hwloc_topology_t drawn;
  ck_assert_int_eq(hwloc_topology_init(&drawn), 0);
  ck_assert_int_eq(
      hwloc_topology_set_all_types_filter(drawn, HWLOC_TYPE_FILTER_KEEP_ALL),
      0);
  ck_assert_int_eq(hwloc_topology_set_xml(drawn, xml), 0);
  ck_assert_int_eq(hwloc_topology_load(drawn), 0);

  /* Task 0: 8,12,...,84; task 1: 96,...,172 (docs/algorithm.md, Lassen
   * with 2 tasks: one package each, one PU per core). */
  const char *s0 = pu_style(drawn, 8), *s1 = pu_style(drawn, 96);
  ck_assert_ptr_nonnull(s0);
  ck_assert_ptr_nonnull(s1);
  ck_assert_str_ne(s0, s1);
  for (unsigned c = 8; c <= 84; c += 4)
    ck_assert_str_eq(pu_style(drawn, c), s0);
  for (unsigned c = 96; c <= 172; c += 4)
    ck_assert_str_eq(pu_style(drawn, c), s1);
  ck_assert_ptr_null(pu_style(drawn, 9));

  hwloc_obj_t root = hwloc_get_root_obj(drawn);
  int legend = 0, keys = 0;
  for (unsigned i = 0; i < root->infos_count; i++)
    legend += strcmp(root->infos[i].name, "lstopoLegend") == 0;
  for (hwloc_obj_t m = root->misc_first_child; m; m = m->next_sibling)
    keys += m->name && strncmp(m->name, "task ", 5) == 0;
  ck_assert_int_eq(legend, 3);
  ck_assert_int_eq(keys, 2);
  hwloc_topology_destroy(drawn);

  /* The caller's topology is as it was. */
  pu = NULL;
  while ((pu = hwloc_get_next_obj_by_type(mine, HWLOC_OBJ_PU, pu)) != NULL) {
    ck_assert_ptr_eq(pu->userdata, &marker);
    ck_assert_ptr_null(hwloc_obj_get_info_by_name(pu, "lstopoStyle"));
  }
  ck_assert_ptr_null(hwloc_get_root_obj(mine)->misc_first_child);
  mpibind_finalize(h);
  hwloc_topology_destroy(mine);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("draw");
  TCase *tc = ut_tcase("draw"); /* ut_free_all removes tmpdir */
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, errors);
  tcase_add_test(tc, annotated_xml);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
