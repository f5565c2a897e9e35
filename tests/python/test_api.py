"""The Python API end to end on real topology files and on this machine."""

import os
import threading

import pytest

import mpibind
from conftest import topo, xml_gpus, hwloc_list
from mpibind_testutil import without_nics

LASSEN = "coral-lassen.xml"
TIOGA = "eas-tioga.xml"
QUARTZ = "cts1-quartz-smt1.xml"
PASCAL = "cts1-pascal.xml"


def every4(first, last):
    return list(range(first, last + 1, 4))


# ---- module surface -----------------------------------------------------

def test_constants_follow_the_original_enum_order():
    assert [mpibind.MPIBIND_RESTRICT_CPU, mpibind.MPIBIND_RESTRICT_MEM,
            mpibind.MPIBIND_ID_UNIV, mpibind.MPIBIND_ID_SMI,
            mpibind.MPIBIND_ID_PCIBUS, mpibind.MPIBIND_ID_NAME] == \
        list(range(6))
    assert mpibind.MPIBIND_ID_VISDEVS == mpibind.MPIBIND_ID_SMI


def test_error_class():
    assert issubclass(mpibind.MpibindError, RuntimeError)


def test_module_uses_the_library_it_was_told():
    lib = os.environ.get("MPIBIND_LIBRARY")
    assert lib, "the tests must run with MPIBIND_LIBRARY set to the build"
    assert mpibind.LIBRARY_PATH == lib


# ---- inputs ---------------------------------------------------------------

def test_defaults(handles):
    h = handles()
    assert h.nthreads == 0
    assert h.greedy == 1
    assert h.gpu_optim == 1
    assert h.smt == 0
    assert h.restrict_ids is None
    assert h.restrict_type == mpibind.MPIBIND_RESTRICT_CPU
    assert h.topology_file is None
    assert h.get_gpu_ids() == mpibind.MPIBIND_ID_SMI


def test_constructor_keywords_read_back(handles):
    path = topo(LASSEN)
    h = handles(ntasks=3, nthreads=2, greedy=0, gpu_optim=0, smt=2,
                restrict_ids="8-23", restrict_type="cpu", topology_file=path)
    assert (h.ntasks, h.nthreads, h.greedy, h.gpu_optim, h.smt) == \
        (3, 2, 0, 0, 2)
    assert h.restrict_ids == "8-23"
    assert h.restrict_type == 0
    assert h.topology_file == path


def test_properties_set_and_read_back(handles):
    h = handles()
    h.ntasks = 5
    h.nthreads = 7
    h.greedy = 0
    h.gpu_optim = 0
    h.smt = 1
    h.restrict_ids = "0-3,8"
    assert (h.ntasks, h.nthreads, h.greedy, h.gpu_optim, h.smt) == \
        (5, 7, 0, 0, 1)
    assert h.restrict_ids == "0-3,8"
    h.restrict_ids = None
    assert h.restrict_ids is None


@pytest.mark.parametrize("value, expected", [
    ("cpu", 0), ("mem", 1), ("MEM", 1), (0, 0), (1, 1),
    (mpibind.MPIBIND_RESTRICT_MEM, 1)])
def test_restrict_type_names_and_numbers(handles, value, expected):
    h = handles(restrict_type=value)
    assert h.restrict_type == expected
    h.restrict_type = value
    assert h.restrict_type == expected


def test_nthreads_is_the_input_then_the_per_task_list(handles):
    h = handles(ntasks=2, nthreads=3, topology_file=topo(LASSEN))
    assert h.nthreads == 3
    h.mpibind()
    assert h.nthreads == [3, 3]
    # One task per socket, 3 workers: the level walk stops at the first
    # level with >= 3 objects, Lassen's 10 L3s (2 cores each) a socket,
    # and the task gets the first PU of each (docs/algorithm.md, hierarchical).
    assert h.get_cpus_ptask(0) == list(range(8, 81, 8))
    assert h.get_cpus_ptask(1) == list(range(96, 169, 8))


def test_changing_an_input_discards_the_mapping(handles):
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    assert h.get_cpus_ptask(3) == every4(136, 172)
    h.ntasks = 2
    with pytest.raises(mpibind.MpibindError, match="mpibind()"):
        h.get_cpus_ptask(0)
    assert h.nthreads == 0      # the input again
    h.mpibind()
    assert h.get_cpus_ptask(1) == every4(96, 172)


def test_reading_before_mpibind_raises(handles):
    h = handles(ntasks=2, topology_file=topo(LASSEN))
    for call in (lambda: h.get_cpus_ptask(0), lambda: h.get_gpus_ptask(0),
                 h.get_num_gpus, h.mapping_snprint, h.set_env_vars,
                 lambda: h.apply(0)):
        with pytest.raises(mpibind.MpibindError, match="mpibind()"):
            call()


