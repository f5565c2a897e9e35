"""hwloc's risky work happens outside the task, the command and the
interpreter; the cache's files cannot block or cost a task.

What they pin down (docs/interfaces.md, "Untrusted topology files" and
"No discovery inside the rank"; auto/README.md):
- a malformed XML file that crashes hwloc's own parser, given through
  MPIBIND_TOPOFILE, the command's --topology or the Python module, gives
  one line naming the file; the rank runs on, the command exits 2, Python
  raises ValueError;
- the live discovery runs in the helper: under Open MPI with LD_DEBUG=files,
  no rank loads hwloc's OpenCL/GL plugins or their libraries; a plugin
  that hangs or crashes costs the helper, not the launch (one line, the
  tasks run unbound, one discovery attempted per node); the helper ends
  on its own when its task dies or cannot kill it (G04);
- HWLOC_XMLFILE, HWLOC_SYNTHETIC, HWLOC_FSROOT, HWLOC_COMPONENTS in the
  environment do not replace this machine in the discovery;
- the helper started with root as real uid and a user as effective uid
  (the Slurm plugin's slurmstepd) runs as that user only, with no
  permitted capability, and still finds libmpibind;
- a FIFO at the cache file's name or as MPIBIND_TRACE does not block; a
  huge file at the cache's name is not read; another job's lock does not
  hold a task.

Real processes, the real preload, the real helper and a real hwloc plugin
(hwloc_fault.so, built from hwloc_fault_plugin.c).
"""

import fcntl
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest

PRELOAD = os.environ["MPIBIND_TEST_PRELOAD"]
# under -Db_sanitize, the sanitizer runtimes listed before the preload
SANITIZER_PRELOAD = " ".join(PRELOAD.split()[:-1])
TOPOS = os.environ["MPIBIND_TEST_TOPOLOGIES"]
CASES = os.environ["MPIBIND_TEST_CASES"]
CLI = os.environ["MPIBIND_TEST_CLI"]
FAULT_DIR = os.environ["MPIBIND_TEST_FAULT_PLUGIN_DIR"]
LASSEN = os.path.join(TOPOS, "coral-lassen.xml")
CRASHERS = {"segv": (os.path.join(CASES, "hwloc-segv-no-complete-cpuset.xml"), 11),
            "abort": (os.path.join(CASES, "hwloc-abort-bitmap-commas.xml"), 6)}

DROP_PREFIXES = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "FLUX_", "PALS_", "MV2_",
                 "MPI_LOCAL", "HYDRA_", "PRTE_", "MPIBIND", "OMP_", "GOMP_",
                 "CUDA_", "ROCR_", "HIP_", "ZE_", "LD_PRELOAD", "HWLOC_")
TRACE_RE = re.compile(r"^host=(\S+) pid=(\d+) task=(\d+)/(\d+) "
                      r"topology=(discovered|cache|file|none) bound=([01]) "
                      r"cpus=(\S*)$")
PROBE = ("import json, os; print(json.dumps({'aff': sorted(os.sched_getaffinity(0)), "
         "'nth': os.environ.get('OMP_NUM_THREADS')}))")
BASE_AFF = sorted(os.sched_getaffinity(0))


def parse_list(s):
    out = set()
    for part in filter(None, s.split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def clean_env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(DROP_PREFIXES)}
    e.update(extra)
    return e


def task(tmp, rank, size, env=None, cache=None, argv=None, timeout=60):
    """One task of `size` on this node, started with MPICH's variables."""
    e = clean_env(MPI_LOCALRANKID=str(rank), MPI_LOCALNRANKS=str(size),
                  MPIBIND_CACHE_DIR=str(cache or tmp / "cache"),
                  MPIBIND_TRACE=str(tmp / "trace"), LD_PRELOAD=PRELOAD)
    e.update(env or {})
    return subprocess.run(argv or ["/usr/bin/python3", "-c", PROBE], env=e,
                          capture_output=True, text=True, timeout=timeout)


def traces(tmp):
    path = tmp / "trace"
    if not path.exists():
        return []
    return [TRACE_RE.match(l.rstrip("\n")) for l in open(path)]


def lines(p):
    return [l for l in p.stderr.splitlines() if l.strip()]


# ---- users' XML files that crash hwloc's parser -------------------------

