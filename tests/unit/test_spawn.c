/*
 * test_spawn.c - the child runner of lib/common/mb_spawn.h, which the
 * drawing (lstopo) and the automatic-binding layer's helper use: output
 * read back whole, the first line of stderr, the exit status; a child
 * past its time limit killed and reaped (also one that closed its output
 * and goes on); no zombie left; a missing program is ENOENT; the child
 * gets the given environment (less the names it is told to drop), stdin
 * on /dev/null, no blocked signal and none of the caller's descriptors.  No timing is asserted: a limit is
 * checked by its effect (killed, reaped), never by a duration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "mb_spawn.h"

/* No child of this process is left, running or zombie. */
static void no_child_left(void)
{
  errno = 0;
  ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
  ck_assert_int_eq(errno, ECHILD);
}

static struct mb_spawn sh(const char *script, long ms)
{
  static char *argv[4];
  argv[0] = "/bin/sh";
  argv[1] = "-c";
  argv[2] = (char *)script;
  argv[3] = NULL;
  return (struct mb_spawn){.argv = argv, .keep_stdout = 1, .timeout_ms = ms};
}

START_TEST(output_and_status)
{
  struct mb_spawn s =
      sh("printf 'a\\nb'; echo 'first line' >&2; echo second >&2; exit 3",
         60000);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert_str_eq(s.out, "a\nb");
  ck_assert_uint_eq(s.out_len, 3);
  ck_assert_str_eq(s.err_line, "first line");
  ck_assert(!s.timed_out);
  ck_assert(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 3);
  char *how = mb_spawn_how_ended(&s);
  ck_assert_str_eq(how, "exited with status 3");
  free(how);
  mb_spawn_free(&s);
  no_child_left();
}
END_TEST

START_TEST(large_output_whole)
{
  /* 4 MiB, far more than a pipe holds: read while the child writes. */
  struct mb_spawn s = sh("head -c 4194304 /dev/zero | tr '\\0' x", 60000);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert_uint_eq(s.out_len, 4194304);
  ck_assert_uint_eq(strspn(s.out, "x"), 4194304);
  ck_assert_ptr_null(s.err_line);
  mb_spawn_free(&s);
}
END_TEST

START_TEST(stdout_dropped)
{
  struct mb_spawn s = sh("echo out; echo err >&2", 60000);
  s.keep_stdout = 0;
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert_ptr_null(s.out);
  ck_assert_str_eq(s.err_line, "err");
  mb_spawn_free(&s);
}
END_TEST

START_TEST(killed_at_the_limit)
{
  struct mb_spawn s = sh("echo started; sleep 300", 300);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert(s.timed_out);
  ck_assert(WIFSIGNALED(s.status) && WTERMSIG(s.status) == SIGKILL);
  ck_assert_str_eq(s.out, "started\n");
  char *how = mb_spawn_how_ended(&s);
  ck_assert_str_eq(how, "did not end within 300 ms and was killed");
  free(how);
  mb_spawn_free(&s);
  no_child_left();
}
END_TEST

START_TEST(silent_child_killed_at_the_limit)
{
  /* Its output closed, it goes on: the wait, not the pipes, ends it. */
  struct mb_spawn s = sh("exec >&- 2>&-; sleep 300", 2000);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert(s.timed_out);
  char *how = mb_spawn_how_ended(&s);
  ck_assert_str_eq(how, "did not end within 2 seconds and was killed");
  free(how);
  mb_spawn_free(&s);
  no_child_left();
}
END_TEST

START_TEST(crash_reported)
{
  struct mb_spawn s = sh("kill -SEGV $$", 60000);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  char *how = mb_spawn_how_ended(&s);
  ck_assert_ptr_nonnull(strstr(how, "was killed by signal 11"));
  free(how);
  mb_spawn_free(&s);
}
END_TEST

START_TEST(missing_program)
{
  char *argv[] = {"/nonexistent/mpibind-no-such-program", NULL};
  struct mb_spawn s = {.argv = argv, .timeout_ms = 1000};
  ck_assert_int_eq(mb_spawn_run(&s), -1);
  ck_assert_int_eq(errno, ENOENT);
  char *argv2[] = {"mpibind-no-such-program-in-path", NULL};
  struct mb_spawn p = {.argv = argv2, .search_path = 1, .timeout_ms = 1000};
  ck_assert_int_eq(mb_spawn_run(&p), -1);
  ck_assert_int_eq(errno, ENOENT);
  no_child_left();
}
END_TEST

