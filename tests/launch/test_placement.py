"""The preload on real nodes (OpenMP threads placed, interpreters, the job's
CPUs, per-task GPU lists): real launches under mpirun.openmpi,
mpiexec.mpich and srun (a private Slurm, tests/slurm/slurm_cluster.py).

- TestOpenMP (7.1): OpenMP threads placed one per place for GNU libgomp too
  (the preload re-executes a program whose runtime read OMP_* before it
  ran), for C, C++ and Fortran programs, OpenMP inside a shared library,
  LLVM libomp; the MPIBIND words that keep the variables unset leave the
  threads unplaced; a user's OMP_PLACES never spills a rank's threads onto
  another rank's CPUs; libgomp preloaded before the preload.
- TestInterpreter (7.2): a Python rank keeps its CPUs when it loads GNU
  libgomp late (preload, wrapper, mpibind.mpi.node_mapping(apply=True));
  `place_threads` asks for per-thread placement.
- TestJobCpus (7.4): launches confined by affinity (taskset) stay there.
- TestPerTaskGpu (7.5): per-task GPU lists give one node mapping.
- TestSrun: the srun cases of all of these, and of Slurm's own step CPUs
  and --gpus-per-task with fake GPU gres.

Expected values come from the mpibind command's preview (never from the
program under test) and from the machine (os.sched_getaffinity).
"""

import json
import os
import subprocess
import sys
import tempfile

import pytest

from launchlib import (PYTHON, REPORT_RE, base_env, cfg, have, launch,
                       parse_list, preview)

OMP_PROC_BIND_SPREAD = 4          # omp_proc_bind_spread (OpenMP 4.0)
OMP_KINDS = ["C", "C_SHLIB", "CPP", "FORTRAN", "C_LLVM"]
LAUNCHERS = {"openmpi": "mpirun.openmpi", "mpich": "mpiexec.mpich"}
TIMEOUT = 60
TRACE_KEYS = ("host", "pid", "task", "topology", "bound", "cpus")


def need(launcher):
    if not have(LAUNCHERS[launcher]):
        pytest.skip(f"{LAUNCHERS[launcher]} is not installed")


def omp_probe(kind):
    p = cfg("MPIBIND_TEST_OMP_PROBE_" + kind, required=False)
    if not p:
        pytest.skip(f"no OpenMP probe {kind} (compiler or OpenMP runtime absent)")
    return p


def omp_records(stdout):
    """The OMPPLACE lines, by order of appearance; 'threads' as lists of sets."""
    recs = []
    for line in stdout.splitlines():
        i = line.find("OMPPLACE ")
        if i < 0:
            continue
        rec = json.loads(line[i + 9:])
        if "threads_lists" in rec:       # the Fortran probe
            rec["threads"] = [parse_list(s) for s in rec.pop("threads_lists")]
        else:
            rec["threads"] = [set(t) for t in rec["threads"]]
        rec["cpus"] = parse_list(rec["cpus"])
        recs.append(rec)
    return recs


def read_trace(path):
    with open(path) as f:
        return [dict(kv.split("=", 1) for kv in line.split()) for line in f]


@pytest.fixture(scope="session", autouse=True)
def cache_dir():
    """A private topology cache for this run."""
    with tempfile.TemporaryDirectory(prefix="placement-cache-") as d:
        os.environ["MPIBIND_CACHE_DIR"] = d
        yield d


@pytest.fixture
def trace(tmp_path):
    return str(tmp_path / "trace")


def check_placed(rec, task, ctx):
    """Thread t runs on exactly the t-th CPU of the task; one place per CPU;
    proc-bind spread."""
    order = sorted(task.cpus)
    assert task.nthreads == len(order), f"premise: one thread per CPU, {task}"
    assert len(rec["threads"]) == task.nthreads, ctx
    for t, aff in enumerate(rec["threads"]):
        assert aff == {order[t]}, f"thread {t}: expected CPU {order[t]}; {ctx}"
    assert rec["num_places"] == len(order), ctx
    assert rec["proc_bind"] == OMP_PROC_BIND_SPREAD, ctx


def check_once(path, pids):
    """One application per process, bound and checked (the re-exec keeps
    the pid and does not apply again)."""
    lines = read_trace(path)
    assert sorted(int(l["pid"]) for l in lines) == sorted(pids), lines
    assert all(l["bound"] == "1" for l in lines), lines


# --- 7.1 OpenMP threads placed ----------------------------------------------

