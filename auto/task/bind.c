/*
 * bind.c - a task bound to its share and checked (bind.h).
 *
 * Why the kernel's mask is read back: bound=1 and MPIBIND_APPLIED=1 must
 * never claim a binding the kernel does not have.  Why the CPUs are given
 * back after a failure: the one line that reports it says the task runs
 * unbound, and so it must.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "cpuset.h"
#include "membind.h"
#include "strdupf.h"

/* The task's memory on the NUMA node(s) `nodes` of its CPUs (`membind`):
 * strict (MPOL_BIND: allocations come from those nodes only), for the
 * calling thread and the threads it starts later (Linux memory policies
 * are per thread and survive exec; at load, the process has one thread). */
static int bind_memory(int local, const char *nodes, char **what,
                       char **msg) {
  int many = nodes && strpbrk(nodes, ",-") != NULL;
  char *why = NULL;
  if (mpibind_auto_bind_memory(nodes, &why) != 0) {
    *msg = mpibind_auto_strdupf("MPIBIND=membind: cannot bind task %d's "
                                "memory to NUMA node%s %s: %s",
                                local, many ? "s" : "",
                                nodes ? nodes : "(none)",
                                why ? why : "out of memory");
    free(why);
    return -1;
  }
  free(*what);
  *what = mpibind_auto_strdupf("memory of task %d bound to NUMA node%s %s",
                               local, many ? "s" : "", nodes);
  return 0;
}

/* The kernel's mask of the calling thread equals `want`.  0, or -1 with
 * *msg. */
static int check_kernel_mask(const char *who, const char *noun,
                             const char *cpus,
                             const struct mpibind_auto_cpuset *want,
                             char **msg) {
  struct mpibind_auto_cpuset got = MPIBIND_AUTO_CPUSET_INIT;
  int rc = -1;
  if (mpibind_auto_cpuset_get_affinity(0, &got) == 0 &&
      mpibind_auto_cpuset_equal(&got, want)) {
    rc = 0;
  } else {
    char *g = mpibind_auto_cpuset_list(&got);
    *msg = mpibind_auto_strdupf("%s was bound to %s %s but the kernel "
                                "reports CPUs %s",
                                who, noun, cpus, g ? g : "?");
    free(g);
  }
  mpibind_auto_cpuset_free(&got);
  return rc;
}

/* Every thread to the CPU list `cpus`, then the kernel's mask: the steps
 * unbind() undoes.  `who` and `noun` name them in messages ("task 3",
 * "CPUs"; "the shell", "the job's CPUs"). */
static int bind_and_check(const char *who, const char *noun,
                          const char *cpus, char **msg) {
  struct mpibind_auto_cpuset want = MPIBIND_AUTO_CPUSET_INIT;
  int rc = -1;
  if (cpus == NULL || mpibind_auto_cpuset_parse_list(&want, cpus) != 0 ||
      mpibind_auto_cpuset_iszero(&want))
    *msg = mpibind_auto_strdupf("cannot bind %s to %s '%s': expected PU OS "
                                "indexes such as 0-3,8",
                                who, noun, cpus ? cpus : "");
  else if (mpibind_auto_cpuset_bind(&want) != 0)
    /* threads may have been bound before one was refused */
    *msg = mpibind_auto_strdupf("cannot bind %s to %s %s: %s", who, noun,
                                cpus, strerror(errno));
  else
    rc = check_kernel_mask(who, noun, cpus, &want, msg);
  mpibind_auto_cpuset_free(&want);
  return rc;
}

/* A failure after binding: the CPUs the task had before, given back so
 * that the report's "running unbound" is true (all threads get the
 * calling thread's former mask; at load there is one thread). */
static void unbind(const struct mpibind_auto_cpuset *before, char **msg) {
  char *list, *m;
  if (mpibind_auto_cpuset_bind(before) == 0)
    return;
  list = mpibind_auto_cpuset_list(before);
  m = mpibind_auto_strdupf("%s (and its former CPUs %s could not be "
                           "restored: %s)", *msg ? *msg : "out of memory",
                           list ? list : "?", strerror(errno));
  free(list);
  if (m) {
    free(*msg);
    *msg = m;
  }
}

/* The CPUs the calling thread has, before binding: 0, or -1 with *msg. */
static int cpus_before(const char *who, struct mpibind_auto_cpuset *before,
                       char **msg) {
  if (mpibind_auto_cpuset_get_affinity(0, before) == 0)
    return 0;
  *msg = mpibind_auto_strdupf("cannot read %s's CPUs before binding it",
                              who);
  return -1;
}

int mpibind_auto_bind(const struct mpibind_auto_tuning *t, int local,
                      const struct mpibind_auto_share *s, char **mem_what,
                      char **msg) {
  struct mpibind_auto_cpuset before = MPIBIND_AUTO_CPUSET_INIT;
  char who[32];
  int rc = -1;
  mpibind_auto_snprintf(who, sizeof who, "task %d", local);
  if (cpus_before(who, &before, msg) == 0) {
    rc = bind_and_check(who, "CPUs", s->cpus, msg) == 0 &&
                 (!t->membind || bind_memory(local, s->mems, mem_what, msg) == 0)
             ? 0
             : -1;
    if (rc != 0)
      unbind(&before, msg);
  }
  mpibind_auto_cpuset_free(&before);
  return rc;
}

int mpibind_auto_bind_cpus(const char *who, const char *noun,
                           const char *cpus, char **msg) {
  struct mpibind_auto_cpuset before = MPIBIND_AUTO_CPUSET_INIT;
  int rc = -1;
  if (cpus_before(who, &before, msg) == 0 &&
      (rc = bind_and_check(who, noun, cpus, msg)) != 0)
    unbind(&before, msg);
  mpibind_auto_cpuset_free(&before);
  return rc;
}

void mpibind_auto_unbind(const struct mpibind_auto_tuning *t,
                         const struct mpibind_auto_cpuset *before,
                         char **msg) {
  if (t->membind && mpibind_auto_unbind_memory() != 0) {
    char *m = mpibind_auto_strdupf("%s (and its memory binding could not be "
                                   "undone: %s)",
                                   *msg ? *msg : "out of memory",
                                   strerror(errno));
    if (m) {
      free(*msg);
      *msg = m;
    }
  }
  unbind(before, msg);
}
