/*
 * gpuvars.c - the GPU vendors mpibind knows, and the variables of their
 * runtimes in one table: which variable names an allocation of which
 * vendor's GPUs (mpibind_set_gpu_allocation), and which one mpibind
 * writes for a task (mpibind_set_env_vars, docs/algorithm.md step 6).  The front ends ask
 * the library (mpibind_get_gpu_var) instead of keeping their own list.
 */
#include <stdlib.h>
#include <string.h>

#include "gpuvars.h"
#include "mpibind.h"

int mb_vendor_slot(unsigned vendor)
{
  switch (vendor) {
  case MB_VENDOR_NVIDIA: return 0;
  case MB_VENDOR_AMD: return 1;
  case MB_VENDOR_INTEL: return 2;
  default: return -1;
  }
}

static const struct {
  const char *name;
  unsigned vendor; /* PCI vendor id */
  int written;     /* the variable mpibind writes for that vendor */
} gpu_vars[] = {
    {"CUDA_VISIBLE_DEVICES", MB_VENDOR_NVIDIA, 1},
    {"ROCR_VISIBLE_DEVICES", MB_VENDOR_AMD, 1},
    /* read; written over ROCr's devices only when inherited (env.c) */
    {"HIP_VISIBLE_DEVICES", MB_VENDOR_AMD, 0},
    {"ZE_AFFINITY_MASK", MB_VENDOR_INTEL, 1},  /* beyond the original */
};
#define NVARS ((int)(sizeof gpu_vars / sizeof *gpu_vars))

const char *mpibind_get_gpu_var(int i)
{
  return i >= 0 && i < NVARS ? gpu_vars[i].name : NULL;
}

unsigned mb_gpu_var_vendor(const char *name)
{
  for (int i = 0; name && i < NVARS; i++)
    if (strcmp(name, gpu_vars[i].name) == 0)
      return gpu_vars[i].vendor;
  return 0;
}

const char *mb_gpu_var_written(int slot)
{
  for (int i = 0; i < NVARS; i++)
    if (gpu_vars[i].written && mb_vendor_slot(gpu_vars[i].vendor) == slot)
      return gpu_vars[i].name;
  return NULL;
}

char *mb_gpu_vars_expected(void)
{
  size_t len = 1;
  for (int i = 0; i < NVARS; i++)
    len += strlen(gpu_vars[i].name) + 4;
  char *s = malloc(len);
  if (!s)
    return NULL;
  *s = '\0';
  for (int i = 0; i < NVARS; i++) {
    if (i > 0)
      strcat(s, i == NVARS - 1 ? " or " : ", ");
    strcat(s, gpu_vars[i].name);
  }
  return s;
}
