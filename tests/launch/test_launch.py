"""Launch tests of the automatic binding under real MPI launchers (Slurm's
are in tests/slurm and test_placement.py).

Real launches under mpirun.openmpi and mpiexec.mpich on this node, of real
MPI programs (probe.c, the Fortran probes, probe.py, the seed example), with
the preload (libmpibind-preload.so) or the wrapper (`mpibind -- prog`).
Each rank reports what it actually got (its /proc affinity, its OpenMP
threads and their affinity, its environment); the expected mapping of each
rank comes from the mpibind command's preview of the same inputs (and, as
anchors independent of the library, from docs/algorithm.md's worked examples
and rules), never from the program under test.  "Unbound" means as the
same launch without the preload.  The classes are run as separate meson
tests (see meson.build).
"""

import os
import shutil
import subprocess
import tempfile

import pytest

from launchlib import (PYTHON, cfg, have, launch, parse_list, preview,
                       run_plain, tasks_cpus, GPUS_LINE_RE, REPORT_RE)

LAUNCHERS = ["openmpi", "mpich"]
LAUNCHER_BIN = {"openmpi": "mpirun.openmpi", "mpich": "mpiexec.mpich"}

# Launch-time variables that the launchers themselves set for the node-local
# rank; the fallback test removes them so that the preload must find the
# rank after MPI_Init.
LOCAL_RANK_VARS = {"openmpi": ["OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"],
                   "mpich": ["MPI_LOCALRANKID", "MPI_LOCALNRANKS"]}


def need(launcher):
    if not have(LAUNCHER_BIN[launcher]):
        pytest.skip(f"{LAUNCHER_BIN[launcher]} is not installed")


def probe_c(launcher):
    return cfg("MPIBIND_TEST_PROBE_C_" + launcher.upper())


def topo(name):
    path = os.path.join(cfg("MPIBIND_TEST_TOPOLOGIES"), name)
    assert os.path.isfile(path), path
    return path


@pytest.fixture(scope="session", autouse=True)
def cache_dir():
    """A private topology cache for this test run: no stale file from
    elsewhere can change what the preload sees."""
    with tempfile.TemporaryDirectory(prefix="launch-cache-") as d:
        os.environ["MPIBIND_CACHE_DIR"] = d
        yield d


_baselines = {}


def baseline(launcher, n, prog, launcher_opts=()):
    """The same launch without the preload (what 'unbound' means under
    this launcher: Open MPI binds to cores by itself for n <= 2)."""
    key = (launcher, n, tuple(prog), tuple(launcher_opts))
    if key not in _baselines:
        r = launch(launcher, n, prog, preload=False, launcher_opts=launcher_opts)
        assert r.rc == 0 and len(r.records) == n, str(r)
        _baselines[key] = r
    return _baselines[key]


# --- checks ---------------------------------------------------------------

def check_ranks(r, n):
    assert r.rc == 0, str(r)
    assert [x["rank"] for x in r.records] == list(range(n)), str(r)
    for x in r.records:
        assert x["size"] == n and x["local_size"] == n, str(r)
        # one node: the node-local rank is the world rank
        assert x["local_rank"] == x["rank"], str(r)


def check_bound(r, mapping, omp=True, env_words=(), omp_binds=False):
    """Each rank bound and told as `mapping` (preview) says for its
    node-local rank.  `omp`: the program has an OpenMP runtime.
    `omp_binds`: OMP_PLACES/OMP_PROC_BIND were in the environment when the
    OpenMP runtime started (the wrapper), so the runtime itself binds each
    of its threads, the initial one included, to one place of the task's
    CPUs: then the threads together cover the task's CPUs."""
    n = len(mapping)
    check_ranks(r, n)
    for x in r.records:
        t = mapping[x["local_rank"]]
        ctx = f"rank {x['rank']}: expected {t}, got {x}\n{r}"
        if omp_binds:
            assert parse_list(x["cpus"]) <= t.cpus, ctx
            if "tasks" in x:
                assert set().union(*tasks_cpus(x)) == t.cpus, ctx
        else:
            assert parse_list(x["cpus"]) == t.cpus, ctx
        for c in tasks_cpus(x) if "tasks" in x else []:
            # every thread of the process, MPI's helper threads included
            assert c and c <= t.cpus, ctx
        env = x["env"]
        assert env["MPIBIND_APPLIED"] == "1", ctx
        check_env(env, t, env_words, ctx)
        if omp:
            assert x["omp_max_threads"] == t.nthreads, ctx
            threads = x.get("omp_threads")
            if threads is not None and x["lang"] == "c":
                assert len(threads) == t.nthreads, ctx
                for aff in threads:
                    assert aff and set(aff) <= t.cpus, ctx