# ---- GPUs -----------------------------------------------------------------

@pytest.mark.parametrize("name, inputs, expected", [
    (LASSEN, {}, 4), (TIOGA, {}, 8), (QUARTZ, {}, 0), (PASCAL, {}, 2),
    # Restricting to the second socket's memory removes the first socket
    # from the topology (docs/algorithm.md step 2), but not its two GPUs
    # from the job ("No GPU left idle").
    (LASSEN, dict(restrict_ids="8", restrict_type="mem"), 4),
])
def test_num_gpus(handles, name, inputs, expected):
    h = handles(ntasks=2, topology_file=topo(name), **inputs)
    h.mpibind()
    assert h.get_num_gpus() == expected


@pytest.mark.parametrize("name, ntasks, visible", [
    (LASSEN, 4, [["0"], ["1"], ["2"], ["3"]]),
    (TIOGA, 4, [["4", "5"], ["2", "3"], ["6", "7"], ["0", "1"]]),
])
def test_gpu_id_kinds(handles, name, ntasks, visible):
    """Each ID kind names the same GPUs: what the XML file says of the
    device whose visible index the worked example gives."""
    path = topo(name)
    xml = xml_gpus(path)
    h = handles(ntasks=ntasks, topology_file=path)
    h.mpibind()
    assert [h.get_gpus_ptask(t) for t in range(ntasks)] == visible
    kinds = [
        (mpibind.MPIBIND_ID_NAME, "name", "name"),
        (mpibind.MPIBIND_ID_PCIBUS, "pci", "busid"),
        (mpibind.MPIBIND_ID_UNIV, "uuid", "uuid"),
    ]
    for const, word, key in kinds:
        expected = [[xml[i][key] for i in task] for task in visible]
        for kind in (const, word):
            h.set_gpu_ids(kind)
            assert h.get_gpu_ids() == const
            assert [h.get_gpus_ptask(t) for t in range(ntasks)] == expected
            report = h.mapping_snprint().splitlines()
            for t in range(ntasks):
                assert " gpus %s cpus " % ",".join(expected[t]) in \
                    without_nics(report[t])
    for kind in (mpibind.MPIBIND_ID_SMI, mpibind.MPIBIND_ID_VISDEVS,
                 "index"):
        h.set_gpu_ids(kind)
        assert [h.get_gpus_ptask(t) for t in range(ntasks)] == visible


# ---- environment ----------------------------------------------------------

def env_of(h):
    return {name: h.get_env_var_values(name)
            for name in h.get_env_var_names()}


def test_env_vars_nvidia(handles):
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    h.set_env_vars()
    assert env_of(h) == {
        "OMP_NUM_THREADS": ["10"] * 4,
        "OMP_PLACES": ["threads"] * 4,
        "OMP_PROC_BIND": ["spread"] * 4,
        "CUDA_VISIBLE_DEVICES": ["0", "1", "2", "3"],
        "MPIBIND_NICS": ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"],
    }
    assert h.get_env_vars_ptask(2)["CUDA_VISIBLE_DEVICES"] == "2"


def test_env_vars_amd(handles):
    h = handles(ntasks=4, topology_file=topo(TIOGA))
    h.mpibind()
    env = env_of(h)      # computed on demand
    assert env["ROCR_VISIBLE_DEVICES"] == ["4,5", "2,3", "6,7", "0,1"]
    assert env["OMP_NUM_THREADS"] == ["16"] * 4
    assert "CUDA_VISIBLE_DEVICES" not in env
    assert "ZE_AFFINITY_MASK" not in env


def test_env_vars_no_gpu_node(handles):
    h = handles(ntasks=3, topology_file=topo(QUARTZ))
    h.mpibind()
    env = env_of(h)
    # quartz's Omni-Path HCA is a NIC: every task is told it
    assert set(env) == {"OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND",
                        "MPIBIND_NICS"}
    assert env["MPIBIND_NICS"] == ["hfi1_0"] * 3
    assert env["OMP_NUM_THREADS"] == ["9", "9", "18"]


