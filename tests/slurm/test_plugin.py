#!/usr/bin/python3
"""The Slurm plugin (mpibind_slurm.so) under a real Slurm.

Starts a private two-node Slurm cluster once (slurm_cluster.py) with a
plugstack.conf naming the plugin and four fake GPUs per node (gres over
mknod devices), and rewrites plugstack.conf between cases (srun and each
step's slurmstepd read it afresh) to try the site arguments.  Expectations
come from the `mpibind` command's preview of this machine (never
hard-coded) and, for "left as Slurm bound it", from the same step run
without the plugin.

Cases (the issue's list):
  mapped     srun --mpibind=v -N1 -n2 and -N2 -n4: Open MPI (pmix), MPICH
             (pmi2), the Fortran probes, mpi4py: /proc affinity of the
             process and its threads, OMP_* and MPIBIND_APPLIED=1
             (test_slurm.Runner.check_mapped), the node's report once per
             node;
  gomp       1 task, 2 threads, GNU libgomp: each OpenMP thread on its own
             place (the plugin exports OMP_PLACES before exec);
  draw       --mpibind=draw:PATH: the node's task 0 writes PATH-HOST.xml,
             the mapping's annotated topology (the preload's rule);
  python     a step whose command is Python: bound, but no OMP_PLACES or
             OMP_PROC_BIND unless place_threads (the preload's rule);
  site       default_off (no option: Slurm's binding, no variable; with
             --mpibind: mapped), --mpibind=off, #SBATCH --mpibind=v (every
             srun of the script mapped, the script itself not);
  shared     a step with 1 of the node's 2 cores, with and without
             exclusive_only_off: never outside its core (also under the
             user's MPIBIND_RESTRICT; one that leaves none of it: one line,
             as Slurm bound it), and exactly as Slurm bound it when not
             mapped;
  preload    LD_PRELOAD and the plugin together: applied once (the
             preload's trace stays empty, one report per node);
  bad        a bad --mpibind value: srun, sbatch and salloc refuse it with
             a line naming it (one line: a newline in it escaped, 60000 bad
             words quoted once); a bad environment value: one line, the
             step runs unbound;
  user       a non-root user's step is mapped, also on a node without
             the user's topology cache (discovered in the helper from
             slurmstepd, the cache file written);
  gpus       fake GPUs with a GPU node's XML in MPIBIND_TOPOFILE and
             dryrun: each task's CUDA_VISIBLE_DEVICES within the step's,
             and (Lassen's XML, `nics`) its MPIBIND_NICS and
             UCX_NET_DEVICES the HCAs of its GPUs' socket.

Exit 77 (skip) only when Slurm/munge are not installed or we are not root.
"""

import argparse
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slurm_cluster  # noqa: E402
import test_slurm as ts  # noqa: E402
from mpibind_stage import StageError, stage  # noqa: E402

GPUS_PER_NODE = 4
TEST_USER = "mpibindtest"

# One line per task from a plain shell: what the task got before exec.
SH_PROBE = ("c=$(grep Cpus_allowed_list /proc/self/status | cut -f2); "
            "echo \"TASK $SLURM_PROCID $SLURM_NODEID $SLURM_LOCALID cpus=$c "
            "applied=${MPIBIND_APPLIED-unset} omp=${OMP_NUM_THREADS-unset} "
            "places=${OMP_PLACES-unset} cvd=${CUDA_VISIBLE_DEVICES-unset} "
            "order=${CUDA_DEVICE_ORDER-unset} nics=${MPIBIND_NICS-unset} "
            "ucx=${UCX_NET_DEVICES-unset} uid=$(id -u)\"")
TASK_RE = re.compile(r"^TASK (\d+) (\d+) (\d+) (.*)$")
REPORT_HEAD_RE = re.compile(r"^mpibind: \d+ GPUs on this node\s*$")


def sh_tasks(stdout):
    """rank -> dict(node, local, cpus, applied, omp, places, cvd, uid)."""
    out = {}
    for line in stdout.splitlines():
        m = TASK_RE.match(line.strip())
        if not m:
            continue
        rec = {"node": int(m.group(2)), "local": int(m.group(3))}
        for kv in m.group(4).split():
            k, _, v = kv.partition("=")
            rec[k] = v
        rec["cpuset"] = ts.parse_list(rec.get("cpus"))
        out[int(m.group(1))] = rec
    return out


def mpibind_lines(r):
    return [l for l in (r.stdout + "\n" + r.stderr).splitlines() if l.startswith(("mpibind:", "srun: error: mpibind", "sbatch: error: mpibind", "salloc: error: mpibind"))]


