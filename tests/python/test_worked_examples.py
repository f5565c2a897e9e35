"""Every worked example of docs/algorithm.md, through the Python API.

The expected lists are written from the tables' text: "8,12,...,44" is
range(8, 45, 4), "0-15" is range(0, 16), and so on.
"""

import pytest

import mpibind
from conftest import topo, report_line


def every4(first, last):
    """'first,first+4,...,last' of the Lassen table (one PU per SMT-4 core)."""
    return list(range(first, last + 1, 4))


def two_per_core(first, last):
    """'first-first+1,...,last-last+1' of the Lassen smt 2 row."""
    return [c + o for c in range(first, last + 1, 4) for o in (0, 1)]


def r(first, last):
    return list(range(first, last + 1))


def each(value, n):
    return [value] * n


def gpus(text):
    """'0;1;2,3' -> [['0'], ['1'], ['2', '3']]"""
    return [g.split(",") if g else [] for g in text.split(";")]


QUARTZ = "cts1-quartz-smt1.xml"
LASSEN = "coral-lassen.xml"
TIOGA = "eas-tioga.xml"

# (file, inputs, nthreads, cpus, gpus)
EXAMPLES = [
    (QUARTZ, dict(ntasks=4, restrict_ids="0-7"),
     each(2, 4), [r(0, 1), r(2, 3), r(4, 5), r(6, 7)], gpus(";;;")),
    (QUARTZ, dict(ntasks=3),
     [9, 9, 18], [r(0, 8), r(9, 17), r(18, 35)], gpus(";;")),
    (QUARTZ, dict(ntasks=1), [36], [r(0, 35)], gpus("")),

    (LASSEN, dict(ntasks=1), [160], [r(8, 87) + r(96, 175)],
     gpus("0,1,2,3")),
    (LASSEN, dict(ntasks=2), [20, 20], [every4(8, 84), every4(96, 172)],
     gpus("0,1;2,3")),
    (LASSEN, dict(ntasks=4), each(10, 4),
     [every4(8, 44), every4(48, 84), every4(96, 132), every4(136, 172)],
     gpus("0;1;2;3")),
    # "8,12,16,20,24; 28,...,44; 48,...,64; ...": five cores a task, the
    # pattern continuing over the 20 cores of each socket.
    (LASSEN, dict(ntasks=8), each(5, 8),
     [every4(8, 24), every4(28, 44), every4(48, 64), every4(68, 84),
      every4(96, 112), every4(116, 132), every4(136, 152), every4(156, 172)],
     gpus("0;0;1;1;2;2;3;3")),
    (LASSEN, dict(ntasks=4, smt=2), each(20, 4),
     [two_per_core(8, 44), two_per_core(48, 84), two_per_core(96, 132),
      two_per_core(136, 172)],
     gpus("0;1;2;3")),
    (LASSEN, dict(ntasks=5, gpu_optim=0), [6, 6, 6, 10, 10],
     [every4(8, 32), every4(36, 60), every4(64, 84), every4(96, 132),
      every4(136, 172)],
     gpus("0;0;1;2;3")),
    (LASSEN, dict(ntasks=6, restrict_ids="8-23"), each(1, 6),
     [[8], [9], [12], [13], r(16, 17), r(20, 21)],
     gpus("0;0;0;1;1;1")),
    (LASSEN, dict(ntasks=2, restrict_ids="8", restrict_type="mem"),
     [10, 10], [every4(96, 132), every4(136, 172)], gpus("2;3")),
    (LASSEN, dict(ntasks=3, nthreads=1, greedy=0, gpu_optim=0), [1, 1, 1],
     [list(range(8, 41, 8)), list(range(48, 81, 8)), [96]],
     gpus("0;1;2,3")),

    (TIOGA, dict(ntasks=4), each(16, 4),
     [r(0, 15), r(16, 31), r(32, 47), r(48, 63)], gpus("4,5;2,3;6,7;0,1")),
    (TIOGA, dict(ntasks=8), each(8, 8),
     [r(8 * i, 8 * i + 7) for i in range(8)], gpus("4;5;2;3;6;7;0;1")),
    (TIOGA, dict(ntasks=2), [64, 64],
     [r(0, 31) + r(64, 95), r(32, 63) + r(96, 127)],
     gpus("4,5,2,3;6,7,0,1")),
    (TIOGA, dict(ntasks=3, greedy=0), each(16, 3),
     [r(0, 15), r(16, 31), r(32, 47)], gpus("4,5;2,3;6,7")),
]


def example_id(example):
    name, inputs = example[0], example[1]
    return name.split(".")[0] + "-" + "-".join(
        "%s=%s" % kv for kv in sorted(inputs.items()))


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_worked_example(example, handles):
    name, inputs, nthreads, cpus, gpus_ = example
    h = handles(topology_file=topo(name), **inputs)
    h.mpibind()
    n = inputs["ntasks"]
    assert h.ntasks == n
    assert h.nthreads == nthreads
    assert [h.get_cpus_ptask(t) for t in range(n)] == cpus
    assert [h.get_gpus_ptask(t) for t in range(n)] == gpus_
    # The report carries the same, in docs/algorithm.md's format.
    expected = [report_line(t, nthreads[t], gpus_[t], cpus[t])
                for t in range(n)]
    assert h.mapping_snprint().splitlines() == expected
    for t in range(n):
        assert h.mapping_ptask_snprint(t) in (expected[t], expected[t] + "\n")


def test_quartz_restricted_is_the_seed_output(handles):
    """The seed README's output (a quartz node, restrict 0-7, 4 tasks) is
    the first Quartz row; the report text is the seed's, byte for byte."""
    h = handles(ntasks=4, restrict_ids="0-7", topology_file=topo(QUARTZ))
    h.mpibind()
    assert h.mapping_snprint() == (
        "mpibind: task  0 nths  2 gpus  cpus 0-1\n"
        "mpibind: task  1 nths  2 gpus  cpus 2-3\n"
        "mpibind: task  2 nths  2 gpus  cpus 4-5\n"
        "mpibind: task  3 nths  2 gpus  cpus 6-7\n")
