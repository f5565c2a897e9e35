#!/usr/bin/python3
"""The Flux shell plugin (mpibind_flux.so) and the preload under a real Flux.

Starts one Flux test instance of two brokers on this machine (`flux start
--test-size=2`: two "nodes", each with every core of this host) and runs
every check inside it, then a one-broker instance whose topology is a GPU
node's hwloc XML (FLUX_HWLOC_XMLFILE with FLUX_HWLOC_XMLFILE_NOT_THISSYSTEM,
Lassen: 40 cores, 4 V100) for the GPU checks, in dryrun.  The plugin is
loaded as a site or a user loads it: the rc file the build made from
flux/mpibind.lua.in, through `-o userrc=FILE` or FLUX_SHELL_RC_PATH.
Expectations come from the `mpibind` command's preview of this machine (or
of the XML), from R (`flux job info ID R`), and, for "as Flux binds it",
from the same job run without the plugin; never hard-coded.

Cases (issue 14's list):
  mapped     flux run -N2 -n4 -o mpibind=verbose: Open MPI and MPICH C+OpenMP
             probes, mpi4py, the Fortran probes: each rank's CPUs (process and
             threads), OMP_*, MPIBIND_APPLIED=1, MPI size (test_slurm's
             check_mapped), the node's report once per node;
  gomp       one task with both cores, GNU libgomp: its threads one per place;
  spellings  -o mpibind (1), =1, =true, the object form (-o mpibind.smt=1
             -o mpibind.verbose), the original's verbose:N and gpu_optim:0;
  off        -o mpibind=off (and =0, =false): exactly as Flux binds without
             the plugin, also with the user's own -o cpu-affinity=per-task;
  site       the rc file in FLUX_SHELL_RC_PATH: every job mapped; with
             default_off = true only the jobs with -o mpibind; an unknown rc
             argument is one warning;
  shared     two jobs of one core each on one node at the same time: each on
             its own core (R's), never the other's;
  nested     a Flux instance inside a job of one core (flux alloc): its job
             mapped within that core;
  bad        a bad option (string and object forms, a number other than 1
             or 0, an empty value): one line naming it as typed, the job
             does not start, `flux run` ends with 1 every time; a bad
             environment value
             (MPIBIND_RESTRICT_TYPE=cores): one line, the job runs as Flux
             binds it; a problem found on the node (MPIBIND_RESTRICT that
             selects nothing): one line per node, the tasks on the job's
             cores, MPIBIND_APPLIED=0; with strict the job fails;
  preload    LD_PRELOAD and the plugin together: applied once (the preload's
             trace stays empty); the preload alone under flux run: on one
             node at load (FLUX_TASK_LOCAL_ID, FLUX_JOB_SIZE), on two after
             MPI_Init, mapped as the preview says, one trace line per task;
  gpus       Lassen's XML as the instance's topology, dryrun: jobs with -g1
             per task (the job's GPUs, the nearest ones: the library's
             mapping of the job's cores and GPUs), with all GPUs, and a job whose GPUs are not the
             first ones (another job holds those), and jobs on a few
             cores given every GPU of the node (-n4 -g1, -n1 -c1 -g4,
             -n2 -c1 -g2) or some (-g3, -g2): each task's
             CUDA_VISIBLE_DEVICES within its job's GPUs, every one of the
             job's GPUs used, CUDA_DEVICE_ORDER;
             a job without GPUs: CUDA_VISIBLE_DEVICES empty; without
             dryrun (the job's CPUs cannot be bound here): one line, the
             task as Flux binds it by default, MPIBIND_APPLIED=0.

Exit 77 (skip) only when Flux is not installed (no `flux` on PATH, or no
flux-core for the build, hence no plugin).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

SKIP = 77
RUN_TIMEOUT = 120     # seconds per flux command; a hung job must not hang the suite

# One line per task from a plain shell: what the task got before exec.
SH_PROBE = ("c=$(grep Cpus_allowed_list /proc/self/status | cut -f2); "
            "echo \"TASK $FLUX_TASK_RANK $FLUX_TASK_LOCAL_ID cpus=$c "
            "applied=${MPIBIND_APPLIED-unset} omp=${OMP_NUM_THREADS-unset} "
            "places=${OMP_PLACES-unset} cvd=${CUDA_VISIBLE_DEVICES-unset} "
            "order=${CUDA_DEVICE_ORDER-unset} job=$FLUX_JOB_ID\"")
TASK_RE = re.compile(r"^TASK (\d+) (\d+) (.*)$")
REPORT_HEAD_RE = re.compile(r"^mpibind: \d+ GPUs on this node\s*$")
REPORT_RE = re.compile(r"^mpibind: task\s+(\d+) nths\s+(\d+) gpus (.*?) cpus (\S+)\s*$")


def load_helpers(slurm_dir):
    """test_slurm's runner (check_mapped, record, the preview) and helpers:
    the launchers differ, the expectations are the same."""
    sys.path.insert(0, slurm_dir)
    import test_slurm  # noqa: E402
    return test_slurm


def sh_tasks(stdout, parse_list):
    """rank -> dict(local, cpus, cpuset, applied, omp, places, cvd, order, job)."""
    out = {}
    for line in stdout.splitlines():
        m = TASK_RE.match(line.strip())
        if not m:
            continue
        rec = {"local": int(m.group(2))}
        for kv in m.group(3).split():
            k, _, v = kv.partition("=")
            rec[k] = v
        rec["cpuset"] = parse_list(rec.get("cpus"))
        out[int(m.group(1))] = rec
    return out


def mpibind_lines(r):
    return [l for l in (r.stdout + "\n" + r.stderr).splitlines() if "mpibind" in l]


def gpu_list(value):
    """A *_VISIBLE_DEVICES value as a set of entries (unset: None)."""
    if value is None or value == "unset":
        return None
    return set(x for x in value.split(",") if x)


class FluxChecks:
    """Every case, run inside one Flux instance (this process's FLUX_URI)."""

    def __init__(self, ts, args, tmp):
        self.ts = ts
        self.args = args
        self.tmp = tmp
        # test_slurm's runner: record(), check_mapped(), preview
        self.runner = ts.Runner(None, args)
        self.parse_list = ts.parse_list
        self.rc = args.rc
        self.cache = os.path.join(tmp, "cache")
        os.makedirs(self.cache, exist_ok=True)

    # -- plumbing ------------------------------------------------------------

    def record(self, name, problems, r=None):
        self.runner.record(name, problems, r)

    def run(self, argv, env=None, timeout=RUN_TIMEOUT):
        e = dict(os.environ)
        e["MPIBIND_CACHE_DIR"] = self.cache
        e.update(env or {})
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e)
        except subprocess.TimeoutExpired as x:
            r = subprocess.CompletedProcess(argv, 124, x.stdout or "", (x.stderr or "") + "\n(timed out)")
            if isinstance(r.stdout, bytes):
                r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
        r.elapsed = time.monotonic() - t0
        return r

    def flux_run(self, opts, prog, env=None, plugin=True):
        """flux run OPTS PROG, with the plugin loaded as a user loads it
        (-o userrc=) unless plugin is False."""
        argv = ["flux", "run"] + (["-o", "userrc=" + self.rc] if plugin else []) + list(opts) + list(prog)
        return self.run(argv, env=env)

    def sh(self, opts, env=None, plugin=True):
        return self.flux_run(opts, ["/bin/sh", "-c", SH_PROBE], env=env, plugin=plugin)

    def expect_tasks(self, r, n, problems, ok=True):
        if ok and r.returncode != 0:
            problems.append("exit status %s (expected 0)" % r.returncode)
        tasks = sh_tasks(r.stdout, self.parse_list)
        if sorted(tasks) != list(range(n)):
            problems.append("task lines for ranks %s, expected 0..%d" % (sorted(tasks), n - 1))
        return tasks

    def expect_preview(self, tasks, problems, nodes, n):
        """Each rank's CPUs, OMP_NUM_THREADS and MPIBIND_APPLIED=1 as the
        preview of its node (block layout)."""
        for rank, (node, local, k) in self.ts.block_layout(nodes, n).items():
            rec = tasks.get(rank)
            if rec is None:
                continue
            nths, cpus = self.runner.preview(k)[local]
            if rec["local"] != local:
                problems.append("rank %d: FLUX_TASK_LOCAL_ID %d, expected %d" % (rank, rec["local"], local))
            if rec["cpuset"] != cpus:
                problems.append("rank %d: cpus %s, expected %s" % (rank, rec["cpus"], self.ts.fmt(cpus)))
            if rec["omp"] != str(nths) or rec["applied"] != "1":
                problems.append("rank %d: OMP_NUM_THREADS=%s MPIBIND_APPLIED=%s, expected %d and 1"
                                % (rank, rec["omp"], rec["applied"], nths))

    def expect_as_flux(self, tasks, base, problems):
        """Every task exactly as the same job without the plugin."""
        btasks = sh_tasks(base.stdout, self.parse_list)
        if base.returncode != 0 or not btasks:
            problems.append("the job without the plugin failed (exit %s)" % base.returncode)
        for rank, rec in tasks.items():
            b = btasks.get(rank) or {}
            for k in ("cpus", "applied", "omp", "places", "cvd", "order"):
                if rec.get(k) != b.get(k):
                    problems.append("rank %d: %s=%s, without the plugin %s" % (rank, k, rec.get(k), b.get(k)))

    def preview_within(self, n, pus, topology=None):
        """task -> (gpus, cpus) that `mpibind -n N --restrict PUS` previews
        (of this machine, or of the topology file)."""
        argv = [self.args.mpibind, "-n", str(n), "--restrict", self.ts.fmt(pus)]
        if topology:
            argv += ["--topology", topology]
        r = self.run(argv)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
        return {int(m.group(1)): (m.group(3).strip(), self.parse_list(m.group(4)))
                for m in map(REPORT_RE.match, r.stdout.splitlines()) if m}

    def live_core_pus(self, cores):
        """The PUs of this machine's cores (logical indexes, as Flux's ids in
        a top-level instance), by hwloc-calc."""
        pus = set()
        for c in cores:
            r = self.run(["hwloc-calc", "--physical-output", "--intersect", "PU", "core:%d" % c])
            if r.returncode != 0:
                raise RuntimeError("hwloc-calc core:%d: %s" % (c, r.stderr.strip()))
            pus |= self.parse_list(r.stdout.strip())
        return pus

    def reports(self, r):
        return [l for l in r.stderr.splitlines() if REPORT_HEAD_RE.match(l)]

    def check_reports(self, name, r, nodes):
        n = len(self.reports(r))
        self.record(name, [] if n == nodes else ["%d node reports, expected %d (one per node)" % (n, nodes)], r)

    def job_R(self, jobid):
        """rank -> (cores set, gpus set) of the job, from its R."""
        r = self.run(["flux", "job", "info", jobid, "R"])
        if r.returncode != 0:
            raise RuntimeError("flux job info %s R: %s" % (jobid, r.stderr.strip()))
        out = {}
        for entry in json.loads(r.stdout)["execution"]["R_lite"]:
            ch = entry.get("children", {})
            for rank in self.parse_list(entry["rank"]):
                out[rank] = (self.parse_list(ch.get("core", "")), self.parse_list(ch.get("gpu", "")))
        return out

    # -- cases ---------------------------------------------------------------

    def run_all(self):
        self.case_mapped()
        self.case_gomp()
        self.case_spellings()
        self.case_off()
        self.case_site()
        self.case_shared()
        self.case_nested()
        self.case_bad()
        self.case_node_problem()
        self.case_preload()

    def case_mapped(self):
        a = self.args
        v = ["-N2", "-n4", "-o", "mpibind=verbose"]
        for mpi, probe in (("openmpi", a.probe_ompi), ("mpich", a.probe_mpich)):
            if probe:
                r = self.flux_run(v, [probe])
                self.runner.check_mapped("plugin-%s-N2-n4" % mpi, r, 2, 4)
                self.check_reports("plugin-%s-N2-n4-report-once-per-node" % mpi, r, 2)
        if a.probe_py:
            r = self.flux_run(v, [a.python, a.probe_py])
            self.runner.check_mapped("plugin-mpi4py-N2-n4", r, 2, 4)
        for name, path in a.probe_fortran:
            r = self.flux_run(v, [path])
            self.runner.check_mapped("plugin-fortran-%s-N2-n4" % name, r, 2, 4)

    def case_gomp(self):
        """One task with both cores and its threads (GNU libgomp): the plugin
        exported OMP_PLACES=threads and OMP_PROC_BIND=spread before exec, so
        libgomp put each thread on its own place."""
        a = self.args
        if not a.probe_ompi:
            return
        r = self.flux_run(["-N1", "-n1", "-c2", "-o", "mpibind"], [a.probe_ompi])
        problems = []
        recs = self.ts.probe_records(r.stdout)
        nths, cpus = self.runner.preview(1)[0]
        if r.returncode != 0 or len(recs) != 1:
            problems.append("exit %s, %d probe lines (expected 0, 1)" % (r.returncode, len(recs)))
        if nths < 2:
            problems.append("the preview gives 1 task %d thread(s): this machine cannot show places" % nths)
        for rec in recs:
            env = rec.get("env") or {}
            for var, val in {"OMP_NUM_THREADS": str(nths), "OMP_PLACES": "threads",
                             "OMP_PROC_BIND": "spread", "MPIBIND_APPLIED": "1"}.items():
                if env.get(var) != val:
                    problems.append("%s=%r, expected %r" % (var, env.get(var), val))
            places = [frozenset(t) for t in rec.get("omp_threads") or []]
            if len(places) != nths:
                problems.append("%d OpenMP threads, expected %d" % (len(places), nths))
            if any(len(p) != 1 for p in places) or len(set(places)) != len(places):
                problems.append("OpenMP threads on %s: expected each on its own single PU"
                                % [sorted(p) for p in places])
            elif set().union(*places) != cpus:
                problems.append("OpenMP threads on %s, expected the task's CPUs %s"
                                % (sorted(set().union(*places)), self.ts.fmt(cpus)))
        self.record("plugin-gomp-1-task-2-threads-one-place-each", problems, r)

    def case_spellings(self):
        """The forms of -o mpibind: all mapped; the report only when a
        verbose word (in any spelling) says so."""
        for name, opts, report in (
                ("flag", ["-o", "mpibind"], False),
                ("object", ["-o", "mpibind.smt=1", "-o", "mpibind.verbose"], True),
                ("object-false", ["-o", "mpibind.verbose=false", "-o", "mpibind.greedy=1"], False),
                ("verbose:1-gpu_optim:0", ["-o", "mpibind=verbose:1,gpu_optim:0"], True),
                ("verbose:0", ["-o", "mpibind=verbose:0"], False),
                ("verbose:2", ["-o", "mpibind=verbose:2"], True),
                ("1", ["-o", "mpibind=1"], False),
                ("true", ["-o", "mpibind=true"], False)):
            r = self.sh(["-N1", "-n2"] + opts)
            problems = []
            tasks = self.expect_tasks(r, 2, problems)
            self.expect_preview(tasks, problems, 1, 2)
            n = len(self.reports(r))
            if n != (1 if report else 0):
                problems.append("%d reports, expected %d" % (n, 1 if report else 0))
            self.record("plugin-option-%s" % name, problems, r)

    def case_off(self):
        for name, opts in (("off", []), ("off-cpu-affinity=per-task", ["-o", "cpu-affinity=per-task"])):
            base = self.sh(["-N2", "-n4"] + opts, plugin=False)
            r = self.sh(["-N2", "-n4", "-o", "mpibind=off"] + opts)
            problems = []
            tasks = self.expect_tasks(r, 4, problems)
            self.expect_as_flux(tasks, base, problems)
            if mpibind_lines(r):
                problems.append("lines from mpibind: %s" % mpibind_lines(r))
            self.record("plugin-mpibind=%s-as-flux-binds" % name, problems, r)
        # MPIBIND=off in the job's environment, no option; -o mpibind=0
        # and =false, the documented numbers and booleans for off
        base = self.sh(["-N1", "-n2"], plugin=False)
        for value in ("0", "false"):
            r = self.sh(["-N1", "-n2", "-o", "mpibind=" + value])
            problems = []
            self.expect_as_flux(self.expect_tasks(r, 2, problems), base, problems)
            self.record("plugin-mpibind=%s-as-flux-binds" % value, problems, r)
        r = self.sh(["-N1", "-n2"], env={"MPIBIND": "off"})
        problems = []
        self.expect_as_flux(self.expect_tasks(r, 2, problems), base, problems)
        self.record("plugin-MPIBIND=off-env-as-flux-binds", problems, r)

    def rc_dir(self, name, default_off=False, extra=None):
        """A directory for FLUX_SHELL_RC_PATH with the build's rc file, as a
        site installs it; default_off = true and extra conf entries as a
        site would edit it."""
        d = os.path.join(self.tmp, "rc-" + name)
        os.makedirs(d, exist_ok=True)
        with open(self.rc) as f:
            text = f.read()
        if "default_off = false" not in text:
            raise RuntimeError("%s has no 'default_off = false' to edit" % self.rc)
        conf = "default_off = %s" % ("true" if default_off else "false")
        if extra:
            conf += ", " + extra
        with open(os.path.join(d, "mpibind.lua"), "w") as f:
            f.write(text.replace("default_off = false", conf))
        return {"FLUX_SHELL_RC_PATH": d}

    def case_site(self):
        on = self.rc_dir("on")
        base = self.sh(["-N2", "-n4"], plugin=False)
        r = self.sh(["-N2", "-n4"], env=on, plugin=False)
        problems = []
        self.expect_preview(self.expect_tasks(r, 4, problems), problems, 2, 4)
        self.record("site-rc-default-on-every-job-mapped", problems, r)
        r = self.sh(["-N2", "-n4", "-o", "mpibind=off"], env=on, plugin=False)
        problems = []
        self.expect_as_flux(self.expect_tasks(r, 4, problems), base, problems)
        self.record("site-rc-default-on-mpibind=off-as-flux-binds", problems, r)

        off = self.rc_dir("off", default_off=True)
        r = self.sh(["-N2", "-n4"], env=off, plugin=False)
        problems = []
        self.expect_as_flux(self.expect_tasks(r, 4, problems), base, problems)
        self.record("site-rc-default_off-no-option-as-flux-binds", problems, r)
        r = self.sh(["-N2", "-n4", "-o", "mpibind"], env=off, plugin=False)
        problems = []
        self.expect_preview(self.expect_tasks(r, 4, problems), problems, 2, 4)
        self.record("site-rc-default_off-with-option-mapped", problems, r)

        odd = self.rc_dir("odd", extra="bogus = 1")
        r = self.sh(["-N2", "-n4"], env=odd, plugin=False)
        problems = []
        self.expect_preview(self.expect_tasks(r, 4, problems), problems, 2, 4)
        lines = mpibind_lines(r)
        if len(lines) != 1 or "bogus" not in lines[0] or "default_off" not in lines[0]:
            problems.append("expected one line naming 'bogus' and default_off, got %s" % lines)
        self.record("site-rc-unknown-argument-one-warning", problems, r)

    def case_shared(self):
        """Two jobs of one core each on node 0 at the same time: each task on
        its own job's core (R), never on the other's."""
        jobs = []
        for _ in range(2):
            r = self.run(["flux", "submit", "--requires=rank:0", "-N1", "-n1", "-c1",
                          "-o", "userrc=" + self.rc, "-o", "mpibind=v",
                          "/bin/sh", "-c", SH_PROBE + "; sleep 2; " + SH_PROBE])
            jobs.append(r.stdout.strip())
        problems = []
        seen = []
        for jobid in jobs:
            r = self.run(["flux", "job", "attach", jobid])
            recs = [rec for line in r.stdout.splitlines()
                    for rec in sh_tasks(line, self.parse_list).values()]
            cores = self.job_R(jobid).get(0, (set(), set()))[0]
            if r.returncode != 0 or len(recs) != 2 or len(cores) != 1:
                problems.append("job %s: exit %s, %d task lines, cores %s (expected 0, 2, one core)"
                                % (jobid, r.returncode, len(recs), sorted(cores)))
                continue
            want = self.preview_within(1, self.live_core_pus(cores))[0][1]
            for rec in recs:
                if rec["cpuset"] != want or rec["applied"] != "1":
                    problems.append("job %s: cpus %s applied=%s, expected its core's %s and 1"
                                    % (jobid, rec["cpus"], rec["applied"], self.ts.fmt(want)))
            seen.append(frozenset(recs[0]["cpuset"]))
        if len(seen) == 2 and seen[0] == seen[1]:
            problems.append("both jobs on CPUs %s" % sorted(seen[0]))
        self.record("plugin-two-jobs-one-core-each-at-once", problems)

    def case_nested(self):
        """A Flux instance in a one-core job: its shell's topology is the
        broker's CPUs; its job is mapped within them."""
        inner = ("grep Cpus_allowed_list /proc/self/status; "
                 "flux run -n1 -o userrc=%s -o mpibind=v /bin/sh -c '%s'" % (self.rc, SH_PROBE))
        r = self.run(["flux", "alloc", "-N1", "-n1", "-c1", "/bin/sh", "-c", inner])
        problems = []
        outer = None
        for line in r.stdout.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                outer = self.parse_list(line.split(":", 1)[1].strip())
        tasks = self.expect_tasks(r, 1, problems)
        if not outer or len(outer) != 1:
            problems.append("the outer job's CPUs %s, expected one core" % outer)
        elif tasks.get(0):
            want = self.preview_within(1, outer)[0][1]
            if tasks[0]["cpuset"] != want or tasks[0]["applied"] != "1":
                problems.append("inner task on %s applied=%s, expected %s (the preview within the "
                                "outer job's CPUs %s) and 1"
                                % (tasks[0]["cpus"], tasks[0]["applied"], self.ts.fmt(want),
                                   self.ts.fmt(outer)))
        if len(self.reports(r)) != 1:
            problems.append("%d reports, expected 1" % len(self.reports(r)))
        self.record("plugin-nested-instance-within-its-core", problems, r)

    def case_bad(self):
        """A bad -o mpibind: one line naming the value as typed and what was
        expected (the job's exception), no task started, and `flux run`
        ends with status 1 every time (it was 1 or 143, as Flux happened
        to kill the shells); the values Flux takes but the documentation
        does not give (a number other than 1 or 0, an empty value) too."""
        for name, opts, needle in (("string", ["-o", "mpibind=v,bogus"], "-o mpibind='v,bogus'"),
                                   ("object", ["-o", "mpibind.smt=x"], "-o mpibind.smt=x"),
                                   ("object-unknown-key", ["-o", "mpibind.bogus=1"], "-o mpibind.bogus=1:"),
                                   ("number-42", ["-o", "mpibind=42"], "-o mpibind=42:"),
                                   ("number--1", ["-o", "mpibind=-1"], "-o mpibind=-1:"),
                                   ("empty", ["-o", "mpibind="], "-o mpibind='':"),
                                   # a word with a value of its own is the
                                   # grammar's, not the original's flag:N
                                   ("greedy:2", ["-o", "mpibind=greedy:2"], "-o mpibind='greedy:2'"),
                                   ("smt:2:3", ["-o", "mpibind=smt:2:3"], "-o mpibind='smt:2:3'"),
                                   ("object-greedy=2", ["-o", "mpibind.greedy=2"], "-o mpibind.greedy=2")):
            problems = []
            statuses = []
            for _ in range(3):
                r = self.sh(["-N2", "-n4"] + opts)
                statuses.append(r.returncode)
                # the line naming the value: the job's exception (Flux
                # adds its own lines about the failed shell.init)
                lines = [l for l in mpibind_lines(r) if "-o mpibind" in l]
                if sh_tasks(r.stdout, self.parse_list):
                    problems.append("tasks ran")
                if len(lines) != 1 or needle not in lines[0] or "expected" not in lines[0]:
                    problems.append("expected one line naming %s and what was expected, got %s"
                                    % (needle, lines))
            if statuses != [1, 1, 1]:
                problems.append("exit statuses %s, expected 1 each time" % statuses)
            self.record("plugin-bad-option-%s-refused-one-line-status-1" % name, problems, r)

        base = self.sh(["-N2", "-n4"], plugin=False)
        r = self.sh(["-N2", "-n4", "-o", "mpibind"], env={"MPIBIND_RESTRICT_TYPE": "cores"})
        problems = []
        self.expect_as_flux(self.expect_tasks(r, 4, problems), base, problems)
        lines = mpibind_lines(r)
        if len(lines) != 1 or "MPIBIND_RESTRICT_TYPE='cores'" not in lines[0] or "cpu or mem" not in lines[0]:
            problems.append("expected one line naming MPIBIND_RESTRICT_TYPE='cores' and cpu or mem, got %s"
                            % lines)
        self.record("plugin-bad-env-one-line-as-flux-binds", problems, r)

    def case_node_problem(self):
        """MPIBIND_RESTRICT=99 selects no CPU of the node: found on each node
        while mapping (after Flux's affinity was turned off), one line per
        node; the tasks get what Flux's default affinity gives them (the
        job's cores), marked MPIBIND_APPLIED=0.  With strict the job fails."""
        base = self.sh(["-N2", "-n4"], plugin=False)
        r = self.sh(["-N2", "-n4", "-o", "mpibind"], env={"MPIBIND_RESTRICT": "99"})
        problems = []
        tasks = self.expect_tasks(r, 4, problems)
        btasks = sh_tasks(base.stdout, self.parse_list)
        for rank, rec in tasks.items():
            if rec["cpus"] != (btasks.get(rank) or {}).get("cpus") or rec["applied"] != "0" \
                    or rec["omp"] != "unset":
                problems.append("rank %d: cpus=%s applied=%s omp=%s, expected %s (Flux's), 0, unset"
                                % (rank, rec["cpus"], rec["applied"], rec["omp"],
                                   (btasks.get(rank) or {}).get("cpus")))
        lines = mpibind_lines(r)
        if len(lines) != 2 or not all("MPIBIND_RESTRICT='99'" in l for l in lines):
            problems.append("expected one line per node naming MPIBIND_RESTRICT='99', got %s" % lines)
        self.record("plugin-node-problem-one-line-per-node-job-cores", problems, r)

        # the plugin loaded twice (the site's rc and the user's): the second
        # load still knows the user's own affinity (not the first's "off"),
        # so a one-core job's task is on its core, as Flux binds it
        base = self.sh(["-N1", "-n1"], plugin=False)
        r = self.sh(["-N1", "-n1", "-o", "mpibind"], env={**self.rc_dir("on"), "MPIBIND_RESTRICT": "99"})
        problems = []
        tasks = self.expect_tasks(r, 1, problems)
        b = sh_tasks(base.stdout, self.parse_list).get(0) or {}
        if tasks.get(0) and (tasks[0]["cpus"] != b.get("cpus") or tasks[0]["applied"] != "0"):
            problems.append("cpus=%s applied=%s, expected %s (Flux's) and 0"
                            % (tasks[0]["cpus"], tasks[0]["applied"], b.get("cpus")))
        if len(b.get("cpuset") or ()) != 1:
            problems.append("without the plugin the task had CPUs %s, expected one core" % b.get("cpus"))
        if len(mpibind_lines(r)) != 1:
            problems.append("expected one line, got %s" % mpibind_lines(r))
        self.record("plugin-loaded-twice-node-problem-job-core", problems, r)

        r = self.sh(["-N2", "-n4", "-o", "mpibind=strict"], env={"MPIBIND_RESTRICT": "99"})
        problems = []
        if r.returncode == 0 or sh_tasks(r.stdout, self.parse_list):
            problems.append("exit %s with %d task lines, expected the job to fail before its tasks"
                            % (r.returncode, len(sh_tasks(r.stdout, self.parse_list))))
        if not any("strict" in l and "MPIBIND_RESTRICT='99'" in l for l in mpibind_lines(r)):
            problems.append("no line naming MPIBIND_RESTRICT='99' and strict: %s" % mpibind_lines(r))
        self.record("plugin-strict-node-problem-fails-the-job", problems, r)

    def case_preload(self):
        a = self.args
        # one node: the task number and count from FLUX_TASK_LOCAL_ID and
        # FLUX_JOB_SIZE, at load (a shell, no MPI at all)
        r = self.sh(["-N1", "-n2", "--env=LD_PRELOAD=" + a.preload], plugin=False)
        problems = []
        self.expect_preview(self.expect_tasks(r, 2, problems), problems, 1, 2)
        self.record("preload-alone-flux-run-N1-n2-at-load-from-FLUX_TASK_LOCAL_ID", problems, r)

        if not a.probe_ompi:
            return
        trace = os.path.join(self.tmp, "trace-both")
        pre = ["--env=LD_PRELOAD=" + a.preload, "--env=MPIBIND_TRACE=" + trace]
        r = self.flux_run(["-N2", "-n4", "-o", "mpibind=v"] + pre, [a.probe_ompi])
        self.runner.check_mapped("plugin-and-preload-N2-n4-mapped", r, 2, 4)
        problems = []
        lines = open(trace).read().splitlines() if os.path.exists(trace) else []
        if lines:
            problems.append("the preload applied too: %s" % lines)
        if len(self.reports(r)) != 2:
            problems.append("%d reports, expected 2 (one per node)" % len(self.reports(r)))
        self.record("plugin-and-preload-applied-once", problems, r)

        trace = os.path.join(self.tmp, "trace-alone")
        pre = ["--env=LD_PRELOAD=" + a.preload, "--env=MPIBIND_TRACE=" + trace]
        r = self.flux_run(["-N2", "-n4"] + pre, [a.probe_ompi], plugin=False)
        self.runner.check_mapped("preload-alone-flux-run-N2-n4-mapped", r, 2, 4)
        problems = []
        lines = open(trace).read().splitlines() if os.path.exists(trace) else []
        if len(lines) != 4 or not all("bound=1" in l for l in lines):
            problems.append("expected 4 trace lines with bound=1, got %s" % lines)
        self.record("preload-alone-flux-run-one-trace-line-per-task", problems, r)


