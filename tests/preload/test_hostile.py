"""The preload against a careless or hostile user, second round (issue 19):
no input crashes, hangs, lies or loses data.

What they pin down (auto/README.md, mpibind(7)):
- the cache's cleanup removes only what mpibind wrote and recognises
  (its names, its content, regular files of the user), also in a
  directory the user shares with their own files; files of other inputs
  unused for a week go (the cache is bounded); an explicit
  MPIBIND_CACHE_DIR that cannot be used is named in one line; root's
  system directories are no cache (G01, the cache bound, the remarks);
- a full cache file system still gives one discovery per node, or one
  line saying why each task does the work (G02);
- MPIBIND_TRACE never follows a link planted at its path (G03);
- launcher variables that contradict each other: one line per task, not
  per process of the task (G05);
- a node mapping record that cannot be applied is discarded and the
  mapping made again, at the cost of the record's length (G11);
- OMP_NUM_THREADS has one bound, the same for the mapping file's writer
  and reader (G12);
- a restart for a stale OpenMP runtime runs the program with the
  arguments it was started with or not at all, and one that fails (near
  the argument-size limit) is one line and never leaves a thread outside
  the task's CPUs or a trace that says bound=1 (G10, G13).

Real processes, the real preload and helper, real file systems (a tmpfs
mounted by the test for a full one: root).
"""

import os
import re
import resource
import shlex
import stat
import subprocess
import sys
import time

import pytest

from test_preload import (BASE_AFF, PRELOAD, TRACE_RE, clean_env, map_file,
                          parse_list, run, task_env, tmp)  # noqa: F401

LAST = BASE_AFF[-1]
RESTART_PROBE = os.environ.get("MPIBIND_TEST_RESTART_PROBE")
ARGV_TITLE = os.environ["MPIBIND_TEST_ARGV_TITLE"]
SANITIZED = "libasan" in PRELOAD
# under -Db_sanitize, the sanitizer runtimes listed before the preload
SANITIZER_PRELOAD = " ".join(PRELOAD.split()[:-1])
DAY = 86400

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (another owner, a mount)")
needs_openmp = pytest.mark.skipif(RESTART_PROBE is None,
                                  reason="no OpenMP compiler support")


def lines(r):
    return [l for l in r.stderr.splitlines() if l.strip()]


def age(path, days, used_days=None):
    """Modification time `days` ago, access time `used_days` ago."""
    now = time.time()
    used = days if used_days is None else used_days
    os.utime(path, (now - used * DAY, now - days * DAY), follow_symlinks=False)


def maps(cache):
    return {f for f in os.listdir(cache) if re.fullmatch(r"map-[0-9a-f]{16}\.txt", f)}


# ---- G01 and the cache bound: the cleanup --------------------------------