TASK_VARS = ("OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
             "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK")
WORD_SUPPRESSES = {"omp_places": ("OMP_PLACES",),
                   "omp_proc_bind": ("OMP_PROC_BIND",),
                   "visible_devices": ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                                       "ZE_AFFINITY_MASK")}


def check_env(env, t, env_words, ctx):
    """The task's variables as the preview (--env) gives them, except those
    that an MPIBIND word says not to set; CUDA_DEVICE_ORDER=PCI_BUS_ID
    exactly when NVIDIA GPUs are mapped (CUDA_VISIBLE_DEVICES exported).
    Variables the probe does not report (Fortran) are not checked."""
    off = {v for w in env_words for v in WORD_SUPPRESSES[w]}
    for v in TASK_VARS:
        if v in env:
            expect = None if v in off else t.env.get(v)
            assert env[v] == expect, f"{v}: expected {expect!r}, got {env[v]!r}; {ctx}"
    if "CUDA_DEVICE_ORDER" in env and "visible_devices" not in env_words:
        expect = "PCI_BUS_ID" if env.get("CUDA_VISIBLE_DEVICES") is not None else None
        assert env["CUDA_DEVICE_ORDER"] == expect, ctx


def check_unchanged(r, base, env_too=True):
    """The same affinity as the run without the preload: the process's and
    every thread's CPU sets.  With env_too (nothing at all may change), also
    the same OpenMP thread count, OpenMP threads and variables.  Without it
    (dryrun, a bad value), the thread count may differ (dryrun applies the
    computed OMP_NUM_THREADS) but each thread's CPUs are the unbound ones."""
    n = len(base.records)
    check_ranks(r, n)
    distinct = lambda rec: sorted({tuple(sorted(c)) for c in tasks_cpus(rec)})
    for x, b in zip(r.records, base.records):
        ctx = f"rank {x['rank']}: expected as without preload {b}, got {x}\n{r}"
        assert x["cpus"] == b["cpus"], ctx
        if "tasks" in x:
            assert distinct(x) == distinct(b), ctx
        if x.get("omp_threads") is not None:
            assert {tuple(a) for a in x["omp_threads"]} == {tuple(a) for a in b["omp_threads"]}, ctx
        if env_too:
            assert x["omp_max_threads"] == b["omp_max_threads"], ctx
            assert x["omp_threads"] == b["omp_threads"], ctx
            assert sorted(map(sorted, tasks_cpus(x))) == sorted(map(sorted, tasks_cpus(b))), ctx
            assert x["env"] == b["env"], ctx


def check_quiet(r):
    assert r.stderr_lines() == [], f"unexpected mpibind messages:\n{r}"


def check_report(r, mapping, ngpus):
    """The verbose report, once per node: the GPU count line, then each
    task's line exactly as the preview prints it."""
    lines = [l.rstrip() for l in r.stderr.splitlines()]
    gl = [l for l in lines if GPUS_LINE_RE.match(l)]
    assert len(gl) == 1, str(r)
    if ngpus is not None:
        assert gl == [f"mpibind: {ngpus} GPUs on this node"], str(r)
    rl = [l for l in lines if REPORT_RE.match(l)]
    assert rl == [t.line for t in mapping], \
        f"expected report {[t.line for t in mapping]}, got {rl}\n{r}"
    assert lines.index(gl[0]) < lines.index(rl[0]), str(r)


# --- C + OpenMP under both launchers -------------------------------------

