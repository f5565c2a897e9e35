#!/usr/bin/python3
"""slurm_step_cost.py - what the Slurm plugin (mpibind_slurm.so) adds to the
start of a step.

Run by hand, as root (it starts a private two-node Slurm on this machine,
tests/slurm/slurm_cluster.py), after `meson compile -C build`:
  /usr/bin/python3 bench/slurm_step_cost.py --plugin build/slurm/mpibind_slurm.so
or with the other benchmarks:
  meson test -C build --benchmark --verbose slurm-step-cost
Options: --reps K (default 20), --timeout S (per srun, default 60).

What is measured: K rounds of steps of /bin/true, each timed from srun's
start to its exit (wall clock, monotonic), in these settings, interleaved
round by round (so that slow drifts of this noisy VM hit every series
alike; plugstack.conf is rewritten before each step, which srun and the
step's slurmstepd read afresh):
  none        no plugin in plugstack.conf (the baseline)
  not-asked   the plugin with default_off, no --mpibind: loaded, does
              nothing
  off         the plugin, srun --mpibind=off
  mapped      the plugin, srun --mpibind: the node's mapping once per node
              (a live topology discovery in slurmstepd), binding and
              variables in each task
  mapped-v    the same with v (the report printed by each node's task 0)
each for -N1 -n2 and -N2 -n4 with --exclusive.  Reported: per setting the
median and the median absolute deviation, and the median's difference to
the baseline's (what the plugin adds to a step's start, in ms).
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "slurm"))
import slurm_cluster  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", required=True, help="mpibind_slurm.so")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    plugin = os.path.abspath(args.plugin)

    missing = slurm_cluster.missing_components()
    if missing:
        print("SKIP: no real Slurm here: missing " + ", ".join(missing))
        return slurm_cluster.SKIP

    settings = [
        ("none", [], []),
        ("not-asked", ["default_off"], []),
        ("off", [], ["--mpibind=off"]),
        ("mapped", [], ["--mpibind"]),
        ("mapped-v", [], ["--mpibind=v"]),
    ]
    shapes = [("N1-n2", ["-N1", "-n2"]), ("N2-n4", ["-N2", "-n4"])]
    times = {(s, sh): [] for s, _, _ in settings for sh, _ in shapes}

    with slurm_cluster.signals_raise():
        cluster = slurm_cluster.SlurmCluster(plugstack=[])
        cluster.start()
        try:
            for rep in range(args.reps + 1):       # round 0 warms up
                for sh, shape in shapes:
                    for name, site, opt in settings:
                        cluster.set_plugstack(
                            [] if name == "none" else
                            [" ".join(["required", plugin] + site)])
                        argv = ["srun", "-t", "1", "--exclusive"] + shape + opt + ["/bin/true"]
                        t0 = time.monotonic()
                        r = cluster.run(argv, timeout=args.timeout)
                        dt = time.monotonic() - t0
                        if r.returncode != 0:
                            print("FAIL: %s: exit %s\n%s" % (" ".join(argv), r.returncode, r.stderr))
                            return 1
                        if rep > 0:
                            times[(name, sh)].append(dt * 1000.0)
        finally:
            cluster.stop()

    print("Step start (srun of /bin/true, wall ms), %d reps, interleaved" % args.reps)
    print("%-8s %-10s %9s %7s %12s" % ("shape", "setting", "median", "MAD", "vs none"))
    for sh, _ in shapes:
        base = statistics.median(times[("none", sh)])
        for name, _, _ in settings:
            xs = times[(name, sh)]
            med = statistics.median(xs)
            mad = statistics.median(abs(x - med) for x in xs)
            print("%-8s %-10s %9.1f %7.1f %+11.1f" % (sh, name, med, mad, med - base))
    return 0


if __name__ == "__main__":
    sys.exit(main())
