#!/usr/bin/python3
"""Automatic binding under a real Slurm: srun + LD_PRELOAD=libmpibind-preload.so.

Starts a private two-node Slurm cluster on this machine once (see
slurm_cluster.py), runs the launch probes under srun with the preload, and
checks every rank against the mapping that `mpibind -n <tasks on its node>`
previews for this machine (computed here, outside Slurm, by the command; never
hard-coded).  Each node's tasks are mapped on their own: with -N2 -n4 both
nodes' tasks are node-local tasks 0 and 1 of 2.

What is compared, per rank (the probe's JSON line, see tests/launch/probe.c):
  cpus of the process and of every one of its threads == the task's cpus;
  OMP_NUM_THREADS, and omp_get_max_threads() when the probe has OpenMP,
  == the task's nthreads; every OpenMP thread runs inside the task's cpus;
  OMP_PLACES=threads, OMP_PROC_BIND=spread, MPIBIND_APPLIED=1 exported.

Binding choice (why --exclusive and srun's default --cpu-bind):
  The user story is "add LD_PRELOAD to srun ./app and change nothing else".
  srun's task/affinity plugin binds every task to one CPU of its allocation
  by default; mpibind's mapping replaces that binding, and may be wider (one
  task on a 2-core node gets both cores).  mpibind divides the NODE among its
  tasks, so the jobs allocate whole nodes (--exclusive), as mpibind users do;
  then the node's mapping and Slurm's allocation agree and the preview of
  the whole machine is the right expectation.  The preload binds within what
  the process may use (hwloc's allowed cpuset, which covers cgroup limits),
  not within srun's per-task affinity mask, which is exactly what it
  replaces.  The default --cpu-bind is used everywhere, and one case runs
  with --cpu-bind=none to show that the result does not depend on it.

Exit 77 (skip) only when Slurm/munge are not installed or we are not root.
"""

import argparse
import json
import os
import re
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slurm_cluster  # noqa: E402

SRUN_TIMEOUT = 90     # seconds per srun; a hung step must not hang the suite

# Variables a user may have set that would change the expected mapping or
# the launch; the tests set what they need explicitly.
SCRUB = re.compile(r"^(OMP_|GOMP_|KMP_|MPIBIND|LD_PRELOAD$|CUDA_|ROCR_|ZE_AFFINITY|HIP_VISIBLE|OMPI_|PMIX_|PMI_|MPI_LOCAL|HYDRA_|I_MPI_)")


# hwloc/Linux list syntax ("0-3,8") -> set of ints: the pytest suites'
# shared parser (tests/pyhelpers, on PYTHONPATH).
from mpibind_testutil import parse_list  # noqa: E402,F401


def fmt(cpus):
    return ",".join(str(c) for c in sorted(cpus)) or "(none)"


PREVIEW_RE = re.compile(r"^mpibind: task\s+(\d+) nths\s+(\d+) gpus (.*?)(?: nics \S*)? cpus (\S+)\s*$")


class Preview:
    """The mapping `mpibind -n K` prints for this machine, cached by K."""

    def __init__(self, exe):
        self.exe = exe
        self.cache = {}

    def __call__(self, k):
        if k not in self.cache:
            import subprocess
            env = {key: v for key, v in os.environ.items() if not key.startswith("SLURM_")}
            r = subprocess.run([self.exe, "-n", str(k)], capture_output=True, text=True,
                               timeout=60, env=env)
            if r.returncode != 0:
                raise RuntimeError("%s -n %d failed (exit %d): %s" % (self.exe, k, r.returncode, r.stderr.strip()))
            tasks = {}
            for line in r.stdout.splitlines():
                m = PREVIEW_RE.match(line)
                if m:
                    tasks[int(m.group(1))] = (int(m.group(2)), parse_list(m.group(4)))
            if sorted(tasks) != list(range(k)):
                raise RuntimeError("%s -n %d: expected report lines for tasks 0..%d, got:\n%s"
                                   % (self.exe, k, k - 1, r.stdout))
            self.cache[k] = tasks
        return self.cache[k]


def block_layout(nodes, ntasks):
    """rank -> (node, local id, tasks on that node) for srun -m block: the
    first ntasks % nodes nodes get one task more (checked against Slurm's own
    SLURM_NODEID/SLURM_LOCALID by the 'distribution' case)."""
    base, extra = divmod(ntasks, nodes)
    layout = {}
    rank = 0
    for node in range(nodes):
        k = base + (1 if node < extra else 0)
        for local in range(k):
            layout[rank] = (node, local, k)
            rank += 1
    return layout