class TestOpenMP:
    @pytest.mark.parametrize("launcher", list(LAUNCHERS))
    @pytest.mark.parametrize("kind", OMP_KINDS)
    def test_one_rank_two_threads(self, launcher, kind, trace):
        need(launcher)
        task = preview(1)[0]
        r = launch(launcher, 1, [omp_probe(kind)], env={"MPIBIND_TRACE": trace})
        recs = omp_records(r.stdout)
        assert r.rc == 0 and len(recs) == 1, str(r)
        check_placed(recs[0], task, str(r))
        assert recs[0]["cpus"] <= task.cpus, str(r)
        if "pid" in recs[0]:
            check_once(trace, [recs[0]["pid"]])
        assert r.stderr_lines() == [], str(r)

    @pytest.mark.parametrize("launcher", list(LAUNCHERS))
    @pytest.mark.parametrize("kind", ["C", "FORTRAN"])
    def test_words_leave_threads_unplaced(self, launcher, kind):
        """MPIBIND=omp_places,omp_proc_bind: nothing asks the runtime to
        bind, so there is no re-exec and the threads share the task's CPUs
        (this is what the placement test sees without the preload's fix)."""
        need(launcher)
        task = preview(1)[0]
        r = launch(launcher, 1, [omp_probe(kind)],
                   env={"MPIBIND": "omp_places,omp_proc_bind"})
        recs = omp_records(r.stdout)
        assert r.rc == 0 and len(recs) == 1, str(r)
        rec = recs[0]
        assert rec["cpus"] == task.cpus, str(r)
        assert [t == task.cpus for t in rec["threads"]] == [True] * task.nthreads, str(r)
        assert rec["num_places"] == 0 and rec["proc_bind"] == 0, str(r)

    @pytest.mark.parametrize("launcher", list(LAUNCHERS))
    @pytest.mark.parametrize("kind", ["C", "C_LLVM"])
    def test_user_places_stay_in_the_rank(self, launcher, kind):
        """OMP_PLACES=threads set by the user at launch: libgomp built its
        places from the launch mask (both CPUs); after the re-exec they are
        the rank's own, and no thread leaves the rank's CPUs."""
        need(launcher)
        m = preview(2)
        r = launch(launcher, 2, [omp_probe(kind)], env={"OMP_PLACES": "threads"})
        recs = omp_records(r.stdout)
        assert r.rc == 0 and len(recs) == 2, str(r)
        # each rank's CPUs are one task's; the two ranks have distinct tasks
        owners = []
        for rec in recs:
            task = next((t for t in m if rec["cpus"] <= t.cpus), None)
            assert task is not None, f"rank on {rec['cpus']}, no task's CPUs {m}\n{r}"
            owners.append(task.task)
            for aff in rec["threads"]:
                assert aff and aff <= task.cpus, f"thread on {aff} outside {task}\n{r}"
            assert rec["num_places"] == len(task.cpus), str(r)
        assert sorted(owners) == [0, 1], str(r)

    @pytest.mark.parametrize("launcher", list(LAUNCHERS))
    def test_libgomp_preloaded_first(self, launcher, trace):
        """LD_PRELOAD="libgomp.so.1 libmpibind-preload.so": the preload's
        constructor may run before libgomp's; the threads are placed all
        the same (not all on one CPU)."""
        need(launcher)
        task = preview(1)[0]
        r = launch(launcher, 1, [omp_probe("C")], preload=False,
                   env={"LD_PRELOAD": "libgomp.so.1 " + cfg("MPIBIND_TEST_PRELOAD"),
                        "MPIBIND_TRACE": trace})
        recs = omp_records(r.stdout)
        assert r.rc == 0 and len(recs) == 1, str(r)
        check_placed(recs[0], task, str(r))
        check_once(trace, [recs[0]["pid"]])

    def test_no_reexec_under_ld_so(self, trace):
        """`ld.so ./prog`: /proc/self/exe is the loader, so no re-exec; the
        task is bound, the program runs once."""
        ldso = next((p for p in ("/lib64/ld-linux-x86-64.so.2",
                                 "/lib/ld-linux-aarch64.so.1") if os.path.exists(p)), None)
        if ldso is None:
            pytest.skip("no known dynamic loader path")
        need("mpich")
        task = preview(1)[0]
        r = launch("mpich", 1, [ldso, omp_probe("C")], env={"MPIBIND_TRACE": trace})
        recs = omp_records(r.stdout)
        assert r.rc == 0 and len(recs) == 1, str(r)
        assert recs[0]["cpus"] == task.cpus and recs[0]["num_places"] == 0, str(r)
        check_once(trace, [recs[0]["pid"]])

    def test_under_valgrind(self, trace):
        """valgrind -- prog: the preload applies in valgrind's launcher (the
        rank's first process, no OpenMP runtime), which then starts the
        tool and the program with the variables set; no re-exec is tried
        under the tool, the program runs once, placed."""
        import shutil
        if not shutil.which("valgrind"):
            pytest.skip("valgrind is not installed")
        need("mpich")
        task = preview(1)[0]
        r = launch("mpich", 1, ["valgrind", "-q", omp_probe("C")],
                   env={"MPIBIND_TRACE": trace}, timeout=120)
        recs = omp_records(r.stdout)
        assert r.rc == 0 and len(recs) == 1, str(r)
        check_placed(recs[0], task, str(r))
        check_once(trace, [recs[0]["pid"]])

    def test_verbose_says_restart(self):
        need("mpich")
        r = launch("mpich", 1, [omp_probe("C")], env={"MPIBIND": "v"})
        assert r.rc == 0, str(r)
        lines = [l for l in r.stderr.splitlines() if "starting the program again" in l]
        assert len(lines) == 1 and "omp_get_proc_bind" in lines[0], str(r)