def test_env_task_without_gpu_gets_empty_string(handles):
    """Pascal's two GPUs hang off socket 0.  Without gpu_optim, 2 tasks go
    one per socket (equal PU weights): step 5 gives the socket-0 task both
    and the other none, then each task gets one ("No GPU left idle").  A
    job allocated none of them tells every task the empty string."""
    h = handles(ntasks=2, gpu_optim=0, topology_file=topo(PASCAL))
    h.mpibind()
    assert h.get_gpus_ptask(0) == ["0"]
    assert h.get_gpus_ptask(1) == ["1"]
    assert h.get_env_var_values("CUDA_VISIBLE_DEVICES") == ["0", "1"]
    h.set_gpu_allocation("CUDA_VISIBLE_DEVICES", "")
    h.mpibind()
    assert h.get_gpus_ptask(1) == []
    assert h.get_env_var_values("CUDA_VISIBLE_DEVICES") == ["", ""]


def test_env_vars_print(handles, capsys):
    h = handles(ntasks=2, topology_file=topo(TIOGA))
    h.mpibind()
    h.env_vars_print()
    out = capsys.readouterr().out.splitlines()
    env = env_of(h)
    expected = ["mpibind: task %2d %s=%s" % (t, name, env[name][t])
                for t in range(2) for name in h.get_env_var_names()]
    assert out == expected
    assert "mpibind: task  1 ROCR_VISIBLE_DEVICES=6,7,0,1" in out


# ---- reports ----------------------------------------------------------------

def test_mapping_print(handles, capsys):
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    h.mapping_print()
    assert capsys.readouterr().out == h.mapping_snprint()


@pytest.mark.parametrize("size", [None, 0, 1, 5, 40, 10**6])
def test_snprint_never_truncates(handles, size):
    """Decision: size is accepted for compatibility and ignored; the whole
    report always comes back (the original cut it to size silently)."""
    h = handles(ntasks=8, topology_file=topo(LASSEN))
    h.mpibind()
    full = h.mapping_snprint()
    lines = full.splitlines()
    assert len(lines) == 8
    assert lines[7].endswith("cpus " + ",".join(map(str, every4(156, 172))))
    assert h.mapping_snprint(size) == full
    assert h.mapping_snprint(size=size) == full
    assert h.mapping_ptask_snprint(7, size).rstrip("\n") == lines[7]


def test_report_scales_past_any_fixed_buffer(handles):
    """1024 tasks on Tioga's 128 PUs: a report far above 4 KiB, whole."""
    h = handles(ntasks=1024, topology_file=topo(TIOGA))
    h.mpibind()
    text = h.mapping_snprint(size=16)
    lines = text.splitlines()
    assert len(text) > 16 * 1024
    assert len(lines) == 1024
    assert lines[1023].startswith("mpibind: task 1023 nths  1 ")
    cpus = sorted(c for t in range(1024) for c in h.get_cpus_ptask(t))
    assert set(cpus) == set(range(128))


# ---- topology per handle ----------------------------------------------------

def test_topology_file_is_per_handle(handles):
    env_before = dict(os.environ)
    a = handles(ntasks=4, topology_file=topo(LASSEN))
    b = handles(ntasks=4, topology_file=topo(TIOGA))
    live = handles(ntasks=1)
    a.mpibind()
    b.mpibind()
    live.mpibind()
    assert a.get_cpus_ptask(0) == every4(8, 44)
    assert b.get_cpus_ptask(0) == list(range(16))
    assert a.get_gpus_ptask(0) == ["0"] and b.get_gpus_ptask(0) == ["4", "5"]
    # Mapping b did not change a, in either order.
    a.mpibind()
    assert a.get_cpus_ptask(3) == every4(136, 172)
    assert live.topology_file is None
    assert set(live.get_cpus_ptask(0)) <= set(range(os.cpu_count()))
    assert live.get_num_gpus() == 0
    assert dict(os.environ) == env_before


def test_topology_set_xml_sets_the_default_of_new_handles(handles):
    old = handles(ntasks=1)
    try:
        mpibind.topology_set_xml(topo(TIOGA))
        new = handles(ntasks=4)
        assert new.topology_file == topo(TIOGA)
        other = handles(ntasks=4, topology_file=topo(LASSEN))
        new.mpibind()
        other.mpibind()
        old.mpibind()
        assert new.get_gpus_ptask(3) == ["0", "1"]
        assert other.get_gpus_ptask(3) == ["3"]
        assert old.topology_file is None
        assert old.get_num_gpus() == 0
    finally:
        mpibind.topology_set_xml(None)
    assert handles(ntasks=1).topology_file is None


def test_topology_set_xml_checks_the_file_now():
    with pytest.raises(ValueError, match="/nonexistent/node.xml"):
        mpibind.topology_set_xml("/nonexistent/node.xml")
    assert mpibind.MpibindHandle(ntasks=1).topology_file is None


def test_topology_file_accepts_path_objects(handles):
    import pathlib
    h = handles(ntasks=1, topology_file=pathlib.Path(topo(QUARTZ)))
    h.mpibind()
    assert h.get_cpus_ptask(0) == list(range(36))


