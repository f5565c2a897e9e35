"""Helpers shared by the pytest suites (python, cli, preload, launch,
slurm), put on PYTHONPATH by meson: the hwloc list syntax written here
independently of hwloc and of the library, the report line of
docs/algorithm.md, the worked examples of docs/algorithm.md read from
their one data file, tests/data/worked-examples.tsv, the original
mpibind's suite (tests/data/original-suite) with its listed differences,
and what a process loaded as LD_DEBUG=files shows it.
"""
import json
import os
import re

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                    "data")
WORKED_EXAMPLES = os.path.join(DATA, "worked-examples.tsv")
ORIGINAL_SUITE = os.path.join(DATA, "original-suite")
ALGORITHM = os.path.join(DATA, os.pardir, os.pardir, "docs", "algorithm.md")


def parse_list(text):
    """hwloc list syntax ("0-3,8") -> set of int; "" is the empty set."""
    out = set()
    for item in text.strip().split(","):
        if not item:
            continue
        a, _, b = item.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def hwlist(cpus):
    """A set of integers in hwloc list syntax ("0-3,8")."""
    cpus = sorted(set(cpus))
    out = []
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


def report_line(task, nthreads, gpus, cpus, nics=None):
    """One line of docs/algorithm.md's report format ("nics" only on a
    node with NICs: pass the task's NIC names)."""
    return "mpibind: task %2d nths %2d gpus %s%s cpus %s" % (
        task, nthreads, ",".join(gpus),
        "" if nics is None else " nics " + ",".join(nics), hwlist(cpus))


_NICS_FIELD = re.compile(r" nics \S*(?= cpus )")


def without_nics(text):
    """A report (or line) without its "nics" fields: for the tests of the
    CPUs and GPUs of a node that has NICs (their choice is tested on its
    own)."""
    return _NICS_FIELD.sub("", text)


class Example:
    """One worked example: the topology file name, the inputs that are
    not defaults (Python keyword names and values), and per task the
    expected thread count, CPU list (sorted ints) and GPU ids (strings)."""

    def __init__(self, topology, inputs, nthreads, cpus, gpus):
        self.topology = topology
        self.inputs = inputs
        self.nthreads = nthreads
        self.cpus = cpus
        self.gpus = gpus

    @property
    def id(self):
        return self.topology.split(".")[0] + "-" + "-".join(
            "%s=%s" % kv for kv in sorted(self.inputs.items()))

    def options(self):
        """The same inputs as options of the `mpibind` command."""
        names = {"ntasks": "--ntasks", "nthreads": "--nthreads",
                 "greedy": "--greedy", "gpu_optim": "--gpu-optim",
                 "smt": "--smt", "restrict_ids": "--restrict",
                 "restrict_type": "--restrict-type"}
        out = []
        for k, v in self.inputs.items():
            out += [names[k], str(v)]
        return out

    def rows(self):
        """[(nthreads, gpus, cpus)] by task."""
        return list(zip(self.nthreads, self.gpus, self.cpus))


def worked_examples(path=WORKED_EXAMPLES):
    """The rows of the worked-examples file, as Example objects."""
    out = []
    header = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if header is None:
                header = fields
                continue
            row = dict(zip(header, fields))
            inputs = {}
            for k in ("ntasks", "nthreads", "greedy", "gpu_optim", "smt"):
                if row[k] != "-":
                    inputs[k] = int(row[k])
            for k in ("restrict_ids", "restrict_type"):
                if row[k] != "-":
                    inputs[k] = row[k]
            n = inputs["ntasks"]
            nth = [int(x) for x in row["expect_nthreads"].split(";")]
            cpus = [sorted(parse_list(c))
                    for c in row["expect_cpus"].split(";")]
            gpus = ([[] for _ in range(n)] if row["expect_gpus"] == "-" else
                    [g.split(",") if g else []
                     for g in row["expect_gpus"].split(";")])
            assert len(nth) == len(cpus) == len(gpus) == n, line
            out.append(Example(row["topology"], inputs, nth, cpus, gpus))
    return out


# ---- the original's suite (tests/data/original-suite) ----------------------

ORIGINAL_FIELDS = ("threads", "cpus", "gpus")
ALSO_FAILS = "the original also fails this expectation"
BEYOND = "Beyond the original: "


