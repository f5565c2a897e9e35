"""Bad values raise ValueError naming the value; nothing crashes.

Every case runs in this interpreter: a crash in C would end the test run.
"""

import os

import pytest

import mpibind
from conftest import topo

LASSEN = "coral-lassen.xml"
QUARTZ = "cts1-quartz-smt1.xml"


def named(value):
    """The text a message must contain to name value."""
    return str(value)


# ---- setters (constructor keyword and property alike) ------------------------

BAD_INPUTS = [
    ("ntasks", 0), ("ntasks", -1), ("ntasks", -2**31), ("ntasks", 2**40),
    ("ntasks", "four"), ("ntasks", 4.0), ("ntasks", True), ("ntasks", [4]),
    ("nthreads", -1), ("nthreads", "2"), ("nthreads", False),
    ("nthreads", 1.5),
    ("greedy", 2), ("greedy", -1), ("greedy", "yes"), ("greedy", True),
    ("gpu_optim", 2), ("gpu_optim", -7), ("gpu_optim", 0.0),
    ("smt", -1), ("smt", "2"), ("smt", True),
    ("restrict_type", 2), ("restrict_type", -1), ("restrict_type", "gpu"),
    ("restrict_type", ""), ("restrict_type", 1.0), ("restrict_type", True),
    ("restrict_ids", "abc"), ("restrict_ids", "0-3,x"), ("restrict_ids", 5),
    ("restrict_ids", ["0-3"]), ("restrict_ids", "0-3\0,8"),
]


@pytest.mark.parametrize("name, value", BAD_INPUTS,
                         ids=lambda v: repr(v)[:20])
def test_bad_input_keyword(name, value):
    with pytest.raises(ValueError) as err:
        mpibind.MpibindHandle(**{name: value})
    msg = str(err.value)
    assert "\n" not in msg.strip()
    assert named(value if not isinstance(value, str) else value.split("\0")[0]) \
        in msg or repr(value) in msg, msg


@pytest.mark.parametrize("name, value", BAD_INPUTS,
                         ids=lambda v: repr(v)[:20])
def test_bad_input_property_keeps_the_old_value(name, value, handles):
    h = handles(ntasks=2, topology_file=topo(LASSEN))
    before = getattr(h, name)
    with pytest.raises(ValueError):
        setattr(h, name, value)
    assert getattr(h, name) == before
    h.mpibind()     # the handle still works
    assert h.nthreads == [20, 20]


def test_ntasks_must_be_set(handles):
    h = handles(topology_file=topo(LASSEN))
    with pytest.raises(ValueError, match="ntasks"):
        h.mpibind()


# ---- values only the topology can judge --------------------------------------

@pytest.mark.parametrize("name, inputs, value", [
    (LASSEN, dict(smt=5), "5"),          # Lassen is SMT-4
    (QUARTZ, dict(smt=2), "2"),          # Quartz here is SMT-1
    (LASSEN, dict(restrict_ids="1000-1010"), "1000-1010"),   # no such PU
    (LASSEN, dict(restrict_ids="0-7"), "0-7"),  # PUs 0-7 are not Lassen's
    (LASSEN, dict(restrict_ids="3", restrict_type="mem"), "3"),
    # A GPU's memory: a NUMA node without CPUs leaves nothing to map.
    ("coral-lassen-hwloc1.xml", dict(restrict_ids="252", restrict_type="mem"),
     "252"),
])
def test_input_that_does_not_fit_the_topology(handles, name, inputs, value):
    h = handles(ntasks=2, topology_file=topo(name), **inputs)
    with pytest.raises(ValueError) as err:
        h.mpibind()
    assert value in str(err.value)
    # Fix the input and the same handle maps.
    h.smt = 0
    h.restrict_ids = None
    h.mpibind()
    assert len(h.nthreads) == 2


# ---- topology files ---------------------------------------------------------