@pytest.mark.parametrize("kind", sorted(CRASHERS))
def test_crashing_xml_preload(tmp_path, kind):
    path, sig = CRASHERS[kind]
    for extra in ({}, {"MPIBIND": "dryrun"}):
        p = task(tmp_path, 0, 1, {"MPIBIND_TOPOFILE": path, **extra})
        assert p.returncode == 0 and p.stdout.strip(), p  # the rank ran on
        ls = lines(p)
        assert len(ls) == 1 and path in ls[0] and "MPIBIND_TOPOFILE" in ls[0], p
        assert f"signal {sig}" in ls[0] and "running unbound" in ls[0], p
    # strict fails the task with the same one line, by exit status, not a signal
    p = task(tmp_path, 0, 1, {"MPIBIND_TOPOFILE": path, "MPIBIND": "strict"})
    assert p.returncode == 1 and len(lines(p)) == 1, p


@pytest.mark.parametrize("kind", sorted(CRASHERS))
def test_crashing_xml_command(kind):
    path, sig = CRASHERS[kind]
    for argv in ([CLI, "-n", "2", "--topology", path],
                 [CLI, "--topology", path, "--", "/bin/true"]):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           env=clean_env())
        assert p.returncode == 2 and p.stdout == "", p
        ls = lines(p)
        assert len(ls) == 1 and path in ls[0] and "--topology" in ls[0], p
        assert f"signal {sig}" in ls[0], p


@pytest.mark.skipif("MPIBIND_TEST_PYTHON_MODULE" not in os.environ,
                    reason="the Python module is not built (-Dpython=disabled)")
@pytest.mark.parametrize("kind", sorted(CRASHERS))
def test_crashing_xml_python(kind):
    path, sig = CRASHERS[kind]
    code = f"""
import mpibind
for make in (lambda: mpibind.MpibindHandle(ntasks=1, topology_file={path!r}),
             lambda: mpibind.topology_set_xml({path!r})):
    try:
        make()
        print("accepted")
    except ValueError as err:
        print("ValueError:", err)
"""
    env = clean_env(MPIBIND_LIBRARY=os.environ["MPIBIND_LIBRARY"])
    if SANITIZER_PRELOAD:  # a sanitized library in an uninstrumented python
        env["LD_PRELOAD"] = SANITIZER_PRELOAD
    p = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True,
                       text=True, timeout=60, env=env)
    assert p.returncode == 0, p
    out = p.stdout.splitlines()
    assert len(out) == 2, p
    for l in out:
        assert l.startswith("ValueError:") and path in l and f"signal {sig}" in l, p


def test_good_xml_still_accepted_everywhere(tmp_path):
    p = subprocess.run([CLI, "-n", "4", "--topology", LASSEN], capture_output=True,
                       text=True, timeout=60, env=clean_env())
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 4, p
    p = task(tmp_path, 1, 4, {"MPIBIND_TOPOFILE": LASSEN, "MPIBIND": "dryrun"})
    assert p.returncode == 0 and lines(p) == [] and '"nth": "10"' in p.stdout, p


# ---- the live discovery describes this machine ---------------------------

@pytest.mark.parametrize("env", [
    {"HWLOC_XMLFILE": LASSEN},
    {"HWLOC_SYNTHETIC": "pack:4 core:8 pu:2"},
    {"HWLOC_COMPONENTS": "synthetic", "HWLOC_SYNTHETIC": "pack:2 pu:64"},
    {"HWLOC_FSROOT": "@EMPTY_ROOT@"},  # a root with empty /sys and /proc
    {"HWLOC_XMLFILE": LASSEN, "HWLOC_THISSYSTEM": "1"},
])
def test_discovery_ignores_machine_replacing_env(tmp_path, env):
    """Users set these for other tools: the binding must still be this
    machine's (one task gets exactly this process's CPUs, bound)."""
    if env.get("HWLOC_FSROOT") == "@EMPTY_ROOT@":
        for d in ("sys", "proc"):
            (tmp_path / "root" / d).mkdir(parents=True)
        env = {**env, "HWLOC_FSROOT": str(tmp_path / "root")}
    p = task(tmp_path, 0, 1, env)
    (t,) = traces(tmp_path)
    assert p.returncode == 0 and t and t[5] == "discovered" and t[6] == "1", p
    assert parse_list(t[7]) == set(BASE_AFF), (t[0], p.stderr)
    assert lines(p) == [], p  # (an empty HWLOC_FSROOT makes hwloc complain)
    assert f'"nth": "{len(BASE_AFF)}"' in p.stdout, p
    # the node's next task reads the cache, also this machine
    q = task(tmp_path, 0, 1, env)
    assert traces(tmp_path)[-1][5] == "cache" and parse_list(traces(tmp_path)[-1][7]) == set(BASE_AFF), q


