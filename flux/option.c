/*
 * option.c - `-o mpibind[=...]` as the project's word list (see
 * flux_plugin.h for the contract).
 *
 * Flux keeps a shell option as JSON: `-o mpibind` is 1, `-o mpibind=v,smt:2`
 * the string, `-o mpibind=0` the number, `-o mpibind.smt=2` the object
 * {"smt": 2}.  Every form ends as one comma list of MPIBIND's words, which
 * the grammar (auto/task/tuning.c) then judges, so that a bad value is named the
 * same way whichever form carried it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "flux_plugin.h"
#include "mpibind_auto_node.h"

/* 1 when `word` alone is a word of the grammar. */
static int grammar_accepts(const char *word) {
  struct mpibind_auto_tuning t;
  int ok = mpibind_auto_tuning_words(&t, "-o mpibind", word) == 0;
  mpibind_auto_tuning_free(&t);
  return ok;
}

/* The original Flux plugin's WORD:N for a word that takes no value
 * (verbose:1, dryrun:0): WORD when N > 0, "" when N is 0; any other word
 * as it is.  Malloc'ed. */
static char *flux_spelling(const char *word, size_t len) {
  char *w = strndup(word, len);
  char *colon = w ? strrchr(w, ':') : NULL;
  const char *p;
  if (colon == NULL || colon[1] == '\0' || grammar_accepts(w))
    return w;
  for (p = colon + 1; *p && isdigit((unsigned char)*p); p++)
    ;
  if (*p != '\0')
    return w;
  *colon = '\0';
  if (!grammar_accepts(w)) {
    *colon = ':';
    return w; /* not a flag word: the grammar names it as typed */
  }
  if (strspn(colon + 1, "0") == strlen(colon + 1))
    *w = '\0';
  return w;
}

/* Appends `word` to the list *out ("a,b"); 0, or -1 out of memory. */
static int append(char **out, const char *word) {
  char *more;
  if (*word == '\0')
    return 0;
  more = mpibind_auto_strdupf("%s%s%s", *out, **out ? "," : "", word);
  if (more == NULL)
    return -1;
  free(*out);
  *out = more;
  return 0;
}

/* A string option: each comma item in Flux's spelling, blanks kept for
 * the grammar (which trims them). */
static int words_of_string(const char *s, char **out) {
  while (1) {
    size_t len = strcspn(s, ",");
    char *w = flux_spelling(s, len);
    /* an item of blanks only stays (the grammar ignores empty items) */
    if (w == NULL || append(out, w) != 0) {
      free(w);
      return -1;
    }
    free(w);
    if (s[len] == '\0')
      return 0;
    s += len + 1;
  }
}

/* One key of the object form: KEY:VALUE in Flux's spelling. */
static int word_of_key(const char *key, json_t *v, char **out, char **msg) {
  char *w = NULL, *sp;
  int rc;
  if (json_is_string(v))
    w = mpibind_auto_strdupf("%s:%s", key, json_string_value(v));
  else if (json_is_boolean(v))
    w = mpibind_auto_strdupf("%s:%d", key, json_is_true(v) ? 1 : 0);
  else if (json_is_integer(v))
    w = mpibind_auto_strdupf("%s:%lld", key,
                             (long long)json_integer_value(v));
  else {
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    *msg = mpibind_auto_strdupf("-o mpibind.%s=%s: expected a number, "
                                "true or false, or a string",
                                key, text ? text : "?");
    free(text);
    return -1;
  }
  if (w == NULL)
    return -1;
  sp = flux_spelling(w, strlen(w));
  rc = sp ? append(out, sp) : -1;
  free(sp);
  free(w);
  return rc;
}

char *mpibind_flux_option_words(const char *json, char **msg) {
  json_error_t err;
  json_t *o = json_loads(json, JSON_DECODE_ANY, &err);
  char *out = strdup("");
  int rc = 0;
  *msg = NULL;
  if (o == NULL || out == NULL) {
    *msg = mpibind_auto_strdupf("-o mpibind: cannot read the option's "
                                "value '%s'", json);
    rc = -1;
  } else if (json_is_string(o)) {
    rc = words_of_string(json_string_value(o), &out);
  } else if (json_is_boolean(o) || json_is_integer(o) || json_is_real(o)) {
    int on = json_is_true(o) || (json_is_integer(o) && json_integer_value(o)) ||
             (json_is_real(o) && json_real_value(o) != 0.0);
    rc = append(&out, on ? "on" : "off");
  } else if (json_is_object(o)) {
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
      if ((rc = word_of_key(key, v, &out, msg)) != 0)
        break;
    }
  } else {
    *msg = mpibind_auto_strdupf("-o mpibind=%s: expected a list of words "
                                "(v,smt:2), a number or an object "
                                "(-o mpibind.smt=2)",
                                json);
    rc = -1;
  }
  json_decref(o);
  if (rc != 0) {
    if (*msg == NULL)
      *msg = strdup("out of memory");
    free(out);
    return NULL;
  }
  return out;
}
