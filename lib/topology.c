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

#include "fail.h"
#include "handle.h"
#include "mb_parse.h"
#include "topology.h"

/* hwloc's API version is 0xMMmmpp; only the major changes the ABI (hwloc
 * 3 changes the OS-device types, which the GPU rules read).  A site that
 * upgrades hwloc under an installed mpibind gets this message instead of
 * a mapping that silently lost its GPUs. */
static int check_hwloc(mpibind_t *h)
{
  unsigned built = HWLOC_API_VERSION;
  unsigned loaded = hwloc_get_api_version();
  if (built >> 16 == loaded >> 16)
    return 0;
  return mb_fail_kind(h, ELIBBAD,
                      "the hwloc library loaded at run time has API version "
                      "%u.%u.%u, but mpibind was built against API %u.%u.%u: "
                      "rebuild mpibind against the hwloc installed, or run "
                      "with an hwloc %u.x library",
                      loaded >> 16, (loaded >> 8) & 0xff, loaded & 0xff,
                      built >> 16, (built >> 8) & 0xff, built & 0xff,
                      built >> 16);
}

int mpibind_topology_load_filters(hwloc_topology_t topo)
{
  if (!topo) {
    errno = EINVAL;
    return -1;
  }
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
  if (h->work_is_copy)
    hwloc_topology_destroy(h->work_topo);
  h->work_topo = NULL;
  h->work_is_copy = 0;
  h->work_hw_smt = 0;
}

void mb_free_retired_topologies(mpibind_t *h)
{
  for (int i = 0; i < h->nretired; i++)
    hwloc_topology_destroy(h->retired[i]);
  free(h->retired);
  h->retired = NULL;
  h->nretired = 0;
}

/* A topology setter replaces the loaded and the work topology, which a
 * caller may hold (mpibind_get_topology) and stale outputs refer to: they
 * are kept until the next mpibind() (the LIFETIME rule of mpibind.h). */
static int retire_topologies(mpibind_t *h)
{
  int more = (h->work_is_copy ? 1 : 0) + (h->own_topo ? 1 : 0);
  if (more) {
    hwloc_topology_t *r =
        realloc(h->retired, (h->nretired + more) * sizeof(*h->retired));
    if (!r)
      return mb_oom(h);
    h->retired = r;
  }
  if (h->work_is_copy)
    h->retired[h->nretired++] = h->work_topo;
  if (h->own_topo)
    h->retired[h->nretired++] = h->own_topo;
  h->work_topo = NULL;
  h->work_is_copy = 0;
  h->own_topo = NULL;
  free(h->topo_file);
  h->topo_file = NULL;
  h->topo_xml = 0;
  h->base_hw_smt = 0;
  mb_inputs_changed(h);
  return 0;
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
  h->base_hw_smt = 0;
}

static int hw_smt(hwloc_topology_t topo);

