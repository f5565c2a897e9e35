/*
 * topocache.c - where a task's topology comes from, with at most one
 * hardware discovery per node.
 *
 * MPIBIND_TOPOFILE: the user's file, parsed first in the helper (hwloc's
 * parser crashes on some malformed files), then here.  Otherwise the
 * per-node cache: the first task of a node runs the discovery in the
 * helper (discover.c: hwloc's I/O plugins never run inside a task) and
 * writes hwloc's XML into a private per-user directory; the node's other
 * tasks load that XML, without any plugin, at a fraction of the cost.
 *
 * Locking: readers take no lock (files are replaced by rename, never
 * written in place).  A task that finds no usable file takes the key's
 * lock file exclusively and discovers; the others wait for a shared hold
 * of it, which they all get together when it is released, and read in
 * parallel.  One lock per key: jobs of other keys never wait on it.
 *
 * Safety: the directory must be a real directory (not a symlink) owned by
 * the user and writable by nobody else; files are opened relative to it
 * without following symlinks and without blocking (a FIFO is no hang) and
 * must be regular files of the user.  A file is used only when its header
 * equals the live machine's key (host name, boot id, hwloc version, the
 * process's cpuset cgroup and its CPUs and memories, online CPUs, HWLOC_*
 * variables), compared before anything else is read, and the loaded
 * topology passes mpibind_topology_check_system(); anything else is
 * ignored and replaced.
 *
 * File: <dir>/topo-<16 hex digits of the key's hash>.xml, containing the
 * key text (lines "name=value", starting with "mpibind-topology-cache 1"
 * and ending with "end") immediately followed by hwloc's XML export, or
 * by "failed: <message>" when the discovery failed (honoured for a minute
 * so that the node's tasks do not each wait for the same hung plugin).
 * Lock: <dir>/topo-<same digits>.lock.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "autobind-internal.h"

extern char **environ;

/* How long a task waits for the node's first task to finish its
 * discovery before it discovers on its own: never hang the program. */
#define LOCK_WAIT_SECONDS 30
/* Files of other keys (earlier boots, finished jobs' cgroups) are removed
 * when older than this. */
#define STALE_SECONDS (24 * 3600)

