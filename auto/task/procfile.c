/*
 * procfile.c - small files of the kernel read whole (procfile.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfile.h"

int mpibind_auto_read_file(const char *path, char **buf, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  size_t cap = 256, n = 0;
  char *b = NULL;
  ssize_t r = -1;
  *buf = NULL;
  *len = 0;
  if (fd < 0)
    return -1;
  for (;;) {
    if (n + 1 >= (b ? cap : 0)) {
      char *more = realloc(b, b ? cap * 2 : cap);
      if (more == NULL)
        break;
      if (b)
        cap *= 2;
      b = more;
    }
    r = read(fd, b + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  if (r != 0) { /* a read error, or out of memory */
    free(b);
    return -1;
  }
  b[n] = '\0';
  *buf = b;
  *len = n;
  return 0;
}

/* The list's entries are the strings at buf, each ending at its NUL;
 * buf[len] is a NUL too (mpibind_auto_read_file), so the last entry ends
 * even in a torn read. */
const char *mpibind_auto_nul_list_getenv(const char *buf, size_t len,
                                         const char *name) {
  size_t n = strlen(name);
  for (const char *p = buf; p < buf + len; p += strlen(p) + 1)
    if (strncmp(p, name, n) == 0 && p[n] == '=')
      return p + n + 1;
  return NULL;
}

const char **mpibind_auto_nul_list_argv(const char *buf, size_t len,
                                        int *argc) {
  const char **argv;
  int n = 0;
  for (const char *p = buf; p < buf + len; p += strlen(p) + 1)
    n++;
  argv = calloc((size_t)n + 1, sizeof *argv);
  if (argv == NULL)
    return NULL;
  n = 0;
  for (const char *p = buf; p < buf + len; p += strlen(p) + 1)
    argv[n++] = p;
  *argc = n;
  return argv;
}