class TestC:
    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("n", [1, 2, 4])
    def test_bound(self, launcher, n):
        need(launcher)
        r = launch(launcher, n, [probe_c(launcher)])
        # the preload restarts the program when GNU libgomp read OMP_*
        # before it ran: the runtime then places its threads, one per place
        check_bound(r, preview(n), omp_binds=True)
        check_quiet(r)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_init_thread(self, launcher):
        need(launcher)
        r = launch(launcher, 4, [probe_c(launcher), "--init-thread"])
        assert all(x["init"] == "MPI_Init_thread" for x in r.records), str(r)
        check_bound(r, preview(4))

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_after_init_fallback(self, launcher):
        """Without the launcher's node-local variables, the preload binds
        right after MPI_Init from the node-local communicator, the whole
        process (MPI's helper threads already exist by then)."""
        need(launcher)
        unset = []
        for v in LOCAL_RANK_VARS[launcher]:
            unset += ["-u", v]
        r = launch(launcher, 4, ["env", *unset, probe_c(launcher)])
        check_bound(r, preview(4))

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_stray_slurm_vars(self, launcher):
        """TESTING-GROUND.md's trap: an MPI launcher inside a Slurm step
        leaves the step's SLURM_LOCALID=0 (one task per node) in every
        rank; the MPI launcher's own variables come first."""
        need(launcher)
        r = launch(launcher, 4, [probe_c(launcher)],
                   env={"SLURM_LOCALID": "0", "SLURM_NODEID": "0",
                        "SLURM_STEP_TASKS_PER_NODE": "1"})
        check_bound(r, preview(4))
        check_quiet(r)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_restrict(self, launcher):
        # 2 ranks on CPU 1 only: unlike Open MPI's own bind-to-core
        need(launcher)
        r = launch(launcher, 2, [probe_c(launcher)], env={"MPIBIND_RESTRICT": "1"})
        check_bound(r, preview(2, "--restrict", "1"))

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_tuning_words(self, launcher):
        need(launcher)
        r = launch(launcher, 2, [probe_c(launcher)],
                   env={"MPIBIND": "on,smt:1,greedy:0,gpu:0"})
        check_bound(r, preview(2, "--smt", "1", "--greedy", "0", "--gpu-optim", "0"))
        check_quiet(r)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_omp_words(self, launcher):
        need(launcher)
        r = launch(launcher, 1, [probe_c(launcher)],
                   env={"MPIBIND": "omp_places,omp_proc_bind"})
        check_bound(r, preview(1), env_words=("omp_places", "omp_proc_bind"))

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_user_omp_num_threads(self, launcher):
        """A user's OMP_NUM_THREADS is the nthreads input."""
        need(launcher)
        r = launch(launcher, 2, [probe_c(launcher)], env={"OMP_NUM_THREADS": "3"})
        m = preview(2, "--nthreads", "3")
        assert all(t.nthreads == 3 for t in m)
        check_bound(r, m)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_verbose(self, launcher):
        need(launcher)
        r = launch(launcher, 4, [probe_c(launcher)], env={"MPIBIND": "v"})
        m = preview(4)
        check_bound(r, m)
        check_report(r, m, 0)


# --- Fortran, both MPIs ---------------------------------------------------

FORTRAN_KINDS = ["MPIFH", "USEMPI", "F08"]


class TestFortran:
    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("kind", FORTRAN_KINDS)
    @pytest.mark.parametrize("n", [1, 4])
    def test_bound(self, launcher, kind, n):
        need(launcher)
        prog = cfg(f"MPIBIND_TEST_PROBE_F_{launcher.upper()}_{kind}", required=False)
        if not prog:
            pytest.skip("no Fortran compiler")
        r = launch(launcher, n, [prog])
        check_bound(r, preview(n), omp_binds=True)
        check_quiet(r)


# --- mpi4py ---------------------------------------------------------------

class TestMpi4py:
    @pytest.mark.parametrize("n", [1, 4])
    def test_probe(self, n):
        need("openmpi")
        r = launch("openmpi", n, [PYTHON, cfg("MPIBIND_TEST_PROBE_PY")])
        # an interpreter is not told OMP_PLACES/OMP_PROC_BIND (its OpenMP
        # runtime loads late: GNU libgomp would pin it to its first place)
        check_bound(r, preview(n), omp=False, env_words=("omp_places", "omp_proc_bind"))
        check_quiet(r)

    def test_seed_example(self):
        """The seed's example, verbatim, under mpirun with the preload: the
        preload binds each rank first (its "before" line), then the script
        applies its own mapping (restrict_ids '0-7'), which wins."""
        need("openmpi")
        n = 4
        env = {"PYTHONPATH": cfg("MPIBIND_TEST_PYTHONPATH")}
        lib = os.environ.get("MPIBIND_LIBRARY")
        if lib:
            env["MPIBIND_LIBRARY"] = lib
        # Each rank's output in its own file: the ranks' prints interleave
        # on mpirun's stdout, even within a line.
        with tempfile.TemporaryDirectory(prefix="launch-seed-") as out:
            r = launch("openmpi", n, [PYTHON, cfg("MPIBIND_TEST_SEED")], env=env,
                       launcher_opts=["--output-filename", out])
            assert r.rc == 0, str(r)
            outs = {}
            for i in range(n):
                with open(os.path.join(out, "1", f"rank.{i}", "stdout")) as f:
                    outs[i] = f.read()
        before, after = {}, {}
        for i, text in outs.items():
            for line in text.splitlines():
                parts = line.split(" ", 3)
                if len(parts) == 4 and parts[:3] == [str(i), "before", "affinity"]:
                    before[i] = eval(parts[3], {})      # a Python set
                elif len(parts) == 4 and parts[:3] == [str(i), "after", "affinity"]:
                    after[i] = eval(parts[3], {})
        assert sorted(before) == list(range(n)) and sorted(after) == list(range(n)), f"{outs}\n{r}"
        auto = preview(n)
        own = preview(n, "--restrict", "0-7")
        for i in range(n):
            assert before[i] == auto[i].cpus, f"rank {i} before: expected {auto[i]}\n{r}"
            assert after[i] == own[i].cpus, f"rank {i} after: expected {own[i]}\n{r}"
        reports = [l.rstrip() for l in outs[0].splitlines() if REPORT_RE.match(l)]
        assert reports == [t.line for t in own], f"{outs}\n{r}"


