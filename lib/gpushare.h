/*
 * gpushare.h - no GPU left idle (gpushare.c; docs/algorithm.md, "No GPU
 * left idle").
 */
#ifndef MB_GPUSHARE_H
#define MB_GPUSHARE_H

#include "domains.h"
#include "mpibind.h"

/* After step 5 over the nd domains d: when some GPU of h's list is held
 * by no domain, shares the GPUs out so that every one is used (see
 * gpushare.c).  0, or -1 with a failure on h (out of memory). */
int mb_share_stranded_gpus(mpibind_t *h, const struct mb_domain *d, int nd);

#endif