def probe_records(stdout):
    recs = []
    for line in stdout.splitlines():
        if line.startswith("PROBE "):
            recs.append(json.loads(line[len("PROBE "):]))
    return recs


class Runner:
    def __init__(self, cluster, args):
        self.cluster = cluster
        self.args = args
        self.preview = Preview(args.mpibind)
        self.results = []        # (name, ok, message)

    def srun(self, mpi, nodes, ntasks, prog, extra=(), env=None, overcommit=False):
        """srun of whole nodes.  With overcommit (more tasks than CPUs) srun
        alone would wait forever for CPUs, and `srun --exclusive -O` is
        refused ("More processors requested than permitted"): the nodes are
        allocated first with salloc, then the step overcommits them."""
        argv = ["srun", "--mpi=" + mpi, "-N%d" % nodes, "-n%d" % ntasks, "-m", "block",
                "--export=ALL", "--kill-on-bad-exit=1"]
        if overcommit:
            argv = ["salloc", "-N%d" % nodes, "--exclusive", "-t", "3"] + argv + ["-O"]
        else:
            argv += ["--exclusive", "-t", "3"]
        argv += list(extra) + list(prog)
        return run_step(self.cluster, argv, env=env)

    def record(self, name, problems, r=None, note=""):
        ok = not problems
        msg = ""
        if problems:
            msg = "\n".join("    " + p for p in problems)
            if r is not None:
                msg += "\n    command: %s\n    exit: %s\n    stdout:\n%s\n    stderr:\n%s" % (
                    " ".join(r.args), r.returncode, indent(r.stdout), indent(r.stderr))
        self.results.append((name, ok, msg))
        print("%s %s%s%s" % ("PASS" if ok else "FAIL", name,
                             " (%.1f s)" % r.elapsed if r is not None and hasattr(r, "elapsed") else "",
                             " - " + note if note else ""), flush=True)
        if msg:
            print(msg, flush=True)

    # -- expectations --------------------------------------------------------

    def check_mapped(self, name, r, nodes, ntasks):
        """Every rank bound and told as the preview of its node says."""
        problems = []
        if r.returncode != 0:
            problems.append("srun exit status %s (expected 0)" % r.returncode)
        recs = probe_records(r.stdout)
        ranks = sorted(rec.get("rank") for rec in recs)
        if ranks != list(range(ntasks)):
            problems.append("probe lines for ranks %s, expected 0..%d" % (ranks, ntasks - 1))
        layout = block_layout(nodes, ntasks)
        for rec in sorted(recs, key=lambda x: x.get("rank", -1)):
            rank = rec.get("rank")
            if rank not in layout:
                continue
            node, local, k = layout[rank]
            nths, cpus = self.preview(k)[local]
            who = "rank %d (node %d, local task %d of %d)" % (rank, node, local, k)
            if rec.get("size") != ntasks:
                problems.append("%s: MPI size %s, expected %d" % (who, rec.get("size"), ntasks))
            got = parse_list(rec.get("cpus"))
            threads = [parse_list(lst) for lst in (rec.get("tasks") or {}).values()]
            if rec.get("lang") == "mpi4py":
                if got != cpus:
                    problems.append("%s: Cpus_allowed_list %s, expected %s" % (who, fmt(got), fmt(cpus)))
                for lst in threads:
                    if lst != cpus:
                        problems.append("%s: a thread bound to %s, expected the whole process on %s"
                                        % (who, fmt(lst), fmt(cpus)))
            else:
                # an OpenMP program: its runtime read OMP_PLACES/OMP_PROC_BIND
                # (the preload restarts it when GNU libgomp read them too
                # early) and binds each of its threads, the initial one
                # included, to one place of the task's CPUs
                if not got or not got <= cpus:
                    problems.append("%s: Cpus_allowed_list %s, expected within %s" % (who, fmt(got), fmt(cpus)))
                if threads and set().union(*threads) != cpus:
                    problems.append("%s: threads on %s, expected together on %s"
                                    % (who, fmt(set().union(*threads)), fmt(cpus)))
                for lst in threads:
                    if not lst or not lst <= cpus:
                        problems.append("%s: a thread bound to %s, outside %s" % (who, fmt(lst), fmt(cpus)))
            env = rec.get("env") or {}
            # an interpreter (mpi4py) is not told OMP_PLACES/OMP_PROC_BIND
            # (auto/README.md: its OpenMP runtime loads late)
            py = rec.get("lang") == "mpi4py"
            want_env = {"OMP_NUM_THREADS": str(nths), "OMP_PLACES": None if py else "threads",
                        "OMP_PROC_BIND": None if py else "spread", "MPIBIND_APPLIED": "1"}
            for var, want in want_env.items():
                if env.get(var) != want:
                    problems.append("%s: %s=%r, expected %r" % (who, var, env.get(var), want))
            # omp_max_threads is null for the mpi4py probe (no OpenMP
            # runtime); omp_threads is absent from the Fortran probes and,
            # for mpi4py, holds the main thread's own affinity
            if rec.get("omp_max_threads") is not None:
                if rec["omp_max_threads"] != nths:
                    problems.append("%s: omp_get_max_threads() %s, expected %d"
                                    % (who, rec["omp_max_threads"], nths))
                if "omp_threads" in rec and len(rec["omp_threads"]) != nths:
                    problems.append("%s: %d OpenMP threads ran, expected %d"
                                    % (who, len(rec["omp_threads"]), nths))
            for i, aff in enumerate(rec.get("omp_threads") or []):
                if not set(aff) or not set(aff) <= cpus:
                    problems.append("%s: thread %d (OpenMP number) runs on %s, outside the task's %s"
                                    % (who, i, fmt(aff), fmt(cpus)))
        self.record(name, problems, r)

    # -- cases ------------------------------------------------------------------

    def run_all(self):
        a = self.args
        pre = {"LD_PRELOAD": a.preload}
        # Open MPI: root needs the ALLOW variables; the two slurmd "nodes"
        # share one host, where Open MPI's shared-memory BTL collides across
        # them, so TCP it is (harmless on one node), over the loopback only:
        # both "nodes" are this host, and a peer reached through the
        # machine's other interface sometimes fails to connect (SIGSEGV).
        ompi = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "lo"}
        py = [sys.executable if a.python is None else a.python]

        self.case_distribution()

        # the mapping itself, one node and two nodes, each MPI
        if a.probe_ompi:
            for nodes, n in ((1, 2), (2, 4)):
                r = self.srun("pmix", nodes, n, [a.probe_ompi], env={**pre, **ompi})
                self.check_mapped("openmpi-pmix-N%d-n%d" % (nodes, n), r, nodes, n)
            r = self.srun("pmix", 1, 2, [a.probe_ompi], extra=["--cpu-bind=none"], env={**pre, **ompi})
            self.check_mapped("openmpi-pmix-N1-n2-cpu-bind-none", r, 1, 2)
            # one task: srun binds it to one CPU, mpibind gives it the node
            r = self.srun("pmix", 1, 1, [a.probe_ompi], env={**pre, **ompi})
            self.check_mapped("openmpi-pmix-N1-n1", r, 1, 1)
            # more tasks than CPUs: needs overcommit, else srun waits forever
            r = self.srun("pmix", 1, 4, [a.probe_ompi], overcommit=True, env={**pre, **ompi})
            self.check_mapped("openmpi-pmix-N1-n4-overcommit", r, 1, 4)
            self.case_off(a.probe_ompi, ompi)
            self.case_verbose(a.probe_ompi, {**pre, **ompi})
        if a.probe_py:
            for nodes, n in ((1, 2), (2, 4)):
                r = self.srun("pmix", nodes, n, py + [a.probe_py], env={**pre, **ompi})
                self.check_mapped("mpi4py-pmix-N%d-n%d" % (nodes, n), r, nodes, n)
        if a.probe_mpich:
            for nodes, n in ((1, 2), (2, 4)):
                r = self.srun("pmi2", nodes, n, [a.probe_mpich], env=pre)
                self.check_mapped("mpich-pmi2-N%d-n%d" % (nodes, n), r, nodes, n)
        # Fortran (mpif.h, use mpi, use mpi_f08): their init paths differ
        # from C's (Open MPI's goes straight to PMPI_Init); two nodes each
        for name, path in a.probe_fortran:
            if name.startswith("openmpi"):
                r = self.srun("pmix", 2, 4, [path], env={**pre, **ompi})
            else:
                r = self.srun("pmi2", 2, 4, [path], env=pre)
            self.check_mapped("fortran-%s-N2-n4" % name, r, 2, 4)

    def case_distribution(self):
        """The block layout assumed above is Slurm's own."""
        r = self.srun("none", 2, 4, ["/bin/sh", "-c", 'echo "DIST $SLURM_PROCID $SLURM_NODEID $SLURM_LOCALID"'])
        got = {}
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 4 and f[0] == "DIST":
                got[int(f[1])] = (int(f[2]), int(f[3]))
        want = {rank: (node, local) for rank, (node, local, _) in block_layout(2, 4).items()}
        problems = [] if r.returncode == 0 and got == want else [
            "SLURM_PROCID -> (SLURM_NODEID, SLURM_LOCALID) %s, expected %s" % (got, want)]
        self.record("distribution-N2-n4-block", problems, r)

    def case_off(self, probe, ompi):
        """MPIBIND=off: the rank looks exactly as without the preload."""
        base = self.srun("pmix", 1, 1, [probe], env=ompi)
        off = self.srun("pmix", 1, 1, [probe], env={"LD_PRELOAD": self.args.preload, "MPIBIND": "off", **ompi})
        problems = []
        b, o = probe_records(base.stdout), probe_records(off.stdout)
        if base.returncode != 0 or len(b) != 1:
            problems.append("baseline run without the preload failed")
            self.record("openmpi-pmix-MPIBIND=off", problems, base)
            return
        if off.returncode != 0 or len(o) != 1:
            problems.append("run with MPIBIND=off: exit %s, %d probe lines" % (off.returncode, len(o)))
        else:
            b, o = b[0], o[0]
            for key in ("cpus", "omp_max_threads"):
                if key in b and b.get(key) != o.get(key):
                    problems.append("%s %r with MPIBIND=off, %r without the preload" % (key, o.get(key), b.get(key)))
            for var, val in (o.get("env") or {}).items():
                if val != (b.get("env") or {}).get(var):
                    problems.append("%s=%r with MPIBIND=off, %r without the preload"
                                    % (var, val, (b.get("env") or {}).get(var)))
        # the mapped case differs from srun's own binding, else the checks
        # above could not tell a working preload from none
        nths, cpus = self.preview(1)[0]
        note = ""
        if b and isinstance(b, dict) and parse_list(b.get("cpus")) == cpus:
            note = "srun's own binding equals the mapping here: the 1-task case cannot tell them apart"
        self.record("openmpi-pmix-MPIBIND=off", problems, off, note)


    def case_verbose(self, probe, env):
        """MPIBIND=v: the node's mapping is printed once per node, not once
        per task, and the ranks are mapped as usual.  Our two slurmd nodes
        share one host, so "once per node" may fairly mean once per Slurm
        node (2 reports) or once per host (1 report, e.g. when the printing
        task is the one that discovered the hardware); 4 is once per task."""
        r = self.srun("pmix", 2, 4, [probe], env={**env, "MPIBIND": "v"})
        self.check_mapped("openmpi-pmix-N2-n4-verbose-mapping", r, 2, 4)
        problems = []
        # the stream is not specified: look at both
        lines = r.stdout.splitlines() + r.stderr.splitlines()
        gpus = [l for l in lines if re.match(r"^mpibind: \d+ GPUs on this node\s*$", l)]
        if len(gpus) not in (1, 2):
            problems.append("%d 'mpibind: N GPUs on this node' lines on stderr, expected 2 (one per"
                            " Slurm node) or 1 (one per host)" % len(gpus))
        reports = {}
        for l in lines:
            m = PREVIEW_RE.match(l)
            if m:
                key = (int(m.group(1)), int(m.group(2)), frozenset(parse_list(m.group(4))))
                reports[key] = reports.get(key, 0) + 1
        want = {(t, nths, frozenset(cpus)): max(len(gpus), 1) for t, (nths, cpus) in self.preview(2).items()}
        if reports != want:
            problems.append("report lines (task, nths, cpus) -> count %s, expected %s"
                            % (sorted((k[0], k[1], fmt(k[2]), v) for k, v in reports.items()),
                               sorted((k[0], k[1], fmt(k[2]), v) for k, v in want.items())))
        self.record("openmpi-pmix-N2-n4-verbose-once-per-node", problems, r)