# --- MPIBIND=off, dryrun, a program that is not an MPI rank ---------------

class TestModes:
    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("n", [1, 4])
    def test_off(self, launcher, n):
        need(launcher)
        prog = [probe_c(launcher)]
        r = launch(launcher, n, prog, env={"MPIBIND": "off"})
        base = baseline(launcher, n, prog)
        # the only difference allowed in the environment: MPIBIND itself
        for x in r.records:
            assert x["env"]["MPIBIND_APPLIED"] is None, str(r)
        check_unchanged(r, base)
        assert r.stderr.strip() == base.stderr.strip(), str(r)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("words", ["dryrun", "v,dryrun"])
    def test_dryrun(self, launcher, words):
        need(launcher)
        n = 4
        prog = [probe_c(launcher)]
        r = launch(launcher, n, prog, env={"MPIBIND": words})
        base = baseline(launcher, n, prog)
        check_unchanged(r, base, env_too=False)
        m = preview(n)
        for x in r.records:
            t = m[x["local_rank"]]
            check_env(x["env"], t, (), f"rank {x['rank']}: expected {t}, got {x}\n{r}")
        check_report(r, m, 0)

    def test_help(self):
        """MPIBIND=help: the help once per node, the program runs on."""
        need("mpich")
        r = launch("mpich", 2, [probe_c("mpich")], env={"MPIBIND": "help"})
        check_ranks(r, 2)
        lines = r.stderr_lines("MPIBIND_RESTRICT_TYPE")
        assert len(lines) == 1, f"expected the help once\n{r}"

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_topofile_of_this_node(self, launcher, tmp_path):
        """An XML export of this node is accepted and binds (no dryrun)."""
        need(launcher)
        lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
        if not lstopo:
            pytest.skip("lstopo (hwloc-nox) is not installed")
        xml = tmp_path / "this-node.xml"
        subprocess.run([lstopo, "--of", "xml", str(xml)], check=True, timeout=60)
        r = launch(launcher, 4, [probe_c(launcher)], env={"MPIBIND_TOPOFILE": str(xml)})
        m = preview(4, "--topology", str(xml))
        assert [t.cpus for t in m] == [t.cpus for t in preview(4)]
        check_bound(r, m)
        check_quiet(r)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_singleton(self, launcher):
        """An MPI program started without a launcher is one task: bound
        after MPI_Init (here restricted to CPU 1, unlike the unbound run)."""
        r = run_plain([probe_c(launcher)],
                      env={"LD_PRELOAD": cfg("MPIBIND_TEST_PRELOAD"), "MPIBIND_RESTRICT": "1"})
        check_bound(r, preview(1, "--restrict", "1"))

    def test_not_a_rank(self):
        """No launcher, no MPI_Init: the preload leaves the program alone."""
        pre = {"LD_PRELOAD": cfg("MPIBIND_TEST_PRELOAD")}
        for prog in (["cat", "/proc/self/status"], ["env"]):
            with_p = run_plain(prog, env=pre)
            without = run_plain(prog)
            assert with_p.rc == 0 and without.rc == 0, str(with_p)
            assert with_p.stderr == "", str(with_p)
            if prog[0] == "cat":
                get = lambda o: [l for l in o.splitlines() if l.startswith("Cpus_allowed")]
                assert get(with_p.stdout) == get(without.stdout), str(with_p)
            else:
                added = set(with_p.stdout.splitlines()) - set(without.stdout.splitlines())
                assert added == {"LD_PRELOAD=" + pre["LD_PRELOAD"]}, str(with_p)


# --- GPU nodes through MPIBIND_TOPOFILE + dryrun --------------------------

# The vendor of each file's GPUs (docs/algorithm.md's worked examples): which
# variable carries the visible indexes.
GPU_NODES = {"coral-lassen.xml": ("CUDA_VISIBLE_DEVICES", 4),
             "eas-tioga.xml": ("ROCR_VISIBLE_DEVICES", 8)}
GPU_VARS = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "ZE_AFFINITY_MASK")


