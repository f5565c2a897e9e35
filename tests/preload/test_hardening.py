"""The preload against hostile input (the hardening requirements): one
strict restrict-list grammar, messages that stay one line, launcher lists
read without expanding them, and an MPIBIND_APPLIED that only the same
task obeys.  Real processes, the real preload, as in test_preload.py."""

import os
import time

import pytest

from test_preload import BASE_AFF, run, task_env, tmp  # noqa: F401 (fixture)

LAST = BASE_AFF[-1]


# Lists that hwloc's own parser read silently wrong ('010' as CPU 8,
# 4294967297 as CPU 1, '5-2' as nothing) or at the cost of the number
# ('0,-1': a 512 MiB bitmap): refused with one line naming the value.
@pytest.mark.parametrize("lst", ["0,-1", "4294967297", "0,5-2",
                                 "0-4294967295", "0x1", "1,,2", "08 "])
def test_restrict_list_refused(tmp, lst):
    r = run(tmp, {**task_env(0, 1), "MPIBIND_RESTRICT": lst})
    assert r.rc == 0 and r.probe["aff"] == BASE_AFF, r
    lines = r.lines()
    assert len(lines) == 1 and "MPIBIND_RESTRICT" in lines[0], r
    assert repr(lst)[1:-1] in lines[0] or lst in lines[0], r
    assert r.env.get("MPIBIND_APPLIED") == "0", r


def test_restrict_list_decimal_and_open_range(tmp):
    """Leading zeros are decimal; 'N-' is N and up."""
    for lst in (f"0{LAST}", f"{LAST}-", f"{LAST}-2147483647"):
        r = run(tmp, {**task_env(0, 1), "MPIBIND_RESTRICT": lst})
        assert r.rc == 0 and r.trace and r.trace[0][6] == "1", (lst, r)
        assert r.probe["aff"] == [LAST], (lst, r)


def test_restrict_list_cost_is_the_node(tmp):
    """An open range to the largest id costs what the node is."""
    t0 = time.monotonic()
    r = run(tmp, {**task_env(0, 1), "MPIBIND_RESTRICT": "0-2147483647"})
    assert r.rc == 0 and r.probe["aff"] == BASE_AFF and r.trace[0][6] == "1", r
    assert time.monotonic() - t0 < 30  # a bitmap of 2^31 bits took minutes


def test_control_characters_stay_on_one_line(tmp):
    r = run(tmp, {**task_env(0, 2), "MPIBIND": "v,\nbogus\x1b[2J"})
    lines = r.lines()
    assert len(lines) == 1, r
    assert "\\nbogus\\x1b[2J" in lines[0] and "\x1b" not in r.stderr, r


def test_slurm_list_is_not_expanded(tmp):
    """'N(xM)' with a huge M is read entry by entry, and a task count the
    process cannot map is refused with one line before anything is
    allocated (the library knows what a mapping needs), not after
    gigabytes and minutes."""
    # SLURM_JOB_CPUS_PER_NODE: the job has whole nodes (else the step's
    # CPUs would be unknown and Slurm's binding kept, with no mapping)
    env = {"SLURM_LOCALID": "0", "SLURM_NODEID": "2147483646",
           "SLURM_STEP_TASKS_PER_NODE": "1(x2147483646),2147483647(x2)",
           "SLURM_JOB_CPUS_PER_NODE": "1000000(x2147483647)"}
    t0 = time.monotonic()
    r = run(tmp, env)
    assert r.rc == 0 and r.probe["aff"] == BASE_AFF, r
    lines = r.lines()
    assert len(lines) == 1 and "2147483647" in lines[0], r
    assert "too many" in lines[0] and "needs about" in lines[0], r
    assert r.env.get("MPIBIND_APPLIED") == "0", r
    assert time.monotonic() - t0 < 30, r


@pytest.mark.skipif("libasan" in os.environ["MPIBIND_TEST_PRELOAD"],
                    reason="AddressSanitizer reserves terabytes of address "
                    "space: no address-space limit can be set under it")
def test_slurm_huge_step_under_a_memory_limit(tmp):
    """The reported input, in a process limited to 2 GiB (ulimit -v, as a
    batch system's limit would be): refused at once."""
    import resource
    import subprocess
    from test_preload import PRELOAD, clean_env

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    e = clean_env()
    e.update({"SLURM_LOCALID": "0", "SLURM_NODEID": "0",
              "SLURM_STEP_TASKS_PER_NODE": "99999999(x99999999)",
              "SLURM_JOB_CPUS_PER_NODE": "1000000(x99999999)",
              "MPIBIND_CACHE_DIR": str(tmp / "cache"), "LD_PRELOAD": PRELOAD})
    p = subprocess.run(["/usr/bin/python3", "-c", "print('ran')"], env=e,
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=limit)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 0 and p.stdout == "ran\n", p
    assert len(lines) == 1 and "99999999" in lines[0], p
    assert "address-space limit" in lines[0], p


