"""mpibind.bind_task(): workers started from Python bind themselves as
tasks of their node's mapping (issue 17), through the helper's --share
mode and the node mapping file the preload's tasks use.

What they pin down (python/mpibind/task.py, docs/interfaces.md):
- two multiprocessing workers started at once: distinct CPUs, each its
  task's of mpibind's mapping (the command's preview), every thread bound,
  OMP_NUM_THREADS exported; one mapping of the node (one discovery: one
  worker's share says `discovered`, the other's `cache`; one mapping file);
- a worker that imported torch first: a RuntimeWarning (its OpenMP pool
  already read OMP_*);
- a GPU runtime already initialized in the process: MpibindError, and
  nothing changed; a GPU driver loaded but not initialized is fine (a
  stand-in libcuda.so.1 with the driver's cuInit/cuDeviceGetCount
  contract: the machine has no GPU);
- on GPU nodes' XML (dryrun): every worker the same list of the node's
  GPUs, device i worker i's; visible_devices='task' its own only;
- bad arguments: ValueError/TypeError naming them; MPIBIND=off: None;
  MPIBIND's dryrun: not bound; its membind (not applied here): a warning.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import torchlib as tl

pytestmark = pytest.mark.skipif(tl.torch_missing() is not None,
                                reason=str(tl.torch_missing()))

LASSEN = os.path.join(tl.TOPOS, "coral-lassen.xml")
TIOGA = os.path.join(tl.TOPOS, "eas-tioga.xml")


def run_py(tmp, code, timeout=180, **env):
    """Python (the interpreter with torch) running code from a file (the
    spawned workers of multiprocessing import it), in a clean environment
    with this test's cache directory."""
    script = tmp / "script.py"
    script.write_text(textwrap.dedent(code))
    p = subprocess.run([sys.executable, str(script)],
                       env=tl.clean_env(tmp, **env), capture_output=True,
                       text=True, timeout=timeout)
    return p


def result(p):
    """The last 'RESULT <python literal>' line."""
    import ast
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    assert p.returncode == 0 and lines, tl.explain(p)
    return ast.literal_eval(lines[-1][len("RESULT "):])


WORKERS = """
import multiprocessing as mp, os, sys, warnings

def work(i, n, q, torch_first, kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if torch_first:
            import torch
        import mpibind
        s = mpibind.bind_task(i, n, **kwargs)
    masks = set()
    for tid in os.listdir("/proc/self/task"):
        masks.add(tuple(sorted(os.sched_getaffinity(int(tid)))))
    q.put((i, {"cpus": s.cpus, "nthreads": s.nthreads, "gpus": s.gpus,
               "topology": s.topology, "masks": sorted(masks),
               "env": {k: os.environ.get(k) for k in (
                   "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                   "ROCR_VISIBLE_DEVICES", "OMP_PLACES")},
               "warnings": [str(w.message) for w in caught]}))

if __name__ == "__main__":
    n, torch_first, kwargs = %r
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    ps = [ctx.Process(target=work, args=(i, n, q, torch_first, kwargs))
          for i in range(n)]
    for p in ps:
        p.start()
    got = {}
    while len(got) < n and (any(p.is_alive() for p in ps) or not q.empty()):
        try:
            i, share = q.get(timeout=1)
            got[i] = share
        except Exception:
            pass
    for p in ps:
        p.join()
    print("RESULT", repr(got))
"""


def run_workers(tmp, n, torch_first=False, **kwargs):
    return result(run_py(tmp, WORKERS % ((n, torch_first, kwargs),)))


def map_files(tmp):
    return [f for f in os.listdir(tmp / "cache")
            if f.startswith("map-") and f.endswith(".txt")]


def test_workers_started_at_once_share_one_mapping(tmp_path):
    got = run_workers(tmp_path, 2)
    want = tl.preview(2, restrict=",".join(map(str, sorted(os.sched_getaffinity(0)))))
    for i, w in got.items():
        nthreads, _, cpus = want[i]
        assert set(w["cpus"]) == cpus and w["masks"] == [tuple(sorted(cpus))], w
        assert w["nthreads"] == nthreads and w["env"]["OMP_NUM_THREADS"] == str(nthreads)
        assert w["env"]["OMP_PLACES"] is None, w   # an interpreter
        assert w["warnings"] == [], w
    assert not set(got[0]["cpus"]) & set(got[1]["cpus"])
    # one discovery: the other worker read the first one's mapping
    assert sorted(w["topology"] for w in got.values()) == ["cache", "discovered"]
    assert len(map_files(tmp_path)) == 1


def test_torch_imported_first_is_warned(tmp_path):
    got = run_workers(tmp_path, 2, torch_first=True)
    for w in got.values():
        assert len(w["warnings"]) == 1, w
        assert "OpenMP runtime" in w["warnings"][0], w
        assert "torch.set_num_threads(%d)" % w["nthreads"] in w["warnings"][0]


@pytest.mark.parametrize("xml,var,n", [(LASSEN, "CUDA_VISIBLE_DEVICES", 2),
                                       (TIOGA, "ROCR_VISIBLE_DEVICES", 4)])
