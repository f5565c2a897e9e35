/*
 * gpuvars.c - the GPU vendors mpibind knows, and the rules over the one
 * table of their runtimes' variables (lib/common/gpuvar_table.c): which
 * variable names an allocation of which vendor's GPUs
 * (mpibind_set_gpu_allocation), and which one mpibind writes for a task
 * (mpibind_set_env_vars, docs/algorithm.md step 6).  The front ends ask
 * the library (mpibind_get_gpu_var), or read the same table where they
 * must not load the library (auto/task/).
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

const char *mpibind_get_gpu_var(int i)
{
  return i >= 0 && i < mb_ngpuvars ? mb_gpuvars[i].name : NULL;
}

unsigned mb_gpu_var_vendor(const char *name)
{
  for (int i = 0; name && i < mb_ngpuvars; i++)
    if (strcmp(name, mb_gpuvars[i].name) == 0)
      return mb_gpuvars[i].vendor;
  return 0;
}

const char *mb_gpu_var_written(int slot)
{
  for (int i = 0; i < mb_ngpuvars; i++)
    if (mb_gpuvars[i].written && mb_vendor_slot(mb_gpuvars[i].vendor) == slot)
      return mb_gpuvars[i].name;
  return NULL;
}

char *mb_gpu_vars_expected(void)
{
  size_t len = 1;
  for (int i = 0; i < mb_ngpuvars; i++)
    len += strlen(mb_gpuvars[i].name) + 4;
  char *s = malloc(len);
  if (!s)
    return NULL;
  *s = '\0';
  for (int i = 0; i < mb_ngpuvars; i++) {
    if (i > 0)
      strcat(s, i == mb_ngpuvars - 1 ? " or " : ", ");
    strcat(s, mb_gpuvars[i].name);
  }
  return s;
}
