"""Nothing but libc in the application: the preload loads no other library
into the processes it rides in (ranks, non-ranks, MPIBIND=off), and a
program with its own hwloc keeps it and is still bound.

What they pin down (auto/README.md, "Two floors"; docs/interfaces.md):
- libmpibind-preload.so needs libc alone (its ELF dependencies; a
  sanitized build adds the sanitizer runtimes, nothing else);
- LD_DEBUG=files in a process that is not a rank, in a rank with
  MPIBIND=off, and in a rank on a cold and on a warm node: no libhwloc,
  libmpibind, libudev, libxml2 or hwloc plugin in that process (the helper
  that maps the cold node is another process, and loads them: the same
  check sees them there);
- a program linked against its own libhwloc.so.5 (a stand-in built here
  that answers as hwloc 1.11) is bound under the preload, and its own
  hwloc calls still reach its own library;
- the task floor's sources (auto/task/) include no header but their own,
  lib/'s libc-only ones and system headers other than hwloc's.

Real processes, the real preload and helper, a real compiler for the
stand-in.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from mpibind_testutil import NOT_IN_APPLICATION as FORBIDDEN
from mpibind_testutil import TRACE_LINE_RE as TRACE_RE
from mpibind_testutil import ld_debug_loads, parse_list

PRELOAD_LIST = os.environ["MPIBIND_TEST_PRELOAD"].split()
PRELOAD = PRELOAD_LIST[-1]  # after the sanitizer runtimes, if any
DROP = ("OMPI_", "PMIX_", "PMI_", "SLURM_", "FLUX_", "PALS_", "MV2_",
        "MPI_LOCAL", "HYDRA_", "PRTE_", "MPIBIND", "OMP_", "GOMP_", "CUDA_",
        "ROCR_", "HIP_", "ZE_", "LD_PRELOAD", "LD_DEBUG", "HWLOC_")
TRUE = shutil.which("true") or "/bin/true"


def clean_env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
    e.update(extra)
    return e


def loads_of(stderr, pid=None):
    """(pid, file, loaded by) of every object LD_DEBUG=files saw loaded,
    for one process or all."""
    return [(p, f, by) for p, seen in ld_debug_loads(stderr).items()
            if pid is None or p == pid for f, by in seen]


def run(tmp, env, argv=(TRUE,)):
    trace = tmp / "trace"
    if trace.exists():
        trace.unlink()
    e = clean_env(MPIBIND_CACHE_DIR=str(tmp / "cache"), MPIBIND_TRACE=str(trace),
                  LD_PRELOAD=" ".join(PRELOAD_LIST), LD_DEBUG="files", **env)
    p = subprocess.run(list(argv), env=e, capture_output=True, text=True,
                       timeout=60)
    lines = [TRACE_RE.match(l.rstrip("\n")) for l in open(trace)] \
        if trace.exists() else []
    return p, lines


def test_preload_needs_libc_only():
    """The ELF dependencies of the preload: libc alone (a sanitized build
    links its sanitizer runtimes too)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    p = subprocess.run([readelf, "-d", PRELOAD], capture_output=True, text=True,
                       check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", p.stdout)
    sanitizers = re.compile(r"^lib(asan|ubsan|tsan|lsan)\.so")
    assert [n for n in needed if not sanitizers.match(n)] == ["libc.so.6"], needed
    # and nothing the dynamic loader would bring in through them
    ldd = subprocess.run(["ldd", PRELOAD], capture_output=True, text=True,
                         check=True)
    assert not FORBIDDEN.search(ldd.stdout), ldd.stdout


@pytest.mark.parametrize("env", [
    {},                                                   # not a rank
    {"MPI_LOCALRANKID": "0", "MPI_LOCALNRANKS": "2", "MPIBIND": "off"},
])
def test_no_library_in_a_process_that_is_left_alone(tmp_path, env):
    p, trace = run(tmp_path, env)
    assert p.returncode == 0 and trace == [], p.stderr[-2000:]
    seen = loads_of(p.stderr)
    assert any(PRELOAD.endswith(os.path.basename(f)) or f == PRELOAD
               for _, f, _ in seen), "LD_DEBUG saw no load at all:\n" + p.stderr[-2000:]
    assert [l for l in seen if FORBIDDEN.search(l[1])] == []
    # and no helper was started
    assert len({pid for pid, _, _ in seen}) == 1, seen


def test_no_library_in_ranks_cold_and_warm(tmp_path):
    """The node's first rank (cold: the helper discovers and maps, in its
    own process) and the next one (warm: reads its record)."""
    for rank, how in ((0, "discovered"), (1, "cache")):
        p, trace = run(tmp_path, {"MPI_LOCALRANKID": str(rank),
                                  "MPI_LOCALNRANKS": "2"})
        assert p.returncode == 0 and len(trace) == 1 and trace[0], p.stderr[-2000:]
        pid = int(trace[0][1])
        assert (trace[0][4], trace[0][5]) == (how, "1"), trace[0][0]
        mine = loads_of(p.stderr, pid)
        assert mine, "LD_DEBUG saw nothing of the rank:\n" + p.stderr[-2000:]
        assert [l for l in mine if FORBIDDEN.search(l[1])] == [], mine


def system_files_opened(tmp, rank, **env):
    """The files of /proc and /sys that rank `rank` of 2 (/bin/true under
    the preload, traced by strace) opens or stats itself, those that it and
    its children (the helper) do, and where its trace line says its
    mapping came from."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    log, trace = tmp / "strace", tmp / "trace"
    for f in (log, trace):
        if f.exists():
            f.unlink()
    # strace itself carries no preload and no task variables: -E gives
    # them to the traced program only
    task = {"LD_PRELOAD": " ".join(PRELOAD_LIST), "MPI_LOCALRANKID": str(rank),
            "MPI_LOCALNRANKS": "2", "MPIBIND_CACHE_DIR": str(tmp / "cache"),
            "MPIBIND_TRACE": str(trace), **env}
    argv = [strace, "-f", "-qq", "-o", str(log), "-e",
            "trace=open,openat,openat2,stat,lstat,newfstatat,statx,access"]
    for k, v in task.items():
        argv += ["-E", f"{k}={v}"]
    p = subprocess.run(argv + [TRUE], env=clean_env(), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = log.read_text().splitlines()
    rank_pid = lines[0].split()[0] if lines else None
    seen = [(l.split()[0], m.group(1)) for l in lines
            for m in [re.search(r'"(/(?:proc|sys)/[^"]*)"', l)] if m]
    how = [TRACE_RE.match(l.rstrip("\n"))[4] for l in open(trace)] \
        if trace.exists() else []
    return {f for pid, f in seen if pid == rank_pid}, {f for _, f in seen}, how


def test_warm_rank_reads_no_file_of_proc_or_sys(tmp_path):
    """A rank whose node is mapped keys the node mapping file with system
    calls alone (auto/README.md, "One mapping per node"): no file of /proc
    or /sys, each of which costs a rank some 10 to 15 us in every launch,
    beyond what the same process opens with MPIBIND=off (a sanitizer's
    runtime reads /proc/self/maps).  The binding of a process that started
    no thread lists no /proc/self/task either.  The helper that mapped
    the node on the cold rank reads them: the check sees such files."""
    floor, _, _ = system_files_opened(tmp_path, 1, MPIBIND="off")
    _, cold, how = system_files_opened(tmp_path, 0)
    assert how == ["discovered"], how
    assert "/sys/devices/system/cpu/online" in cold, sorted(cold)
    warm, _, how = system_files_opened(tmp_path, 1)
    assert how == ["cache"], how
    assert warm - floor == set(), sorted(warm - floor)


def test_the_helper_does_load_them(tmp_path):
    """What the checks above look for is what LD_DEBUG shows of a process
    that maps (the helper, run here directly): they can fail."""
    helper = os.environ["MPIBIND_TEST_HELPER"]
    p = subprocess.run([helper, "--share", "--task", "0", "--ntasks", "1"],
                       env=clean_env(LD_DEBUG="files",
                                     MPIBIND_CACHE_DIR=str(tmp_path / "c")),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    found = {f for _, f, _ in loads_of(p.stderr) if FORBIDDEN.search(f)}
    assert any("libhwloc" in f for f in found), found
    assert any("libmpibind.so" in f for f in found), found


def test_rank_that_ignores_sigchld_still_maps(tmp_path):
    """A program that starts with SIGCHLD ignored (inherited through exec)
    reaps no child: the helper's exit status is lost, and its whole answer
    still counts."""
    import signal
    trace = tmp_path / "trace"
    p = subprocess.run(
        [TRUE], env=clean_env(MPI_LOCALRANKID="0", MPI_LOCALNRANKS="2",
                              MPIBIND_CACHE_DIR=str(tmp_path / "cache"),
                              MPIBIND_TRACE=str(trace),
                              LD_PRELOAD=" ".join(PRELOAD_LIST)),
        preexec_fn=lambda: signal.signal(signal.SIGCHLD, signal.SIG_IGN),
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    (t,) = [TRACE_RE.match(l) for l in open(trace).read().splitlines()]
    assert (t[4], t[5]) == ("discovered", "1"), t[0]


SOURCE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           os.pardir, os.pardir)


def test_task_floor_includes_only_libc_pieces():
    task = os.path.join(SOURCE_ROOT, "auto", "task")
    own = {f for f in os.listdir(task) if f.endswith(".h")}
    allowed = own | {"mb_text.h", "mb_gpuvar_table.h", "mb_threads.h",
                     "mb_spawn.h", "mpibind_version.h"}
    seen = set()
    for name in sorted(os.listdir(task)):
        if not name.endswith((".c", ".h")):
            continue
        text = open(os.path.join(task, name)).read()
        quoted = set(re.findall(r'^#include "([^"]+)"', text, re.M))
        system = set(re.findall(r"^#include <([^>]+)>", text, re.M))
        assert quoted <= allowed, (name, quoted - allowed)
        assert not [h for h in system if "hwloc" in h], (name, system)
        seen |= quoted
    assert {"mb_text.h", "mb_spawn.h", "cpuset.h"} <= seen, seen


STANDIN = r"""
/* A stand-in for an old hwloc (1.x names and answers), which a program
 * links as its own libhwloc.so.5. */
unsigned hwloc_get_api_version(void) { return 0x00010b00; }
int hwloc_topology_init(void **topology) { (void)topology; return -1; }
void hwloc_topology_destroy(void *topology) { (void)topology; }
void *hwloc_bitmap_alloc(void) { return 0; }
static int calls;
int standin_calls(void) { return ++calls; }
"""

PROGRAM = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
unsigned hwloc_get_api_version(void);
int standin_calls(void);
int main(void) {
  cpu_set_t cs;
  CPU_ZERO(&cs);
  sched_getaffinity(0, sizeof cs, &cs);
  printf("api=%x calls=%d cpus=", hwloc_get_api_version(), standin_calls());
  for (int c = 0, first = 1; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &cs)) {
      printf("%s%d", first ? "" : ",", c);
      first = 0;
    }
  printf("\n");
  return 0;
}
"""


def test_program_with_its_own_hwloc_is_bound(tmp_path):
    """The program's libhwloc.so.5 comes first in the global scope: a
    preload that linked hwloc would have its calls answered by it ("API
    version 1.11.0", running unbound).  Now the tasks are bound, and the
    program's own calls reach its own library."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in hwloc")
    lib = tmp_path / "libhwloc.so.5"
    (tmp_path / "standin.c").write_text(STANDIN)
    (tmp_path / "prog.c").write_text(PROGRAM)
    subprocess.run([cc, "-shared", "-fPIC", "-Wl,-soname,libhwloc.so.5", "-o",
                    str(lib), str(tmp_path / "standin.c")], check=True)
    prog = tmp_path / "prog"
    subprocess.run([cc, "-o", str(prog), str(tmp_path / "prog.c"), str(lib),
                    "-Wl,-rpath," + str(tmp_path)], check=True)
    cpus = []
    for rank in range(2):
        p, trace = run(tmp_path, {"MPI_LOCALRANKID": str(rank),
                                  "MPI_LOCALNRANKS": "2"}, argv=[str(prog)])
        assert p.returncode == 0, p.stderr[-2000:]
        mpibind_lines = [l for l in p.stderr.splitlines()
                         if l.startswith("mpibind")]
        assert mpibind_lines == [], mpibind_lines
        out = dict(kv.split("=", 1) for kv in p.stdout.split())
        assert out["api"] == "10b00" and out["calls"] == "1", p.stdout
        assert len(trace) == 1 and trace[0][5] == "1", trace
        assert parse_list(out["cpus"]) == parse_list(trace[0][6]), (out, trace[0][0])
        # the program's hwloc is the only one in its process
        hw = [f for _, f, _ in loads_of(p.stderr, int(trace[0][1]))
              if "libhwloc" in f]
        assert hw == [str(lib)] or [os.path.basename(f) for f in hw] == \
            ["libhwloc.so.5"], hw
        cpus.append(parse_list(out["cpus"]))
    assert cpus[0] and cpus[1] and (len(os.sched_getaffinity(0)) < 2 or
                                    not cpus[0] & cpus[1]), cpus


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"] + sys.argv[1:]))
