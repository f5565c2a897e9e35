"""Build products staged where another user can reach them.

A test that runs something as another user (nobody, a test user under
runuser, slurmstepd acting for a user) cannot run it from the build tree
when the checkout lives in a directory only its owner can enter (`mktemp
-d`, root's home: mode 0700).  stage() copies the build products a test
names into a fresh directory under /tmp that every user can enter, at their
paths relative to the build root, so that the run paths relative to a
program ($ORIGIN/../lib) lead to the staged copies.

The copies are relocated: the build root's path, wherever it is written in
them, becomes the stage root, a path of the same length.  That covers what
a program finds by an absolute path: the discovery helper's absolute run
path (it runs in the loader's secure mode when started with differing real
and effective uids, and secure mode ignores $ORIGIN and LD_LIBRARY_PATH),
the helper's path compiled into the layer, which the layer takes for
objects that run from the build tree.  A staged program therefore runs the
staged library and the staged helper, never the build tree's, and nothing
else changes in it: the same substitution of one prefix by another of the
same length that relocatable binary packages use.

Nothing here names a product: callers pass the build paths they run (the
meson test environment gives them), and every dependency found in the
build tree must be among them (checked with ldd), so a new build product
is reported, not silently taken from the build tree.

    with stage(build_root, [helper, library]) as s:
        subprocess.run([s.path(helper)], preexec_fn=become_nobody)
"""
import os
import re
import shutil
import subprocess
import tempfile

# Every user may enter /tmp (1777); TMPDIR may name a private directory.
_PUBLIC_TMP = "/tmp"


class StageError(RuntimeError):
    """The products cannot be staged (the message says why)."""


class Stage:
    """A relocated copy of some build products; remove() deletes it."""

    def __init__(self, build_root, base, root):
        self.build_root = build_root
        self.base = base    # the directory made for the stage
        self.root = root    # stands for build_root in the copies

    def path(self, build_path):
        """The staged copy of build_path (a path in the build tree)."""
        rel = os.path.relpath(os.path.abspath(build_path), self.build_root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise StageError("%s is not in the build tree %s"
                             % (build_path, self.build_root))
        return os.path.join(self.root, rel)

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def _stage_root(build_root):
    """A new directory under /tmp, readable by all, and inside it the
    (not yet made) stage root: a path as long as build_root."""
    base = tempfile.mkdtemp(prefix="mb", dir=_PUBLIC_TMP)
    os.chmod(base, 0o755)
    n = len(build_root) - len(base) - 1
    if n < 1:
        shutil.rmtree(base, ignore_errors=True)
        raise StageError(
            "cannot stage the build products of %s for another user: the "
            "staged copies are relocated to a path of the same length, and "
            "that path is shorter than %s/X; configure the build in a "
            "longer path" % (build_root, base))
    return base, os.path.join(base, ("staged-build" + "_" * n)[:n])


def _copy_relocated(src, dst, old, new):
    """src copied to dst with every occurrence of old replaced by new
    (bytes of the same length), its mode kept and made readable (and, if
    executable, runnable) by everyone."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data.replace(old, new))
    mode = os.stat(src).st_mode & 0o777
    if mode & 0o100:
        mode |= 0o055
    os.chmod(dst, mode | 0o044)


def _stage_one(s, build_path, done):
    """Stages build_path (and, for a symbolic link, what it names)."""
    build_path = os.path.abspath(build_path)
    if build_path in done:
        return
    done.add(build_path)
    dst = s.path(build_path)
    # every directory from the stage root down to dst: 0755
    rel = os.path.relpath(os.path.dirname(dst), s.root)
    cur = s.root
    for part in [] if rel == os.curdir else rel.split(os.sep):
        cur = os.path.join(cur, part)
        os.makedirs(cur, exist_ok=True)
        os.chmod(cur, 0o755)
    if os.path.islink(build_path):
        target = os.readlink(build_path)
        if os.path.isabs(target):
            raise StageError("%s is a link to the absolute path %s: stage "
                             "that file instead" % (build_path, target))
        os.symlink(target, dst)
        _stage_one(s, os.path.join(os.path.dirname(build_path), target), done)
    elif os.path.isdir(build_path):
        # a directory: the files it holds directly (a plugin directory)
        for name in sorted(os.listdir(build_path)):
            p = os.path.join(build_path, name)
            if os.path.isfile(p):
                _stage_one(s, p, done)
    else:
        _copy_relocated(build_path, dst, s.build_root.encode(),
                        s.root.encode())


_LDD_LINE = re.compile(r"^\s*(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$")


def _is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _check_dependencies(s, files):
    """Every library a staged program or library loads is found, and none
    from the build tree: the staged copy runs on its own."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return  # glibc's ldd is part of every system these tests run on
    for f in files:
        if not os.path.isfile(f) or os.path.islink(f) or not _is_elf(f):
            continue
        # as in the loader's secure mode: no LD_LIBRARY_PATH (meson test
        # sets one that names the build tree)
        env = {k: v for k, v in os.environ.items()
               if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
        r = subprocess.run([ldd, f], capture_output=True, text=True,
                           env=env, timeout=60)
        for line in r.stdout.splitlines():
            m = _LDD_LINE.match(line)
            if not m:
                continue
            where = m.group(2)
            if where == "not found" or where.startswith(s.build_root + os.sep):
                raise StageError(
                    "staged %s needs %s, found %s: stage it too (from the "
                    "build tree %s)" % (f, m.group(1), where, s.build_root))


def stage(build_root, products):
    """Stages the build products (paths in the build tree build_root:
    programs, libraries with their soname links, plugin directories) and
    returns the Stage (a context manager that removes it)."""
    build_root = os.path.abspath(build_root).rstrip(os.sep)
    base, root = _stage_root(build_root)
    s = Stage(build_root, base, root)
    try:
        os.mkdir(root, 0o755)
        os.chmod(root, 0o755)
        done = set()
        for p in products:
            if not os.path.lexists(p):
                raise StageError("build product %s does not exist" % p)
            _stage_one(s, p, done)
        _check_dependencies(s, [s.path(p) for p in sorted(done)])
    except BaseException:
        s.remove()
        raise
    return s