# ---- life cycle ---------------------------------------------------------------

def test_use_after_finalize_raises():
    h = mpibind.MpibindHandle(ntasks=2, topology_file=topo(LASSEN))
    h.mpibind()
    h.finalize()
    h.finalize()    # twice is harmless
    calls = [h.mpibind, lambda: h.apply(0), h.mapping_snprint,
             lambda: h.mapping_ptask_snprint(0), h.mapping_print,
             lambda: h.get_cpus_ptask(0), lambda: h.get_gpus_ptask(0),
             h.get_num_gpus, lambda: h.set_gpu_ids(mpibind.MPIBIND_ID_NAME),
             h.set_env_vars, h.get_env_var_names,
             lambda: h.get_env_var_values("OMP_NUM_THREADS"),
             h.env_vars_print, lambda: h.ntasks, lambda: h.nthreads,
             lambda: h.greedy, lambda: h.gpu_optim, lambda: h.smt,
             lambda: h.restrict_ids, lambda: h.restrict_type,
             lambda: h.topology_file, lambda: setattr(h, "ntasks", 3),
             lambda: setattr(h, "restrict_ids", "0-3")]
    for call in calls:
        with pytest.raises(mpibind.MpibindError, match="finalized"):
            call()


def test_context_manager_finalizes():
    with mpibind.MpibindHandle(ntasks=1, topology_file=topo(QUARTZ)) as h:
        h.mpibind()
        assert h.nthreads == [36]
    with pytest.raises(mpibind.MpibindError):
        h.mpibind()


# ---- binding this process ----------------------------------------------------

@pytest.fixture
def saved_affinity():
    before = os.sched_getaffinity(0)
    yield before
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), before)
        except ProcessLookupError:
            pass


def test_apply_binds_every_thread(handles, saved_affinity):
    """Live topology: apply(last task) binds the main thread and a thread
    that already runs to exactly the task's CPUs."""
    n = min(2, len(saved_affinity))
    h = handles(ntasks=n)
    h.mpibind()
    cpus = set(h.get_cpus_ptask(n - 1))
    assert cpus and cpus <= saved_affinity
    go, seen = threading.Event(), []
    worker = threading.Thread(
        target=lambda: (go.wait(), seen.append(os.sched_getaffinity(0))))
    worker.start()
    try:
        h.apply(n - 1)
    finally:
        go.set()
        worker.join()
    assert os.sched_getaffinity(0) == cpus
    assert seen == [cpus]


def test_apply_refuses_a_file_of_another_machine(handles, saved_affinity):
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    with pytest.raises(mpibind.MpibindError) as err:
        h.apply(0)
    assert str(err.value)
    assert os.sched_getaffinity(0) == saved_affinity
    with pytest.raises(mpibind.MpibindError):
        h.topology_check_system()


def test_apply_accepts_a_file_of_this_machine(handles, saved_affinity,
                                              tmp_path):
    """An XML export of this very machine (by hwloc's lstopo) binds."""
    import shutil
    import subprocess
    lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if not lstopo:
        pytest.skip("lstopo (hwloc-nox) is not installed")
    xml = tmp_path / "this-node.xml"
    subprocess.run([lstopo, "--of", "xml", "-f", str(xml)], check=True,
                   timeout=60)
    h = handles(ntasks=1, topology_file=str(xml))
    h.topology_check_system()
    h.mpibind()
    cpus = h.get_cpus_ptask(0)
    assert set(cpus) == set(hwloc_list(h.mapping_ptask_snprint(0)
                                       .split("cpus ")[1].strip()))
    h.apply(0)
    assert os.sched_getaffinity(0) == set(cpus)