def test_cleanup_removes_only_what_mpibind_wrote(tmp):
    """MPIBIND_CACHE_DIR shared with the user's files ($HOME, a project
    directory): the cleanup that runs when a new mapping file is written
    removes mapping files of other inputs unused for a week and their
    locks, and nothing else: not the user's files whatever their names and
    kinds (regular, FIFO, symlink), not a file named like mpibind's whose
    content is not mpibind's, not mapping files used lately, not the
    topology the mappings were made from."""
    home = tmp / "home"
    home.mkdir(mode=0o700)
    run(tmp, task_env(0, 2), cache=home)
    old = maps(home)
    run(tmp, task_env(0, 3), cache=home)
    recent = maps(home) - old
    assert len(old) == 1 and len(recent) == 1, os.listdir(home)
    topo = [f for f in os.listdir(home) if f.startswith("topo-")]
    user = {"map-of-europe.png": "precious\n", "topo-survey.csv": "data\n",
            ".map-notes.txt": "notes\n", "map-0123456789abcdef.txt": "mine\n",
            "map-0123456789abcdef.lock": "mine too\n",
            ".map-0123456789abcdef.txt-1-2-3": "also mine\n"}
    for name, text in user.items():
        (home / name).write_text(text)
    os.mkfifo(home / "map-fifo")
    os.symlink(tmp / "elsewhere", home / "topo-link")
    (tmp / "elsewhere").write_text("target\n")
    for name in list(user) + ["map-fifo", "topo-link"]:
        age(home / name, 21)
    (old_map,) = old
    old_lock = old_map[:-4] + ".lock"
    for f in (old_map, old_lock):
        age(home / f, 8)           # unused for more than a week
    (recent_map,) = recent
    age(home / recent_map, 20, used_days=2)   # written long ago, read lately
    for f in topo:
        age(home / f, 30, used_days=30)

    r = run(tmp, task_env(0, 4), cache=home)
    assert r.rc == 0 and r.trace[0][6] == "1", r
    left = set(os.listdir(home))
    assert old_map not in left and old_lock not in left, left
    assert recent_map in left and set(topo) <= left, left
    for name, text in user.items():
        assert (home / name).read_text() == text, name
    assert stat.S_ISFIFO(os.lstat(home / "map-fifo").st_mode)
    assert os.readlink(home / "topo-link") == str(tmp / "elsewhere")
    assert (tmp / "elsewhere").read_text() == "target\n"
    assert len(maps(home) - set(user)) == 2, left   # the recent one, the new one


def test_cleanup_keeps_an_empty_or_foreign_lock(tmp):
    """A lock is removed only with mpibind's own content: an empty file or
    another text at a lock's name stays, however old."""
    cache = tmp / "c"
    run(tmp, task_env(0, 2), cache=cache)
    (name,) = maps(cache)
    lock = cache / (name[:-4] + ".lock")
    assert lock.read_text() == "mpibind-lock 1\n"
    stranger = cache / "map-00000000000000aa.lock"
    stranger.write_text("")
    for f in (cache / name, lock, stranger):
        age(f, 9)
    run(tmp, task_env(0, 3), cache=cache)
    assert not lock.exists() and not (cache / name).exists()
    assert stranger.exists()


# ---- the remarks: the cache directory itself ----------------------------

@pytest.mark.parametrize("kind", ["writable by others", "symlink", "file",
                                  "no parent"])
def test_unusable_cache_dir_is_named_once(tmp, kind):
    """An explicit MPIBIND_CACHE_DIR that cannot be used: the node's task 0
    says which and why in one line (the task is still mapped and bound,
    without a cache); the other tasks say nothing."""
    good = tmp / "good"
    good.mkdir(mode=0o700)
    bad = {"writable by others": tmp / "open", "symlink": tmp / "link",
           "file": tmp / "afile", "no parent": tmp / "none" / "c"}[kind]
    if kind == "writable by others":
        bad.mkdir()
        os.chmod(bad, 0o777)
    elif kind == "symlink":
        os.symlink(good, bad)
    elif kind == "file":
        bad.write_text("x")
    why = {"writable by others": "can be written by others",
           "symlink": "is a symbolic link", "file": "is not a directory",
           "no parent": "No such file"}[kind]
    r = run(tmp, {**task_env(0, 2), "MPIBIND_RESTRICT": str(LAST)}, cache=bad)
    assert r.rc == 0 and r.probe["aff"] == [LAST] and r.trace[0][6] == "1", r
    (line,) = lines(r)
    assert f"MPIBIND_CACHE_DIR='{bad}'" in line and why in line, line
    assert "each task maps the node itself" in line, line
    q = run(tmp, {**task_env(1, 2), "MPIBIND_RESTRICT": str(LAST)}, cache=bad)
    assert q.rc == 0 and lines(q) == [] and q.trace[0][6] == "1", q
    assert os.listdir(good) == []


