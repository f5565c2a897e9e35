"""Bad input to the `mpibind` command: every refused value gives a non-zero
exit status (2 usage, 1 a mapping that cannot be computed), exactly one
line on stderr naming the value, and nothing on stdout."""
import os

import pytest

from conftest import check_error, run, topo

LASSEN = "coral-lassen.xml"
QUARTZ = "cts1-quartz-smt1.xml"

# (options, the text the message must contain)
USAGE_ERRORS = [
    (["-n", "0"], "'0'"),
    (["-n", "abc"], "'abc'"),
    (["-n", "3x"], "'3x'"),
    (["-n", ""], "''"),
    (["-n", "-1"], "'-1'"),
    (["-n", " 4"], "' 4'"),
    (["-n", "4.0"], "'4.0'"),
    (["-n", "99999999999"], "'99999999999'"),
    (["-n", "2147483648"], "'2147483648'"),
    (["--ntasks=x7"], "'x7'"),
    (["-n", "2", "--smt", "-1"], "'-1'"),
    (["-n", "2", "--smt", "two"], "'two'"),
    (["-n", "2", "--greedy", "7"], "'7'"),
    (["-n", "2", "--greedy", "yes"], "'yes'"),
    (["-n", "2", "--gpu-optim", "2"], "'2'"),
    (["-n", "2", "--nthreads", "-3"], "'-3'"),
    (["-n", "2", "--nthreads", "1e3"], "'1e3'"),
    (["-n", "2", "--gpu-ids", "serial"], "'serial'"),
    (["-n", "2", "--restrict", "0", "--restrict-type", "gpu"], "'gpu'"),
    (["-n", "2", "--restrict", "abc"], "'abc'"),
    (["-n", "2", "--restrict", "3-1"], "'3-1'"),
    # the one list grammar of the project (lib/mb_parse.h): decimal ids
    # within 0..2147483647, ascending ranges, no empty or negative item
    (["-n", "2", "--restrict", "0,-1"], "'0,-1'"),
    (["-n", "2", "--restrict", "4294967297"], "'4294967297'"),
    (["-n", "2", "--restrict", "0-4294967295"], "'0-4294967295'"),
    (["-n", "2", "--restrict", "0,5-2"], "'5-2'"),
    (["-n", "2", "--restrict", "0x1"], "'0x1'"),
    (["-n", "2", "--restrict", "0, 1"], "'0, 1'"),
    (["-n", "2", "--restrict", "1,"], "'1,'"),
    (["-n", "2", "--restrict", "0,,2"], "'0,,2'"),
    (["-n", "2", "--restrict", ""], "''"),
    (["-n", "2", "--restrict-type", "mem"], "'mem'"),
    (["-n", "2", "--topology", ""], "''"),
    (["-n", "2", "--topology", "/nonexistent/node.xml"],
     "/nonexistent/node.xml"),
    (["-n", "2", "--foo"], "'--foo'"),
    (["-n", "2", "-x"], "'-x'"),
    (["-n", "2", "--gpu", "1"], "'--gpu'"),          # ambiguous prefix
    (["-n", "2", "--env=1"], "'--env=1'"),           # takes no value
    (["-n"], "-n/--ntasks"),
    (["-n", "2", "--smt"], "--smt"),
    (["-n", "2", "stray"], "'stray'"),
    (["-n", "2", "--dryrun"], "--dryrun"),
    (["-n", "2", "--strict"], "--strict"),
    ([], "-n/--ntasks"),
    (["--smt", "1"], "-n/--ntasks"),
]


@pytest.mark.parametrize("options,named", USAGE_ERRORS,
                         ids=[" ".join(o) or "no-args" for o, _ in
                              USAGE_ERRORS])
def test_usage_error(options, named):
    check_error(run(options), named, status=2)


def test_restrict_list_is_the_library_rule():
    """The command takes exactly the library's lists: hwloc's open range
    "N-" (N and up) and leading zeros read in decimal ("010" is CPU 10,
    never octal 8), both in preview and in wrapper mode."""
    for lst, want in (("30-", "30-35"), ("030-", "30-35"), ("010", "10")):
        res = run(["-n", "1", "--greedy", "0", "--topology", topo(QUARTZ),
                   "--restrict", lst])
        assert res.returncode == 0, res.stderr
        assert res.stdout.split()[-1] == want, res.stdout
    # the wrapper refuses what the preview refuses, with the same words
    pre = run(["-n", "1", "--restrict", "0,-1"])
    wrap = run(["--restrict", "0,-1", "--", "true"])
    assert pre.returncode == wrap.returncode == 2
    assert pre.stderr == wrap.stderr


