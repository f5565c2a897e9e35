/*
 * lifetime.h - the outputs' lifetime (lifetime.c; the LIFETIME rule of
 * mpibind.h).
 */
#ifndef MB_LIFETIME_H
#define MB_LIFETIME_H

#include "mpibind.h"

/* 0 when h holds a mapping of its current inputs; otherwise a failure
 * (ENODATA) saying why not.  Every output getter starts with it. */
int mb_check_mapped(mpibind_t *h);
/* mb_check_mapped, and task a task of that mapping (EINVAL otherwise). */
int mb_check_task(mpibind_t *h, int task);
/* Frees every output of mpibind() and what the getters handed out (the
 * variables, the retired topologies).  Only mpibind() (before mapping, and
 * on failure) and mpibind_finalize() call it. */
void mb_clear_outputs(mpibind_t *h);
/* Forgets the variables of mpibind_set_env_vars() (a half-built set). */
void mb_clear_env(mpibind_t *h);

#endif
