/*
 * mpibind - the command line front end of libmpibind.
 *
 * Two modes share one option parser (docs/interfaces.md, "Command line"):
 *
 *   mpibind -n N [options]            preview: print the mapping of N tasks
 *                                     on this node (or on --topology's node)
 *   mpibind [options] -- program ...  launch wrapper: bind this task as the
 *                                     preload would, then exec the program
 *
 * Exit status (preview and wrapper before the exec):
 *   0  success
 *   1  the mapping cannot be computed on this topology (e.g. --smt above the
 *      node's hardware threads, a restriction that selects nothing), an
 *      output error, or, in wrapper mode, a failure under MPIBIND=strict
 *   2  usage error: a bad option, option value or topology file
 *   126/127  wrapper mode: the program could not be run / was not found
 *            (as env(1) does); once it runs, its own status is the status
 *
 * Every error is exactly one line on stderr, "mpibind: ...", naming the
 * value and what was expected, and nothing is written on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mb_parse.h"
#include "mpibind.h"

#ifdef MPIBIND_HAVE_AUTO
#include "mpibind_auto_node.h"
#endif

#ifndef MPIBIND_TOOL_VERSION
#define MPIBIND_TOOL_VERSION "unknown"
#endif

enum { EXIT_MAPPING = 1, EXIT_USAGE = 2 };

/* The options of both modes.  Integers are -1 when not given. */
struct opts {
  const char *ntasks_arg; /* as typed, for messages in wrapper mode */
  int ntasks;
  int smt;
  int greedy;
  int gpu_optim;
  int nthreads;
  const char *restrict_ids;
  const char *restrict_type_arg;
  int restrict_type;
  const char *topology;
  const char *gpu_ids_arg;
  int gpu_ids;
  int env;
  int nics; /* --nics: name the NICs to UCX, NCCL, libfabric */
  int verbose;
  int dryrun;
  int strict;
  const char *draw; /* --draw PATH, NULL when not given */
  char **program; /* wrapper mode: argv of the program, NULL in preview */
};

/* Long-only options get codes above the char range. */
enum {
  OPT_SMT = 256,
  OPT_GREEDY,
  OPT_GPU_OPTIM,
  OPT_NTHREADS,
  OPT_RESTRICT,
  OPT_RESTRICT_TYPE,
  OPT_TOPOLOGY,
  OPT_GPU_IDS,
  OPT_ENV,
  OPT_DRYRUN,
  OPT_STRICT,
  OPT_DRAW,
  OPT_NICS,
  OPT_VERSION
};

static const struct option long_options[] = {
    {"ntasks", required_argument, NULL, 'n'},
    {"smt", required_argument, NULL, OPT_SMT},
    {"greedy", required_argument, NULL, OPT_GREEDY},
    {"gpu-optim", required_argument, NULL, OPT_GPU_OPTIM},
    {"nthreads", required_argument, NULL, OPT_NTHREADS},
    {"restrict", required_argument, NULL, OPT_RESTRICT},
    {"restrict-type", required_argument, NULL, OPT_RESTRICT_TYPE},
    {"topology", required_argument, NULL, OPT_TOPOLOGY},
    {"gpu-ids", required_argument, NULL, OPT_GPU_IDS},
    {"env", no_argument, NULL, OPT_ENV},
    {"nics", no_argument, NULL, OPT_NICS},
    {"verbose", no_argument, NULL, 'v'},
    {"dryrun", no_argument, NULL, OPT_DRYRUN},
    {"strict", no_argument, NULL, OPT_STRICT},
    {"draw", required_argument, NULL, OPT_DRAW},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0}};

