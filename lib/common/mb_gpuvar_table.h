/*
 * mb_gpuvar_table.h - the GPU variables of the runtimes, in one table:
 * which variable names an allocation of which vendor's GPUs, and which
 * one mpibind writes for a task (docs/algorithm.md step 6).  Internal,
 * never installed.  libc only (the static library mpibind-libc): the
 * library reads it (gpuvars.c: mpibind_get_gpu_var and the rules) and so
 * does the code in the application's process (auto/task/), which must
 * know the names set at launch without loading libmpibind.
 */
#ifndef MB_GPUVAR_TABLE_H
#define MB_GPUVAR_TABLE_H

/* PCI vendor ids of the GPU makers mpibind knows. */
#define MB_VENDOR_NVIDIA 0x10de
#define MB_VENDOR_AMD 0x1002
#define MB_VENDOR_INTEL 0x8086

struct mb_gpuvar {
  const char *name;
  unsigned vendor; /* PCI vendor id */
  int written;     /* the variable mpibind writes for that vendor */
};

/* In mpibind_get_gpu_var()'s order; mb_ngpuvars entries. */
extern const struct mb_gpuvar mb_gpuvars[];
extern const int mb_ngpuvars;

#endif