@needs_root
@pytest.mark.parametrize("d", ["/", "/proc", "/dev"])
def test_root_system_directories_are_no_cache(tmp, d):
    """Root owns /, /proc and /dev, which nobody else can write: they are
    no cache directory (root's must be 0700; /proc is not even writable),
    and nothing is written there."""
    ours = re.compile(r"\.?(map|topo)-[0-9a-f]{16}")
    before = {f for f in os.listdir(d) if ours.match(f)}
    r = run(tmp, task_env(0, 1), cache=d)
    assert r.rc == 0 and r.trace[0][6] == "1", r
    (line,) = lines(r)
    assert f"MPIBIND_CACHE_DIR='{d}'" in line, line
    assert "0700" in line or "cannot be written" in line, line
    assert {f for f in os.listdir(d) if ours.match(f)} == before


# ---- G02: a full cache file system ---------------------------------------

def fill(mount):
    """Fills a file system until it takes nothing more."""
    fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def start_tasks(tmp, n, cache, extra):
    procs = []
    for rank in range(n):
        e = clean_env()
        e.update(task_env(rank, n), MPIBIND_CACHE_DIR=str(cache),
                 MPIBIND_TRACE=str(tmp / "trace-n"), LD_PRELOAD=PRELOAD, **extra)
        procs.append(subprocess.Popen([sys.executable, "-c", "pass"], env=e,
                                      stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    trace = [TRACE_RE.match(l.rstrip("\n")) for l in open(tmp / "trace-n")]
    os.unlink(tmp / "trace-n")
    return trace, errs


class Tmpfs:
    """A tiny tmpfs mounted for the test, full."""

    def __init__(self, path):
        self.path = path
        path.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                            str(path)], capture_output=True, text=True)
        if p.returncode != 0:  # root without CAP_SYS_ADMIN (a container)
            pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["umount", str(self.path)], check=True)


@needs_root
def test_full_cache_file_system_one_discovery(tmp):
    """The cache directory's file system takes no file: the node's files go
    to the spill directory on another file system (here under
    $XDG_RUNTIME_DIR), and 8 tasks started together still discover once;
    every task is bound, nothing is said."""
    xdg = tmp / "xdg"
    xdg.mkdir(mode=0o700)
    with Tmpfs(tmp / "full") as full:
        cache = full / "c"
        cache.mkdir(mode=0o700)
        fill(full)
        trace, errs = start_tasks(tmp, 8, cache, {"XDG_RUNTIME_DIR": str(xdg)})
        assert len(trace) == 8 and all(t and t[6] == "1" for t in trace), trace
        assert sum(t[5] == "discovered" for t in trace) == 1, [t[0] for t in trace]
        assert [l for e in errs for l in e.splitlines()] == [], errs
        spill = [d for d in os.listdir(xdg) if d.startswith("mpibind-")]
        assert len(spill) == 1 and maps(xdg / spill[0]), spill
        # the next launch reads them there
        trace, _ = start_tasks(tmp, 2, cache, {"XDG_RUNTIME_DIR": str(xdg)})
        assert [t[5] for t in trace] == ["cache", "cache"], trace


@needs_root
def test_full_cache_and_spill_one_line(tmp):
    """Nothing can be written anywhere: each task does the work itself,
    bound all the same, and the node's task 0 says why in one line."""
    with Tmpfs(tmp / "full") as full, Tmpfs(tmp / "xdg") as xdg:
        cache = full / "c"
        cache.mkdir(mode=0o700)
        os.chmod(xdg, 0o700)
        fill(full)
        fill(xdg)
        trace, errs = start_tasks(tmp, 3, cache, {"XDG_RUNTIME_DIR": str(xdg)})
        assert len(trace) == 3 and all(t and t[6] == "1" for t in trace), trace
        said = [l for e in errs for l in e.splitlines() if l.strip()]
        assert len(said) == 1 and errs[0].strip() == said[0], errs
        assert "No space left on device" in said[0], said
        assert "each does the work itself" in said[0], said