def test_one_task_per_core_follows_hwloc_logical_order(handles):
    """Tioga, restricted to 6 PUs of one domain, one per core: 6 tasks get
    one core each (W = 6 = m at the core level, docs/algorithm.md), in hwloc's
    logical core order, which lstopo (hwloc itself) prints for the same
    restriction.  On Tioga that order is not the PU numbers' order."""
    import shutil
    import subprocess
    lstopo = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if not lstopo:
        pytest.skip("lstopo (hwloc-nox) is not installed")
    pus = [19, 30, 82, 87, 89, 95]
    mask, words = sum(1 << p for p in pus), []
    while mask:
        words.append("0x%08x" % (mask & 0xffffffff))
        mask >>= 32
    out = subprocess.run(
        [lstopo, "-i", topo(TIOGA), "--restrict", ",".join(reversed(words)),
         "--only", "pu", "--of", "console"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    order = [int(line.split("P#")[1].split(")")[0])
             for line in out.splitlines() if "P#" in line]
    assert sorted(order) == pus
    h = handles(ntasks=6, restrict_ids=",".join(map(str, pus)),
                topology_file=topo(TIOGA))
    h.mpibind()
    assert [h.get_cpus_ptask(t) for t in range(6)] == [[p] for p in order]


# ---- no GPU left idle (docs/algorithm.md, "No GPU left idle") ------------

CASES = os.path.join(os.path.dirname(__file__), "..", "data", "cases")


def test_gpus_without_locality_are_all_used(handles):
    """JUROPA3's 2 K20 hang from the Machine: was no GPU for any task."""
    h = handles(ntasks=4,
                topology_file=os.path.join(CASES, "gpus-without-locality.xml"))
    h.mpibind()
    assert h.get_num_gpus() == 2
    assert [h.get_gpus_ptask(i) for i in range(4)] == [["0"], ["0"], ["1"],
                                                       ["1"]]


def test_allocated_gpus_outside_a_restriction_are_used(handles):
    """Corona, a job on CPUs 44-47 holding the node's 4 GPUs."""
    h = handles(ntasks=8, restrict_ids="44-47",
                topology_file=topo("epyc-corona.xml"))
    h.set_gpu_allocation("ROCR_VISIBLE_DEVICES", "0,1,2,3")
    h.mpibind()
    assert [h.get_gpus_ptask(i)[0] for i in range(8)] == \
        ["3", "3", "2", "2", "0", "0", "1", "1"]


def test_gpu_id_kind_naming_two_gpus_alike_is_a_value_error(handles):
    path = os.path.join(os.path.dirname(__file__), "..", "unit", "xml",
                        "gpu-same-uuid.xml")
    h = handles(ntasks=2, topology_file=path)
    h.mpibind()
    h.set_gpu_ids(mpibind.MPIBIND_ID_UNIV)
    with pytest.raises(ValueError, match="0x1a2b3c4d"):
        h.get_gpus_ptask(0)


# ---- the nearest NIC of each task (docs/algorithm.md) ------------------

def test_nics_ptask_on_lassen(handles):
    """Lassen: GPUs 0, 1 and mlx5_0, mlx5_1 on socket 0, GPUs 2, 3 and
    mlx5_2, mlx5_3 on socket 1."""
    h = handles(ntasks=4, topology_file=topo(LASSEN))
    h.mpibind()
    assert [h.get_nics_ptask(t) for t in range(4)] == \
        [["mlx5_0"], ["mlx5_1"], ["mlx5_2"], ["mlx5_3"]]
    h.set_env_vars()
    assert h.get_env_var_values("MPIBIND_NICS") == \
        ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"]
    assert "UCX_NET_DEVICES" not in h.get_env_var_names()
    assert h.get_transport_vars() is False
    h.set_transport_vars(True)
    assert h.get_transport_vars() is True
    h.ntasks = 2
    h.mpibind()
    h.set_env_vars()
    assert h.get_env_var_values("UCX_NET_DEVICES") == \
        ["mlx5_0:1,mlx5_1:1", "mlx5_2:1,mlx5_3:1"]
    assert h.get_env_var_values("NCCL_IB_HCA") == \
        ["=mlx5_0,mlx5_1", "=mlx5_2,mlx5_3"]
    assert "FI_CXI_DEVICE_NAME" not in h.get_env_var_names()
    with pytest.raises(ValueError):
        h.set_transport_vars("yes")
    with pytest.raises(ValueError):
        h.set_transport_vars(2)


def test_nics_ptask_node_without_nics(handles):
    h = handles(ntasks=2, topology_file=topo(TIOGA))
    h.mpibind()
    assert h.get_nics_ptask(1) == []
    with pytest.raises(ValueError):
        h.get_nics_ptask(2)


def test_all_gpus_visible_in_task_order(handles):
    """PyTorch workers: every task sees every GPU, device i being task i's
    (Tioga's GCD numbers are not in locality order: task 0's is 4)."""
    h = handles(ntasks=8, topology_file=topo(TIOGA))
    assert h.get_all_gpus_visible() is False
    h.set_all_gpus_visible(True)
    assert h.get_all_gpus_visible() is True
    h.mpibind()
    h.set_env_vars()
    mine = [h.get_gpus_ptask(t)[0] for t in range(8)]
    values = h.get_env_var_values("ROCR_VISIBLE_DEVICES")
    assert values == [",".join(mine)] * 8
    assert mine == ["4", "5", "2", "3", "6", "7", "0", "1"]
    with pytest.raises(ValueError):
        h.set_all_gpus_visible(3)
