/*
 * draw.c - a picture of the mapping, drawn by hwloc's own renderer
 * (mpibind_draw, see mpibind.h).
 *
 * Why here and not in a front end: the command (--draw) and the preload
 * (MPIBIND=draw:PATH) both draw, and the Python module can too; one
 * function keeps one picture.  Nothing here is a mapping rule: it reads the
 * outputs of mpibind() and colours a private copy of the topology.
 *
 * Steps:
 *   1. copy the topology the mapping started from (before any restriction,
 *      so that the CPUs the tasks do not use are drawn too);
 *   2. mark, on each object of the copy, the set of tasks using it: the
 *      task's PUs and their cores, the task's GPUs (the OS device, its PCI
 *      device and that device's other OS devices, e.g. cuda0 beside nvml0)
 *      and its NICs (likewise: mlx5_0 beside ib0);
 *   3. paint: an object of one task gets the task's colour through the
 *      `lstopoStyle` info attribute (see lstopo(1), CUSTOM COLORS); an
 *      object of several tasks gets the shared colour and a Misc child
 *      naming the tasks; a swatch per task (a Misc child of the root) and
 *      a legend line per task (the report line, `lstopoLegend` infos of the
 *      root) say which colour is which task;
 *   4. export the copy as XML and, unless XML was asked for, run lstopo on
 *      it with the format of the file name's extension.
 *
 * The output goes to a temporary file beside PATH, renamed onto PATH at
 * the end: a failure never leaves half a picture, and an unwritable
 * directory is found before any work.  A PATH that is a symbolic link is
 * written through, as lstopo --force and a shell's redirection do: the
 * file it leads to gets the picture (made when missing), the link stays.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fail.h"
#include "handle.h"
#include "mb_spawn.h"
#include "topology.h"

/* ---- Colours ---------------------------------------------------------- */

struct rgb {
  int r, g, b;
};

/* Distinct strong colours for the first tasks (the "tab10" palette without
 * its grey, which means "shared" here); later tasks get hues spread by the
 * golden angle, so that neighbours always differ. */
static struct rgb task_colour(int task)
{
  static const struct rgb first[] = {
      {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c},
      {0xd6, 0x27, 0x28}, {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b},
      {0xe3, 0x77, 0xc2}, {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf}};
  int nfirst = (int)(sizeof first / sizeof *first);
  if (task < nfirst)
    return first[task];
  /* HSV with S = 0.7, V = 0.8, hue = task * 137.5 degrees. */
  long long hue10 = ((long long)task * 1375) % 3600; /* tenths of degrees */
  int sector = (int)(hue10 / 600);
  int f = (int)(hue10 % 600); /* 0..599 within the sector */
  int v = 204, p = 61;        /* 0.8 * 255, 0.8 * 0.3 * 255 */
  int q = v - (v - p) * f / 600, t = p + (v - p) * f / 600;
  switch (sector) {
  case 0: return (struct rgb){v, t, p};
  case 1: return (struct rgb){q, v, p};
  case 2: return (struct rgb){p, v, t};
  case 3: return (struct rgb){p, q, v};
  case 4: return (struct rgb){t, p, v};
  default: return (struct rgb){v, p, q};
  }
}

/* The colour mixed with white: the cores around a task's PUs. */
static struct rgb tint(struct rgb c)
{
  return (struct rgb){c.r + (255 - c.r) * 3 / 5, c.g + (255 - c.g) * 3 / 5,
                      c.b + (255 - c.b) * 3 / 5};
}

static const struct rgb shared_strong = {0x40, 0x40, 0x40};
static const struct rgb shared_tint = {0xd0, 0xd0, 0xd0};

/* "Background=#rrggbb;Text=#rrggbb", with a text colour readable on it. */
static char *style(struct rgb c)
{
  int light = (299 * c.r + 587 * c.g + 114 * c.b) / 1000 > 150;
  char *s = NULL;
  if (asprintf(&s, "Background=#%02x%02x%02x;Text=#%s", c.r, c.g, c.b,
               light ? "000000" : "ffffff") < 0)
    return NULL;
  return s;
}