# ---- G03: the trace file ---------------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "hard link"])
def test_trace_never_follows_a_planted_link(tmp, kind):
    """A link planted at MPIBIND_TRACE's path (a shared directory) is not
    written through: the victim's file is unchanged, task 0 says why in
    one line, and the task is bound all the same."""
    victim = tmp / "bashrc"
    victim.write_text("export PATH=$PATH:~/bin\n")
    path = tmp / "shared.trace"
    if kind == "symlink":
        os.symlink(victim, path)
    elif kind == "dangling symlink":
        os.symlink(tmp / "created", path)
    else:
        os.link(victim, path)
    why = "has other names" if kind == "hard link" else "is a symbolic link"
    r = run(tmp, {**task_env(0, 2), "MPIBIND_TRACE": str(path),
                  "MPIBIND_RESTRICT": str(LAST)})
    assert r.rc == 0 and r.probe["aff"] == [LAST], r
    assert victim.read_text() == "export PATH=$PATH:~/bin\n"
    assert not (tmp / "created").exists()
    (line,) = lines(r)
    assert f"MPIBIND_TRACE='{path}'" in line and why in line, line


@pytest.mark.parametrize("kind", ["directory", "missing directory"])
def test_trace_path_that_cannot_be_written_says_so(tmp, kind):
    """Any path that cannot take the line gets task 0's one line, as the
    refused files do; the task is bound all the same."""
    path = tmp / "adir" if kind == "directory" else tmp / "missing" / "t"
    if kind == "directory":
        path.mkdir()
    why = "is a directory" if kind == "directory" else "No such file"
    r = run(tmp, {**task_env(0, 2), "MPIBIND_TRACE": str(path),
                  "MPIBIND_RESTRICT": str(LAST)})
    assert r.rc == 0 and r.probe["aff"] == [LAST], r
    (line,) = lines(r)
    assert f"MPIBIND_TRACE='{path}'" in line and why in line, line


@needs_root
def test_trace_file_of_another_user_is_refused(tmp):
    path = tmp / "theirs.trace"
    path.write_text("")
    os.chmod(path, 0o666)
    os.chown(path, 65534, 65534)
    r = run(tmp, {**task_env(0, 1), "MPIBIND_TRACE": str(path)})
    assert r.rc == 0 and path.read_text() == "", r
    (line,) = lines(r)
    assert "belongs to another user" in line, line


# ---- G05: contradictions, once per task ------------------------------------

@pytest.mark.parametrize("env", [
    {"OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"},
    {"OMPI_COMM_WORLD_LOCAL_RANK": "0"},
    {"SLURM_LOCALID": "5", "SLURM_NODEID": "0", "SLURM_STEP_TASKS_PER_NODE": "2"},
])
def test_contradiction_is_one_line_per_task(tmp, env):
    """A job script's every command inherits the preload: the task says it
    once, and its processes recognise the task's mark."""
    probe = ("import json, os; print(json.dumps({'aff': sorted(os.sched_getaffinity(0)),"
             " 'env': dict(os.environ)}))")
    script = f"/bin/true; /bin/true; env >/dev/null; {sys.executable} -c {shlex.quote(probe)}"
    r = run(tmp, env, argv=["/bin/sh", "-c", script])
    assert r.rc == 0 and len(lines(r)) == 1, r
    assert "contradicts" in lines(r)[0] or "is not" in lines(r)[0], r
    assert r.env["MPIBIND_APPLIED"] == "0", r
    assert re.fullmatch(r"\d+:[0-9a-f]{16}", r.env["MPIBIND_APPLIED_TASK"]), r


# ---- G11: records that cannot be applied -----------------------------------

def replace_record(path, i, record):
    """The node mapping file with record i replaced (the index rewritten)."""
    data = path.read_bytes()
    k = data.index(b"nodemap-end\n") + len(b"nodemap-end\n")
    key, body = data[:k], data[k:]
    n = int(body[:16], 16)
    offs = [int(body[17 * (j + 1):17 * (j + 1) + 16], 16) for j in range(n + 1)]
    recs = [body[offs[j]:offs[j + 1]] for j in range(n)]
    recs[i] = record
    o = [17 * (n + 2)]
    for rec in recs:
        o.append(o[-1] + len(rec))
    body = b"%016x\n" % n + b"".join(b"%016x\n" % x for x in o) + b"".join(recs)
    path.write_bytes(key + body)
    return recs


