"""The Python module against hostile input (the hardening requirements):
the one restrict-list grammar of the library, messages that stay one line,
a topology without PUs refused when given, a file of part of this machine
not taken for it, and a huge task count that costs nothing until mapped
and is then refused at once."""
import os
import subprocess

import pytest

import mpibind
from conftest import topo

QUARTZ = "cts1-quartz-smt1.xml"   # PUs 0-35
INT_MAX = 2**31 - 1


@pytest.mark.parametrize("lst,cpus", [
    ("010", [10]),                       # decimal, never octal 8
    ("08,09", [8, 9]),                   # hwloc dropped these
    ("30-", list(range(30, 36))),        # hwloc's open range, kept
    ("0-2147483647", list(range(36))),   # the node's cost, not 2^31 bits
])
def test_restrict_list_accepted(handles, lst, cpus):
    h = handles(ntasks=1, restrict_ids=lst,
                topology_file=topo(QUARTZ))
    h.mpibind()
    assert h.get_cpus_ptask(0) == cpus


@pytest.mark.parametrize("lst", ["0,-1", "4294967297", "0,5-2",
                                 "0-4294967295", "1,,2", "0x3", " 1",
                                 "1,"])
def test_restrict_list_refused(handles, lst):
    h = handles(ntasks=1, topology_file=topo(QUARTZ), restrict_ids="1")
    with pytest.raises(ValueError) as e:
        h.restrict_ids = lst
    msg = str(e.value)
    assert "restrict list" in msg and "expected" in msg, msg
    assert h.restrict_ids == "1"


def test_messages_stay_one_line(handles):
    h = handles(ntasks=1, topology_file=topo(QUARTZ))
    with pytest.raises(ValueError) as e:
        h.restrict_ids = "1\n2\x1b[2J"
    msg = str(e.value)
    assert "\n" not in msg and "\x1b" not in msg, repr(msg)
    assert "'1\\n2\\x1b[2J'" in msg, msg


NO_PU = ('<topology><object type="NUMANode" os_index="0" cpuset="0x3" '
         'complete_cpuset="0x3" allowed_cpuset="0x3" nodeset="0x1" '
         'complete_nodeset="0x1" allowed_nodeset="0x1" local_memory="1000">'
         '</object></topology>\n')


def test_topology_without_pu_refused(tmp_path, handles):
    """hwloc loads a lone NUMA node; mapping it killed the interpreter."""
    path = tmp_path / "no-pu.xml"
    path.write_text(NO_PU)
    h = handles(ntasks=2)
    with pytest.raises((ValueError, mpibind.MpibindError)) as e:
        h.topology_file = str(path)
    assert "no PU" in str(e.value) and str(path) in str(e.value)


def test_part_of_this_machine_is_not_this_machine(tmp_path, handles):
    """A file of this machine that lists only its first CPU is not this
    machine's: binding task 1 of 2 with it would put it on that CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("one CPU: no part of the machine to leave out")
    full = tmp_path / "full.xml"
    part = tmp_path / "part.xml"
    subprocess.run(["lstopo-no-graphics", "--of", "xml", "-f", str(full)],
                   check=True)
    first = subprocess.run(["hwloc-calc", "-i", str(full), "pu:0"],
                           check=True, capture_output=True,
                           text=True).stdout.strip()
    subprocess.run(["lstopo-no-graphics", "-i", str(full), "--restrict",
                    first, "--of", "xml", "-f", str(part)], check=True)
    h = handles(ntasks=2, topology_file=str(part))
    with pytest.raises(mpibind.MpibindError) as e:
        h.topology_check_system()
    assert "exactly" in str(e.value), str(e.value)
    h.mpibind()
    with pytest.raises(mpibind.MpibindError):
        h.apply(1)


def test_huge_ntasks(handles):
    """ntasks INT_MAX: the setters stay cheap (they walked 2^31 tasks each,
    seconds per call); the mapping is refused at once, saying what it
    would need."""
    h = handles(topology_file=topo(QUARTZ))
    h.ntasks = INT_MAX
    for i in range(100):
        h.greedy = i % 2
        h.restrict_ids = "0-3" if i % 2 else None
    with pytest.raises((ValueError, mpibind.MpibindError, MemoryError)) as e:
        h.mpibind()
    assert "2147483647" in str(e.value) and "needs about" in str(e.value)