/* ---- Step 2: which tasks use which object ------------------------------ */

/* Each used object of the copy carries, as userdata, the bitmap of the
 * tasks using it (the copy is private: nobody else reads its userdata). */
static int mark(hwloc_obj_t obj, int task)
{
  if (!obj)
    return 0;
  if (!obj->userdata) {
    obj->userdata = hwloc_bitmap_alloc();
    if (!obj->userdata)
      return -1;
  }
  return hwloc_bitmap_set((hwloc_bitmap_t)obj->userdata, (unsigned)task);
}

/* A device's object (a GPU's or NIC's OS device, or its PCI device) in
 * the copy, by its global index (kept by hwloc_topology_dup, by
 * restriction and through XML). */
static hwloc_obj_t device_by_gp_index(hwloc_topology_t t, hwloc_obj_t dev)
{
  hwloc_obj_t o = NULL;
  if (dev->type == HWLOC_OBJ_PCI_DEVICE) {
    while ((o = hwloc_get_next_pcidev(t, o)) != NULL)
      if (o->gp_index == dev->gp_index)
        return o;
    return NULL;
  }
  while ((o = hwloc_get_next_osdev(t, o)) != NULL)
    if (o->gp_index == dev->gp_index)
      return o;
  return NULL;
}

/* A device's boxes: its PCI device and all the OS devices under it (one
 * physical GPU shows as several, e.g. nvml0 and cuda0; an HCA as mlx5_0
 * and ib0), or the OS device alone when it is not under a PCI device. */
static int mark_device(hwloc_obj_t dev, int task)
{
  hwloc_obj_t pci = dev->type == HWLOC_OBJ_PCI_DEVICE ? dev : dev->parent;
  if (!pci || pci->type != HWLOC_OBJ_PCI_DEVICE)
    return mark(dev, task);
  if (mark(pci, task))
    return -1;
  for (hwloc_obj_t c = pci->io_first_child; c; c = c->next_sibling)
    if (c->type == HWLOC_OBJ_OS_DEVICE && mark(c, task))
      return -1;
  return 0;
}

static int mark_task(mpibind_t *h, hwloc_topology_t copy, int task)
{
  unsigned i;
  int rc = 0;
  hwloc_bitmap_foreach_begin(i, h->out_cpus[task])
  {
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(copy, i);
    if (pu && (mark(pu, task) ||
               mark(hwloc_get_ancestor_obj_by_type(copy, HWLOC_OBJ_CORE, pu),
                    task)))
      rc = -1;
  }
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_foreach_begin(i, h->out_gpus[task])
  {
    hwloc_obj_t o = device_by_gp_index(copy, h->gpus.gpu[i].base_obj);
    if (o && mark_device(o, task))
      rc = -1;
  }
  hwloc_bitmap_foreach_end();
  hwloc_bitmap_foreach_begin(i, h->out_nics[task])
  {
    hwloc_obj_t o = device_by_gp_index(copy, h->nics.nic[i].obj);
    if (o && mark_device(o, task))
      rc = -1;
  }
  hwloc_bitmap_foreach_end();
  return rc;
}

/* Every object of the copy, I/O and Misc included, in one walk. */
static void walk(hwloc_obj_t o, void (*fn)(hwloc_obj_t, void *), void *arg)
{
  fn(o, arg);
  for (hwloc_obj_t c = o->first_child; c; c = c->next_sibling)
    walk(c, fn, arg);
  for (hwloc_obj_t c = o->memory_first_child; c; c = c->next_sibling)
    walk(c, fn, arg);
  for (hwloc_obj_t c = o->io_first_child; c; c = c->next_sibling)
    walk(c, fn, arg);
  for (hwloc_obj_t c = o->misc_first_child; c; c = c->next_sibling)
    walk(c, fn, arg);
}

static void unmark(hwloc_obj_t o, void *arg)
{
  (void)arg;
  hwloc_bitmap_free((hwloc_bitmap_t)o->userdata); /* NULL is fine */
  o->userdata = NULL;
}

/* ---- Step 3: colours, labels, legend ----------------------------------- */

