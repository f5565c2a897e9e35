/*
 * argv_title.so - a library whose constructor writes a process title over
 * the program's argument area, as setproctitle() implementations do
 * (PostgreSQL, nginx, systemd's): loaded before the preload (listed after
 * it in LD_PRELOAD), it runs first.  $ARGV_TITLE says how:
 *   join   the arguments' NULs become spaces (one string, the title);
 *   zero   the area is cleared and "worker" written at its start.
 * Anything else: nothing.  (test_hostile.py: a restart for a stale
 * OpenMP runtime runs the program with the arguments it was started with,
 * or not at all, G13.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void title(int argc, char **argv) {
  const char *mode = getenv("ARGV_TITLE");
  char *start, *end;
  if (mode == NULL || argc < 2)
    return;
  start = argv[0];
  end = argv[argc - 1] + strlen(argv[argc - 1]);
  if (strcmp(mode, "join") == 0) {
    for (char *p = start; p < end; p++)
      if (*p == '\0')
        *p = ' ';
  } else if (strcmp(mode, "zero") == 0) {
    memset(start, 0, (size_t)(end - start));
    snprintf(start, (size_t)(end - start) + 1, "worker");
  }
}
