#!/usr/bin/python3
"""Writes the small hwloc 2 XML topologies used by the unit tests.

The topologies in tests/data/topologies are real machines; these
files exhibit GPU-list and domain rules of docs/algorithm.md that no real file
shows.  Each node has packages of cores; core c of the whole node has PUs
c*smt .. c*smt+smt-1.  Run from this directory to regenerate; the output is
committed, so the tests do not need Python.
"""
import sys


def bitmap(ids):
    """hwloc's XML bitmap syntax: 32-bit words, most significant first."""
    ids = set(ids)
    if not ids:
        return "0x0"
    nwords = max(ids) // 32 + 1
    words = []
    for w in range(nwords - 1, -1, -1):
        v = 0
        for b in range(32):
            if w * 32 + b in ids:
                v |= 1 << b
        words.append("0x%08x" % v)
    return ",".join(words)


class Gen:
    def __init__(self):
        self.gp = 1
        self.out = []

    def gpi(self):
        self.gp += 1
        return self.gp

    def line(self, depth, s):
        self.out.append("  " * depth + s)

    def sets(self, cpus, nodes):
        return ('cpuset="%s" complete_cpuset="%s" nodeset="%s" complete_nodeset="%s"'
                % (bitmap(cpus), bitmap(cpus), bitmap(nodes), bitmap(nodes)))


def osdev(g, d, dev):
    name, osdev_type, subtype, infos = dev
    sub = ' subtype="%s"' % subtype if subtype else ""
    g.line(d, '<object type="OSDev" gp_index="%d" name="%s"%s osdev_type="%d">'
           % (g.gpi(), name, sub, osdev_type))
    for k, v in infos:
        g.line(d + 1, '<info name="%s" value="%s"/>' % (k, v))
    g.line(d, "</object>")


def pci_devices(g, d, domain, pcidevs):
    """PCI devices (busid, vendor, class, osdevs), and PCI switches
    ("switch", busid of its port, (bus lo, hi), [devices below])."""
    for busid, vendor, klass, devs in pcidevs:
        if busid == "switch":
            port, (lo, hi), below = vendor, klass, devs
            g.line(d, '<object type="Bridge" gp_index="%d" bridge_type="1-1" '
                   'depth="1" bridge_pci="%04x:[%02x-%02x]" pci_busid="%s" '
                   'pci_type="0604 [1000:c010] [1000:a064] b0" '
                   'pci_link_speed="15.75">' % (g.gpi(), domain, lo, hi, port))
            pci_devices(g, d + 1, domain, below)
            g.line(d, "</object>")
            continue
        g.line(d, '<object type="PCIDev" gp_index="%d" pci_busid="%s" '
               'pci_type="%s [%s:1234] [%s:0001] 00" pci_link_speed="15.75">'
               % (g.gpi(), busid, klass, vendor, vendor))
        for dev in devs:
            osdev(g, d + 1, dev)
        g.line(d, "</object>")


def pci_tree(g, d, domain, bus_range, pcidevs):
    """A host bridge holding PCI devices (see pci_devices)."""
    g.line(d, '<object type="Bridge" gp_index="%d" bridge_type="0-1" depth="0" '
           'bridge_pci="%04x:[%02x-%02x]">' % (g.gpi(), domain, bus_range[0], bus_range[1]))
    pci_devices(g, d + 1, domain, pcidevs)
    g.line(d, "</object>")


def numa_of_package(g, d, p, cpus, packages, hbm):
    g.line(d, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
           'local_memory="1073741824"/>' % (p, g.sets(cpus, [p]), g.gpi()))
    if hbm:
        n = packages + p
        g.line(d, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
               'local_memory="536870912" subtype="HBM"/>'
               % (n, g.sets(cpus, [n]), g.gpi()))