def indent(text, pre="      "):
    return "\n".join(pre + l for l in (text or "").rstrip().splitlines()) or pre + "(empty)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preload", required=True, help="libmpibind-preload.so")
    ap.add_argument("--mpibind", required=True, help="the mpibind command (preview)")
    ap.add_argument("--probe-ompi", help="Open MPI C+OpenMP probe")
    ap.add_argument("--probe-mpich", help="MPICH C+OpenMP probe")
    ap.add_argument("--probe-py", help="mpi4py probe script")
    ap.add_argument("--probe-fortran", action="append", default=[], metavar="NAME=PATH",
                    help="a Fortran probe; NAME starts with openmpi or mpich (repeatable)")
    ap.add_argument("--python", help="interpreter for the mpi4py probe (default: this one)")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy the Slurm logs here")
    args = ap.parse_args()

    args.probe_fortran = fortran_probes(args.probe_fortran)
    if args.probe_fortran is None:
        return 1

    missing = slurm_cluster.missing_components()
    if missing:
        print("SKIP: no real Slurm here: missing " + ", ".join(missing))
        return slurm_cluster.SKIP
    for what in ("preload", "mpibind", "probe_ompi", "probe_mpich", "probe_py"):
        path = getattr(args, what)
        if path is not None and not os.path.exists(path):
            print("ERROR: --%s %s does not exist" % (what.replace("_", "-"), path))
            return 1
        if path is not None:
            setattr(args, what, os.path.abspath(path))
    return run_checks(Runner, args)


