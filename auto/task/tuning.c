/*
 * tuning.c - the MPIBIND* variables (grammar of mpibind's --mpibind=
 * option, docs/interfaces.md "Automatic binding").
 *
 * Contract: every problem is reported with the variable's name and value
 * and what was expected; the first problem is kept, but the whole MPIBIND
 * list is still read so that `off` and `strict` take effect wherever they
 * stand in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher.h" /* torchrun's workers */
#include "mb_text.h"
#include "mpibind_auto_task.h" /* mpibind_auto_name_option */
#include "strdupf.h"
#include "tuning.h"

const char mpibind_auto_help_text[] =
    "mpibind: automatic binding, tuned by environment variables:\n"
    "mpibind:   MPIBIND=word,word,...  with the words\n"
    "mpibind:     on | off            bind (default) | no side effect at all\n"
    "mpibind:     v | verbose         print the node's mapping once per node\n"
    "mpibind:     smt:K               use K hardware threads per core (0: choose)\n"
    "mpibind:     greedy[:0|1]        tasks may span several domains (default 1)\n"
    "mpibind:     gpu[:0|1]           place tasks where the GPUs are (default 1);\n"
    "mpibind:                         also gpu_optim[:0|1]\n"
    "mpibind:     omp_places          do not set OMP_PLACES\n"
    "mpibind:     omp_proc_bind       do not set OMP_PROC_BIND\n"
    "mpibind:     visible_devices[:task|all|none]  which GPUs each task's\n"
    "mpibind:                         *_VISIBLE_DEVICES names: its own (task), every\n"
    "mpibind:                         GPU in task order (all: torchrun workers' default),\n"
    "mpibind:                         none (not set); alone: none, and task for workers\n"
    "mpibind:     place_threads       set OMP_PLACES/OMP_PROC_BIND in an interpreter too\n"
    "mpibind:     membind             bind memory to the task's NUMA node(s)\n"
    "mpibind:     nics                restrict UCX, NCCL, libfabric to the task's NICs\n"
    "mpibind:                         (UCX_NET_DEVICES, NCCL_IB_HCA, FI_CXI_DEVICE_NAME)\n"
    "mpibind:     dryrun              compute, report and export; do not bind\n"
    "mpibind:     strict              a problem fails the launch (default: warn, run unbound)\n"
    "mpibind:     draw:PATH           the node's task 0 draws the mapping into PATH-HOST.EXT\n"
    "mpibind:                         (.svg, .png, .pdf by hwloc's lstopo; .xml annotated)\n"
    "mpibind:     help                this text\n"
    "mpibind:   MPIBIND_RESTRICT=LIST     hwloc list of CPU (or NUMA) OS indexes, e.g. 0-3,8\n"
    "mpibind:   MPIBIND_RESTRICT_TYPE=cpu|mem  what MPIBIND_RESTRICT lists (default cpu)\n"
    "mpibind:   MPIBIND_TOPOFILE=FILE     hwloc XML of this node (any node with dryrun)\n"
    "mpibind:   OMP_NUM_THREADS=N         threads per task (default: chosen by mpibind)\n"
    "mpibind:   MPIBIND_TRACE=FILE        append one line per task (diagnostics)\n"
    "mpibind:   MPIBIND_CACHE_DIR=DIR     private directory of the per-node topology cache\n";

#define WORDS_EXPECTED                                                       \
  "on, off, v, verbose, smt:K, greedy[:0|1], gpu[:0|1], gpu_optim[:0|1], "  \
  "omp_places, omp_proc_bind, visible_devices[:task|all|none], "            \
  "place_threads, membind, "                                                 \
  "nics, "                                                                   \
  "dryrun, strict, draw:PATH, help"

/* A non-negative decimal int, the whole of [s, s+len) (the project's one
 * decimal rule, mb_text.h). */
static int parse_count(const char *s, size_t len, int *out) {
  long long v;
  if (mb_parse_decimal(s, len, 0, INT_MAX, &v) != 0)
    return -1;
  *out = (int)v;
  return 0;
}

/* Keeps the first problem.  Later ones are not even formatted: each
 * message quotes the whole value, so formatting every bad word's would
 * cost words x length (a 128 KiB MPIBIND of bad words: seconds per task). */
__attribute__((format(printf, 2, 3))) static void
keep_error(struct mpibind_auto_tuning *t, const char *fmt, ...) {
  va_list ap;
  if (t->error != NULL)
    return;
  va_start(ap, fmt);
  if (vasprintf(&t->error, fmt, ap) < 0)
    t->error = NULL;
  va_end(ap);
}

