/*
 * gpushare.h - no GPU left idle (gpushare.c; docs/algorithm.md, "No GPU
 * left idle").
 */
#ifndef MB_GPUSHARE_H
#define MB_GPUSHARE_H

#include "mpibind.h"

/* After step 5: when it left a GPU of h's list to no task, or a task
 * without a GPU, shares the GPUs out so that every one is used and every
 * task has its share (see gpushare.c).  0, or -1 with a failure on h
 * (out of memory). */
int mb_share_idle_gpus(mpibind_t *h);

#endif