# ---- MPIBIND_APPLIED names the task it speaks of ----------------------

CHILD = ("import json, os, subprocess, sys; "
         "out = subprocess.run([sys.executable, '-c', {probe!r}], env={env}, "
         "capture_output=True, text=True).stdout; "
         "print(json.dumps({{'aff': sorted(os.sched_getaffinity(0)), "
         "'env': dict(os.environ), 'child': json.loads(out)}}))")
PROBE = ("import json, os; print(json.dumps({'aff': sorted(os.sched_getaffinity(0)), "
         "'env': dict(os.environ)}))")


def child_run(tmp, env, child_env_expr="dict(os.environ)"):
    """A task that starts one child process (inheriting the preload)."""
    code = CHILD.format(probe=PROBE, env=child_env_expr)
    return run(tmp, env, argv=["/usr/bin/python3", "-c", code])


def test_stray_applied_does_not_disable(tmp):
    """MPIBIND_APPLIED=1 exported by hand (or by a parent of another
    launch) names no task: the task still binds."""
    for v in ("1", "0"):
        r = run(tmp, {**task_env(0, 1), "MPIBIND_APPLIED": v,
                      "MPIBIND_RESTRICT": str(LAST)})
        assert r.trace and r.trace[0][6] == "1", r
        assert r.probe["aff"] == [LAST] and r.env["MPIBIND_APPLIED"] == "1", r


def test_same_task_children_skip(tmp):
    """The task's own child processes (same launcher variables) neither
    redo the work nor trace a second line."""
    r = child_run(tmp, {**task_env(0, 1), "MPIBIND_RESTRICT": str(LAST)})
    assert len(r.trace) == 1 and r.trace[0][6] == "1", r
    assert r.probe["child"]["aff"] == [LAST], r


def test_nested_launch_applies(tmp):
    """A child that is a task of another launch (other launcher variables:
    a nested mpiexec) is mapped anew, inside what its parent task got."""
    expr = ("dict(os.environ, MPI_LOCALRANKID='1', MPI_LOCALNRANKS='2', "
            "MPIBIND_RESTRICT='0-')")
    r = child_run(tmp, {**task_env(0, 1), "MPIBIND": "dryrun"}, expr)
    assert len(r.trace) == 2, r
    assert [int(t[3]) for t in r.trace] == [0, 1] and r.trace[1][4] == "2", r
    assert r.probe["child"]["env"]["MPIBIND_APPLIED"] == "1"
    assert (r.probe["child"]["env"]["MPIBIND_APPLIED_TASK"] !=
            r.probe["env"]["MPIBIND_APPLIED_TASK"]), r


def test_real_nested_mpiexec_applies(tmp):
    """A task of mpiexec.mpich that runs mpiexec.mpich itself: the inner
    launch's ranks inherit the outer task's MPIBIND_APPLIED=1, and are
    still mapped, each bound to its own CPUs."""
    import shutil
    import subprocess
    from test_preload import PRELOAD, clean_env
    mpiexec = shutil.which("mpiexec.mpich")
    if mpiexec is None:
        pytest.skip("MPICH's mpiexec.mpich is not installed")
    inner = (f"{mpiexec} -n 2 /usr/bin/python3 -c "
             "'import os; print(sorted(os.sched_getaffinity(0)))'")
    e = clean_env()
    e.update({"LD_PRELOAD": PRELOAD, "MPIBIND_TRACE": str(tmp / "trace"),
              "MPIBIND_CACHE_DIR": str(tmp / "cache")})
    p = subprocess.run([mpiexec, "-n", "1", "/bin/sh", "-c", inner], env=e,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p
    from test_preload import TRACE_RE
    trace = [TRACE_RE.match(l.rstrip("\n")) for l in open(tmp / "trace")]
    tasks = sorted((t[3], t[4]) for t in trace)
    assert tasks == [("0", "1"), ("0", "2"), ("1", "2")], (trace, p)
    assert all(t[6] == "1" for t in trace), trace
    if len(BASE_AFF) >= 2:
        inner_cpus = sorted(t[7] for t in trace if t[4] == "2")
        assert len(set(inner_cpus)) == 2, inner_cpus  # not the same CPUs
