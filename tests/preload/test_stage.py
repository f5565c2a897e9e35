"""mpibind_stage (tests/pyhelpers): what a test runs as another user comes
from a second build under /tmp, whatever the path of the test's build.

- a build tree at a short path in a directory only root enters (a clone in
  `mktemp -d`, or in /src): nobody cannot run its helper, and the staged
  helper runs as nobody in the loader's secure mode (real uid root, as
  from slurmstepd) and finds the staged libmpibind; the closed tree's path
  is nowhere in it (built, not patched); the stage is gone after the
  `with` block;
- a stage that fails (a product its options do not build, a setting
  missing from the environment) says why in its error and leaves nothing.

Real meson builds of this source with the test's meson and compiler
(tests/meson.build's MPIBIND_STAGE_* variables), a real helper run as
nobody.
"""

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

import mpibind_stage
from mpibind_stage import StageError, build, stage

HELPER = os.environ["MPIBIND_TEST_HELPER"]
FAULT_PLUGIN = os.environ["MPIBIND_TEST_FAULT_PLUGIN"]
HELPER_OUTPUT = os.path.relpath(os.path.realpath(HELPER), os.path.realpath(
    os.environ["MPIBIND_STAGE_BUILD_ROOT"]))


def as_nobody(argv):
    """argv with root as real uid and nobody as effective uid (the loader's
    secure mode, as the Slurm plugin's helper from slurmstepd)."""
    nobody = pwd.getpwnam("nobody")

    def mixed_ids():
        os.setresgid(0, nobody.pw_gid, 0)
        os.setgroups([])
        os.setresuid(0, nobody.pw_uid, 0)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LD_", "HWLOC_", "MPIBIND"))}
    return subprocess.run(argv, env=env, preexec_fn=mixed_ids, cwd="/",
                          capture_output=True, timeout=120)


@pytest.fixture
def made_dirs(monkeypatch):
    """The directories mpibind_stage makes with mkdtemp."""
    made = []
    mkdtemp = tempfile.mkdtemp

    def recording(*args, **kwargs):
        made.append(mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(mpibind_stage.tempfile, "mkdtemp", recording)
    return made


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a program as nobody")
def test_stage_of_a_short_closed_build_tree_runs_as_nobody():
    # /tmp/XXXXXXXX/b: shorter than any stage's path (the old relocation
    # of copies refused it), mode 0700 like mktemp -d
    closed = tempfile.mkdtemp(prefix="", dir="/tmp")
    try:
        assert os.stat(closed).st_mode & 0o777 == 0o700
        root = os.path.join(closed, "b")
        build(root, [HELPER_OUTPUT])
        closed_helper = os.path.join(root, HELPER_OUTPUT)
        with pytest.raises(PermissionError):
            as_nobody([closed_helper])
        env = dict(os.environ, MPIBIND_STAGE_BUILD_ROOT=root)
        with stage([closed_helper], env=env) as s:
            staged = s.path(closed_helper)
            assert staged.startswith("/tmp/mpibind-stage-") and len(staged) > len(closed_helper)
            with open(staged, "rb") as f:
                assert root.encode() not in f.read()
            p = as_nobody([staged])
            assert p.returncode == 0 and b"<topology" in p.stdout, p.stderr
        assert not os.path.exists(s.base)
    finally:
        shutil.rmtree(closed, ignore_errors=True)


def test_failed_stage_says_why_and_leaves_nothing(made_dirs):
    # the fault plugin is built with the tests, which a stage leaves out
    # unless asked
    with pytest.raises(StageError) as e:
        stage([HELPER, FAULT_PLUGIN])
    assert "hwloc_fault.so" in str(e.value) and "option" in str(e.value)
    assert len(made_dirs) == 1 and not os.path.exists(made_dirs[0])


@pytest.mark.parametrize("name", ["SOURCE_ROOT", "BUILD_ROOT", "MESONINTROSPECT", "CC"])
def test_stage_without_a_setting_names_it(made_dirs, name):
    env = {k: v for k, v in os.environ.items() if k != "MPIBIND_STAGE_" + name}
    with pytest.raises(StageError, match="MPIBIND_STAGE_" + name):
        stage([HELPER], env=env)
    assert all(not os.path.exists(d) for d in made_dirs)