/* What each value-taking option expects, for the messages. */
static const char *expected_of(int code) {
  switch (code) {
  case 'n':
    return "an integer from 1 to 2147483647";
  case OPT_SMT:
    return "an integer >= 0 (hardware threads per core, 0: choose)";
  case OPT_GREEDY:
  case OPT_GPU_OPTIM:
    return "0 or 1";
  case OPT_NTHREADS:
    return "an integer >= 0 (threads per task, 0: choose)";
  case OPT_RESTRICT:
    return "a list of OS indexes such as 0-3,8,10-11";
  case OPT_RESTRICT_TYPE:
    return "cpu or mem";
  case OPT_TOPOLOGY:
    return "an hwloc XML file";
  case OPT_GPU_IDS:
    return "index, pci, uuid or name";
  case OPT_DRAW:
    return "a file name ending in .svg, .png, .pdf or .xml";
  default:
    return "a value";
  }
}

static const char *name_of(int code) {
  if (code == 'n')
    return "-n/--ntasks";
  for (const struct option *o = long_options; o->name; o++)
    if (o->val == code) {
      static char buf[32];
      snprintf(buf, sizeof buf, "--%s", o->name);
      return buf;
    }
  return "?";
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: mpibind -n N [options]            print the mapping of N "
          "tasks\n"
          "       mpibind [options] -- PROGRAM [ARGS...]  bind this task, "
          "then run PROGRAM\n"
          "\n"
          "Mapping options (both modes):\n"
          "  -n, --ntasks N         tasks on the node (preview mode only; "
          "the launcher\n"
          "                         gives the task number and count to the "
          "wrapper)\n"
          "      --smt K            hardware threads per core to use (0: "
          "choose)\n"
          "      --greedy 0|1       with fewer tasks than NUMA domains, "
          "span domains (1)\n"
          "      --gpu-optim 0|1    place tasks where the GPUs are (1)\n"
          "      --nthreads T       threads per task (0: choose); the "
          "wrapper passes it\n"
          "                         as OMP_NUM_THREADS\n"
          "      --restrict LIST    use only these OS indexes, e.g. "
          "0-3,8\n"
          "      --restrict-type cpu|mem  LIST names PUs (cpu) or NUMA nodes "
          "(mem)\n"
          "      --topology FILE    an hwloc XML file instead of this node "
          "(the wrapper\n"
          "                         binds only with a file of this node; "
          "any file with\n"
          "                         --dryrun)\n"
          "  -v, --verbose          preview: first say how many GPUs the node "
          "has;\n"
          "                         wrapper: print the node's mapping\n"
          "      --nics             also restrict UCX, NCCL and libfabric to each "
          "task's\n"
          "                         NICs (UCX_NET_DEVICES, NCCL_IB_HCA, "
          "FI_CXI_DEVICE_NAME;\n"
          "                         MPIBIND_NICS is always set)\n"
          "      --draw FILE        draw the node and its mapping into FILE "
          "(.svg, .png,\n"
          "                         .pdf: by hwloc's lstopo; .xml: the "
          "annotated topology);\n"
          "                         wrapper: FILE-HOST.EXT, once per node\n"
          "Preview mode:\n"
          "      --gpu-ids index|pci|uuid|name  GPU IDs in the report "
          "(index)\n"
          "      --env              also print each task's environment "
          "variables\n"
          "Wrapper mode:\n"
          "      --dryrun           compute, report and export, but do not "
          "bind\n"
          "      --strict           a problem stops the launch instead of a "
          "warning\n"
          "\n"
          "  -h, --help             this help\n"
          "      --version          the version\n"
          "\n"
          "The wrapper also reads MPIBIND, MPIBIND_RESTRICT, "
          "MPIBIND_RESTRICT_TYPE,\n"
          "MPIBIND_TOPOFILE and OMP_NUM_THREADS; its options override "
          "them.\n"
          "\n"
          "Examples:\n"
          "  mpibind -n 4 --topology node.xml --env\n"
          "  mpirun -np 8 mpibind --smt 1 -- ./app\n"
          "\n"
          "Exit status: 0 ok, 1 mapping cannot be computed (or a --strict "
          "failure),\n"
          "2 usage error, 126/127 PROGRAM cannot be run / was not found; "
          "otherwise\n"
          "the wrapper's status is PROGRAM's.\n");
}