def record_of(path, i):
    data = path.read_bytes()
    k = data.index(b"nodemap-end\n") + len(b"nodemap-end\n")
    body = data[k:]
    a = int(body[17 * (i + 1):17 * (i + 1) + 16], 16)
    z = int(body[17 * (i + 2):17 * (i + 2) + 16], 16)
    return body[a:z]


@pytest.mark.parametrize("cpus", [str(LAST + 7), "", f"{LAST}-0", "0-",
                                  "4294967295", "0,2147483647",
                                  f"0-{LAST},2147483647"])
def test_record_that_cannot_be_applied_is_made_again(tmp, cpus):
    """Task 0's record edited to name a CPU the node lacks, an empty or
    reversed list, or a huge CPU id: task 0 maps the node again and binds
    as the mapping says, the file is replaced, and the next launch reads
    the good record.  Under a 1 GiB address-space limit: reading the
    record costs its length (a bitmap up to 2^31 took 256 MiB)."""
    cache = tmp / "c"
    env = {**task_env(0, 2), "MPIBIND_RESTRICT": str(LAST)}
    first = run(tmp, env, cache=cache)
    assert first.rc == 0 and first.trace[0][6] == "1", first
    good = record_of(map_file(cache), 0)
    assert good.startswith(f"cpus={LAST}\n".encode()), good
    replace_record(map_file(cache), 0, b"cpus=" + cpus.encode() + b"\nnthreads=1\n")

    def limit():
        if not SANITIZED:
            resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    e = clean_env()
    e.update(env, MPIBIND_CACHE_DIR=str(cache), MPIBIND_TRACE=str(tmp / "t"),
             LD_PRELOAD=PRELOAD)
    p = subprocess.run([sys.executable, "-c",
                        "import os; print(sorted(os.sched_getaffinity(0)))"],
                       env=e, capture_output=True, text=True, timeout=60,
                       preexec_fn=limit)
    assert p.returncode == 0 and p.stderr == "", p
    assert p.stdout.strip() == f"[{LAST}]", p
    assert record_of(map_file(cache), 0) == good
    again = run(tmp, env, cache=cache)
    assert again.rc == 0 and lines(again) == [], again
    assert again.trace[0][5] == "cache" and again.trace[0][6] == "1", again


def test_index_entry_off_a_record_bound_is_made_again(tmp):
    """An index entry moved into a record's last lines (record 1 starting
    in the middle of record 0's OMP_NUM_THREADS line): record 0 would end
    in the middle of a line, "OMP_NUM_THREADS=" with no value.  Task 0
    maps the node again instead, exports the whole value, and the file is
    replaced."""
    cache = tmp / "c"
    env = task_env(0, 2)
    first = run(tmp, env, cache=cache)
    assert first.rc == 0 and first.trace[0][6] == "1", first
    assert first.env["OMP_NUM_THREADS"] == "1", first
    path = map_file(cache)
    good = path.read_bytes()
    k = good.index(b"nodemap-end\n") + len(b"nodemap-end\n")
    at = k + 17 * 2                     # the entry where record 1 starts
    record0 = record_of(path, 0)
    cut = record0.index(b"OMP_NUM_THREADS=") + len(b"OMP_NUM_THREADS=")
    start0 = int(good[k + 17:k + 17 + 16], 16)
    path.write_bytes(good[:at] + b"%016x" % (start0 + cut) + good[at + 16:])
    assert record_of(path, 0).endswith(b"OMP_NUM_THREADS=")
    again = run(tmp, env, cache=cache)
    assert again.rc == 0 and lines(again) == [], again
    assert again.trace[0][6] == "1", again
    assert again.env["OMP_NUM_THREADS"] == "1", again
    assert path.read_bytes() == good