/* `name` or `name:0|1`; returns 1 when the word has that name. */
static int bool_word(struct mpibind_auto_tuning *t, const char *label,
                     const char *value, const char *w, size_t len,
                     const char *name, int *out) {
  size_t n = strlen(name);
  if (len < n || !mb_ascii_caseeq(w, name, n))
    return 0;
  if (len == n) {
    *out = 1;
    return 1;
  }
  if (w[n] != ':')
    return 0;
  if (len == n + 2 && (w[n + 1] == '0' || w[n + 1] == '1')) {
    *out = w[n + 1] - '0';
    return 1;
  }
  keep_error(t,
             "%s='%s': bad value in '%.*s' (expected %s, "
             "%s:0 or %s:1)",
             label, value, (int)len, w, name, name, name);
  return 1;
}

static int is_word(const char *w, size_t len, const char *name) {
  return strlen(name) == len && mb_ascii_caseeq(w, name, len);
}

/* visible_devices[:task|all|none] (the word is 15 characters). */
static void visible_devices_word(struct mpibind_auto_tuning *t,
                                 const char *label, const char *value,
                                 const char *w, size_t len) {
  static const char *const modes[] = {"task", "all", "none"};
  if (len == 15) {
    t->visible_devices_word = MPIBIND_AUTO_GPUS_WORD;
    return;
  }
  for (int m = 0; m < 3; m++)
    if (is_word(w + 16, len - 16, modes[m])) {
      t->visible_devices_word = m; /* MPIBIND_AUTO_GPUS_TASK, _ALL, _NONE */
      return;
    }
  keep_error(t,
             "%s='%s': bad value in '%.*s' (expected visible_devices, "
             "visible_devices:task, visible_devices:all or "
             "visible_devices:none)",
             label, value, (int)len, w);
}

/* The word's meaning for this kind of task (tuning.h). */
static void resolve_visible_devices(struct mpibind_auto_tuning *t) {
  int w = t->visible_devices_word;
  if (w < 0)
    t->visible_devices = t->workers ? MPIBIND_AUTO_GPUS_ALL
                                    : MPIBIND_AUTO_GPUS_TASK;
  else if (w == MPIBIND_AUTO_GPUS_WORD)
    t->visible_devices = t->workers ? MPIBIND_AUTO_GPUS_TASK
                                    : MPIBIND_AUTO_GPUS_NONE;
  else
    t->visible_devices = w;
}

static void parse_mpibind(struct mpibind_auto_tuning *t, const char *label,
                          const char *value) {
  const char *p = value;
  while (*p) {
    const char *end = strchr(p, ',');
    if (end == NULL)
      end = p + strlen(p);
    const char *w = p;
    const char *we = end;
    while (w < we && mb_ascii_space((unsigned char)*w))
      w++;
    while (we > w && mb_ascii_space((unsigned char)we[-1]))
      we--;
    size_t len = (size_t)(we - w);
    int b = -1; /* bool_word() leaves it at -1 when it reports an error */

    if (len == 0) {
      /* empty items ("v,,smt:2", a trailing comma) are harmless */
    } else if (is_word(w, len, "on")) {
      t->off = 0;
    } else if (is_word(w, len, "off")) {
      t->off = 1;
    } else if (is_word(w, len, "v") || is_word(w, len, "verbose")) {
      t->verbose = 1;
    } else if (is_word(w, len, "dryrun")) {
      t->dryrun = 1;
    } else if (is_word(w, len, "strict")) {
      t->strict = 1;
    } else if (is_word(w, len, "help")) {
      t->help = 1;
    } else if (is_word(w, len, "omp_places")) {
      t->no_omp_places = 1;
    } else if (is_word(w, len, "omp_proc_bind")) {
      t->no_omp_proc_bind = 1;
    } else if (len >= 15 && mb_ascii_caseeq(w, "visible_devices", 15) &&
               (len == 15 || w[15] == ':')) {
      visible_devices_word(t, label, value, w, len);
    } else if (is_word(w, len, "place_threads")) {
      t->place_threads = 1;
    } else if (is_word(w, len, "membind")) {
      t->membind = 1;
    } else if (is_word(w, len, "nics")) {
      t->nics = 1;
    } else if (len >= 3 && mb_ascii_caseeq(w, "smt", 3) &&
               (len == 3 || w[3] == ':')) {
      int k;
      if (len > 4 && parse_count(w + 4, len - 4, &k) == 0)
        t->smt = k;
      else
        keep_error(t,
                   "%s='%s': bad value in '%.*s' (expected "
                   "smt:K with K a number of hardware threads per "
                   "core, 0 to choose)",
                   label, value, (int)len, w);
    } else if (len >= 4 && mb_ascii_caseeq(w, "draw", 4) &&
               (len == 4 || w[4] == ':')) {
      /* draw:PATH, the path as typed (case kept); the last one wins */
      if (len > 5) {
        free(t->draw);
        t->draw = strndup(w + 5, len - 5);
      } else {
        keep_error(t,
                   "%s='%s': missing file in '%.*s' (expected "
                   "draw:PATH, PATH ending in .svg, .png, .pdf or "
                   ".xml)",
                   label, value, (int)len, w);
      }
    } else if (bool_word(t, label, value, w, len, "greedy", &b)) {
      if (b >= 0)
        t->greedy = b;
    } else if (bool_word(t, label, value, w, len, "gpu_optim", &b) ||
               bool_word(t, label, value, w, len, "gpu", &b)) {
      if (b >= 0)
        t->gpu_optim = b;
    } else {
      keep_error(t, "%s='%s': unknown word '%.*s' (expected %s)", label, value,
                 (int)len, w, WORDS_EXPECTED);
    }
    p = *end ? end + 1 : end;
  }
}

