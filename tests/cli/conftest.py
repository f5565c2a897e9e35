"""Shared helpers of the cli suite: run the built `mpibind` command for real.

The meson test passes MPIBIND_EXE (the built command) and
MPIBIND_TOPOLOGIES (the directory of the reference XML files).
"""
import os
import re
import subprocess

import pytest

EXE = os.environ.get("MPIBIND_EXE", "")
TOPOLOGIES = os.environ.get("MPIBIND_TOPOLOGIES", "")

# Variables of a launcher or of mpibind that would change what the command
# does; the tests set the ones they want explicitly.
_LEAKY = ("MPIBIND", "MPIBIND_RESTRICT", "MPIBIND_RESTRICT_TYPE",
          "MPIBIND_TOPOFILE", "MPIBIND_APPLIED", "OMP_NUM_THREADS",
          "OMP_PLACES", "OMP_PROC_BIND", "CUDA_VISIBLE_DEVICES",
          "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ZE_AFFINITY_MASK",
          "LD_PRELOAD")
_LAUNCHER_PREFIXES = ("OMPI_", "PMIX_", "PMI_", "MPI_LOCAL", "SLURM_",
                      "FLUX_", "PALS_", "MV2_", "HYDRA_")


def clean_env(**extra):
    """This process's environment without launcher or mpibind variables,
    plus extra (a value None removes the variable)."""
    env = {k: v for k, v in os.environ.items()
           if k not in _LEAKY and not k.startswith(_LAUNCHER_PREFIXES)}
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def topo(name):
    path = os.path.join(TOPOLOGIES, name)
    assert os.path.isfile(path), f"reference topology missing: {path}"
    return path


def case(name):
    """A real node of a kind that used to abort or map badly
    (tests/data/cases)."""
    path = os.path.join(os.path.dirname(TOPOLOGIES), "cases", name)
    assert os.path.isfile(path), f"case topology missing: {path}"
    return path


def run(args, env=None, timeout=60, prefix=()):
    """Runs the command (under a launcher when prefix is given) with a
    timeout, and returns the CompletedProcess (text mode)."""
    cmd = ["timeout", str(timeout)] + list(prefix) + [EXE] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True,
                          env=env if env is not None else clean_env(),
                          timeout=timeout + 30)


# The list syntax and the report line are the pytest suites' shared ones.
from mpibind_testutil import (hwlist, parse_list, report_line,  # noqa: E402,F401
                              without_nics)


def report(rows):
    """rows: (nths, gpus, cpus) per task -> the whole expected report."""
    return "".join(report_line(t, *r) + "\n" for t, r in enumerate(rows))


_LINE = re.compile(r"^mpibind: task +(\d+) nths +(\d+) gpus (\S*)(?: nics (\S*))? "
                   r"cpus (\S+)$")


def parse_report(text):
    """The command's report -> [(nths, [gpus], set(cpus))] by task."""
    rows = []
    for line in text.splitlines():
        m = _LINE.match(line)
        assert m, f"not a report line: {line!r}"
        assert int(m.group(1)) == len(rows), line
        gpus = [g for g in m.group(3).split(",") if g]
        rows.append((int(m.group(2)), gpus, parse_list(m.group(5))))
    return rows


def check_error(res, value, status=2):
    """A refused input: the expected exit status, nothing on stdout, exactly
    one line on stderr starting with 'mpibind: ' and naming value."""
    assert res.returncode == status, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == "", res.stdout
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("mpibind: "), lines[0]
    assert res.stderr.endswith("\n")
    if value is not None:
        assert value in lines[0], (value, lines[0])
    return lines[0]


@pytest.fixture(scope="session", autouse=True)
def _exe_present():
    assert EXE and os.access(EXE, os.X_OK), \
        f"MPIBIND_EXE does not name the built command: {EXE!r}"


# Meson's protocol: exit 77 means "skipped".  A file whose every test was
# skipped (a launcher truly absent) reports 77 instead of a pass.
_outcomes = {"passed": 0, "skipped": 0, "failed": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.skipped):
        if report.skipped:
            _outcomes["skipped"] += 1
        elif report.passed:
            _outcomes["passed"] += 1
        else:
            _outcomes["failed"] += 1


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and _outcomes["skipped"] and not _outcomes["passed"] \
            and not _outcomes["failed"]:
        session.exitstatus = 77
