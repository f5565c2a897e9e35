/*
 * trace.c - MPIBIND_TRACE's line (trace.h).
 *
 * Why the file is opened as the cache files are (no symlink followed, a
 * regular file of the user with one name): the path is often in a shared
 * directory (a project's, /tmp), where another user could plant a
 * symbolic or hard link to a file of the victim's (~/.bashrc) and have
 * every task of the victim's jobs append to it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"
#include "mb_text.h"
#include "strdupf.h"
#include "trace.h"

char *mpibind_auto_trace_line(int local, int count, int how, int bound,
                              const char *cpus) {
  const char *path = getenv("MPIBIND_TRACE");
  char host[HOST_NAME_MAX + 1];
  if (path == NULL || path[0] == '\0')
    return NULL;
  if (gethostname(host, sizeof host) != 0)
    strcpy(host, "?");
  host[sizeof host - 1] = '\0';
  return mpibind_auto_strdupf(
      "host=%s pid=%ld task=%d/%d topology=%s bound=%d cpus=%s\n", host,
      (long)getpid(), local, count,
      mpibind_auto_how_names[how >= 0 && how <= MPIBIND_TOPO_FILE ? how : 0],
      bound, cpus ? cpus : "");
}

/* Why the trace file cannot be written (a phrase), or NULL; fd is open. */
static const char *refused(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return "is not a regular file";
  if (st.st_uid != geteuid())
    return "belongs to another user";
  if (st.st_nlink != 1)
    return "has other names (hard links)";
  return NULL;
}

void mpibind_auto_trace_append(const char *line, int local) {
  const char *path = getenv("MPIBIND_TRACE"), *no = NULL;
  char why[128];
  int fd;
  if (line == NULL || path == NULL || path[0] == '\0')
    return;
  /* O_NONBLOCK: a FIFO there must not hang the task; O_NOFOLLOW: a
   * symbolic link is refused, not followed */
  fd = open(path,
            O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW,
            0644);
  if (fd >= 0 && (no = refused(fd)) == NULL) {
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
  } else if (fd < 0) {
    int e = errno;
    /* every path that cannot take the line says so (a directory, a
     * missing directory, no permission), as the refused files do */
    snprintf(why, sizeof why, "cannot be opened for writing: %s",
             strerror(e));
    no = e == ENXIO    ? "is a FIFO without a reader"
         : e == ELOOP  ? "is a symbolic link"
         : e == EISDIR ? "is a directory"
                       : why;
  }
  if (fd >= 0)
    close(fd);
  if (no && local <= 0) {
    char *esc = mb_escape(path);
    fprintf(stderr, "mpibind: MPIBIND_TRACE='%s' %s: no trace written "
                    "(expected a regular file of yours)\n",
            esc ? esc : "?", no);
    free(esc);
  }
}

void mpibind_auto_trace(int local, int count, int how, int bound,
                        const char *cpus) {
  char *line = mpibind_auto_trace_line(local, count, how, bound, cpus);
  mpibind_auto_trace_append(line, local);
  free(line);
}
