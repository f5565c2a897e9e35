"""Real nodes of the kinds docs/algorithm.md "Beyond the original" covers
(tests/data/cases), at the command line: each maps, or fails with one line
that says why, and the mapping follows the rule stated there."""
import os

from conftest import check_error, clean_env, case, parse_report, run


def test_newer_hwloc_file_says_so():
    """An hwloc 3 export (XML 3.0): from --topology and from
    MPIBIND_TOPOFILE the message names the newer format and the export
    this hwloc reads, not a broken file."""
    path = case("xml-v3.xml")
    line = check_error(run(["-n", "1", "--topology", path]), "xml-v3.xml",
                       status=2)
    assert "newer hwloc" in line and "3.0" in line, line
    assert "--export-xml-flags v2" in line, line
    res = run(["--dryrun", "--strict", "--", "true"],
              env=clean_env(MPIBIND_TOPOFILE=path))
    assert res.returncode != 0
    assert "newer hwloc" in res.stderr and "--export-xml-flags v2" in \
        res.stderr, res.stderr


OFFLINE = "offline-numa-node.xml"
# offline-numa-node.xml: 2 x 12-core Haswell, NUMA node 0 offline.  Package
# 0's usable PUs (no NUMA node) and package 1's (NUMA node 1, the node's
# only one), read from the file.
P0 = list(range(4, 21, 2))
P1 = list(range(5, 20, 2))


def test_memory_restriction_on_offline_numa_node_maps():
    """Was SIGABRT inside hwloc (exit 134).  Node 1 is every NUMA node of
    the node: the restriction removes nothing."""
    res = run(["-n", "1", "--restrict", "1", "--restrict-type", "mem",
               "--topology", case(OFFLINE)])
    assert res.returncode == 0, (res.returncode, res.stderr)
    assert parse_report(res.stdout) == [(17, [], set(P0 + P1))]


def test_cpu_restriction_naming_numaless_cpus_maps():
    """Was hwloc's "Invalid argument"."""
    res = run(["-n", "2", "--restrict", "4,6", "--topology", case(OFFLINE)])
    assert res.returncode == 0, res.stderr
    assert parse_report(res.stdout) == [(1, [], {4}), (1, [], {6})]


def test_numaless_cpus_used_one_task_per_pu():
    """Was 17 tasks on package 1's 8 PUs."""
    res = run(["-n", "17", "--topology", case(OFFLINE)])
    assert res.returncode == 0, res.stderr
    rows = parse_report(res.stdout)
    assert [r[2] for r in rows] == [{c} for c in P0 + P1]


def test_first_core_lost_a_thread():
    """Core 0 has PU 0 only, core 1 PUs 4 and 12, then PUs 1, 6, 3, 15."""
    path = case("first-core-lost-a-thread.xml")
    res = run(["-n", "7", "--topology", path])
    assert res.returncode == 0, res.stderr
    assert [r[2] for r in parse_report(res.stdout)] == \
        [{0}, {4}, {12}, {1}, {6}, {3}, {15}]
    res = run(["-n", "1", "--smt", "2", "--topology", path])
    assert res.returncode == 0, res.stderr
    assert parse_report(res.stdout) == [(7, [], {0, 1, 3, 4, 6, 12, 15})]


def _pci_gpus(path):
    """PCI bus ids of the NVIDIA 3D controllers in the file, sorted."""
    import xml.etree.ElementTree as ET
    out = []
    for o in ET.parse(path).iter("object"):
        if o.get("type") == "PCIDev" and \
                o.get("pci_type", "").startswith("0302 [10de:"):
            out.append(o.get("pci_busid"))
    return sorted(out)


def test_pci_only_gpus_get_cuda_visible_devices():
    """4 A100 seen only as PCI functions: each task gets its socket's two,
    numbered in PCI bus order; was "0 GPUs" and no variable."""
    path = case("pci-only-gpus.xml")
    bus = _pci_gpus(path)
    assert len(bus) == 4
    res = run(["-n", "4", "-v", "--topology", path])
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("mpibind: 4 GPUs on this node"), res.stdout
    res = run(["-n", "4", "--gpu-ids", "pci", "--topology", path])
    by_pci = [r[1] for r in parse_report(res.stdout)]
    res = run(["-n", "4", "--env", "--topology", path])
    assert res.returncode == 0, res.stderr
    cvd = [line.split("=", 1)[1] for line in res.stdout.splitlines()
           if "CUDA_VISIBLE_DEVICES=" in line]
    assert len(cvd) == 4
    for ids, value in zip(by_pci, cvd):
        assert value == ",".join(str(bus.index(b)) for b in ids)


def test_mixed_backends_one_numbering():
    path = case("mixed-backends.xml")
    res = run(["-n", "1", "--topology", path])
    assert res.returncode == 0, res.stderr
    assert parse_report(res.stdout)[0][1] == ["0", "1", "2", "3"]
    res = run(["-n", "4", "--topology", path])
    gpus = [r[1] for r in parse_report(res.stdout)]
    assert sorted(g for t in gpus for g in t) == ["0", "1", "2", "3"]


def test_gpus_without_locality_all_used():
    """JUROPA3: 2 K20 on a host bridge of the Machine.  Was: no task got a
    GPU although 2 were found.  Now k tasks use all k, 2k tasks each GPU
    twice (docs/algorithm.md, "No GPU left idle")."""
    path = case("gpus-without-locality.xml")
    for n, want in [(1, [["0", "1"]]), (2, [["0"], ["1"]]),
                    (4, [["0"], ["0"], ["1"], ["1"]])]:
        res = run(["-n", str(n), "--topology", path])
        assert res.returncode == 0, res.stderr
        assert [r[1] for r in parse_report(res.stdout)] == want
    res = run(["-n", "4", "--env", "--topology", path])
    cvd = [line.split("=", 1)[1] for line in res.stdout.splitlines()
           if "CUDA_VISIBLE_DEVICES=" in line]
    assert cvd == ["0", "0", "1", "1"]


def test_gpu_id_kind_that_repeats_is_one_line():
    """Partitions reporting one UUID: --gpu-ids uuid is refused with one
    line naming the id and the kinds that work; index still maps."""
    path = os.path.join(os.path.dirname(__file__), "..", "unit", "xml",
                        "gpu-same-uuid.xml")
    res = run(["-n", "2", "--gpu-ids", "uuid", "--topology", path])
    assert res.returncode != 0 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "0x1a2b3c4d" in lines[0], res.stderr
    assert "index" in lines[0] and "name" in lines[0], lines[0]
    res = run(["-n", "2", "--topology", path])
    assert res.returncode == 0, res.stderr
    assert [r[1] for r in parse_report(res.stdout)] == [["0", "1"],
                                                         ["2", "3"]]
