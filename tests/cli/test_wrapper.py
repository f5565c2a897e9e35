"""Launch-wrapper mode, `mpibind [options] -- program args...`, run for
real: standalone, under Open MPI's mpirun and under MPICH's mpiexec.

What a rank should get comes from docs/algorithm.md's tables (GPU nodes through
--topology plus --dryrun) or from the preview of the same node
(`mpibind -n N`, itself checked against hwloc-calc in test_preview.py).
What it got is read from the kernel (/proc/<pid>/status) and from the
environment the program sees.
"""
import os
import shutil

import pytest

from conftest import (EXE, check_error, clean_env, parse_list, parse_report,
                      run, topo)

FIELDS = ("rank", "cpus", "OMP_NUM_THREADS", "MPIBIND_APPLIED",
          "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "OMP_PLACES",
          "OMP_PROC_BIND", "CUDA_DEVICE_ORDER")


def probe(rank_var):
    """A program that prints one line: its rank (from rank_var), its own
    allowed CPUs as the kernel says, and the variables of FIELDS ('unset'
    when absent).  One printf per process, so that launcher output of
    several ranks does not interleave inside a line."""
    fmt = "|".join(["%s"] * len(FIELDS)) + "\\n"
    values = [f'"{rank_var}"',
              '"$(grep ^Cpus_allowed_list: /proc/$$/status | cut -f2)"']
    values += ['"${%s-unset}"' % v for v in FIELDS[2:]]
    return ["sh", "-c", f'printf "{fmt}" ' + " ".join(values)]


def parse_probe(stdout, nranks):
    out = {}
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != len(FIELDS):
            continue  # not a probe line
        rec = dict(zip(FIELDS, parts))
        rec["cpus"] = parse_list(rec["cpus"])
        out[int(rec["rank"])] = rec
    assert sorted(out) == list(range(nranks)), stdout
    return out


def preview(ntasks, options=()):
    """The preview of this node (live) for ntasks."""
    res = run(["-n", str(ntasks)] + list(options))
    assert res.returncode == 0, res.stderr
    return parse_report(res.stdout)


def my_cpus():
    return set(os.sched_getaffinity(0))


def first_pu_only():
    """taskset prefix that starts a program on one PU, so that a wrapper
    that binds it elsewhere is visible."""
    assert shutil.which("taskset"), "taskset (util-linux) is needed"
    return ["taskset", "-c", str(min(my_cpus()))]


def openmpi():
    exe = shutil.which("mpirun.openmpi") or shutil.which("mpirun")
    if not exe:
        pytest.skip("Open MPI's mpirun is not installed")
    return exe


def mpich():
    exe = shutil.which("mpiexec.mpich")
    if not exe:
        pytest.skip("MPICH's mpiexec.mpich is not installed")
    return exe


def mpirun_prefix(np, bind="none"):
    return [openmpi(), "--allow-run-as-root", "--oversubscribe",
            "--bind-to", bind, "-np", str(np)]


def mpich_prefix(np):
    return [mpich(), "-n", str(np)]


OMPI_RANK = "$OMPI_COMM_WORLD_LOCAL_RANK"
MPICH_RANK = "$MPI_LOCALRANKID"


# --- standalone --------------------------------------------------------------

def test_standalone_binds_to_the_one_task_mapping():
    [(nths, _gpus, cpus)] = preview(1)
    res = run(["--", "/bin/cat", "/proc/self/status"])
    assert res.returncode == 0, res.stderr
    lines = [l for l in res.stdout.splitlines()
             if l.startswith("Cpus_allowed_list:")]
    assert len(lines) == 1
    assert parse_list(lines[0].split(":", 1)[1]) == cpus


def test_standalone_stays_within_its_cpus():
    """Started on one PU (taskset): those are the CPUs the launch gave it
    (the job's CPUs: never bind outside them), so the one task maps
    within them, never beyond."""
    first = min(my_cpus())
    [(nths, _gpus, cpus)] = preview(1, ["--restrict", str(first)])
    res = run(["-v", "--", "/bin/sh", "-c",
               "grep Cpus_allowed_list /proc/self/status; echo OMP=$OMP_NUM_THREADS"],
              prefix=first_pu_only())
    assert res.returncode == 0, res.stderr
    lines = [l for l in res.stdout.splitlines()
             if l.startswith("Cpus_allowed_list:")]
    assert [parse_list(l.split(":", 1)[1]) for l in lines] == [{first}] == [cpus]
    assert "OMP=%d" % nths in res.stdout.splitlines()
    if len(my_cpus()) > 1:
        assert any("mapping within CPUs %d" % first in l
                   for l in res.stderr.splitlines()), res.stderr


