/*
 * maprequest.c - the helper maps the node for a task (maprequest.h).
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "helper.h"
#include "machine.h"
#include "maprequest.h"
#include "mb_gpuvar_table.h"
#include "mb_text.h"
#include "strdupf.h"

/* The number of variables a front end may name after its options. */
static int nameable_count(void) {
  int n = 0;
  while (mpibind_auto_nameable_variable(n) != NULL)
    n++;
  return n;
}

/* The request's arguments (argv[0] the helper; NULL-terminated; the
 * strings of --gpu and --name and the numbers malloc'ed in *owned). */
static char **request_argv(const struct mpibind_auto_inputs *in,
                           const char *draw, char ***owned) {
  int n = 0, k = 0, nameable = nameable_count();
  const char *var;
  char **argv = calloc(12 + 2 * ((size_t)mb_ngpuvars + (size_t)nameable),
                       sizeof *argv);
  char **own = calloc(3 + (size_t)mb_ngpuvars + (size_t)nameable, sizeof *own);
  *owned = own;
  if (argv == NULL || own == NULL) {
    free(argv);
    return NULL;
  }
  argv[n++] = (char *)mpibind_auto_helper_path();
  argv[n++] = "--map";
  argv[n++] = "--ntasks";
  argv[n++] = own[k++] = mpibind_auto_strdupf("%d", in->ntasks);
  if (in->source) {
    argv[n++] = "--source";
    argv[n++] = (char *)in->source;
  }
  if (in->launcher > 0) {
    argv[n++] = "--launcher";
    argv[n++] = own[k++] = mpibind_auto_strdupf("%ld", in->launcher);
  }
  for (int i = 0; i < mb_ngpuvars; i++)
    if (in->gpu_alloc[i]) {
      argv[n++] = "--gpu";
      argv[n++] = own[k++] = mpibind_auto_strdupf("%s=%s", mb_gpuvars[i].name,
                                                   in->gpu_alloc[i]);
    }
  /* the options the messages name instead of the variables */
  for (int i = 0; (var = mpibind_auto_nameable_variable(i)) != NULL; i++) {
    const char *name = mpibind_auto_value_name(var);
    if (strcmp(name, var) != 0) {
      argv[n++] = "--name";
      argv[n++] = own[k++] = mpibind_auto_strdupf("%s=%s", var, name);
    }
  }
  if (draw) {
    argv[n++] = "--draw";
    argv[n++] = (char *)draw;
  }
  for (int i = 0; i < k; i++)
    if (own[i] == NULL) {
      free(argv);
      return NULL;
    }
  return argv;
}

static void free_owned(char **own) {
  for (int i = 0; own && own[i]; i++)
    free(own[i]);
  free(own);
}

/* What the answer says. */
struct answer {
  enum mpibind_auto_helper_step step;
  int how;
  const char *topology, *warning, *failed; /* in the output */
  size_t topology_len, warning_len, failed_len;
  const char *body;
  size_t body_len;
  int has_body;
};

/* The line's value when it starts with `word`. */
static int item(const char *line, size_t len, const char *word,
                const char **value, size_t *vlen) {
  size_t w = strlen(word);
  if (len < w || strncmp(line, word, w) != 0)
    return 0;
  *value = line + w;
  *vlen = len - w;
  return 1;
}

/* The step a "step" line names. */
static enum mpibind_auto_helper_step step_named(const char *v, size_t len) {
  if (len == 8 && strncmp(v, "topofile", 8) == 0)
    return MPIBIND_AUTO_STEP_TOPOFILE;
  if (len == 9 && strncmp(v, "discovery", 9) == 0)
    return MPIBIND_AUTO_STEP_DISCOVERY;
  return MPIBIND_AUTO_STEP_MAP;
}

/* The MPIBIND_TOPO_* a "how" line names (MPIBIND_TOPO_NONE: none). */
static int how_named(const char *v, size_t len) {
  for (int h = 0; h < 4; h++)
    if (strlen(mpibind_auto_how_names[h]) == len &&
        strncmp(v, mpibind_auto_how_names[h], len) == 0)
      return h;
  return MPIBIND_TOPO_NONE;
}

/* One line of the answer (without its newline); 1 when it is the body's
 * (`rest`: what follows it). */