/* One line on stderr, then exit.  The values it echoes are the user's:
 * control characters in them are escaped (mb_escape), so that the line
 * stays one. */
static void die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
static void die(int status, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL, *esc;
  fflush(stdout);
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  esc = mb_escape(msg);
  fprintf(stderr, "mpibind: %s\n",
          esc ? esc : msg ? msg : "out of memory while reporting an error");
  free(esc);
  free(msg);
  exit(status);
}

/* The library's message without its own prefix (it is one line already:
 * the library escapes what it echoes). */
static const char *lib_error(const mpibind_t *h) {
  const char *e = mpibind_get_error(h);
  if (!e || !*e)
    e = "unknown error";
  if (strncmp(e, "mpibind: ", 9) == 0)
    e += 9;
  return e;
}

/* A decimal integer in [min, max], nothing else around it (the project's
 * one decimal rule, mb_parse.h). */
static int parse_int(int code, const char *s, int min, int max) {
  long long v;
  if (mb_parse_decimal(s, strlen(s), min, max, &v) != 0)
    die(EXIT_USAGE, "invalid %s value '%s': expected %s", name_of(code), s,
        expected_of(code));
  return (int)v;
}

/* getopt_long refused an option; optopt and the argument it was reading
 * tell which kind of refusal it was. */
static void bad_option(const char *arg) __attribute__((noreturn));
static void bad_option(const char *arg) {
  /* An unknown letter (also inside a cluster such as -vq, where arg may
   * still be the previous argument). */
  if (optopt > 0 && optopt < 256 && !strchr("vh", optopt))
    die(EXIT_USAGE, "unknown option '-%c' (see mpibind --help)", optopt);
  if (optopt != 0)
    die(EXIT_USAGE, "option %s takes no value: got '%s'",
        optopt == 'v' ? "-v/--verbose"
        : optopt == 'h' ? "-h/--help"
                        : name_of(optopt),
        arg);
  /* A long option: unknown, or a prefix of several. */
  size_t len = strcspn(arg + 2, "=");
  const char *match[3] = {NULL, NULL, NULL};
  int n = 0;
  for (const struct option *o = long_options; o->name; o++)
    if (strncmp(o->name, arg + 2, len) == 0 && n++ < 3)
      match[n - 1] = o->name;
  if (n > 1)
    die(EXIT_USAGE, "ambiguous option '%s': it could be --%s%s--%s%s", arg,
        match[0], n > 2 ? ", " : " or ", match[1],
        n > 2 ? " or another option" : "");
  die(EXIT_USAGE, "unknown option '%s' (see mpibind --help)", arg);
}

/* Parses and checks argv into o, exiting on any usage error.  Both modes
 * go through here, so an option value means the same and is refused with
 * the same message in both. */
