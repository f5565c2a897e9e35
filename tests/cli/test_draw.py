"""`mpibind --draw FILE`: the picture of the mapping, drawn by hwloc's lstopo.

What is checked, on the pictures themselves (never on the command's own
account of them):
- SVG (lstopo's native SVG names every box: id '<Type>_<n>_rect' and its
  text): every task has a key box of its own colour; the PUs of task i, the
  cores around them and its GPUs (GPU OS device and the PCI device holding
  it) have task i's colour, the PUs of no task none; every task's report
  line is a legend line; a PU or GPU of several tasks has one colour for
  all of them and holds a box naming the tasks ("tasks 0-1");
- PNG: the signature and IHDR size, and the task colours in its pixels
  (decoded here with zlib);
- PDF and the annotated XML;
- errors: no renderer in PATH, an unwritable file, an unknown extension:
  one line, exit 2, nothing on stdout, no file left behind;
- the live node, and the wrapper under mpirun (one picture per node, the
  host name in its name).

The expected task of each PU and GPU comes from the command's report
(tested against docs/algorithm.md in test_preview.py).
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

import pytest

from conftest import EXE, clean_env, parse_list, run, topo

REPORT = re.compile(r"^mpibind: task +(\d+) nths +(\d+) gpus (\S*)(?: nics \S*)? "
                    r"cpus (\S*)$")


def report(stdout):
    """{task: (cpus set, [gpu ids])} from the report lines."""
    tasks = {}
    for line in stdout.splitlines():
        m = REPORT.match(line)
        if m:
            gpus = [g for g in m.group(3).split(",") if g]
            tasks[int(m.group(1))] = (parse_list(m.group(4)), gpus)
    return tasks


class Svg:
    """The boxes of an lstopo native SVG: id prefix -> class, fill,
    geometry and texts; plus the legend lines."""

    def __init__(self, path):
        root = ET.parse(path).getroot()
        self.boxes = {}
        self.legend = []
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            ident = el.get("id") or ""
            if tag == "text" and ident.startswith("anon_text"):
                self.legend.append(el.text or "")
                continue
            m = re.match(r"^(\w+?_\d+)_(rect|text(?:_\d+)?)$", ident)
            if not m:
                continue
            box = self.boxes.setdefault(m.group(1), {"texts": []})
            if tag == "rect":
                box.update(cls=el.get("class"), fill=el.get("fill"),
                           x=float(el.get("x")), y=float(el.get("y")),
                           w=float(el.get("width")), h=float(el.get("height")))
            elif tag == "text":
                box["texts"].append(el.text or "")

    def of_class(self, cls):
        return [b for b in self.boxes.values() if b.get("cls") == cls]

    def by_text(self, cls, text):
        found = [b for b in self.of_class(cls) if text in b["texts"]]
        assert len(found) == 1, f"{cls} box '{text}': {len(found)} found"
        return found[0]

    def pus(self):
        """{PU OS index: box}; the pictures show OS indexes (lstopo -p)."""
        out = {}
        for b in self.of_class("PU"):
            m = re.match(r"^PU P#(\d+)$", b["texts"][0])
            assert m, b["texts"]
            out[int(m.group(1))] = b
        return out

    @staticmethod
    def inside(inner, outer):
        return (outer["x"] <= inner["x"] and outer["y"] <= inner["y"]
                and inner["x"] + inner["w"] <= outer["x"] + outer["w"]
                and inner["y"] + inner["h"] <= outer["y"] + outer["h"])

    def around(self, cls, inner):
        """The smallest box of class cls that contains inner."""
        found = [b for b in self.of_class(cls) if self.inside(inner, b)]
        assert found, f"no {cls} around {inner['texts']}"
        return min(found, key=lambda b: b["w"] * b["h"])

    def key(self, ntasks):
        """Task -> fill of its key box ("task i")."""
        out = {}
        for t in range(ntasks):
            out[t] = self.by_text("Misc", f"task {t}")["fill"]
        return out


def draw(args, path, env=None):
    res = run(list(args) + ["--draw", str(path)], env=env)
    assert res.returncode == 0, res.stderr
    assert path.is_file() and path.stat().st_size > 0
    return res


def check_picture(svg, tasks, default_pu_fill=None):
    """The colours of one picture against the report."""
    key = svg.key(len(tasks))
    # One colour per task, none of them white or the shared grey.
    assert len(set(key.values())) == len(tasks), key
    owners = {}
    for t, (cpus, _) in tasks.items():
        for c in cpus:
            owners.setdefault(c, []).append(t)
    pus = svg.pus()
    shared_fill = set()
    for os_index, box in pus.items():
        who = owners.get(os_index, [])
        if len(who) == 1:
            assert box["fill"] == key[who[0]], (os_index, who, box)
        elif len(who) > 1:
            shared_fill.add(box["fill"])
            labels = [b["texts"][0] for b in svg.of_class("Misc")
                      if svg.inside(b, box)]
            assert len(labels) == 1 and labels[0].startswith("tasks "), labels
            assert parse_list(labels[0][6:]) == set(who), labels
        else:
            assert box["fill"] not in key.values(), (os_index, box)
    assert shared_fill.isdisjoint(key.values())
    # The legend: a header, then each task's report line.
    for t in tasks:
        line = next(l for l in svg.legend if re.match(rf"^task +{t} ", l))
        m = REPORT.match("mpibind: " + line)
        assert m and parse_list(m.group(4)) == tasks[t][0], line
    # The cores of a task's PUs: one colour per task, other than the cores
    # of no task.  (A node of one PU per core has no Core level left.)
    if not svg.of_class("Core"):
        return key
    core_fill = {}
    for os_index, box in pus.items():
        core = svg.around("Core", box)
        who = {t for j in core_pus(svg, box, pus) for t in owners.get(j, [])}
        if len(who) == 1:
            core_fill.setdefault(who.pop(), set()).add(core["fill"])
    for t, fills in core_fill.items():
        assert len(fills) == 1, (t, fills)
    flat = [next(iter(f)) for f in core_fill.values()]
    assert len(set(flat)) == len(flat)
    unused = [svg.around("Core", b)["fill"] for i, b in pus.items()
              if i not in owners
              and not any(j in owners for j in core_pus(svg, b, pus))]
    assert set(unused).isdisjoint(flat)
    return key


def core_pus(svg, pu_box, pus):
    core = svg.around("Core", pu_box)
    return [i for i, b in pus.items() if svg.inside(b, core)]


def test_svg_lassen_colours_every_task(tmp_path):
    """4 tasks, 4 GPUs: each task's PUs, cores and GPU in its colour."""
    path = tmp_path / "lassen.svg"
    res = draw(["-n", "4", "--topology", topo("coral-lassen.xml"),
                "--gpu-ids", "name"], path)
    tasks = report(res.stdout)
    assert len(tasks) == 4
    svg = Svg(path)
    key = check_picture(svg, tasks)
    for t, (_, gpus) in tasks.items():
        assert len(gpus) == 1
        gpu = svg.by_text("GPU", f"GPU {gpus[0]}")
        assert gpu["fill"] == key[t]
        assert svg.around("PCI", gpu)["fill"] == key[t]
        # its NIC too (docs/algorithm.md: mlx5_t beside GPU t's socket)
        nic = svg.by_text("OpenFabrics", f"OpenFabrics mlx5_{t}")
        assert nic["fill"] == key[t]
        assert svg.around("PCI", nic)["fill"] == key[t]
    # Only the 4 GPUs and the 4 NICs of the tasks are coloured among the
    # I/O boxes.
    coloured = [b for c in ("PCI", "GPU", "CoProc", "Net", "OpenFabrics",
                            "Block")
                for b in svg.of_class(c) if b["fill"] in key.values()]
    # GPU: PCI device, nvml and cuda; NIC: PCI function, mlx5 and hsi
    assert len(coloured) == 4 * 3 + 4 * 3
    # The legend names the node and the file; the viewBox has no units
    # (hwloc 2.9 writes "px" there, which SVG converters refuse).
    assert "coral-lassen.xml" in svg.legend[0]
    assert re.search(r"viewBox='0 0 \d+ \d+'", path.read_text())