static int load_live(mpibind_t *h)
{
  hwloc_topology_t t;
  if (hwloc_topology_init(&t))
    return mb_fail_kind(h, errno, "cannot initialize an hwloc topology: %s",
                        strerror(errno));
  if (mpibind_topology_load_filters(t) || hwloc_topology_load(t)) {
    int e = errno;
    hwloc_topology_destroy(t);
    return mb_fail_kind(h, e, "cannot discover this machine's topology: %s",
                        strerror(e));
  }
  h->own_topo = t;
  h->base_hw_smt = hw_smt(t);
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
 * and together they catch a file from another machine or kind of node.
 * The kind is EXDEV, hwloc's for "the binding cannot be enforced". */
static int check_system(mpibind_t *h, hwloc_topology_t topo, const char *what)
{
  hwloc_obj_t root = hwloc_get_root_obj(topo);
  const char *host = hwloc_obj_get_info_by_name(root, "HostName");
  char here[256] = "";
  if (host && gethostname(here, sizeof(here) - 1) == 0 &&
      strcmp(host, here) != 0)
    return mb_fail_kind(h, EXDEV, "%s describes host '%s', not this host '%s'",
                        what, host, here);

  char *line = NULL;
  size_t cap = 0;
  FILE *f = fopen("/sys/devices/system/cpu/online", "r");
  if (!f)
    return mb_fail_kind(h, errno,
                        "cannot read /sys/devices/system/cpu/online: %s",
                        strerror(errno));
  ssize_t len = getline(&line, &cap, f);
  fclose(f);
  hwloc_bitmap_t online = hwloc_bitmap_alloc();
  int rc = 0;
  if (len <= 0 || !online) {
    rc = mb_fail_kind(h, EIO, "cannot read /sys/devices/system/cpu/online");
  } else {
    line[strcspn(line, "\n")] = '\0';
    char *why = NULL;
    /* The kernel's list, read by the project's one list parser. */
    int bad = mb_list_parse(line, online, MB_LIST_MAX, &why) < 0;
    free(why);
    if (bad) {
      rc = mb_fail_kind(h, EIO,
                        "cannot parse /sys/devices/system/cpu/online '%s'",
                        line);
    } else if (!hwloc_bitmap_isincluded(
                   online, hwloc_topology_get_complete_cpuset(topo)) ||
               !hwloc_bitmap_isincluded(
                   hwloc_topology_get_topology_cpuset(topo), online)) {
      /* Every online CPU known to the topology (its complete cpuset, which
       * also holds the PUs a cgroup hides), and every PU it maps onto
       * online.  "Among the online CPUs" alone let a file of part of this
       * machine map the node's tasks onto that part (a file listing CPU 0
       * alone bound task 1 of 2 to CPU 0 on a 2-CPU machine); a subset is
       * asked for with a restriction, not with a file. */
      char *pus = NULL;
      hwloc_bitmap_list_asprintf(&pus,
                                 hwloc_topology_get_complete_cpuset(topo));
      rc = mb_fail_kind(h, EXDEV,
                        "%s does not describe this machine: its PUs %s are "
                        "not exactly this machine's online CPUs %s",
                        what, pus ? pus : "?", line);
      free(pus);
    }
  }
  hwloc_bitmap_free(online);
  free(line);
  return rc;
}

/* The XML format version a file declares (<topology version="3.0">), as
 * its major number; 0 when the start of the file declares none.  Only the
 * first kilobytes are read: the root element comes right after the
 * prolog. */
static int xml_format_major(const char *path, char *ver, size_t cap)
{
  char buf[4096];
  FILE *f = fopen(path, "r");
  if (!f)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strstr(buf, "<topology");
  if (!p || !(p = strstr(p, "version=\"")))
    return 0;
  p += strlen("version=\"");
  size_t len = strcspn(p, "\"");
  if (len == 0 || len >= cap)
    return 0;
  memcpy(ver, p, len);
  ver[len] = '\0';
  return atoi(ver);
}

/* Why hwloc refused the file, in a user's terms.  hwloc 2 reads XML
 * formats 1.x and 2.x only; hwloc 3 writes 3.0 by default, and can still
 * write a 2.x file (its v2 export flag). */
static int xml_load_failed(mpibind_t *h, const char *path)
{
  char ver[32];
  int major = xml_format_major(path, ver, sizeof(ver));
  if (major > 2)
    return mb_fail(h,
                   "topology file '%s' comes from a newer hwloc (XML format "
                   "%s) than this one (hwloc %s reads formats 1.x and 2.x): "
                   "export it again in format 2 with that hwloc's "
                   "'lstopo --of xml --export-xml-flags v2 FILE' (or "
                   "HWLOC_TOPOLOGY_EXPORT_XML_FLAG_V2)",
                   path, ver, HWLOC_VERSION);
  return mb_fail(h,
                 "topology file '%s' is not a valid hwloc XML topology "
                 "(truncated or not XML?)",
                 path);
}

/* Does topo have what a mapping needs?  hwloc loads XML files that it
 * cannot map onto (a lone NUMA node without PUs): refused here, where the
 * topology is given, rather than crashing or failing later. */
static int check_mappable(mpibind_t *h, hwloc_topology_t topo,
                          const char *what, const char *name)
{
  hwloc_const_bitmap_t cpus = hwloc_topology_get_topology_cpuset(topo);
  int npus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  int weight = cpus ? hwloc_bitmap_weight(cpus) : -1;
  if (npus <= 0)
    return mb_fail(h,
                   "%s%s%s%s has no PU (hardware thread): expected a "
                   "topology with PUs to map tasks onto",
                   what, name ? " '" : "", name ? name : "", name ? "'" : "");
  if (weight != npus)
    return mb_fail(h,
                   "%s%s%s%s is inconsistent: its cpuset has %d CPUs but it "
                   "has %d PU objects",
                   what, name ? " '" : "", name ? name : "", name ? "'" : "",
                   weight, npus);
  if (hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE) <= 0)
    return mb_fail(h,
                   "%s%s%s%s has no NUMA node: expected a topology with "
                   "memory domains",
                   what, name ? " '" : "", name ? name : "", name ? "'" : "");
  return 0;
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

/* A NULL file or text: back to the live machine (the topologies given
 * before are retired, see LIFETIME). */
static int back_to_live(mpibind_t *h)
{
  if (retire_topologies(h))
    return -1;
  h->user_topo = NULL;
  return 0;
}

int mpibind_set_topology_file(mpibind_t *h, const char *path)
{
  MB_NEED_HANDLE(h, -1);
  if (!path)
    return back_to_live(h);
  if (check_hwloc(h))
    return -1;
  struct stat st;
  if (!*path)
    return mb_fail(h, "topology file '' is invalid: expected the path of "
                      "an hwloc XML file");
  if (stat(path, &st) != 0)
    return mb_fail_kind(h, errno, "topology file '%s': %s", path,
                        strerror(errno));
  if (S_ISDIR(st.st_mode))
    return mb_fail_kind(h, EISDIR,
                        "topology file '%s' is a directory: expected an "
                        "hwloc XML file",
                        path);
  if (!S_ISREG(st.st_mode))
    return mb_fail(h, "topology file '%s' is not a regular file", path);
  /* With the effective ids, which hwloc will open the file with (a
   * set-uid caller such as slurmstepd acting for a user keeps root as its
   * real uid: access() would answer for root). */
  if (faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) != 0)
    return mb_fail_kind(h, errno, "topology file '%s': %s", path,
                        strerror(errno));
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
    return xml_load_failed(h, path);
  }
  if (check_mappable(h, t, "topology file", path)) {
    hwloc_topology_destroy(t);
    free(copy);
    return -1;
  }
  if (retire_topologies(h)) {
    hwloc_topology_destroy(t);
    free(copy);
    return -1;
  }
  h->user_topo = NULL;
  h->own_topo = t;
  h->topo_file = copy;
  h->base_hw_smt = hw_smt(t);
  return 0;
}

