/*
 * hello_affinity - an MPI+OpenMP "hello" that shows where each rank and each
 * of its threads really runs.  Nothing in it knows about mpibind: launched
 * with LD_PRELOAD=libmpibind-preload.so it shows the preload's work.
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The kernel's own view of this thread's CPUs (Cpus_allowed_list), so the
 * output does not depend on any library's notion of the binding. */
static void allowed_list(char *out, size_t size)
{
  char path[64], line[4096];
  snprintf(path, sizeof(path), "/proc/self/task/%ld/status",
           (long)gettid());
  snprintf(out, size, "?");
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
      char *v = line + 18;
      v += strspn(v, " \t");
      v[strcspn(v, "\n")] = '\0';
      snprintf(out, size, "%s", v);
    }
  fclose(f);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  char cpus[4096];
  allowed_list(cpus, sizeof(cpus));
  const char *gpus = getenv("CUDA_VISIBLE_DEVICES");
  char report[16384];
  int len = snprintf(report, sizeof(report),
                     "rank %d/%d: main thread on cpus %s (OpenMP binds it "
                     "to the first place), OpenMP threads %d, "
                     "CUDA_VISIBLE_DEVICES=%s\n",
                     rank, size, cpus, omp_get_max_threads(),
                     gpus ? gpus : "(unset)");

  /* Each OpenMP thread's CPUs, as the kernel has them; consecutive
   * threads with the same CPUs are shown as one line. */
  int nth = omp_get_max_threads();
  char(*mine)[256] = calloc(nth, sizeof(*mine));
  if (!mine)
    MPI_Abort(MPI_COMM_WORLD, 1);
#pragma omp parallel
  allowed_list(mine[omp_get_thread_num()], sizeof(*mine));
  for (int t = 0; t < nth && len >= 0 && (size_t)len < sizeof(report);) {
    int last = t;
    while (last + 1 < nth && strcmp(mine[last + 1], mine[t]) == 0)
      last++;
    if (last == t)
      len += snprintf(report + len, sizeof(report) - len,
                      "  rank %d thread %d: cpus %s\n", rank, t, mine[t]);
    else
      len += snprintf(report + len, sizeof(report) - len,
                      "  rank %d threads %d-%d: cpus %s\n", rank, t, last,
                      mine[t]);
    t = last + 1;
  }
  free(mine);
  /* Print in rank order so the output reads as a table. */
  for (int r = 0; r < size; r++) {
    if (r == rank) {
      fputs(report, stdout);
      fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return 0;
}
