#!/usr/bin/python3
"""launch_cost.py - what LD_PRELOAD=libmpibind-preload.so adds to a launch.

Run by hand (from the source root, after `meson setup build-bench` and
`meson compile -C build-bench`):
  /usr/bin/python3 bench/launch_cost.py \
      --ompi-prog build-bench/bench/mpi_initfin_ompi \
      --mpich-prog build-bench/bench/mpi_initfin_mpich \
      --preload build-bench/preload/libmpibind-preload.so
or with the other benchmarks:
  meson test -C build-bench --benchmark --verbose launch-cost
Options: --reps K (default 15), --ranks 2,8,32,64, --launchers ompi,mpich,
--task-reps R (default 200, 0 skips part 3), --user-cache, --timeout S
(per launch, default 120).

What is measured, per launcher and rank count N:
  1. a cold launch: the preload's cache (topology and node mappings) is
     emptied first, then one launch with the preload; its trace says how
     many tasks discovered the hardware (target: exactly 1 per node: the
     discovery runs in the helper started by that task);
  2. K pairs of launches of the same tiny MPI program (MPI_Init then
     MPI_Finalize), with the preload and without, interleaved (with,
     without, with, without, ...) so that slow drifts of this noisy VM hit
     both series alike; each launch is timed from the launcher's start to
     its exit (wall clock, monotonic).  The preload is given to the ranks
     only (mpirun -x LD_PRELOAD=..., mpiexec -genv LD_PRELOAD ...), and
     Open MPI's own binding is off (--bind-to none) in both series.  Reported: the median of each series,
     the ratio of medians with/without (target: <= 1.02, i.e. the preload
     adds at most 2% to a launch), the spread of the baseline (median
     absolute deviation / median: a ratio closer to 1 than this is within
     the noise), and the discoveries per node seen in the warm launches
     (target: none);
  3. the preload's own cost in one task, which the launch noise of this
     VM cannot blur: /bin/true started R times as task 1/2 of an Open MPI
     launch (the preload applies at load), without the preload, with it
     and a warm cache, and with it after emptying the cache (a discovery),
     interleaved; medians of wall and CPU time, and from them the most a
     warm launch of N ranks can gain (N x added CPU / launch time).

Discoveries are counted from the preload's trace: with MPIBIND_TRACE=<file>
every process that applies appends one line
  host=<h> pid=<p> task=<i>/<n> topology=<discovered|cache|file> bound=<0|1>
  cpus=<list>
A fresh trace file is used for each launch.

This is a benchmark: a missed target prints MISS and the exit status stays
0.  A launch that fails or times out, or a missing program, exits 1.
"""

import argparse
import collections
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_RATIO = 1.02
TARGET_COLD_DISCOVERIES = 1  # exactly, per node
TARGET_WARM_DISCOVERIES = 0

LAUNCHERS = {
    # name: (launcher command prefix before the rank count, program option).
    # Open MPI's own binding is off (--bind-to none), so that the ratio
    # measures mpibind's binding, not the sum of both.
    "ompi": (["mpirun.openmpi", "--allow-run-as-root", "--oversubscribe",
              "--bind-to", "none", "-np"], "ompi_prog"),
    "mpich": (["mpiexec.mpich", "-n"], "mpich_prog"),
}


def ranks_only(cmd, preload):
    """cmd with the preload given to the ranks only (Open MPI's -x, MPICH's
    -genv), not to the launcher and its daemons: what a user's job script
    does, and what the ratio is about."""
    prog = cmd[-1]
    if cmd[0].startswith("mpirun"):
        return cmd[:-1] + ["-x", "LD_PRELOAD=" + preload, prog]
    return cmd[:-1] + ["-genv", "LD_PRELOAD", preload, prog]


