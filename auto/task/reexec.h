/*
 * reexec.h - the program started again in the same process, so that an
 * OpenMP runtime that read its variables before the preload ran reads
 * them again (reexec.c says when and why).  libc only.
 */
#ifndef MPIBIND_AUTO_REEXEC_H
#define MPIBIND_AUTO_REEXEC_H

/* 1 when this image is the re-executed one (MPIBIND_REEXEC is our pid). */
int mpibind_auto_reexec_done(void);
/* In the re-executed image: writes the task's trace line that the old one
 * handed over, and removes MPIBIND_REEXEC from the environment (the
 * program never sees it). */
void mpibind_auto_reexec_finish(void);
/* Why the program cannot be started again here (a phrase: a setuid
 * program, valgrind, ld.so; reexec.c), or NULL. */
const char *mpibind_auto_reexec_impossible(void);
/* Starts the program again with argc and argv, the arguments glibc gave
 * the preload's constructor, once they are checked to be those the
 * program was started with; trace (NULL: none) is task `local`'s trace
 * line, which the new image writes.  Never returns when it worked;
 * otherwise -1 with *why (malloc'ed, one phrase: why not, or execve's
 * error). */
int mpibind_auto_reexec(int argc, char **argv, int local, const char *trace,
                        char **why);

#endif