START_TEST(bad_arguments)
{
  ck_assert_int_eq(mb_spawn_run(NULL), -1);
  ck_assert_int_eq(errno, EINVAL);
  struct mb_spawn s = sh("true", 0);
  ck_assert_int_eq(mb_spawn_run(&s), -1);
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(path_search_and_environment)
{
  char *argv[] = {"sh", "-c", "echo \"$ONLY\"; env | wc -l", NULL};
  char *env[] = {"ONLY=this", NULL};
  struct mb_spawn s = {.argv = argv, .envp = env, .search_path = 1,
                       .keep_stdout = 1, .timeout_ms = 60000};
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  /* sh adds PWD (and maybe SHLVL, _) to what it was given */
  ck_assert_ptr_nonnull(strstr(s.out, "this\n"));
  mb_spawn_free(&s);
}
END_TEST

START_TEST(environment_less_dropped_names)
{
  /* The names env_drop lists leave the child's environment, whether it
   * is the given one or the caller's; a name that merely starts the same
   * stays. */
  char *argv[] = {"sh", "-c",
                  "echo \"${LD_PRELOAD-unset} ${LD_PRELOAD_X-unset} "
                  "${KEEP-unset}\"",
                  NULL};
  char *env[] = {"LD_PRELOAD=/x.so", "LD_PRELOAD_X=kept", "KEEP=yes", NULL};
  char *drop[] = {"LD_PRELOAD", NULL};
  struct mb_spawn s = {.argv = argv, .envp = env, .env_drop = drop,
                       .search_path = 1, .keep_stdout = 1,
                       .timeout_ms = 60000};
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert_str_eq(s.out, "unset kept yes\n");
  mb_spawn_free(&s);
  ck_assert_int_eq(setenv("LD_PRELOAD", "/y.so", 1), 0);
  s = (struct mb_spawn){.argv = argv, .env_drop = drop, .search_path = 1,
                        .keep_stdout = 1, .timeout_ms = 60000};
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert_str_eq(s.out, "unset unset unset\n");
  mb_spawn_free(&s);
  unsetenv("LD_PRELOAD");
}
END_TEST

START_TEST(clean_start)
{
  /* The caller blocks a signal and holds a descriptor open across exec
   * (no O_CLOEXEC): the child has neither, and its stdin is empty. */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  int fd = open("/dev/null", O_RDONLY);
  ck_assert_int_ge(fd, 3);
  char *script = NULL;
  ck_assert_int_ge(asprintf(&script,
                            "test -e /proc/$$/fd/%d && echo leaked; "
                            "cat; echo end",
                            fd),
                   0);
  struct mb_spawn s = sh(script, 60000);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
  ck_assert_ptr_null(strstr(s.out, "leaked"));
#endif
  ck_assert_str_eq(s.out, "end\n");
  mb_spawn_free(&s);
  /* The mask the program starts with (a shell would change its own). */
  char *argv[] = {"grep", "SigBlk", "/proc/self/status", NULL};
  struct mb_spawn g = {.argv = argv, .search_path = 1, .keep_stdout = 1,
                       .timeout_ms = 60000};
  ck_assert_int_eq(mb_spawn_run(&g), 0);
  ck_assert_str_eq(g.out, "SigBlk:\t0000000000000000\n");
  mb_spawn_free(&g);
  free(script);
  close(fd);
}
END_TEST

START_TEST(sigchld_ignored)
{
  /* A caller that reaps nothing (SIGCHLD ignored): the child is gone
   * without a status, and the run still ends. */
  signal(SIGCHLD, SIG_IGN);
  struct mb_spawn s = sh("echo done", 60000);
  ck_assert_int_eq(mb_spawn_run(&s), 0);
  ck_assert_str_eq(s.out, "done\n");
  ck_assert_int_eq(s.status, -1);
  ck_assert(!s.timed_out);
  mb_spawn_free(&s);
  signal(SIGCHLD, SIG_DFL);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("spawn");
  TCase *tc = tcase_create("spawn");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, output_and_status);
  tcase_add_test(tc, large_output_whole);
  tcase_add_test(tc, stdout_dropped);
  tcase_add_test(tc, killed_at_the_limit);
  tcase_add_test(tc, silent_child_killed_at_the_limit);
  tcase_add_test(tc, crash_reported);
  tcase_add_test(tc, missing_program);
  tcase_add_test(tc, bad_arguments);
  tcase_add_test(tc, path_search_and_environment);
  tcase_add_test(tc, environment_less_dropped_names);
  tcase_add_test(tc, clean_start);
  tcase_add_test(tc, sigchld_ignored);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
