/*
 * gpus.c - the node's GPU list (docs/algorithm.md step 3) and the GPU
 * allocation a launch may have set (*_VISIBLE_DEVICES).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fail.h"
#include "gpus.h"
#include "gpuvars.h"
#include "handle.h"

static int has_prefix(const char *s, const char *p)
{
  return s && strncmp(s, p, strlen(p)) == 0;
}

/* The subtype names the backend in hwloc 2; exports without it (hwloc 1,
 * some plugins) still name the device after its backend. */
static enum mb_backend backend_of(hwloc_obj_t os)
{
  static const struct {
    const char *subtype, *prefix;
    enum mb_backend backend;
  } known[] = {
      {"NVML", "nvml", MB_BACKEND_SMI},
      {"RSMI", "rsmi", MB_BACKEND_SMI},
      {"LevelZero", "ze", MB_BACKEND_LEVELZERO},
      {"CUDA", "cuda", MB_BACKEND_CUDA},
      {"OpenCL", "opencl", MB_BACKEND_OPENCL},
      {NULL, "renderD", MB_BACKEND_DRM_RENDER},
  };
  size_t n = sizeof(known) / sizeof(*known);
  for (size_t i = 0; os->subtype && i < n; i++)
    if (known[i].subtype && strcasecmp(os->subtype, known[i].subtype) == 0)
      return known[i].backend;
  /* DRM card* and controlD* never count on their own: a board management
   * controller's VGA chip has them too. */
  for (size_t i = 0; i < n; i++)
    if (has_prefix(os->name, known[i].prefix))
      return known[i].backend;
  return MB_BACKEND_NONE;
}

static void gpu_free(struct mb_gpu *g)
{
  free(g->visible);
  free(g->pcibus);
  free(g->name);
  free(g->uuid);
  free(g->alloc_entry);
}

void mb_gpu_list_free(struct mb_gpu_list *list)
{
  for (int i = 0; i < list->n; i++)
    gpu_free(&list->gpu[i]);
  free(list->gpu);
  list->gpu = NULL;
  list->n = 0;
}

int mb_gpu_busid_cmp(const struct mb_gpu *a, const struct mb_gpu *b)
{
  unsigned ka[4] = {a->domain, a->bus, a->dev, a->func};
  unsigned kb[4] = {b->domain, b->bus, b->dev, b->func};
  for (int i = 0; i < 4; i++)
    if (ka[i] != kb[i])
      return ka[i] < kb[i] ? -1 : 1;
  return 0;
}

static const struct mb_gpu *find_by_name(const struct mb_gpu_list *l,
                                         const char *name)
{
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->gpu[i].name, name) == 0)
      return &l->gpu[i];
  return NULL;
}

/* The number a vendor library gave the device, as its name carries it
 * (nvml3 -> "3", ze0.1 -> "0.1"); NULL when the name carries none. */
static char *number_in_name(const char *name)
{
  const char *p = name;
  while (*p && isalpha((unsigned char)*p))
    p++;
  if (!isdigit((unsigned char)*p))
    return NULL;
  return strdup(p);
}

/* Vendor libraries (NVML, RSMI, CUDA, LevelZero) number their devices
 * themselves, and hwloc names the OS devices after those numbers; the
 * other backends' names carry no such number. */
static int numbered_by_library(enum mb_backend b)
{
  return b == MB_BACKEND_SMI || b == MB_BACKEND_LEVELZERO ||
         b == MB_BACKEND_CUDA;
}

/* Appends a zeroed entry for obj (under the PCI device pci) to list;
 * NULL when out of memory. */
static struct mb_gpu *push(struct mb_gpu_list *list, int *cap,
                           hwloc_topology_t topo, hwloc_obj_t obj,
                           hwloc_obj_t pci, enum mb_backend b)
{
  if (list->n == *cap) {
    int ncap = *cap ? 2 * *cap : 8;
    struct mb_gpu *ng = realloc(list->gpu, ncap * sizeof(*ng));
    if (!ng)
      return NULL;
    list->gpu = ng;
    *cap = ncap;
  }
  struct mb_gpu *g = &list->gpu[list->n++];
  memset(g, 0, sizeof(*g));
  g->obj = obj;
  g->backend = b;
  g->locality = hwloc_get_non_io_ancestor_obj(topo, obj);
  g->base_locality = g->locality;
  g->base_obj = obj;
  g->vendor = pci->attr->pcidev.vendor_id;
  g->domain = pci->attr->pcidev.domain;
  g->bus = pci->attr->pcidev.bus;
  g->dev = pci->attr->pcidev.dev;
  g->func = pci->attr->pcidev.func;
  return g;
}

