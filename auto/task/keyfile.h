/*
 * keyfile.h - files of the private per-user cache directory that start
 * with a key, and "compute once per node, read everywhere else" (keyfile.c
 * says how).  Used for the node's topology (auto/node/topocache.c, in the
 * helper) and the node's mapping (nodemap.c, in every task).  libc only.
 */
#ifndef MPIBIND_AUTO_KEYFILE_H
#define MPIBIND_AUTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* The private per-user cache directory (MPIBIND_CACHE_DIR, else
 * $XDG_RUNTIME_DIR/mpibind, else /tmp/mpibind-<uid>) as a descriptor, or
 * -1 when no safe one exists: a real directory of the user that only its
 * owner can write (root's: that only root can enter, mode 0700), made
 * 0700 when missing.  When MPIBIND_CACHE_DIR names one that cannot be
 * used, *why (why not NULL) says so in one line (malloc'ed; it is not
 * replaced by the default: the user chose it); otherwise *why is NULL. */
int mpibind_auto_cache_dirfd(char **why);
/* fstatat of a cache file without following a symlink, in the cache
 * directory dirfd or, when it is not there, in its spill directory
 * (keyfile.c).  0, or -1 with errno. */
int mpibind_auto_cache_stat(int dirfd, const char *name, struct stat *st);
/* 1 when name is the name of a keyed file this code gives, of the kind
 * whose names start with prefix ("topo-", "map-": <prefix><16 hex
 * digits><its extension>), else 0: a name read from a file is used only
 * when it is one of ours. */
int mpibind_auto_cache_keyed_name(const char *name, const char *prefix);
/* FNV-1a, 64 bits: a short, stable name for a key. */
uint64_t mpibind_auto_hash(const char *s);
/* pread of exactly n bytes; 0 on success. */
int mpibind_auto_pread_exact(int fd, char *buf, size_t n, off_t off);

struct mpibind_auto_once {
  /* The key as it is now (malloc'ed; NULL out of memory): asked before
   * each look at the file and before writing it, so that a key naming
   * another file that may change meanwhile (the node's topology) follows
   * it.  fd is the file about to be compared, already open (a key may
   * follow a file that the file itself names: the node mapping file
   * records its topology), or -1 when writing. */
  char *(*key)(void *ctx, int fd);
  /* Reads what it needs of a valid file's body (len bytes at offset off
   * of fd) and takes it into ctx: 1 used, 0 unusable (then the work is
   * done here). */
  int (*use)(void *ctx, int fd, off_t off, size_t len);
  /* Does the work into ctx and gives the body written for the others
   * (*body malloc'ed, or NULL to write nothing).  0, or -1 with *error
   * (one line, recorded for the others for a minute). */
  int (*make)(void *ctx, char **body, size_t *len, char **error);
};

/* The file `name` of dirfd holds key + body: use it when valid; else the
 * first task to come takes the name's lock (name up to its first '.' plus
 * ".lock"), makes the body and writes it, while the others wait (at most
 * 30 s) and then use it.  A file system that cannot take the file (full,
 * read-only) sends it to the spill directory on another file system,
 * where the others look too.  dirfd < 0: make, write nothing.  *made
 * says whether the work was done here.  When it was and nothing could be
 * written anywhere, *note (note not NULL) says why in one line
 * (malloc'ed; else NULL).  Writing a file removes the old files of the
 * directory (keyfile.c: only those this code wrote, unused for a week).
 * 0, or -1 with *error (the work's failure, here or recorded by another
 * task). */
int mpibind_auto_once(int dirfd, const char *name,
                      const struct mpibind_auto_once *ops, void *ctx,
                      int *made, char **error, char **note);

#endif
