/*
 * export.c - a task's variables, through a setter (export.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <string.h>

#include "export.h"
#include "gpualloc.h"
#include "launcher.h"

/* The program that will run: the wrapper and the plugins name it before
 * its exec. */
static const char *program_name;
/* It is torchrun's agent (launcher.h): no task, its workers are. */
static int program_agent;

void mpibind_auto_set_program(const char *argv0) {
  mpibind_auto_set_command(argv0 ? 1 : 0, &argv0);
}

void mpibind_auto_set_command(int argc, const char *const *argv) {
  program_name = argc > 0 ? argv[0] : NULL;
  program_agent = argc > 0 && mpibind_auto_is_torch_agent(argc, argv);
}

/* 1 for a loaded object named libpython*: a program embedding Python
 * (uwsgi, gdb, blender) has it among the libraries it starts with. */
static int is_libpython(struct dl_phdr_info *info, size_t size, void *unused) {
  const char *slash = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
  (void)size;
  (void)unused;
  return slash && strncmp(slash + 1, "libpython", 9) == 0;
}

/* An interpreter loads its OpenMP runtime late (numpy, scipy, torch, an
 * extension), and GNU libgomp then binds the thread that loads it, and
 * with it every later thread and child of the process, to the first place:
 * an interpreter gets no OMP_PLACES/OMP_PROC_BIND unless MPIBIND asks for
 * them (place_threads).  Python is recognized by its name or, in the
 * process itself, by a libpython among its libraries (a walk of the
 * loaded objects' names: a symbol lookup, dlsym, would cost every task
 * some 10 us). */
static int is_interpreter(void) {
  const char *name = program_name ? program_name : program_invocation_name;
  const char *base = name ? strrchr(name, '/') : NULL;
  base = base ? base + 1 : name;
  if (base && (strncmp(base, "python", 6) == 0 || strncmp(base, "pypy", 4) == 0))
    return 1;
  return program_name == NULL && dl_iterate_phdr(is_libpython, NULL) != 0;
}

int mpibind_auto_omp_exports(const struct mpibind_auto_tuning *t) {
  return t->place_threads || !is_interpreter();
}

/* Whether variable `name` of the share is exported (0: skipped), and
 * *keep: a value the task already has is kept. */
static int export_wanted(const struct mpibind_auto_tuning *t,
                         const char *name, int per_task_slot,
                         int omp_exports, int *keep) {
  int omp = strncmp(name, "OMP_", 4) == 0;
  *keep = 0;
  /* torchrun's agent runs no computation: the thread variables it
   * inherits would be its workers' inputs (a thread count of the agent's
   * share taken as the user's for each worker) */
  if (omp && program_agent)
    return 0;
  if (strcmp(name, "OMP_NUM_THREADS") == 0) {
    /* the user's value was the nthreads input; torchrun's agent's 1 was
     * not */
    *keep = !t->agent_threads;
  } else if (strcmp(name, "OMP_PLACES") == 0) {
    if (t->no_omp_places || !omp_exports)
      return 0;
    *keep = 1;
  } else if (strcmp(name, "OMP_PROC_BIND") == 0) {
    if (t->no_omp_proc_bind || !omp_exports)
      return 0;
    *keep = 1;
  } else if (mpibind_auto_gpu_var_index(name) >= 0) {
    if (t->visible_devices == MPIBIND_AUTO_GPUS_NONE)
      return 0;
    /* a per-task list given at launch is the task's own: kept */
    *keep = per_task_slot || mpibind_auto_gpu_per_task(name);
  }
  return 1;
}

int mpibind_auto_export(const struct mpibind_auto_tuning *t,
                        const struct mpibind_auto_share *s, int local,
                        int omp_exports, mpibind_auto_setenv_f set,
                        void *ctx) {
  int has_cuda = 0, rc = 0;
  for (int i = 0; i < s->nvars; i++) {
    const char *name = s->names[i];
    int keep;
    if (!export_wanted(t, name, s->slot != local, omp_exports, &keep))
      continue;
    if (strcmp(name, "CUDA_VISIBLE_DEVICES") == 0)
      has_cuda = 1;
    /* A value the task has and must keep (keep) is not overwritten. */
    if ((!keep || mpibind_auto_getenv(t, name) == NULL) &&
        set(name, s->values[i], 1, ctx) != 0)
      rc = -1;
  }
  /* CUDA numbers devices fastest first unless told otherwise; the
   * visible indexes mpibind writes follow the PCI bus order. */
  if (has_cuda && mpibind_auto_getenv(t, "CUDA_DEVICE_ORDER") == NULL &&
      set("CUDA_DEVICE_ORDER", "PCI_BUS_ID", 1, ctx) != 0)
    rc = -1;
  return rc;
}