class TestGpu:
    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("node", sorted(GPU_NODES))
    def test_topofile_dryrun(self, launcher, node):
        need(launcher)
        n = 8
        var, ngpus = GPU_NODES[node]
        prog = [probe_c(launcher)]
        r = launch(launcher, n, prog,
                   env={"MPIBIND": "v,dryrun", "MPIBIND_TOPOFILE": topo(node)})
        check_unchanged(r, baseline(launcher, n, prog), env_too=False)
        m = preview(n, "--topology", topo(node))
        for x in r.records:
            t = m[x["local_rank"]]
            env = x["env"]
            ctx = f"rank {x['rank']}: expected {t} {t.env}, got {env}\n{r}"
            # the preview's variable is the vendor's, with the report's GPUs
            assert t.env.get(var) == t.gpus and t.gpus != "", f"preview: {t} {t.env}"
            check_env(env, t, (), ctx)
            for other in GPU_VARS:
                if other != var:
                    assert env[other] is None, ctx
            # NVIDIA GPUs mapped and no order set at launch: PCI bus order
            expect_order = "PCI_BUS_ID" if var == "CUDA_VISIBLE_DEVICES" else None
            assert env["CUDA_DEVICE_ORDER"] == expect_order, ctx
        check_report(r, m, ngpus)

    # Tuning on GPU nodes, where it changes the mapping: each rank's
    # variables and the node's report as the preview of the same inputs.
    @pytest.mark.parametrize("node,n,words,extra,opts", [
        ("coral-lassen.xml", 4, "smt:2", {}, ["--smt", "2"]),
        ("coral-lassen.xml", 5, "gpu:0", {}, ["--gpu-optim", "0"]),
        ("coral-lassen.xml", 2, "", {"MPIBIND_RESTRICT": "8", "MPIBIND_RESTRICT_TYPE": "mem"},
         ["--restrict", "8", "--restrict-type", "mem"]),
        ("coral-lassen.xml", 6, "", {"MPIBIND_RESTRICT": "8-23"}, ["--restrict", "8-23"]),
        ("coral-lassen.xml", 4, "", {"OMP_NUM_THREADS": "7"}, ["--nthreads", "7"]),
        ("eas-tioga.xml", 3, "greedy:0", {}, ["--greedy", "0"]),
        ("eas-tioga.xml", 2, "greedy:1,gpu_optim:1", {}, []),
    ])
    def test_tuned_dryrun(self, node, n, words, extra, opts):
        need("mpich")
        var, ngpus = GPU_NODES[node]
        env = {"MPIBIND": ",".join(filter(None, ["v", "dryrun", words])),
               "MPIBIND_TOPOFILE": topo(node), **extra}
        r = launch("mpich", n, [probe_c("mpich")], env=env)
        m = preview(n, "--topology", topo(node), *opts)
        check_ranks(r, n)
        for x in r.records:
            t = m[x["local_rank"]]
            check_env(x["env"], t, (), f"rank {x['rank']}: expected {t} {t.env}\n{r}")
        restricted = "MPIBIND_RESTRICT" in extra
        check_report(r, m, None if restricted else ngpus)

    def test_visible_devices_word(self):
        need("mpich")
        n = 4
        r = launch("mpich", n, [probe_c("mpich")],
                   env={"MPIBIND": "dryrun,visible_devices",
                        "MPIBIND_TOPOFILE": topo("coral-lassen.xml")})
        m = preview(n, "--topology", topo("coral-lassen.xml"))
        check_ranks(r, n)
        for x in r.records:
            check_env(x["env"], m[x["local_rank"]], ("visible_devices",), str(r))

    # A CUDA_VISIBLE_DEVICES set at launch is the allocation: only those
    # GPUs are mapped and each task's value is made of the list's entries.
    # Expected, from docs/algorithm.md on coral-lassen (GPUs 0,1 on socket 0,
    # 2,3 on socket 1, as the preview of 2 tasks shows):
    #  "2,3": both GPUs on socket 1, so the GPU weights put both tasks there,
    #         one GPU each in GPU-list order, with socket 1's threads, which
    #         is the mapping of `-n 2 --restrict 8 --restrict-type mem`
    #         (socket 1's NUMA node) - checked against that preview;
    #  "3,1": one GPU per socket: task 0 on socket 0 with GPU 1, task 1 on
    #         socket 1 with GPU 3, the threads of the full 2-task mapping.
    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("preset,expect,opts", [
        ("2,3", ["2", "3"], ["--restrict", "8", "--restrict-type", "mem"]),
        ("3,1", ["1", "3"], []),
    ])
    def test_preset_visible_devices(self, launcher, preset, expect, opts):
        need(launcher)
        node = topo("coral-lassen.xml")
        full = preview(2, "--topology", node)
        assert [t.gpus for t in full] == ["0,1", "2,3"], full  # the premise above
        m = preview(2, "--topology", node, *opts)
        r = launch(launcher, 2, [probe_c(launcher)],
                   env={"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": node,
                        "CUDA_VISIBLE_DEVICES": preset})
        check_ranks(r, 2)
        allowed = set(preset.split(","))
        got = [x["env"]["CUDA_VISIBLE_DEVICES"] for x in r.records]
        for g in got:
            assert g and set(g.split(",")) <= allowed, f"got {got}, allowed {allowed}\n{r}"
        assert got == expect, f"CUDA_VISIBLE_DEVICES={preset}: expected {expect}, got {got}\n{r}"
        nths = [x["env"]["OMP_NUM_THREADS"] for x in r.records]
        assert nths == [str(t.nthreads) for t in m], \
            f"expected OMP_NUM_THREADS {[t.nthreads for t in m]}, got {nths}\n{r}"


    def test_preset_rocr_visible_devices(self):
        """eas-tioga, ROCR_VISIBLE_DEVICES=4,5,0,1 at launch, 2 tasks.  From
        docs/algorithm.md's tioga table (4 tasks: GPUs 4,5; 2,3; 6,7; 0,1 by
        domain): 2 tasks < 4 domains, so greedy: task 0 spans domains 0-1,
        task 1 domains 2-3, 64 PUs each; each gets the allocated GPUs of its
        domains only: 4,5 and 0,1 (without the allocation: 4,5,2,3 and
        6,7,0,1)."""
        need("mpich")
        node = topo("eas-tioga.xml")
        assert [t.gpus for t in preview(4, "--topology", node)] == ["4,5", "2,3", "6,7", "0,1"]
        r = launch("mpich", 2, [probe_c("mpich")],
                   env={"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": node,
                        "ROCR_VISIBLE_DEVICES": "4,5,0,1"})
        check_ranks(r, 2)
        got = [(x["env"]["ROCR_VISIBLE_DEVICES"], x["env"]["OMP_NUM_THREADS"]) for x in r.records]
        assert got == [("4,5", "64"), ("0,1", "64")], f"got {got}\n{r}"
        assert all(x["env"]["CUDA_VISIBLE_DEVICES"] is None for x in r.records), str(r)

    def test_preset_empty_allocation(self):
        """CUDA_VISIBLE_DEVICES='' at launch: no GPU is allocated, so none is
        mapped (0 GPUs on this node), each task is told '' and the tasks are
        placed by PU weights: the CPUs and threads of the gpu_optim 0 mapping."""
        need("mpich")
        node = topo("coral-lassen.xml")
        r = launch("mpich", 2, [probe_c("mpich")],
                   env={"MPIBIND": "v,dryrun", "MPIBIND_TOPOFILE": node,
                        "CUDA_VISIBLE_DEVICES": ""})
        check_ranks(r, 2)
        m = preview(2, "--topology", node, "--gpu-optim", "0")
        got = [(x["env"]["CUDA_VISIBLE_DEVICES"], x["env"]["OMP_NUM_THREADS"]) for x in r.records]
        assert got == [("", str(t.nthreads)) for t in m], f"got {got}\n{r}"
        lines = [l.rstrip() for l in r.stderr.splitlines()]
        assert lines.count("mpibind: 0 GPUs on this node") == 1, str(r)
        rep = [REPORT_RE.match(l) for l in lines if REPORT_RE.match(l)]
        assert [(int(x[2]), x[3].strip(), parse_list(x[4])) for x in rep] == \
            [(t.nthreads, "", t.cpus) for t in m], str(r)

    def test_user_device_order_kept(self):
        """CUDA_DEVICE_ORDER is set only when unset."""
        need("mpich")
        r = launch("mpich", 2, [probe_c("mpich")],
                   env={"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": topo("coral-lassen.xml"),
                        "CUDA_DEVICE_ORDER": "FASTEST_FIRST"})
        check_ranks(r, 2)
        assert [x["env"]["CUDA_DEVICE_ORDER"] for x in r.records] == ["FASTEST_FIRST"] * 2, str(r)
        assert all(x["env"]["CUDA_VISIBLE_DEVICES"] for x in r.records), str(r)

    # Anchors independent of the library: docs/algorithm.md's worked examples,
    # as each rank is told under the preload (the preview is checked too).
    @pytest.mark.parametrize("node,n,var,gpus,nths", [
        ("coral-lassen.xml", 4, "CUDA_VISIBLE_DEVICES", ["0", "1", "2", "3"], [10] * 4),
        ("coral-lassen.xml", 8, "CUDA_VISIBLE_DEVICES",
         ["0", "0", "1", "1", "2", "2", "3", "3"], [5] * 8),
        ("eas-tioga.xml", 8, "ROCR_VISIBLE_DEVICES",
         ["4", "5", "2", "3", "6", "7", "0", "1"], [8] * 8),
        ("eas-tioga.xml", 2, "ROCR_VISIBLE_DEVICES", ["4,5,2,3", "6,7,0,1"], [64, 64]),
    ])
    def test_worked_examples(self, node, n, var, gpus, nths):
        need("mpich")
        m = preview(n, "--topology", topo(node))
        assert [t.gpus for t in m] == gpus and [t.nthreads for t in m] == nths, m
        r = launch("mpich", n, [probe_c("mpich")],
                   env={"MPIBIND": "dryrun", "MPIBIND_TOPOFILE": topo(node)})
        check_ranks(r, n)
        got = [(x["env"][var], x["env"]["OMP_NUM_THREADS"]) for x in r.records]
        assert got == list(zip(gpus, map(str, nths))), f"got {got}\n{r}"


