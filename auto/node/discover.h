/*
 * discover.h - hwloc's risky work: a live discovery with its I/O plugins,
 * a user's XML file (discover.c says why they are kept out of the tasks
 * and of slurmstepd).
 */
#ifndef MPIBIND_AUTO_DISCOVER_H
#define MPIBIND_AUTO_DISCOVER_H

#include <stddef.h>

/* Removes from the environment the HWLOC_* variables that make hwloc
 * describe something other than this machine (HWLOC_XMLFILE,
 * HWLOC_SYNTHETIC, HWLOC_FSROOT, ...; HWLOC_COMPONENTS unless it only
 * excludes components).  For the helper, before its discovery. */
void mpibind_auto_hwloc_env_scrub(void);

/* The live discovery of this machine with mpibind's filters, in this
 * process (the helper only): the variables above removed first.  0 with
 * *xml (hwloc's export, malloc'ed, NUL-terminated, *len bytes), or -1
 * with *error. */
int mpibind_auto_discover_here(char **xml, size_t *len, char **error);

/* The same in the helper `mpibind-discover` (a child of this process),
 * killed after MPIBIND_DISCOVERY_TIMEOUT seconds (default 10).  0 with
 * *xml, or -1 with *error (one line saying what happened to the
 * helper). */
int mpibind_auto_discover_xml(char **xml, size_t *len, char **error);

/* Parses the user's XML topology file `path` first in the helper (a
 * child process), since hwloc's parser crashes on some malformed files.
 * Returns 0 when the caller may parse it too (the helper loaded it, or
 * refused it with a message the library will give again); -1 with *error
 * (malloc'ed, one line naming `what` and the path) when it crashed or
 * hung hwloc, or the helper could not run. */
int mpibind_auto_check_xml_file(const char *path, const char *what,
                                char **error);

/* hwloc loads every plugin it finds (libxml2, OpenCL, GL with X11, PCI,
 * a site's CUDA/NVML/RSMI/LevelZero) when the process's first topology
 * is created: about 15 ms, and GPU runtimes pulled into the process, for
 * nothing when the topology comes from XML.  Between _begin and _end, a
 * topology created by this process starts without plugins (the user's
 * HWLOC_PLUGINS_PATH, saved in *saved, comes back at _end).  Plugins come
 * back once the process has no topology left. */
void mpibind_auto_plugins_off_begin(char **saved);
void mpibind_auto_plugins_off_end(char *saved);
/* From now on _begin and _end do nothing: for a host process whose other
 * threads may read the environment while it would be changed
 * (slurmstepd). */
void mpibind_auto_plugins_off_disable(void);

#endif
