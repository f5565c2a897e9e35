/*
 * trace.h - MPIBIND_TRACE: one line per applying process (diagnostics and
 * the tests' and benchmarks' count of discoveries).  libc only.
 */
#ifndef MPIBIND_AUTO_TRACE_H
#define MPIBIND_AUTO_TRACE_H

/* Appends, with one write(2) and O_APPEND so that concurrent tasks never
 * interleave:
 *   host=<hostname> pid=<pid> task=<local>/<count>
 *   topology=<discovered|cache|file|none> bound=<0|1> cpus=<list>
 * how: MPIBIND_TOPO_* (machine.h); cpus NULL: empty.  Only to a regular
 * file; anything else gets one line from task 0 (local <= 0) on stderr. */
void mpibind_auto_trace(int local, int count, int how, int bound,
                        const char *cpus);

#endif
