/*
 * test_original_suite.c - the original mpibind's own test suite, run
 * against this library: every case of its expected files
 * (tests/data/original-suite/expected.*, on the topology machines.tsv
 * names) is mapped and compared line by line (threads, CPUs, GPUs) with
 * the answer the original expects.  A difference must be listed in
 * differences.tsv with this library's answer and its reason: a rule under
 * "Beyond the original" in docs/algorithm.md ($ALGORITHM), named by its
 * title, or an expectation the original fails too.  A difference nobody
 * wrote down fails, and so does a listed one that no longer happens.
 *
 * The expected files' format is the original's (test-suite/README.md
 * there): per case a "# N:" line, a "# {"params": {...}}" line, the
 * description, then three quoted lines: threads, CPUs, GPUs, one item per
 * task separated by ';' (CPUs in hwloc list syntax, GPUs comma-separated).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

enum { THREADS, CPUS, GPUS, NFIELDS };
static const char *const field_names[NFIELDS] = {"threads", "cpus", "gpus"};

#define ALSO_FAILS "the original also fails this expectation"
#define BEYOND "Beyond the original: "

struct ocase {
  const char *machine, *topology, *description;
  int num;
  ut_in in;
  char *expected[NFIELDS];
};

struct difference {
  char *machine, *ours, *reason;
  int num, field;
};

static struct ocase *cases;
static int ncases;
static struct difference *diffs;
static int ndiffs;
static char **rules; /* the titles under "Beyond the original" */
static int nrules;

static void die(const char *what, const char *detail)
{
  fprintf(stderr, "test_original_suite: %s: %s\n", what, detail);
  exit(1);
}

static FILE *open_in(const char *dir, const char *name)
{
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0)
    die("out of memory", name);
  FILE *f = fopen(path, "r");
  if (!f)
    die("cannot read", path);
  free(path);
  return f;
}

/* The value of "key": in the params line: an int, null (*s NULL) or a
 * string (*s malloc'ed). */
static void param(const char *line, const char *key, int *i, char **s)
{
  char *pat = NULL;
  if (asprintf(&pat, "\"%s\":", key) < 0)
    die("out of memory", key);
  const char *p = strstr(line, pat);
  if (!p)
    die("params without", key);
  p += strlen(pat);
  while (*p == ' ')
    p++;
  if (s) {
    *s = NULL;
    if (*p == '"') {
      const char *e = strchr(p + 1, '"');
      if (!e)
        die("unterminated string in", line);
      *s = strndup(p + 1, (size_t)(e - p - 1));
    } else if (strncmp(p, "null", 4) != 0) {
      die("expected a string or null in", line);
    }
  } else {
    char *end;
    *i = (int)strtol(p, &end, 10);
    if (end == p)
      die("expected an integer in", line);
  }
  free(pat);
}

/* line without its trailing white space (some of the files' lines end
 * in a space). */
static char *chomp(char *line)
{
  size_t n = strlen(line);
  while (n > 0 && strchr(" \t\r\n", line[n - 1]))
    line[--n] = '\0';
  return line;
}

