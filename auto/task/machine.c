/*
 * machine.c - the keys of this machine, its mapper and its topology
 * files (machine.h).
 *
 * A cached topology is used only when the machine key equals the live
 * one: another cpuset cgroup (a job's) or other online CPUs describe
 * another machine, and HWLOC_* variables change what a discovery finds.
 * Another boot is not in the key: a file written before this boot began
 * is never used (keyfile.c), which the file's time says without reading
 * /proc.  The mapper's identity (the helper executable and the libmpibind
 * it loads, by device, inode, size and modification time, and the
 * project's version) is part of it: a new build or install maps anew, and
 * the hwloc it loads is checked by the helper, which adds hwloc's API
 * version to the topology file's key (the tasks cannot know it without
 * loading hwloc).
 *
 * A task keys the node mapping file without reading any file of /proc or
 * /sys (mpibind_auto_task_machine_key): each costs it some 10 to 15 us in
 * every rank of every launch, two or more of them (the cgroup's path,
 * its CPUs and memories, the online CPUs) most of what a warm task pays.
 * A mapping depends on the cgroup and the online CPUs only through the
 * CPUs the launcher may use, which lie within them and are the inputs'
 * (inputs.c), the memories the cgroup allows (a system call here), and
 * the topology, which the file names and the task checks by its identity
 * (nodemap.c): a topology rediscovered for another machine key replaces
 * the mappings made from it.
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
#include <unistd.h>

#include "helper.h"
#include "keyfile.h"
#include "machine.h"
#include "membind.h"
#include "mpibind_version.h"
#include "procfile.h"
#include "strdupf.h"

extern char **environ;

const char *const mpibind_auto_how_names[4] = {"none", "discovered", "cache",
                                               "file"};

/* A whole file (any size), NUL-terminated; NULL when unreadable. */
static char *read_all(const char *path) {
  char *buf;
  size_t len;
  return mpibind_auto_read_file(path, &buf, &len) == 0 ? buf : NULL;
}

/* The file as one line, trailing blanks removed (NULL: unreadable). */
static char *read_line_or_null(const char *path) {
  char *s = read_all(path);
  if (s == NULL)
    return NULL;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  /* keep the key one value per line */
  for (char *p = s; *p; p++)
    if (*p == '\n')
      *p = ';';
  return s;
}

char *mpibind_auto_read_line(const char *path) {
  char *s = read_line_or_null(path);
  return s ? s : strdup("");
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
      char *v = path ? read_line_or_null(path) : NULL;
      free(path);
      if (v)
        return v;
    }
  return strdup("");
}

/* A file's identity: device, inode, size, modification time ("none"
 * when it does not exist). */
static char *file_identity(const char *path) {
  struct stat st;
  if (path == NULL || stat(path, &st) != 0)
    return strdup("none");
  return mpibind_auto_strdupf("%ju:%ju:%jd:%ld.%09ld", (uintmax_t)st.st_dev,
                              (uintmax_t)st.st_ino, (intmax_t)st.st_size,
                              (long)st.st_mtim.tv_sec,
                              (long)st.st_mtim.tv_nsec);
}

/* The HWLOC_* variables: they change what a discovery finds
 * (HWLOC_XMLFILE, HWLOC_COMPONENTS, ...). */
static char *hwloc_env(void) {
  size_t len = 1;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "HWLOC_", 6) == 0)
      len += strlen(*e) + 1;
  char *env = malloc(len), *p = env;
  if (env == NULL)
    return NULL;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "HWLOC_", 6) == 0)
      p += sprintf(p, "%s;", *e);
  *p = '\0';
  return env;
}

/* The lines every machine key has, around `middle` (lines of its own):
 * the version, the mapper, the host, the user, then middle, then the
 * HWLOC_* variables.  NULL without a host name or out of memory. */
static char *machine_key_around(const char *middle) {
  char host[HOST_NAME_MAX + 1];
  char *helper, *library, *env, *key;
  if (middle == NULL || gethostname(host, sizeof host) != 0)
    return NULL;
  host[sizeof host - 1] = '\0';
  helper = file_identity(mpibind_auto_helper_path());
  library = file_identity(mpibind_auto_helper_library_path());
  env = hwloc_env();
  key = helper && library && env
            ? mpibind_auto_strdupf("mpibind=%s\n"
                                   "mapper=%s %s\n"
                                   "host=%s\n"
                                   "uid=%ld\n"
                                   "%s"
                                   "env=%s\n",
                                   MPIBIND_VERSION_STRING, helper, library,
                                   host, (long)geteuid(), middle, env)
            : NULL;
  free(helper);
  free(library);
  free(env);
  return key;
}

