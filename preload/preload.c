/*
 * preload.c - libmpibind-preload.so: automatic binding of MPI ranks.
 *
 * Linked to no MPI library, so one file serves Open MPI and MPICH, and C,
 * C++, Fortran and mpi4py programs:
 *
 * - At load (constructor): when the launcher's variables give the
 *   node-local task number and count, bind right away, before the program's
 *   runtimes start (a GPU-aware MPI starts a GPU runtime inside MPI_Init,
 *   and an MPI library picks NIC and shared memory placement by the binding
 *   it finds there).
 * - Otherwise MPI_Init, MPI_Init_thread and their PMPI_ names are caught:
 *   after the real initialization, the node-local communicator gives the
 *   task number and count.  PMPI_ names are needed because Open MPI's
 *   Fortran bindings (mpif.h, use mpi, use mpi_f08) and MPICH's use mpi_f08
 *   call PMPI_Init* directly, never the C MPI_Init.  MPICH's Fortran entry
 *   calls the C MPI_Init: a re-entry guard makes that one application.
 * - A process with neither (not an MPI rank) is left alone, and so is a
 *   launcher: mpirun's daemons, torchrun's agent (its workers, which
 *   carry torch's LOCAL_RANK, are the tasks).
 *
 * Only the four MPI names are exported; everything else is hidden.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpibind_auto_task.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*init_fn)(int *, char ***);
typedef int (*init_thread_fn)(int *, char ***, int, int *);

/* 1 once this process was handled (applied, refused, or no rank). */
static int handled;
/* Depth of MPI_Init* calls: MPICH's Fortran entry calls the C one. */
static int in_init;
/* Where the MPI library's other functions are looked up: RTLD_DEFAULT,
 * or the library that called MPI_Init when it was opened RTLD_LOCAL. */
static void *mpi_scope = RTLD_DEFAULT;

__attribute__((noreturn)) static void fail_strict(void) {
  /* strict asked for it: the message was printed by the node's task 0 */
  exit(1);
}

/* glibc gives ELF constructors the process's argc, argv and envp: argv is
 * what a restart for a stale OpenMP runtime runs the program with
 * (reexec.h checks that it is still what the program was started with). */
__attribute__((constructor)) static void mpibind_preload_load(int argc,
                                                              char **argv) {
  int rc;

  /* The program started again for its OpenMP runtime: applied already
   * (the task's trace line is this image's to write). */
  if (mpibind_auto_reexec_done()) {
    mpibind_auto_reexec_finish();
    handled = 1;
    return;
  }
  /* The launch wrapper applies on its own, after turning its options into
   * the tuning variables; doing it here first would ignore them. */
  if (mpibind_auto_is_launcher_program() ||
      strcmp(program_invocation_short_name, "mpibind") == 0) {
    handled = 1;
    return;
  }
  /* The launcher's variables name the task (torchrun's agent is none);
   * an OpenMP runtime that read OMP_* before this ran (GNU libgomp's
   * constructor runs first) has the program started again, or says why
   * not (apply.c) */
  rc = mpibind_auto_apply_at_load(argc, argv);
  if (rc == MPIBIND_AUTO_NOT_A_TASK)
    return; /* wait for MPI_Init, if it ever comes */
  handled = 1;
  if (rc < 0)
    fail_strict();
}

/* ---- Finding the real MPI functions -------------------------------- */

static int is_self(void *p) {
  Dl_info a, b;
  if (p == NULL)
    return 0;
  if (dladdr(p, &a) == 0 || dladdr((void *)&mpibind_preload_load, &b) == 0)
    return 0;
  return a.dli_fbase == b.dli_fbase;
}

/* Paths of the loaded libmpi* objects.  Collected first and opened
 * after dl_iterate_phdr returns: dlopen inside its callback could take
 * the loader's lock the iteration holds. */
struct lib_list {
  char **paths;
  size_t n, cap;
};