int mpibind_set_topology_xml(mpibind_t *h, const char *buf, size_t len)
{
  MB_NEED_HANDLE(h, -1);
  if (!buf)
    return back_to_live(h);
  if (check_hwloc(h))
    return -1;
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
    return mb_oom(h);
  memcpy(copy, buf, len);
  copy[len] = '\0';
  struct xml_source src = {NULL, copy, len + 1};
  hwloc_topology_t t;
  int rc = load_xml_this_system(&t, &src);
  free(copy);
  if (rc)
    return mb_fail(h, "XML topology of %zu bytes is not a valid hwloc XML "
                      "topology (truncated or not XML?)", len);
  if (check_mappable(h, t, "the XML topology", NULL)) {
    hwloc_topology_destroy(t);
    return -1;
  }
  if (retire_topologies(h)) {
    hwloc_topology_destroy(t);
    return -1;
  }
  h->user_topo = NULL;
  h->own_topo = t;
  h->topo_xml = 1;
  h->base_hw_smt = hw_smt(t);
  return 0;
}

int mpibind_set_topology(mpibind_t *h, hwloc_topology_t topo)
{
  MB_NEED_HANDLE(h, -1);
  if (topo && check_mappable(h, topo, "the caller's topology", NULL))
    return -1;
  if (retire_topologies(h))
    return -1;
  h->user_topo = topo;
  h->base_hw_smt = topo ? hw_smt(topo) : 0;
  return 0;
}

