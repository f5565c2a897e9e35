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
 * A file written before this boot began is never used, whatever its key
 * (written_this_boot): a reboot may change what the machine has (a GPU
 * gone, another BIOS setting), and the cache directory may outlive it
 * (MPIBIND_CACHE_DIR on a disk).  The boot's start comes from the clocks
 * (vDSO, no system call), not from a file of /proc: each file a task
 * reads costs it some 5 to 15 us.
 *
 * A body "failed: <message>\n" records a failed computation; it is
 * honoured for FAILED_SECONDS so that the node's other tasks do not each
 * wait for the same failure (a hung discovery plugin).
 *
 * A cache directory whose file system cannot take a file (full, over
 * quota, read-only) would make every task of the node compute on its own,
 * one after the other behind the key's lock: the file then goes to a
 * spill directory on another file system (spill_dir), where every task
 * also looks when the cache directory has no usable file.
 *
 * The directory may be one the user shares with their own files
 * (MPIBIND_CACHE_DIR=$HOME): the cleanup removes only what this code
 * writes and can recognise (remove_stale).
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
/* Files of other keys that nobody wrote or read for a week (earlier
 * boots, finished jobs' cgroups, inputs no longer used) are removed, so
 * that the directory holds what was used lately, not every set of inputs
 * ever seen; temporary files of crashed writers after an hour. */
#define UNUSED_SECONDS (7 * 24 * 3600)
#define STALE_TMP_SECONDS 3600
#define FAILED_SECONDS 60
#define FAILED_MARK "failed: "
/* The boot's start as the clocks give it moves by the clock's
 * adjustments (NTP slews); a file of an earlier boot is older than this
 * boot's start by the whole shutdown and start of the machine. */
#define BOOT_SLACK_SECONDS 2
/* A lock file's whole content, written by its first exclusive holder:
 * how the cleanup knows the lock is ours. */
#define LOCK_HEAD "mpibind-lock 1\n"

/* The kinds of files of the cache: the name's prefix, the keyed file's
 * extension, and how its key starts (machine.h's
 * MPIBIND_AUTO_TOPOLOGY_HEAD and nodemap.c's HEAD, without their format
 * version): what the cleanup recognises as its own. */
static const struct kind {
  const char *prefix, *ext, *head;
} kinds[] = {
    {"topo-", ".xml", "mpibind-topology-cache "},
    {"map-", ".txt", "mpibind-nodemap "},
};

uint64_t mpibind_auto_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

/* Why a directory cannot be the cache (a phrase after its name), or NULL
 * when it can: a real directory of this user that only its owner can
 * write.  Root owns the system's directories (/, /dev, /proc, /etc), so
 * root's must also give no access to anyone else (mode 0700, as it is
 * created). */
static char *refusal(const struct stat *st) {
  unsigned mode = (unsigned)st->st_mode & 07777;
  if (!S_ISDIR(st->st_mode))
    return mpibind_auto_strdupf("is not a directory");
  if (st->st_uid != geteuid())
    return mpibind_auto_strdupf("belongs to uid %ld, not to uid %ld",
                                (long)st->st_uid, (long)geteuid());
  if (mode & (S_IWGRP | S_IWOTH))
    return mpibind_auto_strdupf("can be written by others (mode %04o)", mode);
  if (!(mode & S_IWUSR))
    return mpibind_auto_strdupf("cannot be written by its owner (mode %04o)",
                                mode);
  if (geteuid() == 0 && (mode & 077))
    return mpibind_auto_strdupf("gives others access (mode %04o; root's "
                                "must be 0700, which no system directory "
                                "is)",
                                mode);
  return NULL;
}

/* Opens a directory that only this user can write (refusal()), refusing
 * symlinks; create: made (0700) when missing.  -1, with *why (malloc'ed,
 * when why is not NULL) saying what is wrong with it. */