def test_svg_shared_gpus_and_pus(tmp_path):
    """8 tasks on 4 GPUs: each GPU is shared and says by whom; 4 tasks on
    2 PUs: each PU is shared too."""
    path = tmp_path / "shared.svg"
    res = draw(["-n", "8", "--topology", topo("coral-lassen.xml"),
                "--gpu-ids", "name"], path)
    tasks = report(res.stdout)
    svg = Svg(path)
    key = check_picture(svg, tasks)
    users = {}
    for t, (_, gpus) in tasks.items():
        for g in gpus:
            users.setdefault(g, []).append(t)
    assert len(users) == 4 and all(len(u) == 2 for u in users.values())
    fills = set()
    for g, who in users.items():
        gpu = svg.by_text("GPU", f"GPU {g}")
        pci = svg.around("PCI", gpu)
        fills.update({gpu["fill"], pci["fill"]})
        labels = [b["texts"][0] for b in svg.of_class("Misc")
                  if svg.inside(b, pci)]
        assert len(labels) == 1, labels
        assert parse_list(labels[0].removeprefix("tasks ")) == set(who)
    assert len(fills) == 1 and fills.isdisjoint(key.values())

    path = tmp_path / "shared-pus.svg"
    res = draw(["-n", "4", "--restrict", "8,9", "--topology",
                topo("coral-lassen.xml")], path)
    tasks = report(res.stdout)
    assert tasks[0][0] == tasks[1][0] == {8}
    check_picture(Svg(path), tasks)