def test_standalone_exports():
    [(nths, _gpus, _cpus)] = preview(1)
    res = run(["--", "env"])
    assert res.returncode == 0, res.stderr
    env = dict(l.split("=", 1) for l in res.stdout.splitlines() if "=" in l)
    assert env["OMP_NUM_THREADS"] == str(nths)
    assert env["OMP_PLACES"] == "threads"
    assert env["OMP_PROC_BIND"] == "spread"
    assert env["MPIBIND_APPLIED"] == "1"
    # this node has no GPU
    for var in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                "ZE_AFFINITY_MASK"):
        assert var not in env


def test_standalone_nthreads_option():
    res = run(["--nthreads", "3", "--"] + probe("0"))
    assert res.returncode == 0, res.stderr
    rec = parse_probe(res.stdout, 1)[0]
    assert rec["OMP_NUM_THREADS"] == "3"
    expected = preview(1, ["--nthreads", "3"])[0]
    assert rec["cpus"] == expected[2]


def test_program_arguments_are_passed_untouched():
    res = run(["--", "sh", "-c", 'printf "%s;" "$@"', "x", "-n", "3",
               "--", "--env", ""])
    assert res.returncode == 0, res.stderr
    assert res.stdout == "-n;3;--;--env;;"


def test_program_exit_status_is_kept():
    res = run(["--", "sh", "-c", "exit 5"])
    assert res.returncode == 5


def test_verbose_reports_on_stderr():
    res = run(["-v", "--", "true"])
    assert res.returncode == 0
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert lines[0] == "mpibind: 0 GPUs on this node"
    assert parse_report("\n".join(lines[1:]) + "\n") == preview(1)


def test_mpibind_off_changes_nothing():
    start = first_pu_only()
    res = run(["--"] + probe("0"), prefix=start,
              env=clean_env(MPIBIND="off"))
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    rec = parse_probe(res.stdout, 1)[0]
    assert rec["cpus"] == {min(my_cpus())}
    for var in FIELDS[2:]:
        assert rec[var] == "unset", var


def test_dryrun_does_not_bind_standalone():
    res = run(["--dryrun", "--"] + probe("0"), prefix=first_pu_only())
    assert res.returncode == 0, res.stderr
    rec = parse_probe(res.stdout, 1)[0]
    assert rec["cpus"] == {min(my_cpus())}
    # mapped within the one PU it was started on (the job's CPUs: never
    # bind outside them)
    assert rec["OMP_NUM_THREADS"] == str(preview(1, ["--restrict", str(min(my_cpus()))])[0][0])


def test_problem_leaves_program_unbound_and_running():
    """An smt above any node's hardware threads: one line on stderr, the
    program runs, unbound."""
    res = run(["--smt", "1000", "--"] + probe("0"), prefix=first_pu_only())
    assert res.returncode == 0, res.stderr
    rec = parse_probe(res.stdout, 1)[0]
    assert rec["cpus"] == {min(my_cpus())}
    # mpibind_auto_task.h: MPIBIND_APPLIED is 0 after a reported problem
    assert rec["MPIBIND_APPLIED"] == "0"
    assert rec["OMP_NUM_THREADS"] == "unset"
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: ")
    assert "1000" in lines[0]


def test_strict_problem_stops_the_launch():
    res = run(["--strict", "--smt", "1000", "--", "echo", "ran"])
    assert res.returncode != 0
    assert "ran" not in res.stdout
    assert res.stdout == ""
    assert "1000" in res.stderr


def test_foreign_topology_refused_without_dryrun():
    """A file that does not describe this node cannot be used to bind."""
    res = run(["--topology", topo("coral-lassen.xml"), "--"] + probe("0"),
              prefix=first_pu_only())
    assert res.returncode == 0, res.stderr
    rec = parse_probe(res.stdout, 1)[0]
    assert rec["cpus"] == {min(my_cpus())}
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: ")
    res = run(["--strict", "--topology", topo("coral-lassen.xml"), "--",
               "echo", "ran"])
    assert res.returncode != 0 and res.stdout == ""


