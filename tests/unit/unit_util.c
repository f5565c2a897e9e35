/* unit_util.c - see unit_util.h. */
#define _GNU_SOURCE
#include "unit_util.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The strings handed out since the test started (see ut_keep). */
static void **kept;
static size_t nkept, capkept;

void *ut_keep(void *p)
{
  if (nkept == capkept) {
    capkept = capkept ? 2 * capkept : 64;
    kept = realloc(kept, capkept * sizeof *kept);
    ck_assert_ptr_nonnull(kept);
  }
  kept[nkept++] = p;
  return p;
}

/* The directories made since the test started (see ut_tmpdir). */
static char **dirs;
static size_t ndirs, capdirs;

char *ut_tmpdir(void)
{
  char tmpl[] = "/tmp/mpibind-unit-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(tmpl));
  if (ndirs == capdirs) {
    capdirs = capdirs ? 2 * capdirs : 4;
    dirs = realloc(dirs, capdirs * sizeof *dirs);
    ck_assert_ptr_nonnull(dirs);
  }
  char *dir = ut_keep(strdup(tmpl));
  ck_assert_ptr_nonnull(dir);
  dirs[ndirs++] = dir;
  return dir;
}

void ut_free_all(void)
{
  for (size_t i = 0; i < ndirs; i++) {
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", dirs[i]) >= 0)
      (void)!system(cmd);
    free(cmd);
  }
  free(dirs);
  dirs = NULL;
  ndirs = capdirs = 0;
  for (size_t i = 0; i < nkept; i++)
    free(kept[i]);
  free(kept);
  kept = NULL;
  nkept = capkept = 0;
}

TCase *ut_tcase(const char *name)
{
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, NULL, ut_free_all);
  return tc;
}

char *ut_fmt(const char *fmt, ...)
{
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  ck_assert_int_ge(vasprintf(&s, fmt, ap), 0);
  va_end(ap);
  return ut_keep(s);
}

char *ut_path(const char *name)
{
  if (strchr(name, '/'))
    return ut_keep(strdup(name));
  const char *dirs[] = {getenv("TOPOLOGIES"), getenv("UNIT_XML"),
                        getenv("CASES")};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    if (!dirs[i])
      continue;
    char *p = ut_fmt("%s/%s", dirs[i], name);
    if (access(p, R_OK) == 0)
      return p;
  }
  ck_abort_msg("topology %s not found in $TOPOLOGIES, $UNIT_XML or $CASES",
               name);
  return NULL;
}

mpibind_t *ut_open(const char *name)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_ptr_nonnull(h);
  char *p = ut_path(name);
  int rc = mpibind_set_topology_file(h, p);
  ck_assert_msg(rc == 0, "mpibind_set_topology_file(%s): %s", p,
                mpibind_get_error(h));
  return h;
}

int ut_set(mpibind_t *h, ut_in in)
{
  if (mpibind_set_ntasks(h, in.ntasks) || mpibind_set_nthreads(h, in.nthreads) ||
      mpibind_set_greedy(h, in.greedy) || mpibind_set_gpu_optim(h, in.gpu_optim) ||
      mpibind_set_smt(h, in.smt) || mpibind_set_restrict_type(h, in.restrict_type) ||
      mpibind_set_restrict_ids(h, in.restrict_ids))
    return -1;
  return 0;
}

static char *in_str(ut_in in)
{
  return ut_fmt("ntasks %d nthreads %d greedy %d gpu_optim %d smt %d "
                "restrict %s %s", in.ntasks, in.nthreads, in.greedy,
                in.gpu_optim, in.smt, in.restrict_type ? "mem" : "cpu",
                in.restrict_ids ? in.restrict_ids : "(none)");
}

void ut_map(mpibind_t *h, ut_in in)
{
  int rc = ut_set(h, in);
  ck_assert_msg(rc == 0, "setting inputs (%s): %s", in_str(in),
                mpibind_get_error(h));
  rc = mpibind(h);
  ck_assert_msg(rc == 0, "mpibind(%s) failed: %s", in_str(in),
                mpibind_get_error(h));
}

const char *ut_map_fails(mpibind_t *h, ut_in in)
{
  int rc = ut_set(h, in);
  if (rc == 0) {
    rc = mpibind(h);
    ck_assert_msg(rc != 0, "mpibind(%s) succeeded, expected an error",
                  in_str(in));
  }
  ck_assert_int_eq(rc, -1);
  const char *msg = mpibind_get_error(h);
  ck_assert_ptr_nonnull(msg);
  ck_assert_msg(*msg, "empty error message for %s", in_str(in));
  ck_assert_msg(!strchr(msg, '\n'), "error message is not one line: %s", msg);
  return msg;
}

int ut_count(const char *list)
{
  int n = 1;
  for (const char *p = list; *p; p++)
    n += *p == ';';
  return n;
}

char *ut_item(const char *list, int i)
{
  if (ut_count(list) == 1)
    return ut_keep(strdup(list));
  const char *p = list;
  for (int k = 0; k < i; k++) {
    p = strchr(p, ';');
    ck_assert_ptr_nonnull(p);
    p++;
  }
  const char *e = strchr(p, ';');
  return ut_keep(strndup(p, e ? (size_t)(e - p) : strlen(p)));
}

char *ut_seq(int first, int last, int step, int width)
{
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  for (int x = first; x <= last; x += step)
    hwloc_bitmap_set_range(b, x, x + width - 1);
  char *s = NULL;
  hwloc_bitmap_list_asprintf(&s, b);
  hwloc_bitmap_free(b);
  return ut_keep(s);
}