/* One expected file: its cases, on `topology`. */
static void load_expected(const char *dir, const char *file,
                          const char *topology)
{
  FILE *f = open_in(dir, file);
  const char *machine = strdup(strchr(file, '.') ? strchr(file, '.') + 1 : file);
  char *line = NULL;
  size_t cap = 0;
  struct ocase c = {0};
  int have_params = 0, k = -1; /* k: the lines after the params */
  while (getline(&line, &cap, f) > 0) {
    chomp(line);
    if (!*line)
      continue;
    if (line[0] == '#') {
      int n, end = 0;
      if (sscanf(line, "# %d:%n", &n, &end) == 1 && end > 0)
        c.num = n;
      else if (strstr(line, "\"params\"")) {
        c.in = UT_IN(.ntasks = 1);
        char *restr;
        param(line, "ntasks", &c.in.ntasks, NULL);
        param(line, "in_nthreads", &c.in.nthreads, NULL);
        param(line, "greedy", &c.in.greedy, NULL);
        param(line, "gpu_optim", &c.in.gpu_optim, NULL);
        param(line, "smt", &c.in.smt, NULL);
        param(line, "restrict_type", &c.in.restrict_type, NULL);
        param(line, "restr_set", NULL, &restr);
        c.in.restrict_ids = restr;
        have_params = 1;
        k = 0;
      }
      continue;
    }
    if (!have_params)
      die("a case line before its params", line);
    if (k == 0) {
      c.description = strdup(line);
    } else {
      size_t len = strlen(line);
      if (len < 2 || line[0] != '"' || line[len - 1] != '"')
        die("expected a quoted line", line);
      c.expected[k - 1] = strndup(line + 1, len - 2);
    }
    if (++k == 1 + NFIELDS) {
      c.machine = machine;
      c.topology = topology;
      cases = realloc(cases, (ncases + 1) * sizeof *cases);
      cases[ncases++] = c;
      memset(&c, 0, sizeof c);
      have_params = 0;
    }
  }
  if (have_params)
    die("a case without its three answers in", file);
  free(line);
  fclose(f);
}

/* The tab-separated fields of line, empty ones kept; returns how many. */
static int split_tabs(char *line, char **out, int max)
{
  int n = 0;
  for (char *p = line; n < max;) {
    out[n++] = p;
    char *t = strchr(p, '\t');
    if (!t)
      break;
    *t = '\0';
    p = t + 1;
  }
  return n;
}

static void load_suite(const char *dir)
{
  FILE *f = open_in(dir, "machines.tsv");
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    char *col[2];
    if (!*chomp(line) || line[0] == '#')
      continue;
    if (split_tabs(line, col, 2) != 2)
      die("machines.tsv: expected 'file<TAB>topology'", line);
    load_expected(dir, col[0], strdup(col[1]));
  }
  fclose(f);

  f = open_in(dir, "differences.tsv");
  while (getline(&line, &cap, f) > 0) {
    char *col[6];
    if (!*chomp(line) || line[0] == '#')
      continue;
    if (split_tabs(line, col, 6) != 6)
      die("differences.tsv: expected 6 columns", line);
    struct difference d = {strdup(col[0]), strdup(col[3]), strdup(col[4]),
                           atoi(col[1]), -1};
    for (int i = 0; i < NFIELDS; i++)
      if (strcmp(col[2], field_names[i]) == 0)
        d.field = i;
    if (d.field < 0)
      die("differences.tsv: field is not threads, cpus or gpus", line);
    diffs = realloc(diffs, (ndiffs + 1) * sizeof *diffs);
    diffs[ndiffs++] = d;
  }
  fclose(f);
  free(line);
}

/* The titles of the "###" sections under "## Beyond the original". */
static void load_rules(const char *path)
{
  FILE *f = path ? fopen(path, "r") : NULL;
  if (!f)
    die("cannot read ALGORITHM", path ? path : "(unset)");
  char *line = NULL;
  size_t cap = 0;
  int in = 0;
  while (getline(&line, &cap, f) > 0) {
    chomp(line);
    if (strncmp(line, "## ", 3) == 0)
      in = strncmp(line, "## Beyond the original", 22) == 0;
    else if (in && strncmp(line, "### ", 4) == 0) {
      rules = realloc(rules, (nrules + 1) * sizeof *rules);
      rules[nrules++] = strdup(line + 4);
    }
  }
  free(line);
  fclose(f);
}

static struct difference *listed(const struct ocase *c, int field)
{
  for (int i = 0; i < ndiffs; i++)
    if (strcmp(diffs[i].machine, c->machine) == 0 && diffs[i].num == c->num &&
        diffs[i].field == field)
      return &diffs[i];
  return NULL;
}