def test_problem_names_the_option_typed(tmp_path):
    """The wrapper turns its options into the layer's variables: a problem
    the layer finds with a value names the option the user typed
    (--topology, --restrict), never a variable the user did not type; a
    value the user gave as a variable is named by the variable.  One cache
    directory for all, in both orders: the node's recorded failure is not
    reused under the other name."""
    lassen = topo("coral-lassen.xml")
    env = clean_env(MPIBIND_CACHE_DIR=str(tmp_path / "cache"))
    for _ in range(2):
        res = run(["--topology", lassen, "--", "true"], env=env)
        line = check_error(res, f"--topology='{lassen}' does not describe "
                                "this node", status=0)
        assert "MPIBIND_TOPOFILE" not in line, line
        res = run(["--", "true"], env=dict(env, MPIBIND_TOPOFILE=lassen))
        line = check_error(res, f"MPIBIND_TOPOFILE='{lassen}' does not "
                                "describe this node", status=0)
        assert "--topology" not in line, line
    # a restriction that leaves none of the job's CPUs: started on one of
    # this process's CPUs, restricted to another
    cpus = sorted(my_cpus())
    if len(cpus) >= 2:
        res = run(["--restrict", str(cpus[1]), "--", "true"], env=env,
                  prefix=["taskset", "-c", str(cpus[0])])
        line = check_error(res, f"--restrict='{cpus[1]}'", status=0)
        assert "MPIBIND_RESTRICT" not in line, line
        res = run(["--", "true"], env=dict(env, MPIBIND_RESTRICT=str(cpus[1])),
                  prefix=["taskset", "-c", str(cpus[0])])
        check_error(res, f"MPIBIND_RESTRICT='{cpus[1]}'", status=0)


def test_many_bad_words_one_line(tmp_path):
    """MPIBIND near the kernel's 128 KiB limit for one variable, every word
    bad (the last with a newline): one line naming the first, the value
    escaped; the line grows with the value, not with words x value.  The
    work itself is counted in tests/unit/test_auto_tuning.c; the timeout
    here is only a guard."""
    value = "x," * 63000 + "y\nz"
    env = clean_env(MPIBIND=value, MPIBIND_CACHE_DIR=str(tmp_path / "cache"))
    line = check_error(run(["--", "true"], env=env, timeout=120),
                       "unknown word 'x'", status=0)
    assert line.startswith("mpibind: MPIBIND='x,x,"), line[:80]
    assert "y\\nz'" in line
    assert len(line) < len(value) + 1024, len(line)


# --- wrapper usage errors ------------------------------------------------------

WRAPPER_ERRORS = [
    (["-n", "2", "--", "true"], "'2'"),
    (["--env", "--", "true"], "--env"),
    (["--gpu-ids", "pci", "--", "true"], "'pci'"),
    (["--restrict-type", "mem", "--", "true"], "'mem'"),
    (["--"], "--"),
    (["-v", "--"], "--"),
]


@pytest.mark.parametrize("options,named", WRAPPER_ERRORS,
                         ids=[" ".join(o) for o, _ in WRAPPER_ERRORS])
def test_wrapper_usage_error(options, named):
    check_error(run(options), named, status=2)


SHARED_BAD = [["--smt", "-1"], ["--greedy", "7"], ["--gpu-optim", "x"],
              ["--nthreads", "3x"], ["--restrict", "3-1"],
              ["--restrict", "0", "--restrict-type", "gpu"],
              ["--topology", "/nonexistent/node.xml"], ["--topology", ""],
              ["--bogus"], ["--smt"]]


@pytest.mark.parametrize("bad", SHARED_BAD, ids=[" ".join(b)
                                                 for b in SHARED_BAD])
def test_same_message_in_both_modes(bad):
    """One parser for both modes: the same refusal, word for word, and the
    program never runs."""
    if bad == ["--smt"]:
        # the value-less option must be last to be missing its value
        as_preview, as_wrapper = ["-n", "2", "--smt"], ["--smt"]
    else:
        as_preview, as_wrapper = ["-n", "2"] + bad, bad + ["--", "echo",
                                                           "ran"]
    p = run(as_preview)
    w = run(as_wrapper)
    check_error(p, None, status=2)
    if bad != ["--smt"]:
        check_error(w, None, status=2)
        assert p.stderr == w.stderr


