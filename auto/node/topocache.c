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
 * The cache's protocol (no lock for readers, one lock per key, files
 * checked before use, failures recorded for a minute) is keyfile.c's.  A
 * cached topology is used only when its key equals the live machine's
 * (host name, boot id, hwloc version, the process's cpuset cgroup and its
 * CPUs and memories, online CPUs, HWLOC_* variables) and the loaded
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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"

extern char **environ;


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
char *mpibind_auto_machine_key(void) {
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

/* A directory that cannot exist: no plugin is found there. */
#define NO_PLUGINS_PATH "/nonexistent/mpibind-no-hwloc-plugins"

static int plugins_off_disabled;

void mpibind_auto_plugins_off_disable(void) { plugins_off_disabled = 1; }

void mpibind_auto_plugins_off_begin(char **saved) {
  const char *v = getenv("HWLOC_PLUGINS_PATH");
  *saved = NULL;
  if (plugins_off_disabled)
    return;
  /* Even the user's own plugin directory: loading XML needs no plugin,
   * and a site's GPU plugins would pull their GPU runtimes into the
   * task. */
  *saved = v ? strdup(v) : NULL;
  setenv("HWLOC_PLUGINS_PATH", NO_PLUGINS_PATH, 1);
}

void mpibind_auto_plugins_off_end(char *saved) {
  if (plugins_off_disabled)
    return;
  if (saved) {
    setenv("HWLOC_PLUGINS_PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("HWLOC_PLUGINS_PATH");
  }
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

char *mpibind_auto_topology_identity(const struct mpibind_auto_tuning *t,
                                     const char *machine) {
  struct stat st;
  if (t->topofile) {
    if (stat(t->topofile, &st) != 0)
      return mpibind_auto_strdupf("topofile=%s none", t->topofile);
    return mpibind_auto_strdupf(
        "topofile=%s %ju %ju %jd %ld.%09ld %ld.%09ld", t->topofile,
        (uintmax_t)st.st_dev, (uintmax_t)st.st_ino, (intmax_t)st.st_size,
        (long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
        (long)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec);
  }
  char *name = mpibind_auto_strdupf(
      "topo-%016llx.xml", (unsigned long long)mpibind_auto_hash(machine));
  int dirfd = mpibind_auto_cache_dirfd();
  char *id;
  if (name && dirfd >= 0 &&
      fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    id = mpibind_auto_strdupf("topology=%s %ju %jd %ld.%09ld %ld.%09ld", name,
                              (uintmax_t)st.st_ino, (intmax_t)st.st_size,
                              (long)st.st_mtim.tv_sec,
                              (long)st.st_mtim.tv_nsec,
                              (long)st.st_ctim.tv_sec,
                              (long)st.st_ctim.tv_nsec);
  else
    id = mpibind_auto_strdupf("topology=%s none", name ? name : "?");
  if (dirfd >= 0)
    close(dirfd);
  free(name);
  return id;
}

/* The topology through the per-node cache (keyfile.c). */
struct topo_ctx {
  mpibind_t *h;
};

static int topo_use(void *ctx, int fd, off_t off, size_t len) {
  struct topo_ctx *c = ctx;
  char *xml = malloc(len + 1);
  int rc = 0;
  if (xml != NULL && mpibind_auto_pread_exact(fd, xml, len, off) == 0) {
    xml[len] = '\0';
    rc = strlen(xml) == len && load_xml_text(c->h, xml, len) == 0;
  }
  free(xml);
  return rc;
}

/* Discovers in the helper and loads the result; the XML is the body
 * written for the node's other tasks. */
static int topo_make(void *ctx, char **body, size_t *len, char **error) {
  struct topo_ctx *c = ctx;
  if (mpibind_auto_discover_xml(body, len, error) != 0)
    return -1;
  if (load_xml_text(c->h, *body, *len) != 0) {
    *error = mpibind_auto_strdupf(
        "cannot load the topology discovered by the helper: %s",
        mpibind_get_error(c->h));
    return -1;
  }
  return 0;
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
  static const struct mpibind_auto_once ops = {topo_use, topo_make};
  struct topo_ctx ctx = {h};
  char *key = NULL, *name = NULL;
  int dirfd = -1, made = 0, rc;

  *error = NULL;
  *how = MPIBIND_TOPO_NONE;
  if (t->topofile) {
    rc = topofile_topology(h, t, error);
    if (rc == 0)
      *how = MPIBIND_TOPO_FILE;
    return rc;
  }
  key = mpibind_auto_machine_key();
  if (key != NULL) {
    name = mpibind_auto_strdupf("topo-%016llx.xml",
                                (unsigned long long)mpibind_auto_hash(key));
    if (name)
      dirfd = mpibind_auto_cache_dirfd();
  }
  rc = mpibind_auto_once(dirfd, name, key, &ops, &ctx, &made, error);
  if (dirfd >= 0)
    close(dirfd);
  if (rc == 0) {
    *how = made ? MPIBIND_TOPO_DISCOVERED : MPIBIND_TOPO_CACHE;
  } else if (!made && *error != NULL) {
    char *e = mpibind_auto_strdupf("%s (a failure of this node's first task)",
                                   *error);
    free(*error);
    *error = e;
  }
  free(key);
  free(name);
  if (rc != 0 && *error == NULL)
    *error = mpibind_auto_strdupf("cannot have this node's topology");
  return rc;
}
