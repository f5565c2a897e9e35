/*
 * topology.c - where the topology comes from (docs/algorithm.md step 0), the
 * restriction of step 2, and the terms "core level" and "hw_smt".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpibind_internal.h"

int mpibind_topology_load_filters(hwloc_topology_t topo)
{
  if (!topo)
    return -1;
  /* Levels that add no structure go (the level walk of step 5 depends on
   * it); PCI and OS devices stay where they matter (GPUs).  hwloc refuses
   * the structure filter for the types that must stay (PU, NUMA, Machine)
   * and for I/O: that is expected. */
  if (hwloc_topology_set_all_types_filter(topo,
                                          HWLOC_TYPE_FILTER_KEEP_STRUCTURE) ||
      hwloc_topology_set_io_types_filter(topo,
                                         HWLOC_TYPE_FILTER_KEEP_IMPORTANT))
    return -1;
  return 0;
}

void mb_free_work_topology(mpibind_t *h)
{
  mb_clear_outputs(h);
  if (h->work_is_copy)
    hwloc_topology_destroy(h->work_topo);
  h->work_topo = NULL;
  h->work_is_copy = 0;
}

void mb_free_own_topology(mpibind_t *h)
{
  mb_free_work_topology(h);
  if (h->own_topo)
    hwloc_topology_destroy(h->own_topo);
  h->own_topo = NULL;
  free(h->topo_file);
  h->topo_file = NULL;
  h->topo_xml = 0;
}

static int load_live(mpibind_t *h)
{
  hwloc_topology_t t;
  if (hwloc_topology_init(&t))
    return mb_fail(h, "cannot initialize an hwloc topology: %s",
                   strerror(errno));
  if (mpibind_topology_load_filters(t) || hwloc_topology_load(t)) {
    int e = errno;
    hwloc_topology_destroy(t);
    return mb_fail(h, "cannot discover this machine's topology: %s",
                   strerror(e));
  }
  h->own_topo = t;
  return 0;
}

/* Where an XML topology comes from: a file hwloc opens, or the caller's
 * bytes (NUL-terminated, len counting the NUL, as hwloc wants it). */
struct xml_source {
  const char *path;
  const char *buf;
  size_t len;
};

static int load_xml(hwloc_topology_t *out, const struct xml_source *src,
                    unsigned long flags)
{
  hwloc_topology_t t;
  if (hwloc_topology_init(&t))
    return -1;
  if (mpibind_topology_load_filters(t) || hwloc_topology_set_flags(t, flags) ||
      (src->path ? hwloc_topology_set_xml(t, src->path)
                 : hwloc_topology_set_xmlbuffer(t, src->buf, (int)src->len)) ||
      hwloc_topology_load(t)) {
    hwloc_topology_destroy(t);
    return -1;
  }
  *out = t;
  return 0;
}

/* Does topo describe the machine running this process?  A foreign file is
 * fine for previewing a mapping, never for binding.  Reads the host name
 * the export recorded and the kernel's list of online CPUs: both cheap,
 * and together they catch a file from another machine or kind of node. */
static int check_system(mpibind_t *h, hwloc_topology_t topo, const char *what)
{
  hwloc_obj_t root = hwloc_get_root_obj(topo);
  const char *host = hwloc_obj_get_info_by_name(root, "HostName");
  char here[256] = "";
  if (host && gethostname(here, sizeof(here) - 1) == 0 &&
      strcmp(host, here) != 0)
    return mb_fail(h,
                   "%s describes host '%s', not this host '%s'", what, host,
                   here);

  char *line = NULL;
  size_t cap = 0;
  FILE *f = fopen("/sys/devices/system/cpu/online", "r");
  if (!f)
    return mb_fail(h, "cannot read /sys/devices/system/cpu/online: %s",
                   strerror(errno));
  ssize_t len = getline(&line, &cap, f);
  fclose(f);
  hwloc_bitmap_t online = hwloc_bitmap_alloc();
  int rc = 0;
  if (len <= 0 || !online) {
    rc = mb_fail(h, "cannot read /sys/devices/system/cpu/online");
  } else {
    line[strcspn(line, "\n")] = '\0';
    if (hwloc_bitmap_list_sscanf(online, line) < 0) {
      rc = mb_fail(h, "cannot parse /sys/devices/system/cpu/online '%s'",
                   line);
    } else if (!hwloc_bitmap_isincluded(
                   hwloc_topology_get_topology_cpuset(topo), online)) {
      char *pus = NULL;
      hwloc_bitmap_list_asprintf(&pus,
                                 hwloc_topology_get_topology_cpuset(topo));
      rc = mb_fail(h,
                   "%s does not describe this machine: its PUs %s are not "
                   "among this machine's online CPUs %s",
                   what, pus ? pus : "?", line);
      free(pus);
    }
  }
  hwloc_bitmap_free(online);
  free(line);
  return rc;
}

