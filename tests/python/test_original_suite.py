"""The original mpibind's own test suite, through this module: every case
of its expected files (tests/data/original-suite, on the topology
machines.tsv names), set up as the original's Python runner does (the
handle's inputs from the case's params) and compared with the answer the
original expects, in its format (threads, CPUs as hwloc lists, GPUs;
';' between tasks).  A difference must be listed in differences.tsv with
this module's answer and its reason (a rule under "Beyond the original" in
docs/algorithm.md, or an expectation the original fails too); a listed
one that no longer happens fails as well.  The unit suite runs the same
files through the C API (tests/unit/test_original_suite.c).
"""
import pytest

from conftest import topo
from mpibind_testutil import (ALSO_FAILS, BEYOND, ORIGINAL_FIELDS,
                              beyond_the_original_rules, hwlist,
                              original_suite)

CASES, DIFFERENCES = original_suite()


def answer(h, case):
    """The handle's answer to case, in the expected files' format."""
    for name, value in case.inputs.items():
        setattr(h, name, value)
    h.mpibind()
    n = h.ntasks
    return {"threads": ";".join(str(t) for t in h.nthreads),
            "cpus": ";".join(hwlist(h.get_cpus_ptask(t)) for t in range(n)),
            "gpus": ";".join(",".join(h.get_gpus_ptask(t)) for t in range(n))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_original_case(case, handles):
    ours = answer(handles(topology_file=topo(case.topology)), case)
    for field in ORIGINAL_FIELDS:
        listed = DIFFERENCES.get((case.machine, case.num, field))
        what = "%s case %d (%s), %s" % (case.machine, case.num,
                                         case.description, field)
        if ours[field] == case.expected[field]:
            assert listed is None, \
                "%s: listed in differences.tsv, but ours is the expected " \
                "answer %r now: remove the line" % (what, ours[field])
        else:
            assert listed is not None, \
                "%s: expected %r, ours %r, a difference not in " \
                "differences.tsv" % (what, case.expected[field], ours[field])
            assert listed[0] == ours[field], \
                "%s: differences.tsv says ours is %r, ours is %r (expected " \
                "%r)" % (what, listed[0], ours[field], case.expected[field])


def test_differences_name_cases_and_rules():
    assert len(CASES) == 48
    ids = {(c.machine, c.num) for c in CASES}
    rules = beyond_the_original_rules()
    assert rules, "no rule under 'Beyond the original' in docs/algorithm.md"
    for (machine, num, field), (ours, reason) in DIFFERENCES.items():
        assert (machine, num) in ids, "%s case %d: no such case" % (machine, num)
        assert field in ORIGINAL_FIELDS, field
        assert reason == ALSO_FAILS or (
            reason.startswith(BEYOND) and reason[len(BEYOND):] in rules), \
            "%s case %d %s: reason %r names no rule under 'Beyond the " \
            "original' in docs/algorithm.md" % (machine, num, field, reason)
