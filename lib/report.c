/*
 * report.c - the one-line-per-task report every front end prints
 * (docs/algorithm.md step 6):  mpibind: task %2d nths %2d gpus %s cpus %s
 * and, on a node with NICs, "nics %s" before "cpus".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "gpus.h"
#include "gpuvars.h"
#include "handle.h"
#include "lifetime.h"
#include "report.h"

char *mb_task_gpu_ids(mpibind_t *h, int task, int kind, int vendor_slot)
{
  size_t len = 0;
  unsigned g;
  hwloc_bitmap_foreach_begin(g, h->out_gpus[task])
  {
    if (vendor_slot < 0 || mb_vendor_slot(h->gpus.gpu[g].vendor) == vendor_slot)
      len += strlen(mb_gpu_id(&h->gpus.gpu[g], kind)) + 1;
  }
  hwloc_bitmap_foreach_end();
  char *s = calloc(len + 1, 1);
  if (!s)
    return NULL;
  hwloc_bitmap_foreach_begin(g, h->out_gpus[task])
  {
    if (vendor_slot < 0 ||
        mb_vendor_slot(h->gpus.gpu[g].vendor) == vendor_slot) {
      if (*s)
        strcat(s, ",");
      strcat(s, mb_gpu_id(&h->gpus.gpu[g], kind));
    }
  }
  hwloc_bitmap_foreach_end();
  return s;
}

/* " nics A,B" on a node with NICs, "" otherwise. */
static char *task_nics(mpibind_t *h, int task)
{
  if (h->nics.n == 0)
    return strdup("");
  size_t len = 7;
  int x;
  hwloc_bitmap_foreach_begin(x, h->out_nics[task])
    len += strlen(h->nics.nic[x].name) + 1;
  hwloc_bitmap_foreach_end();
  char *s = malloc(len);
  if (!s)
    return NULL;
  strcpy(s, " nics ");
  int first = 1;
  hwloc_bitmap_foreach_begin(x, h->out_nics[task])
  {
    if (!first)
      strcat(s, ",");
    strcat(s, h->nics.nic[x].name);
    first = 0;
  }
  hwloc_bitmap_foreach_end();
  return s;
}

static char *task_line(mpibind_t *h, int task)
{
  char *gpus = mb_task_gpu_ids(h, task, h->gpu_id_kind, -1);
  char *nics = task_nics(h, task);
  char *cpus = NULL;
  char *line = NULL;
  if (gpus && nics &&
      hwloc_bitmap_list_asprintf(&cpus, h->out_cpus[task]) >= 0 &&
      asprintf(&line, "mpibind: task %2d nths %2d gpus %s%s cpus %s\n", task,
               h->out_nthreads[task], gpus, nics, cpus) < 0)
    line = NULL;
  free(gpus);
  free(nics);
  free(cpus);
  if (!line)
    mb_oom(h);
  return line;
}

/* Copies text into buf the way snprintf would, returning its length. */
static int put(char *buf, int size, const char *text)
{
  size_t len = strlen(text);
  if (buf && size > 0) {
    size_t n = len < (size_t)size - 1 ? len : (size_t)size - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
  }
  return len > (size_t)0x7fffffff ? -1 : (int)len;
}

static int check_args(mpibind_t *h, char *buf, int size)
{
  MB_NEED_HANDLE(h, -1);
  if (size < 0 || (size > 0 && !buf))
    return mb_fail(h, "report buffer of size %d is invalid: expected a "
                      "buffer and a size >= 0",
                   size);
  if (mb_check_mapped(h))
    return -1;
  /* The report names each task's GPUs by the chosen kind: a kind that
   * names two GPUs alike would say two tasks share a GPU they do not. */
  return mb_gpu_ids_check_unique(h, &h->gpus, h->gpu_id_kind);
}

int mpibind_mapping_ptask_snprint(char *buf, int size, mpibind_t *h, int task)
{
  if (check_args(h, buf, size) || mb_check_task(h, task))
    return -1;
  char *line = task_line(h, task);
  if (!line)
    return -1;
  int n = put(buf, size, line);
  free(line);
  return n;
}

/* The whole report, caller frees. */
static char *report(mpibind_t *h)
{
  size_t len = 0, cap = 256;
  char *all = malloc(cap);
  if (!all) {
    mb_oom(h);
    return NULL;
  }
  all[0] = '\0';
  for (int t = 0; t < h->ntasks; t++) {
    char *line = task_line(h, t);
    if (!line) {
      free(all);
      return NULL;
    }
    size_t l = strlen(line);
    if (len + l + 1 > cap) {
      while (len + l + 1 > cap)
        cap *= 2;
      char *n = realloc(all, cap);
      if (!n) {
        free(line);
        free(all);
        mb_oom(h);
        return NULL;
      }
      all = n;
    }
    memcpy(all + len, line, l + 1);
    len += l;
    free(line);
  }
  return all;
}

int mpibind_mapping_snprint(char *buf, int size, mpibind_t *h)
{
  if (check_args(h, buf, size))
    return -1;
  char *all = report(h);
  if (!all)
    return -1;
  int n = put(buf, size, all);
  free(all);
  return n;
}

int mpibind_mapping_print(mpibind_t *h)
{
  if (check_args(h, NULL, 0))
    return -1;
  char *all = report(h);
  if (!all)
    return -1;
  fputs(all, stdout);
  fflush(stdout);
  free(all);
  return 0;
}