def node(packages, smt, cores_per_pkg, io=None, extra_groups=None, hbm=False,
         machine_numa=(), missing_pus=(), numa_less=(), disallowed_nodes=(),
         machine_io=(), snc=1, snc_io=None):
    """packages: number of packages, each with one NUMA node (os index =
    package number) and cores_per_pkg cores.  io: {package: [(domain,
    (bus lo, hi), pcidevs)], ...} and {package: [osdev, ...]} under key
    ('direct', p) for OS devices attached to the package itself.
    extra_groups: list of (numa os index, pci trees) for CPU-less groups
    holding a memory-only NUMA node; then, as in hwloc 1.x exports of
    such nodes, every package sits in a group with its NUMA node, all at
    one depth.  hbm: a second NUMA node (os index packages + p, subtype
    HBM) beside each package's DDR.  machine_numa: os indexes of CPU-less
    NUMA nodes attached to the Machine (memory expanders).  missing_pus:
    PUs that are not there (offline, or outside the cgroup): their core
    has fewer threads.  numa_less: packages without a NUMA node (hwloc 2
    hides an offline or memory-less one): their objects have an empty
    nodeset.  disallowed_nodes: NUMA nodes outside the allowed nodeset
    (a cgroup's cpuset.mems).  machine_io: PCI trees attached to the
    Machine (hwloc 1.x exports, some VMs and ARM servers: no locality).
    snc: sub-NUMA clusters per package, each a Group with its own NUMA
    node (os index p * snc + i) and a share of the cores; the package's
    io stays on the package, above them.  snc_io: {(package, cluster):
    [(domain, (bus lo, hi), pcidevs)]}, PCI trees of one cluster."""
    io = io or {}
    snc_io = snc_io or {}
    extra_groups = extra_groups or []
    g = Gen()
    missing = set(missing_pus)
    allcpus = [c for c in range(packages * cores_per_pkg * smt)
               if c not in missing]
    allnodes = [p for p in range(packages) if p not in numa_less]
    if snc > 1:
        allnodes = list(range(packages * snc))
    if hbm:
        allnodes += [packages + p for p in range(packages)]
    allnodes += [n for n, _ in extra_groups] + list(machine_numa)
    g.line(0, '<?xml version="1.0" encoding="UTF-8"?>')
    g.line(0, '<!DOCTYPE topology SYSTEM "hwloc2.dtd">')
    g.line(0, '<topology version="2.0">')
    g.line(1, '<object type="Machine" os_index="0" %s allowed_cpuset="%s" '
           'allowed_nodeset="%s" gp_index="1">'
           % (g.sets(allcpus, allnodes), bitmap(allcpus),
              bitmap(set(allnodes) - set(disallowed_nodes))))
    g.line(2, '<info name="Backend" value="Synthetic-unit-test"/>')
    for n in machine_numa:
        g.line(2, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
               'local_memory="1073741824"/>' % (n, g.sets([], [n]), g.gpi()))
    for p in range(packages):
        c0 = p * cores_per_pkg
        cpus = [c for c in range(c0 * smt, (c0 + cores_per_pkg) * smt)
                if c not in missing]
        nodes = [p] + ([packages + p] if hbm else [])
        if p in numa_less:
            nodes = []
        if snc > 1:
            nodes = list(range(p * snc, (p + 1) * snc))
        if extra_groups:
            g.line(2, '<object type="Group" %s gp_index="%d">' % (g.sets(cpus, nodes), g.gpi()))
            numa_of_package(g, 3, p, cpus, packages, hbm)
        g.line(2, '<object type="Package" os_index="%d" %s gp_index="%d">'
               % (p, g.sets(cpus, nodes), g.gpi()))
        if not extra_groups and p not in numa_less and snc == 1:
            numa_of_package(g, 3, p, cpus, packages, hbm)
        per = cores_per_pkg // snc
        for i in range(snc):
            cores = range(c0 + i * per, c0 + (i + 1) * per)
            cd, cnodes = 3, nodes
            if snc > 1:
                n = p * snc + i
                ccpus = [u for c in cores for u in range(c * smt, (c + 1) * smt)
                         if u not in missing]
                g.line(3, '<object type="Group" %s gp_index="%d">'
                       % (g.sets(ccpus, [n]), g.gpi()))
                g.line(4, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
                       'local_memory="1073741824"/>' % (n, g.sets(ccpus, [n]), g.gpi()))
                cd, cnodes = 4, [n]
            for c in cores:
                pus = [u for u in range(c * smt, (c + 1) * smt) if u not in missing]
                if not pus:
                    continue
                g.line(cd, '<object type="Core" os_index="%d" %s gp_index="%d">'
                       % (c, g.sets(pus, cnodes), g.gpi()))
                for pu in pus:
                    g.line(cd + 1, '<object type="PU" os_index="%d" %s gp_index="%d"/>'
                           % (pu, g.sets([pu], cnodes), g.gpi()))
                g.line(cd, "</object>")
            if snc > 1:
                for domain, busr, pcidevs in snc_io.get((p, i), []):
                    pci_tree(g, 4, domain, busr, pcidevs)
                g.line(3, "</object>")
        for dev in io.get(("direct", p), []):
            osdev(g, 3, dev)
        for domain, busr, pcidevs in io.get(p, []):
            pci_tree(g, 3, domain, busr, pcidevs)
        g.line(2, "</object>")
        if extra_groups:
            g.line(2, "</object>")
    for domain, busr, pcidevs in machine_io:
        pci_tree(g, 2, domain, busr, pcidevs)
    for n, trees in extra_groups:
        g.line(2, '<object type="Group" %s gp_index="%d">' % (g.sets([], [n]), g.gpi()))
        g.line(3, '<object type="NUMANode" os_index="%d" %s gp_index="%d" '
               'local_memory="1073741824"/>' % (n, g.sets([], [n]), g.gpi()))
        for domain, busr, pcidevs in trees:
            pci_tree(g, 3, domain, busr, pcidevs)
        g.line(2, "</object>")
    g.line(1, "</object>")
    g.line(0, "</topology>")
    return "\n".join(g.out) + "\n"


