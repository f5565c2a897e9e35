"""Every worked example of docs/algorithm.md, through the Python API.

The examples are read from tests/data/worked-examples.tsv, the one copy
the C unit, Python and command suites share (the tables' rows with their
"..." expanded).
"""

import pytest

from conftest import topo
from mpibind_testutil import report_line, without_nics, worked_examples

QUARTZ = "cts1-quartz-smt1.xml"
EXAMPLES = worked_examples()


@pytest.mark.parametrize("ex", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_worked_example(ex, handles):
    h = handles(topology_file=topo(ex.topology), **ex.inputs)
    h.mpibind()
    n = ex.inputs["ntasks"]
    assert h.ntasks == n
    assert h.nthreads == ex.nthreads
    assert [h.get_cpus_ptask(t) for t in range(n)] == ex.cpus
    assert [h.get_gpus_ptask(t) for t in range(n)] == ex.gpus
    # The report carries the same, in docs/algorithm.md's format.
    expected = [report_line(t, ex.nthreads[t], ex.gpus[t], ex.cpus[t])
                for t in range(n)]
    assert without_nics(h.mapping_snprint()).splitlines() == expected
    for t in range(n):
        assert without_nics(h.mapping_ptask_snprint(t)) in (expected[t],
                                                           expected[t] + "\n")


def test_quartz_restricted_is_the_seed_output(handles):
    """The seed README's output (a quartz node, restrict 0-7, 4 tasks) is
    the first Quartz row; the report text is the seed's, byte for byte,
    but for the "nics" field that a node with NICs adds (quartz has an
    Omni-Path HCA, hfi1_0)."""
    h = handles(ntasks=4, restrict_ids="0-7", topology_file=topo(QUARTZ))
    h.mpibind()
    assert h.mapping_snprint().count(" nics hfi1_0 cpus ") == 4
    assert without_nics(h.mapping_snprint()) == (
        "mpibind: task  0 nths  2 gpus  cpus 0-1\n"
        "mpibind: task  1 nths  2 gpus  cpus 2-3\n"
        "mpibind: task  2 nths  2 gpus  cpus 4-5\n"
        "mpibind: task  3 nths  2 gpus  cpus 6-7\n")