static int open_private_dir(const char *path, int create, char **why) {
  struct stat st;
  char *no = NULL;
  int fd;
  if (path == NULL || path[0] != '/') {
    if (why)
      *why = mpibind_auto_strdupf("is not an absolute path");
    return -1;
  }
  /* opened first: it exists but on a node's first look */
  fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create &&
      (mkdir(path, 0700) == 0 || errno == EEXIST))
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    /* O_NOFOLLOW|O_DIRECTORY on a symbolic link: ELOOP or ENOTDIR */
    if (why && (e == ELOOP || e == ENOTDIR) && lstat(path, &st) == 0)
      *why = mpibind_auto_strdupf(S_ISLNK(st.st_mode) ? "is a symbolic link"
                                  : S_ISDIR(st.st_mode)
                                      ? "cannot be opened: %s"
                                      : "is not a directory",
                                  strerror(e));
    else if (why)
      *why = mpibind_auto_strdupf("cannot be opened%s: %s",
                                  create ? " or created" : "", strerror(e));
    return -1;
  }
  if (fstat(fd, &st) != 0 || (no = refusal(&st)) != NULL) {
    if (why)
      *why = no ? no : mpibind_auto_strdupf("cannot be read: %s",
                                            strerror(errno));
    else
      free(no);
    close(fd);
    return -1;
  }
  return fd;
}

int mpibind_auto_cache_dirfd(char **why) {
  const char *v = getenv("MPIBIND_CACHE_DIR");
  char *path, *no = NULL;
  int fd;
  if (why)
    *why = NULL;
  if (v != NULL && v[0] != '\0') {
    fd = open_private_dir(v, 1, why ? &no : NULL);
    if (fd < 0 && why)
      *why = mpibind_auto_strdupf(
          "MPIBIND_CACHE_DIR='%s' %s: expected a directory of yours that no "
          "one else can write; nothing is cached, each task maps the node "
          "itself",
          v, no ? no : "out of memory");
    free(no);
    return fd;
  }
  v = getenv("XDG_RUNTIME_DIR");
  if (v != NULL && v[0] == '/') {
    path = mpibind_auto_strdupf("%s/mpibind", v);
    fd = open_private_dir(path, 1, NULL);
    free(path);
    if (fd >= 0)
      return fd;
  }
  path = mpibind_auto_strdupf("/tmp/mpibind-%ld", (long)geteuid());
  fd = open_private_dir(path, 1, NULL);
  free(path);
  return fd;
}

/* The spill directory of the cache directory dirfd: in the first of
 * $XDG_RUNTIME_DIR, /dev/shm and /tmp that is on another file system
 * than dirfd (chosen by these parents, so that every task of the node
 * chooses the same), a directory named after the user and dirfd's
 * identity (another cache directory never reads it: only the tasks that
 * share this one), opened as the cache directory is (create: made when
 * missing).  -1 when there is none. */
static int spill_dir(int dirfd, int create) {
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  const char *parents[] = {xdg && xdg[0] == '/' ? xdg : NULL, "/dev/shm",
                           "/tmp"};
  struct stat d, p;
  if (dirfd < 0 || fstat(dirfd, &d) != 0)
    return -1;
  for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++) {
    char *path;
    int fd;
    if (parents[i] == NULL || stat(parents[i], &p) != 0 ||
        p.st_dev == d.st_dev)
      continue;
    path = mpibind_auto_strdupf("%s/mpibind-%ld-spill-%jx-%jx", parents[i],
                                (long)geteuid(), (uintmax_t)d.st_dev,
                                (uintmax_t)d.st_ino);
    fd = open_private_dir(path, create, NULL);
    free(path);
    return fd;
  }
  return -1;
}