NV, AMD, INTEL, ASPEED = "10de", "1002", "8086", "1a03"
MLX, HPE = "15b3", "17db"
GPU, COPROC = 1, 5


def nvml(i, uuid=None):
    infos = [("Backend", "NVML")] + ([("NVIDIAUUID", uuid)] if uuid else [])
    return ("nvml%d" % i, GPU, "NVML", infos)


def cuda(i):
    return ("cuda%d" % i, COPROC, "CUDA", [("Backend", "CUDA")])


def opencl(i):
    return ("opencl0d%d" % i, COPROC, "OpenCL", [("Backend", "OpenCL")])


def ze(i, uuid=None):
    infos = [("Backend", "LevelZero")] + ([("LevelZeroUUID", uuid)] if uuid else [])
    return ("ze%d" % i, COPROC, "LevelZero", infos)


def drm(name):
    return (name, GPU, None, [])


def rsmi(i, uuid=None):
    infos = [("Backend", "RSMI")] + ([("AMDUUID", uuid)] if uuid else [])
    return ("rsmi%d" % i, GPU, "RSMI", infos)


NET, OFED = 2, 3


def hca(i, netname=None):
    """An InfiniBand HCA: its OpenFabrics device, and its IPoIB interface
    on the same PCI function."""
    devs = [("mlx5_%d" % i, OFED, None, [("NodeGUID", "0c42:a103:00%02x:0000" % i),
                                         ("Port1State", "4"), ("Port1LID", "0x%x" % (i + 1))])]
    if netname:
        devs.append((netname, NET, None, [("Port", "1")]))
    return devs


def slingshot(i, cxi=True):
    """A Slingshot NIC: its hsn interface and (hwloc 2.14) its cxi device."""
    devs = [("hsn%d" % i, NET, "Slingshot", [("Address", "02:00:00:00:00:%02x" % i)])]
    if cxi:
        devs.append(("cxi%d" % i, NET, "Slingshot", [("CassiniVersion", "1.1")]))
    return devs


def eth(name):
    return [(name, NET, None, [("Address", "a4:bf:01:00:00:01")])]