char *mpibind_auto_machine_key(void) {
  static const char *const cpus_files[] = {"cpuset.effective_cpus",
                                           "cpuset.cpus.effective",
                                           "cpuset.cpus", NULL};
  static const char *const mems_files[] = {"cpuset.effective_mems",
                                           "cpuset.mems.effective",
                                           "cpuset.mems", NULL};
  char *cpuset, *cpus, *mems, *online, *middle, *key;
  int root;

  cpuset = mpibind_auto_read_line("/proc/self/cpuset");
  /* The root cpuset has every online CPU (in the key) and every memory
   * node (they change by hotplug only): its files would say nothing
   * more. */
  root = cpuset && strcmp(cpuset, "/") == 0;
  cpus = root ? strdup("(root)")
         : cpuset ? read_cgroup_value(cpuset, cpus_files) : NULL;
  mems = root ? strdup("(root)")
         : cpuset ? read_cgroup_value(cpuset, mems_files) : NULL;
  online = mpibind_auto_read_line("/sys/devices/system/cpu/online");
  middle = cpuset && cpus && mems && online
               ? mpibind_auto_strdupf("cpuset=%s\n"
                                      "cpus=%s\n"
                                      "mems=%s\n"
                                      "online=%s\n",
                                      cpuset, cpus, mems, online)
               : NULL;
  key = machine_key_around(middle);
  free(cpuset);
  free(cpus);
  free(mems);
  free(online);
  free(middle);
  return key;
}

char *mpibind_auto_task_machine_key(void) {
  struct mpibind_auto_cpuset mems = MPIBIND_AUTO_CPUSET_INIT;
  char *list = mpibind_auto_mems_allowed(&mems) == 0
                   ? mpibind_auto_cpuset_list(&mems)
                   : strdup("(unknown)");
  char *middle = list ? mpibind_auto_strdupf("mems_allowed=%s\n", list)
                      : NULL;
  char *key = machine_key_around(middle);
  mpibind_auto_cpuset_free(&mems);
  free(list);
  free(middle);
  return key;
}

char *mpibind_auto_topology_cache_name(const char *machine) {
  char *head = mpibind_auto_strdupf("%s%s", MPIBIND_AUTO_TOPOLOGY_HEAD,
                                    machine);
  char *name = head ? mpibind_auto_strdupf(
                          "topo-%016llx.xml",
                          (unsigned long long)mpibind_auto_hash(head))
                    : NULL;
  free(head);
  return name;
}

char *mpibind_auto_topology_name_identity(const char *name, int dirfd) {
  int own = dirfd < 0 && name ? mpibind_auto_cache_dirfd(NULL) : -1;
  int dir = dirfd >= 0 ? dirfd : own;
  struct stat st;
  char *id;
  /* the times include the change time: a file replaced, renamed into
   * place, made writable by others or given away is another file */
  if (name && dir >= 0 && mpibind_auto_cache_stat(dir, name, &st) == 0)
    id = mpibind_auto_strdupf("topology=%s %ju %jd %ld.%09ld %ld.%09ld", name,
                              (uintmax_t)st.st_ino, (intmax_t)st.st_size,
                              (long)st.st_mtim.tv_sec,
                              (long)st.st_mtim.tv_nsec,
                              (long)st.st_ctim.tv_sec,
                              (long)st.st_ctim.tv_nsec);
  else
    id = name ? mpibind_auto_strdupf("topology=%s none", name) : NULL;
  if (own >= 0)
    close(own);
  return id;
}

char *mpibind_auto_topology_identity(const struct mpibind_auto_tuning *t,
                                     const char *machine, int dirfd) {
  struct stat st;
  char *name, *id;
  if (t->topofile) {
    if (stat(t->topofile, &st) != 0)
      return mpibind_auto_strdupf("topofile=%s none", t->topofile);
    return mpibind_auto_strdupf(
        "topofile=%s %ju %ju %jd %ld.%09ld %ld.%09ld", t->topofile,
        (uintmax_t)st.st_dev, (uintmax_t)st.st_ino, (intmax_t)st.st_size,
        (long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec,
        (long)st.st_ctim.tv_sec, (long)st.st_ctim.tv_nsec);
  }
  name = mpibind_auto_topology_cache_name(machine);
  id = mpibind_auto_topology_name_identity(name, dirfd);
  free(name);
  return id;
}