# ---- G12: one bound for OMP_NUM_THREADS ------------------------------------

@pytest.mark.parametrize("n", ["1073741825", "2147483647"])
def test_omp_num_threads_one_bound(tmp, n):
    """A thread count the tuning accepts is one the mapping file's reader
    reads: one mapping for the node's tasks (the file is not rewritten by
    each), each told the user's count."""
    cache = tmp / "c"
    inodes = set()
    for rank in range(4):
        r = run(tmp, {**task_env(rank, 4), "OMP_NUM_THREADS": n}, cache=cache)
        assert r.rc == 0 and lines(r) == [] and r.trace[0][6] == "1", r
        assert r.env["OMP_NUM_THREADS"] == n, r
        inodes.add(os.stat(map_file(cache)).st_ino)
    assert len(inodes) == 1


def test_omp_num_threads_beyond_the_bound(tmp):
    r = run(tmp, {**task_env(0, 1), "OMP_NUM_THREADS": "2147483648"})
    (line,) = lines(r)
    assert "OMP_NUM_THREADS='2147483648'" in line and "2147483647" in line, line
    assert r.env["MPIBIND_APPLIED"] == "0", r



@pytest.mark.parametrize("value", ["2 3", " 2 x", "2\t3,4"])
def test_omp_num_threads_first_entry_is_one_number(tmp, value):
    """Blanks around the first entry are fine ("\t2\n", " 2 ,4"); two words
    are no thread count, as OpenMP runtimes refuse them: one line naming
    the value, the task unbound, the value left as it was."""
    r = run(tmp, {**task_env(0, 2), "OMP_NUM_THREADS": value})
    assert r.rc == 0 and len(lines(r)) == 1, r
    assert "OMP_NUM_THREADS" in lines(r)[0] and "thread count" in lines(r)[0], r
    assert r.env["OMP_NUM_THREADS"] == value and r.env["MPIBIND_APPLIED"] == "0", r
    for ok in ("\t2\n", " 2 ,4"):
        good = run(tmp, {**task_env(0, 2), "OMP_NUM_THREADS": ok})
        assert good.rc == 0 and lines(good) == [], good
        assert good.trace[0][6] == "1", good

# ---- G10 and G13: the restart for a stale OpenMP runtime -------------------

def restart_env(extra=None):
    e = clean_env()
    e.update(task_env(0, 1), OMP_NUM_THREADS="4", MPIBIND_RESTRICT=str(LAST))
    e.update(extra or {})
    return e


def small_stack():
    # the argument-size limit is a quarter of the stack's (128 KiB here)
    resource.setrlimit(resource.RLIMIT_STACK, (512 << 10, 512 << 10))


def near_the_limit(tmp, extra, slack):
    """The probe run with the preload in an environment `slack` bytes
    below the largest one it can be started with (found by starting it
    without the preload: LD_PRELOAD blanked to the same length)."""
    import json
    env = restart_env({"MPIBIND_CACHE_DIR": str(tmp / "c"),
                       "MPIBIND_TRACE": str(tmp / "trace"),
                       "LD_PRELOAD": PRELOAD, **extra})

    def start(n, preload=True):
        e = dict(env, FILL="x" * n)
        if not preload:
            e["LD_PRELOAD"] = " " * len(PRELOAD)
        return subprocess.run([RESTART_PROBE], env=e, capture_output=True,
                              text=True, timeout=60, preexec_fn=small_stack)
    lo, hi = 0, 1 << 20
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            start(mid, preload=False)
            lo = mid
        except OSError:
            hi = mid
    p = start(lo - slack)
    trace = [TRACE_RE.match(l.rstrip("\n")) for l in open(tmp / "trace")]
    os.unlink(tmp / "trace")
    return p, json.loads(p.stdout), trace


@needs_openmp
@pytest.mark.skipif(SANITIZED, reason="the sanitizers' runtimes need more "
                    "stack than the 512 KiB that sets the argument limit")