# --- 7.2 interpreters -----------------------------------------------------

LATE_OMP = """
import ctypes, json, os, threading
res = {"before": sorted(os.sched_getaffinity(0))}
gomp = ctypes.CDLL("libgomp.so.1"); gomp.omp_get_max_threads()
res["after"] = sorted(os.sched_getaffinity(0))
def run(): res["thread"] = sorted(os.sched_getaffinity(0))
t = threading.Thread(target=run); t.start(); t.join()
res["env"] = {k: os.environ.get(k) for k in ("OMP_PLACES", "OMP_PROC_BIND", "OMP_NUM_THREADS")}
print("LATE " + json.dumps(res), flush=True)
"""

NODE_MAPPING = """
from mpibind.mpi import node_mapping
import sys
node_mapping(apply=True, place_threads=len(sys.argv) > 1)
""" + LATE_OMP


def late_records(r):
    return [json.loads(l[l.index("LATE ") + 5:]) for l in r.stdout.splitlines() if "LATE " in l]


def check_late(r, task):
    recs = late_records(r)
    assert r.rc == 0 and len(recs) == 1, str(r)
    rec = recs[0]
    for k in ("before", "after", "thread"):
        assert set(rec[k]) == task.cpus, f"{k}: {rec[k]}, expected {sorted(task.cpus)}\n{r}"
    assert rec["env"]["OMP_PLACES"] is None and rec["env"]["OMP_PROC_BIND"] is None, str(r)
    assert rec["env"]["OMP_NUM_THREADS"] == str(task.nthreads), str(r)
    return rec


def py_env():
    env = {"PYTHONPATH": cfg("MPIBIND_TEST_PYTHONPATH")}
    if os.environ.get("MPIBIND_LIBRARY"):
        env["MPIBIND_LIBRARY"] = os.environ["MPIBIND_LIBRARY"]
    return env


class TestInterpreter:
    def test_preload(self):
        need("openmpi")
        r = launch("openmpi", 1, [PYTHON, "-c", LATE_OMP], launcher_opts=["--bind-to", "none"])
        check_late(r, preview(1)[0])

    def test_wrapper(self):
        need("openmpi")
        r = launch("openmpi", 1, [cfg("MPIBIND_TEST_CMD"), "--", PYTHON, "-c", LATE_OMP],
                   preload=False, launcher_opts=["--bind-to", "none"])
        check_late(r, preview(1)[0])

    def test_node_mapping_apply(self):
        need("openmpi")
        r = launch("openmpi", 1, [PYTHON, "-c", NODE_MAPPING], preload=False,
                   env=py_env(), launcher_opts=["--bind-to", "none"])
        check_late(r, preview(1)[0])

    def test_place_threads_token(self):
        """The explicit request: OMP_PLACES/OMP_PROC_BIND exported for the
        interpreter too (its runtime then places its threads)."""
        need("openmpi")
        task = preview(1)[0]
        for prog, preload, env in (
                ([PYTHON, "-c", LATE_OMP], True, {"MPIBIND": "place_threads"}),
                ([cfg("MPIBIND_TEST_CMD"), "--", PYTHON, "-c", LATE_OMP], False,
                 {"MPIBIND": "place_threads"}),
                ([PYTHON, "-c", NODE_MAPPING, "place"], False, py_env())):
            r = launch("openmpi", 1, prog, preload=preload, env=env,
                       launcher_opts=["--bind-to", "none"])
            recs = late_records(r)
            assert r.rc == 0 and len(recs) == 1, str(r)
            assert recs[0]["env"]["OMP_PLACES"] == "threads", str(r)
            assert recs[0]["env"]["OMP_PROC_BIND"] == "spread", str(r)
            assert set(recs[0]["before"]) == task.cpus, str(r)
            assert set(recs[0]["after"]) < task.cpus, str(r)   # the first place