def test_gpus_device_i_is_worker_is(tmp_path, xml, var, n):
    want = tl.preview(n, topology=xml)
    got = run_workers(tmp_path, n, dryrun=True, topology_file=xml)
    values = {w["env"][var] for w in got.values()}
    assert len(values) == 1, got
    order = values.pop().split(",")
    for i, w in got.items():
        assert w["gpus"] == want[i][1], (w, want[i])
        assert order[i] == want[i][1][0], (order, want)
    got = run_workers(tmp_path, n, dryrun=True, topology_file=xml,
                      visible_devices="task")
    for i, w in got.items():
        assert w["env"][var] == ",".join(want[i][1]), (w, want[i])


# A GPU driver's contract as CUDA's libcuda.so.1 has it (the CUDA Driver
# API: cuDeviceGetCount returns CUDA_ERROR_NOT_INITIALIZED, 3, before
# cuInit): this machine has no GPU, so the test loads this stand-in.
STAND_IN_CUDA = r"""
static int initialized;
int cuInit(unsigned int flags) { (void)flags; initialized = 1; return 0; }
int cuDeviceGetCount(int *count) {
  if (!initialized) return 3;
  *count = 0;
  return 0;
}
"""


@pytest.fixture
def stand_in_cuda(tmp_path):
    cc = os.environ.get("CC") or "cc"
    src = tmp_path / "cuda.c"
    src.write_text(STAND_IN_CUDA)
    so = tmp_path / "libcuda.so.1"
    p = subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1",
                        "-o", str(so), str(src)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("no C compiler for the stand-in driver: %s" % p.stderr)
    return so


GPU_CHECK = """
import ctypes, os, mpibind
cuda = ctypes.CDLL(%r, mode=ctypes.RTLD_GLOBAL)
if %r:
    assert cuda.cuInit(0) == 0
before = os.sched_getaffinity(0), os.environ.get("OMP_NUM_THREADS")
try:
    s = mpibind.bind_task(0, 2)
    print("RESULT", repr(("bound", s.cpus)))
except mpibind.MpibindError as e:
    after = os.sched_getaffinity(0), os.environ.get("OMP_NUM_THREADS")
    print("RESULT", repr(("error", str(e), before == after)))
"""


def test_gpu_runtime_initialized_is_refused(tmp_path, stand_in_cuda):
    what, msg, unchanged = result(run_py(tmp_path, GPU_CHECK % (str(stand_in_cuda), True)))
    assert what == "error" and unchanged, msg
    assert "CUDA" in msg and "already initialized" in msg, msg
    # loaded, not initialized: the devices can still be chosen
    what, cpus = result(run_py(tmp_path, GPU_CHECK % (str(stand_in_cuda), False)))
    assert what == "bound" and cpus, cpus


BAD = """
import mpibind
out = []
for args, kwargs in %r:
    try:
        mpibind.bind_task(*args, **kwargs)
        out.append("no error")
    except Exception as e:
        out.append("%%s: %%s" %% (type(e).__name__, e))
print("RESULT", repr(out))
"""


def test_bad_arguments(tmp_path):
    cases = [((2, 2), {}), ((0, 0), {}), (("0", 2), {}),
             ((0, 2), {"smt": -1}), ((0, 2), {"visible_devices": "mine"}),
             ((0, 2), {"restrict_ids": "abc"}), ((0, 2), {"nthreads": 0}),
             ((0, 2), {"greedy": 2}), ((0, 2), {"frobnicate": 1})]
    out = result(run_py(tmp_path, BAD % (cases,)))
    kinds = [o.split(":")[0] for o in out]
    assert kinds == ["ValueError"] * 8 + ["TypeError"], out
    assert "abc" in out[5] and "mine" in out[4] and "frobnicate" in out[8], out
    assert not (tmp_path / "cache").exists()  # nothing was mapped


ENV_WORDS = """
import os, warnings, mpibind
before = os.sched_getaffinity(0)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    s = mpibind.bind_task(0, 2)
print("RESULT", repr((s.bound, os.sched_getaffinity(0) == before,
                      os.environ.get("OMP_NUM_THREADS"),
                      [str(x.message) for x in w])))
"""


def test_environment_words(tmp_path):
    """MPIBIND's dryrun: exported, not bound; its membind, which bind_task
    does not apply: said."""
    bound, same, omp, warned = result(run_py(tmp_path, ENV_WORDS, MPIBIND="dryrun"))
    assert not bound and same and omp is not None and warned == [], (bound, same, omp, warned)
    if len(os.sched_getaffinity(0)) > 1:
        bound, same, omp, warned = result(run_py(tmp_path, ENV_WORDS, MPIBIND="membind"))
        assert bound and not same and len(warned) == 1 and "membind" in warned[0], warned


def test_twice_and_off(tmp_path):
    out = result(run_py(tmp_path, """
        import os, warnings, mpibind
        s = mpibind.bind_task(1, 2)
        try:
            mpibind.bind_task(0, 2)
            again = "no error"
        except mpibind.MpibindError as e:
            again = str(e)
        print("RESULT", repr((s.task, again)))
        """))
    assert out[0] == 1 and "task 1 of 2 already" in out[1], out
    out = result(run_py(tmp_path, """
        import os, warnings, mpibind
        before = os.sched_getaffinity(0)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s = mpibind.bind_task(0, 2)
        print("RESULT", repr((s, [str(x.message) for x in w],
                              os.sched_getaffinity(0) == before,
                              os.environ.get("OMP_NUM_THREADS"))))
        """, MPIBIND="off"))
    assert out[0] is None and out[2] and out[3] is None, out
    assert len(out[1]) == 1 and "off" in out[1][0], out


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))