/* Step 3, first part: the GPU and CoProc OS devices that have a PCI
 * device and a known backend, in the walk's order. */
static int osdev_candidates(hwloc_topology_t topo, struct mb_gpu_list *c)
{
  int cap = 0;
  for (hwloc_obj_t os = hwloc_get_next_osdev(topo, NULL); os;
       os = hwloc_get_next_osdev(topo, os)) {
    if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_GPU &&
        os->attr->osdev.type != HWLOC_OBJ_OSDEV_COPROC)
      continue;
    hwloc_obj_t pci = os->parent;
    if (!pci || pci->type != HWLOC_OBJ_PCI_DEVICE || !os->name)
      continue;
    enum mb_backend b = backend_of(os);
    if (b == MB_BACKEND_NONE)
      continue;
    if (!push(c, &cap, topo, os, pci, b))
      return -1;
  }
  return 0;
}

/* On each PCI device only the best backend's devices are GPUs; several of
 * them are a partitioned device.  Keeps the walk's order. */
static void keep_best_backend(struct mb_gpu_list *c)
{
  int kept = 0;
  for (int i = 0; i < c->n; i++) {
    int best = 1;
    for (int j = 0; j < c->n && best; j++)
      if (c->gpu[j].obj->parent == c->gpu[i].obj->parent &&
          c->gpu[j].backend < c->gpu[i].backend)
        best = 0;
    if (best)
      c->gpu[kept++] = c->gpu[i];
  }
  c->n = kept;
}

/* Is this PCI function a GPU by its class and vendor alone?  3D and
 * "other display" controllers of NVIDIA, AMD and Intel are their compute
 * GPUs (A100, V100, MI250, Data Center GPU Max); a VGA controller is one
 * when NVIDIA's or AMD's (discrete cards), not Intel's (integrated
 * graphics).  A board controller's VGA (ASPEED, Matrox) is never one. */
static int pci_is_gpu(hwloc_obj_t pci)
{
  unsigned cls = pci->attr->pcidev.class_id;
  int slot = mb_vendor_slot(pci->attr->pcidev.vendor_id);
  if (slot < 0)
    return 0;
  if (cls == 0x0302 || cls == 0x0380)
    return 1;
  return cls == 0x0300 && slot != mb_vendor_slot(MB_VENDOR_INTEL);
}

/* docs/algorithm.md, "Beyond the original": a GPU PCI function that no OS
 * device stands for (hwloc without the vendor plugins and without DRM
 * render nodes) is a GPU of its own, after the OS devices' GPUs, in the
 * PCI walk's order. */
static int add_pci_only(hwloc_topology_t topo, struct mb_gpu_list *list)
{
  int cap = list->n;
  for (hwloc_obj_t pci = hwloc_get_next_pcidev(topo, NULL); pci;
       pci = hwloc_get_next_pcidev(topo, pci)) {
    if (!pci_is_gpu(pci))
      continue;
    int seen = 0;
    for (int i = 0; i < list->n && !seen; i++)
      seen = list->gpu[i].obj->parent == pci;
    if (!seen && !push(list, &cap, topo, pci, pci, MB_BACKEND_PCI))
      return -1;
  }
  return 0;
}

/* The IDs every GPU has: name (an OS device's, or the PCI bus id of a GPU
 * seen only on the bus), UUID ("" when unknown), PCI bus id. */
static int fill_ids(struct mb_gpu_list *list)
{
  static const char *const uuid_keys[] = {"NVIDIAUUID", "AMDUUID",
                                          "LevelZeroUUID"};
  for (int i = 0; i < list->n; i++) {
    struct mb_gpu *g = &list->gpu[i];
    if (asprintf(&g->pcibus, "%04x:%02x:%02x.%01x", g->domain, g->bus,
                 g->dev, g->func) < 0) {
      g->pcibus = NULL;
      return -1;
    }
    const char *uuid = NULL;
    for (int k = 0; k < 3 && !uuid && g->backend != MB_BACKEND_PCI; k++)
      uuid = hwloc_obj_get_info_by_name(g->obj, uuid_keys[k]);
    g->name = strdup(g->backend == MB_BACKEND_PCI ? g->pcibus : g->obj->name);
    g->uuid = strdup(uuid ? uuid : "");
    if (!g->name || !g->uuid)
      return -1;
  }
  return 0;
}