static void parse_options(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->ntasks = o->smt = o->greedy = o->gpu_optim = o->nthreads = -1;
  o->restrict_type = MPIBIND_RESTRICT_CPU;
  o->gpu_ids = MPIBIND_ID_SMI;

  /* '+': stop at the first non-option, so that the program's own options
   * after '--' are never taken for ours.  ':': report a missing value
   * ourselves. */
  const char *last_arg = NULL;
  opterr = 0;
  for (;;) {
    int c = getopt_long(argc, argv, "+:n:vh", long_options, NULL);
    if (c == -1)
      break;
    if (optarg)
      last_arg = optarg;
    switch (c) {
    case 'n':
      o->ntasks_arg = optarg;
      o->ntasks = parse_int(c, optarg, 1, INT_MAX);
      break;
    case OPT_SMT:
      o->smt = parse_int(c, optarg, 0, INT_MAX);
      break;
    case OPT_GREEDY:
      o->greedy = parse_int(c, optarg, 0, 1);
      break;
    case OPT_GPU_OPTIM:
      o->gpu_optim = parse_int(c, optarg, 0, 1);
      break;
    case OPT_NTHREADS:
      o->nthreads = parse_int(c, optarg, 0, INT_MAX);
      break;
    case OPT_RESTRICT:
      /* The list's grammar is the library's (mpibind_set_restrict_ids,
       * called by make_handle in both modes); "" would mean no
       * restriction there, which is not what a user typing it meant. */
      if (!*optarg)
        die(EXIT_USAGE, "invalid --restrict value '': expected %s",
            expected_of(c));
      o->restrict_ids = optarg;
      break;
    case OPT_RESTRICT_TYPE:
      o->restrict_type_arg = optarg;
      if (strcmp(optarg, "cpu") == 0)
        o->restrict_type = MPIBIND_RESTRICT_CPU;
      else if (strcmp(optarg, "mem") == 0)
        o->restrict_type = MPIBIND_RESTRICT_MEM;
      else
        die(EXIT_USAGE, "invalid --restrict-type value '%s': expected %s",
            optarg, expected_of(c));
      break;
    case OPT_TOPOLOGY:
      if (!*optarg)
        die(EXIT_USAGE, "invalid --topology value '': expected %s",
            expected_of(c));
      o->topology = optarg;
      break;
    case OPT_GPU_IDS:
      o->gpu_ids_arg = optarg;
      if (strcmp(optarg, "index") == 0)
        o->gpu_ids = MPIBIND_ID_SMI;
      else if (strcmp(optarg, "pci") == 0)
        o->gpu_ids = MPIBIND_ID_PCIBUS;
      else if (strcmp(optarg, "uuid") == 0)
        o->gpu_ids = MPIBIND_ID_UNIV;
      else if (strcmp(optarg, "name") == 0)
        o->gpu_ids = MPIBIND_ID_NAME;
      else
        die(EXIT_USAGE, "invalid --gpu-ids value '%s': expected %s", optarg,
            expected_of(c));
      break;
    case OPT_ENV:
      o->env = 1;
      break;
    case OPT_NICS:
      o->nics = 1;
      break;
    case 'v':
      o->verbose = 1;
      break;
    case OPT_DRYRUN:
      o->dryrun = 1;
      break;
    case OPT_STRICT:
      o->strict = 1;
      break;
    case OPT_DRAW:
      if (!*optarg)
        die(EXIT_USAGE, "invalid --draw value '': expected %s",
            expected_of(c));
      o->draw = optarg;
      break;
    case 'h':
      usage(stdout);
      exit(0);
    case OPT_VERSION:
      printf("mpibind %s\n", MPIBIND_TOOL_VERSION);
      exit(0);
    case ':':
      die(EXIT_USAGE, "option %s needs a value: %s", name_of(optopt),
          expected_of(optopt));
    case '?':
    default:
      bad_option(argv[optind - 1]);
    }
  }

  /* Wrapper mode when the parsing stopped at a '--' that was not the value
   * of an option. */
  int wrapper = optind > 1 && strcmp(argv[optind - 1], "--") == 0 &&
                argv[optind - 1] != last_arg;
  if (!wrapper && optind < argc)
    die(EXIT_USAGE,
        "unexpected argument '%s': expected only options, or '-- PROGRAM' "
        "to run a program",
        argv[optind]);

  if (wrapper) {
    if (optind >= argc)
      die(EXIT_USAGE, "missing program after '--': expected '-- PROGRAM "
                      "[ARGS...]'");
    o->program = argv + optind;
    if (o->ntasks_arg)
      die(EXIT_USAGE,
          "-n/--ntasks '%s' is for preview mode: with '-- PROGRAM' the "
          "launcher gives the number of tasks",
          o->ntasks_arg);
    if (o->env)
      die(EXIT_USAGE, "--env is for preview mode: with '-- PROGRAM' the "
                      "variables are exported to the program");
    if (o->gpu_ids_arg)
      die(EXIT_USAGE,
          "--gpu-ids '%s' is for preview mode: with '-- PROGRAM' the "
          "visible-devices variables always use indexes",
          o->gpu_ids_arg);
    const char *env_list = getenv("MPIBIND_RESTRICT");
    if (o->restrict_type_arg && !o->restrict_ids &&
        !(env_list && *env_list))
      die(EXIT_USAGE,
          "--restrict-type '%s' needs a list: expected --restrict LIST "
          "(or MPIBIND_RESTRICT)",
          o->restrict_type_arg);
  } else {
    if (o->dryrun)
      die(EXIT_USAGE, "--dryrun is for wrapper mode: expected '-- PROGRAM' "
                      "(preview mode never binds)");
    if (o->strict)
      die(EXIT_USAGE, "--strict is for wrapper mode: expected '-- PROGRAM'");
    if (o->ntasks < 0)
      die(EXIT_USAGE, "missing -n/--ntasks N: expected the number of tasks "
                      "to map, or '-- PROGRAM' to run a program (see mpibind "
                      "--help)");
    if (o->restrict_type_arg && !o->restrict_ids)
      die(EXIT_USAGE,
          "--restrict-type '%s' needs a list: expected --restrict LIST",
          o->restrict_type_arg);
  }
}

