/*
 * openmp.c - the OpenMP runtime already loaded in the process, seen through
 * the standard omp_* API only (GNU libgomp, LLVM libomp, vendors' ones).
 *
 * Why: GNU libgomp reads OMP_PLACES and OMP_PROC_BIND in its constructor,
 * before the preload's, and builds its places from the CPUs the process
 * had at launch; LLVM libomp reads them at first use, unless a library
 * initialized it earlier.  Only the runtime can say which values it took:
 * omp_get_proc_bind(), omp_get_num_places() and the places' CPUs.
 * (With LLVM libomp these calls are its first use: it then reads the
 * variables the preload has just exported, and is not stale.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "mb_text.h"
#include "openmp.h"

static void *omp_fn(const char *name) { return dlsym(RTLD_DEFAULT, name); }

/* OMP_PROC_BIND asks for binding unless unset, empty or "false" (its first
 * item: the value may be a list, one per nesting level). */
static int asks_binding(const char *v) {
  size_t len;
  if (v == NULL)
    return 0;
  while (mb_ascii_space((unsigned char)*v))
    v++;
  len = strcspn(v, ", \t");
  return len > 0 && !(len == 5 && mb_ascii_caseeq(v, "false", 5));
}

int mpibind_auto_omp_loaded(void) {
  return omp_fn("omp_get_num_places") != NULL &&
         omp_fn("omp_get_proc_bind") != NULL;
}

const char *mpibind_auto_omp_stale(const struct mpibind_auto_cpuset *task_cpus,
                                   int *outside) {
  int (*proc_bind)(void) = (int (*)(void))omp_fn("omp_get_proc_bind");
  int (*num_places)(void) = (int (*)(void))omp_fn("omp_get_num_places");
  int (*place_nprocs)(int) = (int (*)(int))omp_fn("omp_get_place_num_procs");
  void (*place_ids)(int, int *) =
      (void (*)(int, int *))omp_fn("omp_get_place_proc_ids");
  const char *places = getenv("OMP_PLACES");
  const char *why = NULL;
  struct mpibind_auto_cpuset all = MPIBIND_AUTO_CPUSET_INIT;
  int n, unknown = 0;

  *outside = 0;
  if (proc_bind == NULL || num_places == NULL)
    return NULL; /* no OpenMP runtime in the process (or a pre-4.5 one) */
  if (asks_binding(getenv("OMP_PROC_BIND")) && proc_bind() == 0)
    return "its threads are not bound (omp_get_proc_bind() is false)";
  if (places == NULL || places[strspn(places, " \t")] == '\0')
    return NULL;
  n = num_places();
  if (n <= 0)
    return "it has no places (omp_get_num_places() is 0)";
  if (place_nprocs == NULL || place_ids == NULL)
    return NULL;
  for (int p = 0; p < n && !unknown; p++) {
    int k = place_nprocs(p);
    int *ids = k > 0 ? calloc((size_t)k, sizeof *ids) : NULL;
    if (ids == NULL)
      continue;
    place_ids(p, ids);
    for (int i = 0; i < k; i++)
      if (ids[i] >= 0 && mpibind_auto_cpuset_set(&all, (unsigned)ids[i]) != 0)
        unknown = 1; /* out of memory: nothing can be said */
    free(ids);
  }
  if (unknown)
    why = NULL;
  else if (!mpibind_auto_cpuset_included(&all, task_cpus)) {
    why = "its places hold CPUs outside the task's";
    *outside = 1;
  }
  else if (strchr(places, '{') == NULL &&
           !mpibind_auto_cpuset_equal(&all, task_cpus))
    /* an abstract name (threads, cores, ...) covers the whole task */
    why = "its places do not cover the task's CPUs";
  mpibind_auto_cpuset_free(&all);
  return why;
}

void mpibind_auto_omp_set_num_threads(int n) {
  void (*set)(int) = (void (*)(int))omp_fn("omp_set_num_threads");
  if (set && n > 0)
    set(n);
}