def die(msg):
    print("launch_cost: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ompi-prog", help="the MPI program built with Open MPI")
    p.add_argument("--mpich-prog", help="the MPI program built with MPICH")
    p.add_argument("--preload", help="libmpibind-preload.so (omitted: "
                   "only the baseline is measured)")
    p.add_argument("--reps", type=int, default=15,
                   help="pairs of launches per rank count (default 15)")
    p.add_argument("--ranks", default="2,8,32,64",
                   help="comma-separated rank counts (default 2,8,32,64; "
                   "oversubscribed)")
    p.add_argument("--launchers", default="ompi,mpich",
                   help="comma-separated, among: " + ",".join(LAUNCHERS))
    p.add_argument("--user-cache", action="store_true",
                   help="use the preload's default cache directory (emptied "
                   "before each cold launch) instead of a private one "
                   "given with MPIBIND_CACHE_DIR")
    p.add_argument("--task-reps", type=int, default=200,
                   help="runs per series of the per-task cost (default 200; "
                   "0 skips it)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds allowed per launch (default 120)")
    a = p.parse_args()
    if a.reps < 1:
        p.error("--reps %d: expected an integer >= 1" % a.reps)
    try:
        a.ranks = [int(x) for x in a.ranks.split(",")]
    except ValueError:
        p.error("--ranks '%s': expected integers separated by commas"
                % a.ranks)
    if not a.ranks or any(n < 1 for n in a.ranks):
        p.error("--ranks: expected rank counts >= 1")
    a.launchers = [x for x in a.launchers.split(",") if x]
    for x in a.launchers:
        if x not in LAUNCHERS:
            p.error("--launchers '%s': expected names among %s"
                    % (x, ",".join(LAUNCHERS)))
    if a.task_reps < 0:
        p.error("--task-reps %d: expected an integer >= 0" % a.task_reps)
    if a.timeout <= 0:
        p.error("--timeout %g: expected seconds > 0" % a.timeout)
    return a


