/*
 * cpuset.h - a set of CPU (or NUMA node) OS indexes of any size, for the
 * code in the application's process, which has no hwloc: the job's CPUs,
 * a task's record, its binding and the kernel's mask, its memory nodes,
 * the OpenMP runtime's places.  libc only.
 *
 * Lists are hwloc's list syntax ("0-3,8", as hwloc_bitmap_list_asprintf
 * writes them and /sys/devices/system/cpu/online shows them); masks are
 * Linux's hex (taskset, Slurm's mask_cpu).  No fixed size: the set grows
 * to the largest index it holds (at most INT_MAX, the kernel's and
 * hwloc's int ids).
 *
 * A set starts as MPIBIND_AUTO_CPUSET_INIT (empty) and is released with
 * mpibind_auto_cpuset_free (then empty again).  Functions that can grow a
 * set return 0, or -1 when out of memory (or, for the parsers, on a
 * malformed text); the set is then left empty.
 */
#ifndef MPIBIND_AUTO_CPUSET_H
#define MPIBIND_AUTO_CPUSET_H

#include <stddef.h>
#include <sys/types.h>

struct mpibind_auto_cpuset {
  unsigned long *w; /* bit i is word i / bits-per-word */
  size_t nw;        /* words allocated */
};

#define MPIBIND_AUTO_CPUSET_INIT {NULL, 0}

void mpibind_auto_cpuset_free(struct mpibind_auto_cpuset *s);
void mpibind_auto_cpuset_zero(struct mpibind_auto_cpuset *s);
int mpibind_auto_cpuset_set(struct mpibind_auto_cpuset *s, unsigned id);
int mpibind_auto_cpuset_isset(const struct mpibind_auto_cpuset *s,
                              unsigned id);
/* The largest index, or -1 for an empty set. */
int mpibind_auto_cpuset_last(const struct mpibind_auto_cpuset *s);
int mpibind_auto_cpuset_weight(const struct mpibind_auto_cpuset *s);
int mpibind_auto_cpuset_iszero(const struct mpibind_auto_cpuset *s);
int mpibind_auto_cpuset_equal(const struct mpibind_auto_cpuset *a,
                              const struct mpibind_auto_cpuset *b);
/* 1 when every index of sub is in super. */
int mpibind_auto_cpuset_included(const struct mpibind_auto_cpuset *sub,
                                 const struct mpibind_auto_cpuset *super);
int mpibind_auto_cpuset_copy(struct mpibind_auto_cpuset *dst,
                             const struct mpibind_auto_cpuset *src);
/* dst |= src */
int mpibind_auto_cpuset_or(struct mpibind_auto_cpuset *dst,
                           const struct mpibind_auto_cpuset *src);
/* dst &= src */
void mpibind_auto_cpuset_and(struct mpibind_auto_cpuset *dst,
                             const struct mpibind_auto_cpuset *src);

/* s = the list ("" is the empty set): items N or N-M (N <= M), decimal
 * (the project's rule, mb_text.h), separated by commas, nothing else. */
int mpibind_auto_cpuset_parse_list(struct mpibind_auto_cpuset *s,
                                   const char *list);
/* The same, when every index of the list is in `within` (NULL: any); s
 * may be NULL (the list only checked).  Its cost is the list's length
 * and within's size, whatever the list's numbers: what a list read from
 * a file must satisfy before it is used (a huge index is refused before
 * anything is allocated). */
int mpibind_auto_cpuset_parse_list_within(
    struct mpibind_auto_cpuset *s, const char *list,
    const struct mpibind_auto_cpuset *within);
/* s = the hex mask ("0x" optional, hex digits only, at least one). */
int mpibind_auto_cpuset_parse_mask(struct mpibind_auto_cpuset *s,
                                   const char *mask);
/* The set as a list (malloc'ed; "" for the empty set), NULL out of
 * memory. */
char *mpibind_auto_cpuset_list(const struct mpibind_auto_cpuset *s);

/* s = a kernel bit mask (an array of unsigned long, bit i in word i /
 * bits-per-word: CPU and memory masks alike), which read(w, nw, ctx)
 * writes into nw zeroed words, 0 or -1 with errno (EINVAL: too few words
 * for the kernel's mask, then more are given), whatever its size.  0, or
 * -1 with errno. */
int mpibind_auto_cpuset_read_mask(struct mpibind_auto_cpuset *s,
                                  int (*read)(unsigned long *w, size_t nw,
                                              void *ctx),
                                  void *ctx);
/* s = the affinity of thread/process `pid` (0: the calling thread),
 * whatever the size of the kernel's mask.  0, or -1 with errno. */
int mpibind_auto_cpuset_get_affinity(pid_t pid,
                                     struct mpibind_auto_cpuset *s);
/* Binds every thread of the process to s (mb_threads.h).  0, or -1 with
 * errno (EINVAL for an empty set). */
int mpibind_auto_cpuset_bind(const struct mpibind_auto_cpuset *s);

#endif
