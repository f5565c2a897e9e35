/*
 * option.c - `-o mpibind[=...]` as the project's word list (see
 * flux_plugin.h for the contract).
 *
 * Flux keeps a shell option as JSON: `-o mpibind` is 1, `-o mpibind=v,smt:2`
 * the string, `-o mpibind=0` the number, `-o mpibind.smt=2` the object
 * {"smt": 2}.  Every form ends as one comma list of MPIBIND's words, which
 * the grammar (auto/task/tuning.c) judges here, so that a bad value is named
 * the same way whichever form carried it, as the user typed it (the string,
 * or mpibind.KEY=VALUE of the object form).  Flux takes any value: only the
 * forms the documentation gives are accepted (a number other than 1 or 0, an
 * empty value, a list, null are refused).
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

/* 1 when WORD takes a value of its own in the grammar (greedy:0|1,
 * smt:K, visible_devices:task): its WORD:N is the grammar's to judge. */
static int takes_value(const char *word) {
  char *w1 = mpibind_auto_strdupf("%s:1", word);
  int yes = w1 && grammar_accepts(w1);
  free(w1);
  return yes;
}

/* The original Flux plugin's WORD:N for a flag word that takes no value
 * (verbose:2, dryrun:0): WORD when N > 0, "" when N is 0; any other word
 * as it is, for the grammar to accept or refuse as typed (greedy:2,
 * smt:2:3).  Malloc'ed. */
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
  if (strchr(w, ':') != NULL || !grammar_accepts(w) || takes_value(w)) {
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

/* What a value may be, for the messages. */
#define EXPECTED                                                              \
  "expected 1 or 0 (on or off), true or false, a list of words (v,smt:2) "   \
  "or one word per key (-o mpibind.smt=2)"

/* The grammar's judgement of `words`, the translation of what the user
 * typed, `as_typed` ("-o mpibind='v,bogus'", "-o mpibind.bogus=1"): the
 * message names what was typed, then says what is wrong and what was
 * expected as the grammar does. */
static int judge(const char *words, const char *as_typed, char **msg) {
  struct mpibind_auto_tuning t;
  int rc = mpibind_auto_tuning_words(&t, "-o mpibind", words);
  if (rc != 0) {
    char *prefix = mpibind_auto_strdupf("-o mpibind='%s': ", words);
    const char *e = t.error;
    size_t n = prefix ? strlen(prefix) : 0;
    if (e && prefix && strncmp(e, prefix, n) == 0)
      *msg = mpibind_auto_strdupf("%s: %s", as_typed, e + n);
    else
      *msg = e ? strdup(e) : NULL;
    free(prefix);
  }
  mpibind_auto_tuning_free(&t);
  return rc != 0 ? -1 : 0;
}

/* 1 when the string holds no word at all: only blanks and commas. */
static int no_word(const char *s) {
  for (; *s; s++)
    if (*s != ',' && !isspace((unsigned char)*s))
      return 0;
  return 1;
}

/* A value as the user typed it after `mpibind.KEY=` (a string as is). */
static char *typed_value(json_t *v) {
  if (json_is_string(v))
    return strdup(json_string_value(v));
  return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

static int words_of_object(json_t *o, char **out, char **msg) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    char *one = strdup(""), *typed, *as_typed;
    int rc = one ? word_of_key(key, v, &one, msg) : -1;
    if (rc == 0) {
      typed = typed_value(v);
      as_typed = mpibind_auto_strdupf("-o mpibind.%s=%s", key,
                                      typed ? typed : "?");
      rc = as_typed ? judge(one, as_typed, msg) : -1;
      free(typed);
      free(as_typed);
    }
    if (rc == 0)
      rc = append(out, one);
    free(one);
    if (rc != 0)
      return -1;
  }
  return 0;
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
  } else if (json_is_string(o) && !no_word(json_string_value(o))) {
    char *as_typed = mpibind_auto_strdupf("-o mpibind='%s'",
                                          json_string_value(o));
    rc = words_of_string(json_string_value(o), &out);
    if (rc == 0)
      rc = as_typed ? judge(out, as_typed, msg) : -1;
    free(as_typed);
  } else if (json_is_string(o)) {
    *msg = mpibind_auto_strdupf("-o mpibind='%s': no word (" EXPECTED ")",
                                json_string_value(o));
    rc = -1;
  } else if (json_is_boolean(o) ||
             (json_is_integer(o) && (json_integer_value(o) == 0 ||
                                     json_integer_value(o) == 1))) {
    int on = json_is_true(o) || (json_is_integer(o) && json_integer_value(o));
    rc = append(&out, on ? "on" : "off");
  } else if (json_is_object(o)) {
    rc = words_of_object(o, &out, msg);
  } else {
    *msg = mpibind_auto_strdupf("-o mpibind=%s: " EXPECTED, json);
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
