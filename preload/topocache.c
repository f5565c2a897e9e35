/*
 * topocache.c - one hardware discovery per node.
 *
 * The first task of a node discovers the topology (with mpibind's own
 * filters, through mpibind_topology_load) and exports it as XML into a
 * private per-user directory; the node's other tasks load that XML, which
 * costs a fraction of a discovery.  A flock on the directory makes the
 * tasks that start together wait for the first instead of all discovering.
 *
 * Safety: the directory must be a real directory (not a symlink) owned by
 * the user and writable by nobody else; files are opened relative to it
 * without following symlinks and must be owned by the user too.  A file
 * is used only when its header equals the live machine's key (host name,
 * boot id, hwloc version, the process's cpuset cgroup and its CPUs and
 * memories, online CPUs, HWLOC_* variables) and the loaded topology passes
 * mpibind_topology_check_system(); anything else is ignored and replaced.
 *
 * File: <dir>/topo-<16 hex digits of the key's hash>.xml, containing the
 * key text (lines "name=value", starting with "mpibind-topology-cache 1"
 * and ending with "end") immediately followed by hwloc's XML export.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
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

static int plugins_off_disabled;

void mpibind_auto_plugins_off_disable(void) { plugins_off_disabled = 1; }

void mpibind_auto_plugins_off_begin(int *restore) {
  *restore = 0;
  if (!plugins_off_disabled && getenv("HWLOC_PLUGINS_PATH") == NULL &&
      setenv("HWLOC_PLUGINS_PATH", NO_PLUGINS_PATH, 1) == 0)
    *restore = 1;
}

void mpibind_auto_plugins_off_end(int restore) {
  if (restore)
    unsetenv("HWLOC_PLUGINS_PATH");
}

/* Loads the cache file when it is ours and matches the key; gives the
 * handle its topology.  0 on success (*topo is the caller's to destroy). */
static int load_cache(int dirfd, const char *name, const char *key,
                      mpibind_t *h, hwloc_topology_t *topo) {
  struct stat st;
  size_t len, klen = strlen(key);
  char *buf;
  hwloc_topology_t t;
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    close(fd);
    return -1;
  }
  buf = read_fd_all(fd, &len);
  close(fd);
  if (buf == NULL)
    return -1;
  if (len <= klen || memcmp(buf, key, klen) != 0 ||
      strlen(buf + klen) != len - klen) {
    free(buf);
    return -1;
  }
  {
    int restore, rc;
    mpibind_auto_plugins_off_begin(&restore);
    rc = hwloc_topology_init(&t);
    mpibind_auto_plugins_off_end(restore);
    if (rc != 0) {
      free(buf);
      return -1;
    }
  }
  /* The XML came from a live discovery of this very machine (the key says
   * so): binding through it must act on this system. */
  if (mpibind_topology_load_filters(t) != 0 ||
      hwloc_topology_set_flags(t, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM) != 0 ||
      hwloc_topology_set_xmlbuffer(t, buf + klen, (int)(len - klen + 1)) !=
          0 ||
      hwloc_topology_load(t) != 0) {
    hwloc_topology_destroy(t);
    free(buf);
    return -1;
  }
  free(buf);
  if (mpibind_set_topology(h, t) != 0 ||
      mpibind_topology_check_system(h) != 0) {
    mpibind_set_topology(h, NULL);
    hwloc_topology_destroy(t);
    return -1;
  }
  *topo = t;
  return 0;
}

/* Removes temporary files of crashed writers and cache files of other
 * keys that nobody has written for a day. */
static void remove_stale(int dirfd, const char *keep) {
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
    if (strcmp(e->d_name, keep) == 0)
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

/* Writes key + XML of the handle's (not yet restricted) topology into
 * the cache, atomically: readers see the old file or the whole new one. */
static void write_cache(int dirfd, const char *name, const char *key,
                        mpibind_t *h) {
  hwloc_topology_t t = mpibind_get_topology(h);
  char *xml = NULL;
  int xlen = 0, fd;
  char *tmpname = NULL;
  if (t == NULL || hwloc_topology_export_xmlbuffer(t, &xml, &xlen, 0) != 0)
    return;
  /* A name no other live process uses: pid and time; O_EXCL settles the
   * rest. */
  fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    free(tmpname);
    tmpname = mpibind_auto_strdupf(".topo-%ld-%ld-%d", (long)getpid(),
                                   (long)ts.tv_nsec, attempt);
    if (tmpname == NULL)
      break;
    fd = openat(dirfd, tmpname,
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    free(tmpname);
    hwloc_free_xmlbuffer(t, xml);
    return;
  }
  /* xlen counts the terminating NUL, which is not written */
  if (write_all(fd, key, strlen(key)) != 0 ||
      write_all(fd, xml, strlen(xml)) != 0 || close(fd) != 0 ||
      renameat(dirfd, tmpname, dirfd, name) != 0)
    unlinkat(dirfd, tmpname, 0);
  free(tmpname);
  hwloc_free_xmlbuffer(t, xml);
  remove_stale(dirfd, name);
}

/* Waits for the directory lock, at most LOCK_WAIT_SECONDS. */
static int lock_dir(int dirfd) {
  struct timespec start, now, nap = {0, 1000000};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (flock(dirfd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= LOCK_WAIT_SECONDS)
      return -1;
    nanosleep(&nap, NULL);
    if (nap.tv_nsec < 16000000)
      nap.tv_nsec *= 2;
  }
}

static int discover(mpibind_t *h, char **error) {
  if (mpibind_topology_load(h) != 0) {
    *error = mpibind_auto_strdupf("cannot discover this node's topology: %s",
                                  mpibind_get_error(h));
    return -1;
  }
  return 0;
}

int mpibind_auto_topology(mpibind_t *h, int *how, hwloc_topology_t *owned,
                          char **error) {
  char *key = cache_key();
  char *name = NULL;
  int dirfd = -1, locked = 0, rc;

  *owned = NULL;
  *error = NULL;
  if (key != NULL) {
    dirfd = cache_dirfd();
    name = mpibind_auto_strdupf("topo-%016llx.xml",
                                (unsigned long long)fnv1a(key));
  }
  if (dirfd >= 0 && name != NULL) {
    if (load_cache(dirfd, name, key, h, owned) == 0) {
      *how = MPIBIND_TOPO_CACHE;
      goto done;
    }
    locked = lock_dir(dirfd) == 0;
    /* the first task may have written it while this one waited */
    if (locked && load_cache(dirfd, name, key, h, owned) == 0) {
      *how = MPIBIND_TOPO_CACHE;
      goto done;
    }
  }
  rc = discover(h, error);
  if (rc != 0)
    goto fail;
  *how = MPIBIND_TOPO_DISCOVERED;
  if (dirfd >= 0 && name != NULL && locked)
    write_cache(dirfd, name, key, h);
done:
  if (dirfd >= 0)
    close(dirfd); /* releases the lock */
  free(key);
  free(name);
  return 0;
fail:
  if (dirfd >= 0)
    close(dirfd);
  free(key);
  free(name);
  return -1;
}