/* Loads an XML topology with IS_THISSYSTEM so that binding works when it
 * is this machine's (mpibind_apply checks that first).  When it is, it is
 * loaded again limited to the resources this process may use, as a live
 * discovery would be: a cached topology must not lend a job the CPUs of
 * another job's cgroup. */
static int load_xml_this_system(hwloc_topology_t *out,
                                const struct xml_source *src)
{
  hwloc_topology_t t;
  if (load_xml(&t, src, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM))
    return -1;
  mpibind_t probe = {0};
  if (check_system(&probe, t, "topology") == 0) {
    hwloc_topology_t limited;
    if (load_xml(&limited, src,
                 HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM |
                     HWLOC_TOPOLOGY_FLAG_THISSYSTEM_ALLOWED_RESOURCES) == 0) {
      hwloc_topology_destroy(t);
      t = limited;
    }
  }
  free(probe.error);
  *out = t;
  return 0;
}

int mpibind_set_topology_file(mpibind_t *h, const char *path)
{
  if (!h)
    return -1;
  if (!path) {
    mb_free_own_topology(h);
    h->user_topo = NULL;
    return 0;
  }
  struct stat st;
  if (!*path)
    return mb_fail(h, "topology file '' is invalid: expected the path of "
                      "an hwloc XML file");
  if (stat(path, &st) != 0)
    return mb_fail(h, "topology file '%s': %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return mb_fail(h, "topology file '%s' is not a regular file", path);
  if (access(path, R_OK) != 0)
    return mb_fail(h, "topology file '%s': %s", path, strerror(errno));
  if (st.st_size == 0)
    return mb_fail(h,
                   "topology file '%s' is empty: expected an hwloc XML "
                   "export (lstopo --of xml)",
                   path);
  char *copy = mb_strdup(h, path);
  if (!copy)
    return -1;

  struct xml_source src = {path, NULL, 0};
  hwloc_topology_t t;
  if (load_xml_this_system(&t, &src)) {
    free(copy);
    return mb_fail(h,
                   "topology file '%s' is not a valid hwloc XML topology "
                   "(truncated or not XML?)",
                   path);
  }
  mb_free_own_topology(h);
  h->user_topo = NULL;
  h->own_topo = t;
  h->topo_file = copy;
  return 0;
}

int mpibind_set_topology_xml(mpibind_t *h, const char *buf, size_t len)
{
  if (!h)
    return -1;
  if (!buf) {
    mb_free_own_topology(h);
    h->user_topo = NULL;
    return 0;
  }
  if (len == 0)
    return mb_fail(h, "XML topology of 0 bytes: expected an hwloc XML export "
                      "(lstopo --of xml)");
  if (memchr(buf, '\0', len))
    return mb_fail(h, "XML topology of %zu bytes holds a NUL byte: expected "
                      "the text of an hwloc XML export", len);
  if (len >= INT_MAX)
    return mb_fail(h, "XML topology of %zu bytes is larger than hwloc reads "
                      "(at most %d bytes)", len, INT_MAX - 1);
  /* hwloc wants the text NUL-terminated; the caller's need not be. */
  char *copy = malloc(len + 1);
  if (!copy)
    return mb_fail(h, "out of memory");
  memcpy(copy, buf, len);
  copy[len] = '\0';
  struct xml_source src = {NULL, copy, len + 1};
  hwloc_topology_t t;
  int rc = load_xml_this_system(&t, &src);
  free(copy);
  if (rc)
    return mb_fail(h, "XML topology of %zu bytes is not a valid hwloc XML "
                      "topology (truncated or not XML?)", len);
  mb_free_own_topology(h);
  h->user_topo = NULL;
  h->own_topo = t;
  h->topo_xml = 1;
  return 0;
}

int mpibind_set_topology(mpibind_t *h, hwloc_topology_t topo)
{
  if (!h)
    return -1;
  mb_free_own_topology(h);
  h->user_topo = topo;
  return 0;
}

hwloc_topology_t mb_base_topology(mpibind_t *h)
{
  if (h->user_topo)
    return h->user_topo;
  if (!h->own_topo && load_live(h))
    return NULL;
  return h->own_topo;
}

int mpibind_topology_load(mpibind_t *h)
{
  if (!h)
    return -1;
  return mb_base_topology(h) ? 0 : -1;
}

hwloc_topology_t mpibind_get_topology(mpibind_t *h)
{
  if (!h)
    return NULL;
  if (h->work_topo)
    return h->work_topo;
  return mb_base_topology(h);
}

int mpibind_topology_check_system(mpibind_t *h)
{
  if (!h)
    return -1;
  hwloc_topology_t t = mb_base_topology(h);
  if (!t)
    return -1;
  if (!h->user_topo && !h->topo_file && !h->topo_xml)
    return 0; /* discovered here */
  const char *what = h->user_topo  ? "the caller's topology"
                     : h->topo_xml ? "the XML topology"
                                   : "topology file";
  if (!hwloc_topology_is_thissystem(t))
    return mb_fail(h,
                   "%s is not this system's (hwloc would not bind with "
                   "it): load it with HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM",
                   what);
  if (h->topo_file) {
    /* Name the file in the message: the user typed it. */
    char *w = NULL;
    if (asprintf(&w, "topology file '%s'", h->topo_file) < 0)
      return mb_fail(h, "out of memory");
    int rc = check_system(h, t, w);
    free(w);
    return rc;
  }
  return check_system(h, t, what);
}

int mb_core_depth(hwloc_topology_t topo)
{
  return hwloc_get_type_or_below_depth(topo, HWLOC_OBJ_CORE);
}

int mb_hw_smt(hwloc_topology_t topo)
{
  hwloc_obj_t core = hwloc_get_obj_by_depth(topo, mb_core_depth(topo), 0);
  if (!core || core->type == HWLOC_OBJ_PU || core->arity == 0)
    return 1;
  return (int)core->arity;
}

/* NUMA nodes without CPUs (GPU memory, CXL) go anyway in a restriction by
 * CPUs (REMOVE_CPULESS).  hwloc 2.9 asserts (aborting the process) when
 * such a node is attached below an object whose CPUs all stay, as hwloc 1
 * exports of GPU nodes have it; removing them first, by nodeset, which
 * has no such check, gives the same topology without the abort. */
static int drop_cpuless_numa(hwloc_topology_t topo)
{
  hwloc_bitmap_t keep = hwloc_bitmap_alloc();
  if (!keep)
    return -1;
  int cpuless = 0;
  for (hwloc_obj_t n = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE,
                                                   NULL);
       n; n = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, n)) {
    if (n->cpuset && !hwloc_bitmap_iszero(n->cpuset))
      hwloc_bitmap_set(keep, n->os_index);
    else
      cpuless = 1;
  }
  int rc = 0;
  if (cpuless && !hwloc_bitmap_iszero(keep))
    rc = hwloc_topology_restrict(topo, keep, HWLOC_RESTRICT_FLAG_BYNODESET);
  hwloc_bitmap_free(keep);
  return rc;
}

