/*
 * test_examples.c - every worked example of docs/algorithm.md, read from
 * tests/data/worked-examples.tsv (path in $WORKED_EXAMPLES), the one copy
 * the C unit, Python and command suites share: the tables' rows with
 * their "..." expanded by the pattern each row states.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

/* The columns of the file, in order. */
enum { TOPO, NTASKS, NTHREADS, GREEDY, GPU_OPTIM, SMT, RESTRICT_IDS,
       RESTRICT_TYPE, EXP_NTHREADS, EXP_CPUS, EXP_GPUS, NCOLS };

struct example {
  char *col[NCOLS];
};

static struct example *examples;
static int nexamples;

/* Reads the file once (before the suite runs); a malformed row aborts. */
static void load_examples(void)
{
  const char *path = getenv("WORKED_EXAMPLES");
  FILE *f = path ? fopen(path, "r") : NULL;
  if (!f) {
    fprintf(stderr, "test_examples: cannot read WORKED_EXAMPLES '%s'\n",
            path ? path : "(unset)");
    exit(1);
  }
  char *line = NULL;
  size_t cap = 0;
  int header = 1;
  while (getline(&line, &cap, f) > 0) {
    line[strcspn(line, "\n")] = '\0';
    if (!*line || *line == '#')
      continue;
    if (header) { /* the column names */
      header = 0;
      continue;
    }
    examples = realloc(examples, (nexamples + 1) * sizeof(*examples));
    struct example *e = &examples[nexamples++];
    char *save = NULL, *copy = strdup(line);
    int c = 0;
    for (char *tok = strtok_r(copy, "\t", &save); tok && c < NCOLS;
         tok = strtok_r(NULL, "\t", &save))
      e->col[c++] = tok;
    if (c != NCOLS) {
      fprintf(stderr, "test_examples: row with %d columns: %s\n", c, line);
      exit(1);
    }
  }
  free(line);
  fclose(f);
}

static int given(const char *v) { return strcmp(v, "-") != 0; }

START_TEST(worked_example)
{
  struct example *e = &examples[_i];
  ut_in in = UT_IN(.ntasks = atoi(e->col[NTASKS]));
  if (given(e->col[NTHREADS]))
    in.nthreads = atoi(e->col[NTHREADS]);
  if (given(e->col[GREEDY]))
    in.greedy = atoi(e->col[GREEDY]);
  if (given(e->col[GPU_OPTIM]))
    in.gpu_optim = atoi(e->col[GPU_OPTIM]);
  if (given(e->col[SMT]))
    in.smt = atoi(e->col[SMT]);
  if (given(e->col[RESTRICT_IDS]))
    in.restrict_ids = e->col[RESTRICT_IDS];
  if (given(e->col[RESTRICT_TYPE]))
    in.restrict_type = strcmp(e->col[RESTRICT_TYPE], "mem") == 0
                           ? MPIBIND_RESTRICT_MEM
                           : MPIBIND_RESTRICT_CPU;
  mpibind_t *h = ut_open(e->col[TOPO]);
  ut_map(h, in);
  ut_expect(h, e->col[EXP_NTHREADS], e->col[EXP_CPUS],
            given(e->col[EXP_GPUS]) ? e->col[EXP_GPUS] : NULL);
  mpibind_finalize(h);
}
END_TEST

int main(void)
{
  load_examples();
  Suite *s = suite_create("examples");
  TCase *tc = ut_tcase("worked_examples");
  tcase_add_loop_test(tc, worked_example, 0, nexamples);
  suite_add_tcase(s, tc);
  int rc = ut_run(s);
  printf("%d worked examples\n", nexamples);
  return rc;
}