struct paint {
  hwloc_topology_t copy;
  hwloc_obj_t *shared; /* objects of several tasks, labelled afterwards */
  int nshared, cap;
  int failed;
};

static int add_style(hwloc_obj_t o, struct rgb c)
{
  char *s = style(c);
  int rc = s ? hwloc_obj_add_info(o, "lstopoStyle", s) : -1;
  free(s);
  return rc;
}

/* Cores get a tint (their PUs carry the strong colour); PUs and GPU boxes
 * the strong colour. */
static void paint_one(hwloc_obj_t o, void *arg)
{
  struct paint *p = arg;
  hwloc_bitmap_t tasks = o->userdata;
  if (!tasks || o->type == HWLOC_OBJ_MISC)
    return;
  int several = hwloc_bitmap_weight(tasks) > 1;
  int is_core = o->type == HWLOC_OBJ_CORE;
  struct rgb c;
  if (several)
    c = is_core ? shared_tint : shared_strong;
  else
    c = task_colour(hwloc_bitmap_first(tasks));
  if (is_core && !several)
    c = tint(c);
  if (add_style(o, c))
    p->failed = 1;
  /* One label per GPU: on its PCI device, not again on each OS device. */
  int under_marked_pci = o->type == HWLOC_OBJ_OS_DEVICE && o->parent &&
                         o->parent->type == HWLOC_OBJ_PCI_DEVICE &&
                         o->parent->userdata;
  if (several && !is_core && !under_marked_pci) {
    if (p->nshared == p->cap) {
      int cap = p->cap ? 2 * p->cap : 16;
      hwloc_obj_t *n = realloc(p->shared, (size_t)cap * sizeof *n);
      if (!n) {
        p->failed = 1;
        return;
      }
      p->shared = n;
      p->cap = cap;
    }
    p->shared[p->nshared++] = o;
  }
}

/* A shared PU or GPU gets a Misc child "tasks 0,1": the reader sees who
 * shares it without a colour for each pair. */
static int label_shared(struct paint *p)
{
  for (int i = 0; i < p->nshared; i++) {
    hwloc_obj_t o = p->shared[i];
    char *list = NULL, *name = NULL;
    if (hwloc_bitmap_list_asprintf(&list, (hwloc_bitmap_t)o->userdata) < 0 ||
        asprintf(&name, "tasks %s", list) < 0)
      name = NULL;
    free(list);
    if (!name)
      return -1;
    hwloc_obj_t m = hwloc_topology_insert_misc_object(p->copy, o, name);
    free(name);
    if (!m)
      return -1;
  }
  return 0;
}

/* One coloured box per task beside the packages, like a map's key. */
static int swatches(hwloc_topology_t copy, int ntasks)
{
  hwloc_obj_t root = hwloc_get_root_obj(copy);
  for (int t = 0; t < ntasks; t++) {
    char name[32];
    snprintf(name, sizeof name, "task %d", t);
    hwloc_obj_t m = hwloc_topology_insert_misc_object(copy, root, name);
    if (!m || add_style(m, task_colour(t)))
      return -1;
  }
  return 0;
}

static int legend_line(hwloc_obj_t root, const char *line)
{
  return hwloc_obj_add_info(root, "lstopoLegend", line);
}

/* A header, then the report line of each task without its "mpibind: "
 * prefix. */
static int legend(mpibind_t *h, hwloc_topology_t copy)
{
  hwloc_obj_t root = hwloc_get_root_obj(copy);
  const char *host = hwloc_obj_get_info_by_name(root, "HostName");
  const char *file = h->topo_file ? strrchr(h->topo_file, '/') : NULL;
  file = file ? file + 1 : h->topo_file;
  char *head = NULL;
  if (asprintf(&head,
               "%s%s%s%s: %d task%s (PU and Core numbers: OS indexes; dark "
               "grey: shared, its box names the tasks)",
               host ? "host " : "", host ? host : "",
               host && file ? ", " : "", file ? file : "", h->ntasks,
               h->ntasks == 1 ? "" : "s") < 0)
    return -1;
  int rc = legend_line(root, head);
  free(head);
  for (int t = 0; rc == 0 && t < h->ntasks; t++) {
    int n = mpibind_mapping_ptask_snprint(NULL, 0, h, t);
    char *line = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!line)
      return -1;
    mpibind_mapping_ptask_snprint(line, n + 1, h, t);
    line[strcspn(line, "\n")] = '\0';
    const char *text = strncmp(line, "mpibind: ", 9) == 0 ? line + 9 : line;
    rc = legend_line(root, text);
    free(line);
  }
  return rc;
}