# --- the wrapper: mpibind -- prog ----------------------------------------

class TestWrapper:
    @pytest.mark.parametrize("launcher", LAUNCHERS)
    @pytest.mark.parametrize("n", [1, 4])
    def test_wrapper(self, launcher, n):
        need(launcher)
        r = launch(launcher, n, [cfg("MPIBIND_TEST_CMD"), "--", probe_c(launcher)],
                   preload=False)
        check_bound(r, preview(n), omp_binds=True)
        check_quiet(r)

    @pytest.mark.parametrize("launcher", LAUNCHERS)
    def test_wrapper_fortran(self, launcher):
        need(launcher)
        prog = cfg(f"MPIBIND_TEST_PROBE_F_{launcher.upper()}_F08", required=False)
        if not prog:
            pytest.skip("no Fortran compiler")
        r = launch(launcher, 4, [cfg("MPIBIND_TEST_CMD"), "--", prog], preload=False)
        check_bound(r, preview(4), omp_binds=True)

    def test_wrapper_with_preload(self):
        """The wrapper under a launch that also has the preload: bound once,
        as the mapping says (the preload sees MPIBIND_APPLIED=1)."""
        need("openmpi")
        r = launch("openmpi", 4, [cfg("MPIBIND_TEST_CMD"), "--", probe_c("openmpi")])
        check_bound(r, preview(4), omp_binds=True)
        check_quiet(r)

    def test_wrapper_options(self):
        need("mpich")
        r = launch("mpich", 2, [cfg("MPIBIND_TEST_CMD"), "--restrict", "1", "--",
                                probe_c("mpich")], preload=False)
        check_bound(r, preview(2, "--restrict", "1"), omp_binds=True)


