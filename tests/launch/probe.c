/*
 * Launch probe: an MPI+OpenMP program that reports, after MPI_Init, what a
 * rank actually got, so that the launch tests can compare it with the
 * mapping.  It is built once per MPI (Open MPI and MPICH) from this source
 * and knows nothing of mpibind.
 *
 * Output: one line per rank on stdout, "PROBE " followed by a JSON object:
 *   rank, size, local_rank, local_size   world and node-local (shared-memory
 *                                        communicator) rank and size
 *   cpus            Cpus_allowed_list of /proc/self/status (the process)
 *   tasks           Cpus_allowed_list of every thread in /proc/self/task
 *                   (MPI libraries start helper threads inside MPI_Init)
 *   omp_max_threads omp_get_max_threads() before the parallel region
 *   omp_threads     for each OpenMP thread of a parallel region, by thread
 *                   number, its own sched_getaffinity() as a list of CPUs
 *   env             the variables the binding may set; null when unset
 * The line is written with a single write(2) so that ranks never interleave.
 *
 * Options: --init-thread calls MPI_Init_thread(MPI_THREAD_MULTIPLE) instead
 * of MPI_Init (the preload must catch both).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

static const char *env_names[] = {
  "OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
  "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK",
  "CUDA_DEVICE_ORDER", "MPIBIND_APPLIED",
};

/* A growable string: the report has no size limit. */
struct buf { char *s; size_t len, cap; };

static void die(const char *what)
{
  perror(what);
  exit(2);
}

static void bprintf(struct buf *b, const char *fmt, ...)
{
  if (!b->s) {
    b->cap = 256;
    b->s = malloc(b->cap);
    if (!b->s)
      die("malloc");
  }
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
      die("vsnprintf");
    if ((size_t)n < b->cap - b->len) {
      b->len += n;
      return;
    }
    b->cap = 2 * b->cap + n + 1;
    b->s = realloc(b->s, b->cap);
    if (!b->s)
      die("realloc");
  }
}

/* A JSON string literal, or null. */
static void bjson_str(struct buf *b, const char *v)
{
  if (!v) {
    bprintf(b, "null");
    return;
  }
  bprintf(b, "\"");
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\')
      bprintf(b, "\\%c", *p);
    else if (*p < 0x20)
      bprintf(b, "\\u%04x", *p);
    else
      bprintf(b, "%c", *p);
  }
  bprintf(b, "\"");
}

/* The value of "Cpus_allowed_list:" in a status file, malloc'ed, or NULL. */
static char *cpus_allowed_list(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *line = NULL, *res = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) >= 0) {
    if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
      char *v = line + 18;
      v += strspn(v, " \t");
      v[strcspn(v, "\n")] = '\0';
      res = strdup(v);
      break;
    }
  }
  free(line);
  fclose(f);
  return res;
}

/* The calling thread's affinity as a JSON array of CPU numbers.  The mask
 * grows until the kernel accepts its size (no guess at the CPU count). */
static char *thread_affinity_json(void)
{
  struct buf b = {0};
  for (int ncpus = 1024;; ncpus *= 2) {
    cpu_set_t *set = CPU_ALLOC(ncpus);
    size_t size = CPU_ALLOC_SIZE(ncpus);
    if (!set)
      die("CPU_ALLOC");
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) != 0) {
      CPU_FREE(set);
      if (errno == EINVAL && ncpus < (1 << 24))
        continue;
      die("sched_getaffinity");
    }
    bprintf(&b, "[");
    const char *sep = "";
    for (int c = 0; c < ncpus; c++) {
      if (CPU_ISSET_S(c, size, set)) {
        bprintf(&b, "%s%d", sep, c);
        sep = ",";
      }
    }
    bprintf(&b, "]");
    CPU_FREE(set);
    return b.s;
  }
}

/* {"tid": "list", ...} for every thread of the process. */
static void bjson_tasks(struct buf *b)
{
  DIR *d = opendir("/proc/self/task");
  if (!d)
    die("/proc/self/task");
  bprintf(b, "{");
  const char *sep = "";
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    struct buf path = {0};
    bprintf(&path, "/proc/self/task/%s/status", e->d_name);
    char *list = cpus_allowed_list(path.s);
    free(path.s);
    if (!list)      /* the thread ended meanwhile */
      continue;
    bprintf(b, "%s\"%s\":", sep, e->d_name);
    bjson_str(b, list);
    free(list);
    sep = ",";
  }
  closedir(d);
  bprintf(b, "}");
}

int main(int argc, char **argv)
{
  int init_thread = argc > 1 && strcmp(argv[1], "--init-thread") == 0;
  if (init_thread) {
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
      return 3;
  } else if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    return 3;
  }

  int rank, size, lrank, lsize;
  MPI_Comm node;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &lrank);
  MPI_Comm_size(node, &lsize);

  int max_threads = omp_get_max_threads();
  int nthreads = 0;
  char **taff = NULL;
#pragma omp parallel
  {
#pragma omp single
    {
      nthreads = omp_get_num_threads();
      taff = calloc(nthreads, sizeof *taff);
      if (!taff)
        die("calloc");
    }
    /* the implicit barrier of single makes taff visible to every thread */
    taff[omp_get_thread_num()] = thread_affinity_json();
  }

  struct buf b = {0};
  bprintf(&b, "PROBE {\"lang\":\"c\",\"init\":\"%s\",\"rank\":%d,\"size\":%d,"
          "\"local_rank\":%d,\"local_size\":%d,\"cpus\":",
          init_thread ? "MPI_Init_thread" : "MPI_Init", rank, size, lrank, lsize);
  char *cpus = cpus_allowed_list("/proc/self/status");
  bjson_str(&b, cpus);
  free(cpus);
  bprintf(&b, ",\"tasks\":");
  bjson_tasks(&b);
  bprintf(&b, ",\"omp_max_threads\":%d,\"omp_threads\":[", max_threads);
  for (int i = 0; i < nthreads; i++) {
    bprintf(&b, "%s%s", i ? "," : "", taff[i]);
    free(taff[i]);
  }
  free(taff);
  bprintf(&b, "],\"env\":{");
  for (size_t i = 0; i < sizeof env_names / sizeof *env_names; i++) {
    bprintf(&b, "%s\"%s\":", i ? "," : "", env_names[i]);
    bjson_str(&b, getenv(env_names[i]));
  }
  bprintf(&b, "}}\n");

  for (size_t off = 0; off < b.len;) {
    ssize_t n = write(STDOUT_FILENO, b.s + off, b.len - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("write");
    }
    off += n;
  }
  free(b.s);

  MPI_Comm_free(&node);
  MPI_Finalize();
  return 0;
}