class OriginalCase:
    """One case of the original's expected files: the machine (the file's
    name after "expected."), its number ("# N:"), the topology file, the
    description, the inputs (the handle's keyword names) and the expected
    answer per field of ORIGINAL_FIELDS, in the files' format."""

    def __init__(self, machine, num, topology, description, inputs,
                 expected):
        self.machine = machine
        self.num = num
        self.topology = topology
        self.description = description
        self.inputs = inputs
        self.expected = expected

    @property
    def id(self):
        return "%s-%d" % (self.machine, self.num)


def _original_file(path, machine, topology):
    """The cases of one expected file (the original's format, see
    tests/data/README.md)."""
    cases, num, params, lines = [], None, None, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                head = line[1:].strip()
                if head.endswith(":") and head[:-1].isdigit():
                    num = int(head[:-1])
                elif '"params"' in line:
                    params, lines = json.loads(head)["params"], []
                continue
            assert params is not None, "%s: a line before its params: %s" % (path, line)
            lines.append(line)
            if len(lines) == 1 + len(ORIGINAL_FIELDS):
                assert all(len(l) >= 2 and l[0] == l[-1] == '"' for l in lines[1:]), lines
                inputs = {"ntasks": params["ntasks"],
                          "nthreads": params["in_nthreads"],
                          "greedy": params["greedy"],
                          "gpu_optim": params["gpu_optim"],
                          "smt": params["smt"],
                          "restrict_ids": params["restr_set"],
                          "restrict_type": params["restrict_type"]}
                expected = dict(zip(ORIGINAL_FIELDS, (l[1:-1] for l in lines[1:])))
                cases.append(OriginalCase(machine, num, topology, lines[0],
                                          inputs, expected))
                params = None
    assert params is None, "%s: a case without its three answers" % path
    return cases


def _tsv_rows(path, ncols):
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                cols = line.split("\t")
                assert len(cols) == ncols, "%s: expected %d columns: %r" % (path, ncols, line)
                yield cols


def original_suite(folder=ORIGINAL_SUITE):
    """(cases, differences): every OriginalCase of the files machines.tsv
    names, and differences.tsv as {(machine, num, field): (ours, reason)}."""
    cases = []
    for name, topology in _tsv_rows(os.path.join(folder, "machines.tsv"), 2):
        cases += _original_file(os.path.join(folder, name),
                                name.split(".", 1)[1], topology)
    diffs = {}
    for machine, num, field, ours, reason, _note in _tsv_rows(
            os.path.join(folder, "differences.tsv"), 6):
        key = (machine, int(num), field)
        assert key not in diffs, "differences.tsv lists %s twice" % (key,)
        diffs[key] = (ours, reason)
    return cases, diffs


def beyond_the_original_rules(path=ALGORITHM):
    """The titles of the rules under "Beyond the original" in
    docs/algorithm.md (its "###" sections)."""
    rules, inside = [], False
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("## "):
                inside = line.startswith("## Beyond the original")
            elif inside and line.startswith("### "):
                rules.append(line[4:])
    return rules


# LD_DEBUG=files: "  PID:  file=NAME [0];  needed by OBJ [0]" (or
# "dynamically loaded by OBJ") for each object a process loads.
LD_DEBUG_LOAD_RE = re.compile(r"^\s*(\d+):\s+file=(\S+)\s+\[\d+\];\s+"
                              r"(?:needed by|dynamically loaded by)\s+(\S+)")

# What the automatic binding never loads into the application's process
# (auto/README.md, "Two floors"): hwloc, libmpibind, their dependencies,
# hwloc's plugins.
NOT_IN_APPLICATION = re.compile(
    r"(libhwloc|libmpibind\.so|libudev|libxml2|/hwloc_)")


def ld_debug_loads(stderr):
    """{pid: [(file, loaded by)]} from LD_DEBUG=files output."""
    out = {}
    for line in stderr.splitlines():
        m = LD_DEBUG_LOAD_RE.match(line)
        if m:
            out.setdefault(int(m[1]), []).append((m[2], m[3]))
    return out


# An MPIBIND_TRACE line: (pid, task, count, topology, bound, cpus).
TRACE_LINE_RE = re.compile(r"^host=\S+ pid=(\d+) task=(\d+)/(\d+) "
                           r"topology=(\w+) bound=([01]) cpus=(\S*)$")