def base_env():
    """The caller's environment without any mpibind setting, so that what
    runs is the preload's default behaviour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MPIBIND") and k != "LD_PRELOAD"}
    # Open MPI as root, in case the command line option is not enough for
    # some component.
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return env


class Runner:
    def __init__(self, args, tmpdir):
        self.args = args
        self.tmpdir = tmpdir
        self.nlaunch = 0
        # A private cache by default: other jobs of this user (a test suite
        # running meanwhile) neither fill it before a cold launch nor
        # lose theirs when it is emptied.
        self.cache_dir = (default_cache_dir() if args.user_cache
                          else os.path.join(tmpdir, "cache"))

    def launch(self, cmd, env):
        """Runs one launch; returns its wall time in seconds and records
        the CPU time (user + system) of the launcher and all the processes
        it waited for in self.last_cpu."""
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               timeout=self.args.timeout)
        except subprocess.TimeoutExpired:
            die("timed out after %gs: %s" % (self.args.timeout,
                                               " ".join(cmd)))
        t1 = time.monotonic()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.last_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime -
                                                        r0.ru_stime)
        if r.returncode != 0:
            out = r.stdout.decode(errors="replace").strip()
            die("exit status %d: %s%s" % (r.returncode, " ".join(cmd),
                                          ("\n" + out) if out else ""))
        return t1 - t0

    def launch_preloaded(self, cmd, env):
        """Runs one launch with the preload and a fresh trace file; returns
        (seconds, trace lines as dicts)."""
        self.nlaunch += 1
        trace = os.path.join(self.tmpdir, "trace.%d" % self.nlaunch)
        e = dict(env)
        cmd = ranks_only(cmd, os.path.abspath(self.args.preload))
        e["MPIBIND_TRACE"] = trace
        if self.cache_dir != default_cache_dir():
            e["MPIBIND_CACHE_DIR"] = self.cache_dir
        t = self.launch(cmd, e)
        lines = []
        if os.path.exists(trace):
            with open(trace) as f:
                for line in f:
                    fields = dict(kv.split("=", 1) for kv in line.split()
                                  if "=" in kv)
                    if fields:
                        lines.append(fields)
            os.unlink(trace)
        return t, lines


def discoveries_per_node(lines):
    """The largest number of tasks of one node (host) that discovered the
    hardware, and the number of traced tasks."""
    per_host = collections.Counter(l.get("host", "?") for l in lines
                                   if l.get("topology") == "discovered")
    return (max(per_host.values()) if per_host else 0), len(lines)


ROW_FMT = "%-5s %5s %11s %11s %6s %6s %-4s %9s %9s %9s %6s %5s %-4s"


def measure_launch(run, args, env, cmd):
    """One figure: the cold launch, then args.reps interleaved pairs.
    Returns {"cells": the row's cells after MPI and ranks, "misses": n}."""
    # One untimed launch to warm the page cache for this command.
    run.launch(cmd, env)
    with_t, without_t, with_c, without_c = [], [], [], []
    cold = None
    warm_disc, warm_traced, warm_bound = [], [], []
    if args.preload:
        clear_cache(run.cache_dir)
        _, lines = run.launch_preloaded(cmd, env)
        if lines:
            cold, _ = discoveries_per_node(lines)
    def without():
        without_t.append(run.launch(cmd, env))
        without_c.append(run.last_cpu)
    for rep in range(args.reps):
        # who goes first alternates: a launch costs less after a small
        # process than after a large one, whatever its own cost
        if rep % 2:
            without()
        if args.preload:
            t, lines = run.launch_preloaded(cmd, env)
            with_t.append(t)
            with_c.append(run.last_cpu)
            d, ntr = discoveries_per_node(lines)
            warm_disc.append(d)
            warm_traced.append(ntr)
            warm_bound.append(sum(1 for l in lines if l.get("bound") == "1"))
        if rep % 2 == 0:
            without()
    base = statistics.median(without_t)
    noise = "%.1f%%" % (100 * mad_rel(without_t))
    if not args.preload:
        return {"base": base,
                "cells": ("%.1f" % (base * 1e3), "-", "-", noise, "-", "-",
                          "-", "-", "-", "-", "-"), "misses": 0}
    misses = 0
    med = statistics.median(with_t)
    ratio = med / base
    rok = ratio <= TARGET_RATIO
    misses += not rok
    cbase = statistics.median(without_c)
    cpu_ratio = "%.3f" % (statistics.median(with_c) / cbase) if cbase else "-"
    if max(warm_traced) == 0:
        warm_s, dverdict = "no trace", "?"
    else:
        warm = max(warm_disc)
        warm_s = str(warm)
        dok = warm == TARGET_WARM_DISCOVERIES and \
            (cold is None or cold == TARGET_COLD_DISCOVERIES)
        misses += not dok
        dverdict = "PASS" if dok else "MISS"
    return {"base": base,
            "cells": ("%.1f" % (base * 1e3), "%.1f" % (med * 1e3),
                      "%.3f" % ratio, noise, "PASS" if rok else "MISS",
                      cpu_ratio, "no trace" if cold is None else str(cold),
                      warm_s, str(min(warm_traced)), str(min(warm_bound)),
                      dverdict),
            "misses": misses}


def measure_task(run, args, env):
    """The preload's own cost in one task, free of MPI's start-up noise:
    /bin/true run as task 1 of 2 of an Open MPI launch (the launcher's
    variables make the preload apply when it is loaded, as in a real
    rank), without the preload, with it and a warm cache, and with it after
    emptying the cache (a full discovery), interleaved.  Returns
    {series: (median wall s, median CPU s)}."""
    prog = shutil.which("true") or "/bin/true"
    renv = dict(env)
    renv["OMPI_COMM_WORLD_LOCAL_RANK"] = "1"
    renv["OMPI_COMM_WORLD_LOCAL_SIZE"] = "2"
    penv = dict(renv)
    penv["LD_PRELOAD"] = os.path.abspath(args.preload)
    penv["MPIBIND_CACHE_DIR"] = run.cache_dir
    series = {"without": ([], []), "warm": ([], []), "cold": ([], [])}
    # One run of each first: page cache, and a cache file for "warm".
    run.launch([prog], renv)
    run.launch([prog], penv)
    order = [("without", renv), ("warm", penv), ("cold", penv)]
    shuffle = random.Random(15)
    for rep in range(args.task_reps):
        # each round in an order of its own (task_cost.py's medians)
        shuffle.shuffle(order)
        for name, e in order:
            if name == "cold":
                clear_cache(run.cache_dir)
            t = run.launch([prog], e)
            series[name][0].append(t)
            series[name][1].append(run.last_cpu)
    # leave a warm cache behind, as the launches found it
    run.launch([prog], penv)
    return {k: (statistics.median(v[0]), statistics.median(v[1]))
            for k, v in series.items()}


def default_cache_dir():
    """The preload's default cache directory (auto/topocache.c):
    $XDG_RUNTIME_DIR/mpibind when XDG_RUNTIME_DIR is an absolute path (and
    the directory is usable), else /tmp/mpibind-<euid>."""
    x = os.environ.get("XDG_RUNTIME_DIR", "")
    if x.startswith("/") and os.path.isdir(x):
        return os.path.join(x, "mpibind")
    return "/tmp/mpibind-%d" % os.geteuid()


def clear_cache(cache_dir):
    """Empties the preload's cache (topo-* topologies, map-* node mappings,
    their locks and writers' temporary files), leaving the directory
    itself alone."""
    if not os.path.isdir(cache_dir) or os.path.islink(cache_dir):
        return
    for name in os.listdir(cache_dir):
        if name.lstrip(".").startswith(("topo-", "map-")):
            p = os.path.join(cache_dir, name)
            if os.path.isfile(p) or os.path.islink(p):
                os.unlink(p)


def mad_rel(xs):
    """Median absolute deviation relative to the median."""
    m = statistics.median(xs)
    return statistics.median(abs(x - m) for x in xs) / m if m else 0.0


def main():
    args = parse_args()
    if args.preload and not os.path.isfile(args.preload):
        die("--preload '%s': no such file (build it first)" % args.preload)
    todo = []
    for name in args.launchers:
        prefix, progopt = LAUNCHERS[name]
        prog = getattr(args, progopt)
        if not prog:
            print("launch_cost: %s skipped: no --%s given"
                  % (name, progopt.replace("_", "-")))
            continue
        if not os.path.isfile(prog):
            die("--%s '%s': no such file (build it first)"
                % (progopt.replace("_", "-"), prog))
        if shutil.which(prefix[0]) is None:
            print("launch_cost: %s skipped: %s is not installed"
                  % (name, prefix[0]))
            continue
        todo.append((name, prefix, os.path.abspath(prog)))
    if not todo:
        die("nothing to launch (give --ompi-prog and/or --mpich-prog)")

    print("launch cost: %d interleaved pairs per figure, wall time from "
          "launcher start to exit, on %s (%d CPUs)"
          % (args.reps, os.uname().nodename, os.cpu_count() or 0))
    print("preload: %s" % (os.path.abspath(args.preload) if args.preload
                           else "NOT GIVEN (baseline only)"))
    print("targets: with/without ratio of medians <= %.2f (+%d%%); "
          "exactly %d discovery per node on a cold cache, %d warm"
          % (TARGET_RATIO, round((TARGET_RATIO - 1) * 100),
             TARGET_COLD_DISCOVERIES, TARGET_WARM_DISCOVERIES))
    print()
    hdr = ROW_FMT % ("MPI", "ranks", "without(ms)", "with(ms)", "ratio",
                     "noise", "<=2%", "cpu ratio", "cold:disc", "warm:disc",
                     "traced", "bound", "1/0")

    env = base_env()
    misses = 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="mpibind-bench-") as tmpdir:
        run = Runner(args, tmpdir)
        if args.preload:
            print("topology cache: %s (MPIBIND_CACHE_DIR unless "
                  "--user-cache)" % run.cache_dir)
            print()
        print(hdr)
        for name, prefix, prog in todo:
            for n in args.ranks:
                row = measure_launch(run, args, env, prefix + [str(n), prog])
                misses += row["misses"]
                rows.append((name, n, row["base"]))
                print(ROW_FMT % ((name, n) + row["cells"]))
                sys.stdout.flush()
        task = None
        if args.preload and args.task_reps > 0:
            task = measure_task(run, args, env)
    print()
    print("columns: ratio = median(with)/median(without) of the wall times; "
          "noise = median absolute deviation of the baseline / its median "
          "(a ratio within 1 +- noise is not distinguishable from 1 here); "
          "cpu ratio = the same ratio for the CPU time (user+system) of the "
          "launcher and all its processes; cold:disc and warm:disc = most "
          "tasks of one node that did a full hardware discovery (cold: after "
          "emptying the cache; warm: max over the %d preloaded launches); "
          "traced and bound = fewest tasks per launch that wrote a trace "
          "line, and that reported bound=1" % args.reps)
    if task:
        b = task["without"]
        print()
        print("per task (%d interleaved runs of /bin/true as task 1/2 of an "
              "Open MPI launch; medians):" % args.task_reps)
        print("%-22s %10s %10s %12s" % ("", "wall(ms)", "cpu(ms)",
                                         "added cpu(ms)"))
        for k, label in (("without", "without preload"),
                         ("warm", "preload, cache warm"),
                         ("cold", "preload, discovery")):
            w, c = task[k]
            print("%-22s %10.2f %10.2f %12s"
                  % (label, w * 1e3, c * 1e3,
                     "-" if k == "without" else "%.2f" % ((c - b[1]) * 1e3)))
        # A bound that the launch noise cannot blur: if every task's added
        # CPU time were on the launch's critical path, one after the other.
        warm_add = max(task["warm"][1] - b[1], 0.0)
        print("the preload's own work in a warm launch of N ranks is N x "
              "%.2f ms of CPU, at most this share of the launch (effects on "
              "the MPI library itself are only in the ratios above):"
              % (warm_add * 1e3))
        print("  " + "  ".join("%s/%d: %.2f%%" % (name, n,
                                                100 * n * warm_add / base)
                               for name, n, base in rows))
    if args.preload:
        print("%s: %d target%s missed (reported, not failed: this is a "
              "benchmark)" % ("MISS" if misses else "PASS", misses,
                              "" if misses == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