/* Step 1.  Not hwloc_topology_dup: the copy must take Misc objects, which
 * mpibind's filters (kept by a dup) refuse.  So the topology goes through
 * XML (which keeps every object and its gp_index) into a topology that
 * keeps everything the XML has, with the original's flags (disallowed
 * PUs, for one, stay drawn as such). */
static int copy_for_drawing(hwloc_topology_t base, hwloc_topology_t *out)
{
  char *buf = NULL;
  int len = 0;
  hwloc_topology_t copy = NULL;
  if (hwloc_topology_export_xmlbuffer(base, &buf, &len, 0) != 0)
    return -1;
  int rc = hwloc_topology_init(&copy);
  if (rc == 0)
    rc = hwloc_topology_set_all_types_filter(copy, HWLOC_TYPE_FILTER_KEEP_ALL);
  if (rc == 0)
    rc = hwloc_topology_set_flags(copy, hwloc_topology_get_flags(base));
  if (rc == 0)
    rc = hwloc_topology_set_xmlbuffer(copy, buf, len);
  if (rc == 0)
    rc = hwloc_topology_load(copy);
  int e = errno;
  hwloc_free_xmlbuffer(base, buf);
  if (rc != 0) {
    if (copy)
      hwloc_topology_destroy(copy);
    errno = e;
    return -1;
  }
  *out = copy;
  return 0;
}

/* Steps 1-3: the annotated copy, or NULL with a message on h. */
static hwloc_topology_t annotated_copy(mpibind_t *h)
{
  hwloc_topology_t base = mb_base_topology(h), copy = NULL;
  if (!base)
    return NULL;
  if (copy_for_drawing(base, &copy)) {
    mb_fail(h, "cannot copy the topology to draw it: %s", strerror(errno));
    return NULL;
  }
  hwloc_obj_t root = hwloc_get_root_obj(copy);

  struct paint p = {.copy = copy};
  for (int t = 0; t < h->ntasks && !p.failed; t++)
    if (mark_task(h, copy, t))
      p.failed = 1;
  if (!p.failed)
    walk(root, paint_one, &p);
  if (!p.failed && label_shared(&p))
    p.failed = 1;
  free(p.shared);
  walk(root, unmark, NULL);
  if (p.failed || swatches(copy, h->ntasks) || legend(h, copy)) {
    hwloc_topology_destroy(copy);
    mb_fail(h, "out of memory while drawing the mapping");
    return NULL;
  }
  return copy;
}

/* ---- Step 4: the file -------------------------------------------------- */

enum format { FMT_XML, FMT_SVG, FMT_PNG, FMT_PDF, FMT_UNKNOWN };

static enum format format_of(const char *path)
{
  static const char *const ext[] = {".xml", ".svg", ".png", ".pdf"};
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash ? slash : path, '.');
  for (int f = 0; dot && f < FMT_UNKNOWN; f++)
    if (strcasecmp(dot, ext[f]) == 0)
      return (enum format)f;
  return FMT_UNKNOWN;
}

/* A new empty file beside path ("<path>.XXXXXX"), closed; its name is
 * returned (caller frees), or NULL with a message naming path. */
static char *temp_beside(mpibind_t *h, const char *path)
{
  char *tmp = NULL;
  if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
    mb_fail(h, "out of memory");
    return NULL;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    mb_fail(h, "cannot write the picture '%s': %s", path, strerror(errno));
    free(tmp);
    return NULL;
  }
  /* mkstemp makes it private; a picture is for others to read too. */
  if (fchmod(fd, 0644) != 0) {
    /* harmless: the picture stays readable by its owner */
  }
  close(fd);
  return tmp;
}

