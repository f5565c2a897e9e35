#!/usr/bin/python3
"""flux_job_cost.py - what the Flux shell plugin (mpibind_flux.so) adds to
the start of a job.

Run by hand, after `meson compile -C build` (it starts its own Flux test
instance of two brokers on this machine, `flux start --test-size=2`):
  /usr/bin/python3 bench/flux_job_cost.py --plugin build/flux/mpibind_flux.so \
      --rc build/flux/mpibind-build.lua
or with the other benchmarks:
  meson test -C build --benchmark --verbose flux-job-cost
Options: --reps K (default 20), --timeout S (per job, default 60).

What is measured: K rounds of jobs of /bin/true, each timed from `flux run`'s
start to its exit (wall clock, monotonic), in these settings, interleaved
round by round (so that slow drifts of this noisy VM hit every series
alike):
  none        no plugin (Flux's own cpu-affinity and gpu-affinity)
  off         the plugin loaded (-o userrc=), -o mpibind=off: it reads the
              option and does nothing else
  mapped      the plugin, -o mpibind: the node's mapping once per node on
              the shell's topology, the shell bound, each task's variables
              and binding
  mapped-v    the same with verbose (each node's task 0 prints the mapping)
each for -N1 -n2 and -N2 -n4.  Reported: per setting the median and the
median absolute deviation, the median's difference to the baseline's (what
the plugin adds to a job's start, in ms) and their ratio.
Exit 77 when Flux is not installed.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def measure(args):
    settings = [
        ("none", []),
        ("off", ["-o", "userrc=" + args.rc, "-o", "mpibind=off"]),
        ("mapped", ["-o", "userrc=" + args.rc, "-o", "mpibind"]),
        ("mapped-v", ["-o", "userrc=" + args.rc, "-o", "mpibind=v"]),
    ]
    shapes = [("N1-n2", ["-N1", "-n2"]), ("N2-n4", ["-N2", "-n4"])]
    times = {(s, sh): [] for s, _ in settings for sh, _ in shapes}
    for rep in range(args.reps + 1):       # round 0 warms up
        for sh, shape in shapes:
            for name, opts in settings:
                argv = ["flux", "run"] + shape + opts + ["/bin/true"]
                t0 = time.monotonic()
                r = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout)
                dt = time.monotonic() - t0
                if r.returncode != 0:
                    print("FAIL: %s: exit %s\n%s" % (" ".join(argv), r.returncode, r.stderr))
                    return 1
                if rep > 0:
                    times[(name, sh)].append(dt * 1000.0)

    print("Job start (flux run of /bin/true, wall ms), %d reps, interleaved" % args.reps)
    print("%-8s %-10s %9s %7s %10s %7s" % ("shape", "setting", "median", "MAD", "vs none", "ratio"))
    for sh, _ in shapes:
        base = statistics.median(times[("none", sh)])
        for name, _ in settings:
            xs = times[(name, sh)]
            med = statistics.median(xs)
            mad = statistics.median(abs(x - med) for x in xs)
            print("%-8s %-10s %9.1f %7.1f %+10.1f %7.3f" % (sh, name, med, mad, med - base, med / base))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", required=True, help="mpibind_flux.so")
    ap.add_argument("--rc", required=True, help="an rc file that loads it (the build's)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.rc = os.path.abspath(args.rc)
    if args.inside:
        return measure(args)
    if shutil.which("flux") is None:
        print("SKIP: Flux is not installed (no flux on PATH)")
        return 77
    if not os.path.exists(args.plugin) or not os.path.exists(args.rc):
        print("ERROR: %s or %s does not exist" % (args.plugin, args.rc))
        return 1
    argv = ["flux", "start", "--test-size=2", sys.executable, os.path.abspath(__file__),
            "--inside"] + sys.argv[1:]
    return subprocess.run(argv).returncode


if __name__ == "__main__":
    sys.exit(main())
