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

#include "mpibind_internal.h"

int mb_vendor_slot(unsigned vendor)
{
  switch (vendor) {
  case MB_VENDOR_NVIDIA: return 0;
  case MB_VENDOR_AMD: return 1;
  case MB_VENDOR_INTEL: return 2;
  default: return -1;
  }
}

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

static int busid_cmp(const struct mb_gpu *a, const struct mb_gpu *b)
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

int mb_gpu_list_build(mpibind_t *h, hwloc_topology_t topo,
                      const struct mb_gpu_list *ref, struct mb_gpu_list *list)
{
  list->gpu = NULL;
  list->n = 0;

  /* Candidates, in the walk's order. */
  int cap = 0, n = 0;
  struct mb_gpu *c = NULL;
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
    if (n == cap) {
      cap = cap ? 2 * cap : 8;
      struct mb_gpu *nc = realloc(c, cap * sizeof(*c));
      if (!nc) {
        free(c);
        return mb_fail(h, "out of memory");
      }
      c = nc;
    }
    struct mb_gpu *g = &c[n++];
    memset(g, 0, sizeof(*g));
    g->osdev = os;
    g->backend = b;
    g->locality = hwloc_get_non_io_ancestor_obj(topo, os);
    g->vendor = pci->attr->pcidev.vendor_id;
    g->domain = pci->attr->pcidev.domain;
    g->bus = pci->attr->pcidev.bus;
    g->dev = pci->attr->pcidev.dev;
    g->func = pci->attr->pcidev.func;
  }

  /* On each PCI device only the best backend's devices are GPUs; several of
   * them are a partitioned device. */
  list->gpu = calloc(n > 0 ? n : 1, sizeof(*list->gpu));
  if (!list->gpu) {
    free(c);
    return mb_fail(h, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    int best = 1;
    for (int j = 0; j < n && best; j++)
      if (c[j].osdev->parent == c[i].osdev->parent &&
          c[j].backend < c[i].backend)
        best = 0;
    if (best)
      list->gpu[list->n++] = c[i];
  }
  free(c);

  int rc = 0;
  for (int i = 0; i < list->n && rc == 0; i++) {
    struct mb_gpu *g = &list->gpu[i];
    const char *uuid = NULL;
    static const char *const uuid_keys[] = {"NVIDIAUUID", "AMDUUID",
                                            "LevelZeroUUID"};
    for (int k = 0; k < 3 && !uuid; k++)
      uuid = hwloc_obj_get_info_by_name(g->osdev, uuid_keys[k]);
    g->name = strdup(g->osdev->name);
    g->uuid = strdup(uuid ? uuid : "");
    if (asprintf(&g->pcibus, "%04x:%02x:%02x.%01x", g->domain, g->bus,
                 g->dev, g->func) < 0)
      g->pcibus = NULL;
    if (!g->name || !g->uuid || !g->pcibus)
      rc = mb_fail(h, "out of memory");
  }
  if (rc) {
    mb_gpu_list_free(list);
    return rc;
  }

  /* Visible indexes.  Vendor libraries number their devices themselves
   * (not always in PCI order); for OpenCL and DRM devices the runtimes'
   * default order is the PCI bus order, per vendor. */
  for (int i = 0; i < list->n; i++) {
    struct mb_gpu *g = &list->gpu[i];
    if (ref) {
      const struct mb_gpu *r = find_by_name(ref, g->name);
      if (!r) /* not allocated to this job: dropped below */
        continue;
      g->visible = strdup(r->visible);
      if (r->alloc_entry && !(g->alloc_entry = strdup(r->alloc_entry)))
        rc = -1;
    } else {
      if (g->backend <= MB_BACKEND_CUDA)
        g->visible = number_in_name(g->name);
      if (!g->visible) {
        int pos = 0;
        for (int j = 0; j < list->n; j++) {
          int cmp = busid_cmp(&list->gpu[j], g);
          if (list->gpu[j].vendor == g->vendor && (cmp < 0 || (cmp == 0 && j < i)))
            pos++;
        }
        if (asprintf(&g->visible, "%d", pos) < 0)
          g->visible = NULL;
      }
    }
    if (!g->visible)
      rc = -1;
  }
  if (rc) {
    mb_gpu_list_free(list);
    return mb_fail(h, "out of memory");
  }
  if (ref) { /* keep what the reference list kept */
    int kept = 0;
    for (int i = 0; i < list->n; i++) {
      if (find_by_name(ref, list->gpu[i].name)) {
        list->gpu[kept++] = list->gpu[i];
      } else {
        gpu_free(&list->gpu[i]);
      }
    }
    list->n = kept;
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
      return mb_fail(h, "out of memory");
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
          return mb_fail(h, "out of memory");
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
