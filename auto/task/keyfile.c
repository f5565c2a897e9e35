/*
 * keyfile.c - files of the private per-user cache directory that start
 * with a key, and "compute once per node, read everywhere else".
 *
 * Used for the node's topology (auto/node/topocache.c) and the node's
 * mapping (nodemap.c).  A file is <key text><body>; it is used only when it is a
 * regular file of the user that nobody else may write, opened without
 * following symlinks and without blocking (a FIFO there is no hang), and
 * its first bytes equal the key, compared before anything else is read
 * (a huge or foreign file costs the length of the key).  Files are
 * replaced by rename, never written in place, so readers take no lock.
 *
 * A body "failed: <message>\n" records a failed computation; it is
 * honoured for FAILED_SECONDS so that the node's other tasks do not each
 * wait for the same failure (a hung discovery plugin).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keyfile.h"
#include "strdupf.h"

/* How long a task waits for the node's first task to finish its work
 * before it does it on its own: never hang the program. */
#define LOCK_WAIT_SECONDS 30
/* Files of other keys (earlier boots, finished jobs' cgroups) are removed
 * when older than this; temporary files of crashed writers after an hour. */
#define STALE_SECONDS (24 * 3600)
#define STALE_TMP_SECONDS 3600
#define FAILED_SECONDS 60
#define FAILED_MARK "failed: "

uint64_t mpibind_auto_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

/* Opens a directory that only this user can write, refusing symlinks. */
static int open_private_dir(const char *path, int create) {
  struct stat st;
  int fd;
  if (path == NULL || path[0] != '/')
    return -1;
  /* opened first: it exists but on a node's first look */
  fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create &&
      (mkdir(path, 0700) == 0 || errno == EEXIST))
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int mpibind_auto_cache_dirfd(void) {
  const char *v = getenv("MPIBIND_CACHE_DIR");
  char *path;
  int fd;
  if (v != NULL && v[0] != '\0')
    return open_private_dir(v, 1);
  v = getenv("XDG_RUNTIME_DIR");
  if (v != NULL && v[0] == '/') {
    path = mpibind_auto_strdupf("%s/mpibind", v);
    fd = open_private_dir(path, 1);
    free(path);
    if (fd >= 0)
      return fd;
  }
  path = mpibind_auto_strdupf("/tmp/mpibind-%ld", (long)geteuid());
  fd = open_private_dir(path, 1);
  free(path);
  return fd;
}

/* Opens a cache file without following a symlink and without blocking,
 * and accepts only a regular file of this user that nobody else may
 * write.  -1 otherwise. */