/* Gives the options to a new handle.  What the library checks on its own
 * (a readable topology file, a list it can parse) is refused here, before
 * anything else happens, in both modes. */
static mpibind_t *make_handle(const struct opts *o) {
  mpibind_t *h = NULL;
  if (mpibind_init(&h) != 0 || !h)
    die(EXIT_MAPPING, "cannot create a mapping handle: %s", lib_error(h));
  if (o->ntasks > 0 && mpibind_set_ntasks(h, o->ntasks) != 0)
    die(EXIT_USAGE, "-n/--ntasks: %s", lib_error(h));
  if (o->smt >= 0 && mpibind_set_smt(h, o->smt) != 0)
    die(EXIT_USAGE, "--smt: %s", lib_error(h));
  if (o->greedy >= 0 && mpibind_set_greedy(h, o->greedy) != 0)
    die(EXIT_USAGE, "--greedy: %s", lib_error(h));
  if (o->gpu_optim >= 0 && mpibind_set_gpu_optim(h, o->gpu_optim) != 0)
    die(EXIT_USAGE, "--gpu-optim: %s", lib_error(h));
  if (o->nthreads >= 0 && mpibind_set_nthreads(h, o->nthreads) != 0)
    die(EXIT_USAGE, "--nthreads: %s", lib_error(h));
  if (o->restrict_ids && mpibind_set_restrict_ids(h, o->restrict_ids) != 0)
    die(EXIT_USAGE, "--restrict: %s", lib_error(h));
  if (mpibind_set_restrict_type(h, o->restrict_type) != 0)
    die(EXIT_USAGE, "--restrict-type: %s", lib_error(h));
  if (mpibind_set_gpu_ids(h, o->gpu_ids) != 0)
    die(EXIT_USAGE, "--gpu-ids: %s", lib_error(h));
  if (o->nics && mpibind_set_transport_vars(h, 1) != 0)
    die(EXIT_USAGE, "--nics: %s", lib_error(h));
#ifdef MPIBIND_HAVE_AUTO
  /* hwloc's parser crashes on some malformed files: parse it in a child
   * first (docs/interfaces.md, "Untrusted topology files"). */
  char *bad = NULL;
  if (o->topology &&
      mpibind_auto_check_xml_file(o->topology, "--topology", &bad) != 0)
    die(EXIT_USAGE, "%s", bad ? bad : "--topology: out of memory");
#endif
  if (o->topology && mpibind_set_topology_file(h, o->topology) != 0)
    die(EXIT_USAGE, "--topology: %s", lib_error(h));
  return h;
}

/* Writes s on stdout, exiting with a message when it cannot. */
static void put(const char *s) {
  if (fputs(s, stdout) == EOF)
    die(EXIT_MAPPING, "cannot write the output: %s", strerror(errno));
}