static int collect_mpi_libs(struct dl_phdr_info *info, size_t size,
                            void *arg) {
  struct lib_list *l = arg;
  const char *path = info->dlpi_name;
  const char *base;
  (void)size;
  if (path == NULL || path[0] == '\0')
    return 0;
  base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strncmp(base, "libmpi", 6) != 0)
    return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    char **p = realloc(l->paths, cap * sizeof *p);
    if (p == NULL)
      return 1;
    l->paths = p;
    l->cap = cap;
  }
  l->paths[l->n] = strdup(path);
  if (l->paths[l->n])
    l->n++;
  return 0;
}

/* `name` in an already loaded MPI library (sets mpi_scope). */
static void *find_in_loaded_mpi(const char *name) {
  struct lib_list l = {NULL, 0, 0};
  void *found = NULL;
  dl_iterate_phdr(collect_mpi_libs, &l);
  for (size_t i = 0; i < l.n; i++) {
    if (found == NULL) {
      void *h = dlopen(l.paths[i], RTLD_NOLOAD | RTLD_LAZY);
      void *p = h ? dlsym(h, name) : NULL;
      if (p != NULL && !is_self(p)) {
        found = p;
        mpi_scope = h; /* kept open: the library stays loaded anyway */
      } else if (h) {
        dlclose(h);
      }
    }
    free(l.paths[i]);
  }
  free(l.paths);
  return found;
}

/* The next definition of `name` after this library.  When the MPI library
 * was opened RTLD_LOCAL after the preload (mpi4py), RTLD_NEXT finds
 * nothing: then look in the caller's library (its dependencies include
 * the MPI library), then in any loaded libmpi*.  Never returns our own
 * function. */
static void *find_real(const char *name, void *caller) {
  void *p = dlsym(RTLD_NEXT, name);
  Dl_info info;

  if (p != NULL && !is_self(p))
    return p;
  if (caller && dladdr(caller, &info) && info.dli_fname &&
      info.dli_fname[0]) {
    void *h = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
    if (h) {
      p = dlsym(h, name);
      if (p != NULL && !is_self(p)) {
        mpi_scope = h;
        return p;
      }
      dlclose(h);
    }
  }
  return find_in_loaded_mpi(name);
}

/* ---- After MPI_Init: the node-local communicator -------------------- */

static void *mpi_sym(const char *name) {
  void *p = dlsym(mpi_scope, name);
  if (p == NULL && mpi_scope != RTLD_DEFAULT)
    p = dlsym(RTLD_DEFAULT, name);
  return is_self(p) ? NULL : p;
}

/* MPI handles differ by ABI: pointers to predefined objects in Open MPI,
 * integers in MPICH and its derivatives (Intel MPI, MVAPICH, Cray MPICH). */