int mpibind_auto_cache_stat(int dirfd, const char *name, struct stat *st) {
  int spill, rc;
  if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  if (errno != ENOENT || (spill = spill_dir(dirfd, 0)) < 0)
    return -1;
  rc = fstatat(spill, name, st, AT_SYMLINK_NOFOLLOW);
  close(spill);
  return rc;
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

/* 1 when the file was written after this boot began (keyfile.c's head;
 * 1 too when the clocks cannot say: the key's other parts still hold). */
static int written_this_boot(const struct stat *st) {
  struct timespec real, up;
  if (clock_gettime(CLOCK_REALTIME, &real) != 0 ||
      clock_gettime(CLOCK_BOOTTIME, &up) != 0)
    return 1;
  return st->st_mtim.tv_sec >=
         real.tv_sec - up.tv_sec - BOOT_SLACK_SECONDS;
}

/* Opens name when it is a safe file starting with the key that ops gives
 * for it: *fd, the body's offset and length.  1: a body to use; -1: a
 * recent failure record (message in *failed); 0: nothing usable (or out
 * of memory). */
static int open_keyed(int dirfd, const char *name,
                      const struct mpibind_auto_once *ops, void *ctx, int *fd,
                      off_t *off, size_t *len, char **failed) {
  struct stat st;
  size_t klen, mlen = strlen(FAILED_MARK);
  char *buf, *key = NULL;
  *fd = open_owned_regular(dirfd, name, O_RDONLY, &st);
  if (*fd < 0)
    return 0;
  if (!written_this_boot(&st) || (key = ops->key(ctx, *fd)) == NULL)
    goto unusable;
  klen = strlen(key);
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
  free(key);
  key = NULL;
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
  free(key);
  close(*fd);
  *fd = -1;
  return 0;
}

/* ---- the cleanup: only what this code wrote ------------------------- */

/* What a name of the cache directory is, when it is one this code gives:
 * a keyed file <prefix><16 hex digits><ext>, its lock <prefix><16 hex
 * digits>.lock, or a writer's temporary file "." <keyed name>
 * "-<pid>-<ns>-<attempt>" (write_keyed). */
enum entry { NOT_OURS, KEYED, LOCK, TEMP };

/* 1 when s starts with the 16 lowercase hex digits of a key's hash (a
 * loop: a task checks a name on its warm path, where every libc function
 * it calls first costs it a binding). */
static int hash_digits(const char *s) {
  for (int i = 0; i < 16; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

static enum entry classify(const char *name, const struct kind **kind) {
  int tmp = name[0] == '.';
  const char *p = name + tmp;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    size_t plen = strlen(kinds[k].prefix), elen = strlen(kinds[k].ext);
    const char *rest = p + plen;
    if (strncmp(p, kinds[k].prefix, plen) != 0)
      continue;
    if (!hash_digits(rest))
      return NOT_OURS;
    rest += 16;
    *kind = &kinds[k];
    if (!tmp)
      return strcmp(rest, kinds[k].ext) == 0 ? KEYED
             : strcmp(rest, ".lock") == 0    ? LOCK
                                             : NOT_OURS;
    if (strncmp(rest, kinds[k].ext, elen) != 0)
      return NOT_OURS;
    rest += elen;
    for (int i = 0; i < 3; i++) {
      size_t n;
      if (*rest++ != '-' || (n = strspn(rest, "0123456789")) == 0)
        return NOT_OURS;
      rest += n;
    }
    return *rest == '\0' ? TEMP : NOT_OURS;
  }
  return NOT_OURS;
}

int mpibind_auto_cache_keyed_name(const char *name, const char *prefix) {
  const struct kind *kind = NULL;
  return classify(name, &kind) == KEYED && strcmp(kind->prefix, prefix) == 0;
}

/* 1 when the open file holds what this code writes under such a name: a
 * keyed file starts with its kind's key, a lock is exactly LOCK_HEAD, a
 * temporary file is the start of a keyed one (a crashed writer's). */
static int content_is_ours(int fd, const struct stat *st, enum entry e,
                           const struct kind *k) {
  const char *head = e == LOCK ? LOCK_HEAD : k->head;
  size_t hlen = strlen(head), n = hlen;
  char buf[64];
  if (e == LOCK ? (uintmax_t)st->st_size != hlen
                : e == KEYED && (uintmax_t)st->st_size < hlen)
    return 0;
  if (e == TEMP && (uintmax_t)st->st_size < hlen)
    n = (size_t)st->st_size;
  return n <= sizeof buf && mpibind_auto_pread_exact(fd, buf, n, 0) == 0 &&
         memcmp(buf, head, n) == 0;
}

/* 1 when the entry is old enough to go: a keyed file neither written nor
 * read for UNUSED_SECONDS (the file system's access time; without one,
 * its modification time), a lock as old whose keyed file is gone, a
 * temporary file after STALE_TMP_SECONDS. */
static int is_old(int dirfd, const char *name, const struct stat *st,
                  enum entry e, const struct kind *k, time_t now) {
  time_t used = st->st_atime > st->st_mtime ? st->st_atime : st->st_mtime;
  struct stat kst;
  char *keyed;
  int gone;
  if (e == TEMP)
    return now - st->st_mtime > STALE_TMP_SECONDS;
  if (e == KEYED)
    return now - used > UNUSED_SECONDS;
  if (now - st->st_mtime <= UNUSED_SECONDS)
    return 0;
  keyed = mpibind_auto_strdupf("%.*s%s", (int)(strlen(name) - 5), name,
                               k->ext);
  gone = keyed && fstatat(dirfd, keyed, &kst, AT_SYMLINK_NOFOLLOW) != 0 &&
         errno == ENOENT;
  free(keyed);
  return gone;
}

/* Removes dirfd's entry `name`, which classify() says is a `what` of
 * kind k, when this code wrote it and it is old. */
static void remove_if_stale(int dirfd, const char *name, enum entry what,
                            const struct kind *k, time_t now) {
  struct stat st, again;
  int ours;
  /* O_NOATIME: looking must not make a file look used */
  int f = open_owned_regular(dirfd, name, O_RDONLY | O_NOATIME, &st);
  if (f < 0)
    return;
  ours = is_old(dirfd, name, &st, what, k, now) &&
         content_is_ours(f, &st, what, k);
  close(f);
  /* the very file that was checked (not one renamed there since) */
  if (ours && fstatat(dirfd, name, &again, AT_SYMLINK_NOFOLLOW) == 0 &&
      again.st_dev == st.st_dev && again.st_ino == st.st_ino)
    unlinkat(dirfd, name, 0);
}

/* Removes, other than keep (just written) and keep_lock, the entries of
 * dirfd of keep's kind that this code wrote (a name it gives, a regular
 * file of this user that nobody else may write, with the content it
 * writes) and that are old (is_old).  Nothing else is touched, whatever
 * its name: the directory may be the user's own ($HOME, a project
 * directory).  Each kind cleans its own: a node mapping file is keyed by
 * the topology file it was made from, which a new mapping must not
 * remove. */
static void remove_stale(int dirfd, const char *keep, const char *keep_lock) {
  int fd;
  DIR *d;
  struct dirent *e;
  time_t now = time(NULL);
  const struct kind *kind = NULL;
  if (classify(keep, &kind) != KEYED)
    return;
  fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  d = fdopendir(fd);
  if (d == NULL) {
    close(fd);
    return;
  }
  /* the locks in a second pass: a lock goes after its keyed file */
  for (int locks = 0; locks < 2; locks++, rewinddir(d))
    while ((e = readdir(d)) != NULL) {
      const struct kind *k = NULL;
      enum entry what = classify(e->d_name, &k);
      if (what != NOT_OURS && k == kind && (what == LOCK) == locks &&
          strcmp(e->d_name, keep) != 0 && strcmp(e->d_name, keep_lock) != 0)
        remove_if_stale(dirfd, e->d_name, what, k, now);
    }
  closedir(d);
}

/* ---- writing ---------------------------------------------------------- */

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
 * whole new one, never a part.  0, or -1 with errno. */
static int write_keyed(int dirfd, const char *name, const char *key,
                       const char *body, size_t blen) {
  char *tmpname = NULL;
  int fd = -1, ok, e = 0;
  /* A name no other live process uses: pid and time; O_EXCL settles the
   * rest. */
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    free(tmpname);
    tmpname = mpibind_auto_strdupf(".%s-%ld-%ld-%d", name, (long)getpid(),
                                   (long)ts.tv_nsec, attempt);
    if (tmpname == NULL)
      return -1;
    fd = openat(dirfd, tmpname,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    e = errno;
    free(tmpname);
    errno = e;
    return -1;
  }
  ok = write_all(fd, key, strlen(key)) == 0 && write_all(fd, body, blen) == 0;
  if (!ok)
    e = errno;
  /* closed whatever happened: a failed write must not leak the file */
  if (close(fd) != 0 && ok) {
    ok = 0;
    e = errno;
  }
  if (ok && renameat(dirfd, tmpname, dirfd, name) != 0) {
    ok = 0;
    e = errno;
  }
  if (!ok)
    unlinkat(dirfd, tmpname, 0);
  free(tmpname);
  errno = e;
  return ok ? 0 : -1;
}

/* Writes key + body as name in dirfd, or, when its file system cannot
 * take it, in the spill directory; the old files of the directory
 * written to are then cleaned up (keep_lock stays).  0, or -1 with
 * *note (one line: why nothing could be written). */
static int write_shared(int dirfd, const char *name, const char *keep_lock,
                        const char *key, const char *body, size_t blen,
                        char **note) {
  int spill, e;
  if (write_keyed(dirfd, name, key, body, blen) == 0) {
    remove_stale(dirfd, name, keep_lock);
    return 0;
  }
  e = errno;
  spill = spill_dir(dirfd, 1);
  if (spill >= 0 && write_keyed(spill, name, key, body, blen) == 0) {
    remove_stale(spill, name, keep_lock);
    close(spill);
    return 0;
  }
  if (spill >= 0)
    close(spill);
  if (note && *note == NULL)
    *note = mpibind_auto_strdupf(
        "cannot write %s into the cache directory (%s)%s: the node's tasks "
        "cannot share it, each does the work itself",
        name, strerror(e),
        spill >= 0 ? ", nor into its spill directory" : "");
  return -1;
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

/* One look at the file with the key as it is now, in dirfd: 1 used, -1 a
 * recent failure (*error), 0 nothing. */
static int try_use_in(int dirfd, const char *name,
                      const struct mpibind_auto_once *ops, void *ctx,
                      char **error) {
  int fd, rc;
  off_t off = 0;
  size_t len = 0;
  char *failed = NULL;
  rc = open_keyed(dirfd, name, ops, ctx, &fd, &off, &len, &failed);
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

/* The same in the cache directory, then in its spill directory. */
static int try_use(int dirfd, const char *name,
                   const struct mpibind_auto_once *ops, void *ctx,
                   char **error) {
  int rc = try_use_in(dirfd, name, ops, ctx, error), spill;
  if (rc != 0 || (spill = spill_dir(dirfd, 0)) < 0)
    return rc;
  rc = try_use_in(spill, name, ops, ctx, error);
  close(spill);
  return rc;
}

/* The work done here, its result (or failure) written for the others
 * under the key as it is after the work. */
static int make_and_write(int dirfd, const char *name, const char *lockname,
                          const struct mpibind_auto_once *ops, void *ctx,
                          char **error, char **note) {
  char *body = NULL, *key = NULL, *rec = NULL;
  size_t blen = 0;
  int rc = ops->make(ctx, &body, &blen, error);
  if (dirfd >= 0 && (rc != 0 ? *error != NULL : body != NULL))
    key = ops->key(ctx, -1);
  if (key != NULL && rc != 0 &&
      (rec = mpibind_auto_strdupf(FAILED_MARK "%s\n", *error)) != NULL)
    write_shared(dirfd, name, lockname, key, rec, strlen(rec), note);
  else if (key != NULL && rc == 0)
    write_shared(dirfd, name, lockname, key, body, blen, note);
  free(rec);
  free(key);
  free(body);
  return rc != 0 ? -1 : 0;
}

/* The key's lock file, in dirfd or, when it cannot be made there, in the
 * spill directory; -1 when there is none to be had. */
static int open_lock(int dirfd, const char *lockname) {
  struct stat st;
  int fd = open_owned_regular(dirfd, lockname, O_RDWR | O_CREAT, &st), spill;
  if (fd >= 0 || (spill = spill_dir(dirfd, 1)) < 0)
    return fd;
  fd = open_owned_regular(spill, lockname, O_RDWR | O_CREAT, &st);
  close(spill);
  return fd;
}

/* The exclusive holder marks the lock as ours (its content, for the
 * cleanup) and as used now (its time: the cleanup removes no lock in
 * use).  A full file system keeps it empty until there is room. */
static void mark_lock(int lockfd) {
  static const char head[] = LOCK_HEAD;
  ssize_t w = pwrite(lockfd, head, sizeof head - 1, 0);
  (void)w;
  futimens(lockfd, NULL);
}

int mpibind_auto_once(int dirfd, const char *name,
                      const struct mpibind_auto_once *ops, void *ctx,
                      int *made, char **error, char **note) {
  double deadline;
  char *lockname = NULL;
  int lockfd, rc;

  *made = 0;
  *error = NULL;
  if (note)
    *note = NULL;
  if (dirfd < 0 || name == NULL) {
    *made = 1;
    return make_and_write(-1, NULL, NULL, ops, ctx, error, NULL);
  }
  if ((rc = try_use(dirfd, name, ops, ctx, error)) != 0)
    return rc > 0 ? 0 : -1;

  /* No usable file.  The key's lock: whoever holds it exclusively does
   * the work; the others wait for a shared hold, which they all get
   * together when it is released, and read in parallel.  One lock per
   * key: jobs of other keys in the directory never wait on it. */
  lockname = mpibind_auto_strdupf("%.*s.lock", (int)strcspn(name, "."), name);
  lockfd = lockname ? open_lock(dirfd, lockname) : -1;
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
  if (lockfd >= 0)
    mark_lock(lockfd);
  /* the first task may have written it while this one took the lock */
  rc = lockfd >= 0 ? try_use(dirfd, name, ops, ctx, error) : 0;
  if (rc == 0) {
    *made = 1;
    rc = make_and_write(dirfd, name, lockname ? lockname : "", ops, ctx,
                        error, note) == 0
             ? 1
             : -1;
  }
  if (lockfd >= 0)
    close(lockfd); /* releases the lock */
  free(lockname);
  return rc > 0 ? 0 : -1;
}
