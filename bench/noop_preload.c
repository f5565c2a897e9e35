/*
 * noop_preload.c - the floor of the preload benchmarks (task_cost.py): an
 * LD_PRELOAD library whose constructor does nothing, so that what the
 * dynamic loader charges for preloading any library is not counted as
 * mpibind's.
 */
__attribute__((constructor)) static void noop_preload_load(void) {}
