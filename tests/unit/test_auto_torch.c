/*
 * test_auto_torch.c - the task floor's rules for torchrun's workers
 * (issue 17), through its front door (auto/task/mpibind_auto_task.h):
 * which variables name the task (a worker's own before the launch around
 * its agent), which command is torchrun's agent, the visible_devices
 * grammar and its meaning for ranks and workers, the agent's
 * OMP_NUM_THREADS=1 that is no input, and what is exported for a worker
 * and for an agent.  The end-to-end behaviour (real torchrun, real
 * Slurm) is tests/torch's.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpibind_auto_task.h"
#include "unit_util.h"

static const char *const launch_vars[] = {
    "TORCHELASTIC_RUN_ID", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
    "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
    "SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE", "SLURM_NODEID",
    "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "FLUX_TASK_LOCAL_ID",
    "PALS_LOCAL_RANKID", "MV2_COMM_WORLD_LOCAL_RANK", "OMP_NUM_THREADS",
    "MPIBIND"};

static void clear_launch(void)
{
  for (size_t i = 0; i < sizeof launch_vars / sizeof *launch_vars; i++)
    unsetenv(launch_vars[i]);
}

static void slurm_step(void)
{
  setenv("SLURM_LOCALID", "0", 1);
  setenv("SLURM_STEP_TASKS_PER_NODE", "1", 1);
  setenv("SLURM_NODEID", "0", 1);
}

static void torch_worker(const char *rank, const char *size)
{
  setenv("TORCHELASTIC_RUN_ID", "run-1", 1);
  setenv("LOCAL_RANK", rank, 1);
  setenv("LOCAL_WORLD_SIZE", size, 1);
}

/* A worker's variables win over the step's and an MPI launcher's that
 * its agent passed on; without TORCHELASTIC_RUN_ID, LOCAL_RANK is no
 * launcher's (other conventions set it too). */
START_TEST(worker_variables_first)
{
  int local = -1, count = -1;
  const char *source = NULL;
  char *error = NULL;
  clear_launch();
  slurm_step();
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "0", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1", 1);
  setenv("LOCAL_RANK", "3", 1);
  setenv("LOCAL_WORLD_SIZE", "4", 1);
  ck_assert_int_eq(mpibind_auto_launcher_detect(&local, &count, &source, &error), 1);
  ck_assert_str_eq(source, "OMPI_COMM_WORLD_LOCAL_RANK");
  torch_worker("3", "4");
  ck_assert_int_eq(mpibind_auto_launcher_detect(&local, &count, &source, &error), 1);
  ck_assert_str_eq(source, MPIBIND_AUTO_TORCH_SOURCE);
  ck_assert_int_eq(local, 3);
  ck_assert_int_eq(count, 4);
  ck_assert(mpibind_auto_source_is_torch(source));
  /* the launch around the agent, as its workers see it */
  unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  ck_assert_int_eq(mpibind_auto_outer_launcher_detect(&local, &count, &source, &error), 1);
  ck_assert_str_eq(source, "SLURM_LOCALID");
  ck_assert_int_eq(local, 0);
  ck_assert_int_eq(count, 1);
  clear_launch();
}
END_TEST

START_TEST(worker_variables_checked)
{
  int local, count;
  const char *source;
  char *error = NULL;
  clear_launch();
  torch_worker("2", "2");
  ck_assert_int_eq(mpibind_auto_launcher_detect(&local, &count, &source, &error), -1);
  ck_assert_ptr_nonnull(strstr(error, "LOCAL_RANK=2"));
  free(error);
  unsetenv("LOCAL_WORLD_SIZE");
  ck_assert_int_eq(mpibind_auto_launcher_detect(&local, &count, &source, &error), -1);
  ck_assert_ptr_nonnull(strstr(error, "TORCHELASTIC_RUN_ID='run-1'"));
  ck_assert_ptr_nonnull(strstr(error, "LOCAL_WORLD_SIZE"));
  free(error);
  clear_launch();
}
END_TEST

static int agent(const char *const *argv)
{
  int argc = 0;
  while (argv[argc])
    argc++;
  return mpibind_auto_is_torch_agent(argc, argv);
}

