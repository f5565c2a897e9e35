/*
 * test_error_kinds.c - the error convention of mpibind.h: every failure
 * has a kind besides its message, left in errno by the failing call and
 * kept by mpibind_get_errno() until the next failure (a successful call
 * does not clear it).  Also the version the library reports at run time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit_util.h"

/* The call failed with kind: -1, errno, the getter, a one-line message
 * naming what. */
#define FAILS_WITH(h, call, kind, what)                                      \
  do {                                                                       \
    errno = 0;                                                               \
    int rc_ = (call);                                                        \
    int e_ = errno;                                                          \
    ck_assert_msg(rc_ == -1, "%s succeeded", #call);                         \
    ck_assert_msg(e_ == (kind), "%s: errno %d (%s), expected %d (%s)",       \
                  #call, e_, strerror(e_), (kind), strerror(kind));          \
    ck_assert_int_eq(mpibind_get_errno(h), (kind));                          \
    const char *m_ = mpibind_get_error(h);                                   \
    ck_assert_msg(strstr(m_, (what)), "%s: message '%s' does not name '%s'", \
                  #call, m_, (what));                                        \
    ck_assert_msg(!strchr(m_, '\n'), "message not one line: %s", m_);        \
  } while (0)

START_TEST(no_failure_yet)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  ck_assert_int_eq(mpibind_get_errno(h), 0);
  ck_assert_str_eq(mpibind_get_error(h), "");
  mpibind_finalize(h);
}
END_TEST

START_TEST(bad_values_are_einval)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  FAILS_WITH(h, mpibind_set_ntasks(h, 0), EINVAL, "ntasks 0");
  FAILS_WITH(h, mpibind_set_greedy(h, 2), EINVAL, "greedy 2");
  FAILS_WITH(h, mpibind_set_restrict_ids(h, "0-3x"), EINVAL, "0-3x");
  FAILS_WITH(h, mpibind_set_gpu_ids(h, 99), EINVAL, "99");
  FAILS_WITH(h, mpibind_set_gpu_allocation(h, "NOT_A_VAR", "0"), EINVAL,
             "NOT_A_VAR");
  /* The kind stays after a successful call; errno is the caller's. */
  ck_assert_int_eq(mpibind_set_ntasks(h, 4), 0);
  ck_assert_int_eq(mpibind_get_errno(h), EINVAL);
  /* Inputs only the topology can judge: mpibind() fails with EINVAL. */
  ck_assert_int_eq(mpibind_set_smt(h, 5), 0); /* Lassen is SMT-4 */
  FAILS_WITH(h, mpibind(h), EINVAL, "smt 5");
  ck_assert_int_eq(mpibind_set_smt(h, 0), 0);
  ck_assert_int_eq(mpibind_set_restrict_ids(h, "1000-1010"), 0);
  FAILS_WITH(h, mpibind(h), EINVAL, "1000-1010");
  mpibind_finalize(h);
}
END_TEST

/* The same bad allocation entry is the same kind whatever else is set:
 * the kind comes from the failure, not from guessing which input it was. */
START_TEST(bad_gpu_allocation_entry)
{
  for (int smt = 0; smt <= 2; smt += 2) {
    mpibind_t *h = ut_open("coral-lassen.xml");
    ck_assert_int_eq(mpibind_set_ntasks(h, 4), 0);
    ck_assert_int_eq(mpibind_set_smt(h, smt), 0);
    ck_assert_int_eq(
        mpibind_set_gpu_allocation(h, "CUDA_VISIBLE_DEVICES", "0,7"), 0);
    FAILS_WITH(h, mpibind(h), EINVAL, "'7'");
    mpibind_finalize(h);
  }
}
END_TEST

START_TEST(null_handle_is_einval)
{
  int n;
  errno = 0;
  ck_assert_int_eq(mpibind_set_ntasks(NULL, 1), -1);
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(mpibind_get_cpus(NULL));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_ptr_null(mpibind_get_env_var_names(NULL, &n));
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_int_eq(mpibind(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  errno = 0;
  ck_assert_int_eq(mpibind_set_topology_file(NULL, "x"), -1);
  ck_assert_int_eq(errno, EINVAL);
  ck_assert_int_eq(mpibind_get_errno(NULL), EINVAL);
  errno = 0;
  ck_assert_int_eq(mpibind_init(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(outputs_before_mapping_are_enodata)
{
  mpibind_t *h = ut_open("coral-lassen.xml");
  int n;
  errno = 0;
  ck_assert_ptr_null(mpibind_get_cpus(h));
  ck_assert_int_eq(errno, ENODATA);
  ck_assert_int_eq(mpibind_get_errno(h), ENODATA);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "mpibind()"));
  FAILS_WITH(h, mpibind_set_env_vars(h), ENODATA, "mpibind()");
  FAILS_WITH(h, mpibind_apply(h, 0), ENODATA, "mpibind()");
  ut_map(h, UT_IN(.ntasks = 2));
  errno = 0;
  ck_assert_ptr_null(mpibind_get_env_var_names(h, &n));
  ck_assert_int_eq(errno, ENODATA);
  ck_assert_ptr_nonnull(strstr(mpibind_get_error(h), "set_env_vars"));
  mpibind_finalize(h);
}
END_TEST

START_TEST(topology_file_kinds)
{
  mpibind_t *h = NULL;
  ck_assert_int_eq(mpibind_init(&h), 0);
  char *dir = ut_tmpdir();
  char *missing = ut_fmt("%s/missing.xml", dir);
  FAILS_WITH(h, mpibind_set_topology_file(h, missing), ENOENT, missing);
  FAILS_WITH(h, mpibind_set_topology_file(h, dir), EISDIR, dir);
  char *notxml = ut_fmt("%s/notes.xml", dir);
  FILE *f = fopen(notxml, "w");
  ck_assert_ptr_nonnull(f);
  fputs("this is not an hwloc topology\n", f);
  fclose(f);
  FAILS_WITH(h, mpibind_set_topology_file(h, notxml), EINVAL, notxml);
  char *empty = ut_fmt("%s/empty.xml", dir);
  fclose(fopen(empty, "w"));
  FAILS_WITH(h, mpibind_set_topology_file(h, empty), EINVAL, empty);
  unlink(notxml);
  unlink(empty);
  rmdir(dir);
  mpibind_finalize(h);
}
END_TEST

/* A file this user may not read: EACCES.  Root reads everything, so the
 * check runs in a child that became an ordinary user. */
START_TEST(topology_file_eacces)
{
  char *dir = ut_tmpdir();
  char *path = ut_fmt("%s/secret.xml", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("<topology/>\n", f);
  fclose(f);
  ck_assert_int_eq(chmod(path, 0600), 0);
  ck_assert_int_eq(chmod(dir, 0755), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
      _exit(2);
    mpibind_t *h = NULL;
    if (mpibind_init(&h) != 0)
      _exit(3);
    errno = 0;
    int rc = mpibind_set_topology_file(h, path);
    int e = errno;
    int ok = rc == -1 && e == EACCES && mpibind_get_errno(h) == EACCES &&
             strstr(mpibind_get_error(h), path);
    if (!ok)
      fprintf(stderr, "rc %d errno %d kind %d: %s\n", rc, e,
              mpibind_get_errno(h), mpibind_get_error(h));
    mpibind_finalize(h);
    _exit(ok ? 0 : 1);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  unlink(path);
  rmdir(dir);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "unreadable file: child status %d", status);
}
END_TEST

START_TEST(version)
{
  char *expect = ut_fmt("%d.%d.%d", MPIBIND_VERSION_MAJOR,
                        MPIBIND_VERSION_MINOR, MPIBIND_VERSION_PATCH);
  ck_assert_str_eq(mpibind_get_version(), expect);
  ck_assert_str_eq(mpibind_get_version(), MPIBIND_VERSION_STRING);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("error_kinds");
  TCase *tc = ut_tcase("kinds");
  tcase_add_test(tc, no_failure_yet);
  tcase_add_test(tc, bad_values_are_einval);
  tcase_add_test(tc, bad_gpu_allocation_entry);
  tcase_add_test(tc, null_handle_is_einval);
  tcase_add_test(tc, outputs_before_mapping_are_enodata);
  tcase_add_test(tc, topology_file_kinds);
  tcase_add_test(tc, topology_file_eacces);
  tcase_add_test(tc, version);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
