/*
 * drawnode.h - MPIBIND=draw:PATH: the picture of a node's mapping, drawn
 * once per node (drawnode.c says why the host name goes into the file
 * name).  A failure is one warning line and changes nothing else: the
 * picture is a by-product of the launch.
 */
#ifndef MPIBIND_AUTO_DRAWNODE_H
#define MPIBIND_AUTO_DRAWNODE_H

#include "mpibind.h"

/* Draws h's mapping (computed) into PATH with "-<host>" before its
 * extension, by mpibind_draw().  NULL, or the warning line when no
 * picture was made ("mpibind: MPIBIND draw:PATH: <why>; ...",
 * malloc'ed). */
char *mpibind_auto_draw_warning(mpibind_t *h, const char *path);

/* The same, the warning printed on stderr (the Slurm plugin, in the
 * node's task 0 after it is applied). */
void mpibind_auto_draw(mpibind_t *h, const char *path);

#endif