static int read_item(const char *p, size_t l, const char *rest,
                     size_t rest_len, struct answer *a) {
  const char *v;
  size_t vlen;
  long long n;
  if (item(p, l, MPIBIND_AUTO_ANSWER_STEP, &v, &vlen))
    a->step = step_named(v, vlen);
  else if (item(p, l, MPIBIND_AUTO_ANSWER_HOW, &v, &vlen))
    a->how = how_named(v, vlen);
  else if (item(p, l, MPIBIND_AUTO_ANSWER_TOPOLOGY, &a->topology,
                &a->topology_len) ||
           item(p, l, MPIBIND_AUTO_ANSWER_WARNING, &a->warning,
                &a->warning_len) ||
           item(p, l, MPIBIND_AUTO_ANSWER_FAILED, &a->failed, &a->failed_len))
    return 0;
  else if (rest && item(p, l, MPIBIND_AUTO_ANSWER_BODY, &v, &vlen) &&
           mb_parse_decimal(v, vlen, 0, LLONG_MAX, &n) == 0 &&
           (unsigned long long)n == (unsigned long long)rest_len) {
    a->body = rest;
    a->body_len = rest_len;
    a->has_body = 1;
    return 1;
  }
  return 0;
}

static void read_answer(const char *out, size_t len, struct answer *a) {
  const char *p = out, *end = out + len;
  memset(a, 0, sizeof *a);
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (read_item(p, l, nl ? nl + 1 : NULL, nl ? (size_t)(end - nl - 1) : 0,
                  a) ||
        nl == NULL)
      return;
    p = nl + 1;
  }
}

/* The helper exited with status 0, or its status was lost to the
 * program's SIGCHLD handler (then the answer decides: a body says its
 * length first, so a whole one is a finished answer). */
static int exited_well(const struct mpibind_auto_helper_output *o) {
  return o->run.status == -1 ||
         (WIFEXITED(o->run.status) && WEXITSTATUS(o->run.status) == 0);
}

/* Runs a request; 0 with the helper's output and what it says, or -1
 * with *error (the helper could not run, or it failed: *error says how). */
static int ask(const struct mpibind_auto_inputs *in, const char *draw,
               struct mpibind_auto_helper_output *o, struct answer *a,
               char **error) {
  char **owned = NULL, **argv = request_argv(in, draw, &owned);
  int rc;
  if (argv == NULL) {
    free_owned(owned);
    *error = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  rc = mpibind_auto_helper_run(argv, o, error);
  free(argv);
  free_owned(owned);
  if (rc != 0)
    return -1;
  read_answer(o->run.out ? o->run.out : "", o->run.out_len, a);
  if (a->failed && !o->run.timed_out) {
    *error = mpibind_auto_strdupf("%.*s", (int)a->failed_len, a->failed);
    rc = -1;
  } else if (o->run.timed_out || (!draw && !a->has_body) ||
             !exited_well(o)) {
    *error = mpibind_auto_helper_problem(
        a->step, mpibind_auto_value_name("MPIBIND_TOPOFILE"), in->t->topofile,
        o);
    rc = -1;
  }
  if (rc != 0)
    mpibind_auto_helper_output_free(o);
  return rc;
}

int mpibind_auto_map_in_helper(void *ctx, const struct mpibind_auto_inputs *in,
                               struct mpibind_auto_map_answer *a,
                               char **error) {
  struct mpibind_auto_helper_output o;
  struct answer ans;
  (void)ctx;
  memset(a, 0, sizeof *a);
  if (ask(in, NULL, &o, &ans, error) != 0)
    return -1;
  a->body = malloc(ans.body_len + 1);
  a->topology = ans.topology ? strndup(ans.topology, ans.topology_len) : NULL;
  if (a->body == NULL || (ans.topology && a->topology == NULL)) {
    mpibind_auto_map_answer_free(a);
    mpibind_auto_helper_output_free(&o);
    *error = mpibind_auto_strdupf("out of memory");
    return -1;
  }
  memcpy(a->body, ans.body, ans.body_len);
  a->body[ans.body_len] = '\0';
  a->len = ans.body_len;
  a->how = ans.how;
  mpibind_auto_helper_output_free(&o);
  return 0;
}

char *mpibind_auto_draw_in_helper(const struct mpibind_auto_inputs *in,
                                  const char *path) {
  struct mpibind_auto_helper_output o;
  struct answer ans;
  char *error = NULL, *line = NULL;
  if (ask(in, path, &o, &ans, &error) != 0) {
    line = mpibind_auto_strdupf("mpibind: MPIBIND draw:%s: %s; the mapping "
                                "is applied, without a picture",
                                path, error ? error : "out of memory");
    free(error);
    return line;
  }
  if (ans.warning)
    line = strndup(ans.warning, ans.warning_len);
  mpibind_auto_helper_output_free(&o);
  return line;
}
