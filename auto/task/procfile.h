/*
 * procfile.h - small files of the kernel read whole: /proc/<pid>/environ
 * and /proc/<pid>/cmdline (NUL-separated lists), system files.  libc
 * only.
 */
#ifndef MPIBIND_AUTO_PROCFILE_H
#define MPIBIND_AUTO_PROCFILE_H

#include <stddef.h>

/* The whole file at path, any size, with a NUL after its last byte:
 * *buf (malloc'ed) and *len (without that NUL).  0, or -1 when it cannot
 * be read (or out of memory). */
int mpibind_auto_read_file(const char *path, char **buf, size_t *len);

/* A NUL-separated list as the kernel gives it ("a\0b\0"; the last entry
 * may lack its NUL, a torn read): the value of NAME in an environment
 * list ("NAME=value" entries), NULL when absent. */
const char *mpibind_auto_nul_list_getenv(const char *buf, size_t len,
                                         const char *name);

/* The entries of a NUL-separated list as an argv (malloc'ed array of
 * pointers into buf, NULL-terminated; *argc entries).  NULL out of
 * memory. */
const char **mpibind_auto_nul_list_argv(const char *buf, size_t len,
                                        int *argc);

#endif