/* Step 2.  The restriction works on a copy so that neither the caller's
 * topology nor the loaded one changes: the same handle can map again with
 * another list. */
int mb_make_work_topology(mpibind_t *h)
{
  hwloc_topology_t base = mb_base_topology(h);
  if (!base)
    return -1;
  mb_free_work_topology(h);
  if (!h->restrict_ids) {
    h->work_topo = base;
    return 0;
  }

  int by_mem = h->restrict_type == MPIBIND_RESTRICT_MEM;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (!set)
    return mb_fail(h, "out of memory");
  if (hwloc_bitmap_list_sscanf(set, h->restrict_ids) < 0) {
    hwloc_bitmap_free(set);
    return mb_fail(h, "restrict list '%s' is invalid: expected a list of ids "
                      "such as 0-3,8,10-11",
                   h->restrict_ids);
  }
  hwloc_const_bitmap_t have = by_mem ? hwloc_topology_get_topology_nodeset(base)
                                     : hwloc_topology_get_topology_cpuset(base);
  if (!hwloc_bitmap_intersects(set, have)) {
    char *have_s = NULL;
    hwloc_bitmap_list_asprintf(&have_s, have);
    int rc = mb_fail(h,
                     "restrict list '%s' selects no %s of this topology: "
                     "expected ids among %s",
                     h->restrict_ids, by_mem ? "NUMA node" : "CPU",
                     have_s ? have_s : "?");
    free(have_s);
    hwloc_bitmap_free(set);
    return rc;
  }

  hwloc_topology_t work;
  if (hwloc_topology_dup(&work, base)) {
    hwloc_bitmap_free(set);
    return mb_fail(h, "cannot copy the topology: %s", strerror(errno));
  }
  unsigned long flags =
      by_mem ? HWLOC_RESTRICT_FLAG_BYNODESET | HWLOC_RESTRICT_FLAG_REMOVE_MEMLESS
             : HWLOC_RESTRICT_FLAG_REMOVE_CPULESS;
  if (!by_mem && drop_cpuless_numa(work)) {
    int e = errno;
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(work);
    return mb_fail(h, "cannot restrict the topology to CPUs '%s': %s",
                   h->restrict_ids, strerror(e));
  }
  if (hwloc_topology_restrict(work, set, flags)) {
    int e = errno;
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(work);
    return mb_fail(h, "cannot restrict the topology to %s '%s': %s",
                   by_mem ? "NUMA nodes" : "CPUs", h->restrict_ids,
                   strerror(e));
  }
  hwloc_bitmap_free(set);
  h->work_topo = work;
  h->work_is_copy = 1;
  return 0;
}