# --- 7.4 the job's CPUs ------------------------------------------------------

def run_cmd(argv, env=None, timeout=TIMEOUT):
    run_env = base_env()
    if os.environ.get("MPIBIND_CACHE_DIR"):
        run_env["MPIBIND_CACHE_DIR"] = os.environ["MPIBIND_CACHE_DIR"]
    run_env.update(env or {})
    p = subprocess.run(["timeout", "-k", "5", str(timeout), *argv], env=run_env,
                       capture_output=True, text=True, timeout=timeout + 15)
    return p


ALLOWED = "grep Cpus_allowed_list /proc/self/status"


def allowed_lists(stdout):
    return [parse_list(l.split(":", 1)[1]) for l in stdout.splitlines()
            if l.startswith("Cpus_allowed_list")]


@pytest.fixture(scope="module")
def two_cpus():
    if len(os.sched_getaffinity(0)) < 2 or 1 not in os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")


class TestJobCpus:
    def test_taskset_mpich(self, two_cpus):
        need("mpich")
        pre = cfg("MPIBIND_TEST_PRELOAD")
        p = run_cmd(["taskset", "-c", "1", "mpiexec.mpich", "-n", "2", "-genv", "LD_PRELOAD", pre,
                     "-genv", "MPIBIND", "v", "sh", "-c", ALLOWED])
        assert p.returncode == 0, p
        assert allowed_lists(p.stdout) == [{1}, {1}], p
        said = [l for l in p.stderr.splitlines() if "mapping within CPUs 1:" in l]
        assert len(said) == 1 and "launcher" in said[0], p.stderr

    def test_taskset_openmpi(self, two_cpus):
        need("openmpi")
        pre = cfg("MPIBIND_TEST_PRELOAD")
        p = run_cmd(["taskset", "-c", "1", "mpirun.openmpi", "--allow-run-as-root",
                     "--oversubscribe", "--bind-to", "none", "-np", "2", "-x", "LD_PRELOAD=" + pre,
                     "sh", "-c", ALLOWED])
        assert p.returncode == 0, p
        assert allowed_lists(p.stdout) == [{1}, {1}], p

    def test_taskset_wrapper(self, two_cpus):
        p = run_cmd(["taskset", "-c", "1", cfg("MPIBIND_TEST_CMD"), "-v", "--", "sh", "-c", ALLOWED])
        assert p.returncode == 0, p
        assert allowed_lists(p.stdout) == [{1}], p
        assert any("mapping within CPUs 1: this process's CPUs at start" in l
                   for l in p.stderr.splitlines()), p.stderr

    def test_restrict_outside_the_job(self, two_cpus):
        """A restriction that leaves none of the job's CPUs: one line naming
        both, the task unbound (still within CPU 1)."""
        p = run_cmd(["taskset", "-c", "1", cfg("MPIBIND_TEST_CMD"), "--restrict", "0", "--",
                     "sh", "-c", ALLOWED])
        lines = [l for l in p.stderr.splitlines() if "mpibind" in l]
        assert len(lines) == 1 and "job's CPUs 1" in lines[0] and "'0'" in lines[0], p.stderr
        assert allowed_lists(p.stdout) == [{1}], p

    def test_whole_node_says_nothing(self):
        need("mpich")
        r = launch("mpich", 2, ["sh", "-c", ALLOWED], env={"MPIBIND": "v"})
        assert r.rc == 0, str(r)
        assert not any("mapping within" in l for l in r.stderr.splitlines()), str(r)
        m = preview(2)
        assert sorted(map(sorted, allowed_lists(r.stdout))) == sorted(sorted(t.cpus) for t in m), str(r)


# --- 7.5 per-task GPU lists ----------------------------------------------

