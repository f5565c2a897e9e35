/*
 * drawnode.c - MPIBIND=draw:PATH: the picture of a node's mapping, drawn
 * by the node's task 0 at launch (contract in mpibind_auto_internal.h).
 *
 * Why the host name in the file name: a job's nodes usually share a file
 * system, and each node has its own mapping; "map.svg" on node n1 becomes
 * "map-n1.svg".  It runs after MPIBIND_APPLIED=1 is exported, so that the
 * renderer (a child process) never maps or draws again, whatever preload
 * it inherits.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"

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

void mpibind_auto_draw(mpibind_t *h, const char *path)
{
  char *file = per_host(path);
  if (file == NULL) {
    fprintf(stderr, "mpibind: MPIBIND draw:%s: out of memory; the mapping "
                    "is applied, without a picture\n",
            path);
    return;
  }
  if (mpibind_draw(h, file) != 0)
    fprintf(stderr, "mpibind: MPIBIND draw:%s: %s; the mapping is applied, "
                    "without a picture\n",
            path, mpibind_get_error(h));
  free(file);
}