hwloc_topology_t mb_base_topology(mpibind_t *h)
{
  if (check_hwloc(h))
    return NULL;
  if (h->user_topo)
    return h->user_topo;
  if (!h->own_topo && load_live(h))
    return NULL;
  return h->own_topo;
}

int mpibind_topology_load(mpibind_t *h)
{
  MB_NEED_HANDLE(h, -1);
  return mb_base_topology(h) ? 0 : -1;
}

hwloc_topology_t mpibind_get_topology(mpibind_t *h)
{
  MB_NEED_HANDLE(h, NULL);
  if (h->work_topo && h->mapped && !h->stale)
    return h->work_topo;
  return mb_base_topology(h);
}

int mpibind_topology_check_system(mpibind_t *h)
{
  MB_NEED_HANDLE(h, -1);
  hwloc_topology_t t = mb_base_topology(h);
  if (!t)
    return -1;
  if (!h->user_topo && !h->topo_file && !h->topo_xml)
    return 0; /* discovered here */
  const char *what = h->user_topo  ? "the caller's topology"
                     : h->topo_xml ? "the XML topology"
                                   : "topology file";
  if (!hwloc_topology_is_thissystem(t))
    return mb_fail_kind(h, EXDEV,
                        "%s is not this system's (hwloc would not bind with "
                        "it): load it with HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM",
                        what);
  if (h->topo_file) {
    /* Name the file in the message: the user typed it. */
    char *w = NULL;
    if (asprintf(&w, "topology file '%s'", h->topo_file) < 0)
      return mb_oom(h);
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

/* The most hardware threads any core has (docs/algorithm.md, "Beyond the
 * original"): a core that lost a thread (offline CPU, cgroup, a site's
 * reserved system threads) says nothing about the others, wherever it is
 * in the order.  It walks every core, so it is computed once per
 * topology, when the topology is given or loaded (and once per restricted
 * copy), never per mpibind(): mapping one task costs the same on any
 * node. */
static int hw_smt(hwloc_topology_t topo)
{
  int depth = mb_core_depth(topo);
  int hw = 1;
  for (hwloc_obj_t core = hwloc_get_obj_by_depth(topo, depth, 0); core;
       core = core->next_cousin)
    if (core->type != HWLOC_OBJ_PU && (int)core->arity > hw)
      hw = (int)core->arity;
  return hw;
}

/* NUMA nodes without CPUs (GPU memory, CXL) go anyway in a restriction by
 * CPUs (REMOVE_CPULESS).  hwloc 2.9 asserts (aborting the process) when
 * such a node is attached below an object whose CPUs all stay, as hwloc 1
 * exports of GPU nodes have it; removing them first, by nodeset, which
 * has no such check, gives the same topology without the abort.  Also
 * used after a restriction by CPUs without REMOVE_CPULESS (below), where
 * it removes the NUMA nodes that lost their CPUs. */
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

/* What hwloc_topology_restrict drops besides the set it is given (hwloc
 * 2.9, topology.c): by CPUs with REMOVE_CPULESS, the NUMA nodes whose CPUs
 * all go (or that have none); by nodeset with REMOVE_MEMLESS, the PUs none
 * of whose local NUMA nodes stays (or that have none: CPUs whose NUMA node
 * is offline, memory-less or outside the cgroup's mems). */
static void also_dropped(hwloc_topology_t topo, int by_nodeset,
                         hwloc_const_bitmap_t dropped, hwloc_bitmap_t out)
{
  hwloc_bitmap_zero(out);
  hwloc_obj_type_t type = by_nodeset ? HWLOC_OBJ_PU : HWLOC_OBJ_NUMANODE;
  for (hwloc_obj_t o = hwloc_get_next_obj_by_type(topo, type, NULL); o;
       o = hwloc_get_next_obj_by_type(topo, type, o)) {
    hwloc_const_bitmap_t mine = by_nodeset ? o->nodeset : o->cpuset;
    if (hwloc_bitmap_iszero(o->cpuset) || hwloc_bitmap_isincluded(mine, dropped))
      hwloc_bitmap_set(out, o->os_index);
  }
}

/* Would hwloc_topology_restrict, dropping the CPUs dcpu and the NUMA nodes
 * dnode, reach one of its assertions?  At each object its recursion
 * visits, hwloc 2.9 asserts that an object keeping all of the kind being
 * restricted (CPUs, or NUMA nodes by nodeset) loses none of the other
 * kind, unless it has none of the first.  A node whose CPUs lack a NUMA
 * node breaks that by nodeset; a CPU-less NUMA node below CPUs that all
 * stay (hwloc 1 exports) breaks it by CPUs.  This replays the walk. */
static int restrict_would_assert(hwloc_obj_t obj, int by_nodeset,
                                 hwloc_const_bitmap_t dcpu,
                                 hwloc_const_bitmap_t dnode)
{
  hwloc_const_bitmap_t mine = by_nodeset ? obj->complete_nodeset
                                         : obj->complete_cpuset;
  hwloc_const_bitmap_t other = by_nodeset ? obj->complete_cpuset
                                          : obj->complete_nodeset;
  hwloc_const_bitmap_t dmine = by_nodeset ? dnode : dcpu;
  hwloc_const_bitmap_t dother = by_nodeset ? dcpu : dnode;
  if (!mine || !other)
    return 0;
  int modified = hwloc_bitmap_intersects(mine, dmine);
  if (!modified) {
    if (!hwloc_bitmap_iszero(dother) && hwloc_bitmap_intersects(other, dother) &&
        !hwloc_bitmap_iszero(mine))
      return 1;
    modified = hwloc_bitmap_iszero(mine);
  }
  if (!modified)
    return 0;
  for (hwloc_obj_t c = obj->first_child; c; c = c->next_sibling)
    if (restrict_would_assert(c, by_nodeset, dcpu, dnode))
      return 1;
  for (hwloc_obj_t c = obj->memory_first_child; c; c = c->next_sibling)
    if (restrict_would_assert(c, by_nodeset, dcpu, dnode))
      return 1;
  return 0;
}

/* Restricts work to the CPUs set (docs/algorithm.md step 2), removing the
 * NUMA nodes left without CPUs.  Where hwloc's REMOVE_CPULESS would abort
 * or refuse (no NUMA node keeps a CPU: the CPUs named lack a NUMA node),
 * the same is done in two steps that have no such check: the CPUs alone,
 * then the NUMA nodes that lost theirs (when some NUMA node keeps CPUs;
 * otherwise they stay, CPU-less, and are no domain). */
static int restrict_cpus(hwloc_topology_t work, hwloc_const_bitmap_t set)
{
  if (drop_cpuless_numa(work))
    return -1;
  hwloc_bitmap_t dcpu = hwloc_bitmap_alloc(), dnode = hwloc_bitmap_alloc();
  if (!dcpu || !dnode) {
    hwloc_bitmap_free(dcpu);
    hwloc_bitmap_free(dnode);
    errno = ENOMEM;
    return -1;
  }
  hwloc_bitmap_not(dcpu, set);
  also_dropped(work, 0, dcpu, dnode);
  int safe = !hwloc_bitmap_isincluded(
                 hwloc_topology_get_topology_nodeset(work), dnode) &&
             !restrict_would_assert(hwloc_get_root_obj(work), 0, dcpu, dnode);
  hwloc_bitmap_free(dcpu);
  hwloc_bitmap_free(dnode);
  if (safe)
    return hwloc_topology_restrict(work, set,
                                   HWLOC_RESTRICT_FLAG_REMOVE_CPULESS);
  if (hwloc_topology_restrict(work, set, 0))
    return -1;
  return drop_cpuless_numa(work);
}

/* Restricts work to the NUMA nodes set with the CPUs local to them.  keep
 * receives those CPUs (empty: the nodes have none, nothing is done).
 * Where hwloc's REMOVE_MEMLESS would abort (CPUs without a NUMA node), the
 * same in two steps that have no such check: the CPUs, then the nodes. */
static int restrict_nodes(hwloc_topology_t work, hwloc_const_bitmap_t set,
                          hwloc_bitmap_t keep)
{
  hwloc_bitmap_t dnode = hwloc_bitmap_alloc(), dcpu = hwloc_bitmap_alloc();
  if (!dnode || !dcpu) {
    hwloc_bitmap_free(dcpu);
    hwloc_bitmap_free(dnode);
    errno = ENOMEM;
    return -1;
  }
  hwloc_bitmap_not(dnode, set);
  also_dropped(work, 1, dnode, dcpu);
  /* A list naming every NUMA node removes no memory, so no CPU loses any:
   * CPUs without a NUMA node of their own stay (docs/algorithm.md step 2,
   * beyond the original). */
  int all = hwloc_bitmap_isincluded(hwloc_topology_get_topology_nodeset(work),
                                    set);
  if (all)
    hwloc_bitmap_zero(dcpu);
  hwloc_bitmap_andnot(keep, hwloc_topology_get_topology_cpuset(work), dcpu);
  int rc = 0;
  if (all || hwloc_bitmap_iszero(keep))
    rc = 0; /* nothing to remove, or nothing would be left */
  else if (!restrict_would_assert(hwloc_get_root_obj(work), 1, dcpu, dnode))
    rc = hwloc_topology_restrict(work, set,
                                 HWLOC_RESTRICT_FLAG_BYNODESET |
                                     HWLOC_RESTRICT_FLAG_REMOVE_MEMLESS);
  else if (hwloc_topology_restrict(work, keep, 0))
    rc = -1;
  else
    rc = hwloc_topology_restrict(work, set, HWLOC_RESTRICT_FLAG_BYNODESET);
  hwloc_bitmap_free(dnode);
  hwloc_bitmap_free(dcpu);
  return rc;
}

/* The job's CPUs (mpibind_set_job_cpus): a last restriction, by CPUs, of
 * the work topology, after the user's list.  Nothing is copied when the
 * topology has no CPU outside them (a whole-node launch maps as before). */
static int restrict_to_job(mpibind_t *h)
{
  if (!h->job_cpus)
    return 0;
  hwloc_const_bitmap_t have = hwloc_topology_get_topology_cpuset(h->work_topo);
  if (hwloc_bitmap_isincluded(have, h->job_cpus))
    return 0;
  if (!hwloc_bitmap_intersects(have, h->job_cpus)) {
    char *have_s = NULL, *job_s = NULL;
    hwloc_bitmap_list_asprintf(&have_s, have);
    hwloc_bitmap_list_asprintf(&job_s, h->job_cpus);
    int rc = mb_fail(h,
                     "the job's CPUs %s are none of the CPUs %s left to map%s%s%s",
                     job_s ? job_s : "?", have_s ? have_s : "?",
                     h->restrict_ids ? " (after the restrict list '" : "",
                     h->restrict_ids ? h->restrict_ids : "",
                     h->restrict_ids ? "')" : "");
    free(have_s);
    free(job_s);
    return rc;
  }
  if (!h->work_is_copy) {
    hwloc_topology_t work;
    if (hwloc_topology_dup(&work, h->work_topo))
      return mb_fail_kind(h, errno == ENOMEM ? ENOMEM : MPIBIND_ENOMAP,
                          "cannot copy the topology: %s", strerror(errno));
    h->work_topo = work;
    h->work_is_copy = 1;
  }
  if (restrict_cpus(h->work_topo, h->job_cpus)) {
    int e = errno;
    char *job_s = NULL;
    hwloc_bitmap_list_asprintf(&job_s, h->job_cpus);
    int rc = mb_fail(h, "cannot restrict the topology to the job's CPUs %s: %s",
                     job_s ? job_s : "?", strerror(e));
    free(job_s);
    return rc;
  }
  return 0;
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
    return restrict_to_job(h);
  }

  int by_mem = h->restrict_type == MPIBIND_RESTRICT_MEM;
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (!set)
    return mb_oom(h);
  hwloc_const_bitmap_t have = by_mem ? hwloc_topology_get_topology_nodeset(base)
                                     : hwloc_topology_get_topology_cpuset(base);
  /* Ids beyond the node's last select nothing: the set costs what the
   * node is, not what the list's numbers say. */
  int last = hwloc_bitmap_last(have);
  char *why = NULL;
  if (mb_list_parse(h->restrict_ids, set, last < 0 ? 0 : (unsigned)last,
                    &why) < 0) {
    mb_fail(h, "restrict list '%s' is invalid: %s", h->restrict_ids,
            why ? why : "out of memory");
    free(why);
    hwloc_bitmap_free(set);
    return -1;
  }
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
  hwloc_bitmap_t keep = hwloc_bitmap_alloc();
  if (!keep || hwloc_topology_dup(&work, base)) {
    int e = keep ? errno : ENOMEM;
    hwloc_bitmap_free(keep);
    hwloc_bitmap_free(set);
    return mb_fail_kind(h, e == ENOMEM ? ENOMEM : MPIBIND_ENOMAP,
                        "cannot copy the topology: %s", strerror(e));
  }
  int rc = by_mem ? restrict_nodes(work, set, keep) : restrict_cpus(work, set);
  int e = errno;
  hwloc_bitmap_free(set);
  if (rc == 0 && by_mem && hwloc_bitmap_iszero(keep)) {
    hwloc_bitmap_free(keep);
    hwloc_topology_destroy(work);
    return mb_fail(h,
                   "restrict list '%s' selects only NUMA nodes without "
                   "CPUs (memory only): expected a NUMA node with local "
                   "CPUs",
                   h->restrict_ids);
  }
  hwloc_bitmap_free(keep);
  if (rc) {
    hwloc_topology_destroy(work);
    return mb_fail_kind(h, e == ENOMEM ? ENOMEM : EINVAL,
                        "cannot restrict the topology to %s '%s': %s",
                        by_mem ? "NUMA nodes" : "CPUs", h->restrict_ids,
                        strerror(e));
  }
  h->work_topo = work;
  h->work_is_copy = 1;
  return restrict_to_job(h);
}

/* The base topology's hw_smt, computed where the base is given or loaded
 * and forgotten with it (retire_topologies, mb_free_own_topology). */
int mb_base_hw_smt(mpibind_t *h)
{
  hwloc_topology_t base = mb_base_topology(h);
  if (!base)
    return -1;
  if (h->base_hw_smt <= 0)
    h->base_hw_smt = hw_smt(base);
  return h->base_hw_smt;
}

/* The work topology's: the base's when there is no restriction, else
 * computed once per restricted copy (mb_free_work_topology forgets it). */
int mb_work_hw_smt(mpibind_t *h)
{
  if (h->work_hw_smt <= 0)
    h->work_hw_smt = h->work_is_copy ? hw_smt(h->work_topo)
                                     : mb_base_hw_smt(h);
  return h->work_hw_smt;
}