def test_program_not_found_127():
    check_error(run(["--", "/nonexistent/program"]), "/nonexistent/program",
                status=127)
    check_error(run(["--", "no-such-program-mpibind-test"]),
                "no-such-program-mpibind-test", status=127)


def test_program_not_executable_126(tmp_path):
    f = tmp_path / "script"
    f.write_text("#!/bin/sh\necho ran\n")
    f.chmod(0o644)   # no x bit: not even root may execute it
    check_error(run(["--", str(f)]), "script", status=126)


# --- under real launchers ------------------------------------------------------

def check_ranks(recs, rows):
    for r, (nths, _gpus, cpus) in enumerate(rows):
        assert recs[r]["cpus"] == cpus, (r, recs[r])
        assert recs[r]["OMP_NUM_THREADS"] == str(nths)
        assert recs[r]["MPIBIND_APPLIED"] == "1"
        assert recs[r]["OMP_PLACES"] == "threads"
        assert recs[r]["OMP_PROC_BIND"] == "spread"


@pytest.mark.parametrize("np", [1, 2, 4])
def test_openmpi_each_rank_gets_its_share(np):
    rows = preview(np)
    res = run(["--"] + probe(OMPI_RANK), prefix=mpirun_prefix(np))
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, np)
    check_ranks(recs, rows)
    if np == 2 and len(my_cpus()) > 1:
        # mpirun was told not to bind: the ranks started on every CPU
        assert rows[0][2] != my_cpus()


def test_openmpi_default_binding_is_replaced():
    """With mpirun's own binding (core, for 2 ranks) the wrapper's wins."""
    rows = preview(2)
    res = run(["--"] + probe(OMPI_RANK),
              prefix=[openmpi(), "--allow-run-as-root", "-np", "2",
                      "--map-by", "core", "--rank-by", "core",
                      "--bind-to", "hwthread"])
    assert res.returncode == 0, res.stderr
    check_ranks(parse_probe(res.stdout, 2), rows)


@pytest.mark.parametrize("np", [1, 2, 4])
def test_mpich_each_rank_gets_its_share(np):
    rows = preview(np)
    res = run(["--"] + probe(MPICH_RANK), prefix=mpich_prefix(np))
    assert res.returncode == 0, res.stderr
    check_ranks(parse_probe(res.stdout, np), rows)


def test_openmpi_the_briefs_command():
    """The literal command line of the brief: grep and echo per rank."""
    rows = preview(2)
    res = run(["--", "sh", "-c",
               "grep Cpus_allowed_list /proc/self/status; "
               "echo $OMP_NUM_THREADS $OMPI_COMM_WORLD_LOCAL_RANK"],
              prefix=[openmpi(), "--allow-run-as-root", "--oversubscribe",
                      "-np", "2"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    allowed = sorted(sorted(parse_list(l.split(":", 1)[1])) for l in lines
                     if l.startswith("Cpus_allowed_list:"))
    assert allowed == sorted(sorted(r[2]) for r in rows)
    pairs = sorted(l.split() for l in lines if not l.startswith("Cpus"))
    assert pairs == sorted([str(rows[r][0]), str(r)] for r in range(2))


@pytest.mark.parametrize("launcher", ["openmpi", "mpich"])
def test_dryrun_under_launchers_does_not_bind(launcher):
    rows = preview(2)
    if launcher == "openmpi":
        prefix, rank = mpirun_prefix(2), OMPI_RANK
    else:
        prefix, rank = mpich_prefix(2), MPICH_RANK
    res = run(["--dryrun", "--"] + probe(rank), prefix=prefix)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 2)
    for r in range(2):
        assert recs[r]["cpus"] == my_cpus()
        assert recs[r]["OMP_NUM_THREADS"] == str(rows[r][0])
    if len(my_cpus()) > 1:
        assert rows[0][2] != my_cpus()   # binding would have shown


@pytest.mark.parametrize("launcher", ["openmpi", "mpich"])
def test_off_under_launchers_changes_nothing(launcher):
    if launcher == "openmpi":
        prefix, rank = mpirun_prefix(2), OMPI_RANK
    else:
        prefix, rank = mpich_prefix(2), MPICH_RANK
    res = run(["--smt", "1", "--"] + probe(rank), prefix=prefix,
              env=clean_env(MPIBIND="off"))
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 2)
    for r in range(2):
        assert recs[r]["cpus"] == my_cpus()
        for var in FIELDS[2:]:
            assert recs[r][var] == "unset", var