class GpuChecks(FluxChecks):
    """Inside an instance whose topology is a GPU node's XML (dryrun)."""

    def __init__(self, ts, args, tmp):
        super().__init__(ts, args, tmp)
        self.core_pus = self.xml_core_pus(args.gpu_topofile)

    @staticmethod
    def xml_core_pus(path):
        """The PUs of each core of an hwloc XML, cores in document order
        (hwloc's logical order, which Flux's core ids follow)."""
        cores = []
        for obj in ET.parse(path).iter("object"):
            if obj.get("type") == "Core":
                cores.append({int(pu.get("os_index")) for pu in obj.iter("object")
                              if pu.get("type") == "PU"})
        return cores

    def gpu_job(self, name, opts, n, nearest):
        """A dryrun job: each task's CUDA_VISIBLE_DEVICES within the job's
        GPUs (R); every one of them used (no GPU left idle): with n tasks
        and k GPUs, n >= k: one GPU each, the counts per GPU differing by
        at most one; n < k: each GPU to one task, k/n each (the remainder
        to the first); the report's CPUs within the job's cores; with
        nearest, exactly the library's mapping of the job's cores and
        GPUs."""
        r = self.sh(["-N1", "-n%d" % n, "-o", "cpu-affinity=off", "-o", "mpibind=dryrun"] + opts)
        problems = []
        tasks = self.expect_tasks(r, n, problems)
        reports = {int(m.group(1)): (m.group(3).strip(), self.parse_list(m.group(4)))
                   for m in map(REPORT_RE.match, r.stderr.splitlines()) if m}
        if not tasks:
            self.record(name, problems, r)
            return tasks
        cores, gpus = self.job_R(tasks[0]["job"]).get(0, (set(), set()))
        pus = set().union(*(self.core_pus[c] for c in cores)) if cores else set()
        used = []
        k = len(gpus)
        for rank, rec in sorted(tasks.items()):
            mine = gpu_list(rec["cvd"])
            want = 1 if n >= k else k // n + (1 if rec["local"] < k % n else 0)
            if mine is None or len(mine) != want or not mine <= {str(g) for g in gpus}:
                problems.append("rank %d: CUDA_VISIBLE_DEVICES=%s, expected %d of the job's GPUs %s"
                                % (rank, rec["cvd"], want, sorted(gpus)))
            used.extend(sorted(mine or ()))
            if rec["order"] != "PCI_BUS_ID" or rec["applied"] != "1":
                problems.append("rank %d: CUDA_DEVICE_ORDER=%s MPIBIND_APPLIED=%s, expected PCI_BUS_ID, 1"
                                % (rank, rec["order"], rec["applied"]))
            rep = reports.get(rec["local"])
            if rep is None or not rep[1] or not rep[1] <= pus:
                problems.append("rank %d: report CPUs %s, expected within the job's cores' PUs %s"
                                % (rank, rep and self.ts.fmt(rep[1]), self.ts.fmt(pus)))
        counts = [used.count(str(g)) for g in sorted(gpus)]
        if set(used) != {str(g) for g in gpus}:
            problems.append("the tasks use GPUs %s of the job's %s (expected every one: no GPU left idle)"
                            % (sorted(set(used)), sorted(gpus)))
        elif counts and max(counts) - min(counts) > 1:
            problems.append("tasks per GPU %s, expected counts that differ by at most one" % counts)
        if nearest:
            want = self.mapping_of_job(n, pus, gpus)
            got = {k: v for k, v in reports.items()}
            if got != want:
                problems.append("report %s, expected the mapping of the job's cores and GPUs %s"
                                % (sorted(got.items()), sorted(want.items())))
        self.record(name, problems, r)
        return tasks

    def case_every_gpu_on_a_few_cores(self):
        """A job on a few cores of the node (one socket's) with every GPU of
        the node: R's GPUs are its allocation even when they are all of the
        node's, so the GPUs local only to the other socket stay the job's
        and every one is used (docs/algorithm.md, "No GPU left idle"; they
        were left idle: 4 tasks on GPUs 0,0,1,1).  Fewer GPUs than the node
        has: the same rule, every one of them used."""
        ngpus = 4
        for name, opts, n, k in (("n4-g1", ["-g1"], 4, ngpus),
                                 ("n1-c1-g4", ["-c1", "-g4"], 1, ngpus),
                                 ("n2-c1-g2", ["-c1", "-g2"], 2, ngpus),
                                 ("n1-c1-g3", ["-c1", "-g3"], 1, 3),
                                 ("n1-c1-g2", ["-c1", "-g2"], 1, 2)):
            name = "gpus-%s-few-cores-every-gpu-used" % name
            tasks = self.gpu_job(name, opts, n, True)
            if tasks:
                # (the case is the one meant: R gives few cores, k GPUs)
                cores, gpus = self.job_R(tasks[0]["job"]).get(0, (set(), set()))
                few = cores and len(cores) < len(self.core_pus) // 2 and len(gpus) == k
                self.record(name + "-placement", [] if few else [
                    "R gives cores %s and GPUs %s, expected fewer than one socket's cores and %d GPUs"
                    % (sorted(cores), sorted(gpus), k)])

    def case_cannot_bind(self):
        """Without dryrun on this topology (not this machine's), the job's
        CPUs cannot be bound: found in the shell before any fork (the shell
        bound to them and checked), one line from the node, and the task
        left as Flux binds by default: MPIBIND_APPLIED=0, no
        OMP_NUM_THREADS, its CPUs as the job without the plugin had them,
        the job's GPU in CUDA_VISIBLE_DEVICES.  (It was told it had been
        bound: MPIBIND_APPLIED=1, after its own binding had failed.)"""
        base = self.sh(["-N1", "-n1", "-g1", "-o", "cpu-affinity=off"], plugin=False)
        r = self.sh(["-N1", "-n1", "-g1", "-o", "mpibind=v"])
        problems = []
        rec = self.expect_tasks(r, 1, problems).get(0)
        b = sh_tasks(base.stdout, self.parse_list).get(0) or {}
        if rec:
            _, gpus = self.job_R(rec["job"]).get(0, (set(), set()))
            want = {"applied": "0", "omp": "unset", "cpus": b.get("cpus"),
                    "cvd": ",".join(str(g) for g in sorted(gpus))}
            for k, v in want.items():
                if rec.get(k) != v:
                    problems.append("%s=%s, expected %s" % (k, rec.get(k), v))
        lines = mpibind_lines(r)
        if len(lines) != 1 or "cannot bind" not in lines[0] or "left as Flux binds" not in lines[0]:
            problems.append("expected one line saying the job's CPUs cannot be bound, got %s" % lines)
        self.record("gpus-no-dryrun-cannot-bind-applied-0", problems, r)

    MAPPING_OF_JOB = (
        "import sys, mpibind\n"
        "h = mpibind.MpibindHandle(topology_file=sys.argv[1], ntasks=int(sys.argv[2]))\n"
        "h.restrict_ids = sys.argv[3]\n"
        "h.set_gpu_allocation('CUDA_VISIBLE_DEVICES', sys.argv[4])\n"
        "h.mpibind()\n"
        "sys.stdout.write(h.mapping_snprint())\n")

    def mapping_of_job(self, n, pus, gpus):
        """task -> (gpus, cpus) of the library's mapping (the Python module,
        outside Flux) of n tasks on the GPU node's PUs pus holding the GPUs
        gpus: what the plugin's job CPUs and R's GPUs amount to.  (The
        command's preview, `--restrict PUS`, is no longer that: a user's
        restriction keeps every GPU of the node, docs/algorithm.md "No GPU
        left idle"; the job holds only R's.)"""
        argv = [self.args.python, "-c", self.MAPPING_OF_JOB, self.args.gpu_topofile, str(n),
                self.ts.fmt(pus), ",".join(str(g) for g in sorted(gpus))]
        r = self.run(argv, env={"PYTHONPATH": self.args.pymod, "MPIBIND_LIBRARY": self.args.library})
        if r.returncode != 0:
            raise RuntimeError("the mapping of %d tasks on %s with GPUs %s: %s"
                               % (n, self.ts.fmt(pus), sorted(gpus), r.stderr.strip()))
        return {int(m.group(1)): (m.group(3).strip(), self.parse_list(m.group(4)))
                for m in map(REPORT_RE.match, r.stdout.splitlines()) if m}

    def run_all(self):
        self.gpu_job("gpus-g1-per-task-N1-n2-nearest", ["-g1"], 2, True)
        ncores = len(self.core_pus)
        self.gpu_job("gpus-all-N1-n4-nearest", ["-c%d" % (ncores // 4), "-g1"], 4, True)
        self.case_every_gpu_on_a_few_cores()
        # another job holds the first half of the node (its first socket's
        # cores and GPUs): this one's GPU ids are not 0..k-1, and its cores
        # are near them
        hold = self.run(["flux", "submit", "-N1", "-n1", "-c%d" % (ncores // 2), "-g2",
                         "-o", "cpu-affinity=off", "sleep", "60"])
        try:
            self.gpu_job("gpus-after-another-job-within-its-gpus-nearest", ["-g1"], 2, True)
        finally:
            self.run(["flux", "cancel", hold.stdout.strip()])
            self.run(["flux", "job", "wait-event", hold.stdout.strip(), "clean"])
        # another job holds socket 0's two GPUs on one core: this one gets
        # cores of socket 0 and socket 1's GPUs, far from its cores; each
        # task still gets one of them, the mapping of its cores and GPUs
        # (the library keeps a job's allocated GPUs: "No GPU left idle")
        hold = self.run(["flux", "submit", "-N1", "-n1", "-c1", "-g2",
                         "-o", "cpu-affinity=off", "sleep", "60"])
        try:
            name = "gpus-far-from-the-job-cores-each-task-one"
            tasks = self.gpu_job(name, ["-g1"], 2, True)
            if tasks:
                # (the case is the one meant: Flux placed the job so)
                cores, gpus = self.job_R(tasks[0]["job"]).get(0, (set(), set()))
                far = cores and max(cores) < ncores // 2 and gpus == {2, 3}
                self.record(name + "-placement", [] if far else [
                    "R gives cores %s and GPUs %s, expected socket 0's cores and GPUs 2, 3"
                    % (sorted(cores), sorted(gpus))])
        finally:
            self.run(["flux", "cancel", hold.stdout.strip()])
            self.run(["flux", "job", "wait-event", hold.stdout.strip(), "clean"])
        self.case_cannot_bind()
        r = self.sh(["-N1", "-n2", "-o", "cpu-affinity=off", "-o", "mpibind=dryrun"])
        problems = []
        for rank, rec in self.expect_tasks(r, 2, problems).items():
            if rec["cvd"] != "":
                problems.append("rank %d: CUDA_VISIBLE_DEVICES=%r, expected '' (the job has no GPU)"
                                % (rank, rec["cvd"]))
        self.record("gpus-job-without-gpus-sees-none", problems, r)


def inside(args, checks_class):
    ts = load_helpers(args.slurm_dir)
    for key in list(os.environ):
        if ts.SCRUB.match(key):
            del os.environ[key]
    tmp = tempfile.mkdtemp(prefix="mpibind-flux-")
    try:
        checks = checks_class(ts, args, tmp)
        try:
            checks.run_all()
        except Exception as e:
            traceback.print_exc()
            checks.record("harness", ["%s: %s" % (type(e).__name__, e)])
        results = checks.runner.results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = [n for n, ok, _ in results if not ok]
    print("\n%d checks, %d failed%s" % (len(results), len(failed),
                                        (": " + ", ".join(failed)) if failed else ""), flush=True)
    return 1 if failed else 0


def start_instance(args, size, mode, env=None):
    """This script again, inside a fresh Flux test instance."""
    argv = ["flux", "start", "--test-size=%d" % size, args.python, os.path.abspath(__file__),
            "--inside", mode] + sys.argv[1:]
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    try:
        r = subprocess.run(argv, env=e, timeout=1500)
        rc = r.returncode
    except subprocess.TimeoutExpired:
        print("FAIL: the Flux instance (%s) did not finish in time" % mode)
        rc = 1
    print("instance %s: %.1f s, exit %s" % (mode, time.monotonic() - t0, rc), flush=True)
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", help="mpibind_flux.so (not given: the build found no flux-core)")
    ap.add_argument("--rc", help="the build's rc file that loads it")
    ap.add_argument("--preload", required=True, help="libmpibind-preload.so")
    ap.add_argument("--mpibind", required=True, help="the mpibind command (preview)")
    ap.add_argument("--slurm-dir", required=True, help="tests/slurm (test_slurm's runner)")
    ap.add_argument("--gpu-topofile", required=True, help="hwloc XML of a node with 4 NVIDIA GPUs")
    ap.add_argument("--probe-ompi")
    ap.add_argument("--probe-mpich")
    ap.add_argument("--probe-py")
    ap.add_argument("--probe-fortran", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--pymod", required=True, help="the directory holding the mpibind Python package")
    ap.add_argument("--library", required=True, help="libmpibind.so, for the Python package")
    ap.add_argument("--inside", choices=("main", "gpus"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    for what in ("plugin", "rc", "preload", "mpibind", "probe_ompi", "probe_mpich", "probe_py",
                 "gpu_topofile", "pymod", "library"):
        path = getattr(args, what)
        if path is not None and not os.path.exists(path):
            print("ERROR: --%s %s does not exist" % (what.replace("_", "-"), path))
            return 1
        if path is not None:
            setattr(args, what, os.path.abspath(path))
    if args.inside:
        ts = load_helpers(args.slurm_dir)
        args.probe_fortran = ts.fortran_probes(args.probe_fortran)
        if args.probe_fortran is None:
            return 1
        return inside(args, FluxChecks if args.inside == "main" else GpuChecks)

    if shutil.which("flux") is None or args.plugin is None or args.rc is None:
        print("SKIP: %s" % ("Flux is not installed (no flux on PATH)" if shutil.which("flux") is None
                            else "no plugin was built (no flux-core for pkg-config, or "
                                 "-Dflux_plugin=disabled)"))
        return SKIP
    rc = start_instance(args, 2, "main")
    rc_gpus = start_instance(args, 1, "gpus",
                             {"FLUX_HWLOC_XMLFILE": args.gpu_topofile,
                              "FLUX_HWLOC_XMLFILE_NOT_THISSYSTEM": "1"})
    return 1 if rc or rc_gpus else 0


if __name__ == "__main__":
    sys.exit(main())