/* Reads a whole file (any size); NULL when it cannot be read. */
static char *read_fd_all(int fd, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  if (buf == NULL)
    return NULL;
  for (;;) {
    if (n + 1 >= cap) {
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        return NULL;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      free(buf);
      return NULL;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

/* A small system file, trailing blanks removed; "" when unreadable. */
static char *read_text(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  char *s = NULL;
  if (fd >= 0) {
    s = read_fd_all(fd, NULL);
    close(fd);
  }
  if (s == NULL)
    return strdup("");
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  /* keep the key one value per line */
  for (char *p = s; *p; p++)
    if (*p == '\n')
      *p = ';';
  return s;
}

/* The first readable of the cgroup files of the process's cpuset, at
 * the places cgroup v1 and v2 mount them. */
static char *read_cgroup_value(const char *cpuset, const char *const *files) {
  static const char *const roots[] = {"/sys/fs/cgroup/cpuset", "/sys/fs/cgroup",
                                      "/sys/fs/cgroup/unified"};
  for (size_t r = 0; r < sizeof roots / sizeof roots[0]; r++)
    for (size_t f = 0; files[f]; f++) {
      char *path = mpibind_auto_strdupf("%s%s/%s", roots[r],
                                        strcmp(cpuset, "/") ? cpuset : "",
                                        files[f]);
      if (path == NULL)
        continue;
      if (access(path, R_OK) == 0) {
        char *v = read_text(path);
        free(path);
        return v;
      }
      free(path);
    }
  return strdup("");
}

/* The text that must match for a cache file to be used. */
static char *cache_key(void) {
  static const char *const cpus_files[] = {"cpuset.effective_cpus",
                                           "cpuset.cpus.effective",
                                           "cpuset.cpus", NULL};
  static const char *const mems_files[] = {"cpuset.effective_mems",
                                           "cpuset.mems.effective",
                                           "cpuset.mems", NULL};
  char host[HOST_NAME_MAX + 1];
  char *boot, *cpuset, *cpus, *mems, *online, *key;
  size_t envlen = 1;
  char *env;

  if (gethostname(host, sizeof host) != 0)
    return NULL;
  host[sizeof host - 1] = '\0';
  boot = read_text("/proc/sys/kernel/random/boot_id");
  cpuset = read_text("/proc/self/cpuset");
  cpus = read_cgroup_value(cpuset, cpus_files);
  mems = read_cgroup_value(cpuset, mems_files);
  online = read_text("/sys/devices/system/cpu/online");

  /* HWLOC_* variables change what a discovery finds (HWLOC_XMLFILE,
   * HWLOC_COMPONENTS, ...). */
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "HWLOC_", 6) == 0)
      envlen += strlen(*e) + 1;
  env = malloc(envlen);
  if (env) {
    env[0] = '\0';
    for (char **e = environ; e && *e; e++)
      if (strncmp(*e, "HWLOC_", 6) == 0) {
        strcat(env, *e);
        strcat(env, ";");
      }
  }

  key = mpibind_auto_strdupf(
      "mpibind-topology-cache 1\n"
      "mpibind=%d.%d\n"
      "hwloc=%x\n"
      "host=%s\n"
      "boot=%s\n"
      "uid=%ld\n"
      "cpuset=%s\n"
      "cpus=%s\n"
      "mems=%s\n"
      "online=%s\n"
      "env=%s\n"
      "end\n",
      MPIBIND_VERSION_MAJOR, MPIBIND_VERSION_MINOR, hwloc_get_api_version(),
      host, boot ? boot : "", (long)geteuid(), cpuset ? cpuset : "",
      cpus ? cpus : "", mems ? mems : "", online ? online : "",
      env ? env : "");
  free(boot);
  free(cpuset);
  free(cpus);
  free(mems);
  free(online);
  free(env);
  return key;
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 1469598103934665603ULL;
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
  if (create && mkdir(path, 0700) != 0 && errno != EEXIST)
    return -1;
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

/* The cache directory as an open descriptor, or -1 when no safe one
 * exists (then every task discovers on its own). */
static int cache_dirfd(void) {
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

/* A directory that cannot exist: no plugin is found there. */
#define NO_PLUGINS_PATH "/nonexistent/mpibind-no-hwloc-plugins"

void mpibind_auto_plugins_off_begin(char **saved) {
  const char *v = getenv("HWLOC_PLUGINS_PATH");
  /* Even the user's own plugin directory: loading XML needs no plugin,
   * and a site's GPU plugins would pull their GPU runtimes into the
   * task. */
  *saved = v ? strdup(v) : NULL;
  setenv("HWLOC_PLUGINS_PATH", NO_PLUGINS_PATH, 1);
}

void mpibind_auto_plugins_off_end(char *saved) {
  if (saved) {
    setenv("HWLOC_PLUGINS_PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("HWLOC_PLUGINS_PATH");
  }
}

/* How long the record of a failed discovery keeps the node's other tasks
 * from trying again (each would wait for the same hung plugin). */
#define FAILED_SECONDS 60
#define FAILED_MARK "failed: "

enum cache_result { CACHE_MISS = 0, CACHE_HIT, CACHE_FAILED };

/* Opens a cache file without following a symlink and without blocking
 * (a FIFO there must not hang the task), and accepts only a regular file
 * of this user that nobody else may write.  -1 otherwise. */
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

/* Reads exactly n bytes at offset off; 0 on success. */
static int read_exact(int fd, char *buf, size_t n, off_t off) {
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

/* Reads the cache file when it is ours and starts with the key; the key
 * is checked before anything else is read, so a foreign or huge file
 * costs the length of the key.  On CACHE_HIT *body is the XML (malloc'ed,
 * *len bytes); on CACHE_FAILED *body is the failed discovery's message. */
static enum cache_result read_cache(int dirfd, const char *name,
                                    const char *key, char **body,
                                    size_t *len) {
  struct stat st;
  size_t klen = strlen(key);
  char *buf;
  enum cache_result res = CACHE_MISS;
  int fd = open_owned_regular(dirfd, name, O_RDONLY, &st);
  *body = NULL;
  if (fd < 0)
    return CACHE_MISS;
  if ((uintmax_t)st.st_size <= klen || (uintmax_t)st.st_size > SIZE_MAX - 1)
    goto out;
  buf = malloc(klen);
  if (buf == NULL || read_exact(fd, buf, klen, 0) != 0 ||
      memcmp(buf, key, klen) != 0) {
    free(buf);
    goto out;
  }
  free(buf);
  *len = (size_t)st.st_size - klen;
  *body = malloc(*len + 1);
  if (*body == NULL || read_exact(fd, *body, *len, (off_t)klen) != 0) {
    free(*body);
    *body = NULL;
    goto out;
  }
  (*body)[*len] = '\0';
  if (strncmp(*body, FAILED_MARK, strlen(FAILED_MARK)) == 0) {
    if (time(NULL) - st.st_mtime < FAILED_SECONDS) {
      res = CACHE_FAILED;
      memmove(*body, *body + strlen(FAILED_MARK),
              *len - strlen(FAILED_MARK) + 1);
      (*body)[strcspn(*body, "\n")] = '\0';
      goto out;
    }
  } else if (strlen(*body) == *len) {
    res = CACHE_HIT;
    goto out;
  }
  free(*body);
  *body = NULL;
out:
  close(fd);
  return res;
}

/* Gives the handle the topology of XML that hwloc wrote for this machine
 * (from the cache or straight from the helper).  0 on success. */
static int load_xml_text(mpibind_t *h, const char *xml, size_t len) {
  char *restore;
  int rc;
  mpibind_auto_plugins_off_begin(&restore);
  rc = mpibind_set_topology_xml(h, xml, len);
  mpibind_auto_plugins_off_end(restore);
  if (rc == 0 && mpibind_topology_check_system(h) != 0)
    rc = -1;
  if (rc != 0)
    mpibind_set_topology_xml(h, NULL, 0);
  return rc;
}

/* Removes temporary files of crashed writers and cache (and lock) files
 * of other keys that nobody has written for a day. */
static void remove_stale(int dirfd, const char *keep, const char *keep_lock) {
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
    int tmp = strncmp(e->d_name, ".topo-", 6) == 0;
    if (!tmp && strncmp(e->d_name, "topo-", 5) != 0)
      continue;
    if (strcmp(e->d_name, keep) == 0 || strcmp(e->d_name, keep_lock) == 0)
      continue;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
      continue;
    if (now - st.st_mtime > (tmp ? 3600 : STALE_SECONDS))
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

/* Writes key + body into the cache, atomically: readers see the old file
 * or the whole new one, never a part. */
static void write_cache(int dirfd, const char *name, const char *key,
                        const char *body, size_t blen) {
  char *tmpname = NULL;
  int fd = -1, ok;
  /* A name no other live process uses: pid and time; O_EXCL settles the
   * rest. */
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    free(tmpname);
    tmpname = mpibind_auto_strdupf(".topo-%ld-%ld-%d", (long)getpid(),
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

/* flock with a bound on the wait.  0 when held. */
static int lock_within(int fd, int op, double deadline) {
  struct timespec nap = {0, 1000000};
  for (;;) {
    struct timespec now;
    if (flock(fd, op | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec + now.tv_nsec / 1e9 >= deadline)
      return -1;
    nanosleep(&nap, NULL);
    if (nap.tv_nsec < 16000000)
      nap.tv_nsec *= 2;
  }
}

static double monotonic_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Discovers in the helper and loads the result; when dirfd >= 0, the XML
 * (or the failure, for the node's other tasks) goes to the cache. */
static int discover(mpibind_t *h, int dirfd, const char *name,
                    const char *key, char **error) {
  char *xml = NULL;
  size_t len = 0;
  if (mpibind_auto_discover_xml(&xml, &len, error) != 0) {
    if (dirfd >= 0 && *error != NULL) {
      char *rec = mpibind_auto_strdupf(FAILED_MARK "%s\n", *error);
      if (rec)
        write_cache(dirfd, name, key, rec, strlen(rec));
      free(rec);
    }
    return -1;
  }
  if (load_xml_text(h, xml, len) != 0) {
    *error = mpibind_auto_strdupf(
        "cannot load the topology discovered by the helper: %s",
        mpibind_get_error(h));
    free(xml);
    return -1;
  }
  if (dirfd >= 0)
    write_cache(dirfd, name, key, xml, len);
  free(xml);
  return 0;
}

/* What one look at the cache gave: 1 the handle has its topology, -1 a
 * recent discovery failed (message in *error), 0 nothing usable. */
static int try_cache(mpibind_t *h, int dirfd, const char *name,
                     const char *key, char **error) {
  char *body = NULL;
  size_t len = 0;
  enum cache_result r = read_cache(dirfd, name, key, &body, &len);
  int rc = 0;
  if (r == CACHE_HIT && load_xml_text(h, body, len) == 0)
    rc = 1;
  else if (r == CACHE_FAILED) {
    *error = mpibind_auto_strdupf("%s (a failure of this node's first task)",
                                  body);
    rc = -1;
  }
  free(body);
  return rc;
}

/* The per-node cache protocol.  Readers take no lock: the file is
 * replaced by rename, never written in place.  A task that finds no
 * usable file takes the key's lock file exclusively and discovers; the
 * others wait for a shared hold of that lock (they all get it together
 * when the discoverer is done) and then read the file, in parallel. */
static int cached_topology(mpibind_t *h, int dirfd, const char *name,
                           const char *lockname, const char *key, int *how,
                           char **error) {
  double deadline = monotonic_now() + LOCK_WAIT_SECONDS;
  struct stat st;
  int lockfd, rc;

  if ((rc = try_cache(h, dirfd, name, key, error)) != 0) {
    *how = MPIBIND_TOPO_CACHE;
    return rc > 0 ? 0 : -1;
  }
  lockfd = open_owned_regular(dirfd, lockname, O_RDWR | O_CREAT, &st);
  for (;;) {
    if (lockfd < 0 || lock_within(lockfd, LOCK_EX, 0) == 0)
      break; /* no lock to be had (then discover alone), or ours */
    /* someone is discovering: wait until done, then read */
    if (lock_within(lockfd, LOCK_SH, deadline) != 0) {
      close(lockfd); /* waited long enough: discover alone */
      lockfd = -1;
      break;
    }
    flock(lockfd, LOCK_UN);
    if ((rc = try_cache(h, dirfd, name, key, error)) != 0) {
      close(lockfd);
      *how = MPIBIND_TOPO_CACHE;
      return rc > 0 ? 0 : -1;
    }
  }
  /* the first task may have written it while this one took the lock */
  if (lockfd >= 0 && (rc = try_cache(h, dirfd, name, key, error)) != 0) {
    close(lockfd);
    *how = MPIBIND_TOPO_CACHE;
    return rc > 0 ? 0 : -1;
  }
  rc = discover(h, dirfd, name, key, error);
  if (rc == 0)
    *how = MPIBIND_TOPO_DISCOVERED;
  if (lockfd >= 0)
    close(lockfd); /* releases the lock */
  remove_stale(dirfd, name, lockname);
  return rc;
}

/* MPIBIND_TOPOFILE: a user's file, parsed first in the helper (hwloc's
 * parser crashes on some malformed files), then here. */
static int topofile_topology(mpibind_t *h,
                             const struct mpibind_auto_tuning *t,
                             char **error) {
  char *restore;
  int rc;
  if (mpibind_auto_check_xml_file(t->topofile, "MPIBIND_TOPOFILE", error) !=
      0)
    return -1;
  mpibind_auto_plugins_off_begin(&restore);
  rc = mpibind_set_topology_file(h, t->topofile);
  mpibind_auto_plugins_off_end(restore);
  if (rc != 0) {
    *error = mpibind_auto_strdupf("MPIBIND_TOPOFILE='%s': %s", t->topofile,
                                  mpibind_get_error(h));
    return -1;
  }
  /* dryrun only reports: a file of another node is how one previews a
   * GPU node's mapping */
  if (!t->dryrun && mpibind_topology_check_system(h) != 0) {
    *error = mpibind_auto_strdupf(
        "MPIBIND_TOPOFILE='%s' does not describe this node: %s", t->topofile,
        mpibind_get_error(h));
    return -1;
  }
  return 0;
}

int mpibind_auto_topology(mpibind_t *h, const struct mpibind_auto_tuning *t,
                          int *how, char **error) {
  char *key = NULL, *name = NULL, *lockname = NULL;
  int dirfd = -1, rc;

  *error = NULL;
  *how = MPIBIND_TOPO_NONE;
  if (t->topofile) {
    rc = topofile_topology(h, t, error);
    if (rc == 0)
      *how = MPIBIND_TOPO_FILE;
    return rc;
  }
  key = cache_key();
  if (key != NULL) {
    unsigned long long hash = (unsigned long long)fnv1a(key);
    name = mpibind_auto_strdupf("topo-%016llx.xml", hash);
    lockname = mpibind_auto_strdupf("topo-%016llx.lock", hash);
    if (name && lockname)
      dirfd = cache_dirfd();
  }
  if (dirfd >= 0) {
    rc = cached_topology(h, dirfd, name, lockname, key, how, error);
    close(dirfd);
  } else {
    rc = discover(h, -1, NULL, NULL, error);
    if (rc == 0)
      *how = MPIBIND_TOPO_DISCOVERED;
  }
  free(key);
  free(name);
  free(lockname);
  if (rc != 0 && *error == NULL)
    *error = mpibind_auto_strdupf("cannot have this node's topology");
  return rc;
}