def test_control_characters_are_escaped():
    """A value with a newline or an escape sequence is echoed on one line,
    its control characters written as C escapes."""
    res = run(["-n", "2", "--restrict", "1\n2\x1b[31m"])
    line = check_error(res, "1\\n2\\x1b[31m", status=2)
    assert "\x1b" not in line and "\n" not in line
    res = run(["-n", "2", "--topology", "/nonexistent/a\nb.xml"])
    check_error(res, "a\\nb.xml", status=2)


def test_messages_say_what_was_expected():
    line = check_error(run(["-n", "3x"]), "'3x'")
    assert "integer" in line
    line = check_error(run(["-n", "2", "--greedy", "7"]), "'7'")
    assert "0 or 1" in line
    line = check_error(run(["-n", "2", "--gpu-ids", "x"]), "'x'")
    for kind in ("index", "pci", "uuid", "name"):
        assert kind in line
    line = check_error(run(["-n", "2", "--restrict", "0",
                            "--restrict-type", "x"]), "'x'")
    assert "cpu" in line and "mem" in line


@pytest.fixture
def bad_files(tmp_path):
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    notxml = tmp_path / "notxml.xml"
    notxml.write_text("this is not an hwloc topology\n")
    other_xml = tmp_path / "other.xml"
    other_xml.write_text('<?xml version="1.0"?>\n<html><body/></html>\n')
    truncated = tmp_path / "truncated.xml"
    with open(topo(LASSEN), "rb") as f:
        data = f.read()
    truncated.write_bytes(data[:len(data) // 2])
    directory = tmp_path / "adir"
    directory.mkdir()
    return [str(p) for p in (empty, notxml, other_xml, truncated, directory)]


def test_bad_topology_files(bad_files):
    for path in bad_files:
        res = run(["-n", "2", "--topology", path])
        check_error(res, os.path.basename(path), status=2)


def test_unreadable_topology_file(tmp_path):
    if os.geteuid() == 0:
        # root reads any file: use a path through a non-directory instead
        path = os.path.join(topo(LASSEN), "x.xml")
    else:
        p = tmp_path / "secret.xml"
        p.write_text(open(topo(LASSEN)).read())
        p.chmod(0)
        path = str(p)
    check_error(run(["-n", "2", "--topology", path]), "x.xml"
                if os.geteuid() == 0 else "secret.xml", status=2)


# Valid syntax, but no mapping on that node: exit 1.
MAPPING_ERRORS = [
    (LASSEN, ["-n", "2", "--smt", "5"], "--smt: smt 5"),  # lassen is SMT-4
    (QUARTZ, ["-n", "2", "--smt", "2"], "--smt: smt 2"),  # quartz is SMT-1
    (QUARTZ, ["-n", "2", "--restrict", "1000-1001"], "1000-1001"),
    (QUARTZ, ["-n", "2", "--restrict", "5", "--restrict-type", "mem"], "5"),
]


@pytest.mark.parametrize("topofile,options,named", MAPPING_ERRORS,
                         ids=[" ".join(o) for _, o, _ in MAPPING_ERRORS])
def test_mapping_error(topofile, options, named):
    check_error(run(options + ["--topology", topo(topofile)]), named,
                status=1)


def test_write_error_is_reported():
    """stdout closed: the command says so and fails, without a crash."""
    import subprocess
    from conftest import EXE, clean_env
    res = subprocess.run(["timeout", "60", EXE, "-n", "4", "--topology",
                          topo(LASSEN)], stdout=open("/dev/full", "w"),
                         stderr=subprocess.PIPE, text=True, env=clean_env(),
                         timeout=90)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: ")


def test_many_tasks_no_fixed_limit():
    """No fixed-size arrays: 1000 tasks on the 2-PU node or 500 on quartz."""
    res = run(["-n", "1000", "--topology", topo(QUARTZ)])
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 1000