static int all_space(const char *s) {
  for (; *s; s++)
    if (!mb_ascii_space((unsigned char)*s))
      return 0;
  return 1;
}

static void tuning_defaults(struct mpibind_auto_tuning *t,
                            mpibind_auto_getenv_f get, void *ctx) {
  memset(t, 0, sizeof *t);
  t->smt = t->greedy = t->gpu_optim = -1;
  t->restrict_type = -1;
  t->nthreads = -1;
  t->visible_devices_word = -1;
  t->get = get;
  t->get_ctx = ctx;
}

int mpibind_auto_tuning_words(struct mpibind_auto_tuning *t, const char *label,
                              const char *value) {
  tuning_defaults(t, NULL, NULL);
  parse_mpibind(t, label, value ? value : "");
  resolve_visible_devices(t);
  return t->error ? -1 : 0;
}

void mpibind_auto_tuning_of_task(struct mpibind_auto_tuning *t,
                                 const char *source, long launcher,
                                 int workers) {
  int torch = mpibind_auto_source_is_torch(source);
  t->workers = workers || torch;
  resolve_visible_devices(t);
  if (torch && t->nthreads == 1 && mpibind_auto_torch_agent_threads(launcher)) {
    t->nthreads = -1;
    t->agent_threads = 1;
  }
}

/* The variables a front end may set from an option of its own, and the
 * option each came from (mpibind_auto_name_option); NULL: the variable. */
static const char *const optional_vars[] = {
    "MPIBIND_RESTRICT", "MPIBIND_RESTRICT_TYPE", "MPIBIND_TOPOFILE",
    "OMP_NUM_THREADS"};
static const char *option_of[sizeof optional_vars / sizeof *optional_vars];

int mpibind_auto_name_option(const char *variable, const char *option) {
  for (size_t i = 0; i < sizeof optional_vars / sizeof *optional_vars; i++)
    if (variable != NULL && strcmp(variable, optional_vars[i]) == 0) {
      option_of[i] = option;
      return 0;
    }
  return -1;
}

const char *mpibind_auto_nameable_variable(int i) {
  return i >= 0 && (size_t)i < sizeof optional_vars / sizeof *optional_vars
             ? optional_vars[i]
             : NULL;
}

const char *mpibind_auto_value_name(const char *variable) {
  for (size_t i = 0; i < sizeof optional_vars / sizeof *optional_vars; i++)
    if (strcmp(variable, optional_vars[i]) == 0 && option_of[i] != NULL)
      return option_of[i];
  return variable;
}

char *mpibind_auto_value_names_key(void) {
  char *key = strdup("");
  for (size_t i = 0;
       key != NULL && i < sizeof optional_vars / sizeof *optional_vars; i++)
    if (option_of[i] != NULL) {
      char *k = mpibind_auto_strdupf("%s%s as %s\n", key, optional_vars[i],
                                     option_of[i]);
      free(key);
      key = k;
    }
  return key;
}

/* A discovery takes 10 ms to a second or two on large nodes with many
 * PCI devices, the mapping of a node of 8192 PUs a tenth of a second;
 * ten seconds is a hung plugin, not a slow machine.  The node's other
 * tasks wait for it (keyfile.c), so it stays well under their 30-second
 * lock wait. */
#define DEFAULT_TIMEOUT_SECONDS 10
#define MAX_TIMEOUT_SECONDS 86400

int mpibind_auto_timeout_seconds(const char *v, char **error) {
  long long s;
  if (v == NULL)
    return DEFAULT_TIMEOUT_SECONDS;
  if (mb_parse_decimal(v, strlen(v), 1, MAX_TIMEOUT_SECONDS, &s) != 0) {
    *error = mpibind_auto_strdupf(
        "MPIBIND_DISCOVERY_TIMEOUT='%s' is invalid: expected whole seconds "
        "from 1 to %d",
        v, MAX_TIMEOUT_SECONDS);
    return -1;
  }
  return (int)s;
}

