"""The command against hostile input (the hardening requirements): an
inherited MPIBIND_APPLIED never disables an explicit wrapper invocation,
and a task count whose mapping cannot fit is refused at once with one
line."""
import os
import resource
import subprocess
import time

import pytest

from conftest import EXE, check_error, clean_env, run, topo

QUARTZ = "cts1-quartz-smt1.xml"
LAST = sorted(os.sched_getaffinity(0))[-1]
AFFINITY = ("import os; print(','.join(map(str, "
            "sorted(os.sched_getaffinity(0)))))")


@pytest.mark.parametrize("mark", [None, "1:0000000000000000", "junk"])
def test_inherited_applied_does_not_disable_the_wrapper(mark):
    """MPIBIND_APPLIED=1 mpibind --restrict N -- prog: the options apply."""
    env = clean_env(MPIBIND_APPLIED="1", MPIBIND_APPLIED_TASK=mark)
    res = run(["--restrict", str(LAST), "--", "/usr/bin/python3", "-c",
               AFFINITY], env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(LAST), (res.stdout, res.stderr)


def test_huge_ntasks_fails_fast():
    """2147483647 tasks: one line saying what the mapping needs, before
    anything is allocated (it took 40-80 s and 4 GB)."""
    t0 = time.monotonic()
    res = run(["-n", "2147483647", "--topology", topo(QUARTZ)], timeout=30)
    line = check_error(res, "2147483647", status=1)
    assert "needs about" in line
    assert time.monotonic() - t0 < 30


def _sanitized():
    out = subprocess.run(["ldd", EXE], capture_output=True, text=True).stdout
    return "libasan" in out


@pytest.mark.skipif(_sanitized(), reason="AddressSanitizer reserves "
                    "terabytes of address space: no ulimit -v under it")
def test_ntasks_beyond_the_process_limit():
    """Under ulimit -v 1 GiB, 50 million tasks (about 7 GiB of mapping) are
    refused with one line naming the limit, having used almost nothing."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    res = subprocess.run([EXE, "-n", "50000000", "--topology", topo(QUARTZ)],
                         capture_output=True, text=True, env=clean_env(),
                         timeout=60, preexec_fn=limit)
    line = check_error(res, "50000000", status=1)
    assert "address-space limit" in line, line
    # the child's peak stayed small (ru_maxrss in KiB): nothing allocated
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert max(peak, before) < 200 * 1024, peak
