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
 * file of the user with one name (a new one is created 0644), opened
 * without following a symbolic link; anything else gets one line from
 * task 0 (local <= 0) on stderr and no trace. */
void mpibind_auto_trace(int local, int count, int how, int bound,
                        const char *cpus);
/* The same in two steps, for a line written by another image of the
 * process (the program started again, reexec.h): the line (malloc'ed,
 * ending in '\n'; NULL when MPIBIND_TRACE is unset or out of memory),
 * then appended (line NULL: nothing). */
char *mpibind_auto_trace_line(int local, int count, int how, int bound,
                              const char *cpus);
void mpibind_auto_trace_append(const char *line, int local);

#endif