/* Does vendor's numbering come from the names?  Only when every GPU of
 * the vendor carries a vendor library's number and no two carry the same:
 * otherwise (DRM, OpenCL or PCI-only GPUs beside library-numbered ones,
 * or a library that numbered a job's subset) the two numberings overlap,
 * and the node-wide one is the PCI bus order. */
static int vendor_uses_names(const struct mb_gpu_list *list, unsigned vendor)
{
  for (int i = 0; i < list->n; i++) {
    const struct mb_gpu *g = &list->gpu[i];
    if (g->vendor != vendor)
      continue;
    if (!numbered_by_library(g->backend))
      return 0;
    char *mine = number_in_name(g->name);
    if (!mine)
      return 0;
    int repeated = 0;
    for (int j = 0; j < i && !repeated; j++) {
      const struct mb_gpu *o = &list->gpu[j];
      char *theirs = o->vendor == vendor ? number_in_name(o->name) : NULL;
      repeated = theirs && strcmp(theirs, mine) == 0;
      free(theirs);
    }
    free(mine);
    if (repeated)
      return 0;
  }
  return 1;
}

/* Visible indexes, one numbering per vendor for the whole node: the
 * vendor library's numbers where they cover the vendor (see above), else
 * the position among the vendor's GPUs sorted by PCI bus id (the runtimes'
 * order under CUDA_DEVICE_ORDER=PCI_BUS_ID; the walk's order among the
 * partitions of one device). */
static int number_visible(struct mb_gpu_list *list)
{
  /* by_name[i]: does GPU i's vendor use the names?  Decided once per
   * vendor, at its first GPU. */
  char *by_name = calloc(list->n > 0 ? list->n : 1, 1);
  if (!by_name)
    return -1;
  for (int i = 0; i < list->n; i++) {
    int first = 0;
    while (list->gpu[first].vendor != list->gpu[i].vendor)
      first++;
    by_name[i] = first < i ? by_name[first]
                           : (char)vendor_uses_names(list, list->gpu[i].vendor);
  }
  int rc = 0;
  for (int i = 0; i < list->n && rc == 0; i++) {
    struct mb_gpu *g = &list->gpu[i];
    if (by_name[i]) {
      g->visible = number_in_name(g->name);
    } else {
      int pos = 0;
      for (int j = 0; j < list->n; j++) {
        int cmp = mb_gpu_busid_cmp(&list->gpu[j], g);
        if (list->gpu[j].vendor == g->vendor &&
            (cmp < 0 || (cmp == 0 && j < i)))
          pos++;
      }
      if (asprintf(&g->visible, "%d", pos) < 0)
        g->visible = NULL;
    }
    if (!g->visible)
      rc = -1;
  }
  free(by_name);
  return rc;
}

/* On a restricted topology: the GPUs of the node's list (ref) that are
 * still there, each with ref's visible index and allocation entry.  A GPU
 * whose nearest CPU object lost all its CPUs is gone too: hwloc removes
 * such objects with their I/O, except where the restriction had to keep
 * their memory (docs/algorithm.md step 2, CPUs without a NUMA node).  One
 * that had no CPU before (in a CPU-less group of memory) stays. */
static int take_from_ref(const struct mb_gpu_list *ref,
                         struct mb_gpu_list *list)
{
  int kept = 0, rc = 0;
  for (int i = 0; i < list->n; i++) {
    struct mb_gpu *g = &list->gpu[i];
    const struct mb_gpu *r = find_by_name(ref, g->name);
    if (!r || rc ||
        (hwloc_bitmap_iszero(g->locality->cpuset) &&
         !hwloc_bitmap_iszero(r->locality->cpuset))) {
      gpu_free(g);
      continue;
    }
    g->visible = strdup(r->visible);
    g->base_locality = r->locality;
    g->base_obj = r->obj;
    if (!g->visible ||
        (r->alloc_entry && !(g->alloc_entry = strdup(r->alloc_entry))))
      rc = -1;
    list->gpu[kept++] = *g;
  }
  list->n = kept;
  return rc;
}

int mb_gpu_list_build(mpibind_t *h, hwloc_topology_t topo,
                      const struct mb_gpu_list *ref, struct mb_gpu_list *list)
{
  list->gpu = NULL;
  list->n = 0;
  int rc = osdev_candidates(topo, list);
  if (rc == 0) {
    keep_best_backend(list);
    rc = add_pci_only(topo, list);
  }
  if (rc == 0)
    rc = fill_ids(list);
  if (rc == 0)
    rc = ref ? take_from_ref(ref, list) : number_visible(list);
  if (rc) {
    mb_gpu_list_free(list);
    return mb_oom(h);
  }
  return 0;
}

