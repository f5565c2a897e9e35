/*
 * restart_probe - what a program linked with an OpenMP runtime (GNU
 * libgomp reads OMP_* in its constructor, before the preload's) sees
 * after the preload: the arguments its main() got, the CPUs of each of
 * its OpenMP threads, the runtime's places, and its mpibind variables.
 * One JSON line on stdout:
 *   {"argv": [...], "pid": N, "num_places": N,
 *    "threads": [[cpu, ...], ...] (by thread number),
 *    "applied": "<MPIBIND_APPLIED or null>",
 *    "omp_num_threads": "<OMP_NUM_THREADS or null>"}
 * (test_hostile.py: the restart for a stale runtime, G10 and G13).
 */
#define _GNU_SOURCE
#include <omp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_CPUS 4096

static void json_string(const char *s) {
  if (s == NULL) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  int n = omp_get_max_threads();
  cpu_set_t *sets = calloc((size_t)n, sizeof *sets);
  if (sets == NULL)
    return 1;
#pragma omp parallel num_threads(n)
  {
    int t = omp_get_thread_num();
    if (t < n)
      sched_getaffinity(0, sizeof sets[t], &sets[t]);
  }
  printf("{\"argv\": [");
  for (int i = 0; i < argc; i++) {
    if (i)
      printf(", ");
    json_string(argv[i]);
  }
  printf("], \"pid\": %ld, \"num_places\": %d, \"threads\": [", (long)getpid(),
         omp_get_num_places());
  for (int t = 0; t < n; t++) {
    printf("%s[", t ? ", " : "");
    for (int c = 0, k = 0; c < MAX_CPUS && c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &sets[t]))
        printf("%s%d", k++ ? ", " : "", c);
    printf("]");
  }
  printf("], \"applied\": ");
  json_string(getenv("MPIBIND_APPLIED"));
  printf(", \"omp_num_threads\": ");
  json_string(getenv("OMP_NUM_THREADS"));
  printf("}\n");
  free(sets);
  return 0;
}
