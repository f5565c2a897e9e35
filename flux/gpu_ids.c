/*
 * gpu_ids.c - the job's GPUs, as Flux names them, given to the mapping (see
 * flux_plugin.h for the contract).
 *
 * Flux's GPU ids (R's "gpu" idset) count the node's GPUs as Flux's resource
 * module finds them in the node's hwloc topology: the OS devices of a
 * compute backend (CUDA, NVML, OpenCL, RSMI) in hwloc's order, a PCI
 * device counted once per GPU it carries (the same GPU under a second
 * backend is not counted again; the partitions of one device under one
 * backend are several GPUs).  Flux's own gpu-affinity writes these ids into
 * CUDA_VISIBLE_DEVICES.  The library names GPUs otherwise: one numbering per
 * vendor (the vendor library's, else the PCI bus order), which is what the
 * task's runtime sees under CUDA_DEVICE_ORDER=PCI_BUS_ID.  So each of the
 * job's GPUs is found among the library's GPUs of the node (the same OS
 * device, else the same PCI device and partition), and the allocation of
 * each GPU variable is the list of those GPUs' visible indexes: the tasks
 * are told the GPUs in the numbering they will see, and never a GPU the job
 * was not given.  Which variable a GPU belongs to is the library's answer
 * too: a variable allocated nothing hides exactly its vendor's GPUs.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flux_plugin.h"
#include "mpibind_auto_node.h"

/* ---- Flux's numbering ----------------------------------------------------- */

static hwloc_obj_t pci_device_of(hwloc_obj_t obj) {
  hwloc_obj_t p = obj->parent;
  while (p && p->type != HWLOC_OBJ_PCI_DEVICE)
    p = p->parent;
  return p;
}

static int compute_backend(const char *backend) {
  static const char *const known[] = {"CUDA", "NVML", "OpenCL", "RSMI"};
  for (size_t i = 0; backend && i < sizeof known / sizeof *known; i++)
    if (strcmp(backend, known[i]) == 0)
      return 1;
  return 0;
}

/* The node's GPUs in Flux's numbering: (*gpus)[id] is GPU `id`'s OS
 * device.  Returns their count, or -1 out of memory. */
static int flux_gpus(hwloc_topology_t topo, hwloc_obj_t **gpus) {
  hwloc_obj_t obj = NULL;
  int n = 0, cap = 0;
  *gpus = NULL;
  while ((obj = hwloc_get_next_osdev(topo, obj)) != NULL) {
    const char *backend = hwloc_obj_get_info_by_name(obj, "Backend");
    hwloc_obj_t pci = pci_device_of(obj);
    int seen = 0;
    if (!compute_backend(backend))
      continue;
    for (int i = 0; pci && i < n && !seen; i++)
      seen = pci_device_of((*gpus)[i]) == pci &&
             strcmp(hwloc_obj_get_info_by_name((*gpus)[i], "Backend"),
                    backend) != 0;
    if (seen)
      continue;
    if (n == cap) {
      hwloc_obj_t *more = realloc(*gpus, (cap ? 2 * cap : 8) * sizeof *more);
      if (more == NULL)
        return -1;
      *gpus = more;
      cap = cap ? 2 * cap : 8;
    }
    (*gpus)[n++] = obj;
  }
  return n;
}

/* "dddd:bb:dd.f" of the PCI device above obj, or "" without one. */
static void busid_of(hwloc_obj_t obj, char buf[32]) {
  hwloc_obj_t pci = pci_device_of(obj);
  buf[0] = '\0';
  if (pci)
    snprintf(buf, 32, "%04x:%02x:%02x.%01x", pci->attr->pcidev.domain,
             pci->attr->pcidev.bus, pci->attr->pcidev.dev,
             pci->attr->pcidev.func);
}

/* Which of the GPUs of its PCI device obj is, in hwloc's order (0 for a
 * device that is one GPU). */
static int partition_of(hwloc_obj_t *gpus, int id) {
  hwloc_obj_t pci = pci_device_of(gpus[id]);
  int k = 0;
  for (int i = 0; pci && i < id; i++)
    k += pci_device_of(gpus[i]) == pci;
  return k;
}

/* ---- The library's GPUs --------------------------------------------------- */

/* The number of GPU variables the library knows. */
static int gpu_var_count(void) {
  int n = 0;
  while (mpibind_get_gpu_var(n) != NULL)
    n++;
  return n;
}


/* The node's GPUs as the library lists them, unrestricted and
 * unallocated, with the GPU variable each belongs to. */
struct lib_gpus {
  mpibind_t *probe; /* a one-task mapping of h's topology */
  int n;
  const char **var; /* n entries: the variable of GPU i (NULL: none) */
};