PER_TASK_SH = ('export CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK; '
               'exec env LD_PRELOAD="$MPIBIND_TEST_PRELOAD_LIB" sh -c '
               '"echo TASK \\$OMPI_COMM_WORLD_LOCAL_RANK \\$CUDA_VISIBLE_DEVICES \\$OMP_NUM_THREADS"')


def lassen():
    path = os.path.join(cfg("MPIBIND_TEST_TOPOLOGIES"), "coral-lassen.xml")
    assert os.path.isfile(path)
    return path


def check_per_task(tasks, traces, m, ctx):
    """Every task keeps its GPU and gets the CPUs of the preview's task that
    has that GPU: with 4 tasks on the 4-GPU Lassen node, 10 cores each."""
    by_gpu = {t.gpus: t for t in m}
    assert sorted(by_gpu) == ["0", "1", "2", "3"], m
    assert len(tasks) == 4 and len(traces) == 4, ctx
    for local, gpu, nths in tasks:
        t = by_gpu[gpu]
        assert nths == str(t.nthreads) == "10", ctx
    got = {int(l["task"].split("/")[0]): parse_list(l["cpus"]) for l in traces}
    for local, gpu, nths in tasks:
        assert got[local] == by_gpu[gpu].cpus, f"task {local} (GPU {gpu}): {got[local]}; {ctx}"


class TestPerTaskGpu:
    def test_script(self, trace):
        """Per-task GPU lists (as Slurm --gpus-per-task gives): each task starts with its own
        CUDA_VISIBLE_DEVICES (local rank i gets GPU i)."""
        need("openmpi")
        m = preview(4, "--topology", lassen())
        r = launch("openmpi", 4, ["sh", "-c", PER_TASK_SH], preload=False,
                   env={"MPIBIND": "dryrun,v", "MPIBIND_TOPOFILE": lassen(),
                        "MPIBIND_TRACE": trace,
                        "MPIBIND_TEST_PRELOAD_LIB": cfg("MPIBIND_TEST_PRELOAD")})
        assert r.rc == 0, str(r)
        tasks = [tuple(l.split()[1:4]) for l in r.stdout.splitlines() if l.startswith("TASK ")]
        tasks = [(int(a), b, c) for a, b, c in tasks]
        assert sorted(g for _, g, _ in tasks) == ["0", "1", "2", "3"], str(r)
        check_per_task(tasks, read_trace(trace), m, str(r))
        rl = [l.rstrip() for l in r.stderr.splitlines() if REPORT_RE.match(l)]
        assert rl == [t.line for t in m], str(r)

    def test_exported_list_is_the_node_allocation(self, trace):
        """The same value exported for the whole launch (in the launcher's
        environment too) is the node's allocation, as before: 2 GPUs."""
        need("openmpi")
        r = launch("openmpi", 4, ["sh", "-c", "echo TASK $CUDA_VISIBLE_DEVICES"],
                   env={"MPIBIND": "dryrun,v", "MPIBIND_TOPOFILE": lassen(),
                        "CUDA_VISIBLE_DEVICES": "0,1"})
        assert r.rc == 0, str(r)
        assert "mpibind: 2 GPUs on this node" in r.stderr, str(r)
        assert sorted(l.split()[1] for l in r.stdout.splitlines()
                      if l.startswith("TASK ")) == ["0", "0", "1", "1"], str(r)


# --- srun ----------------------------------------------------------------------