/* This library's answer to case c, in the expected files' format. */
static void answer(const struct ocase *c, char *ours[NFIELDS])
{
  mpibind_t *h = ut_open(c->topology);
  ut_map(h, c->in);
  int n = mpibind_get_ntasks(h);
  int *nth = mpibind_get_nthreads(h);
  ck_assert_ptr_nonnull(nth);
  char **items[NFIELDS];
  for (int f = 0; f < NFIELDS; f++)
    items[f] = ut_keep(calloc((size_t)n + 1, sizeof(char *)));
  for (int t = 0; t < n; t++) {
    items[THREADS][t] = ut_fmt("%d", nth[t]);
    items[CPUS][t] = ut_cpus_str(h, t);
    items[GPUS][t] = ut_gpus_str(h, t);
  }
  for (int f = 0; f < NFIELDS; f++)
    ours[f] = ut_join(";", n, items[f]);
  mpibind_finalize(h);
}

START_TEST(original_case)
{
  const struct ocase *c = &cases[_i];
  char *ours[NFIELDS];
  answer(c, ours);
  for (int f = 0; f < NFIELDS; f++) {
    const struct difference *d = listed(c, f);
    int differs = strcmp(ours[f], c->expected[f]) != 0;
    ck_assert_msg(!differs || d,
                  "%s case %d (%s), %s: expected '%s', ours '%s', a "
                  "difference not in differences.tsv",
                  c->machine, c->num, c->description, field_names[f],
                  c->expected[f], ours[f]);
    ck_assert_msg(!d || differs,
                  "%s case %d (%s), %s: listed in differences.tsv, but ours "
                  "is the expected answer '%s' now: remove the line",
                  c->machine, c->num, c->description, field_names[f],
                  ours[f]);
    ck_assert_msg(!d || strcmp(d->ours, ours[f]) == 0,
                  "%s case %d (%s), %s: differences.tsv says ours is '%s', "
                  "ours is '%s' (expected '%s')",
                  c->machine, c->num, c->description, field_names[f],
                  d ? d->ours : "", ours[f], c->expected[f]);
  }
}
END_TEST

/* Each listed difference names a case of the files and a reason that
 * names a rule of docs/algorithm.md, once. */
START_TEST(differences_are_well_formed)
{
  ck_assert_int_eq(ncases, 48); /* 4 machines, 12 cases each */
  for (int i = 0; i < ndiffs; i++) {
    const struct difference *d = &diffs[i];
    int found = 0;
    for (int k = 0; k < ncases; k++)
      found |= strcmp(cases[k].machine, d->machine) == 0 && cases[k].num == d->num;
    ck_assert_msg(found, "differences.tsv: %s case %d is no case of the "
                  "expected files", d->machine, d->num);
    for (int j = 0; j < i; j++)
      ck_assert_msg(strcmp(diffs[j].machine, d->machine) != 0 ||
                        diffs[j].num != d->num || diffs[j].field != d->field,
                    "differences.tsv: %s case %d %s listed twice", d->machine,
                    d->num, field_names[d->field]);
    int rule = strcmp(d->reason, ALSO_FAILS) == 0;
    if (strncmp(d->reason, BEYOND, strlen(BEYOND)) == 0)
      for (int r = 0; r < nrules; r++)
        rule |= strcmp(d->reason + strlen(BEYOND), rules[r]) == 0;
    ck_assert_msg(rule, "differences.tsv: %s case %d %s: reason '%s' is "
                  "neither '" BEYOND "<a title under \"Beyond the "
                  "original\" in docs/algorithm.md>' nor '" ALSO_FAILS "'",
                  d->machine, d->num, field_names[d->field], d->reason);
  }
}
END_TEST

int main(void)
{
  const char *dir = getenv("ORIGINAL_SUITE");
  if (!dir)
    die("ORIGINAL_SUITE", "unset (tests/data/original-suite)");
  load_suite(dir);
  load_rules(getenv("ALGORITHM"));
  Suite *s = suite_create("original_suite");
  TCase *tc = ut_tcase("original_suite");
  tcase_add_loop_test(tc, original_case, 0, ncases);
  tcase_add_test(tc, differences_are_well_formed);
  suite_add_tcase(s, tc);
  int rc = ut_run(s);
  printf("%d cases of the original's suite, %d listed differences\n",
         ncases, ndiffs);
  return rc;
}
