"""Shared helpers of the Python tests.

The tests run against the BUILD tree: meson passes PYTHONPATH (the
configured package), MPIBIND_LIBRARY (the built libmpibind.so) and
MPIBIND_TOPOLOGIES (tests/data/topologies).
"""

import os
import xml.etree.ElementTree as ET

import pytest

TOPOLOGIES = os.environ.get(
    "MPIBIND_TOPOLOGIES",
    os.path.join(os.path.dirname(__file__), "..", "data", "topologies"))
HERE = os.path.dirname(os.path.abspath(__file__))


def topo(name):
    path = os.path.join(TOPOLOGIES, name)
    assert os.path.exists(path), "missing topology file " + path
    return path


# The list syntax and the report line are the pytest suites' shared ones
# (tests/pyhelpers/mpibind_testutil.py).
from mpibind_testutil import hwlist as to_hwloc_list  # noqa: E402,F401
from mpibind_testutil import parse_list, report_line  # noqa: E402,F401


def hwloc_list(text):
    """PU indexes of an hwloc list string such as '0-3,8', ascending."""
    return sorted(parse_list(text))


def xml_gpus(path):
    """The GPU OS devices of an hwloc XML file with NVML or RSMI devices,
    read straight from the XML: {visible index: {name, busid, uuid,
    vendor}}.  The visible index is the number in the name (docs/algorithm.md
    step 3)."""
    gpus = {}

    def walk(node, pci):
        if node.get("type") == "PCIDev":
            pci = node
        if node.get("type") == "OSDev":
            name = node.get("name", "")
            for prefix in ("nvml", "rsmi"):
                if name.startswith(prefix) and name[len(prefix):].isdigit():
                    infos = {i.get("name"): i.get("value")
                             for i in node.findall("info")}
                    uuid = infos.get("NVIDIAUUID") or infos.get("AMDUUID", "")
                    vendor = pci.get("pci_type").split("[")[1].split(":")[0]
                    gpus[name[len(prefix):]] = {
                        "name": name, "busid": pci.get("pci_busid"),
                        "uuid": uuid, "vendor": vendor}
        for child in node.findall("object"):
            walk(child, pci)

    walk(ET.parse(path).getroot(), None)
    return gpus


@pytest.fixture
def handles():
    """Handles created through this fixture are finalized after the test."""
    import mpibind
    made = []

    def make(**kw):
        h = mpibind.MpibindHandle(**kw)
        made.append(h)
        return h
    yield make
    for h in made:
        h.finalize()