static void node_task_after_init(void) {
  int (*version)(char *, int *) = mpi_sym("PMPI_Get_library_version");
  /* the largest MPI_MAX_LIBRARY_VERSION_STRING of these libraries is
   * MPICH's 8192 */
  size_t vsize = 16384;
  char *ver = calloc(1, vsize);
  int len = 0, rank = -1, size = -1, rc;
  void *world = NULL;
  int mpich_world = 0x44000000;

  if (ver == NULL || version == NULL || version(ver, &len) != 0) {
    free(ver);
    return;
  }
  ver[vsize - 1] = '\0';

  if (strstr(ver, "Open MPI") && mpi_sym("ompi_mpi_comm_world")) {
    int (*split)(void *, int, int, void *, void **) =
        mpi_sym("PMPI_Comm_split_type");
    int (*crank)(void *, int *) = mpi_sym("PMPI_Comm_rank");
    int (*csize)(void *, int *) = mpi_sym("PMPI_Comm_size");
    int (*cfree)(void **) = mpi_sym("PMPI_Comm_free");
    void *info_null = mpi_sym("ompi_mpi_info_null");
    void *node = NULL;
    world = mpi_sym("ompi_mpi_comm_world");
    /* Open MPI: MPI_COMM_TYPE_SHARED is 0 (first of its enum) */
    if (split && crank && csize && cfree && info_null &&
        split(world, 0, 0, info_null, &node) == 0) {
      crank(node, &rank);
      csize(node, &size);
      cfree(&node);
    }
  } else if (strstr(ver, "MPICH") || strstr(ver, "MVAPICH") ||
             strstr(ver, "Intel(R) MPI")) {
    int (*split)(int, int, int, int, int *) = mpi_sym("PMPI_Comm_split_type");
    int (*crank)(int, int *) = mpi_sym("PMPI_Comm_rank");
    int (*csize)(int, int *) = mpi_sym("PMPI_Comm_size");
    int (*cfree)(int *) = mpi_sym("PMPI_Comm_free");
    int node = 0;
    /* MPICH: MPI_COMM_WORLD 0x44000000, MPI_COMM_TYPE_SHARED 1,
     * MPI_INFO_NULL 0x1c000000 */
    if (split && crank && csize && cfree &&
        split(mpich_world, 1, 0, 0x1c000000, &node) == 0) {
      crank(node, &rank);
      csize(node, &size);
      cfree(&node);
    }
  }
  if (rank < 0 || size <= 0 || rank >= size) {
    free(ver);
    return; /* an MPI this code does not know: leave the rank alone */
  }

  rc = mpibind_auto_apply_task(rank, size, "MPI_COMM_TYPE_SHARED");
  if (rc < 0) {
    /* strict: take the whole job down, not just this rank */
    if (world) {
      int (*abort_fn)(void *, int) = mpi_sym("PMPI_Abort");
      if (abort_fn)
        abort_fn(world, 1);
    } else if (strstr(ver, "MPI")) {
      int (*abort_fn)(int, int) = mpi_sym("PMPI_Abort");
      if (abort_fn)
        abort_fn(mpich_world, 1);
    }
  }
  free(ver);
  if (rc < 0)
    fail_strict();
}

/* ---- The interposed functions -------------------------------------- */

/* Returns 1 for the outermost MPI_Init* call.  Launcher variables that
 * appeared after load (a program may set them) are still used before the
 * real initialization. */
static int enter_init(void) {
  if (in_init++)
    return 0;
  if (!handled) {
    int local, count, rc;
    const char *source;
    char *err = NULL;
    rc = mpibind_auto_launcher_detect(&local, &count, &source, &err);
    free(err);
    if (rc != 0) {
      handled = 1;
      if (mpibind_auto_apply(0) < 0)
        fail_strict();
    }
  }
  return 1;
}

static void leave_init(int outer, int result) {
  if (outer && !handled && result == 0) {
    handled = 1;
    node_task_after_init();
  }
  in_init--;
}

static int no_mpi(const char *name) {
  fprintf(stderr,
          "mpibind: cannot find the MPI library's %s (is the program linked "
          "to MPI?)\n",
          name);
  return 1; /* not MPI_SUCCESS in any MPI */
}

/* The four entry points differ only in their name and parameters: each
 * finds the real function once, and wraps the call in enter/leave. */
#define MPIBIND_INTERPOSE(name, type, params, args)                          \
  EXPORT int name params {                                                   \
    static type real;                                                        \
    int outer, rc;                                                           \
    if (real == NULL)                                                        \
      real = (type)find_real(#name, __builtin_return_address(0));            \
    if (real == NULL)                                                        \
      return no_mpi(#name);                                                  \
    outer = enter_init();                                                    \
    rc = real args;                                                          \
    leave_init(outer, rc);                                                   \
    return rc;                                                               \
  }

MPIBIND_INTERPOSE(MPI_Init, init_fn, (int *argc, char ***argv), (argc, argv))
MPIBIND_INTERPOSE(PMPI_Init, init_fn, (int *argc, char ***argv), (argc, argv))
MPIBIND_INTERPOSE(MPI_Init_thread, init_thread_fn,
                  (int *argc, char ***argv, int required, int *provided),
                  (argc, argv, required, provided))
MPIBIND_INTERPOSE(PMPI_Init_thread, init_thread_fn,
                  (int *argc, char ***argv, int required, int *provided),
                  (argc, argv, required, provided))
