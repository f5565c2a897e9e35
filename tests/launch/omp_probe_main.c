/* The OpenMP placement probe's program: OMP_PROBE_LANG names the build.
 * Built without -fopenmp when the probe is in a shared library (the
 * program itself has no OpenMP; the library it links does). */
#include "omp_probe.h"

int main(void)
{
  return omp_probe_report(OMP_PROBE_LANG);
}