FILES = {
    # Every GPU-list rule at once (see test_gpus.c for the expected list):
    # best backend per PCI device, a BMC VGA with only card/controlD, a
    # partitioned LevelZero device, OpenCL and DRM devices numbered by PCI
    # bus id per vendor while the walk is not in bus order, a CUDA-only
    # device, a GPU OS device without a PCI parent, missing UUIDs.
    "gpu-rules.xml": node(2, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", NV, "0302",
             [opencl(1), cuda(1), nvml(3, "GPU-11111111-2222-3333-4444-555555555555"),
              drm("card1"), drm("renderD129")]),
            ("0000:02:00.0", ASPEED, "0300", [drm("card0"), drm("controlD64")]),
            ("0000:03:00.0", INTEL, "0380",
             [opencl(2), ze(0, "ze-uuid-0"), ze(1)]),
        ])],
        ("direct", 1): [nvml(7, "GPU-no-pci-parent")],
        1: [(0x0000, (0x80, 0x8f), [
            ("0000:82:00.0", AMD, "0380", [drm("card3"), drm("renderD130")]),
            ("0000:81:00.0", AMD, "0380", [drm("card2"), drm("renderD128"), opencl(0)]),
            ("0000:84:00.0", NV, "0302", [cuda(0)]),
        ])],
    }),
    # More backend choices: CUDA over OpenCL and DRM (no NVML), OpenCL
    # over DRM, DRM render nodes numbered per vendor by PCI bus id (AMD
    # and Intel), a device known only by its subtype (LevelZero, named
    # "accel3"), and a BMC VGA.
    "gpu-backends.xml": node(1, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:02:00.0", NV, "0302",
             [opencl(0), cuda(1), drm("card1"), drm("renderD129")]),
            ("0000:03:00.0", NV, "0302", [cuda(0)]),
            ("0000:05:00.0", AMD, "0380", [opencl(1), drm("card2"), drm("renderD130")]),
            ("0000:04:00.0", AMD, "0380", [drm("card3"), drm("renderD131")]),
            ("0000:06:00.0", INTEL, "0380", [drm("card4"), drm("renderD132")]),
            ("0000:07:00.0", INTEL, "0380",
             [opencl(2), ("accel3", COPROC, "LevelZero", [("Backend", "LevelZero")])]),
            ("0000:01:00.0", ASPEED, "0300", [drm("card0"), drm("controlD64")]),
        ])],
    }),
    # GPU weights 3 and 1 (largest remainder goes to the higher domain).
    "gpu-weights.xml": node(2, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", NV, "0302", [nvml(0)]),
            ("0000:02:00.0", NV, "0302", [nvml(1)]),
            ("0000:03:00.0", NV, "0302", [nvml(2)]),
        ])],
        1: [(0x0000, (0x80, 0x8f), [("0000:81:00.0", NV, "0302", [nvml(3)])])],
    }),
    # The only GPU is local to a CPU-less memory node: gpu_on with W == 0.
    "gpu-zero-weight.xml": node(2, 2, 4, extra_groups=[
        (2, [(0x0000, (0x40, 0x4f), [("0000:41:00.0", NV, "0302", [nvml(0)])])]),
    ]),
    # A GPU OS device without PCI parent is the node's only GPU: no GPU.
    "gpu-nopci-only.xml": node(1, 2, 4, io={
        ("direct", 0): [nvml(0)],
    }),
    # HBM beside DDR in each package, and a CPU-less expander node (in a
    # CPU-less group: hwloc gives a memory child its parent's cpuset).
    "hbm-cxl.xml": node(2, 2, 4, hbm=True, extra_groups=[(9, [])]),
    # hwloc 2's way for memory it cannot place (CXL, expanders): NUMA node
    # 9 attached to the Machine, with (as hwloc gives memory children)
    # the Machine's cpuset.  Not in docs/algorithm.md's two skip rules; the
    # library skips a domain whose root holds other domains' roots.
    "cxl-machine.xml": node(2, 2, 4, machine_numa=[9]),
    # Hardware threads per core from every core: the first core of each
    # package lost a thread (PUs 0 and 8 offline), 14 usable PUs.
    "smt-first-core-short.xml": node(2, 2, 4, missing_pus=[0, 8]),
    # CPUs whose NUMA node is missing: package 0's NUMA node is offline
    # (hwloc 2 hides it), package 1 has NUMA node 1, and a CPU-less
    # memory node 5 hangs from the Machine.  A GPU in each package.
    "numa-offline.xml": node(2, 2, 4, numa_less=[0], machine_numa=[5], io={
        0: [(0x0000, (0x00, 0x0f), [("0000:01:00.0", NV, "0302", [nvml(0)])])],
        1: [(0x0000, (0x80, 0x8f), [("0000:81:00.0", NV, "0302", [nvml(1)])])],
    }),
    # No CPU has a NUMA node: three packages, the only NUMA node is
    # memory without CPUs (outside every package).
    "numa-none.xml": node(3, 1, 2, numa_less=[0, 1, 2], extra_groups=[(7, [])]),
    # A cgroup whose cpuset.mems leaves out NUMA node 0: its CPUs stay.
    "numa-outside-mems.xml": node(2, 2, 4, disallowed_nodes=[0]),
    # GPUs seen only as PCI functions (no NVML/CUDA/RSMI/LevelZero plugin,
    # no DRM render node), not in bus order in the tree: NVIDIA 3D
    # controllers, an AMD and an Intel display controller (data-centre
    # GPUs), an Intel VGA (integrated graphics) and a BMC's VGA that are
    # no GPU, and one NVIDIA device that has an OS device (NVML).
    "gpu-pci-only.xml": node(2, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:05:00.0", NV, "0302", []),
            ("0000:03:00.0", NV, "0302", []),
            ("0000:02:00.0", INTEL, "0300", []),
            ("0000:01:00.0", ASPEED, "0300", [drm("card0"), drm("controlD64")]),
        ])],
        1: [(0x0000, (0x80, 0x8f), [
            ("0000:81:00.0", AMD, "0380", []),
            ("0000:82:00.0", NV, "0302", [drm("card1")]),
            ("0000:83:00.0", INTEL, "0380", []),
            ("0000:84:00.0", "102b", "0300", []),
        ])],
    }),
    # One vendor's GPUs from several backends: NVIDIA known by DRM only
    # (two) and by CUDA (two, numbered 0 and 1 inside a job that saw only
    # them); AMD all by RSMI, not in bus order (kept); Intel by LevelZero
    # with a repeated number (ze0, and a device named by its subtype only,
    # "accel0").
    "gpu-mixed.xml": node(2, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", NV, "0302", [drm("card0"), drm("renderD128")]),
            ("0000:02:00.0", NV, "0302", [cuda(0), drm("renderD130")]),
            ("0000:04:00.0", AMD, "0380", [("rsmi1", GPU, "RSMI", [])]),
            ("0000:05:00.0", INTEL, "0380", [ze(0)]),
        ])],
        1: [(0x0000, (0x80, 0x8f), [
            ("0000:81:00.0", NV, "0302", [drm("renderD129")]),
            ("0000:82:00.0", NV, "0302", [cuda(1)]),
            ("0000:84:00.0", AMD, "0380", [("rsmi0", GPU, "RSMI", [])]),
            ("0000:85:00.0", INTEL, "0380",
             [("accel0", COPROC, "LevelZero", [("Backend", "LevelZero")])]),
        ])],
    }),
    # GPUs without locality: the PCI bus hangs from the Machine (hwloc 1.x
    # exports, VMs, ARM servers; the kind of JUROPA3's node), 2 packages,
    # 2 NVIDIA GPUs and an InfiniBand HCA.
    "gpu-machine.xml": node(2, 2, 4, machine_io=[
        (0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", NV, "0302", [nvml(0)]),
            ("0000:02:00.0", MLX, "0207", hca(0, "ib0")),
        ]),
        (0x0000, (0x80, 0x8f), [("0000:82:00.0", NV, "0302", [nvml(1)])]),
    ]),
    # GPUs above the domains: each package has 2 sub-NUMA clusters (a Group
    # with its NUMA node each) and holds its 2 AMD GPUs and a Slingshot
    # NIC itself, above both clusters.
    "gpu-snc.xml": node(2, 2, 4, snc=2, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", AMD, "0380", [rsmi(0)]),
            ("0000:02:00.0", AMD, "0380", [rsmi(1)]),
            ("0000:03:00.0", HPE, "0200", slingshot(0)),
        ])],
        1: [(0x0000, (0x80, 0x8f), [
            ("0000:81:00.0", AMD, "0380", [rsmi(2)]),
            ("0000:82:00.0", AMD, "0380", [rsmi(3)]),
            ("0000:83:00.0", HPE, "0200", slingshot(1)),
        ])],
    }),
    # A local GPU before an equally deep one (no GPU left idle): 2
    # packages of 3 sub-NUMA clusters; GPU 1 on package 0, above its
    # clusters, GPU 0 (first in PCI order) in package 1's last cluster.
    # With 4 tasks (greedy: clusters 0-1, 2-3, 4, 5) task 1 spans both
    # packages: GPU 1 is local to it, GPU 0 not, each as deep (a package
    # shares CPUs with the task).
    "gpu-local-first.xml": node(2, 2, 3, snc=3, io={
        0: [(0x0000, (0x40, 0x4f), [("0000:41:00.0", NV, "0302", [nvml(1)])])],
    }, snc_io={
        (1, 2): [(0x0000, (0x00, 0x0f), [("0000:01:00.0", NV, "0302", [nvml(0)])])],
    }),
    # A partitioned AMD GPU whose partitions report one UUID (MI300A
    # exports), beside a whole one: the UUID does not tell GPUs apart.
    "gpu-same-uuid.xml": node(1, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", AMD, "0380", [rsmi(0, "0x1a2b3c4d"), rsmi(1, "0x1a2b3c4d"),
                                           rsmi(2, "0x1a2b3c4d")]),
            ("0000:02:00.0", AMD, "0380", [rsmi(3, "0x5e6f7a8b")]),
        ])],
    }),
    # NICs next to GPUs (the kind of JUWELS Booster and Sierra): 2
    # packages, each with 2 PCI switches holding an NVIDIA GPU and an
    # InfiniBand HCA each; the HCAs are numbered against the GPUs' order
    # (mlx5_1 beside nvml0).
    "nic-gpu-switch.xml": node(2, 2, 4, io={
        0: [(0x0000, (0x00, 0x1f), [
            ("switch", "0000:00:01.0", (0x01, 0x0f), [
                ("0000:02:00.0", NV, "0302", [nvml(0)]),
                ("0000:03:00.0", MLX, "0207", hca(1, "ib1")),
            ]),
            ("switch", "0000:00:02.0", (0x10, 0x1f), [
                ("0000:11:00.0", NV, "0302", [nvml(1)]),
                ("0000:12:00.0", MLX, "0207", hca(0, "ib0")),
            ]),
        ])],
        1: [(0x0000, (0x80, 0x9f), [
            ("switch", "0000:80:01.0", (0x81, 0x8f), [
                ("0000:82:00.0", NV, "0302", [nvml(2)]),
                ("0000:83:00.0", MLX, "0207", hca(2, "ib2")),
            ]),
            ("switch", "0000:80:02.0", (0x90, 0x9f), [
                ("0000:91:00.0", NV, "0302", [nvml(3)]),
                ("0000:92:00.0", MLX, "0207", hca(3, "ib3")),
            ]),
        ])],
    }),
    # El Capitan's kind: 4 APUs (a package each, with its NUMA node), each
    # with an AMD GPU and a Slingshot NIC (hsn and, hwloc 2.14, cxi) behind
    # one PCI switch; the last NIC is known by hsn only (an older hwloc).
    "nic-apu-slingshot.xml": node(4, 2, 2, io={
        p: [(0x0000, (0x40 * p, 0x40 * p + 0x3f), [
            ("switch", "0000:%02x:01.0" % (0x40 * p), (0x40 * p + 1, 0x40 * p + 0x3f), [
                ("0000:%02x:00.0" % (0x40 * p + 2), AMD, "0380", [rsmi(p)]),
                ("0000:%02x:00.0" % (0x40 * p + 3), HPE, "0200", slingshot(p, cxi=p < 3)),
            ]),
        ])] for p in range(4)
    }),
    # CPUs only: 2 HCAs (one dual-port card: two PCI functions) on package
    # 0, none on package 1, a BXI NIC on package 1, and Ethernet
    # interfaces (no NIC).
    "nic-cpu-only.xml": node(2, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", MLX, "0207", hca(0, "ib0")),
            ("0000:01:00.1", MLX, "0207", hca(1, "ib1")),
            ("0000:02:00.0", INTEL, "0200", eth("eno1")),
        ])],
        1: [(0x0000, (0x80, 0x8f), [
            ("0000:81:00.0", "1f77", "0000", [("bxi0", NET, "BXI", [])]),
            ("0000:82:00.0", INTEL, "0200", eth("eno2")),
        ])],
    }),
    # Ethernet only: no NIC, no "nics" field.
    "nic-ethernet-only.xml": node(1, 2, 4, io={
        0: [(0x0000, (0x00, 0x0f), [
            ("0000:01:00.0", INTEL, "0200", eth("eno1")),
        ])],
    }),
}


if __name__ == "__main__":
    for name, text in FILES.items():
        with open(name, "w") as f:
            f.write(text)
        print("wrote", name, file=sys.stderr)