class PluginRunner(ts.Runner):
    def __init__(self, cluster, args):
        super().__init__(cluster, args)
        # as test_slurm.py: TCP between the two "nodes" of this one host,
        # over the loopback only
        self.ompi = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                     "OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "lo"}

    # -- plumbing ----------------------------------------------------------

    def plugstack(self, *site_args):
        """The plugin with these plugstack.conf arguments; None: no plugin."""
        if site_args == (None,):
            self.cluster.set_plugstack([])
        else:
            self.cluster.set_plugstack([" ".join(["required", self.args.plugin] + list(site_args))])

    def run(self, argv, env=None, input=None):
        return ts.run_step(self.cluster, argv, env=env, input=input)

    def sh(self, srun_args, env=None, prefix=()):
        return self.run(list(prefix) + ["srun", "-t", "3", "--kill-on-bad-exit=1"] + list(srun_args)
                        + ["/bin/sh", "-c", SH_PROBE], env=env)

    def expect_tasks(self, r, n):
        problems = []
        if r.returncode != 0:
            problems.append("exit status %s (expected 0)" % r.returncode)
        tasks = sh_tasks(r.stdout)
        if sorted(tasks) != list(range(n)):
            problems.append("task lines for ranks %s, expected 0..%d" % (sorted(tasks), n - 1))
        return tasks, problems

    def expect_node_mapping(self, tasks, problems, nodes, n):
        """Each rank's CPUs and OMP_NUM_THREADS as the preview of its node."""
        for rank, (node, local, k) in ts.block_layout(nodes, n).items():
            rec = tasks.get(rank)
            if rec is None:
                continue
            nths, cpus = self.preview(k)[local]
            if rec["cpuset"] != cpus:
                problems.append("rank %d: cpus %s, expected %s" % (rank, rec["cpus"], ts.fmt(cpus)))
            if rec["omp"] != str(nths) or rec["applied"] != "1":
                problems.append("rank %d: OMP_NUM_THREADS=%s MPIBIND_APPLIED=%s, expected %d and 1"
                                % (rank, rec["omp"], rec["applied"], nths))

    def reports(self, r):
        return [l for l in (r.stdout + "\n" + r.stderr).splitlines() if REPORT_HEAD_RE.match(l)]

    # -- cases -----------------------------------------------------------------

    def run_all(self):
        a = self.args
        self.plugstack()
        self.case_mapped()
        self.case_gomp()
        self.case_interpreter()
        self.case_draw()
        self.case_preload()
        self.case_off_and_default_off()
        self.case_batch()
        self.case_shared()
        self.case_bad()
        self.case_user()
        self.case_tuning_env()
        self.case_gpus()
        self.plugstack()
        del a

    def case_mapped(self):
        a = self.args
        py = [a.python or sys.executable]
        v = ["--mpibind=v"]
        for nodes, n in ((1, 2), (2, 4)):
            if a.probe_ompi:
                r = self.srun("pmix", nodes, n, [a.probe_ompi], extra=v, env=self.ompi)
                self.check_mapped("plugin-openmpi-pmix-N%d-n%d" % (nodes, n), r, nodes, n)
                self.check_reports("plugin-openmpi-pmix-N%d-n%d-report-once-per-node" % (nodes, n), r, nodes)
            if a.probe_mpich:
                r = self.srun("pmi2", nodes, n, [a.probe_mpich], extra=v)
                self.check_mapped("plugin-mpich-pmi2-N%d-n%d" % (nodes, n), r, nodes, n)
            if a.probe_py:
                r = self.srun("pmix", nodes, n, py + [a.probe_py], extra=v, env=self.ompi)
                self.check_mapped("plugin-mpi4py-pmix-N%d-n%d" % (nodes, n), r, nodes, n)
        for name, path in a.probe_fortran:
            if name.startswith("openmpi"):
                r = self.srun("pmix", 2, 4, [path], extra=v, env=self.ompi)
            else:
                r = self.srun("pmi2", 2, 4, [path], extra=v)
            self.check_mapped("plugin-fortran-%s-N2-n4" % name, r, 2, 4)

    def case_interpreter(self):
        """A step whose command is Python: bound and MPIBIND_APPLIED=1, but
        no OMP_PLACES/OMP_PROC_BIND (GNU libgomp, loaded late by an
        extension, would pin the whole process to its first place), unless
        MPIBIND has place_threads."""
        py = self.args.python or sys.executable
        code = ("import os; print('PY', os.environ.get('MPIBIND_APPLIED', 'unset'), "
                "os.environ.get('OMP_PLACES', 'unset'), os.environ.get('OMP_PROC_BIND', 'unset'), "
                "','.join(map(str, sorted(os.sched_getaffinity(0)))))")
        nths, cpus = self.preview(1)[0]
        for words, want_places in (("on", False), ("place_threads", True)):
            r = self.run(["srun", "-t", "3", "-N1", "-n1", "-c2", "--exclusive",
                          "--mpibind=" + words, py, "-c", code])
            problems = []
            got = [l.split() for l in r.stdout.splitlines() if l.startswith("PY ")]
            if r.returncode != 0 or len(got) != 1 or len(got[0]) != 5:
                problems.append("exit %s, expected 0 and one PY line, got %s" % (r.returncode, got))
            else:
                _, applied, places, procbind, aff = got[0]
                if applied != "1" or ts.parse_list(aff) != cpus:
                    problems.append("MPIBIND_APPLIED=%s CPUs %s, expected 1 and %s"
                                    % (applied, aff, ts.fmt(cpus)))
                if want_places and (places == "unset" or procbind == "unset"):
                    problems.append("place_threads: OMP_PLACES=%s OMP_PROC_BIND=%s, expected both set"
                                    % (places, procbind))
                if not want_places and (places != "unset" or procbind != "unset"):
                    problems.append("OMP_PLACES=%s OMP_PROC_BIND=%s in Python, expected both unset"
                                    % (places, procbind))
            self.record("plugin-python-%s" % words.replace("_", "-"), problems, r)

    def case_draw(self):
        """--mpibind=draw:DIR/map.xml: the node's task 0 writes
        DIR/map-HOST.xml (hwloc XML, the format that needs no renderer),
        once, and the step runs mapped."""
        d = tempfile.mkdtemp(prefix="mpibind-plugin-draw-")
        try:
            r = self.sh(["-N1", "-n2", "--exclusive", "--mpibind=draw:%s/map.xml" % d])
            tasks, problems = self.expect_tasks(r, 2)
            files = sorted(os.listdir(d))
            want = "map-%s.xml" % socket.gethostname()
            if files != [want]:
                problems.append("files %s in the directory, expected [%s]" % (files, want))
            else:
                with open(os.path.join(d, want), errors="replace") as f:
                    text = f.read()
                if "<topology" not in text:
                    problems.append("%s is not an hwloc XML topology" % want)
            if any(rec.get("applied") != "1" for rec in tasks.values()):
                problems.append("MPIBIND_APPLIED %s, expected 1 in each task"
                                % [rec.get("applied") for rec in tasks.values()])
            self.record("plugin-draw-node-task-0-writes-PATH-HOST", problems, r)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def check_reports(self, name, r, nodes):
        """The node's mapping, in the report format, once per node."""
        problems = []
        heads = self.reports(r)
        if len(heads) != nodes:
            problems.append("%d 'mpibind: N GPUs on this node' lines, expected %d (one per node)"
                            % (len(heads), nodes))
        got = {}
        for l in (r.stdout + "\n" + r.stderr).splitlines():
            m = ts.PREVIEW_RE.match(l)
            if m:
                key = (int(m.group(1)), int(m.group(2)), ts.fmt(ts.parse_list(m.group(4))))
                got[key] = got.get(key, 0) + 1
        per_node = {}
        for _, (node, local, k) in ts.block_layout(nodes, 2 * nodes).items():
            nths, cpus = self.preview(k)[local]
            key = (local, nths, ts.fmt(cpus))
            per_node[key] = per_node.get(key, 0) + 1
        if got != per_node:
            problems.append("report lines (task, nths, cpus) -> count %s, expected %s"
                            % (sorted(got.items()), sorted(per_node.items())))
        self.record(name, problems, r)

    def case_gomp(self):
        """One task with both cores and 2 OpenMP threads (GNU libgomp): the
        plugin exported OMP_PLACES=threads and OMP_PROC_BIND=spread before
        exec, so libgomp read them and put each thread on its own place."""
        a = self.args
        if not a.probe_ompi:
            return
        # (not check_mapped: libgomp itself binds the initial thread, and
        # the MPI threads it starts afterwards, to the first place)
        r = self.srun("pmix", 1, 1, [a.probe_ompi], extra=["-c2", "--mpibind"], env=self.ompi)
        problems = []
        recs = ts.probe_records(r.stdout)
        nths, cpus = self.preview(1)[0]
        if r.returncode != 0 or len(recs) != 1:
            problems.append("exit %s, %d probe lines (expected 0, 1)" % (r.returncode, len(recs)))
        if nths < 2:
            problems.append("the preview gives 1 task %d thread(s): this machine cannot show places" % nths)
        for rec in recs:
            env = rec.get("env") or {}
            want = {"OMP_NUM_THREADS": str(nths), "OMP_PLACES": "threads", "OMP_PROC_BIND": "spread",
                    "MPIBIND_APPLIED": "1"}
            for var, val in want.items():
                if env.get(var) != val:
                    problems.append("%s=%r, expected %r" % (var, env.get(var), val))
            if rec.get("omp_max_threads") != nths:
                problems.append("omp_get_max_threads() %s, expected %d" % (rec.get("omp_max_threads"), nths))
            places = [frozenset(t) for t in rec.get("omp_threads") or []]
            if len(places) != nths:
                problems.append("%d OpenMP threads, expected %d" % (len(places), nths))
            if any(len(p) != 1 for p in places) or len(set(places)) != len(places):
                problems.append("OpenMP threads on %s: expected each on its own single PU (place)"
                                % [sorted(p) for p in places])
            elif set().union(*places) != cpus:
                problems.append("OpenMP threads on %s, expected the task's CPUs %s"
                                % (sorted(set().union(*places)), ts.fmt(cpus)))
        self.record("plugin-gomp-1-task-2-threads-one-place-each", problems, r)

    def case_preload(self):
        """The preload in the same tasks does nothing: the plugin bound them
        and set MPIBIND_APPLIED; MPIBIND_TRACE would get one line per task
        that the preload applied."""
        a = self.args
        if not a.probe_ompi:
            return
        fd, trace = tempfile.mkstemp(prefix="mpibind-trace-")
        os.close(fd)
        os.unlink(trace)
        try:
            env = dict(self.ompi, LD_PRELOAD=a.preload, MPIBIND_TRACE=trace)
            r = self.srun("pmix", 2, 4, [a.probe_ompi], extra=["--mpibind=v"], env=env)
            self.check_mapped("plugin-and-preload-N2-n4-mapped", r, 2, 4)
            problems = []
            if os.path.exists(trace):
                with open(trace) as f:
                    lines = f.read().splitlines()
                if lines:
                    problems.append("the preload applied too: MPIBIND_TRACE has %s" % lines)
            if len(self.reports(r)) != 2:
                problems.append("%d reports, expected 2 (the plugin's, one per node)" % len(self.reports(r)))
            self.record("plugin-and-preload-applied-once", problems, r)
        finally:
            if os.path.exists(trace):
                os.unlink(trace)

    def slurm_binding(self, srun_args):
        """The step as Slurm alone binds it (no plugin)."""
        self.plugstack(None)
        try:
            return self.sh(srun_args)
        finally:
            self.plugstack()

    def expect_untouched(self, name, r, base, n):
        """Exactly as Slurm bound it: same CPUs as without the plugin, no
        variable of mpibind's."""
        tasks, problems = self.expect_tasks(r, n)
        btasks = sh_tasks(base.stdout)
        for rank, rec in sorted(tasks.items()):
            b = btasks.get(rank)
            if b is None:
                problems.append("rank %d missing from the run without the plugin" % rank)
                continue
            for k in ("cpus", "applied", "omp", "places", "cvd"):
                if rec.get(k) != b.get(k):
                    problems.append("rank %d: %s=%s, without the plugin %s" % (rank, k, rec.get(k), b.get(k)))
        self.record(name, problems, r)
        return tasks

    def case_off_and_default_off(self):
        # Slurm binds the one task to CPU 1 only; mpibind would give it both
        # cores: the two are told apart by the CPUs as well as by the
        # variables.
        step = ["-N1", "-n1", "-c2", "--exclusive", "--cpu-bind=map_cpu:1"]
        base = self.slurm_binding(step)
        nths, cpus = self.preview(1)[0]
        if ts.parse_list((sh_tasks(base.stdout).get(0) or {}).get("cpus")) == cpus:
            self.record("slurm-own-binding-differs", ["Slurm's own binding %s equals the mapping: the"
                                                      " off cases could not tell" % ts.fmt(cpus)], base)
        self.plugstack()
        r = self.sh(step + ["--mpibind=off"])
        self.expect_untouched("plugin-mpibind=off-as-slurm-bound", r, base, 1)
        r = self.sh(step)
        tasks, problems = self.expect_tasks(r, 1)
        self.expect_node_mapping(tasks, problems, 1, 1)
        self.record("plugin-default-on-whole-node-step-mapped", problems, r)

        self.plugstack("default_off")
        r = self.sh(step)
        self.expect_untouched("plugin-default_off-no-option-as-slurm-bound", r, base, 1)
        r = self.sh(step + ["--mpibind"])
        tasks, problems = self.expect_tasks(r, 1)
        self.expect_node_mapping(tasks, problems, 1, 1)
        self.record("plugin-default_off-with-option-mapped", problems, r)
        # MPIBIND=off in the environment without the option: not mapped
        self.plugstack()
        r = self.sh(step, env={"MPIBIND": "off"})
        self.expect_untouched("plugin-MPIBIND=off-env-as-slurm-bound", r, base, 1)

    def case_batch(self):
        """#SBATCH --mpibind=v: every srun of the script is mapped (the site
        has default_off, so nothing else could map them); the script itself
        (the batch step) is not."""
        self.plugstack("default_off")
        out = tempfile.NamedTemporaryFile(prefix="mpibind-batch-", suffix=".out", delete=False)
        out.close()
        script = ("#!/bin/sh\n#SBATCH --mpibind=v\n#SBATCH -N2 --exclusive -t 3\n"
                  "echo \"SCRIPT applied=${MPIBIND_APPLIED-unset} omp=${OMP_NUM_THREADS-unset}\"\n"
                  "srun -N2 -n4 -m block /bin/sh -c '%s'\n"
                  "srun -N1 -n2 /bin/sh -c '%s' | sed 's/^TASK /TASK2 /'\n"
                  "srun -N1 -n2 --mpibind=off /bin/sh -c '%s' | sed 's/^TASK /TASK3 /'\n"
                  % ((SH_PROBE.replace("'", "'\\''"),) * 3))
        r = self.run(["sbatch", "-W", "-o", out.name, "-e", out.name], input=script)
        with open(out.name) as f:
            text = f.read()
        os.unlink(out.name)
        r.stdout += "\n--- job output\n" + text
        problems = []
        if r.returncode != 0:
            problems.append("sbatch -W exit %s" % r.returncode)
        if "SCRIPT applied=unset omp=unset" not in text:
            problems.append("the batch script itself was touched (expected MPIBIND_APPLIED and"
                            " OMP_NUM_THREADS unset in it)")
        tasks = sh_tasks(text)
        if sorted(tasks) != [0, 1, 2, 3]:
            problems.append("first srun: task lines %s, expected 0..3" % sorted(tasks))
        self.expect_node_mapping(tasks, problems, 2, 4)
        second = sh_tasks(text.replace("TASK2 ", "TASK "))
        second = {k: v for k, v in second.items() if ("TASK2 %d " % k) in text}
        if sorted(second) != [0, 1]:
            problems.append("second srun: task lines %s, expected 0..1" % sorted(second))
        self.expect_node_mapping(second, problems, 1, 2)
        third = [l for l in text.splitlines() if l.startswith("TASK3 ")]
        if len(third) != 2 or not all("applied=unset" in l and "omp=unset" in l for l in third):
            problems.append("srun --mpibind=off in the script: expected 2 untouched tasks, got %s" % third)
        if len([l for l in text.splitlines() if REPORT_HEAD_RE.match(l)]) != 3:
            problems.append("expected 3 reports (2 nodes, then 1), got %d"
                            % len([l for l in text.splitlines() if REPORT_HEAD_RE.match(l)]))
        self.record("plugin-sbatch-mpibind=v-every-srun-unless-off", problems, r)
        self.plugstack()

    def case_shared(self):
        """A step with 1 of its node's 2 cores.  A job holding core 0 of n1
        makes Slurm give the step core 1, so that "within its core" is not
        "on CPU 0 by chance".  --cpu-bind=none: Slurm itself leaves the
        task on the whole node, so only the plugin can confine it."""
        holder = subprocess.Popen(
            ["srun", "-w", "n1", "-n1", "-t", "3", "sleep", "120"],
            env=self.cluster.client_env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                q = self.run(["squeue", "-h", "-t", "R", "-o", "%i"])
                if q.stdout.strip():
                    break
                time.sleep(0.3)
            step = ["-w", "n1", "-N1", "-n1", "--cpu-bind=none", "--mpibind=v"]
            base_args = ["-w", "n1", "-N1", "-n1", "--cpu-bind=none"]
            base = self.slurm_binding(base_args)
            r = self.sh(step)
            self.expect_untouched("plugin-shared-step-not-mapped-as-slurm-bound", r, base, 1)
            problems = []
            if not any("left as Slurm bound it" in l for l in mpibind_lines(r)):
                problems.append("no line telling the user who asked (--mpibind=v) that the step was left alone")
            self.record("plugin-shared-step-says-why", problems, r)

            self.plugstack("exclusive_only_off")
            r = self.sh(step)
            tasks, problems = self.expect_tasks(r, 1)
            rec = tasks.get(0) or {}
            # core 0 is the holder's: the step's core is 1 (one PU per core
            # here; the preview of 1 task on PU 1 is PU 1)
            if rec.get("cpuset") != {1}:
                problems.append("cpus %s, expected the step's own core's PU 1 (core 0 is held by"
                                " another job)" % rec.get("cpus"))
            if rec.get("applied") != "1" or rec.get("omp") != "1":
                problems.append("MPIBIND_APPLIED=%s OMP_NUM_THREADS=%s, expected 1 and 1"
                                % (rec.get("applied"), rec.get("omp")))
            self.record("plugin-exclusive_only_off-shared-step-within-its-core", problems, r)

            # the user's MPIBIND_RESTRICT first, then the step's CPUs (the
            # library's job CPUs): PU 1 stays; PU 0 leaves nothing
            r = self.sh(step, env={"MPIBIND_RESTRICT": "1"})
            tasks, problems = self.expect_tasks(r, 1)
            rec = tasks.get(0) or {}
            if rec.get("cpuset") != {1} or rec.get("applied") != "1":
                problems.append("cpus %s MPIBIND_APPLIED=%s, expected PU 1 and 1"
                                % (rec.get("cpus"), rec.get("applied")))
            self.record("plugin-exclusive_only_off-MPIBIND_RESTRICT-within-the-step", problems, r)
            r = self.sh(step, env={"MPIBIND_RESTRICT": "0"})
            tasks, problems = self.expect_tasks(r, 1)
            rec = tasks.get(0) or {}
            brec = sh_tasks(base.stdout).get(0) or {}
            if rec.get("cpus") != brec.get("cpus") or rec.get("applied") != "0":
                problems.append("cpus %s MPIBIND_APPLIED=%s, expected Slurm's %s and 0 (unbound)"
                                % (rec.get("cpus"), rec.get("applied"), brec.get("cpus")))
            lines = mpibind_lines(r)
            if len(lines) != 1 or "MPIBIND_RESTRICT='0'" not in lines[0] \
                    or "left as Slurm bound it" not in lines[0]:
                problems.append("expected one line naming MPIBIND_RESTRICT='0' and left as Slurm bound it, got %s"
                                % lines)
            self.record("plugin-exclusive_only_off-MPIBIND_RESTRICT-outside-the-step-unbound", problems, r)
        finally:
            self.plugstack()
            holder.terminate()
            try:
                holder.wait(timeout=15)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()

    def case_bad(self):
        problems = []
        for cmd in (["srun", "-N1", "-n1", "-t", "1", "--mpibind=v,smt:x", "/bin/true"],
                    ["sbatch", "-N1", "-t", "1", "--mpibind=v,smt:x", "--wrap", "true"],
                    ["salloc", "-N1", "-t", "1", "--mpibind=v,smt:x", "/bin/true"]):
            r = self.run(cmd)
            lines = [l for l in r.stderr.splitlines() if "smt:x" in l]
            if r.returncode == 0:
                problems.append("%s accepted --mpibind=v,smt:x (exit 0)" % cmd[0])
            if not any("--mpibind='v,smt:x'" in l and "expected" in l for l in lines):
                problems.append("%s: no line naming --mpibind='v,smt:x' and what was expected:\n%s"
                                % (cmd[0], ts.indent(r.stderr)))
            said = [l for l in r.stderr.splitlines() if l.strip()]
            if len(said) != 1:
                problems.append("%s: %d lines on stderr, expected one:\n%s"
                                % (cmd[0], len(said), ts.indent(r.stderr)))
            if "Submitted" in r.stdout or "Granted" in r.stderr:
                problems.append("%s ran the job anyway" % cmd[0])
        self.record("plugin-bad-option-refused", problems)

        # A value with a newline, and one of 60000 bad words (as long as an
        # argument of 120 kB): still one line, the value escaped, the
        # length of the line linear in the value's.
        problems = []
        many = "x," * 60000 + "y"
        for value, named in (("v\nx", "--mpibind='v\\nx'"),
                             (many, "--mpibind='x,x,x,")):
            for cmd in (["srun", "-N1", "-n1", "-t", "1", "--mpibind=" + value, "/bin/true"],
                        ["sbatch", "-N1", "-t", "1", "--mpibind=" + value, "--wrap", "true"],
                        ["salloc", "-N1", "-t", "1", "--mpibind=" + value, "/bin/true"]):
                r = self.run(cmd)
                said = [l for l in r.stderr.splitlines() if l.strip()]
                what = "%s --mpibind=<%d bytes>" % (cmd[0], len(value))
                if r.returncode == 0:
                    problems.append("%s: exit 0, expected a refusal" % what)
                if len(said) != 1 or named not in said[0] or "expected" not in said[0]:
                    problems.append("%s: expected one line naming %s and what was expected, "
                                    "got %d lines:\n%s" % (what, named, len(said),
                                                          ts.indent(r.stderr[:2000])))
                elif len(said[0]) > 4 * len(value) + 1024:
                    problems.append("%s: a line of %d bytes" % (what, len(said[0])))
        self.record("plugin-bad-option-escaped-one-line", problems)

        step = ["-N2", "-n2", "-c2", "--exclusive", "--cpu-bind=map_cpu:1"]
        base = self.slurm_binding(step)
        r = self.sh(step + ["--mpibind=v"], env={"MPIBIND_RESTRICT_TYPE": "cores"})
        tasks, problems = self.expect_tasks(r, 2)
        lines = mpibind_lines(r)
        if len(lines) != 1 or "MPIBIND_RESTRICT_TYPE='cores'" not in lines[0]:
            problems.append("expected one line naming MPIBIND_RESTRICT_TYPE='cores', got %s" % lines)
        btasks = sh_tasks(base.stdout)
        for rank, rec in tasks.items():
            if rec["cpus"] != (btasks.get(rank) or {}).get("cpus") or rec["applied"] == "1":
                problems.append("rank %d: cpus %s MPIBIND_APPLIED=%s, expected Slurm's %s, unbound"
                                % (rank, rec["cpus"], rec["applied"], (btasks.get(rank) or {}).get("cpus")))
        self.record("plugin-bad-env-one-line-runs-unbound", problems, r)

        # a value with a newline: still one line, the newline escaped
        r = self.sh(step + ["--mpibind=v"], env={"MPIBIND_RESTRICT_TYPE": "cores\nX"})
        tasks, problems = self.expect_tasks(r, 2)
        err = [l for l in r.stderr.splitlines() if "cores" in l or "left as Slurm bound it" in l]
        if len(err) != 1 or "MPIBIND_RESTRICT_TYPE='cores\\nX'" not in err[0] \
                or "left as Slurm bound it" not in err[0]:
            problems.append("expected one line with MPIBIND_RESTRICT_TYPE='cores\\nX' (escaped) and"
                            " 'left as Slurm bound it', got %s" % err)
        self.record("plugin-bad-env-newline-escaped-one-line", problems, r)

        # A site's typo in plugstack.conf: reported, ignored, jobs run.
        self.plugstack("exclusive_only_of")
        try:
            r = self.sh(["-N1", "-n2", "--exclusive", "--mpibind"])
            tasks, problems = self.expect_tasks(r, 2)
            self.expect_node_mapping(tasks, problems, 1, 2)
            if not any("'exclusive_only_of'" in l and "expected" in l for l in r.stderr.splitlines()):
                problems.append("no line naming the unknown plugstack.conf argument 'exclusive_only_of'")
            self.record("plugin-bad-plugstack-argument-reported-ignored", problems, r)
        finally:
            self.plugstack()

    def case_user(self):
        """Any user who runs srun: a non-root user's step is mapped.  The
        user's srun loads the plugin, and slurmstepd starts the helper as
        the user: both from a second build under /tmp that the user can
        reach (mpibind_stage), since the build tree may be in a directory
        only root enters."""
        created = False
        a = self.args
        try:
            staged = stage([a.plugin, a.helper], options={"slurm_plugin": "enabled"},
                           env=a.stage_env)
        except StageError as e:
            for name in ("plugin-cold-cache-discovery-in-helper", "plugin-non-root-user"):
                self.record(name, [str(e)])
            return
        self.cluster.set_plugstack(["required " + staged.path(a.plugin)])
        try:
            try:
                pwd.getpwnam(TEST_USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh",
                                TEST_USER], check=True, capture_output=True)
                created = True
            uid = pwd.getpwnam(TEST_USER).pw_uid
            # first cold (no cache of the user's), then warm (its cache)
            self.cold_cache_as(uid)
            r = self.run(["runuser", "-u", TEST_USER, "--", "srun", "-t", "3", "-N2", "-n4", "-m", "block",
                          "--exclusive", "--mpibind=v", "/bin/sh", "-c", SH_PROBE])
            tasks, problems = self.expect_tasks(r, 4)
            self.expect_node_mapping(tasks, problems, 2, 4)
            for rank, rec in tasks.items():
                if rec.get("uid") != str(uid):
                    problems.append("rank %d ran as uid %s, expected %d" % (rank, rec.get("uid"), uid))
            self.record("plugin-non-root-user", problems, r)
        except (subprocess.CalledProcessError, KeyError) as e:
            self.record("plugin-non-root-user", ["cannot create user %s: %s" % (TEST_USER, e)])
        finally:
            if created:
                subprocess.run(["userdel", TEST_USER], capture_output=True)
            self.plugstack()
            staged.remove()

    def cold_cache_as(self, uid):
        """A user's step on a node without the user's topology cache: the
        plugin, in slurmstepd as that user, discovers the node in the
        preload's helper (mpibind-discover) and writes the cache file for
        the next steps; the step is mapped."""
        cache = "/tmp/mpibind-%d" % uid
        if os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("MPIBIND_CACHE_DIR"):
            self.record("plugin-cold-cache-discovery-in-helper",
                        ["the cluster's daemons have XDG_RUNTIME_DIR/MPIBIND_CACHE_DIR: "
                         "cannot tell where the plugin's cache is"])
            return
        if os.path.isdir(cache):
            for name in os.listdir(cache):
                if name.startswith("topo-"):
                    os.unlink(os.path.join(cache, name))
        t0 = time.time()
        r = self.run(["runuser", "-u", TEST_USER, "--", "srun", "-t", "3", "-N2", "-n4", "-m", "block",
                      "--exclusive", "--mpibind=v", "/bin/sh", "-c", SH_PROBE])
        tasks, problems = self.expect_tasks(r, 4)
        self.expect_node_mapping(tasks, problems, 2, 4)
        written = []
        if os.path.isdir(cache):
            for name in os.listdir(cache):
                path = os.path.join(cache, name)
                st = os.stat(path)
                if name.startswith("topo-") and name.endswith(".xml") and \
                        st.st_uid == uid and st.st_mtime >= t0 - 1:
                    with open(path, errors="replace") as f:
                        if "<topology" in f.read():
                            written.append(name)
        if not written:
            problems.append("no topology cache file written in %s by the step's discovery" % cache)
        self.record("plugin-cold-cache-discovery-in-helper", problems, r)

    def preview_with(self, k, *opts):
        """task -> (nths, cpus) of `mpibind -n k opts...`."""
        r = subprocess.run([self.args.mpibind, "-n", str(k)] + list(opts), capture_output=True,
                           text=True, timeout=60)
        tasks = {}
        for line in r.stdout.splitlines():
            m = ts.PREVIEW_RE.match(line)
            if m:
                tasks[int(m.group(1))] = (int(m.group(2)), ts.parse_list(m.group(4)))
        if r.returncode != 0 or sorted(tasks) != list(range(k)):
            raise RuntimeError("mpibind -n %d %s: exit %d\n%s%s" % (k, " ".join(opts), r.returncode,
                                                                   r.stdout, r.stderr))
        return tasks

    def case_tuning_env(self):
        """The job's MPIBIND_RESTRICT and MPIBIND_TOPOFILE are honoured, and
        `strict` turns a problem into failed tasks."""
        step = ["-N1", "-n1", "-c2", "--exclusive"]
        want = self.preview_with(1, "--restrict", "1")[0]
        r = self.sh(step + ["--mpibind"], env={"MPIBIND_RESTRICT": "1"})
        tasks, problems = self.expect_tasks(r, 1)
        rec = tasks.get(0) or {}
        if rec.get("cpuset") != want[1] or rec.get("omp") != str(want[0]) or rec.get("applied") != "1":
            problems.append("cpus %s OMP_NUM_THREADS=%s MPIBIND_APPLIED=%s, expected %s, %d, 1 (mpibind -n 1"
                            " --restrict 1)" % (rec.get("cpus"), rec.get("omp"), rec.get("applied"),
                                                ts.fmt(want[1]), want[0]))
        self.record("plugin-MPIBIND_RESTRICT-honoured", problems, r)

        # a file of another node without dryrun: refused by each node, which
        # then runs as Slurm bound it
        step2 = ["-N2", "-n2", "-c2", "--exclusive", "--cpu-bind=map_cpu:1"]
        base = self.slurm_binding(step2)
        r = self.sh(step2 + ["--mpibind"], env={"MPIBIND_TOPOFILE": self.args.gpu_topofile})
        tasks, problems = self.expect_tasks(r, 2)
        lines = mpibind_lines(r)
        if len(lines) != 2 or not all("MPIBIND_TOPOFILE=" in l and "does not describe this node" in l
                                      for l in lines):
            problems.append("expected one 'does not describe this node' line per node, got %s" % lines)
        btasks = sh_tasks(base.stdout)
        for rank, rec in tasks.items():
            if rec["cpus"] != (btasks.get(rank) or {}).get("cpus") or rec["applied"] == "1":
                problems.append("rank %d: cpus %s MPIBIND_APPLIED=%s, expected Slurm's %s, unbound"
                                % (rank, rec["cpus"], rec["applied"], (btasks.get(rank) or {}).get("cpus")))
        self.record("plugin-foreign-MPIBIND_TOPOFILE-one-line-per-node-unbound", problems, r)

        r = self.sh(["-N1", "-n1", "-c2", "--exclusive", "--mpibind=strict"],
                    env={"MPIBIND_RESTRICT_TYPE": "cores"})
        problems = []
        if r.returncode == 0 or sh_tasks(r.stdout):
            problems.append("strict with a bad value: exit %s and %d task lines, expected failed tasks"
                            % (r.returncode, len(sh_tasks(r.stdout))))
        if not any("MPIBIND_RESTRICT_TYPE='cores'" in l and "strict" in l for l in mpibind_lines(r)):
            problems.append("no line naming MPIBIND_RESTRICT_TYPE='cores' and strict")
        self.record("plugin-strict-fails-the-tasks", problems, r)

    def case_gpus(self):
        """Fake GPUs: Slurm gives the step 2 of the node's 4; mpibind maps the
        GPU node of MPIBIND_TOPOFILE (dryrun: another node's file) within
        them.  Without the allocation, 2 tasks on that node would get GPUs
        0,1 and 2,3."""
        a = self.args
        for name, gpu_args, nodes, n in (("gpus=2-N1-n2", ["--gpus=2"], 1, 2),
                                         ("gpus-per-task=1-N2-n4", ["--gpus-per-task=1"], 2, 4)):
            step = ["-N%d" % nodes, "-n%d" % n, "-m", "block", "--exclusive"] + gpu_args
            base = self.slurm_binding(step)
            r = self.sh(step + ["--mpibind=dryrun,v,nics"], env={"MPIBIND_TOPOFILE": a.gpu_topofile})
            tasks, problems = self.expect_tasks(r, n)
            btasks = sh_tasks(base.stdout)
            step_gpus = {}
            for rank, b in btasks.items():
                step_gpus.setdefault(b["node"], set()).update(x for x in b["cvd"].split(",") if x and x != "unset")
            used = {}
            for rank, rec in sorted(tasks.items()):
                mine = [x for x in rec["cvd"].split(",") if x and x != "unset"]
                allowed = step_gpus.get(rec["node"], set())
                if not mine or not set(mine) <= allowed:
                    problems.append("rank %d (node %d): CUDA_VISIBLE_DEVICES=%s, expected a non-empty part"
                                    " of the step's GPUs %s" % (rank, rec["node"], rec["cvd"], sorted(allowed)))
                used.setdefault(rec["node"], []).extend(mine)
                if rec["order"] != "PCI_BUS_ID" or rec["applied"] != "1":
                    problems.append("rank %d: CUDA_DEVICE_ORDER=%s MPIBIND_APPLIED=%s, expected PCI_BUS_ID, 1"
                                    % (rank, rec["order"], rec["applied"]))
                if rec["cpus"] != (btasks.get(rank) or {}).get("cpus"):
                    problems.append("rank %d: dryrun changed the CPUs to %s" % (rank, rec["cpus"]))
                # Lassen: GPUs 0, 1 and mlx5_0, mlx5_1 on socket 0; GPUs 2,
                # 3 and mlx5_2, mlx5_3 on socket 1.
                near = {"mlx5_%d" % i for g in mine if g.isdigit()
                        for i in ((0, 1) if int(g) < 2 else (2, 3))}
                nics = rec.get("nics", "unset").split(",")
                if not near or not set(nics) <= near or rec.get("ucx") != \
                        ",".join(n + ":1" for n in nics):
                    problems.append("rank %d: GPUs %s MPIBIND_NICS=%s UCX_NET_DEVICES=%s, expected "
                                    "some of %s (port 1)" % (rank, mine, rec.get("nics"),
                                                             rec.get("ucx"), sorted(near)))
            for node, gl in used.items():
                if len(gl) != len(set(gl)):
                    problems.append("node %d: tasks share GPUs %s" % (node, gl))
            if len(self.reports(r)) != nodes:
                problems.append("%d reports, expected %d" % (len(self.reports(r)), nodes))
            self.record("plugin-gpus-%s-within-step-gpus" % name, problems, r)

        # A step that shares its node (exclusive_only_off) gets only the
        # GPUs Slurm gave it, none when it asked for none.
        self.plugstack("exclusive_only_off")
        try:
            for name, gpu_args in (("no-gpus", []), ("gpus=1", ["--gpus=1"])):
                step = ["-w", "n1", "-N1", "-n1"] + gpu_args
                base = self.slurm_binding(step)
                self.plugstack("exclusive_only_off")
                r = self.sh(step + ["--mpibind=dryrun"], env={"MPIBIND_TOPOFILE": a.gpu_topofile})
                tasks, problems = self.expect_tasks(r, 1)
                rec, b = tasks.get(0) or {}, sh_tasks(base.stdout).get(0) or {}
                allowed = set(x for x in b.get("cvd", "").split(",") if x and x != "unset")
                mine = set(x for x in rec.get("cvd", "").split(",") if x and x != "unset")
                if rec.get("applied") != "1":
                    problems.append("MPIBIND_APPLIED=%s, expected 1 (mapped)" % rec.get("applied"))
                if not mine <= allowed or (allowed and not mine):
                    problems.append("CUDA_VISIBLE_DEVICES=%s, expected %s (the step's GPUs: %s)"
                                    % (rec.get("cvd"), "a part of them" if allowed else "none",
                                       sorted(allowed) or "none"))
                self.record("plugin-gpus-shared-step-%s-only-its-gpus" % name, problems, r)
        finally:
            self.plugstack()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin", required=True, help="mpibind_slurm.so")
    ap.add_argument("--helper", required=True, help="mpibind-discover, which the plugin starts")
    ap.add_argument("--preload", required=True, help="libmpibind-preload.so")
    ap.add_argument("--mpibind", required=True, help="the mpibind command (preview)")
    ap.add_argument("--gpu-topofile", required=True, help="hwloc XML of a node with 4 NVIDIA GPUs")
    ap.add_argument("--probe-ompi")
    ap.add_argument("--probe-mpich")
    ap.add_argument("--probe-py")
    ap.add_argument("--probe-fortran", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--python")
    ap.add_argument("--keep-logs", metavar="DIR")
    args = ap.parse_args()

    args.probe_fortran = ts.fortran_probes(args.probe_fortran)
    if args.probe_fortran is None:
        return 1
    for what in ("plugin", "helper", "preload", "mpibind", "gpu_topofile",
                 "probe_ompi", "probe_mpich", "probe_py"):
        path = getattr(args, what)
        if path is not None:
            if not os.path.exists(path):
                print("ERROR: --%s %s does not exist" % (what.replace("_", "-"), path))
                return 1
            setattr(args, what, os.path.abspath(path))

    # what mpibind_stage reads, kept before run_checks scrubs MPIBIND* from
    # the environment the cluster inherits
    args.stage_env = {k: v for k, v in os.environ.items() if k.startswith("MPIBIND_STAGE_")}
    missing = slurm_cluster.missing_components()
    if missing:
        print("SKIP: no real Slurm here: missing " + ", ".join(missing))
        return slurm_cluster.SKIP
    return ts.run_checks(PluginRunner, args, plugstack=[], gpus=GPUS_PER_NODE)


if __name__ == "__main__":
    sys.exit(main())
