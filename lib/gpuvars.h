/*
 * gpuvars.h - the GPU vendors mpibind knows and their runtimes'
 * variables, in one table (gpuvars.c).  Calls no other file.
 */
#ifndef MB_GPUVARS_H
#define MB_GPUVARS_H

/* PCI vendor ids of the GPU makers mpibind knows. */
#define MB_VENDOR_NVIDIA 0x10de
#define MB_VENDOR_AMD 0x1002
#define MB_VENDOR_INTEL 0x8086
/* Their slots (mb_vendor_slot): 0 NVIDIA, 1 AMD, 2 Intel. */
#define MB_NUM_VENDORS 3

int mb_vendor_slot(unsigned vendor);          /* -1: none of them */
unsigned mb_gpu_var_vendor(const char *name); /* 0: not a GPU variable */
const char *mb_gpu_var_written(int slot);     /* written for vendor slot */
char *mb_gpu_vars_expected(void); /* "A, B or C" (malloc'ed), for messages */

#endif