def _slurm_module():
    d = cfg("MPIBIND_TEST_SLURM_DIR")
    if d not in sys.path:
        sys.path.insert(0, d)
    import slurm_cluster
    return slurm_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A private two-node Slurm with 4 fake GPUs per node (gres)."""
    sc = _slurm_module()
    devdir = str(tmp_path_factory.mktemp("dev"))
    for i in range(4):
        os.mknod(os.path.join(devdir, f"nvidia{i}"), 0o666 | 0o020000, os.makedev(195, i))

    class GpuCluster(sc.SlurmCluster):
        def _write_files(self):
            super()._write_files()
            with open(self.conf) as f:
                text = f.read()
            lines = []
            for line in text.splitlines():
                if line.startswith("NodeName="):
                    line += " Gres=gpu:4"
                lines.append(line)
            lines.insert(1, "GresTypes=gpu")
            with open(self.conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            with open(os.path.join(self.dir, "gres.conf"), "w") as f:
                f.write(f"Name=gpu File={devdir}/nvidia[0-3]\n")

    c = GpuCluster()
    try:
        c.start()
    except sc.ClusterSkip as e:
        pytest.skip(str(e))
    try:
        yield c
    finally:
        c.stop()


def srun(cluster, args, env=None, timeout=90):
    e = {"LD_PRELOAD": cfg("MPIBIND_TEST_PRELOAD")}
    if os.environ.get("MPIBIND_CACHE_DIR"):
        e["MPIBIND_CACHE_DIR"] = os.environ["MPIBIND_CACHE_DIR"]
    e.update(env or {})
    r = cluster.run(["srun", "--export=ALL", "-t", "2", *args], timeout=timeout, env=e)
    return r


class TestSrun:
    @pytest.mark.parametrize("kind", ["C", "C_SHLIB", "CPP", "FORTRAN", "C_LLVM"])
    def test_openmp_placed(self, cluster, kind):
        task = preview(1)[0]
        r = srun(cluster, ["-N1", "-n1", "--exclusive", omp_probe(kind)])
        recs = omp_records(r.stdout)
        assert r.returncode == 0 and len(recs) == 1, (r, cluster.logs())
        check_placed(recs[0], task, str(r))

    def test_step_with_one_of_two_cpus(self, cluster, two_cpus):
        """Not exclusive, 1 of the node's 2 CPUs (no cgroup): the task stays
        on the CPU Slurm gave the step, and verbose says what was used."""
        show = ALLOWED + '; echo "LIST $SLURM_CPU_BIND_LIST"'
        r = srun(cluster, ["-N1", "-n1", "-c1", "sh", "-c", show], env={"MPIBIND": "v"})
        assert r.returncode == 0, (r, cluster.logs())
        got = allowed_lists(r.stdout)
        masks = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("LIST ")]
        assert len(got) == 1 and len(masks) == 1, r
        slurm = {c for c in range(64) if int(masks[0], 16) >> c & 1}
        assert len(slurm) == 1 and got[0] == slurm, r
        assert any("mapping within CPUs" in l and "SLURM_CPU_BIND_LIST" in l
                   for l in r.stderr.splitlines()), r.stderr

    def test_two_jobs_share_a_node(self, cluster, two_cpus):
        """Two 1-CPU steps on one node at the same time (no cgroup): each task
        stays on its own step's CPU; neither lands on the other's."""
        import threading
        show = ALLOWED + "; sleep 3"
        out = [None, None]

        def one(i):
            out[i] = srun(cluster, ["-w", "n1", "-N1", "-n1", "-c1", "sh", "-c", show])
        ts = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        got = []
        for r in out:
            assert r.returncode == 0, (r, cluster.logs())
            got += allowed_lists(r.stdout)
        assert sorted(map(sorted, got)) == [[0], [1]], out

    def test_exclusive_one_task_gets_the_node(self, cluster):
        """A whole-node step maps as before: srun binds its one task to one
        CPU, mpibind gives it the node."""
        r = srun(cluster, ["-N1", "-n1", "--exclusive", "sh", "-c", ALLOWED])
        assert r.returncode == 0, r
        assert allowed_lists(r.stdout) == [preview(1)[0].cpus], r

    def test_gpus_per_task(self, cluster, trace):
        """--gpus-per-task=1, 4 tasks, on the Lassen XML in dryrun: each task
        keeps the GPU Slurm gave it and gets the 10 cores next to it."""
        m = preview(4, "--topology", lassen())
        show = 'echo "TASK $SLURM_LOCALID $CUDA_VISIBLE_DEVICES $OMP_NUM_THREADS"'
        r = cluster.run(
            ["salloc", "-N1", "--exclusive", "--gpus=4", "-t", "2",
             "srun", "--export=ALL", "-n4", "-O", "--gpus-per-task=1", "sh", "-c", show],
            timeout=90,
            env={"LD_PRELOAD": cfg("MPIBIND_TEST_PRELOAD"), "MPIBIND": "dryrun,v",
                 "MPIBIND_TOPOFILE": lassen(), "MPIBIND_TRACE": trace,
                 "MPIBIND_CACHE_DIR": os.environ.get("MPIBIND_CACHE_DIR", "")})
        assert r.returncode == 0, (r, cluster.logs())
        tasks = [tuple(l.split()[1:4]) for l in r.stdout.splitlines() if l.startswith("TASK ")]
        tasks = [(int(a), b, c) for a, b, c in tasks]
        assert sorted(g for _, g, _ in tasks) == ["0", "1", "2", "3"], r
        check_per_task(tasks, read_trace(trace), m, str(r))
