#!/usr/bin/python3
"""A real, private Slurm cluster of two nodes on this machine, for tests.

SlurmCluster starts its own munged, slurmctld and two slurmd ("n1", "n2",
both on 127.0.0.1 with their own ports) from a fresh temporary directory,
waits until a two-node step runs, and on stop() ends every process it
started and removes the directory.  Nothing outside the temporary directory
is written or read: the munge key, socket and logs, the Slurm state, spool
and logs all live there, so a system munged or Slurm, if any, is untouched.

Every client call must carry SLURM_CONF (see client_env()); inherited
SLURM_* variables are dropped so that a test run inside an outer Slurm job
does not talk to the outer job.

Why the daemons run in the foreground (-D/-F) as our children: they stay in
our process group, so when meson's timeout signals the group, they get the
signal too, even if this process is killed before its own cleanup runs.
Left-overs of a run killed with SIGKILL are reaped by the next start (see
_reap_stale), which only touches directories made by this module whose
owning process is gone.

Command line use (a shell or a command inside the cluster):
    slurm_cluster.py [--keep-logs DIR] [--plugstack LINE] [--gpus N] -- srun -N2 -n4 hostname
Exit 77 when not root or when Slurm/munge are not installed (meson SKIP).
"""

import argparse
import contextlib
import errno
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

SKIP = 77
PREFIX = "mpibind-slurm-"
NODES = ("n1", "n2")
DAEMONS = ("munged", "slurmctld", "slurmd", "srun", "salloc", "sinfo", "scancel")


class ClusterSkip(Exception):
    """A component is truly absent (not root, packages not installed)."""


class ClusterError(Exception):
    """The cluster could not start; the message carries the daemon logs."""


