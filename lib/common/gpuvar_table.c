/*
 * gpuvar_table.c - the one table of GPU variables (see mb_gpuvar_table.h).
 */
#include "mb_gpuvar_table.h"

const struct mb_gpuvar mb_gpuvars[] = {
    {"CUDA_VISIBLE_DEVICES", MB_VENDOR_NVIDIA, 1},
    {"ROCR_VISIBLE_DEVICES", MB_VENDOR_AMD, 1},
    /* read; written over ROCr's devices only when inherited (lib/env.c) */
    {"HIP_VISIBLE_DEVICES", MB_VENDOR_AMD, 0},
    {"ZE_AFFINITY_MASK", MB_VENDOR_INTEL, 1},  /* beyond the original */
};
const int mb_ngpuvars = (int)(sizeof mb_gpuvars / sizeof mb_gpuvars[0]);