/* The GPU variables the probe's mapping writes (the node has GPUs of their
 * vendors), into vars[] (the library's static names, which outlive the
 * probe's next mapping); their count. */
static int written_vars(mpibind_t *probe, const char **vars, int max) {
  int count = 0, nv = 0;
  char **names = mpibind_get_env_var_names(probe, &count);
  for (int k = 0; names && k < count; k++) {
    int i = mpibind_auto_gpu_var_index(names[k]);
    if (i >= 0 && nv < max)
      vars[nv++] = mpibind_get_gpu_var(i);
  }
  return nv;
}

static int probe_map(mpibind_t *probe) {
  return mpibind(probe) != 0 || mpibind_set_env_vars(probe) != 0 ? -1 : 0;
}

/* GPU i of the probe is still listed once `var` allocates nothing. */
static int assign_vendor(struct lib_gpus *l, const char *var, char **msg) {
  int rc = 0;
  char **kept = calloc(l->n > 0 ? l->n : 1, sizeof *kept);
  if (kept == NULL)
    return -1;
  for (int i = 0; i < l->n && rc == 0; i++)
    if ((kept[i] = strdup(mpibind_get_gpu_id(l->probe, i, MPIBIND_ID_NAME)))
        == NULL)
      rc = -1;
  if (rc == 0 && (mpibind_set_gpu_allocation(l->probe, var, "") != 0 ||
                  probe_map(l->probe) != 0)) {
    *msg = mpibind_auto_strdupf("the node's GPUs of %s: %s", var,
                                mpibind_get_error(l->probe));
    rc = -1;
  }
  for (int i = 0; i < l->n && rc == 0; i++) {
    int still = 0;
    for (int g = 0; g < mpibind_get_num_gpus(l->probe) && !still; g++)
      still = strcmp(kept[i], mpibind_get_gpu_id(l->probe, g,
                                                 MPIBIND_ID_NAME)) == 0;
    if (!still)
      l->var[i] = var;
  }
  if (rc == 0 && (mpibind_set_gpu_allocation(l->probe, var, NULL) != 0 ||
                  probe_map(l->probe) != 0))
    rc = -1;
  for (int i = 0; i < l->n; i++)
    free(kept[i]);
  free(kept);
  return rc;
}

static int lib_gpus_load(mpibind_t *h, struct lib_gpus *l, char **msg) {
  const char **vars;
  int nv, rc = 0;
  memset(l, 0, sizeof *l);
  if (mpibind_init(&l->probe) != 0 || l->probe == NULL ||
      mpibind_set_topology(l->probe, mpibind_get_topology(h)) != 0 ||
      mpibind_set_ntasks(l->probe, 1) != 0 || probe_map(l->probe) != 0) {
    *msg = mpibind_auto_strdupf("the node's GPUs: %s",
                                mpibind_get_error(l->probe));
    return -1;
  }
  l->n = mpibind_get_num_gpus(l->probe);
  if ((l->var = calloc(l->n > 0 ? l->n : 1, sizeof *l->var)) == NULL)
    return -1;
  nv = gpu_var_count();
  if ((vars = calloc(nv > 0 ? nv : 1, sizeof *vars)) == NULL)
    return -1;
  nv = written_vars(l->probe, vars, nv);
  if (nv == 1) {
    /* one vendor: every GPU is its variable's */
    for (int i = 0; i < l->n; i++)
      l->var[i] = vars[0];
  } else {
    for (int k = 0; k < nv && rc == 0; k++)
      rc = assign_vendor(l, vars[k], msg);
  }
  free(vars);
  return rc;
}

static void lib_gpus_free(struct lib_gpus *l) {
  if (l->probe)
    mpibind_finalize(l->probe);
  free(l->var);
}

/* The library's GPU that is Flux's GPU `id`: the same OS device, else the
 * same partition of the same PCI device; -1 when the library has none. */
static int lib_gpu_of(const struct lib_gpus *l, hwloc_obj_t *gpus, int id) {
  char bus[32];
  int k = partition_of(gpus, id), seen = 0;
  for (int g = 0; g < l->n; g++)
    if (strcmp(mpibind_get_gpu_id(l->probe, g, MPIBIND_ID_NAME),
               gpus[id]->name) == 0)
      return g;
  busid_of(gpus[id], bus);
  for (int g = 0; bus[0] && g < l->n; g++)
    if (strcasecmp(mpibind_get_gpu_id(l->probe, g, MPIBIND_ID_PCIBUS), bus) ==
            0 &&
        seen++ == k)
      return g;
  return -1;
}

/* ---- The allocation -------------------------------------------------------- */

