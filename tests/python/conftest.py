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


def hwloc_list(text):
    """PU indexes of an hwloc list string such as '0-3,8' (the report's
    syntax), parsed here independently of the library."""
    out = []
    for part in text.split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def to_hwloc_list(cpus):
    """The hwloc list string of a sorted list of indexes ('0-3,8')."""
    runs = []
    for c in sorted(cpus):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in runs)


def report_line(task, nthreads, gpus, cpus):
    """docs/algorithm.md's report format, written out from the spec."""
    return "mpibind: task %2d nths %2d gpus %s cpus %s" % (
        task, nthreads, ",".join(gpus), to_hwloc_list(cpus))


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
