/*
 * mpibind-discover - the child in which mpibind runs hwloc's risky work
 * (discover.c starts it; installed in <libexecdir>/mpibind/, not for
 * users).
 *
 *   mpibind-discover
 *       Discovers this machine with mpibind's step-0 filters (I/O
 *       included) and writes hwloc's XML export on stdout; exit 0.  The
 *       HWLOC_* variables that would make hwloc describe something else
 *       (HWLOC_XMLFILE, HWLOC_SYNTHETIC, ...) are ignored.
 *   mpibind-discover --check FILE
 *       Loads FILE as mpibind_set_topology_file() does and prints "ok"
 *       on stdout (exit 0), or the library's one-line message (exit 1).
 *       A crash or hang of hwloc's parser shows as a signal to the parent.
 *
 * Failures: one line on stderr, exit 1; usage: exit 2.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpibind_auto_internal.h"

static int discover(void) {
  mpibind_t *h = NULL;
  hwloc_topology_t t = NULL;
  char *xml = NULL;
  int len = 0, rc = 1;
  mpibind_auto_hwloc_env_scrub();
  if (mpibind_init(&h) != 0 || mpibind_topology_load(h) != 0) {
    fprintf(stderr, "%s\n", mpibind_get_error(h));
    goto out;
  }
  t = mpibind_get_topology(h);
  if (hwloc_topology_export_xmlbuffer(t, &xml, &len, 0) != 0) {
    fprintf(stderr, "cannot export the topology as XML\n");
    goto out;
  }
  size_t n = strlen(xml);
  if (fwrite(xml, 1, n, stdout) != n || fflush(stdout) != 0) {
    fprintf(stderr, "cannot write the topology's XML\n");
    goto out;
  }
  rc = 0;
out:
  if (xml)
    hwloc_free_xmlbuffer(t, xml);
  mpibind_finalize(h);
  return rc;
}

static int check(const char *path) {
  mpibind_t *h = NULL;
  int rc = 1;
  if (mpibind_init(&h) != 0) {
    fprintf(stderr, "%s\n", mpibind_get_error(h));
    return 1;
  }
  if (mpibind_set_topology_file(h, path) != 0) {
    printf("%s\n", mpibind_get_error(h));
  } else {
    /* Also map one task on it: what the caller does next must not crash
     * either (a topology hwloc accepts is not always one the mapping can
     * use; failing is fine, crashing is not). */
    if (mpibind_set_ntasks(h, 1) == 0)
      (void)mpibind(h);
    printf("ok\n");
    rc = 0;
  }
  fflush(stdout);
  mpibind_finalize(h);
  return rc;
}

/* Started by a process that runs as the user only in its effective ids
 * (the Slurm plugin in slurmstepd, which keeps root as its real uid), the
 * helper would parse the user's XML with root as its real uid and every
 * capability permitted.  It becomes the effective user entirely before
 * anything else (allowed without privilege: the new ids are current
 * ones).  0, or -1 when the ids cannot be dropped. */
static int drop_to_effective_ids(void) {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (getresuid(&ruid, &euid, &suid) != 0 ||
      getresgid(&rgid, &egid, &sgid) != 0)
    return -1;
  if (rgid != egid || sgid != egid)
    if (setresgid(egid, egid, egid) != 0)
      return -1;
  if (ruid != euid || suid != euid)
    if (setresuid(euid, euid, euid) != 0)
      return -1;
  return 0;
}

int main(int argc, char **argv) {
  if (drop_to_effective_ids() != 0) {
    fprintf(stderr, "cannot run as the effective user only\n");
    return 1;
  }
  if (argc == 1)
    return discover();
  if (argc == 3 && strcmp(argv[1], "--check") == 0)
    return check(argv[2]);
  fprintf(stderr, "usage: mpibind-discover [--check FILE] (mpibind's "
                  "helper, not meant to be run by hand)\n");
  return 2;
}
