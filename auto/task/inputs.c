/*
 * inputs.c - a node's mapping's inputs, as a task finds them (inputs.h).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"
#include "gpualloc.h"
#include "inputs.h"
#include "jobcpus.h"
#include "mb_gpuvar_table.h"
#include "strdupf.h"

int mpibind_auto_inputs_init(struct mpibind_auto_inputs *in,
                             const struct mpibind_auto_tuning *t, int ntasks,
                             const char *source, long launcher) {
  memset(in, 0, sizeof *in);
  in->t = t;
  in->ntasks = ntasks;
  in->source = source;
  in->launcher = launcher;
  in->gpu_alloc = calloc((size_t)mb_ngpuvars, sizeof *in->gpu_alloc);
  in->gpu_set = calloc((size_t)mb_ngpuvars, sizeof *in->gpu_set);
  if (in->gpu_alloc == NULL || in->gpu_set == NULL) {
    mpibind_auto_inputs_free(in);
    return -1;
  }
  return 0;
}

/* The job's CPUs as the key sees them: against the launcher's CPUs,
 * kept as a list in in->launch_cpus (no topology here; the helper
 * decides with the topology's). */
static char *job_cpus_key(struct mpibind_auto_inputs *in) {
  struct mpibind_auto_cpuset launch = MPIBIND_AUTO_CPUSET_INIT;
  struct mpibind_auto_cpuset cpus = MPIBIND_AUTO_CPUSET_INIT;
  char *key;
  int rc;
  free(in->launch_cpus);
  in->launch_cpus = NULL;
  rc = mpibind_auto_launch_cpus(in->source, in->launcher, &launch) == 0 &&
               (in->launch_cpus = mpibind_auto_cpuset_list(&launch)) != NULL
           ? mpibind_auto_job_cpus(in->source, in->launcher, &launch, &cpus,
                                   NULL)
           : -1;
  key = rc < 0   ? strdup("(unknown)")
        : rc > 0 ? mpibind_auto_cpuset_list(&cpus)
                 : strdup("(node)");
  mpibind_auto_cpuset_free(&launch);
  mpibind_auto_cpuset_free(&cpus);
  return key;
}

int mpibind_auto_inputs_of_task(struct mpibind_auto_inputs *in, int local) {
  if (mpibind_auto_gpu_detect(in->source, in->launcher, local, in->ntasks,
                              in->gpu_alloc, in->gpu_set) != 0)
    return -1;
  free(in->job_cpus);
  in->job_cpus = job_cpus_key(in);
  return in->job_cpus ? 0 : -1;
}

/* "<NAME>=<list|(all)|(unset)>\n" per GPU variable: the same in every task
 * of the node, per-task lists or not. */
static char *gpu_allocation_text(const struct mpibind_auto_inputs *in) {
  char *text = strdup("");
  for (int i = 0; text && i < mb_ngpuvars; i++) {
    const char *v = in->gpu_alloc[i] ? in->gpu_alloc[i]
                    : in->gpu_set[i] ? "(all)"
                                     : "(unset)";
    char *more = mpibind_auto_strdupf("%s%s=%s\n", text, mb_gpuvars[i].name, v);
    free(text);
    text = more;
  }
  return text;
}

/* The names the messages give the values are an input too: a failure
 * recorded for the node's later tasks is reused as it was written. */
char *mpibind_auto_inputs_key(const struct mpibind_auto_inputs *in) {
  const struct mpibind_auto_tuning *t = in->t;
  char *gpus = gpu_allocation_text(in);
  char *names = mpibind_auto_value_names_key();
  char *key = gpus && names ? mpibind_auto_strdupf(
      "smt=%d greedy=%d gpu_optim=%d nthreads=%d dryrun=%d nics=%d "
      "all_gpus=%d restrict_type=%d\nrestrict=%s\nlaunch_cpus=%s\n"
      "job_cpus=%s\n%s%sntasks=%d\n",
      t->smt, t->greedy, t->gpu_optim, t->nthreads, t->dryrun, t->nics,
      t->visible_devices == MPIBIND_AUTO_GPUS_ALL, t->restrict_type,
      t->restrict_ids ? t->restrict_ids : "(none)",
      in->launch_cpus ? in->launch_cpus : "(unknown)",
      in->job_cpus ? in->job_cpus : "(unknown)", gpus, names, in->ntasks)
                            : NULL;
  free(gpus);
  free(names);
  return key;
}

void mpibind_auto_inputs_free(struct mpibind_auto_inputs *in) {
  for (int i = 0; in->gpu_alloc && i < mb_ngpuvars; i++)
    free(in->gpu_alloc[i]);
  free(in->gpu_alloc);
  free(in->gpu_set);
  free(in->job_cpus);
  free(in->launch_cpus);
  in->gpu_alloc = NULL;
  in->gpu_set = NULL;
  in->job_cpus = NULL;
  in->launch_cpus = NULL;
}