START_TEST(agent_command_lines)
{
  static const char *const yes[][8] = {
      {"torchrun", "--nproc_per_node=2", "train.py", NULL},
      {"/usr/bin/torchrun", NULL},
      {"/usr/bin/python3.11", "/usr/bin/torchrun", "--standalone", NULL},
      {"python3", "-m", "torch.distributed.run", "train.py", NULL},
      {"python", "-mtorch.distributed.launch", NULL},
      {"python3", "-um", "torch.distributed.run", NULL},
      {"python3", "-X", "dev", "-W", "ignore", "/opt/bin/torchrun", NULL},
      {"python3", "-Xdev", "-u", "--", "torchrun", NULL},
  };
  static const char *const no[][8] = {
      {"python3", "train.py", "torchrun", NULL},
      {"python3", "-c", "import torchrun", "torchrun", NULL},
      {"python3", "-m", "torch.distributed.elastic", NULL},
      {"python3", "-W", "torchrun", "train.py", NULL},
      {"bash", "torchrun", NULL},
      {"python3", NULL},
      {"mpirun", "-np", "2", "torchrun", NULL},
  };
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
    ck_assert_msg(agent(yes[i]), "case %zu: %s %s is torchrun's agent", i,
                  yes[i][0], yes[i][1]);
  for (size_t i = 0; i < sizeof no / sizeof *no; i++)
    ck_assert_msg(!agent(no[i]), "case %zu: %s %s is no agent", i,
                  no[i][0], no[i][1] ? no[i][1] : "");
  ck_assert(!mpibind_auto_is_torch_agent(0, NULL));
}
END_TEST

/* The tuning of MPIBIND=value for a rank (workers 0) or a worker. */
static struct mpibind_auto_tuning tuning(const char *value, int workers)
{
  struct mpibind_auto_tuning t;
  clear_launch();
  if (value)
    setenv("MPIBIND", value, 1);
  mpibind_auto_tuning_read(&t);
  if (workers)
    mpibind_auto_tuning_of_task(&t, NULL, 0, 1);
  unsetenv("MPIBIND");
  return t;
}

START_TEST(visible_devices_grammar)
{
  static const struct {
    const char *value;
    int rank, worker;
  } cases[] = {
      {NULL, MPIBIND_AUTO_GPUS_TASK, MPIBIND_AUTO_GPUS_ALL},
      {"v", MPIBIND_AUTO_GPUS_TASK, MPIBIND_AUTO_GPUS_ALL},
      /* the original's word keeps its meaning for ranks */
      {"visible_devices", MPIBIND_AUTO_GPUS_NONE, MPIBIND_AUTO_GPUS_TASK},
      {"VISIBLE_DEVICES", MPIBIND_AUTO_GPUS_NONE, MPIBIND_AUTO_GPUS_TASK},
      {"visible_devices:task", MPIBIND_AUTO_GPUS_TASK, MPIBIND_AUTO_GPUS_TASK},
      {"visible_devices:all", MPIBIND_AUTO_GPUS_ALL, MPIBIND_AUTO_GPUS_ALL},
      {"visible_devices:none", MPIBIND_AUTO_GPUS_NONE, MPIBIND_AUTO_GPUS_NONE},
      {"visible_devices:all,visible_devices:task", MPIBIND_AUTO_GPUS_TASK,
       MPIBIND_AUTO_GPUS_TASK},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct mpibind_auto_tuning r = tuning(cases[i].value, 0);
    struct mpibind_auto_tuning w = tuning(cases[i].value, 1);
    ck_assert_ptr_null(r.error);
    ck_assert_msg(r.visible_devices == cases[i].rank &&
                      w.visible_devices == cases[i].worker,
                  "MPIBIND=%s: rank %d worker %d, expected %d %d",
                  cases[i].value, r.visible_devices, w.visible_devices,
                  cases[i].rank, cases[i].worker);
    mpibind_auto_tuning_free(&r);
    mpibind_auto_tuning_free(&w);
  }
  static const char *const bad[] = {"visible_devices:", "visible_devices:1",
                                    "visible_devices:mine", "visible_devicesx"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct mpibind_auto_tuning t = tuning(bad[i], 0);
    ck_assert_msg(t.error && strstr(t.error, "MPIBIND='") &&
                      strstr(t.error, "visible_devices"),
                  "MPIBIND=%s: %s", bad[i], t.error ? t.error : "no error");
    mpibind_auto_tuning_free(&t);
  }
}
END_TEST

/* A process started with envp that waits (the agent); its pid. */
static pid_t start_agent(char *const envp[])
{
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    char *const argv[] = {"sleep", "30", NULL};
    execve("/bin/sleep", argv, envp);
    _exit(127);
  }
  /* until exec replaced the child's environment */
  for (int i = 0; i < 2000; i++) {
    char *path = ut_fmt("/proc/%d/exe", (int)pid), target[64] = "";
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0 && strstr(target, "sleep"))
      break;
    usleep(1000);
  }
  return pid;
}