/* The whole file in memory (NUL-terminated), or NULL. */
static char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    cap *= 2;
    char *b = realloc(buf, cap + 1);
    if (!b) {
      free(buf);
      buf = NULL;
    }
    buf = b;
  }
  int bad = ferror(f);
  fclose(f);
  if (!buf || bad) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* hwloc 2.9 writes viewBox='0 0 1514px 971px'; units are not allowed
 * there, and librsvg (and with it most converters) then draws nothing.
 * The units are removed from the viewBox value only. */
static int fix_svg_viewbox(mpibind_t *h, const char *tmp, const char *path)
{
  size_t len = 0;
  char *svg = slurp(tmp, &len);
  if (!svg)
    return mb_fail(h, "cannot read back the picture '%s': %s", path,
                   strerror(errno));
  char *vb = strstr(svg, "viewBox=");
  if (vb && (vb[8] == '\'' || vb[8] == '"')) {
    char quote = vb[8];
    char *p = vb + 9, *w = p;
    while (*p && *p != quote) {
      if (p[0] == 'p' && p[1] == 'x')
        p += 2;
      else
        *w++ = *p++;
    }
    memmove(w, p, strlen(p) + 1);
    len = strlen(svg);
  }
  FILE *f = fopen(tmp, "wb");
  int rc = 0;
  if (!f || fwrite(svg, 1, len, f) != len)
    rc = -1;
  if (f && fclose(f) != 0)
    rc = -1;
  free(svg);
  if (rc)
    return mb_fail(h, "cannot write the picture '%s': %s", path,
                   strerror(errno));
  return 0;
}

/* A renderer that does not end within this time is stuck (lstopo draws
 * the largest nodes here, 8192 PUs, in a few seconds): it is killed and
 * the drawing fails, instead of hanging the command, the preload's task
 * 0 or a Python program. */
#define RENDER_TIMEOUT_SECONDS 120

/* Runs argv (found in PATH) with stdout on /dev/null and stderr read
 * back, for at most RENDER_TIMEOUT_SECONDS, in this environment without
 * LD_PRELOAD: the renderer is the library's helper, not a task of the job
 * (a preload in it would map and bind it, and draw again).  Returns 0 when it exited
 * with 0; ENOENT (the program is not in PATH) or -1 otherwise, with its
 * first line of stderr, or how it ended, in *why (caller frees; may be
 * NULL). */
static int run_renderer(char *const argv[], char **why)
{
  static char *const no_preload[] = {"LD_PRELOAD", NULL};
  *why = NULL;
  struct mb_spawn s = {.argv = argv,
                       .env_drop = no_preload,
                       .search_path = 1,
                       .timeout_ms = RENDER_TIMEOUT_SECONDS * 1000L};
  int rc = mb_spawn_run(&s);
  int e = errno;
  if (rc != 0)
    return e == ENOENT ? ENOENT : -1;
  /* status -1: the caller reaps children itself (SIGCHLD ignored); the
   * file is then checked instead of the status. */
  if (!s.timed_out &&
      (s.status == -1 || (WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0))) {
    mb_spawn_free(&s);
    return 0;
  }
  if (!s.timed_out && s.err_line && *s.err_line) {
    *why = s.err_line;
    s.err_line = NULL;
  } else {
    *why = mb_spawn_how_ended(&s);
  }
  mb_spawn_free(&s);
  return -1;
}

/* Runs lstopo (or lstopo-no-graphics) on xml into out in the given
 * output format.  Options: OS indexes as in the report, every core drawn
 * (a factorized core could hide a task), no binding colour of the drawing
 * process, the legend of the XML only (no date: the same mapping gives
 * the same picture).  Returns as run_renderer(), and -1 also when the
 * renderer wrote nothing. */