def missing_components():
    """Names of what a cluster needs and this machine lacks ([] when ready)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the daemons run as root)")
    for prog in DAEMONS:
        if not shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            missing.append(prog)
    return missing


def _which(prog):
    return shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _port_free(port):
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def _pick_ports(count, first=17000, last=29000, step=7):
    """A run of `count` consecutive free TCP ports, away from common ones
    (Slurm's defaults are 6817-6819)."""
    for base in range(first, last, step):
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise ClusterError("no %d consecutive free TCP ports in %d-%d" % (count, first, last))


def _node_hardware():
    """The NodeName line fields that `slurmd -C` prints for this machine."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True,
                         timeout=30, env=_clean_env())
    line = next((l for l in out.stdout.splitlines() if l.startswith("NodeName=")), None)
    if out.returncode != 0 or line is None:
        raise ClusterError("slurmd -C failed (exit %d): %s" % (out.returncode, out.stderr.strip()))
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    missing = [k for k in keep if k not in fields]
    if missing:
        raise ClusterError("slurmd -C line lacks %s: %s" % (", ".join(missing), line))
    return " ".join("%s=%s" % (k, fields[k]) for k in keep)


def _clean_env(extra=None):
    """The environment without any SLURM_* of an outer job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    if extra:
        env.update(extra)
    return env


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno == errno.EPERM
    return True


def _procs_with_env(needle):
    """Pids (not ours) whose environment contains the byte string `needle`:
    the srun tasks and slurmstepd of a cluster carry its SLURM_CONF."""
    pids = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if needle in f.read():
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def _kill_and_wait(pids, grace=5.0):
    """SIGTERM, then SIGKILL after `grace` seconds, each pid in the list."""
    pids = [p for p in pids if p and _pid_alive(p)]
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        _reap_children()
        time.sleep(0.1)
    for p in pids:
        if _pid_alive(p):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
    _reap_children()


def _reap_children():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _reap_stale(tmproot):
    """End the daemons of earlier runs that died without cleaning up (owner
    process gone), by their pid files and by their SLURM_CONF, and remove
    their directories."""
    try:
        names = os.listdir(tmproot)
    except OSError:
        return
    for name in names:
        d = os.path.join(tmproot, name)
        if not name.startswith(PREFIX) or not os.path.isdir(d):
            continue
        owner = _read_pid(os.path.join(d, "owner.pid"))
        if owner is not None and _pid_alive(owner):
            continue
        conf = os.path.join(d, "slurm.conf")
        pids = [_read_pid(os.path.join(d, f)) for f in
                ["slurmd.%s.pid" % n for n in NODES] + ["slurmctld.pid", "munge/munged.pid"]]
        # a pid file may outlive its process and the pid be reused: only
        # kill processes that still carry this cluster's configuration path
        pids = [p for p in pids if p and _cmdline_or_env_has(p, d.encode())]
        _kill_and_wait(pids + _procs_with_env(("SLURM_CONF=" + conf).encode()))
        shutil.rmtree(d, ignore_errors=True)


def _cmdline_or_env_has(pid, needle):
    for what in ("cmdline", "environ"):
        try:
            with open("/proc/%d/%s" % (pid, what), "rb") as f:
                if needle in f.read():
                    return True
        except OSError:
            pass
    return False


class SlurmCluster:
    """Start with start() (or `with SlurmCluster() as c:`), run clients with
    run()/client_env(), stop with stop().  stop() is safe to call twice and
    after a failed start."""

    def __init__(self, ready_timeout=60.0, keep_logs=None, verbose=False,
                 plugstack=None, gpus=0):
        """plugstack: lines of a plugstack.conf (e.g. "required
        /path/mpibind_slurm.so default_off"), written next to slurm.conf
        and named by PlugStackConfig; None for no SPANK plugin.  It can be
        rewritten between steps with set_plugstack(): srun and every
        step's slurmstepd read it afresh.
        gpus: number of fake GPUs per node: character devices made with
        mknod (major 195, the NVIDIA one, so nothing opens a real device)
        in the temporary directory, declared as gres "gpu" on both nodes;
        Slurm then sets CUDA_VISIBLE_DEVICES for steps that ask for GPUs."""
        self.ready_timeout = ready_timeout
        self.keep_logs = keep_logs
        self.verbose = verbose
        self.plugstack = list(plugstack) if plugstack is not None else None
        self.gpus = int(gpus)
        self.dir = None
        self.conf = None
        self.procs = {}          # name -> Popen of the daemons we started
        self.hardware = None
        self.base_port = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        missing = missing_components()
        if missing:
            raise ClusterSkip("cannot run a Slurm cluster here: missing " + ", ".join(missing))
        # /tmp rather than $TMPDIR: munged's socket path must stay short
        # (sun_path is 108 bytes) and munged checks the modes of its parents
        tmproot = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        _reap_stale(tmproot)
        t0 = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix=PREFIX, dir=tmproot)
        try:
            self._write_files()
            self._start_munged()
            self._start_slurm()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._log("cluster ready in %.1f s (%s, ports %d-%d)" % (
            time.monotonic() - t0, self.dir, self.base_port, self.base_port + len(NODES)))
        return self

    def stop(self):
        if self.dir is None:
            return
        d, self.dir = self.dir, None
        try:
            if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
                # end running jobs so that no slurmstepd or task outlives us
                with contextlib.suppress(Exception):
                    subprocess.run([_which("scancel"), "--full", "--user=root"],
                                   env=self.client_env(d), timeout=10,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            order = ["slurmd.%s" % n for n in NODES] + ["slurmctld", "munged"]
            for name in order:
                p = self.procs.get(name)
                if p is not None:
                    _kill_and_wait([p.pid], grace=10.0)
                    with contextlib.suppress(Exception):
                        p.wait(timeout=1)
            # daemons that forked despite -D, stray steps and tasks: all carry
            # this cluster's SLURM_CONF in their environment
            _kill_and_wait(_procs_with_env(("SLURM_CONF=%s/slurm.conf" % d).encode()))
            for f in ["slurmd.%s.pid" % n for n in NODES] + ["slurmctld.pid", "munge/munged.pid"]:
                pid = _read_pid(os.path.join(d, f))
                if pid and _cmdline_or_env_has(pid, d.encode()):
                    _kill_and_wait([pid])
        finally:
            self.procs = {}
            if self.keep_logs:
                self._copy_logs(d, self.keep_logs)
            shutil.rmtree(d, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- clients -------------------------------------------------------------

    def client_env(self, d=None, extra=None):
        """The environment for srun/salloc/sinfo: this cluster's SLURM_CONF,
        no SLURM_* of an outer job."""
        env = _clean_env(extra)
        env["SLURM_CONF"] = os.path.join(d or self.dir, "slurm.conf")
        return env

    def run(self, argv, timeout, env=None, input=None):
        """Run a client command; returns CompletedProcess (text).  A command
        that overruns `timeout` seconds is killed (with its process group)
        and reported with returncode None."""
        full_env = self.client_env(extra=env)
        p = subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             start_new_session=True)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            rc = None
            err += "\n[killed after %s s]" % timeout
        return subprocess.CompletedProcess(argv, rc, out, err)

    def logs(self, lines=30):
        """The tail of every daemon log, for failure reports."""
        if self.dir is None:
            return ""
        return _log_tails(self.dir, lines)

    # -- internals -------------------------------------------------------------

    def _log(self, msg):
        if self.verbose:
            print("slurm_cluster: " + msg, file=sys.stderr, flush=True)

    def _write_files(self):
        d = self.dir
        # munged insists that every directory on the socket's path be
        # searchable by all, and the key readable by its owner only
        os.chmod(d, 0o711)
        with open(os.path.join(d, "owner.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        os.mkdir(os.path.join(d, "munge"), 0o711)
        fd = os.open(os.path.join(d, "munge", "munge.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(1024))
        for sub in ["state"] + ["spool/" + n for n in NODES] + ["tmpfs/" + n for n in NODES]:
            os.makedirs(os.path.join(d, sub), 0o755)

        self.hardware = _node_hardware()
        extra = ""
        if self.plugstack is not None:
            extra += "PlugStackConfig={d}/plugstack.conf\n".format(d=d)
            self.set_plugstack(self.plugstack, d)
        gres = ""
        if self.gpus > 0:
            extra += "GresTypes=gpu\n"
            gres = " Gres=gpu:%d" % self.gpus
            self._make_gpus(d)
        self.base_port = _pick_ports(1 + len(NODES))
        ctld_port = self.base_port
        first, last = self.base_port + 1, self.base_port + len(NODES)
        conf = """\
# written by tests/slurm/slurm_cluster.py for one test run
ClusterName=mpibindtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge/munge.sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=5
KillWait=5
StateSaveLocation={d}/state
SlurmctldPidFile={d}/slurmctld.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdSpoolDir={d}/spool/%n
SlurmdPidFile={d}/slurmd.%n.pid
SlurmdLogFile={d}/slurmd.%n.log
TmpFS={d}/tmpfs/%n
SlurmdParameters=config_overrides
{extra}NodeName=n[1-{nn}] NodeHostname=localhost NodeAddr=127.0.0.1 Port={first}-{last} {hw}{gres} State=UNKNOWN
PartitionName=test Nodes=n[1-{nn}] Default=YES MaxTime=INFINITE State=UP
""".format(d=d, ctld_port=ctld_port, nn=len(NODES), first=first, last=last, hw=self.hardware,
           extra=extra, gres=gres)
        self.conf = os.path.join(d, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def set_plugstack(self, lines, d=None):
        """(Re)writes plugstack.conf; the cluster must have been created
        with a plugstack (PlugStackConfig is only read at start)."""
        d = d or self.dir
        tmp = os.path.join(d, "plugstack.conf.new")
        with open(tmp, "w") as f:
            f.write("".join(l + "\n" for l in lines))
        os.rename(tmp, os.path.join(d, "plugstack.conf"))
        self.plugstack = list(lines)

    def _make_gpus(self, d):
        dev = os.path.join(d, "dev")
        os.mkdir(dev, 0o755)
        for i in range(self.gpus):
            os.mknod(os.path.join(dev, "nvidia%d" % i), 0o666 | stat.S_IFCHR, os.makedev(195, i))
        with open(os.path.join(d, "gres.conf"), "w") as f:
            f.write("Name=gpu File=%s/nvidia[0-%d]\n" % (dev, self.gpus - 1))

    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".out"), "wb")
        try:
            self.procs[name] = subprocess.Popen(
                argv, env=self.client_env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        finally:
            log.close()

    def _start_munged(self):
        m = os.path.join(self.dir, "munge")
        self._spawn("munged", [_which("munged"), "--foreground", "--force",
                               "--key-file=%s/munge.key" % m,
                               "--socket=%s/munge.sock" % m,
                               "--pid-file=%s/munged.pid" % m,
                               "--log-file=%s/munged.log" % m,
                               "--seed-file=%s/munged.seed" % m])
        sock = os.path.join(m, "munge.sock")
        self._wait_for(lambda: os.path.exists(sock), 15, "munged socket %s" % sock)

    def _start_slurm(self):
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i"])
        for n in NODES:
            self._spawn("slurmd." + n, [_which("slurmd"), "-D", "-N", n])

    def _check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise ClusterError("%s exited with status %s during start-up\n%s"
                                   % (name, p.returncode, _log_tails(self.dir, 30)))

    def _wait_for(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if cond():
                return
            if time.monotonic() > deadline:
                raise ClusterError("timed out after %d s waiting for %s\n%s"
                                   % (timeout, what, _log_tails(self.dir, 30)))
            time.sleep(0.2)

    def _wait_ready(self):
        """Ready when a step spanning both nodes runs."""
        srun = _which("srun")
        last = [None]

        def ready():
            r = self.run([srun, "-N%d" % len(NODES), "-n%d" % len(NODES), "-t1", "true"], timeout=15)
            last[0] = r
            return r.returncode == 0
        try:
            self._wait_for(ready, self.ready_timeout, "srun -N%d true to succeed" % len(NODES))
        except ClusterError as e:
            r = last[0]
            if r is not None:
                raise ClusterError("%s\nlast srun: exit %s, stderr: %s" % (e, r.returncode, r.stderr.strip()))
            raise

    def _copy_logs(self, d, dest):
        os.makedirs(dest, exist_ok=True)
        for root, _, files in os.walk(d):
            for f in files:
                if f.endswith((".log", ".out", ".conf")):
                    with contextlib.suppress(OSError):
                        shutil.copy(os.path.join(root, f), os.path.join(dest, f))


def _log_tails(d, lines):
    parts = []
    for root, _, files in os.walk(d):
        for f in sorted(files):
            if f.endswith((".log", ".out")):
                try:
                    with open(os.path.join(root, f), errors="replace") as fh:
                        tail = fh.readlines()[-lines:]
                except OSError:
                    continue
                if tail:
                    parts.append("--- %s (last %d lines)\n%s" % (f, len(tail), "".join(tail)))
    return "\n".join(parts)


@contextlib.contextmanager
def signals_raise():
    """Turn SIGTERM/SIGHUP into SystemExit so that `finally`/`with` blocks
    stop the cluster when meson (or a user) ends the run."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep-logs", metavar="DIR", help="copy the daemon logs here at stop")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--plugstack", action="append", metavar="LINE",
                    help="a plugstack.conf line, e.g. 'required /path/mpibind_slurm.so' (repeatable)")
    ap.add_argument("--gpus", type=int, default=0, help="fake GPUs (gres) per node")
    ap.add_argument("command", nargs=argparse.REMAINDER,
                    help="-- command to run with SLURM_CONF set (default: an interactive shell)")
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        cmd = [os.environ.get("SHELL", "/bin/sh")]
    with signals_raise():
        cluster = SlurmCluster(ready_timeout=args.ready_timeout, keep_logs=args.keep_logs, verbose=True,
                               plugstack=args.plugstack, gpus=args.gpus)
        try:
            cluster.start()
        except ClusterSkip as e:
            print("SKIP: %s" % e, file=sys.stderr)
            return SKIP
        except ClusterError as e:
            print("slurm_cluster: %s" % e, file=sys.stderr)
            return 1
        try:
            print("slurm_cluster: SLURM_CONF=%s" % cluster.conf, file=sys.stderr, flush=True)
            return subprocess.call(cmd, env=cluster.client_env())
        finally:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
