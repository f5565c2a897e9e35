/* The OpenMP placement probe (omp_probe_lib.c). */
#ifndef OMP_PROBE_H
#define OMP_PROBE_H
#ifdef __cplusplus
extern "C" {
#endif
/* Runs one parallel region and prints its "OMPPROBE {...}" line; 0 or 2. */
int omp_probe_report(const char *lang);
#ifdef __cplusplus
}
#endif
#endif
