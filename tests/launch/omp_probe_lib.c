/*
 * OpenMP placement probe (threads one per place, GNU libgomp too): what
 * the OpenMP runtime of a process
 * did with its threads.  No MPI: the preload binds it at load from the
 * launcher's variables.  Valid C and C++ (omp_probe.cpp includes it), built
 * into executables (gcc, g++, clang + LLVM libomp) and into a shared library
 * that a program without OpenMP links (omp_probe_main.c).
 *
 * Output: one line, "OMPPLACE " and a JSON object:
 *   lang            what was built (argument of omp_probe_report)
 *   cpus            Cpus_allowed_list of the process (/proc/self/status)
 *   max_threads     omp_get_max_threads() before the parallel region
 *   num_places      omp_get_num_places()
 *   proc_bind       omp_get_proc_bind() (0 false ... 4 spread)
 *   threads         for each OpenMP thread, by number, its own
 *                   sched_getaffinity() as a list of CPUs
 *   pid             getpid() (the re-exec keeps it)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omp_probe.h"

/* The calling thread's CPUs as "[a,b,...]" (malloc'ed); the mask grows
 * until the kernel accepts its size. */
static char *omp_probe_affinity(void)
{
  for (int n = 1024; n <= (1 << 24); n *= 2) {
    cpu_set_t *set = CPU_ALLOC(n);
    size_t size = CPU_ALLOC_SIZE(n);
    if (!set)
      return NULL;
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) != 0) {
      CPU_FREE(set);
      if (errno == EINVAL)
        continue;
      return NULL;
    }
    size_t cap = 16, len = 0;
    char *s = (char *)malloc(cap);
    if (!s) {
      CPU_FREE(set);
      return NULL;
    }
    s[len++] = '[';
    for (int c = 0; c < n; c++) {
      if (!CPU_ISSET_S(c, size, set))
        continue;
      if (len + 16 > cap) {
        cap = 2 * cap + 16;
        char *t = (char *)realloc(s, cap);
        if (!t) {
          free(s);
          CPU_FREE(set);
          return NULL;
        }
        s = t;
      }
      len += (size_t)sprintf(s + len, "%s%d", s[len - 1] == '[' ? "" : ",", c);
    }
    s[len++] = ']';
    s[len] = '\0';
    CPU_FREE(set);
    return s;
  }
  return NULL;
}

static char *omp_probe_status_cpus(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char *line = NULL, *res = NULL;
  size_t cap = 0;
  if (!f)
    return NULL;
  while (getline(&line, &cap, f) >= 0)
    if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
      char *v = line + 18 + strspn(line + 18, " \t");
      v[strcspn(v, "\n")] = '\0';
      res = strdup(v);
      break;
    }
  free(line);
  fclose(f);
  return res;
}

int omp_probe_report(const char *lang)
{
  int max_threads = omp_get_max_threads();
  int nthreads = 0;
  char **aff = NULL;
#pragma omp parallel
  {
#pragma omp single
    {
      nthreads = omp_get_num_threads();
      aff = (char **)calloc((size_t)nthreads, sizeof *aff);
    }
    if (aff)
      aff[omp_get_thread_num()] = omp_probe_affinity();
  }
  if (!aff)
    return 2;
  char *cpus = omp_probe_status_cpus();
  size_t cap = 256 + strlen(lang) + (cpus ? strlen(cpus) : 0);
  for (int i = 0; i < nthreads; i++)
    cap += (aff[i] ? strlen(aff[i]) : 4) + 1;
  char *out = (char *)malloc(cap);
  if (!out)
    return 2;
  size_t len = (size_t)sprintf(out,
      "OMPPLACE {\"lang\":\"%s\",\"pid\":%ld,\"cpus\":\"%s\",\"max_threads\":%d,"
      "\"num_places\":%d,\"proc_bind\":%d,\"threads\":[",
      lang, (long)getpid(), cpus ? cpus : "", max_threads,
      omp_get_num_places(), (int)omp_get_proc_bind());
  for (int i = 0; i < nthreads; i++) {
    len += (size_t)sprintf(out + len, "%s%s", i ? "," : "", aff[i] ? aff[i] : "null");
    free(aff[i]);
  }
  len += (size_t)sprintf(out + len, "]}\n");
  for (size_t off = 0; off < len;) {
    ssize_t w = write(STDOUT_FILENO, out + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return 2;
    off += (size_t)w;
  }
  free(out);
  free(aff);
  free(cpus);
  return 0;
}
