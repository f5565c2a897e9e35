/*
 * fuzz_tuning.c - libFuzzer target: the preload's tuning grammar
 * (auto/tuning.c) over MPIBIND, MPIBIND_RESTRICT,
 * MPIBIND_RESTRICT_TYPE, MPIBIND_TOPOFILE and OMP_NUM_THREADS.  The
 * input holds their values separated by NUL bytes (a missing field leaves
 * the variable unset).  Checks: a result within the documented ranges,
 * and an error exactly when one is returned.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "tuning.h"

static const char *const vars[] = {"MPIBIND", "MPIBIND_RESTRICT",
                                   "MPIBIND_RESTRICT_TYPE",
                                   "MPIBIND_TOPOFILE", "OMP_NUM_THREADS"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *buf = malloc(size + 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  /* A private environment per input: setenv never frees replaced values,
   * which a long run would pile up. */
  static char *env[sizeof vars / sizeof *vars + 1];
  const char *p = buf, *end = buf + size;
  size_t n = 0;
  for (size_t i = 0; i < sizeof vars / sizeof *vars && p <= end; i++) {
    if (asprintf(&env[n], "%s=%s", vars[i], p) < 0)
      abort();
    n++;
    p += strlen(p) + 1;
  }
  env[n] = NULL;
  char **saved = environ;
  environ = env;
  struct mpibind_auto_tuning t;
  int rc = mpibind_auto_tuning_read(&t);
  if (rc != 0 && t.error == NULL)
    abort(); /* a failure always says why */
  if (!t.off && (rc != 0) != (t.error != NULL))
    abort(); /* off returns 0 even next to a bad word */
  if (t.smt < -1 || t.greedy < -1 || t.greedy > 1 || t.gpu_optim < -1 ||
      t.gpu_optim > 1 || t.nthreads == 0 || t.nthreads < -1 ||
      t.restrict_type < -1 || t.restrict_type > 1)
    abort();
  mpibind_auto_tuning_free(&t);
  environ = saved;
  for (size_t i = 0; i < n; i++)
    free(env[i]);
  free(buf);
  return 0;
}
