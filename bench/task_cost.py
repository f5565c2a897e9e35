#!/usr/bin/python3
"""task_cost.py - what the preload costs one task, as the node grows.

Run by hand (from the source root, after `meson compile -C build`):
  /usr/bin/python3 bench/task_cost.py --preload build/preload/libmpibind-preload.so
or with the other benchmarks:
  meson test -C build --benchmark --verbose task-cost
Options: --pus 256,512,1024,2048,4096,8192, --ntasks 64, --reps 60,
--first-reps 3.

Synthetic nodes of P PUs (hwloc's synthetic description
"pack:2 numa:4 l3:8 core:P/128 pu:2", exported as XML by
lstopo-no-graphics) are given to the preload with MPIBIND_TOPOFILE and
MPIBIND=dryrun (a foreign node: mapped and exported, not bound).  For
each size, /bin/true is started as task i of --ntasks (MPICH's
variables, so the preload applies at load) in interleaved series:

  without  no preload;
  warm     the preload, the node's mapping already computed by its first
           task (what every other task of a launch pays: read its own
           record of the node's mapping file);
  first    the preload with the node's mapping file removed first (what
           the node's first task pays: check the file in the helper,
           parse it, map the node, write the mapping; before the node
           mapping file existed, every task paid about this).

Reported per size: median CPU time (user + system, from wait4) of each
series, the added CPU of a warm task (warm - without), and its growth per
doubling of the node (target: flat, i.e. about 1.0, and at most 2 ms at
8192 PUs).  Figures only: nothing here fails on a missed target (it
prints MISS); a missing program or a failing run exits 1.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

TARGET_MS = 2.0


def die(msg):
    print("task_cost: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preload", required=True, help="libmpibind-preload.so")
    p.add_argument("--pus", default="256,512,1024,2048,4096,8192",
                   help="node sizes in PUs, multiples of 128")
    p.add_argument("--ntasks", type=int, default=64,
                   help="tasks on the node (default 64)")
    p.add_argument("--reps", type=int, default=60,
                   help="runs per series for without/warm (default 60)")
    p.add_argument("--first-reps", type=int, default=3,
                   help="runs of the node's first task per size (default 3)")
    a = p.parse_args()
    try:
        a.pus = [int(x) for x in a.pus.split(",")]
    except ValueError:
        p.error("--pus '%s': expected integers separated by commas" % a.pus)
    if not a.pus or any(n < 128 or n % 128 for n in a.pus):
        p.error("--pus: expected multiples of 128")
    if a.ntasks < 2 or a.reps < 1 or a.first_reps < 0:
        p.error("--ntasks >= 2, --reps >= 1, --first-reps >= 0 expected")
    if not os.path.isfile(a.preload):
        die("--preload '%s': no such file (build it first)" % a.preload)
    return a


def cpu_of(argv, env):
    """CPU seconds (user + system) of one run of argv, from wait4: the
    child's own usage, whatever else runs meanwhile."""
    pid = os.posix_spawn(argv[0], argv, env,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull,
                                        os.O_WRONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 2, os.devnull,
                                        os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        die("status %d: %s (env %s)" % (status, " ".join(argv),
                                         {k: v for k, v in env.items()
                                          if k.startswith("MPI")}))
    return usage.ru_utime + usage.ru_stime


def make_node(tmp, pus):
    path = os.path.join(tmp, "node-%d.xml" % pus)
    desc = "pack:2 numa:4 l3:8 core:%d pu:2" % (pus // 128)
    lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if lstopo is None:
        die("lstopo-no-graphics not found (Debian: hwloc-nox)")
    subprocess.run([lstopo, "--input", desc, "--of", "xml", path],
                   check=True, stdout=subprocess.DEVNULL)
    return path


def clear_maps(cache):
    for name in os.listdir(cache):
        if name.startswith("map-") or name.startswith(".map-"):
            os.unlink(os.path.join(cache, name))


def main():
    a = parse_args()
    prog = shutil.which("true") or "/bin/true"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MPIBIND", "OMPI_", "PMI", "MPI_LOCAL",
                                 "SLURM_", "FLUX_", "OMP_", "LD_PRELOAD"))}
    print("per-task cost of the preload: /bin/true as task i of %d on "
          "synthetic nodes (MPIBIND_TOPOFILE, dryrun), %d interleaved runs "
          "per series, medians of CPU time (user+system)" % (a.ntasks, a.reps))
    print("target: a warm task adds <= %.1f ms at 8192 PUs, flat with the "
          "node's size (growth per doubling about 1.0)" % TARGET_MS)
    print()
    fmt = "%6s %12s %12s %14s %10s %12s"
    print(fmt % ("PUs", "without(ms)", "warm(ms)", "added warm(ms)",
                 "growth", "first(ms)"))
    misses = 0
    prev = None
    with tempfile.TemporaryDirectory(prefix="mpibind-taskcost-") as tmp:
        cache = os.path.join(tmp, "cache")
        os.mkdir(cache, 0o700)
        for pus in a.pus:
            node = make_node(tmp, pus)
            penv = dict(base, LD_PRELOAD=os.path.abspath(a.preload),
                        MPIBIND="dryrun", MPIBIND_TOPOFILE=node,
                        MPIBIND_CACHE_DIR=cache,
                        MPI_LOCALNRANKS=str(a.ntasks))
            renv = dict(base, MPI_LOCALNRANKS=str(a.ntasks))
            first = []
            for _ in range(a.first_reps):
                clear_maps(cache)
                first.append(cpu_of([prog], dict(penv, MPI_LOCALRANKID="1")))
            # the node's first task (task 0 prints the dryrun report)
            cpu_of([prog], dict(penv, MPI_LOCALRANKID="1"))
            without, warm = [], []
            for i in range(a.reps):
                task = str(1 + i % (a.ntasks - 1))
                without.append(cpu_of([prog], dict(renv, MPI_LOCALRANKID=task)))
                warm.append(cpu_of([prog], dict(penv, MPI_LOCALRANKID=task)))
            w0 = statistics.median(without)
            w1 = statistics.median(warm)
            added = max(w1 - w0, 0.0)
            growth = "-" if prev is None or prev <= 0 else "%.2f" % (added / prev)
            prev = added
            if pus == 8192 and added * 1e3 > TARGET_MS:
                misses += 1
            print(fmt % (pus, "%.2f" % (w0 * 1e3), "%.2f" % (w1 * 1e3),
                         "%.2f" % (added * 1e3), growth,
                         "%.1f" % (statistics.median(first) * 1e3)
                         if first else "-"))
            sys.stdout.flush()
            clear_maps(cache)
    print()
    print("growth = added warm cost / the previous size's (1.00: flat); "
          "first = the node's first task, which maps the whole node once")
    print("%s: %d target%s missed (reported, not failed: this is a benchmark)"
          % ("MISS" if misses else "PASS", misses, "" if misses == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