static int same_uuid(const char *entry, const char *uuid)
{
  if (!*uuid)
    return 0;
  if (strncasecmp(entry, "GPU-", 4) == 0)
    entry += 4;
  if (strncasecmp(uuid, "GPU-", 4) == 0)
    uuid += 4;
  return strcasecmp(entry, uuid) == 0;
}

static int same_busid(const char *entry, const struct mb_gpu *g)
{
  unsigned d = 0, b, v, f;
  char end;
  if (sscanf(entry, "%x:%x:%x.%x%c", &d, &b, &v, &f, &end) != 4) {
    d = 0;
    if (sscanf(entry, "%x:%x.%x%c", &b, &v, &f, &end) != 3)
      return 0;
  }
  return d == g->domain && b == g->bus && v == g->dev && f == g->func;
}

static int entry_names(const char *entry, const struct mb_gpu *g)
{
  return strcmp(entry, g->visible) == 0 || same_uuid(entry, g->uuid) ||
         same_busid(entry, g);
}

/* Only the GPUs the launch allocated stay, each remembering the entry that
 * named it: the task's variable must be written in the allocation's own
 * terms. */
int mb_gpu_list_allocate(mpibind_t *h, struct mb_gpu_list *list)
{
  for (int a = 0; a < h->nallocs; a++) {
    const char *var = h->allocs[a].var;
    unsigned vendor = mb_gpu_var_vendor(var);
    /* A node without that vendor's GPUs has nothing to allocate: sites
     * export such variables everywhere, CPU nodes included. */
    int any = 0;
    for (int i = 0; i < list->n && !any; i++)
      any = list->gpu[i].vendor == vendor;
    if (!any)
      continue;
    char *value = mb_strdup(h, h->allocs[a].value);
    if (!value)
      return -1;
    char *keep = calloc(list->n > 0 ? list->n : 1, 1);
    if (!keep) {
      free(value);
      return mb_oom(h);
    }
    char *save = NULL;
    for (char *e = strtok_r(value, ",", &save); e;
         e = strtok_r(NULL, ",", &save)) {
      while (isspace((unsigned char)*e))
        e++;
      e[strcspn(e, " \t\n")] = '\0';
      if (!*e)
        continue;
      int found = -1;
      for (int i = 0; i < list->n && found < 0; i++)
        if (list->gpu[i].vendor == vendor && entry_names(e, &list->gpu[i]))
          found = i;
      if (found < 0) {
        int rc = mb_fail(h,
                         "%s entry '%s' names no GPU of this node of that "
                         "vendor: expected a visible index, a UUID or a PCI "
                         "bus id",
                         var, e);
        free(keep);
        free(value);
        return rc;
      }
      if (!keep[found]) {
        keep[found] = 1;
        free(list->gpu[found].alloc_entry);
        if (!(list->gpu[found].alloc_entry = strdup(e))) {
          free(keep);
          free(value);
          return mb_oom(h);
        }
      }
    }
    free(value);
    int kept = 0;
    for (int i = 0; i < list->n; i++) {
      struct mb_gpu *g = &list->gpu[i];
      if (g->vendor != vendor || keep[i]) {
        list->gpu[kept++] = *g;
      } else {
        gpu_free(g);
      }
    }
    list->n = kept;
    free(keep);
  }
  return 0;
}

const char *mb_gpu_id(const struct mb_gpu *g, int kind)
{
  switch (kind) {
  case MPIBIND_ID_UNIV: return g->uuid;
  case MPIBIND_ID_PCIBUS: return g->pcibus;
  case MPIBIND_ID_NAME: return g->name;
  default: return g->alloc_entry ? g->alloc_entry : g->visible;
  }
}

/* A copy of g (its strings duplicated); -1 when out of memory. */
static int gpu_copy(struct mb_gpu *to, const struct mb_gpu *g)
{
  *to = *g;
  to->visible = strdup(g->visible);
  to->pcibus = strdup(g->pcibus);
  to->name = strdup(g->name);
  to->uuid = strdup(g->uuid);
  to->alloc_entry = g->alloc_entry ? strdup(g->alloc_entry) : NULL;
  if (to->visible && to->pcibus && to->name && to->uuid &&
      (to->alloc_entry || !g->alloc_entry))
    return 0;
  gpu_free(to);
  return -1;
}