char *ut_join(const char *sep, int n, char **items)
{
  size_t len = 1;
  for (int i = 0; i < n; i++)
    len += strlen(items[i]) + strlen(sep);
  char *s = calloc(1, len);
  for (int i = 0; i < n; i++) {
    if (i)
      strcat(s, sep);
    strcat(s, items[i]);
  }
  return ut_keep(s);
}

char *ut_gpus_str(mpibind_t *h, int task)
{
  int n = -1;
  char **ids = mpibind_get_gpus_ptask(h, task, &n);
  ck_assert_msg(n >= 0, "mpibind_get_gpus_ptask(%d): n %d: %s", task, n,
                mpibind_get_error(h));
  if (n > 0)
    ck_assert_ptr_nonnull(ids);
  if (ids)
    ck_assert_msg(ids[n] == NULL, "task %d: GPU id array not NULL-terminated",
                  task);
  return ut_join(",", n, ids);
}

char *ut_cpus_str(mpibind_t *h, int task)
{
  hwloc_bitmap_t *cpus = mpibind_get_cpus(h);
  ck_assert_ptr_nonnull(cpus);
  char *s = NULL;
  hwloc_bitmap_list_asprintf(&s, cpus[task]);
  return ut_keep(s);
}

/* The per-task int array must list exactly the bitmap's PUs, ascending. */
static void check_cpus_ptask(mpibind_t *h, int task, hwloc_const_bitmap_t b)
{
  int n = -1;
  int *a = mpibind_get_cpus_ptask(h, task, &n);
  ck_assert_int_eq(n, hwloc_bitmap_weight(b));
  if (n > 0)
    ck_assert_ptr_nonnull(a);
  int k = 0, id;
  hwloc_bitmap_foreach_begin(id, b) {
    ck_assert_msg(a[k] == id, "task %d: cpus_ptask[%d] = %d, expected %d",
                  task, k, a[k], id);
    k++;
  }
  hwloc_bitmap_foreach_end();
}

/* Splits a ';' list into n items (a single item is repeated). */
static char **items(const char *list, int n)
{
  char **v = calloc(n, sizeof *v);
  if (ut_count(list) == 1) {
    for (int i = 0; i < n; i++)
      v[i] = (char *)list;
    return v;
  }
  char *p = ut_keep(strdup(list)); /* the items point into it */
  for (int i = 0; i < n; i++) {
    char *e = strchr(p, ';');
    if (e)
      *e = '\0';
    v[i] = p;
    p = e ? e + 1 : p + strlen(p);
  }
  return v;
}

void ut_expect(mpibind_t *h, const char *nthreads, const char *cpus,
               const char *gpus)
{
  int ntasks = mpibind_get_ntasks(h);
  int *nth = mpibind_get_nthreads(h);
  hwloc_bitmap_t *cs = mpibind_get_cpus(h);
  ck_assert_ptr_nonnull(nth);
  ck_assert_ptr_nonnull(cs);
  if (ut_count(nthreads) > 1)
    ck_assert_int_eq(ut_count(nthreads), ntasks);
  ck_assert_int_eq(ut_count(cpus), ntasks);
  if (gpus && ut_count(gpus) > 1)
    ck_assert_int_eq(ut_count(gpus), ntasks);
  char **nv = items(nthreads, ntasks), **cv = items(cpus, ntasks);
  char **gv = items(gpus ? gpus : "", ntasks);

  hwloc_bitmap_t want = hwloc_bitmap_alloc();
  for (int i = 0; i < ntasks; i++) {
    int t = atoi(nv[i]);
    ck_assert_msg(nth[i] == t, "task %d: nthreads %d, expected %d", i,
                  nth[i], t);
    ck_assert_int_eq(hwloc_bitmap_list_sscanf(want, cv[i]), 0);
    ck_assert_msg(hwloc_bitmap_isequal(want, cs[i]),
                  "task %d: cpus %s, expected %s", i, ut_cpus_str(h, i), cv[i]);
    check_cpus_ptask(h, i, cs[i]);
    char *got = ut_gpus_str(h, i);
    ck_assert_msg(strcmp(gv[i], got) == 0, "task %d: gpus '%s', expected '%s'",
                  i, got, gv[i]);
  }
  hwloc_bitmap_free(want);
  free(nv);
  free(cv);
  free(gv);
}

int ut_run(Suite *s)
{
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Adds dir's *.xml files to *files; returns how many it added. */
static int add_xml_files(const char *dir, char ***files, int *n)
{
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int added = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".xml") == 0) {
      *files = realloc(*files, (*n + 1) * sizeof **files);
      /* not ut_fmt: no Check assertion outside a test */
      if (!*files || asprintf(&(*files)[(*n)++], "%s/%s", dir, e->d_name) < 0)
        abort();
      added++;
    }
  }
  closedir(d);
  return added;
}

static int cmp_paths(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

char **ut_topology_files(int *n)
{
  const char *topo = getenv("TOPOLOGIES"), *unit = getenv("UNIT_XML");
  char **files = NULL;
  *n = 0;
  if (!topo || !unit) {
    fprintf(stderr, "TOPOLOGIES and UNIT_XML must be set (run through meson test)\n");
    return NULL;
  }
  if (add_xml_files(topo, &files, n) == 0 || add_xml_files(unit, &files, n) == 0) {
    fprintf(stderr, "no topology file in %s or in %s\n", topo, unit);
    ut_files_free(files, *n);
    *n = 0;
    return NULL;
  }
  qsort(files, *n, sizeof *files, cmp_paths);
  return files;
}

void ut_files_free(char **files, int n)
{
  for (int i = 0; i < n; i++)
    free(files[i]);
  free(files);
}
