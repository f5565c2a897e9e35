/*
 * gpuvars.h - the GPU vendors mpibind knows and the rules over their
 * runtimes' variables (gpuvars.c), read from the one table of
 * mb_gpuvar_table.h (lib/common/, which also has the vendors' PCI ids).
 * Calls no other file.
 */
#ifndef MB_GPUVARS_H
#define MB_GPUVARS_H

#include "mb_gpuvar_table.h" /* MB_VENDOR_*, the table */

/* Their slots (mb_vendor_slot): 0 NVIDIA, 1 AMD, 2 Intel. */
#define MB_NUM_VENDORS 3

int mb_vendor_slot(unsigned vendor);          /* -1: none of them */
unsigned mb_gpu_var_vendor(const char *name); /* 0: not a GPU variable */
const char *mb_gpu_var_written(int slot);     /* written for vendor slot */
char *mb_gpu_vars_expected(void); /* "A, B or C" (malloc'ed), for messages */

#endif
