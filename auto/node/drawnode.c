/*
 * drawnode.c - MPIBIND=draw:PATH: the picture of a node's mapping, drawn
 * once per node at launch (drawnode.h): by the helper, asked by the
 * node's task 0 (the preload, the wrapper), or by the Slurm plugin in the
 * node's task 0.
 *
 * Why the host name in the file name: a job's nodes usually share a file
 * system, and each node has its own mapping; "map.svg" on node n1 becomes
 * "map-n1.svg".  The renderer (a child process) gets no LD_PRELOAD
 * (lib/draw.c), so it never maps or draws again.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drawnode.h"
#include "strdupf.h"

/* PATH with "-HOST" before the extension of its last component (or at
 * the end when it has none).  Caller frees. */
static char *per_host(const char *path)
{
  char host[HOST_NAME_MAX + 1];
  if (gethostname(host, sizeof host) != 0)
    strcpy(host, "unknown-host");
  host[sizeof host - 1] = '\0';
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash + 1 : path, '.');
  size_t stem = dot && dot != (slash ? slash + 1 : path) ? (size_t)(dot - path)
                                                        : strlen(path);
  return mpibind_auto_strdupf("%.*s-%s%s", (int)stem, path, host,
                              path + stem);
}

char *mpibind_auto_draw_warning(mpibind_t *h, const char *path)
{
  char *file = per_host(path), *line = NULL;
  if (file == NULL)
    return mpibind_auto_strdupf("mpibind: MPIBIND draw:%s: out of memory; "
                                "the mapping is applied, without a picture",
                                path);
  if (mpibind_draw(h, file) != 0)
    line = mpibind_auto_strdupf("mpibind: MPIBIND draw:%s: %s; the mapping "
                                "is applied, without a picture",
                                path, mpibind_get_error(h));
  free(file);
  return line;
}

void mpibind_auto_draw(mpibind_t *h, const char *path)
{
  char *line = mpibind_auto_draw_warning(h, path);
  if (line)
    fprintf(stderr, "%s\n", line);
  free(line);
}