static void stop_agent(pid_t pid)
{
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

START_TEST(agents_thread_count_is_no_input)
{
  char *const without[] = {"PATH=/bin", NULL};
  char *const with[] = {"PATH=/bin", "OMP_NUM_THREADS=1", NULL};
  pid_t a = start_agent(without), b = start_agent(with);
  clear_launch();
  setenv("OMP_NUM_THREADS", "1", 1);
  ck_assert_int_eq(mpibind_auto_torch_agent_threads(a), 1);
  ck_assert_int_eq(mpibind_auto_torch_agent_threads(b), 0); /* the user's */
  ck_assert_int_eq(mpibind_auto_torch_agent_threads(0), 0);
  setenv("OMP_NUM_THREADS", "2", 1); /* not what torchrun sets */
  ck_assert_int_eq(mpibind_auto_torch_agent_threads(a), 0);

  /* the tuning: a torchrun worker's 1 from its agent is no input */
  struct mpibind_auto_tuning t;
  setenv("OMP_NUM_THREADS", "1", 1);
  mpibind_auto_tuning_read(&t);
  ck_assert_int_eq(t.nthreads, 1);
  mpibind_auto_tuning_of_task(&t, MPIBIND_AUTO_TORCH_SOURCE, a, 0);
  ck_assert_int_eq(t.nthreads, -1);
  ck_assert(t.agent_threads);
  mpibind_auto_tuning_free(&t);
  /* an MPI rank's 1 is the user's, whatever its parent */
  mpibind_auto_tuning_read(&t);
  mpibind_auto_tuning_of_task(&t, "OMPI_COMM_WORLD_LOCAL_RANK", a, 0);
  ck_assert_int_eq(t.nthreads, 1);
  mpibind_auto_tuning_free(&t);
  stop_agent(a);
  stop_agent(b);
  clear_launch();
}
END_TEST

/* What a setter is given, as "NAME=VALUE;" items. */
static int collect(const char *name, const char *value, int overwrite,
                   void *ctx)
{
  char **text = ctx;
  (void)overwrite;
  *text = ut_fmt("%s%s=%s;", *text, name, value);
  return 0;
}

static char *exported(const struct mpibind_auto_tuning *t)
{
  static char *names[] = {"OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
                          "CUDA_VISIBLE_DEVICES"};
  static char *values[] = {"20", "threads", "spread", "0,2,1,3"};
  struct mpibind_auto_share s = {0};
  char *text = "";
  s.nvars = 4;
  s.names = names;
  s.values = values;
  s.slot = 0;
  ck_assert_int_eq(mpibind_auto_export(t, &s, 0, mpibind_auto_omp_exports(t),
                                       collect, &text),
                   0);
  return text;
}

START_TEST(exports_of_workers_and_agents)
{
  static const char *const worker[] = {"/usr/bin/python3", "train.py"};
  static const char *const torchrun[] = {"torchrun", "--nproc_per_node=4",
                                         "train.py"};
  static const char *const app[] = {"./app"};
  struct mpibind_auto_tuning t = tuning(NULL, 0);
  clear_launch();
  /* torchrun's 1 replaced by the share's count */
  setenv("OMP_NUM_THREADS", "1", 1);
  mpibind_auto_set_command(2, worker);
  t.agent_threads = 1;
  ck_assert_str_eq(exported(&t), "OMP_NUM_THREADS=20;CUDA_VISIBLE_DEVICES=0,2,1,3;"
                                 "CUDA_DEVICE_ORDER=PCI_BUS_ID;");
  /* a user's value stays */
  t.agent_threads = 0;
  ck_assert_str_eq(exported(&t), "CUDA_VISIBLE_DEVICES=0,2,1,3;"
                                 "CUDA_DEVICE_ORDER=PCI_BUS_ID;");
  unsetenv("OMP_NUM_THREADS");
  /* the agent: no OMP_* for its workers to inherit */
  mpibind_auto_set_command(3, torchrun);
  ck_assert_str_eq(exported(&t), "CUDA_VISIBLE_DEVICES=0,2,1,3;"
                                 "CUDA_DEVICE_ORDER=PCI_BUS_ID;");
  mpibind_auto_set_command(1, app);
  ck_assert_str_eq(exported(&t), "OMP_NUM_THREADS=20;OMP_PLACES=threads;"
                                 "OMP_PROC_BIND=spread;CUDA_VISIBLE_DEVICES=0,2,1,3;"
                                 "CUDA_DEVICE_ORDER=PCI_BUS_ID;");
  /* visible_devices:none: no GPU variable */
  t.visible_devices = MPIBIND_AUTO_GPUS_NONE;
  ck_assert_str_eq(exported(&t), "OMP_NUM_THREADS=20;OMP_PLACES=threads;"
                                 "OMP_PROC_BIND=spread;");
  mpibind_auto_set_command(0, NULL);
  mpibind_auto_tuning_free(&t);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("auto_torch");
  TCase *tc = ut_tcase("auto_torch");
  tcase_add_test(tc, worker_variables_first);
  tcase_add_test(tc, worker_variables_checked);
  tcase_add_test(tc, agent_command_lines);
  tcase_add_test(tc, visible_devices_grammar);
  tcase_add_test(tc, agents_thread_count_is_no_input);
  tcase_add_test(tc, exports_of_workers_and_agents);
  suite_add_tcase(s, tc);
  return ut_run(s);
}