/* Does GPU a of the unrestricted list stay the job's when a restriction
 * removed it?  A user's restriction (the restrict list) selects the CPUs
 * the tasks use, not the GPUs the job holds: the GPUs it removes stay.
 * The job's CPUs (a launch on part of a shared node) remove the GPUs
 * local only to CPUs outside the job, which may be another job's, unless
 * the allocation names them (the launch gave them to the job).  A GPU
 * local to no CPU (beside memory only) is no CPU restriction's business.
 * (docs/algorithm.md, "No GPU left idle") */
static int stays_outside(const mpibind_t *h, const struct mb_gpu *a)
{
  hwloc_const_bitmap_t near = a->locality->cpuset;
  return a->alloc_entry || hwloc_bitmap_iszero(near) || !h->job_cpus ||
         hwloc_bitmap_intersects(near, h->job_cpus);
}

int mb_gpu_list_keep_outside(mpibind_t *h, const struct mb_gpu_list *all,
                             struct mb_gpu_list *list)
{
  int extra = 0;
  for (int i = 0; i < all->n; i++)
    extra += stays_outside(h, &all->gpu[i]) && !find_by_name(list, all->gpu[i].name);
  if (extra == 0)
    return 0;
  struct mb_gpu *more =
      realloc(list->gpu, (size_t)(list->n + extra) * sizeof(*more));
  if (!more)
    return mb_oom(h);
  list->gpu = more;
  /* After the restricted topology's GPUs (a restriction may reorder
   * hwloc's walk), in the unrestricted list's order; their objects are
   * the unrestricted topology's. */
  int n = list->n;
  for (int i = 0; i < all->n; i++) {
    const struct mb_gpu *a = &all->gpu[i];
    if (!stays_outside(h, a) || find_by_name(list, a->name))
      continue;
    if (gpu_copy(&list->gpu[n], a))
      return mb_oom(h); /* list->n entries stay valid, the copies are gone */
    list->gpu[n].outside = 1;
    list->n = ++n;
  }
  return 0;
}

static const char *kind_word(int kind)
{
  switch (kind) {
  case MPIBIND_ID_UNIV: return "uuid (MPIBIND_ID_UNIV)";
  case MPIBIND_ID_PCIBUS: return "pci (MPIBIND_ID_PCIBUS)";
  case MPIBIND_ID_NAME: return "name (MPIBIND_ID_NAME)";
  default: return "index (MPIBIND_ID_SMI)";
  }
}

/* Two GPUs of list with the same id of kind (an empty one only when
 * empty_too), or -1.  Visible indexes are each vendor's own numbering
 * (each vendor has its variable): they repeat across vendors. */
static int repeated_id(const struct mb_gpu_list *list, int kind,
                       int empty_too, int *first)
{
  for (int i = 0; i < list->n; i++) {
    const char *id = mb_gpu_id(&list->gpu[i], kind);
    for (int j = 0; (*id || empty_too) && j < i; j++)
      if ((kind != MPIBIND_ID_SMI ||
           list->gpu[j].vendor == list->gpu[i].vendor) &&
          strcmp(mb_gpu_id(&list->gpu[j], kind), id) == 0) {
        *first = j;
        return i;
      }
  }
  return -1;
}

int mb_gpu_ids_check_unique(mpibind_t *h, const struct mb_gpu_list *list,
                            int kind)
{
  int a = -1, b = repeated_id(list, kind, 0, &a);
  if (b < 0)
    return 0;
  static const int kinds[] = {MPIBIND_ID_SMI, MPIBIND_ID_PCIBUS,
                              MPIBIND_ID_UNIV, MPIBIND_ID_NAME};
  char others[160] = "";
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    int x;
    if (kinds[k] == kind || repeated_id(list, kinds[k], 1, &x) >= 0)
      continue;
    size_t len = strlen(others);
    snprintf(others + len, sizeof others - len, "%s%s", len ? ", " : "",
             kind_word(kinds[k]));
  }
  return mb_fail(h,
                 "GPU id kind %s does not tell this node's GPUs apart: %s "
                 "and %s (PCI %s and %s) both have the id '%s': expected a "
                 "kind that names each GPU once (%s)",
                 kind_word(kind), list->gpu[a].name, list->gpu[b].name,
                 list->gpu[a].pcibus, list->gpu[b].pcibus,
                 mb_gpu_id(&list->gpu[a], kind), others);
}