/* The mapping's failure, named by the option the user typed where the
 * library names the input that the topology refused (smt: the one it
 * checks against the node, mpibind(3)). */
static void die_mapping(const struct opts *o, const mpibind_t *h) {
  const char *e = lib_error(h);
  if (o->smt >= 0 && strncmp(e, "smt ", 4) == 0)
    die(EXIT_MAPPING, "--smt: %s", e);
  die(EXIT_MAPPING, "%s", e);
}

static void preview(const struct opts *o) {
  mpibind_t *h = make_handle(o);
  if (mpibind(h) != 0)
    die_mapping(o, h);

  /* The whole report is built before anything is printed, so that an error
   * leaves stdout empty. */
  int len = mpibind_mapping_snprint(NULL, 0, h);
  if (len < 0)
    die(EXIT_MAPPING, "%s", lib_error(h));
  char *report = malloc((size_t)len + 1);
  if (!report)
    die(EXIT_MAPPING, "out of memory for a report of %d bytes", len);
  if (mpibind_mapping_snprint(report, len + 1, h) != len)
    die(EXIT_MAPPING, "the report changed size: %s", lib_error(h));

  char **names = NULL;
  int nnames = 0;
  char ***values = NULL;
  if (o->env) {
    if (mpibind_set_env_vars(h) != 0)
      die(EXIT_MAPPING, "%s", lib_error(h));
    names = mpibind_get_env_var_names(h, &nnames);
    if (!names && nnames != 0)
      die(EXIT_MAPPING, "%s", lib_error(h));
    values = calloc(nnames > 0 ? (size_t)nnames : 1, sizeof *values);
    if (!values)
      die(EXIT_MAPPING, "out of memory");
    for (int v = 0; v < nnames; v++) {
      values[v] = mpibind_get_env_var_values(h, names[v]);
      if (!values[v])
        die(EXIT_MAPPING, "%s", lib_error(h));
    }
  }

  /* Drawn before anything is printed: a picture that cannot be made is a
   * usage error (no renderer, unwritable file) and leaves stdout empty. */
  if (o->draw && mpibind_draw(h, o->draw) != 0)
    die(EXIT_USAGE, "--draw: %s", lib_error(h));

  if (o->verbose) {
    int ngpus = mpibind_get_num_gpus(h);
    printf("mpibind: %d GPUs on this node\n", ngpus < 0 ? 0 : ngpus);
  }
  put(report);
  /* The variables after the report, grouped by task, in the library's
   * one-line format, so that the report part is the same with and
   * without --env. */
  for (int t = 0; values && t < o->ntasks; t++)
    for (int v = 0; v < nnames; v++)
      if (printf("mpibind: task %2d %s=%s\n", t, names[v],
                 values[v][t] ? values[v][t] : "") < 0)
        die(EXIT_MAPPING, "cannot write the output: %s", strerror(errno));

  free(report);
  free(values);
  mpibind_finalize(h);
  if (fflush(stdout) != 0 || ferror(stdout))
    die(EXIT_MAPPING, "cannot write the output: %s", strerror(errno));
}

/* setenv or die. */
static void set_var(const char *name, const char *value) {
  if (setenv(name, value, 1) != 0)
    die(EXIT_MAPPING, "cannot set %s=%s: %s", name, value, strerror(errno));
}

/* A variable set from an option: the layer's messages about its value
 * name the option, which is what the user typed. */
static void set_option_var(const char *name, const char *option,
                           const char *value) {
  set_var(name, value);
#ifdef MPIBIND_HAVE_AUTO
  mpibind_auto_name_option(name, option);
#else
  (void)option;
#endif
}

