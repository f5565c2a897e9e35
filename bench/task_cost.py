#!/usr/bin/python3
"""task_cost.py - what the preload costs one process, as the node grows.

Run by hand (from the source root, after `meson compile -C build`):
  /usr/bin/python3 bench/task_cost.py \\
      --preload build/preload/libmpibind-preload.so \\
      --noop build/bench/libnoop-preload.so \\
      [--baseline-preload OTHER/libmpibind-preload.so]
or with the other benchmarks:
  meson test -C build --benchmark --verbose task-cost
Options: --pus 256,512,1024,2048,4096,8192, --ntasks 64, --reps 200 (left
alone), --warm-reps 100, --first-reps 5.

Every figure is the median CPU time (user + system, from wait4: the
process and the children it waited for, the helper included) of /bin/true
started under a preload, minus the median of the same runs under a no-op
preload (a library whose constructor does nothing: what the loader
charges for any preload), the series interleaved so that drifts of this
noisy machine hit them alike, each round in its own (seeded) random order
so that no series mostly runs right after the no-op's small process,
which makes the next one cheaper.  --baseline-preload adds the same series for
another build of the preload (e.g. the previous commit's), in the same
run, for a before/after comparison on one machine.

  left alone  a process that is no rank (no launcher variables), and a
              rank with MPIBIND=off (target: at most +0.02 ms each);
  warm        a rank whose node is mapped already (its first task wrote
              the node mapping file): synthetic nodes of P PUs (hwloc's
              "pack:2 numa:4 l3:8 core:P/128 pu:2", MPIBIND_TOPOFILE,
              MPIBIND=dryrun, task i of --ntasks), target at most +0.10 ms
              and flat from 256 to 8192 PUs;
  first       the node's first rank on a cold node (its mapping file
              removed first): the helper parses the file and maps the
              node; target at most +100 ms at 8192 PUs, and no slower than
              the baseline beyond the spread (median absolute deviation)
              of the baseline's own --first-reps runs.

Figures only: a missed target prints MISS (the exit status stays 0); a
missing program or a failing run exits 1.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

# the series' order per round is random, and the same in every run
RANDOM_SEED = 15
TARGET_ALONE_MS = 0.02
TARGET_WARM_MS = 0.10
TARGET_FIRST_MS = 100.0
TRUE = shutil.which("true") or "/bin/true"


def die(msg):
    print("task_cost: " + msg, file=sys.stderr)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preload", required=True, help="libmpibind-preload.so")
    p.add_argument("--noop", required=True,
                   help="a preload whose constructor does nothing (the floor)")
    p.add_argument("--baseline-preload",
                   help="another build of libmpibind-preload.so, measured "
                   "alike in the same run")
    p.add_argument("--pus", default="256,512,1024,2048,4096,8192",
                   help="node sizes in PUs, multiples of 128")
    p.add_argument("--ntasks", type=int, default=64,
                   help="tasks on the node (default 64)")
    p.add_argument("--reps", type=int, default=200,
                   help="runs per series of the processes left alone "
                   "(default 200)")
    p.add_argument("--warm-reps", type=int, default=100,
                   help="runs per series of warm ranks per size (default 100)")
    p.add_argument("--first-reps", type=int, default=5,
                   help="runs of the node's first rank per size (default 5)")
    a = p.parse_args()
    try:
        a.pus = [int(x) for x in a.pus.split(",")]
    except ValueError:
        p.error("--pus '%s': expected integers separated by commas" % a.pus)
    if not a.pus or any(n < 128 or n % 128 for n in a.pus):
        p.error("--pus: expected multiples of 128")
    if a.ntasks < 2 or a.reps < 1 or a.warm_reps < 1 or a.first_reps < 1:
        p.error("--ntasks >= 2, --reps, --warm-reps, --first-reps >= 1 "
                "expected")
    for opt in ("preload", "noop", "baseline_preload"):
        path = getattr(a, opt)
        if path is not None:
            if not os.path.isfile(path):
                die("--%s '%s': no such file (build it first)"
                    % (opt.replace("_", "-"), path))
            setattr(a, opt, os.path.abspath(path))
    return a


def cpu_of(env):
    """CPU seconds (user + system) of one run of /bin/true, from wait4:
    the child's own usage and its waited-for children's, whatever else
    runs meanwhile."""
    pid = os.posix_spawn(TRUE, [TRUE], env,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull,
                                        os.O_WRONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 2, os.devnull,
                                        os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        die("status %d: %s (env %s)" % (status, TRUE,
                                         {k: v for k, v in env.items()
                                          if k.startswith(("MPI", "LD_"))}))
    return usage.ru_utime + usage.ru_stime


def medians(series, reps, before=None, spread=None):
    """Runs the series {name: env (or a function of the run's index giving
    one)} interleaved, reps times; returns {name: median CPU seconds}.
    before(name) runs first for each run (e.g. emptying a cache); spread,
    a dict, receives each series' median absolute deviation."""
    times = {name: [] for name in series}
    names = list(series)
    order = random.Random(RANDOM_SEED)
    for i in range(reps):
        # each round in an order of its own: a process costs less right
        # after a small one (the no-op's) than after a large one, and any
        # fixed order (rotations too, with three series or more) would
        # hand that to the series that mostly follows the no-op
        order.shuffle(names)
        for name in names:
            env = series[name]
            if before:
                before(name)
            times[name].append(cpu_of(env(i) if callable(env) else env))
    med = {name: statistics.median(t) for name, t in times.items()}
    if spread is not None:
        for name, t in times.items():
            spread[name] = statistics.median(abs(x - med[name]) for x in t)
    return med


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
        if name.lstrip(".").startswith("map-"):
            os.unlink(os.path.join(cache, name))