# --- bad values -----------------------------------------------------------

def _bad_files(tmp):
    empty = os.path.join(tmp, "empty.xml")
    open(empty, "w").close()
    trunc = os.path.join(tmp, "truncated.xml")
    with open(topo("coral-lassen.xml")) as f:
        text = f.read()
    with open(trunc, "w") as f:
        f.write(text[: len(text) // 2])
    return empty, trunc


@pytest.fixture(scope="module")
def bad_dir():
    with tempfile.TemporaryDirectory(prefix="launch-bad-") as d:
        yield d


def bad_cases(tmp):
    """(variables, the variable the message must name, the value it must
    name or None when empty)."""
    empty, trunc = _bad_files(tmp)
    lassen = topo("coral-lassen.xml")
    return {
        "bogus": ({"MPIBIND": "bogus"}, "MPIBIND", "bogus"),
        "smt9": ({"MPIBIND": "smt:9"}, "MPIBIND", "smt:9"),
        "greedy7": ({"MPIBIND": "greedy:7"}, "MPIBIND", "greedy:7"),
        "restrict-abc": ({"MPIBIND_RESTRICT": "abc"}, "MPIBIND_RESTRICT", "abc"),
        "restrict-empty": ({"MPIBIND_RESTRICT": ""}, "MPIBIND_RESTRICT", None),
        "restrict-type-disk": ({"MPIBIND_RESTRICT_TYPE": "disk"}, "MPIBIND_RESTRICT_TYPE", "disk"),
        "topofile-missing": ({"MPIBIND_TOPOFILE": "/nonexistent"}, "MPIBIND_TOPOFILE", "/nonexistent"),
        "topofile-empty": ({"MPIBIND_TOPOFILE": empty}, "MPIBIND_TOPOFILE", empty),
        "topofile-truncated": ({"MPIBIND_TOPOFILE": trunc}, "MPIBIND_TOPOFILE", trunc),
        "topofile-foreign": ({"MPIBIND_TOPOFILE": lassen}, "MPIBIND_TOPOFILE", lassen),
    }


BAD_NAMES = ["bogus", "smt9", "greedy7", "restrict-abc", "restrict-empty",
             "restrict-type-disk", "topofile-missing", "topofile-empty",
             "topofile-truncated", "topofile-foreign"]


def with_strict(env):
    env = dict(env)
    env["MPIBIND"] = ",".join(filter(None, [env.get("MPIBIND"), "strict"]))
    return env


def check_bad(r, base, var, value):
    """One line naming the variable and the value, then the program ran
    unbound with its output intact."""
    lines = r.stderr_lines()
    assert len(lines) == 1, f"expected one mpibind line, got {lines}\n{r}"
    assert var in lines[0], f"the message does not name {var}: {lines[0]!r}\n{r}"
    if value is not None:
        assert value in lines[0], f"the message does not name {value!r}: {lines[0]!r}\n{r}"
    check_unchanged(r, base, env_too=False)
    for x in r.records:
        # not applied (the preload may mark the problem with MPIBIND_APPLIED=0)
        assert x["env"]["MPIBIND_APPLIED"] != "1", f"rank {x['rank']}: applied?\n{r}"
        for v in ("OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
                  "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"):
            assert x["env"][v] is None, f"rank {x['rank']}: {v} set after a bad value\n{r}"


class TestBadValues:
    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_bad_mpich(self, name, bad_dir):
        need("mpich")
        env, var, value = bad_cases(bad_dir)[name]
        prog = [probe_c("mpich")]
        r = launch("mpich", 2, prog, env=env)
        check_bad(r, baseline("mpich", 2, prog), var, value)
        s = launch("mpich", 2, prog, env=with_strict(env))
        assert s.rc != 0, f"strict: the launch should fail\n{s}"
        assert any(var in l for l in s.stderr_lines()), f"strict: no message naming {var}\n{s}"

    @pytest.mark.parametrize("name", ["bogus", "restrict-empty", "topofile-foreign"])
    def test_bad_openmpi(self, name, bad_dir):
        need("openmpi")
        env, var, value = bad_cases(bad_dir)[name]
        prog = [probe_c("openmpi")]
        r = launch("openmpi", 2, prog, env=env)
        check_bad(r, baseline("openmpi", 2, prog), var, value)
        s = launch("openmpi", 2, prog, env=with_strict(env))
        assert s.rc != 0, f"strict: the launch should fail\n{s}"
        assert any(var in l for l in s.stderr_lines()), f"strict: no message naming {var}\n{s}"

    def test_bad_wrapper(self):
        need("mpich")
        prog = [probe_c("mpich")]
        r = launch("mpich", 2, [cfg("MPIBIND_TEST_CMD"), "--", *prog],
                   env={"MPIBIND": "bogus"}, preload=False)
        check_bad(r, baseline("mpich", 2, prog), "MPIBIND", "bogus")
        s = launch("mpich", 2, [cfg("MPIBIND_TEST_CMD"), "--", *prog],
                   env={"MPIBIND": "bogus,strict"}, preload=False)
        assert s.rc != 0, f"strict: the launch should fail\n{s}"

    def test_contradicting_launcher_vars(self):
        """The wrapper standalone with a local rank beyond the local size."""
        cmd = cfg("MPIBIND_TEST_CMD")
        prog = ["sh", "-c", "grep Cpus_allowed_list /proc/self/status; env"]
        bad = {"OMPI_COMM_WORLD_LOCAL_RANK": "5", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"}
        base = run_plain(prog)
        r = run_plain([cmd, "--", *prog], env=bad)
        assert r.rc == 0, str(r)
        lines = r.stderr_lines()
        assert len(lines) == 1, f"expected one mpibind line, got {lines}\n{r}"
        assert "OMPI_COMM_WORLD_LOCAL_RANK" in lines[0] and "5" in lines[0], str(r)
        cpus = lambda o: [l for l in o.splitlines() if l.startswith("Cpus_allowed_list")]
        assert cpus(r.stdout) == cpus(base.stdout), str(r)
        assert "MPIBIND_APPLIED=1" not in r.stdout.splitlines(), str(r)
        assert not any(l.startswith("OMP_") for l in r.stdout.splitlines()), str(r)
        s = run_plain([cmd, "--", *prog], env={**bad, "MPIBIND": "strict"})
        assert s.rc != 0, f"strict: should fail\n{s}"
