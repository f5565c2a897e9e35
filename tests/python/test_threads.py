"""A handle shared by threads, and copies of a handle (the hostile test's
G07): CFFI releases the GIL in every C call and the C handle is not thread
safe, so two threads using one handle crashed the interpreter (SIGSEGV, a
malloc abort), and copy.copy() made a second Python object on the same C
handle (a use after free, then a double free: SIGABRT).  The module now
holds a lock per handle around every call (MpibindHandle's docstring) and
refuses copies as it refuses pickle.

The reproducers run in a child interpreter, so that a crash is reported as
this test's failure (with the child's signal) instead of killing pytest.
Their work is bounded by iteration counts; the timeout is only a guard.
"""
import inspect
import os
import signal
import subprocess
import sys
import threading

import pytest

import mpibind
from conftest import topo

LASSEN = "coral-lassen.xml"   # 160 PUs, 4 GPUs


def run_child(code, timeout=300):
    """Runs code in a child interpreter with this one's environment; the
    CompletedProcess (text)."""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=timeout, env=dict(os.environ))
    return p


def child_failure(p):
    if p.returncode < 0:
        return "the child interpreter died of signal %d (%s)\n%s" % (
            -p.returncode, signal.strsignal(-p.returncode), p.stderr[-3000:])
    return "child exit %d\n%s%s" % (p.returncode, p.stdout[-2000:],
                                     p.stderr[-3000:])


COPY_CHILD = r"""
import copy, gc, pickle, mpibind
h = mpibind.MpibindHandle(ntasks=2)
for what, f in (("copy.copy", copy.copy), ("copy.deepcopy", copy.deepcopy),
                ("pickle.dumps", pickle.dumps)):
    try:
        other = f(h)
    except TypeError as e:
        assert "cannot be copied or pickled" in str(e), (what, str(e))
        print(what, "refused")
    else:
        print(what, "ACCEPTED", other)
        del other
        gc.collect()
# the handle is whole: it maps, and goes away once
h.mpibind()
print("ntasks", h.ntasks, "cpus", len(h.get_cpus_ptask(0)) > 0)
del h
gc.collect()
print("done")
"""


def test_copy_and_pickle_refused():
    p = run_child(COPY_CHILD)
    assert p.returncode == 0, child_failure(p)
    assert p.stdout.split("\n") == [
        "copy.copy refused", "copy.deepcopy refused", "pickle.dumps refused",
        "ntasks 2 cpus True", "done", ""], p.stdout + p.stderr


# Threads hammer one handle: two map it and read every kind of output
# (getters whose results point into the handle), one sets an input to the
# value it has (which discards the mapping, so readers may meet "no
# mapping"), and finally one finalizes it while the others still run.
# Every result a reader gets must be the mapping's: a lock makes each
# call whole.
THREADS_CHILD = r"""
import sys, threading, mpibind
TOPO, ITER = sys.argv[1], int(sys.argv[2])
errors = []

def expected(**kw):
    h = mpibind.MpibindHandle(**kw)
    h.mpibind()
    out = ([h.get_cpus_ptask(t) for t in range(h.ntasks)],
           [h.get_gpus_ptask(t) for t in range(h.ntasks)],
           h.nthreads, h.mapping_snprint())
    h.finalize()
    return out

for kw in (dict(ntasks=4), dict(ntasks=4, topology_file=TOPO)):
    want = expected(**kw)
    h = mpibind.MpibindHandle(**kw)
    halfway = [threading.Event() for _ in range(2)]
    reads = [0, 0]

    def reader(k):
        for i in range(ITER):
            if i == ITER // 2:
                halfway[k].set()
            t = (i + k) % 4
            try:
                h.mpibind()
                got = (h.get_cpus_ptask(t), h.get_gpus_ptask(t))
                if got != (want[0][t], want[1][t]):
                    errors.append("task %d: %r, expected %r" % (t, got, (want[0][t], want[1][t])))
                reads[k] += 1
                if i % 16 == 0:
                    # the input (an int) when the setter discarded the mapping
                    nth = h.nthreads
                    if isinstance(nth, list) and nth != want[2]:
                        errors.append("nthreads %r, expected %r" % (nth, want[2]))
                    if h.mapping_snprint() != want[3]:
                        errors.append("the report differs")
                    h.get_env_var_values(h.get_env_var_names()[0])
            except mpibind.MpibindError as e:
                # the setter discarded the mapping, or the main thread finalized
                if "finalized" in str(e):
                    return
                if "no mapping" not in str(e):
                    errors.append("reader: %s" % e)
            except Exception as e:
                errors.append("reader: %r" % e)
                return

    def setter():
        for i in range(ITER // 4):
            try:
                h.ntasks = 4
                h.greedy = h.greedy
            except mpibind.MpibindError as e:
                if "finalized" in str(e):   # the main thread finalized
                    return
                errors.append("setter: %s" % e)
            except Exception as e:
                errors.append("setter: %r" % e)
                return

    ts = [threading.Thread(target=reader, args=(k,)) for k in range(2)]
    ts.append(threading.Thread(target=setter))
    for t in ts:
        t.start()
    for e in halfway:
        e.wait()
    h.finalize()          # while the readers are at work
    for t in ts:
        t.join()
    print("handle", "file" if "topology_file" in kw else "live",
          "read" if min(reads) >= ITER // 10 else "read little: %s" % reads)

print("\n".join(errors[:20]) if errors else "no error")
"""


def test_one_handle_shared_by_threads():
    p = subprocess.run([sys.executable, "-c", THREADS_CHILD, topo(LASSEN),
                        "1500"], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ))
    assert p.returncode == 0, child_failure(p)
    assert p.stdout.split("\n") == ["handle live read", "handle file read",
                                    "no error", ""], p.stdout + p.stderr


def _public_members():
    for name, member in vars(mpibind.MpibindHandle).items():
        if name.startswith("_") and name != "__repr__":
            continue
        if isinstance(member, property):
            for f in (member.fget, member.fset):
                if f is not None:
                    yield name, f
        elif inspect.isfunction(member):
            yield name, member


def test_every_public_call_holds_the_lock():
    """A method or property added later without the lock would let two
    threads into the C handle again: each one takes it."""
    members = list(_public_members())
    assert len(members) > 20
    missing = [name for name, f in members
               if not getattr(f, "holds_handle_lock", False)]
    assert missing == [], "without the handle's lock: %s" % missing


def test_lock_is_reentrant_and_released():
    """Calls that call each other (the report, the variables, repr) do not
    deadlock, and the lock is free after each call, even one that raised:
    another thread gets through (the join's timeout only guards against a
    hang)."""
    h = mpibind.MpibindHandle(ntasks=2, topology_file=topo(LASSEN))
    with pytest.raises(mpibind.MpibindError):
        h.get_cpus_ptask(0)        # no mapping yet
    h.mpibind()
    assert h.get_env_vars_ptask(1)
    assert "mapped" in repr(h)
    seen = []
    t = threading.Thread(target=lambda: seen.append(h.get_cpus_ptask(1)))
    t.start()
    t.join(120)
    assert not t.is_alive(), "another thread waits for the handle's lock"
    assert seen == [h.get_cpus_ptask(1)]
    h.finalize()