/* Appends ",item" (or "item") to the MPIBIND list being built. */
static void add_item(char **list, const char *fmt, int value) {
  char item[64];
  if (value < 0)
    snprintf(item, sizeof item, "%s", fmt);
  else
    snprintf(item, sizeof item, fmt, value);
  size_t old = *list ? strlen(*list) : 0;
  char *s = realloc(*list, old + strlen(item) + 2);
  if (!s)
    die(EXIT_MAPPING, "out of memory");
  if (old)
    s[old++] = ',';
  strcpy(s + old, item);
  *list = s;
}

/* Appends ",draw:PATH": a path is not bounded in length, and a comma
 * would end the item in the MPIBIND list. */
static void add_draw(char **list, const char *path) {
  if (strchr(path, ','))
    die(EXIT_USAGE, "invalid --draw value '%s': expected a file name "
                    "without a comma in wrapper mode (it goes into the "
                    "comma list MPIBIND)",
        path);
  size_t old = *list ? strlen(*list) : 0;
  char *s = realloc(*list, old + strlen(path) + 7);
  if (!s)
    die(EXIT_MAPPING, "out of memory");
  if (old)
    s[old++] = ',';
  strcpy(s + old, "draw:");
  strcpy(s + old + 5, path);
  *list = s;
}

static void wrapper(const struct opts *o) {
  /* Refuses an unreadable topology or list now, with the preview's
   * messages; the auto-binding code reads the same values again. */
  mpibind_finalize(make_handle(o));

  /* The options are appended to what the environment already says, so
   * that they win where they overlap, and a user's MPIBIND=off still turns
   * everything off. */
  char *list = NULL;
  const char *user = getenv("MPIBIND");
  if (user && *user) {
    list = strdup(user);
    if (!list)
      die(EXIT_MAPPING, "out of memory");
  }
  if (o->smt >= 0)
    add_item(&list, "smt:%d", o->smt);
  if (o->greedy >= 0)
    add_item(&list, "greedy:%d", o->greedy);
  if (o->gpu_optim >= 0)
    add_item(&list, "gpu:%d", o->gpu_optim);
  if (o->verbose)
    add_item(&list, "v", -1);
  if (o->dryrun)
    add_item(&list, "dryrun", -1);
  if (o->strict)
    add_item(&list, "strict", -1);
  if (o->nics)
    add_item(&list, "nics", -1);
  if (o->draw)
    add_draw(&list, o->draw);
  if (list)
    set_var("MPIBIND", list);
  free(list);

  if (o->restrict_ids)
    set_option_var("MPIBIND_RESTRICT", "--restrict", o->restrict_ids);
  if (o->restrict_type_arg)
    set_option_var("MPIBIND_RESTRICT_TYPE", "--restrict-type",
                   o->restrict_type_arg);
  if (o->topology)
    set_option_var("MPIBIND_TOPOFILE", "--topology", o->topology);
  if (o->nthreads > 0) {
    char n[16];
    snprintf(n, sizeof n, "%d", o->nthreads);
    set_option_var("OMP_NUM_THREADS", "--nthreads", n);
  } else if (o->nthreads == 0) {
    /* 0 means "choose", also over a thread count in the environment. */
    unsetenv("OMP_NUM_THREADS");
  }

#ifdef MPIBIND_HAVE_AUTO
  fflush(stdout);
  {
    int argc = 0;
    while (o->program[argc])
      argc++;
    mpibind_auto_set_command(argc, (const char *const *)o->program);
  }
  if (mpibind_auto_apply(1) < 0)
    exit(EXIT_MAPPING); /* strict: the problem is already reported */
#else
  die(EXIT_USAGE, "'-- %s': this build of mpibind has no launch-wrapper "
                  "mode (built without the preload's auto-binding code)",
      o->program[0]);
#endif

  fflush(NULL);
  execvp(o->program[0], o->program);
  int err = errno;
  die(err == ENOENT ? 127 : 126, "cannot run '%s': %s", o->program[0],
      strerror(err));
}

int main(int argc, char **argv) {
  struct opts o;
  parse_options(argc, argv, &o);
  if (o.program)
    wrapper(&o);
  else
    preview(&o);
  return 0;
}