# ---- a discovery that hangs or crashes -----------------------------------

def fault_env(tmp, what, seconds=None):
    e = {"HWLOC_PLUGINS_PATH": FAULT_DIR, "MPIBIND_TEST_FAULT": what,
         "MPIBIND_TEST_FAULT_LOG": str(tmp / "fault-log")}
    if seconds:
        e["MPIBIND_DISCOVERY_TIMEOUT"] = str(seconds)
    return e


def start_tasks(tmp, n, env):
    procs = []
    for rank in range(n):
        e = clean_env(MPI_LOCALRANKID=str(rank), MPI_LOCALNRANKS=str(n),
                      MPIBIND_CACHE_DIR=str(tmp / "cache"),
                      MPIBIND_TRACE=str(tmp / "trace"), LD_PRELOAD=PRELOAD, **env)
        procs.append(subprocess.Popen(["/usr/bin/python3", "-c", PROBE], env=e,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    return procs


def test_hanging_discovery_does_not_hang_the_launch(tmp_path):
    n = 4
    procs = start_tasks(tmp_path, n, fault_env(tmp_path, "hang", 2))
    # a hang would show as a TimeoutExpired here (each task waits on the
    # node's first, whose helper is killed after 2 s)
    outs = [p.communicate(timeout=25) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ts = traces(tmp_path)
    assert len(ts) == n and all(t and t[6] == "0" for t in ts), ts
    errs = [l for _, err in outs for l in err.splitlines() if l.strip()]
    assert len(errs) == 1, errs  # task 0 only
    assert "did not end within 2 seconds" in errs[0] and "running unbound" in errs[0], errs
    # one helper tried (the others read its failure), and it was not a task
    pids = open(tmp_path / "fault-log").read().split()
    assert len(pids) == 1, pids
    assert pids[0] not in {t[2] for t in ts}
    assert all(f'"aff": {BASE_AFF}'.replace("'", "") in out for out, _ in outs), outs


def helper_gone(pid, within=60):
    """Polls until process `pid` has ended (gone, or a zombie its stopped
    parent has not reaped); False when it still runs after `within`
    seconds (a helper left to run forever)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def hung_helper(tmp, env):
    """A task whose helper hangs in a discovery plugin: (task, helper pid)."""
    (p,) = start_tasks(tmp, 1, env)
    log = tmp / "fault-log"
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text().strip()):
        assert time.monotonic() < deadline and p.poll() is None, "no helper"
        time.sleep(0.02)
    return p, int(log.read_text().split()[0])


def test_helper_ends_when_its_task_is_killed(tmp_path):
    """G04: the task that started a hung discovery is killed (SIGKILL, the
    OOM killer): its helper, which only the task would have killed at the
    time limit (a day here), ends with it instead of running on under
    init."""
    p, helper = hung_helper(tmp_path, fault_env(tmp_path, "hang", 86400))
    p.kill()
    p.communicate()
    try:
        assert helper_gone(helper), f"helper {helper} still runs"
    finally:
        if not helper_gone(helper, 0):
            os.kill(helper, signal.SIGKILL)


def test_helper_ends_at_its_own_deadline(tmp_path):
    """G04: the task that started a hung discovery cannot kill it (stopped
    here, as by a debugger or a hung signal handler): the helper ends on
    its own shortly after MPIBIND_DISCOVERY_TIMEOUT; the task, resumed,
    runs on unbound with one line."""
    p, helper = hung_helper(tmp_path, fault_env(tmp_path, "hang", 1))
    p.send_signal(signal.SIGSTOP)
    try:
        assert helper_gone(helper), f"helper {helper} still runs"
    finally:
        if not helper_gone(helper, 0):
            os.kill(helper, signal.SIGKILL)
        p.send_signal(signal.SIGCONT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0 and out.strip(), (out, err)
    assert len([l for l in err.splitlines() if l.strip()]) == 1, err
    (t,) = traces(tmp_path)
    assert t[6] == "0", t


def test_crashing_discovery_leaves_the_task_alive(tmp_path):
    p = task(tmp_path, 0, 2, fault_env(tmp_path, "crash"))
    assert p.returncode == 0 and p.stdout.strip(), p
    ls = lines(p)
    assert len(ls) == 1 and "signal 11" in ls[0] and "running unbound" in ls[0], p
    (t,) = traces(tmp_path)
    assert t[6] == "0"


def test_site_plugins_not_loaded_by_a_task_reading_the_cache(tmp_path):
    """A user's HWLOC_PLUGINS_PATH (a site's plugin directory) is for the
    helper's discovery, not for the tasks that load XML."""
    p = task(tmp_path, 0, 2, fault_env(tmp_path, "none"))  # loaded, harmless
    assert p.returncode == 0 and traces(tmp_path)[-1][5] == "discovered", p
    pids = open(tmp_path / "fault-log").read().split()
    assert len(pids) == 1 and pids[0] != traces(tmp_path)[-1][2], pids
    p = task(tmp_path, 1, 2, fault_env(tmp_path, "crash"))
    assert p.returncode == 0 and lines(p) == [], p
    assert traces(tmp_path)[-1][5] == "cache"
    assert open(tmp_path / "fault-log").read().split() == pids


@pytest.mark.parametrize("value", ["soon", "", "0", "86401", "+5", " 5", "5s",
                                   "-1", "99999999999999999999", "5\nx"])
def test_bad_timeout_value(tmp_path, value):
    """Whole seconds from 1 to 86400 by the project's one decimal rule;
    anything else is one line naming the value, and the task runs on."""
    shown = value.replace("\n", "\\n")
    # cold, then with the node's mapping cached (a good first task): the
    # same line and the same outcome
    for warm in (False, True):
        if warm:
            assert task(tmp_path, 0, 1).returncode == 0
        p = task(tmp_path, 0, 1, {"MPIBIND_DISCOVERY_TIMEOUT": value})
        ls = lines(p)
        assert p.returncode == 0 and len(ls) == 1, (warm, p)
        assert f"MPIBIND_DISCOVERY_TIMEOUT='{shown}'" in ls[0], (warm, p)
        assert "1 to 86400" in ls[0] and "running unbound" in ls[0], (warm, p)


def test_timeout_leading_zeros_are_decimal(tmp_path):
    p = task(tmp_path, 0, 1, {"MPIBIND_DISCOVERY_TIMEOUT": "010"})
    assert p.returncode == 0 and lines(p) == [], p
    assert traces(tmp_path)[-1][5] == "discovered", p


# ---- the cache's files ----------------------------------------------------

def cache_name(tmp):
    """The cache file's name for this machine: made by a first task."""
    cache = tmp / "probe-cache"
    task(tmp, 0, 1, cache=cache)
    (name,) = [f for f in os.listdir(cache) if f.endswith(".xml")]
    return name


def test_readers_take_no_lock_on_node_mapping(tmp_path):
    assert task(tmp_path, 0, 2).returncode == 0
    (lock,) = [f for f in os.listdir(tmp_path / "cache")
               if f.startswith("map-") and f.endswith(".lock")]
    fd = os.open(tmp_path / "cache" / lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        p = task(tmp_path, 1, 2, timeout=20)
        assert p.returncode == 0 and traces(tmp_path)[-1][5] == "cache", p
    finally:
        os.close(fd)


def test_fifo_at_cache_name_does_not_block(tmp_path):
    name = cache_name(tmp_path)
    cache = tmp_path / "c"
    cache.mkdir(mode=0o700)
    os.mkfifo(cache / name, 0o600)
    os.mkfifo(cache / (name[:-4] + ".lock"), 0o600)
    p = task(tmp_path, 0, 1, cache=cache, timeout=20)
    assert p.returncode == 0 and traces(tmp_path)[-1][6] == "1", p
    assert traces(tmp_path)[-1][5] == "discovered"
    # the FIFO was replaced by the cache file
    assert os.path.isfile(cache / name) and not os.path.islink(cache / name)


def test_fifo_as_trace_does_not_block(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    p = task(tmp_path, 0, 1, {"MPIBIND_TRACE": str(fifo)}, timeout=20)
    assert p.returncode == 0 and f'"nth": "{len(BASE_AFF)}"' in p.stdout, p
    ls = lines(p)
    assert len(ls) == 1 and str(fifo) in ls[0] and "MPIBIND_TRACE" in ls[0], p
    # with a reader at the other end: still a FIFO, still refused
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        p = task(tmp_path, 0, 1, {"MPIBIND_TRACE": str(fifo)}, timeout=20)
        assert p.returncode == 0 and len(lines(p)) == 1 and "regular file" in lines(p)[0], p
    finally:
        os.close(reader)


def test_huge_file_at_cache_name_is_not_read(tmp_path):
    name = cache_name(tmp_path)
    cache = tmp_path / "c"
    cache.mkdir(mode=0o700)
    with open(cache / name, "wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB that costs no disk
    os.chmod(cache / name, 0o600)
    e = clean_env(MPI_LOCALRANKID="0", MPI_LOCALNRANKS="1", MPIBIND_CACHE_DIR=str(cache),
                  MPIBIND_TRACE=str(tmp_path / "trace"), LD_PRELOAD=PRELOAD)
    child = subprocess.Popen(["/usr/bin/python3", "-c", "pass"], env=e)
    _, status, usage = os.wait4(child.pid, 0)
    assert status == 0
    # reading it whole would make the task's resident set at least 1 GiB
    assert usage.ru_maxrss < 256 * 1024, usage.ru_maxrss
    assert traces(tmp_path)[-1][5] == "discovered"
    assert os.path.getsize(cache / name) < (1 << 30)  # replaced


FD_PROBE = ("import json, os; d = '/proc/self/fd'; "
            "print(json.dumps(sorted(os.readlink(d + '/' + f) for f in os.listdir(d) "
            "if os.path.exists(d + '/' + f))))")


def test_failed_cache_write_leaks_no_descriptor(tmp_path):
    """A write into the cache that fails (here: a file size limit) leaves
    no descriptor open in the task, and the task is still bound."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
    cache = tmp_path / "c"
    e = clean_env(MPI_LOCALRANKID="0", MPI_LOCALNRANKS="1", MPIBIND_CACHE_DIR=str(cache),
                  MPIBIND_TRACE=str(tmp_path / "trace"), LD_PRELOAD=PRELOAD)
    p = subprocess.run(["/usr/bin/python3", "-c", FD_PROBE], env=e, preexec_fn=limit,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p
    fds = json.loads(p.stdout)
    assert not [f for f in fds if str(cache) in f], fds
    t = traces(tmp_path)[-1]
    assert t[5] == "discovered" and t[6] == "1", p
    # nothing half-written left behind
    assert not [f for f in os.listdir(cache) if f.startswith(".")], os.listdir(cache)


def test_another_jobs_lock_does_not_hold_a_task(tmp_path):
    """The lock is per key: a discovery of another job (other cgroup, other
    key) holding the directory, or the lock of another key, does not make
    this task wait."""
    cache = tmp_path / "c"
    cache.mkdir(mode=0o700)
    other = os.open(cache / "topo-0123456789abcdef.lock", os.O_CREAT | os.O_RDWR, 0o600)
    dirfd = os.open(cache, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(other, fcntl.LOCK_EX)
    fcntl.flock(dirfd, fcntl.LOCK_EX)
    try:
        p = task(tmp_path, 0, 1, cache=cache, timeout=20)
        assert p.returncode == 0 and traces(tmp_path)[-1][5] == "discovered", p
    finally:
        os.close(other)
        os.close(dirfd)


def test_readers_take_no_lock(tmp_path):
    """A task that finds a valid cache file reads it without waiting for
    the key's lock, even while another task holds it (a reader never
    waits behind another)."""
    assert task(tmp_path, 0, 2).returncode == 0
    (lock,) = [f for f in os.listdir(tmp_path / "cache")
               if f.startswith("topo-") and f.endswith(".lock")]
    fd = os.open(tmp_path / "cache" / lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        p = task(tmp_path, 1, 2, timeout=20)
        assert p.returncode == 0 and traces(tmp_path)[-1][5] == "cache", p
    finally:
        os.close(fd)


# ---- no plugin inside a rank (Open MPI, LD_DEBUG) ------------------------

MPIRUN = shutil.which("mpirun.openmpi")
PLUGIN_RE = re.compile(r"^\s*(\d+):\s+file=\S*(hwloc_opencl|hwloc_gl|libOpenCL|libX11)")


def test_helper_would_load_the_plugins():
    """The machine has the plugins (so the launch test below can fail):
    a discovery loads them."""
    helper = os.environ["MPIBIND_TEST_HELPER"]
    p = subprocess.run([helper], env=clean_env(LD_DEBUG="files"), capture_output=True,
                       text=True, timeout=60)
    found = {m[2] for m in map(PLUGIN_RE.match, p.stderr.splitlines()) if m}
    assert {"hwloc_opencl", "libOpenCL"} <= found, p.stderr[-2000:]


@pytest.mark.skipif(MPIRUN is None, reason="Open MPI's mpirun is absent")
def test_cold_launch_loads_no_gpu_plugin_in_ranks(tmp_path):
    trace = tmp_path / "trace"
    n = 2
    p = subprocess.run(
        [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(n),
         "-x", "LD_DEBUG=files", "-x", f"LD_PRELOAD={PRELOAD}",
         "-x", f"MPIBIND_CACHE_DIR={tmp_path / 'cache'}", "-x", f"MPIBIND_TRACE={trace}",
         "/bin/true"],
        env=clean_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    ts = [TRACE_RE.match(l.rstrip("\n")) for l in open(trace)]
    assert len(ts) == n and all(ts), ts
    assert sum(t[5] == "discovered" for t in ts) == 1, [t[0] for t in ts]
    ranks = {t[2] for t in ts}
    seen = [l for l in p.stderr.splitlines() if "file=" in l]
    assert {m[1] for m in map(re.compile(r"^\s*(\d+):").match, seen) if m} >= ranks, \
        "LD_DEBUG did not reach the ranks"
    loaded = [l for l in seen if (m := PLUGIN_RE.match(l)) and m[1] in ranks]
    assert loaded == [], loaded


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))


# ---- a helper started with root as real uid ------------------------------

def _ids_line(status, key):
    for line in status.splitlines():
        if line.startswith(key + ":"):
            return line.split()[1:]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process with mixed ids")
def test_helper_runs_as_its_effective_user_only(tmp_path):
    """The Slurm plugin starts the helper from slurmstepd, whose real uid
    stays root while it acts for the user: the helper must drop to the
    effective user (no root real uid, no permitted capability) before
    hwloc loads any plugin or parses anything, and still find libmpibind
    (the loader's secure mode ignores $ORIGIN).  nobody may not reach the
    build tree (a checkout in a directory only root enters): the helper,
    libmpibind and the fault plugin run from a second build under /tmp
    that nobody can enter (mpibind_stage), whose helper's absolute run
    path names that build's library."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    import pathlib
    import tempfile
    from mpibind_stage import stage
    fault_plugin = os.environ["MPIBIND_TEST_FAULT_PLUGIN"]

    def mixed_ids():
        os.setresgid(0, nobody.pw_gid, 0)
        os.setgroups([])
        os.setresuid(0, nobody.pw_uid, 0)

    # pytest's directories are root's alone: the helper, as nobody, logs here
    work = pathlib.Path(tempfile.mkdtemp(prefix="mpibind-ids-"))
    try:
        os.chmod(work, 0o777)
        log = work / "fault-log"
        # the fault plugin is a test's product: the stage's tests on (auto:
        # whether Check is installed does not matter here)
        with stage([os.environ["MPIBIND_TEST_HELPER"], fault_plugin],
                   options={"tests": "auto"}) as staged:
            env = clean_env(HWLOC_PLUGINS_PATH=os.path.dirname(staged.path(fault_plugin)),
                            MPIBIND_TEST_FAULT="hang", MPIBIND_TEST_FAULT_LOG=str(log))
            p = subprocess.Popen([staged.path(os.environ["MPIBIND_TEST_HELPER"])], env=env,
                                 preexec_fn=mixed_ids, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.monotonic() + 20
                while not (log.exists() and log.read_text().strip()) and p.poll() is None \
                        and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert p.poll() is None, p.communicate()[1]
                assert log.read_text().split() == [str(p.pid)], "the hanging plugin did not start"
                # the hanging plugin runs in the helper itself: its ids are the helper's
                status = open("/proc/%d/status" % p.pid).read()
                assert _ids_line(status, "Uid") == [str(nobody.pw_uid)] * 4, status
                assert _ids_line(status, "Gid") == [str(nobody.pw_gid)] * 4, status
                assert int(_ids_line(status, "CapPrm")[0], 16) == 0, status
            finally:
                p.kill()
                p.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
