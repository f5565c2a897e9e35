/*
 * cpuset.c - sets of CPU or NUMA node indexes without hwloc (cpuset.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"
#include "mb_text.h"
#include "mb_threads.h"
#include "strdupf.h"

#define BITS (8 * sizeof(unsigned long))

void mpibind_auto_cpuset_free(struct mpibind_auto_cpuset *s) {
  free(s->w);
  s->w = NULL;
  s->nw = 0;
}

void mpibind_auto_cpuset_zero(struct mpibind_auto_cpuset *s) {
  if (s->nw)
    memset(s->w, 0, s->nw * sizeof *s->w);
}

/* Room for index id; -1 out of memory (the set is unchanged). */
static int grow(struct mpibind_auto_cpuset *s, unsigned id) {
  size_t need = (size_t)id / BITS + 1;
  if (need <= s->nw)
    return 0;
  size_t nw = s->nw ? s->nw : 1;
  while (nw < need)
    nw *= 2;
  unsigned long *w = realloc(s->w, nw * sizeof *w);
  if (w == NULL)
    return -1;
  memset(w + s->nw, 0, (nw - s->nw) * sizeof *w);
  s->w = w;
  s->nw = nw;
  return 0;
}

int mpibind_auto_cpuset_set(struct mpibind_auto_cpuset *s, unsigned id) {
  if (id > INT_MAX || grow(s, id) != 0)
    return -1;
  s->w[id / BITS] |= 1UL << (id % BITS);
  return 0;
}

int mpibind_auto_cpuset_isset(const struct mpibind_auto_cpuset *s,
                              unsigned id) {
  return (size_t)id / BITS < s->nw && (s->w[id / BITS] >> (id % BITS) & 1);
}

int mpibind_auto_cpuset_last(const struct mpibind_auto_cpuset *s) {
  for (size_t i = s->nw; i-- > 0;)
    if (s->w[i])
      return (int)(i * BITS + BITS - 1 - (size_t)__builtin_clzl(s->w[i]));
  return -1;
}

int mpibind_auto_cpuset_weight(const struct mpibind_auto_cpuset *s) {
  int n = 0;
  for (size_t i = 0; i < s->nw; i++)
    n += __builtin_popcountl(s->w[i]);
  return n;
}

int mpibind_auto_cpuset_iszero(const struct mpibind_auto_cpuset *s) {
  return mpibind_auto_cpuset_last(s) < 0;
}

/* Word i of s, 0 beyond its end. */
static unsigned long word(const struct mpibind_auto_cpuset *s, size_t i) {
  return i < s->nw ? s->w[i] : 0;
}

int mpibind_auto_cpuset_equal(const struct mpibind_auto_cpuset *a,
                              const struct mpibind_auto_cpuset *b) {
  size_t n = a->nw > b->nw ? a->nw : b->nw;
  for (size_t i = 0; i < n; i++)
    if (word(a, i) != word(b, i))
      return 0;
  return 1;
}

int mpibind_auto_cpuset_included(const struct mpibind_auto_cpuset *sub,
                                 const struct mpibind_auto_cpuset *super) {
  for (size_t i = 0; i < sub->nw; i++)
    if (sub->w[i] & ~word(super, i))
      return 0;
  return 1;
}

int mpibind_auto_cpuset_copy(struct mpibind_auto_cpuset *dst,
                             const struct mpibind_auto_cpuset *src) {
  mpibind_auto_cpuset_zero(dst);
  return mpibind_auto_cpuset_or(dst, src);
}

int mpibind_auto_cpuset_or(struct mpibind_auto_cpuset *dst,
                           const struct mpibind_auto_cpuset *src) {
  int last = mpibind_auto_cpuset_last(src);
  if (last < 0)
    return 0;
  if (grow(dst, (unsigned)last) != 0)
    return -1;
  for (size_t i = 0; i < src->nw; i++)
    dst->w[i] |= src->w[i];
  return 0;
}

void mpibind_auto_cpuset_and(struct mpibind_auto_cpuset *dst,
                             const struct mpibind_auto_cpuset *src) {
  for (size_t i = 0; i < dst->nw; i++)
    dst->w[i] &= word(src, i);
}

/* The decimal index at *p (its digits only), advancing *p past it. */
static int take_index(const char **p, unsigned *id) {
  long long v;
  if (mb_take_decimal(p, INT_MAX, &v) != 0)
    return -1;
  *id = (unsigned)v;
  return 0;
}

/* The items of a list into s (NULL: none), each index in `within`
 * (NULL: any).  A range is checked against within's last index before
 * anything else: its cost is the node's, never its numbers'. */
static int parse_items(struct mpibind_auto_cpuset *s, const char *p,
                       const struct mpibind_auto_cpuset *within) {
  int last = within ? mpibind_auto_cpuset_last(within) : INT_MAX;
  if (*p == '\0')
    return 0;
  for (;;) {
    unsigned a, b;
    if (take_index(&p, &a) != 0)
      return -1;
    b = a;
    if (*p == '-') {
      p++;
      if (take_index(&p, &b) != 0 || b < a)
        return -1;
    }
    if (within) {
      if (b > (unsigned)last)
        return -1;
      for (unsigned id = a; id <= b; id++)
        if (!mpibind_auto_cpuset_isset(within, id))
          return -1;
    }
    /* the last index first: one allocation for the whole range */
    if (s) {
      if (mpibind_auto_cpuset_set(s, b) != 0)
        return -1;
      for (unsigned id = a; id < b; id++)
        s->w[id / BITS] |= 1UL << (id % BITS);
    }
    if (*p == '\0')
      return 0;
    if (*p++ != ',')
      return -1;
  }
}