# Open MPI 4.1's TCP BTL between two "nodes" of one host sometimes takes a
# non-blocking connect's EINPROGRESS for a failure and then crashes the
# rank (SIGSEGV); it does so with or without mpibind (Open MPI's own
# warning names it).  Such a step is run once more; every check still
# applies to the step that ran last.
OMPI_CONNECT_BUG = "Open MPI failed to TCP connect to a peer MPI process"


def run_step(cluster, argv, env=None, input=None):
    """cluster.run(argv) timed (r.elapsed), once more after Open MPI's
    connect failure (see OMPI_CONNECT_BUG)."""
    for attempt in (1, 2):
        t0 = time.monotonic()
        r = cluster.run(argv, timeout=SRUN_TIMEOUT, env=env, input=input)
        r.elapsed = time.monotonic() - t0
        if r.returncode == 0 or OMPI_CONNECT_BUG not in r.stderr or attempt == 2:
            return r
        print("note: Open MPI's TCP connect failure, running the step again: %s"
              % " ".join(argv), flush=True)


def fortran_probes(items):
    """--probe-fortran NAME=PATH items as (name, absolute path) pairs; None
    (after one line saying why) when one is not of that form."""
    fortran = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.startswith(("openmpi", "mpich")) or not path:
            print("ERROR: --probe-fortran %r: expected NAME=PATH, NAME starting with openmpi or mpich" % item)
            return None
        if not os.path.exists(path):
            print("ERROR: --probe-fortran %s: %s does not exist" % (name, path))
            return None
        fortran.append((name, os.path.abspath(path)))
    return fortran