static int open_owned_regular(int dirfd, const char *name, int flags,
                              struct stat *st) {
  int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                  0600);
  if (fd < 0)
    return -1;
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ||
      st->st_uid != geteuid() || (st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int mpibind_auto_pread_exact(int fd, char *buf, size_t n, off_t off) {
  while (n > 0) {
    ssize_t r = pread(fd, buf, n, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    buf += r;
    off += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Opens name when it is a safe file starting with key: *fd, the body's
 * offset and length.  1: a body to use; -1: a recent failure record
 * (message in *failed); 0: nothing usable. */
static int open_keyed(int dirfd, const char *name, const char *key, int *fd,
                      off_t *off, size_t *len, char **failed) {
  struct stat st;
  size_t klen = strlen(key), mlen = strlen(FAILED_MARK);
  char *buf;
  *fd = open_owned_regular(dirfd, name, O_RDONLY, &st);
  if (*fd < 0)
    return 0;
  if ((uintmax_t)st.st_size <= klen || (uintmax_t)st.st_size > SIZE_MAX / 2)
    goto unusable;
  *off = (off_t)klen;
  *len = (size_t)st.st_size - klen;
  /* the key and what may follow it as a failure mark, in one read */
  size_t head = *len >= mlen ? mlen : 0;
  buf = malloc(klen + mlen);
  if (buf == NULL)
    goto unusable;
  if (mpibind_auto_pread_exact(*fd, buf, klen + head, 0) != 0 ||
      memcmp(buf, key, klen) != 0) {
    free(buf);
    goto unusable;
  }
  if (head && memcmp(buf + klen, FAILED_MARK, mlen) == 0) {
    free(buf);
    if (time(NULL) - st.st_mtime >= FAILED_SECONDS)
      goto unusable; /* an old failure: try again */
    /* the message is one line, written by us: read a bounded part */
    size_t n = *len - mlen < 4096 ? *len - mlen : 4096;
    *failed = calloc(1, n + 1);
    if (*failed == NULL ||
        mpibind_auto_pread_exact(*fd, *failed, n, *off + (off_t)mlen) != 0) {
      free(*failed);
      *failed = NULL;
      goto unusable;
    }
    (*failed)[strcspn(*failed, "\n")] = '\0';
    close(*fd);
    *fd = -1;
    return -1;
  }
  free(buf);
  return 1;
unusable:
  close(*fd);
  *fd = -1;
  return 0;
}

/* Removes temporary files of crashed writers and keyed files of other
 * keys that nobody has written for a day. */
static void remove_stale(int dirfd, const char *keep, const char *keep_lock) {
  static const char *const kinds[] = {"topo-", "map-"};
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *d;
  struct dirent *e;
  time_t now = time(NULL);
  if (fd < 0)
    return;
  d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return;
  }
  while ((e = readdir(d)) != NULL) {
    struct stat st;
    int tmp = e->d_name[0] == '.', ours = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
      if (strncmp(e->d_name + tmp, kinds[k], strlen(kinds[k])) == 0)
        ours = 1;
    if (!ours || strcmp(e->d_name, keep) == 0 ||
        strcmp(e->d_name, keep_lock) == 0)
      continue;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (now - st.st_mtime > (tmp ? STALE_TMP_SECONDS : STALE_SECONDS))
      unlinkat(dirfd, e->d_name, 0);
  }
  closedir(d);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Writes key + body as name, atomically: readers see the old file or the
 * whole new one, never a part. */
static void write_keyed(int dirfd, const char *name, const char *key,
                        const char *body, size_t blen) {
  char *tmpname = NULL;
  int fd = -1, ok;
  /* A name no other live process uses: pid and time; O_EXCL settles the
   * rest. */
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    free(tmpname);
    tmpname = mpibind_auto_strdupf(".%s-%ld-%ld-%d", name, (long)getpid(),
                                   (long)ts.tv_nsec, attempt);
    if (tmpname == NULL)
      return;
    fd = openat(dirfd, tmpname,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    free(tmpname);
    return;
  }
  ok = write_all(fd, key, strlen(key)) == 0 && write_all(fd, body, blen) == 0;
  /* closed whatever happened: a failed write must not leak the file */
  if (close(fd) != 0)
    ok = 0;
  if (!ok || renameat(dirfd, tmpname, dirfd, name) != 0)
    unlinkat(dirfd, tmpname, 0);
  free(tmpname);
}

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* flock with a bound on the wait (deadline 0: no wait).  0 when held. */
static int lock_within(int fd, int op, double deadline) {
  struct timespec nap = {0, 1000000};
  for (;;) {
    if (flock(fd, op | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    if (monotonic_now() >= deadline)
      return -1;
    nanosleep(&nap, NULL);
    if (nap.tv_nsec < 16000000)
      nap.tv_nsec *= 2;
  }
}

/* One look at the file with the key as it is now: 1 used, -1 a recent
 * failure (*error), 0 nothing. */
static int try_use(int dirfd, const char *name,
                   const struct mpibind_auto_once *ops, void *ctx,
                   char **error) {
  int fd, rc;
  off_t off = 0;
  size_t len = 0;
  char *failed = NULL, *key = ops->key(ctx);
  if (key == NULL)
    return 0;
  rc = open_keyed(dirfd, name, key, &fd, &off, &len, &failed);
  free(key);
  if (rc < 0) {
    *error = failed;
    return -1;
  }
  if (rc == 0)
    return 0;
  rc = ops->use(ctx, fd, off, len) == 1 ? 1 : 0;
  close(fd);
  return rc;
}

/* The work done here, its result (or failure) written for the others
 * under the key as it is after the work. */
static int make_and_write(int dirfd, const char *name,
                          const struct mpibind_auto_once *ops, void *ctx,
                          char **error) {
  char *body = NULL, *key = NULL;
  size_t blen = 0;
  int rc = ops->make(ctx, &body, &blen, error);
  if (dirfd >= 0 && (rc != 0 ? *error != NULL : body != NULL))
    key = ops->key(ctx);
  if (key != NULL && rc != 0) {
    char *rec = mpibind_auto_strdupf(FAILED_MARK "%s\n", *error);
    if (rec)
      write_keyed(dirfd, name, key, rec, strlen(rec));
    free(rec);
  } else if (key != NULL) {
    write_keyed(dirfd, name, key, body, blen);
  }
  free(key);
  free(body);
  return rc != 0 ? -1 : 0;
}

int mpibind_auto_once(int dirfd, const char *name,
                      const struct mpibind_auto_once *ops, void *ctx,
                      int *made, char **error) {
  double deadline;
  struct stat st;
  char *lockname = NULL;
  int lockfd, rc;

  *made = 0;
  *error = NULL;
  if (dirfd < 0 || name == NULL) {
    *made = 1;
    return make_and_write(-1, NULL, ops, ctx, error);
  }
  if ((rc = try_use(dirfd, name, ops, ctx, error)) != 0)
    return rc > 0 ? 0 : -1;

  /* No usable file.  The key's lock: whoever holds it exclusively does
   * the work; the others wait for a shared hold, which they all get
   * together when it is released, and read in parallel.  One lock per
   * key: jobs of other keys in the directory never wait on it. */
  lockname = mpibind_auto_strdupf("%.*s.lock", (int)strcspn(name, "."), name);
  lockfd = lockname ? open_owned_regular(dirfd, lockname, O_RDWR | O_CREAT, &st)
                    : -1;
  deadline = monotonic_now() + LOCK_WAIT_SECONDS;
  for (;;) {
    if (lockfd < 0 || lock_within(lockfd, LOCK_EX, 0) == 0)
      break; /* no lock to be had (then work alone), or ours */
    if (lock_within(lockfd, LOCK_SH, deadline) != 0) {
      close(lockfd); /* waited long enough: work alone */
      lockfd = -1;
      break;
    }
    flock(lockfd, LOCK_UN);
    if ((rc = try_use(dirfd, name, ops, ctx, error)) != 0) {
      close(lockfd);
      free(lockname);
      return rc > 0 ? 0 : -1;
    }
  }
  /* the first task may have written it while this one took the lock */
  rc = lockfd >= 0 ? try_use(dirfd, name, ops, ctx, error) : 0;
  if (rc == 0) {
    *made = 1;
    rc = make_and_write(dirfd, name, ops, ctx, error) == 0 ? 1 : -1;
  }
  if (lockfd >= 0)
    close(lockfd); /* releases the lock */
  if (*made)
    remove_stale(dirfd, name, lockname ? lockname : "");
  free(lockname);
  return rc > 0 ? 0 : -1;
}