/* Every GPU variable allocated nothing: a job without GPUs. */
static int no_gpus(mpibind_t *h, char **msg) {
  const char *var;
  for (int i = 0; (var = mpibind_get_gpu_var(i)) != NULL; i++)
    if (mpibind_set_gpu_allocation(h, var, "") != 0) {
      *msg = mpibind_auto_strdupf("%s (the job has no GPU): %s", var,
                                  mpibind_get_error(h));
      return -1;
    }
  return 0;
}

/* Appends GPU g's visible index (g < 0: nothing) to the list of variable
 * `var` (one list per variable in vars[]/lists[], *nv of them). */
static int add_to_list(const struct lib_gpus *l, const char *var, int g,
                       const char **vars, char **lists, int *nv) {
  char *more;
  int k = 0;
  while (k < *nv && strcmp(vars[k], var) != 0)
    k++;
  if (k == *nv) {
    if ((lists[k] = strdup("")) == NULL)
      return -1;
    vars[k] = var;
    (*nv)++;
  }
  if (g < 0)
    return 0;
  more = mpibind_auto_strdupf("%s%s%s", lists[k], *lists[k] ? "," : "",
                              mpibind_get_gpu_id(l->probe, g,
                                                 MPIBIND_ID_VISDEVS));
  if (more == NULL)
    return -1;
  free(lists[k]);
  lists[k] = more;
  return 0;
}

/* For each variable of the node's GPUs, the visible indexes of the job's
 * GPUs of that variable (none: ""), given to h. */
static int allocate(mpibind_t *h, const struct lib_gpus *l, hwloc_obj_t *gpus,
                    int ngpus, hwloc_const_bitmap_t ids, char **msg) {
  int max = gpu_var_count(), nv = 0, id, rc = 0;
  const char **vars = calloc(max > 0 ? max : 1, sizeof *vars);
  char **lists = calloc(max > 0 ? max : 1, sizeof *lists);
  if (vars == NULL || lists == NULL)
    rc = -1;
  /* every variable of the node's GPUs gets a list, empty or not */
  for (int g = 0; g < l->n && rc == 0; g++)
    if (l->var[g] && add_to_list(l, l->var[g], -1, vars, lists, &nv) != 0)
      rc = -1;
  hwloc_bitmap_foreach_begin(id, ids) {
    int g = id < ngpus ? lib_gpu_of(l, gpus, id) : -1;
    if (rc == 0 && g >= 0 && l->var[g] &&
        add_to_list(l, l->var[g], g, vars, lists, &nv) != 0)
      rc = -1;
  }
  hwloc_bitmap_foreach_end();
  for (int k = 0; k < nv && rc == 0; k++)
    if (mpibind_set_gpu_allocation(h, vars[k], lists[k]) != 0) {
      *msg = mpibind_auto_strdupf("%s='%s' (the job's GPUs): %s", vars[k],
                                  lists[k], mpibind_get_error(h));
      rc = -1;
    }
  for (int k = 0; k < nv; k++)
    free(lists[k]);
  free(lists);
  free(vars);
  return rc;
}

int mpibind_flux_gpu_allocation(mpibind_t *h, hwloc_topology_t flux_topo,
                                const char *gpus, char **msg) {
  hwloc_bitmap_t ids = hwloc_bitmap_alloc();
  hwloc_obj_t *objs = NULL;
  struct lib_gpus l;
  int ngpus, rc = -1;
  memset(&l, 0, sizeof l);
  *msg = NULL;
  if (ids == NULL)
    goto out;
  if (gpus == NULL || gpus[0] == '\0') {
    rc = no_gpus(h, msg);
    goto out;
  }
  if (hwloc_bitmap_list_sscanf(ids, gpus) != 0 ||
      hwloc_bitmap_weight(ids) < 0) {
    *msg = mpibind_auto_strdupf("the job's GPUs '%s' (from Flux) are not a "
                                "list of GPU ids", gpus);
    goto out;
  }
  if ((ngpus = flux_gpus(flux_topo, &objs)) < 0 ||
      lib_gpus_load(h, &l, msg) != 0)
    goto out;
  /* Always an allocation, even of every GPU of the node: it is what
   * says the GPUs are the job's.  Without it, a job on a few cores keeps
   * only the GPUs local to them (the library's job CPUs drop the others,
   * which may be another job's), and leaves the rest of its GPUs idle. */
  rc = allocate(h, &l, objs, ngpus, ids, msg);
out:
  if (rc != 0 && *msg == NULL)
    *msg = strdup("out of memory");
  lib_gpus_free(&l);
  free(objs);
  hwloc_bitmap_free(ids);
  return rc;
}