def run_checks(runner_class, args, **cluster_options):
    """Starts a private Slurm (slurm_cluster.SlurmCluster with
    cluster_options), runs runner_class(cluster, args).run_all(), stops the
    cluster, prints the summary; the exit status of the test (0: every
    check passed)."""
    for key in list(os.environ):
        if SCRUB.match(key):
            del os.environ[key]

    with slurm_cluster.signals_raise():
        cluster = slurm_cluster.SlurmCluster(keep_logs=args.keep_logs, verbose=True,
                                             **cluster_options)
        try:
            t0 = time.monotonic()
            cluster.start()
            print("cluster started in %.1f s" % (time.monotonic() - t0), flush=True)
        except slurm_cluster.ClusterError as e:
            print("FAIL: could not start Slurm: %s" % e)
            return 1
        try:
            runner = runner_class(cluster, args)
            try:
                runner.run_all()
            except Exception as e:     # e.g. the preview command failed
                traceback.print_exc()
                runner.record("harness", ["%s: %s" % (type(e).__name__, e)])
            if not all(ok for _, ok, _ in runner.results):
                print("\n--- Slurm daemon logs\n" + cluster.logs(40))
        finally:
            cluster.stop()

    failed = [n for n, ok, _ in runner.results if not ok]
    print("\n%d checks, %d failed%s" % (len(runner.results), len(failed),
                                        (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