static const char *process_getenv(const char *name, void *ctx) {
  (void)ctx;
  return getenv(name);
}

const char *mpibind_auto_getenv(const struct mpibind_auto_tuning *t,
                                const char *name) {
  return t->get ? t->get(name, t->get_ctx) : getenv(name);
}

int mpibind_auto_tuning_plainly_off(void) {
  const char *v = getenv("MPIBIND");
  return v != NULL && v[0] == 'o' && v[1] == 'f' && v[2] == 'f' && v[3] == '\0';
}

int mpibind_auto_tuning_read(struct mpibind_auto_tuning *t) {
  return mpibind_auto_tuning_read_from(t, process_getenv, NULL);
}

int mpibind_auto_tuning_read_from(struct mpibind_auto_tuning *t,
                                  mpibind_auto_getenv_f get, void *ctx) {
  const char *v;
  tuning_defaults(t, get, ctx);

  v = get("MPIBIND", ctx);
  if (v != NULL)
    parse_mpibind(t, "MPIBIND", v);
  resolve_visible_devices(t);
  if (t->off)
    return 0; /* off means no side effect, not even a warning */

  v = get("MPIBIND_RESTRICT", ctx);
  if (v != NULL) {
    if (all_space(v))
      keep_error(t,
                 "%s='%s' is empty (expected a list "
                 "of OS indexes such as 0-3,8)",
                 mpibind_auto_value_name("MPIBIND_RESTRICT"), v);
    else
      t->restrict_ids = v;
  }

  v = get("MPIBIND_RESTRICT_TYPE", ctx);
  if (v != NULL) {
    const char *s = v;
    size_t len;
    while (mb_ascii_space((unsigned char)*s))
      s++;
    len = strlen(s);
    while (len > 0 && mb_ascii_space((unsigned char)s[len - 1]))
      len--;
    if (is_word(s, len, "cpu"))
      t->restrict_type = MPIBIND_AUTO_RESTRICT_CPU;
    else if (is_word(s, len, "mem"))
      t->restrict_type = MPIBIND_AUTO_RESTRICT_MEM;
    else
      keep_error(t,
                 "%s='%s' is not a restrict type "
                 "(expected cpu or mem)",
                 mpibind_auto_value_name("MPIBIND_RESTRICT_TYPE"), v);
  }

  v = get("MPIBIND_TOPOFILE", ctx);
  if (v != NULL) {
    if (all_space(v))
      keep_error(t,
                 "%s='%s' is empty (expected the path "
                 "of an hwloc XML file of this node)",
                 mpibind_auto_value_name("MPIBIND_TOPOFILE"), v);
    else
      t->topofile = v;
  }

  /* checked here, not only where the helper starts: a bad value is the
   * same one line whether the node's mapping is cached or not */
  v = get("MPIBIND_DISCOVERY_TIMEOUT", ctx);
  if (v != NULL) {
    char *why = NULL;
    if (mpibind_auto_timeout_seconds(v, &why) < 0)
      keep_error(t, "%s", why ? why : "MPIBIND_DISCOVERY_TIMEOUT: out of memory");
    free(why);
  }

  /* OMP_NUM_THREADS may be a list for nested levels ("4,2"): the first
   * entry is the task's thread count, blanks around it, then a comma or
   * the end ("2 3" is no count: OpenMP runtimes refuse it too). */
  v = get("OMP_NUM_THREADS", ctx);
  if (v != NULL && !all_space(v)) {
    const char *s = v;
    const char *e, *after;
    long long n;
    while (mb_ascii_space((unsigned char)*s))
      s++;
    e = s;
    while (*e && *e != ',' && !mb_ascii_space((unsigned char)*e))
      e++;
    after = e;
    while (mb_ascii_space((unsigned char)*after))
      after++;
    if ((*after == '\0' || *after == ',') &&
        mb_parse_decimal(s, (size_t)(e - s), 1, MPIBIND_AUTO_NTHREADS_MAX,
                         &n) == 0)
      t->nthreads = (int)n;
    else
      keep_error(t,
                 "%s='%s' is not a thread count "
                 "(expected a positive integer up to %d)",
                 mpibind_auto_value_name("OMP_NUM_THREADS"), v,
                 MPIBIND_AUTO_NTHREADS_MAX);
  }

  return t->error ? -1 : 0;
}

void mpibind_auto_tuning_free(struct mpibind_auto_tuning *t) {
  free(t->error);
  t->error = NULL;
  free(t->draw);
  t->draw = NULL;
}