# GPU nodes: their XML file plus dryrun; expectations from docs/algorithm.md.
def test_lassen_8_ranks_dryrun_openmpi():
    res = run(["--dryrun", "--topology", topo("coral-lassen.xml"), "--"]
              + probe(OMPI_RANK), prefix=mpirun_prefix(8), timeout=120)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 8)
    for r in range(8):
        assert recs[r]["CUDA_VISIBLE_DEVICES"] == str(r // 2)  # 0;0;1;1;..
        assert recs[r]["OMP_NUM_THREADS"] == "5"
        assert recs[r]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert recs[r]["ROCR_VISIBLE_DEVICES"] == "unset"
        assert recs[r]["cpus"] == my_cpus()


def test_tioga_4_ranks_dryrun_mpich():
    gpus = ["4,5", "2,3", "6,7", "0,1"]
    res = run(["--dryrun", "--topology", topo("eas-tioga.xml"), "--"]
              + probe(MPICH_RANK), prefix=mpich_prefix(4), timeout=120)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 4)
    for r in range(4):
        assert recs[r]["ROCR_VISIBLE_DEVICES"] == gpus[r]
        assert recs[r]["OMP_NUM_THREADS"] == "16"
        assert recs[r]["CUDA_VISIBLE_DEVICES"] == "unset"


def test_lassen_options_reach_the_mapping():
    """--smt/--greedy/--gpu-optim/--nthreads/--restrict through the
    environment: the Lassen 'ntasks 3, nthreads 1, greedy 0, gpu_optim 0'
    row, and 'ntasks 2, restrict mem 8'."""
    res = run(["--dryrun", "--topology", topo("coral-lassen.xml"),
               "--nthreads", "1", "--greedy", "0", "--gpu-optim", "0", "--"]
              + probe(OMPI_RANK), prefix=mpirun_prefix(3), timeout=120)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 3)
    assert [recs[r]["CUDA_VISIBLE_DEVICES"] for r in range(3)] == \
        ["0", "1", "2,3"]
    assert [recs[r]["OMP_NUM_THREADS"] for r in range(3)] == ["1"] * 3

    res = run(["--dryrun", "--topology", topo("coral-lassen.xml"),
               "--restrict", "8", "--restrict-type", "mem", "--"]
              + probe(MPICH_RANK), prefix=mpich_prefix(2), timeout=120)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 2)
    # (socket 0's GPUs stay the job's: "No GPU left idle")
    assert [recs[r]["CUDA_VISIBLE_DEVICES"] for r in range(2)] == ["2,0", "3,1"]
    assert [recs[r]["OMP_NUM_THREADS"] for r in range(2)] == ["10", "10"]

    res = run(["--dryrun", "--topology", topo("coral-lassen.xml"),
               "--smt", "2", "--"] + probe(OMPI_RANK),
              prefix=mpirun_prefix(4), timeout=120)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 4)
    assert [recs[r]["OMP_NUM_THREADS"] for r in range(4)] == ["20"] * 4
    assert [recs[r]["CUDA_VISIBLE_DEVICES"] for r in range(4)] == \
        ["0", "1", "2", "3"]


def test_options_override_the_environment():
    """The wrapper's options win over MPIBIND and OMP_NUM_THREADS already in
    the environment: the Lassen level-walk row (nthreads 1, greedy 0,
    gpu_optim 0) despite gpu:1, greedy:1 and OMP_NUM_THREADS=7."""
    env = clean_env(MPIBIND="gpu:1,greedy:1", OMP_NUM_THREADS="7",
                    MPIBIND_RESTRICT="8-23")
    res = run(["--dryrun", "--topology", topo("coral-lassen.xml"),
               "--nthreads", "1", "--greedy", "0", "--gpu-optim", "0",
               "--restrict", "8-175", "--"] + probe(OMPI_RANK),
              prefix=mpirun_prefix(3), env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    recs = parse_probe(res.stdout, 3)
    assert [recs[r]["CUDA_VISIBLE_DEVICES"] for r in range(3)] == \
        ["0", "1", "2,3"]
    assert [recs[r]["OMP_NUM_THREADS"] for r in range(3)] == ["1"] * 3