static int lstopo(const char *prog, const char *format, const char *xml,
                  const char *out, char **why)
{
  char *argv[] = {(char *)prog, "-i", (char *)xml, "--if", "xml",
                  "--of", (char *)format, "-f", "-p", "--no-factorize",
                  "--binding-color", "none", "--no-default-legend",
                  (char *)out, NULL};
  int rc = run_renderer(argv, why);
  struct stat st;
  if (rc == 0 && (stat(out, &st) != 0 || st.st_size == 0)) {
    *why = strdup("it wrote nothing");
    rc = -1;
  }
  return rc;
}

/* hwloc's native SVG: lstopo-no-graphics (Debian hwloc-nox and hwloc),
 * else lstopo's "nativesvg" (it names every box with class and id
 * attributes, which cairo's SVG does not).  Returns 0, ENOENT when
 * neither is in PATH, -1 with a message on h otherwise. */
static int render_svg(mpibind_t *h, const char *xml, const char *out,
                      const char *path)
{
  static const char *const progs[][2] = {{"lstopo-no-graphics", "svg"},
                                         {"lstopo", "nativesvg"}};
  for (int i = 0; i < 2; i++) {
    char *why = NULL;
    int rc = lstopo(progs[i][0], progs[i][1], xml, out, &why);
    if (rc == ENOENT)
      continue;
    if (rc != 0) {
      mb_fail(h, "cannot draw '%s': %s failed: %s", path, progs[i][0],
              why ? why : "unknown error");
      free(why);
      return -1;
    }
    return fix_svg_viewbox(h, out, path);
  }
  return ENOENT;
}

/* $TMPDIR/mpibind-draw-XXXXXX<suffix>, created empty; caller unlinks and
 * frees. */
static char *temp_file(mpibind_t *h, const char *suffix)
{
  const char *dir = getenv("TMPDIR");
  char *tmp = NULL;
  if (asprintf(&tmp, "%s/mpibind-draw-XXXXXX%s", dir && *dir ? dir : "/tmp",
               suffix) < 0) {
    mb_fail(h, "out of memory");
    return NULL;
  }
  int fd = mkstemps(tmp, (int)strlen(suffix));
  if (fd < 0) {
    mb_fail(h, "cannot create a temporary file '%s': %s", tmp,
            strerror(errno));
    free(tmp);
    return NULL;
  }
  close(fd);
  return tmp;
}

/* PNG or PDF: lstopo's own (cairo) output where it has it (Debian hwloc);
 * else hwloc's native SVG converted by rsvg-convert (Debian hwloc-nox,
 * whose lstopo has no PNG or PDF, and librsvg2-bin). */
static int render_raster(mpibind_t *h, enum format fmt, const char *xml,
                         const char *out, const char *path)
{
  const char *name = fmt == FMT_PNG ? "png" : "pdf";
  char *why = NULL;
  int rc = lstopo("lstopo", name, xml, out, &why);
  if (rc == 0)
    return 0;

  char *svg = temp_file(h, ".svg");
  if (!svg) {
    free(why);
    return -1;
  }
  int src = render_svg(h, xml, svg, path);
  int conv = ENOENT;
  char *cwhy = NULL;
  if (src == 0) {
    char *argv[] = {"rsvg-convert", "-f", (char *)name, "-b", "white",
                    "-o", (char *)out, svg, NULL};
    conv = run_renderer(argv, &cwhy);
  }
  unlink(svg);
  free(svg);
  if (src == 0 && conv == 0) {
    free(why);
    return 0;
  }
  if (src == 0 && conv != ENOENT)
    mb_fail(h, "cannot draw '%s': rsvg-convert failed: %s", path,
            cwhy ? cwhy : "unknown error");
  else if (src != -1)
    mb_fail(h,
            "cannot draw '%s': no renderer for %s: lstopo %s, and "
            "lstopo-no-graphics with rsvg-convert are not both in PATH "
            "(expected hwloc's lstopo with cairo, Debian package hwloc, or "
            "Debian packages hwloc-nox and librsvg2-bin; or draw .svg or "
            ".xml)",
            path, fmt == FMT_PNG ? "PNG" : "PDF",
            rc == ENOENT ? "is not in PATH" : why ? why : "failed");
  free(why);
  free(cwhy);
  return -1;
}