def test_svg_tioga_eight_gpus(tmp_path):
    """A 128-PU node with 8 GPUs: 8 tasks, one GPU each, all distinct."""
    path = tmp_path / "tioga.svg"
    res = draw(["-n", "8", "--topology", topo("eas-tioga.xml"),
                "--gpu-ids", "name"], path)
    tasks = report(res.stdout)
    svg = Svg(path)
    assert len(svg.pus()) == 128
    key = check_picture(svg, tasks)
    for t, (_, gpus) in tasks.items():
        assert len(gpus) == 1
        assert svg.by_text("GPU", f"GPU {gpus[0]}")["fill"] == key[t]
    # Readable: the width lstopo chose keeps PU boxes at its normal size.
    assert all(b["h"] >= 20 and b["w"] >= 40 for b in svg.pus().values())


def test_svg_live_node(tmp_path):
    path = tmp_path / "live.svg"
    n = min(2, len(os.sched_getaffinity(0)))
    res = draw(["-n", str(n)], path)
    tasks = report(res.stdout)
    assert len(tasks) == n
    check_picture(Svg(path), tasks)


def png_pixels(data):
    """(width, height, set of (r, g, b)) of an 8-bit RGB or RGBA PNG,
    decoded here: chunks, zlib, the five scanline filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        for x in range(0, stride, bpp):
            colours.add(tuple(line[x:x + 3]))
        prev = line
    return w, h, colours


def rgb(fill):
    return tuple(int(v) for v in re.match(r"rgb\((\d+),(\d+),(\d+)\)",
                                          fill).groups())


def lstopo_has_cairo():
    lstopo = shutil.which("lstopo")
    return bool(lstopo) and "png" in subprocess.run(
        [lstopo, "--help"], capture_output=True, text=True).stdout


def renderer_bin(tmp_path, *names):
    """A PATH directory holding only the named programs (symlinks)."""
    d = tmp_path / ("bin-" + "-".join(names))
    d.mkdir()
    for n in names:
        os.symlink(shutil.which(n), d / n)
    return str(d)


def png_routes(tmp_path):
    """The PATHs under which a PNG can be drawn here: lstopo's cairo
    output (Debian hwloc), hwloc's SVG converted by rsvg-convert (Debian
    hwloc-nox + librsvg2-bin)."""
    routes = []
    if lstopo_has_cairo():
        routes.append(renderer_bin(tmp_path, "lstopo"))
    if shutil.which("lstopo-no-graphics") and shutil.which("rsvg-convert"):
        routes.append(renderer_bin(tmp_path, "lstopo-no-graphics",
                                   "rsvg-convert"))
    if not routes:
        pytest.skip("no PNG renderer: neither hwloc's lstopo with cairo nor "
                    "lstopo-no-graphics with rsvg-convert is installed")
    return routes


def test_png_size_and_colours(tmp_path):
    args = ["-n", "4", "--topology", topo("coral-lassen.xml")]
    svg = tmp_path / "map.svg"
    draw(args, svg)
    key = Svg(svg).key(4)
    for n, path in enumerate(png_routes(tmp_path)):
        png = tmp_path / f"map{n}.png"
        res = run_bare(args + ["--draw", str(png)], clean_env(PATH=path))
        assert res.returncode == 0, (path, res.stderr)
        check_png(png, key)


def check_png(png, key):
    data = png.read_bytes()
    w, h = struct.unpack(">II", data[16:24])
    assert data[12:16] == b"IHDR"
    # 160 PUs, 44 cores, 4 GPUs and a 5-line legend: lstopo's normal
    # sizes need at least this much to stay readable.
    assert 1000 <= w <= 4000 and 900 <= h <= 4000, (w, h)
    pw, ph, colours = png_pixels(data)
    assert (pw, ph) == (w, h)
    for t, fill in key.items():
        assert rgb(fill) in colours, (t, fill)


def test_pdf_and_annotated_xml(tmp_path):
    args = ["-n", "2", "--topology", topo("coral-lassen.xml")]
    for n, path in enumerate(png_routes(tmp_path)):
        pdf = tmp_path / f"map{n}.PDF"
        res = run_bare(args + ["--draw", str(pdf)], clean_env(PATH=path))
        assert res.returncode == 0, (path, res.stderr)
        assert pdf.read_bytes()[:5] == b"%PDF-"
    xml = tmp_path / "map.xml"
    res = draw(args, xml)
    tasks = report(res.stdout)
    root = ET.parse(xml).getroot()
    styles = {}
    for obj in root.iter("object"):
        if obj.get("type") == "PU":
            for info in obj.iter("info"):
                if info.get("name") == "lstopoStyle":
                    styles[int(obj.get("os_index"))] = info.get("value")
    assert set(styles) == tasks[0][0] | tasks[1][0]
    assert len({styles[c] for c in tasks[0][0]}) == 1
    assert {styles[c] for c in tasks[0][0]}.isdisjoint(
        {styles[c] for c in tasks[1][0]})
    legend = [i.get("value") for i in root.iter("info")
              if i.get("name") == "lstopoLegend"]
    assert len(legend) == 3 and legend[1].startswith("task  0 nths")


def run_bare(args, env):
    """The command without `timeout` in front (PATH may lack it)."""
    return subprocess.run([EXE] + args, capture_output=True, text=True,
                          env=env, timeout=60)


def one_line_exit_2(res, *words):
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mpibind: "), lines
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("name", ["map.svg", "map.png", "map.pdf"])
def test_missing_renderer(tmp_path, name):
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    res = run_bare(["-n", "2", "--topology", topo("coral-lassen.xml"),
                    "--draw", str(out / name)],
                   clean_env(PATH=str(empty)))
    one_line_exit_2(res, str(out / name), "no renderer", "lstopo", "PATH")
    assert os.listdir(out) == []


def test_lstopo_without_png_and_no_converter(tmp_path):
    """Debian's hwloc-nox: `lstopo` is lstopo-no-graphics, without PNG;
    without rsvg-convert there is no way to PNG: one line saying why."""
    if not shutil.which("lstopo-no-graphics"):
        pytest.skip("hwloc's lstopo-no-graphics is not installed")
    d = tmp_path / "bin"
    d.mkdir()
    os.symlink(shutil.which("lstopo-no-graphics"), d / "lstopo")
    out = tmp_path / "out"
    out.mkdir()
    res = run_bare(["-n", "2", "--topology", topo("coral-lassen.xml"),
                    "--draw", str(out / "m.png")], clean_env(PATH=str(d)))
    one_line_exit_2(res, "no renderer for PNG", "rsvg-convert", "PATH")
    assert os.listdir(out) == []


def test_annotated_xml_needs_no_renderer(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    res = run_bare(["-n", "2", "--topology", topo("coral-lassen.xml"),
                    "--draw", str(tmp_path / "m.xml")],
                   clean_env(PATH=str(empty)))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "m.xml").stat().st_size > 0


def test_unwritable_path(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    for path in ["/nonexistent-mpibind-dir/map.svg", str(afile / "map.svg")]:
        res = run(["-n", "2", "--topology", topo("coral-lassen.xml"),
                   "--draw", path])
        one_line_exit_2(res, f"'{path}'", "cannot write the picture")
    # A directory where the file should be: refused, the directory intact.
    d = tmp_path / "dir.svg"
    d.mkdir()
    res = run(["-n", "2", "--topology", topo("coral-lassen.xml"),
               "--draw", str(d)])
    one_line_exit_2(res, str(d))
    assert d.is_dir() and sorted(os.listdir(tmp_path)) == ["dir.svg", "file"]


def test_symlink_is_written_through(tmp_path):
    """--draw onto a symbolic link writes the file it leads to, as lstopo
    --force and a shell's redirection do (made when missing: a dangling
    link), and the link stays a link; a loop of links is one line."""
    target = tmp_path / "pictures" / "map.xml"
    target.parent.mkdir()
    target.write_text("old picture")
    link = tmp_path / "map.xml"
    os.symlink("pictures/map.xml", link)
    args = ["-n", "2", "--topology", topo("coral-lassen.xml")]
    draw(args, link)
    assert os.readlink(link) == "pictures/map.xml"
    assert target.read_text().startswith("<?xml"), target.read_text()[:40]
    dangling = tmp_path / "new.xml"
    os.symlink(tmp_path / "pictures" / "new-target.xml", dangling)
    draw(args, dangling)
    assert os.path.islink(dangling)
    assert (tmp_path / "pictures" / "new-target.xml").read_text().startswith("<?xml")
    loop = tmp_path / "loop.xml"
    os.symlink("loop.xml", loop)
    res = run(args + ["--draw", str(loop)])
    one_line_exit_2(res, f"'{loop}'", "symbolic links")
    assert os.readlink(loop) == "loop.xml"
    assert sorted(os.listdir(tmp_path / "pictures")) == ["map.xml", "new-target.xml"]


@pytest.mark.parametrize("value,words", [
    ("map.jpg", ["'map.jpg'", ".svg, .png, .pdf or .xml"]),
    ("map", ["'map'", ".svg, .png, .pdf or .xml"]),
    ("", ["--draw", "''", ".svg, .png, .pdf or .xml"]),
])
def test_bad_file_name(tmp_path, value, words):
    res = run(["-n", "2", "--topology", topo("coral-lassen.xml"),
               "--draw", value])
    one_line_exit_2(res, *words)


def test_wrapper_draws_once_per_node_under_mpirun(tmp_path):
    """`mpirun -np 2 mpibind --draw F.svg -- prog`: the node's task 0 draws
    F-<host>.svg; nothing else is written."""
    mpirun = shutil.which("mpirun.openmpi") or shutil.which("mpirun")
    if not mpirun:
        pytest.skip("Open MPI's mpirun is not installed")
    base = tmp_path / "w.svg"
    env = clean_env(OMPI_ALLOW_RUN_AS_ROOT="1",
                    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    res = run(["--topology", topo("coral-lassen.xml"), "--dryrun",
               "--draw", str(base), "--", "true"], env=env, timeout=120,
              prefix=[mpirun, "-np", "2", "--oversubscribe",
                      "--bind-to", "none"])
    assert res.returncode == 0, res.stderr
    want = f"w-{socket.gethostname()}.svg"
    assert os.listdir(tmp_path) == [want]
    svg = Svg(tmp_path / want)
    assert len([l for l in svg.legend if l.startswith("task ")]) == 2
    svg.key(2)
