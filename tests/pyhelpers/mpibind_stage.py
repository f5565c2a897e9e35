"""Build products staged where another user can reach them.

A test that runs something as another user (nobody, a test user under
runuser, slurmstepd acting for a user) cannot run it from the build tree
when the checkout lives in a directory only its owner can enter (`mktemp
-d`, root's home: mode 0700).  stage() configures a second build of the
same source in a fresh directory under /tmp that every user can enter
(made by mkdtemp, then mode 0755; everything in it made with umask 022, so
0755 all the way down) and compiles there only the targets that make the
products the test names, with what they link.

Nothing is patched: the staged products have the stage's paths compiled
in, as any build has its own.  That covers what a program finds by an
absolute path: the discovery helper's absolute run path (it runs in the
loader's secure mode when started with differing real and effective uids,
and secure mode ignores $ORIGIN and LD_LIBRARY_PATH), and the helper's
path and the build root compiled into the layer, which takes them for
objects that run from their own build tree.  A staged program therefore
runs the staged library and the staged helper, never the build tree's.

The staged build is configured like the test's own, from the variables
tests/meson.build gives the test (MPIBIND_STAGE_*): the same source, the
same meson, the same C compiler with the same c_args and c_link_args, and
the same hwloc (its pkg-config directory searched first).  It has no
sanitizers whatever the test's build has: the staged products run in
processes that are not instrumented (a program as another user, a plugin
in Slurm's daemons).  Every optional part is disabled (no tests, Python
module, manual pages, fuzzers, plugins) but those the caller names in
`options`, e.g. {"slurm_plugin": "enabled"}.

Nothing here names a product: callers pass the build paths they run (the
meson test environment gives them), and each staged product is checked
with ldd, without LD_LIBRARY_PATH as in secure mode: every library it
needs is found, none in the build tree, and the stage's files are
readable by every user.

    with stage([helper], options={"tests": "auto"}) as s:
        subprocess.run([s.path(helper)], preexec_fn=become_nobody)

The stage is removed when the `with` block ends, also on an error (or by
Stage.remove()); a failed stage() leaves nothing behind.
"""
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile

# Every user may enter /tmp (1777); TMPDIR may name a private directory.
_PUBLIC_TMP = "/tmp"

# Every optional part of the build off: the stage builds what a test runs.
_BASE_OPTIONS = {"tests": "disabled", "python": "disabled",
                 "integration": "disabled", "slurm_plugin": "disabled",
                 "flux_plugin": "disabled", "man": "disabled",
                 "fuzz": "disabled"}

# Variables of the environment that would configure a build behind the
# back of what tests/meson.build passes, or load the test's sanitizer
# runtimes into the compiler.
_DROPPED_ENV = ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS", "LD_LIBRARY_PATH",
                "LD_PRELOAD")

# meson setup and compile of a few targets take seconds; two shared CPUs
# and a cold compiler cache make it minutes at worst.
_TIMEOUT = 600


class StageError(RuntimeError):
    """The products cannot be staged (the message says why)."""


class Stage:
    """A fresh directory under /tmp that every user can enter, for a
    second build of the source (build()); remove() deletes it."""

    def __init__(self, build_root):
        self.build_root = build_root    # the test's build tree
        # realpath: the layer knows its build tree by its objects' real
        # paths (/proc/self/exe, dladdr)
        self.base = os.path.realpath(
            tempfile.mkdtemp(prefix="mpibind-stage-", dir=_PUBLIC_TMP))
        try:
            os.chmod(self.base, 0o755)
        except OSError:
            self.remove()
            raise
        self.root = os.path.join(self.base, "build")    # the staged build

    def path(self, build_path):
        """The staged counterpart of build_path (a path in the build tree)."""
        return os.path.join(self.root, _relative(build_path, self.build_root))

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def _relative(build_path, build_root):
    """build_path relative to build_root (both taken as real paths)."""
    rel = os.path.relpath(os.path.realpath(build_path),
                          os.path.realpath(build_root))
    if rel in (os.curdir, os.pardir) or rel.startswith(os.pardir + os.sep):
        raise StageError("%s is not in the build tree %s"
                         % (build_path, build_root))
    return rel


def _setting(env, name):
    """The variable MPIBIND_STAGE_<name> of the test's environment."""
    value = env.get("MPIBIND_STAGE_" + name)
    if value is None:
        raise StageError("MPIBIND_STAGE_%s is not set: the test's meson.build "
                         "passes tests/meson.build's mpibind_stage_env" % name)
    return value


def _lines(env, name):
    """A list variable (one item a line; none when empty)."""
    return [v for v in (_setting(env, name) or "").split("\n") if v]


def _meson_command(env):
    """The meson that configured the test's build: MESONINTROSPECT's words
    without the last ("introspect")."""
    words = shlex.split(_setting(env, "MESONINTROSPECT"))
    if len(words) < 2 or words[-1] != "introspect":
        raise StageError("MPIBIND_STAGE_MESONINTROSPECT=%r: expected meson's "
                         "command followed by 'introspect'"
                         % _setting(env, "MESONINTROSPECT"))
    return words[:-1]


def _machine_string(value):
    """value as a string of a meson machine file."""
    return "'%s'" % (value.replace("\\", "\\\\").replace("'", "\\'")
                     .replace("\n", "\\n"))


def _machine_list(values):
    return "[%s]" % ", ".join(_machine_string(v) for v in values)


