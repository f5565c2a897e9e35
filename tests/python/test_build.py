"""Build integration of the Python module: `meson devenv` uses the build
tree, and `meson install` puts the package where Debian's /usr/bin/python3
finds it, next to a library the package finds."""

import json
import os
import shutil
import subprocess
import sys

import pytest

BUILD = os.environ.get("MPIBIND_BUILD_ROOT")
MESON = shutil.which("meson")
PYTHON = sys.executable  # the interpreter meson chose (py, top-level meson.build)

pytestmark = pytest.mark.skipif(
    not BUILD or not MESON, reason="needs meson and MPIBIND_BUILD_ROOT")


def clean_env(**extra):
    """This environment without what meson test gave us, so that only the
    command under test can point at the build tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MPIBIND_LIBRARY", "LD_LIBRARY_PATH")}
    env.update(extra)
    return env


PROBE = ("import mpibind, json; "
         "h = mpibind.MpibindHandle(ntasks=2, topology_file=%r); h.mpibind(); "
         "print(json.dumps({'file': mpibind.__file__, "
         "'lib': mpibind.LIBRARY_PATH, 'cpus': h.get_cpus_ptask(1)}))")


def probe(cmd, env):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=120, cwd="/")
    assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def quartz():
    from conftest import topo
    return topo("cts1-quartz-smt1.xml")


def test_devenv_imports_the_build_tree():
    got = probe([MESON, "devenv", "-C", BUILD, PYTHON, "-c",
                 PROBE % quartz()], clean_env())
    assert got["file"] == os.path.join(BUILD, "python", "mpibind",
                                       "__init__.py")
    assert os.path.realpath(got["lib"]).startswith(
        os.path.join(os.path.realpath(BUILD), "lib") + os.sep)
    assert got["cpus"] == list(range(18, 36))


def installed_files():
    proc = subprocess.run([MESON, "introspect", BUILD, "--installed"],
                          capture_output=True, text=True, timeout=60,
                          check=True)
    return json.loads(proc.stdout)


def test_install_location_is_on_debian_pythons_path():
    dests = installed_files().values()
    init = [d for d in dests if d.endswith(os.path.join("mpibind",
                                                        "__init__.py"))]
    assert len(init) == 1, dests
    site_dir = os.path.dirname(os.path.dirname(init[0]))
    for name in ("_capi.py", "_config.py", "mpi.py"):
        assert os.path.join(site_dir, "mpibind", name) in dests
    prefix = subprocess.run(
        [MESON, "introspect", BUILD, "--buildoptions"], capture_output=True,
        text=True, timeout=60, check=True)
    options = {o["name"]: o["value"] for o in json.loads(prefix.stdout)}
    path = subprocess.run(
        [PYTHON, "-c", "import sys, site; "
         "print('\\n'.join(site.getsitepackages() + sys.path))"],
        capture_output=True, text=True, timeout=60, env=clean_env(),
        check=True).stdout.split()
    if options["python.purelibdir"]:
        pytest.skip("python.purelibdir was set: the user chose the place")
    if options["prefix"] in ("/usr/local", "/usr"):
        assert site_dir in path, (site_dir, path)
    else:
        assert site_dir.startswith(options["prefix"] + os.sep)


def test_installed_package_finds_the_installed_library(tmp_path):
    """`meson install --destdir` of the package (install tag
    python-runtime: the rest of the project may not be built by the time
    this runs): the staged package imports and maps, finding the library
    through the linker path by its soname; and the library directory it
    records is where meson installs the library under that soname."""
    dest = tmp_path / "stage"
    proc = subprocess.run([MESON, "install", "-C", BUILD, "--no-rebuild",
                           "--tags", "python-runtime", "--destdir", str(dest)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = installed_files()
    init = next(d for d in files.values()
                if d.endswith(os.path.join("mpibind", "__init__.py")))
    site_dir = os.path.dirname(os.path.dirname(init))
    staged_site = str(dest) + site_dir
    for name in ("__init__.py", "_capi.py", "_config.py", "mpi.py"):
        assert os.path.isfile(os.path.join(staged_site, "mpibind", name))

    config = {}
    with open(staged_site + "/mpibind/_config.py") as f:
        exec(f.read(), config)
    soname_path = os.path.join(config["LIBDIR"], config["SONAME"])
    assert soname_path in files.values(), (soname_path, files)

    env = clean_env(PYTHONPATH=staged_site,
                    LD_LIBRARY_PATH=os.path.join(BUILD, "lib"))
    got = probe([PYTHON, "-c", PROBE % quartz()], env)
    assert got["file"] == staged_site + "/mpibind/__init__.py"
    # A real install at that prefix wins (found at its recorded path);
    # else the soname through the linker path: the build's library.
    assert got["lib"] in (soname_path, config["SONAME"])
    assert got["cpus"] == list(range(18, 36))

    # Without any hint, and no library installed for real: a clear
    # ImportError saying what was tried and how to point at a library.
    env = clean_env(PYTHONPATH=staged_site)
    proc = subprocess.run([PYTHON, "-c", "import mpibind"], env=env,
                          capture_output=True, text=True, timeout=60, cwd="/")
    cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True,
                           text=True, timeout=60).stdout
    if os.path.exists(soname_path) or config["SONAME"] in cache:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("ImportError: mpibind: cannot load"), last
        assert soname_path in last and "MPIBIND_LIBRARY" in last, last
