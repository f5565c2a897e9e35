/*
 * reexec.h - the program started again in the same process, so that an
 * OpenMP runtime that read its variables before the preload ran reads
 * them again (reexec.c says when and why).  libc only.
 */
#ifndef MPIBIND_AUTO_REEXEC_H
#define MPIBIND_AUTO_REEXEC_H

/* 1 when this image is the re-executed one (MPIBIND_REEXEC is our pid). */
int mpibind_auto_reexec_done(void);
/* Removes MPIBIND_REEXEC from the environment (the program never sees it). */
void mpibind_auto_reexec_forget(void);
/* 1 when a re-exec is allowed here (see reexec.c for the exclusions). */
int mpibind_auto_reexec_possible(void);
/* Re-executes the program (never returns) or returns -1. */
int mpibind_auto_reexec(void);

#endif