@pytest.mark.skipif(len(BASE_AFF) < 2, reason="needs two CPUs")
def test_failed_restart_with_places_outside_the_task(tmp):
    """The user's OMP_PLACES=threads, OMP_PROC_BIND=close, read by libgomp
    before the preload (places on every CPU the task started with), and an
    environment so near the argument-size limit that the restart's execve
    fails (E2BIG): the runtime would bind a thread outside the task's CPU,
    so the task gives its binding up, says so in one line, the trace says
    bound=0 and nothing is exported; with room, the restart places every
    thread on the task's CPU and the new image writes the one trace line."""
    extra = {"OMP_PLACES": "threads", "OMP_PROC_BIND": "close"}
    p, out, trace = near_the_limit(tmp, extra, 60)
    (line,) = [l for l in p.stderr.splitlines() if l.strip()]
    assert "Argument list too long" in line and "running unbound" in line, line
    assert len(trace) == 1 and trace[0][6] == "0", trace
    assert out["applied"] == "0" and out["omp_num_threads"] == "4", out
    assert set().union(*map(set, out["threads"])) == set(BASE_AFF), out
    p, out, trace = near_the_limit(tmp, extra, 5000)
    assert p.stderr == "" and out["applied"] == "1", p
    assert len(trace) == 1 and trace[0][6] == "1" and trace[0][2] == str(out["pid"])
    assert all(t == [LAST] for t in out["threads"]), out


@needs_openmp
@pytest.mark.skipif(SANITIZED, reason="the sanitizers' runtimes need more "
                    "stack than the 512 KiB that sets the argument limit")
def test_failed_restart_threads_stay_in_the_task(tmp):
    """The runtime read no binding (mpibind exports OMP_PROC_BIND): its
    threads, unbound, inherit the task's CPU; a failed restart is one line
    and the task stays bound (bound=1 is true)."""
    p, out, trace = near_the_limit(tmp, {}, 60)
    (line,) = [l for l in p.stderr.splitlines() if l.strip()]
    assert "Argument list too long" in line and "stay within" in line, line
    assert len(trace) == 1 and trace[0][6] == "1", trace
    assert out["applied"] == "1" and all(t == [LAST] for t in out["threads"]), out


@needs_openmp
@pytest.mark.parametrize("mode", ["join", "zero"])
def test_no_restart_after_a_process_title(tmp, mode):
    """A library constructor that ran before the preload's wrote a process
    title over the arguments: the program is not started again (its
    arguments are gone), it runs once as it would without mpibind, and one
    line says why."""
    argv = [RESTART_PROBE, "a", "b", "c d"]
    env = {**task_env(0, 1), "ARGV_TITLE": mode}
    plain = run(tmp, {**env, "LD_PRELOAD": f"{SANITIZER_PRELOAD} {ARGV_TITLE}".strip()},
                preload=False, argv=argv)
    assert plain.rc == 0 and plain.probe["argv"][0] != RESTART_PROBE, plain
    r = run(tmp, {**env, "LD_PRELOAD": PRELOAD + " " + ARGV_TITLE},
            preload=False, argv=argv)
    assert r.rc == 0 and r.probe["argv"] == plain.probe["argv"], r
    (line,) = lines(r)
    assert "arguments were written over" in line, line
    assert len(r.trace) == 1 and r.trace[0][2] == str(r.probe["pid"]), r


@needs_openmp
def test_restart_keeps_the_arguments(tmp):
    """Without a title, the restart runs the program with its arguments
    (spaces kept), once, and the new image writes the task's one line."""
    argv = [RESTART_PROBE, "a", "", "c d"]
    r = run(tmp, {**task_env(0, 1), "MPIBIND_RESTRICT": str(LAST)},
            argv=argv)
    assert r.rc == 0 and r.probe["argv"] == argv and lines(r) == [], r
    assert r.probe["applied"] == "1", r
    assert all(t == [LAST] for t in r.probe["threads"]), r
    assert len(r.trace) == 1 and r.trace[0][6] == "1", r
