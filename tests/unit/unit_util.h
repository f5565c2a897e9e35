/*
 * unit_util.h - helpers shared by the unit tests of libmpibind.
 *
 * Expected values in the tests come from docs/algorithm.md (its rules and its
 * worked examples) or from reading the topology files, never from the
 * library's own output.  These helpers only load a topology, set inputs
 * and compare results with such expectations.
 */
#ifndef UNIT_UTIL_H
#define UNIT_UTIL_H

#include <check.h>
#include <hwloc.h>
#include "mpibind.h"

/* Inputs of one mapping; UT_IN(.ntasks = 4, ...) starts from the defaults
 * of docs/algorithm.md. */
typedef struct {
  int ntasks, nthreads, greedy, gpu_optim, smt;
  const char *restrict_ids;
  int restrict_type;
} ut_in;
#define UT_IN(...)                                                      \
  ((ut_in){.ntasks = 1, .nthreads = 0, .greedy = 1, .gpu_optim = 1,     \
           .smt = 0, .restrict_ids = NULL,                              \
           .restrict_type = MPIBIND_RESTRICT_CPU, __VA_ARGS__})

/* Strings: every char * the helpers below return is kept (ut_keep) until
 * the end of the test and freed then by ut_free_all, the teardown of the
 * test cases made by ut_tcase: callers never free them.  Tests keep their
 * own malloc'd strings the same way. */
void *ut_keep(void *p);
void ut_free_all(void);
/* A new empty directory under /tmp, removed with what it holds by
 * ut_free_all (kept like the strings). */
char *ut_tmpdir(void);
/* tcase_create(name) with ut_free_all as checked teardown. */
TCase *ut_tcase(const char *name);

/* Path of a topology file: a name without '/' is looked up in $TOPOLOGIES
 * (the real machines of tests/data/topologies), then in $UNIT_XML (the small files of
 * tests/unit/xml), then in $CASES (tests/data/cases: real nodes of the
 * kinds that used to abort or map badly). */
char *ut_path(const char *name);

/* A new handle on the topology file name (see ut_path). */
mpibind_t *ut_open(const char *name);
/* Sets every input; returns 0 or the -1 of the first failing setter. */
int ut_set(mpibind_t *h, ut_in in);
/* Sets the inputs and maps; a failure fails the test with the message. */
void ut_map(mpibind_t *h, ut_in in);
/* Sets the inputs and maps, expecting a failure: returns the message. */
const char *ut_map_fails(mpibind_t *h, ut_in in);

/* Checks the mapping of h against per-task expectations, each a list of
 * per-task items separated by ';' (a single item applies to every task):
 *   nthreads: "9;9;18" or "10"
 *   cpus:     hwloc lists, "0-8;9-17;18-35"
 *   gpus:     the task's GPU IDs (current ID kind), comma-separated, in
 *             mapping order: "0,1;2,3"; "" for no GPU; NULL: no task has
 *             a GPU.
 * The number of ';' items must match ntasks (unless it is a single one). */
void ut_expect(mpibind_t *h, const char *nthreads, const char *cpus,
               const char *gpus);

/* printf into a new string. */
char *ut_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The hwloc list of: for x = first, first+step, ... <= last, the PUs
 * x .. x+width-1.  ut_seq(8, 84, 4, 1) = "8,12,...,84". */
char *ut_seq(int first, int last, int step, int width);
/* Joins n strings with sep. */
char *ut_join(const char *sep, int n, char **items);
/* Item i of a ';'-separated list (a single item is every item). */
char *ut_item(const char *list, int i);
/* Number of ';'-separated items. */
int ut_count(const char *list);

/* The task's GPU IDs (current kind) joined with ','. */
char *ut_gpus_str(mpibind_t *h, int task);
/* The task's cpus as a hwloc list, from mpibind_get_cpus(). */
char *ut_cpus_str(mpibind_t *h, int task);

/* A Check suite runner: runs s, returns the process exit status. */
int ut_run(Suite *s);

/* Every *.xml file of $TOPOLOGIES (tests/data/topologies, real machines) and $UNIT_XML
 * (this suite's), sorted by path; *n receives their number.  NULL, with a
 * message on stderr, when a directory is unset or holds none.  Free with
 * ut_files_free. */
char **ut_topology_files(int *n);
void ut_files_free(char **files, int n);

#endif