static int render(mpibind_t *h, enum format fmt, const char *xml,
                  const char *out, const char *path)
{
  if (fmt != FMT_SVG)
    return render_raster(h, fmt, xml, out, path);
  int rc = render_svg(h, xml, out, path);
  if (rc == ENOENT)
    return mb_fail(h,
                   "cannot draw '%s': no renderer: neither lstopo-no-graphics "
                   "nor lstopo is in PATH (expected hwloc's lstopo, Debian "
                   "package hwloc-nox or hwloc)",
                   path);
  return rc;
}

static int export_xml(mpibind_t *h, hwloc_topology_t copy, const char *xml,
                      const char *path)
{
  if (hwloc_topology_export_xml(copy, xml, 0) != 0)
    return mb_fail(h, "cannot write the picture '%s': %s", path,
                   strerror(errno));
  return 0;
}

/* The target of the symbolic link `link` (malloc'ed), relative ones
 * taken from the link's directory; NULL with errno. */
static char *link_target(const char *link)
{
  for (size_t cap = 256;; cap *= 2) {
    char *buf = malloc(cap);
    if (!buf)
      return NULL;
    ssize_t n = readlink(link, buf, cap);
    if (n < 0) {
      free(buf);
      return NULL;
    }
    if ((size_t)n < cap) {
      buf[n] = '\0';
      const char *slash = strrchr(link, '/');
      char *out = buf;
      if (buf[0] != '/' && slash &&
          asprintf(&out, "%.*s/%s", (int)(slash - link), link, buf) < 0)
        out = NULL;
      if (out != buf)
        free(buf);
      return out;
    }
    free(buf);
  }
}

/* The file the picture of `path` is written to: path, or the file its
 * symbolic links lead to (a link itself is never replaced).  Caller
 * frees; NULL with a message naming path. */
static char *write_target(mpibind_t *h, const char *path)
{
  char *cur = strdup(path);
  for (int hops = 0; cur; hops++) {
    struct stat st;
    if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
      return cur; /* missing (then made) or not a link: written here */
    /* as many links as the kernel follows in a path (MAXSYMLINKS) */
    if (hops == 40) {
      free(cur);
      mb_fail(h, "cannot write the picture '%s': %s", path, strerror(ELOOP));
      return NULL;
    }
    char *next = link_target(cur);
    if (!next) {
      mb_fail(h, "cannot write the picture '%s': cannot read the link "
                 "'%s': %s", path, cur, strerror(errno));
      free(cur);
      return NULL;
    }
    free(cur);
    cur = next;
  }
  mb_fail(h, "out of memory");
  return NULL;
}

int mpibind_draw(mpibind_t *h, const char *path)
{
  if (!h)
    return -1;
  if (!path || !*path)
    return mb_fail(h, "picture file name '%s' is invalid: expected a file "
                      "name ending in .svg, .png, .pdf or .xml",
                   path ? path : "(null)");
  enum format fmt = format_of(path);
  if (fmt == FMT_UNKNOWN)
    return mb_fail(h, "picture file name '%s' has no known format: expected "
                      "a name ending in .svg, .png, .pdf or .xml",
                   path);
  if (!h->mapped)
    return mb_fail(h, "no mapping yet: call mpibind() first");

  char *target = write_target(h, path);
  if (!target)
    return -1;
  char *out = temp_beside(h, target);
  if (!out) {
    free(target);
    return -1;
  }
  hwloc_topology_t copy = annotated_copy(h);
  char *xml = NULL;
  int rc = -1;
  if (copy) {
    if (fmt == FMT_XML) {
      rc = export_xml(h, copy, out, path);
    } else if ((xml = temp_file(h, ".xml")) != NULL) {
      rc = export_xml(h, copy, xml, path);
      if (rc == 0)
        rc = render(h, fmt, xml, out, path);
      unlink(xml);
    }
    hwloc_topology_destroy(copy);
  }
  if (rc == 0 && rename(out, target) != 0)
    rc = mb_fail(h, "cannot write the picture '%s': %s", path,
                 strerror(errno));
  if (rc != 0)
    unlink(out);
  free(out);
  free(target);
  free(xml);
  return rc;
}