int mpibind_auto_cpuset_parse_list(struct mpibind_auto_cpuset *s,
                                   const char *list) {
  return mpibind_auto_cpuset_parse_list_within(s, list, NULL);
}

int mpibind_auto_cpuset_parse_list_within(
    struct mpibind_auto_cpuset *s, const char *list,
    const struct mpibind_auto_cpuset *within) {
  if (s)
    mpibind_auto_cpuset_zero(s);
  if (list == NULL || parse_items(s, list, within) != 0) {
    if (s)
      mpibind_auto_cpuset_zero(s);
    return -1;
  }
  return 0;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int mpibind_auto_cpuset_parse_mask(struct mpibind_auto_cpuset *s,
                                   const char *mask) {
  const char *digits = mask;
  size_t n;
  mpibind_auto_cpuset_zero(s);
  if (mask == NULL)
    return -1;
  if (strncmp(digits, "0x", 2) == 0 || strncmp(digits, "0X", 2) == 0)
    digits += 2;
  n = strlen(digits);
  if (n == 0)
    return -1;
  /* the last digit holds indexes 0-3 */
  for (size_t i = 0; i < n; i++) {
    int v = hex_value(digits[n - 1 - i]);
    if (v < 0 || (v && i * 4 + 3 > INT_MAX))
      goto bad;
    for (unsigned bit = 0; bit < 4; bit++)
      if ((v >> bit & 1) && mpibind_auto_cpuset_set(s, (unsigned)(i * 4 + bit)))
        goto bad;
  }
  return 0;
bad:
  mpibind_auto_cpuset_zero(s);
  return -1;
}

char *mpibind_auto_cpuset_list(const struct mpibind_auto_cpuset *s) {
  int last = mpibind_auto_cpuset_last(s);
  /* at most "a-b," per index run, each index below 11 digits */
  size_t cap = 1, len = 0;
  char *out;
  for (int id = 0; id <= last; id++)
    if (mpibind_auto_cpuset_isset(s, (unsigned)id) &&
        (id == 0 || !mpibind_auto_cpuset_isset(s, (unsigned)id - 1)))
      cap += 24;
  out = malloc(cap);
  if (out == NULL)
    return NULL;
  out[0] = '\0';
  for (int id = 0; id <= last; id++) {
    if (!mpibind_auto_cpuset_isset(s, (unsigned)id))
      continue;
    int end = id;
    while (end < last && mpibind_auto_cpuset_isset(s, (unsigned)end + 1))
      end++;
    if (len)
      out[len++] = ',';
    len += mpibind_auto_put_digits(out + len, (uintmax_t)id, 10);
    if (end > id) {
      out[len++] = '-';
      len += mpibind_auto_put_digits(out + len, (uintmax_t)end, 10);
    }
    out[len] = '\0';
    id = end;
  }
  return out;
}

/* The kernel's CPU and memory masks (sched_getaffinity(2),
 * sched_setaffinity(2), get_mempolicy(2)) are arrays of unsigned long,
 * bit i in word i / bits-per-word, as the set's own words: a set is read
 * into and bound from its words directly (a task pays no loop over every
 * bit of a 1024-CPU mask). */
int mpibind_auto_cpuset_read_mask(struct mpibind_auto_cpuset *s,
                                  int (*read)(unsigned long *w, size_t nw,
                                              void *ctx),
                                  void *ctx) {
  /* the kernel refuses a mask smaller than its own (EINVAL): grow */
  for (size_t nw = 1024 / BITS; nw <= ((size_t)INT_MAX + 1) / BITS;
       nw *= 2) {
    unsigned long *w = calloc(nw, sizeof *w);
    if (w == NULL)
      return -1;
    if (read(w, nw, ctx) != 0) {
      int e = errno;
      free(w);
      if (e == EINVAL)
        continue;
      errno = e;
      return -1;
    }
    free(s->w);
    s->w = w;
    s->nw = nw;
    return 0;
  }
  errno = EINVAL;
  return -1;
}

static int affinity_of(unsigned long *w, size_t nw, void *pid) {
  return sched_getaffinity(*(pid_t *)pid, nw * sizeof *w, (cpu_set_t *)w);
}

int mpibind_auto_cpuset_get_affinity(pid_t pid,
                                     struct mpibind_auto_cpuset *s) {
  return mpibind_auto_cpuset_read_mask(s, affinity_of, &pid);
}

int mpibind_auto_cpuset_bind(const struct mpibind_auto_cpuset *s) {
  int last = mpibind_auto_cpuset_last(s);
  if (last < 0) {
    errno = EINVAL;
    return -1;
  }
  return mb_bind_all_threads((const cpu_set_t *)s->w,
                             ((size_t)last / BITS + 1) * sizeof *s->w);
}