def ms(x):
    return "%.3f" % (x * 1e3)


class Bench:
    def __init__(self, a, tmp):
        self.a = a
        self.tmp = tmp
        self.base = {k: v for k, v in os.environ.items()
                     if not k.startswith(("MPIBIND", "OMPI_", "PMI", "MPI_LOCAL",
                                          "SLURM_", "FLUX_", "OMP_",
                                          "LD_PRELOAD"))}
        # the preloads measured: ours, and the baseline's when given
        self.preloads = [("now", a.preload)]
        if a.baseline_preload:
            self.preloads.append(("before", a.baseline_preload))
        self.misses = 0

    def env(self, preload, **extra):
        return dict(self.base, LD_PRELOAD=preload, **extra)

    def verdict(self, ok):
        self.misses += not ok
        return "PASS" if ok else "MISS"

    def left_alone(self):
        a = self.a
        rank_off = {"MPI_LOCALRANKID": "1", "MPI_LOCALNRANKS": "2",
                    "MPIBIND": "off"}
        series = {"no preload": dict(self.base), "no-op": self.env(a.noop)}
        for tag, path in self.preloads:
            series["not a rank, " + tag] = self.env(path)
            series["MPIBIND=off, " + tag] = self.env(path, **rank_off)
        med = medians(series, a.reps)
        floor = med["no-op"]
        print("processes left alone: /bin/true, %d interleaved runs per "
              "series; added = median - median under the no-op preload "
              "(target <= +%.2f ms)" % (a.reps, TARGET_ALONE_MS))
        print("%-24s %10s %12s %s" % ("", "cpu(ms)", "added(ms)", ""))
        for name, m in med.items():
            added = m - floor
            ok = "" if name in ("no preload", "no-op") or "before" in name \
                else self.verdict(added * 1e3 <= TARGET_ALONE_MS)
            print("%-24s %10s %12s %s" % (name, ms(m),
                                           "-" if name == "no-op" else ms(added),
                                           ok))
        print()

    def node_sizes(self):
        a = self.a
        cache = os.path.join(self.tmp, "cache")
        os.mkdir(cache, 0o700)
        print("ranks on synthetic nodes (MPIBIND_TOPOFILE, dryrun), task i of "
              "%d; warm: %d interleaved runs per series, first: %d "
              "(targets: warm <= +%.2f ms and flat, first <= +%.0f ms at "
              "8192 PUs)" % (a.ntasks, a.warm_reps, a.first_reps,
                             TARGET_WARM_MS, TARGET_FIRST_MS))
        cols = ["PUs"]
        for tag, _ in self.preloads:
            cols += ["warm %s" % tag, "growth", "first %s" % tag]
        print(" ".join("%14s" % c for c in cols))
        prev = {}
        for pus in a.pus:
            node = make_node(self.tmp, pus)

            def task_env(path, task):
                return self.env(path, MPIBIND="dryrun", MPIBIND_TOPOFILE=node,
                                MPIBIND_CACHE_DIR=cache,
                                MPI_LOCALNRANKS=str(a.ntasks),
                                MPI_LOCALRANKID=str(task))

            def rank(i):
                return str(1 + i % (a.ntasks - 1))

            # the node's first rank, each time on a cold node
            first = {"no-op": lambda i: task_env(a.noop, rank(i))}
            for tag, path in self.preloads:
                first[tag] = (lambda p: lambda i: task_env(p, rank(i)))(path)
            fspread = {}
            fmed = medians(first, a.first_reps,
                           before=lambda name: clear_maps(cache),
                           spread=fspread)
            # warm: each preload's node mapping written once
            for _, path in self.preloads:
                cpu_of(task_env(path, "0"))
            warm = {"no-op": lambda i: task_env(a.noop, rank(i))}
            for tag, path in self.preloads:
                warm[tag] = (lambda p: lambda i: task_env(p, rank(i)))(path)
            wmed = medians(warm, a.warm_reps)
            cells = [str(pus)]
            for tag, _ in self.preloads:
                added = wmed[tag] - wmed["no-op"]
                growth = ("-" if tag not in prev or prev[tag] <= 0
                          else "%.2f" % (added / prev[tag]))
                prev[tag] = max(added, 1e-9)
                fadded = fmed[tag] - fmed["no-op"]
                if tag == "now":
                    self.verdict(added * 1e3 <= TARGET_WARM_MS)
                    if pus == 8192:
                        self.verdict(fadded * 1e3 <= TARGET_FIRST_MS)
                        if "before" in fmed:
                            # no slower than the baseline beyond the
                            # spread of its own few runs
                            self.verdict(fadded <= fmed["before"] - fmed["no-op"]
                                         + fspread["before"])
                cells += ["+" + ms(added), growth, "+%.1f" % (fadded * 1e3)]
            print(" ".join("%14s" % c for c in cells))
            sys.stdout.flush()
            clear_maps(cache)
        print()
        print("warm and first: added CPU (ms) over the no-op preload; growth "
              "= added warm cost / the previous size's (1.00: flat)")


def main():
    a = parse_args()
    with tempfile.TemporaryDirectory(prefix="mpibind-taskcost-") as tmp:
        b = Bench(a, tmp)
        print("preload: %s" % a.preload)
        if a.baseline_preload:
            print("baseline (before): %s" % a.baseline_preload)
        print()
        b.left_alone()
        b.node_sizes()
    print("%s: %d target%s missed (reported, not failed: this is a benchmark)"
          % ("MISS" if b.misses else "PASS", b.misses,
             "" if b.misses == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