def _write_native_file(path, env):
    """The compiler, its flags and hwloc's pkg-config directory of the
    test's build, as a meson native file."""
    cc = _lines(env, "CC")
    if not cc:
        raise StageError("MPIBIND_STAGE_CC is empty: expected the C "
                         "compiler's command")
    with open(path, "w") as f:
        f.write("[binaries]\nc = %s\n\n[built-in options]\n"
                "c_args = %s\nc_link_args = %s\npkg_config_path = %s\n"
                % (_machine_list(cc), _machine_list(_lines(env, "C_ARGS")),
                   _machine_list(_lines(env, "C_LINK_ARGS")),
                   _machine_list(_lines(env, "PKG_CONFIG_PATH"))))


def _run(argv, what):
    """Runs a step of a build (umask 022: every user can read what it
    makes); its output ends the StageError when it fails."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, errors="replace", env=env, umask=0o022,
                           timeout=_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise StageError("%s: %s: %s" % (what, shlex.join(argv), e)) from e
    if r.returncode != 0:
        tail = "\n".join(r.stdout.splitlines()[-30:])
        raise StageError("%s failed (exit %d): %s\n%s"
                         % (what, r.returncode, shlex.join(argv), tail))
    return r.stdout


def _compile_targets(meson, root, source_root, paths):
    """The targets of the build in root (meson compile's PATH/NAME:TYPE)
    that make the paths, each path found among a target's outputs."""
    intro = _run(meson + ["introspect", "--targets", root],
                 "listing the targets of the build in " + root)
    by_output = {}
    for t in json.loads(intro):
        subdir = os.path.relpath(os.path.realpath(os.path.dirname(
            t["defined_in"])), os.path.realpath(source_root))
        name = t["name"] + ":" + t["type"].replace(" ", "_")
        if subdir != os.curdir:
            name = subdir + "/" + name
        for out in t["filename"]:
            by_output[os.path.realpath(out)] = name
    targets = []
    for p in paths:
        name = by_output.get(os.path.realpath(p))
        if name is None:
            raise StageError("no target of the build %s makes %s: is the "
                             "option that builds it among the options?"
                             % (root, p))
        if name not in targets:
            targets.append(name)
    return targets


def _check_reachable(path, base):
    """Every directory from base down to path can be entered by every
    user, and path can be read (and, if a program, run) by every user."""
    rel = os.path.relpath(os.path.dirname(path), base)
    cur = base
    for part in [os.curdir] + ([] if rel == os.curdir else rel.split(os.sep)):
        cur = os.path.normpath(os.path.join(cur, part))
        if os.stat(cur).st_mode & 0o005 != 0o005:
            raise StageError("staged directory %s is not open to every user "
                             "(mode %o)" % (cur, os.stat(cur).st_mode & 0o777))
    mode = os.stat(path).st_mode
    want = 0o005 if mode & stat.S_IXUSR else 0o004
    if mode & want != want:
        raise StageError("staged %s is not open to every user (mode %o)"
                         % (path, mode & 0o777))


_LDD_LINE = re.compile(r"^\s*(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$")


def _is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _check_dependencies(s, products):
    """Every library a staged program or library loads is found, none in
    the build tree; those of the stage can be read by every user."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return  # glibc's ldd is part of every system these tests run on
    roots = {s.build_root, os.path.realpath(s.build_root)}
    # as in the loader's secure mode: no LD_LIBRARY_PATH
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    for f in products:
        _check_reachable(f, s.base)
        if not _is_elf(f):
            continue
        r = subprocess.run([ldd, f], capture_output=True, text=True,
                           env=env, timeout=60)
        for line in r.stdout.splitlines():
            m = _LDD_LINE.match(line)
            if not m:
                continue
            where = m.group(2)
            if where == "not found":
                raise StageError("staged %s needs %s, which the loader does "
                                 "not find" % (f, m.group(1)))
            if any(where.startswith(root + os.sep) for root in roots):
                raise StageError(
                    "staged %s needs %s, found in the build tree %s (%s), "
                    "which another user may not reach"
                    % (f, m.group(1), s.build_root, where))
            if where.startswith(s.base + os.sep):
                _check_reachable(where, s.base)


def build(root, outputs, options=None, env=None):
    """Configures a build of the test's source in the new directory root,
    like the test's build (module docstring), and compiles the targets
    that make outputs (paths relative to the build root) with what they
    link.  options: meson options (name: value) over every optional part
    disabled.  env: where the MPIBIND_STAGE_* variables are (default: the
    environment).  Everything made is readable by every user (umask 022)."""
    env = os.environ if env is None else env
    source_root = _setting(env, "SOURCE_ROOT")
    meson = _meson_command(env)
    os.mkdir(root, 0o755)
    os.chmod(root, 0o755)
    # in the build directory: meson reads it again when it reconfigures
    native = os.path.join(root, "mpibind-stage-native.ini")
    _write_native_file(native, env)
    opts = dict(_BASE_OPTIONS, **(options or {}))
    _run(meson + ["setup", "--native-file", native]
         + ["-D%s=%s" % kv for kv in sorted(opts.items())]
         + [root, source_root], "configuring the build in " + root)
    targets = _compile_targets(meson, root, source_root,
                               [os.path.join(root, o) for o in outputs])
    _run(meson + ["compile", "-C", root] + targets,
         "compiling the build in " + root)


def stage(products, options=None, env=None):
    """Builds the products (paths in the test's build tree: programs,
    libraries, plugins) in a staged build (build(), with the same options
    and env) and returns the Stage, a context manager that removes it."""
    env = os.environ if env is None else env
    build_root = os.path.abspath(_setting(env, "BUILD_ROOT"))
    for p in products:
        if not os.path.lexists(p):
            raise StageError("build product %s does not exist" % p)
    rels = [_relative(p, build_root) for p in products]
    s = Stage(build_root)
    try:
        build(s.root, rels, options, env)
        _check_dependencies(s, [os.path.join(s.root, r) for r in rels])
    except BaseException:
        s.remove()
        raise
    return s