def bad_files(tmp_path):
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    text = tmp_path / "notes.xml"
    text.write_text("this is not an hwloc topology\n")
    whole = open(topo(LASSEN)).read()
    truncated = tmp_path / "truncated.xml"
    truncated.write_text(whole[: len(whole) // 2])
    other_xml = tmp_path / "other.xml"
    other_xml.write_text('<?xml version="1.0"?>\n<html><body/></html>\n')
    return [str(tmp_path / "missing.xml"), str(empty), str(text),
            str(truncated), str(other_xml), str(tmp_path)]


def test_bad_topology_files(tmp_path, handles):
    for path in bad_files(tmp_path):
        with pytest.raises(ValueError) as err:
            mpibind.MpibindHandle(ntasks=1, topology_file=path)
        assert path in str(err.value), str(err.value)
        h = handles(ntasks=1)
        with pytest.raises(ValueError) as err:
            h.topology_file = path
        assert path in str(err.value)
        assert h.topology_file is None
        with pytest.raises(ValueError) as err:
            mpibind.topology_set_xml(path)
        assert path in str(err.value)
    assert mpibind.MpibindHandle(ntasks=1).topology_file is None


@pytest.mark.parametrize("value", [42, ["a.xml"], b"\xff\0"])
def test_topology_file_of_wrong_type(value):
    with pytest.raises(ValueError):
        mpibind.MpibindHandle(ntasks=1, topology_file=value)


# ---- task ids -------------------------------------------------------------------

BAD_TASKS = [-1, 4, 5, 2**31, 10**30, -2**40, "0", 1.0, True, None]


@pytest.fixture
def mapped(handles):
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    return h


@pytest.mark.parametrize("task", BAD_TASKS, ids=repr)
def test_bad_task_ids(mapped, task):
    calls = [mapped.get_cpus_ptask, mapped.get_gpus_ptask, mapped.apply,
             mapped.mapping_ptask_snprint, mapped.get_env_vars_ptask]
    for call in calls:
        with pytest.raises(ValueError) as err:
            call(task)
        assert repr(task) in str(err.value) or str(task) in str(err.value)
    assert mapped.get_cpus_ptask(3)     # still fine


def test_bad_gpu_id_kinds(mapped):
    for kind in (99, -1, 6, 0, 1, "bogus", "", True, 3.0, None):
        with pytest.raises(ValueError) as err:
            mapped.set_gpu_ids(kind)
        assert str(kind) in str(err.value) or repr(kind) in str(err.value)
    assert mapped.get_gpus_ptask(1) == ["1"]


def test_bad_env_var_name(mapped):
    with pytest.raises(ValueError, match="NOT_A_VARIABLE"):
        mapped.get_env_var_values("NOT_A_VARIABLE")
    with pytest.raises(ValueError):
        mapped.get_env_var_values(7)


@pytest.mark.parametrize("size", [-1, "5", 2.5, True])
def test_bad_snprint_size(mapped, size):
    with pytest.raises(ValueError):
        mapped.mapping_snprint(size)
    with pytest.raises(ValueError):
        mapped.mapping_ptask_snprint(0, size)


def test_library_not_found_is_a_clear_import_error(tmp_path):
    """MPIBIND_LIBRARY naming nothing loadable: ImportError naming it."""
    import subprocess
    import sys
    bad = str(tmp_path / "libnothing.so")
    env = dict(os.environ, MPIBIND_LIBRARY=bad)
    proc = subprocess.run([sys.executable, "-c", "import mpibind"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "ImportError" in proc.stderr and bad in proc.stderr


# ---- real nodes of docs/algorithm.md "Beyond the original" ---------------------

def _case(name):
    path = os.path.join(os.path.dirname(topo(LASSEN)), os.pardir, "cases",
                        name)
    assert os.path.isfile(path), path
    return path


def test_newer_hwloc_file():
    """An hwloc 3 export: the message says so and names the v2 export."""
    path = _case("xml-v3.xml")
    with pytest.raises(ValueError) as err:
        mpibind.MpibindHandle(ntasks=1, topology_file=path)
    msg = str(err.value)
    assert "newer hwloc" in msg and "--export-xml-flags v2" in msg, msg


def test_memory_restriction_on_offline_numa_node():
    """This aborted the interpreter inside hwloc."""
    h = mpibind.MpibindHandle(ntasks=1, restrict_ids="1",
                              restrict_type="mem",
                              topology_file=_case("offline-numa-node.xml"))
    h.mpibind()
    assert h.nthreads == [17]
