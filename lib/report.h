/*
 * report.h - what the report and the variables share (report.c).
 */
#ifndef MB_REPORT_H
#define MB_REPORT_H

#include "mpibind.h"

/* The task's GPUs of one vendor slot (-1: all), comma-separated, in the
 * given id kind.  Caller frees; NULL when out of memory. */
char *mb_task_gpu_ids(mpibind_t *h, int task, int kind, int vendor_slot);

#endif
