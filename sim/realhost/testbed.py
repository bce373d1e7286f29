"""The testbed: a real host brought up on this machine, and torn down leaving nothing.

The daemons run in private mount and network namespaces (the network's bridge and firewall
rules live and die with them) in which the host directories of the host
description (``host_dirs``) are bind mounts of the testbed's prefix, so configuration,
sockets, state and logs all live under the prefix.  A FUSE file system mounted under the
prefix backs the storage pool; its control file blocks every reply (the hung NFS server).
State (what was created on the host, the FUSE server's pid) is kept in ``state.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.model.loader import load_as
from sim.realhost.lv import RealHostError, connect, library
from sim.schema.realhost import DaemonSpec, RealHost, Topology

DEFAULT_PREFIX = Path("/var/tmp/virtchaos-testbed")
DEFAULT_SPEC = Path("models/libvirt/realhost.yaml")
WAIT_S = 0.05


def load_host(path: Path = DEFAULT_SPEC) -> RealHost:
    """Load and validate a host description (``kind: realhost``)."""
    return load_as(path, RealHost).doc


@dataclass(frozen=True)
class Paths:
    """Where the testbed keeps everything: one prefix directory."""

    prefix: Path

    def sub(self, name: str) -> Path:
        """The testbed directory or file ``name`` under the prefix."""
        return self.prefix / name

    @property
    def run(self) -> Path:
        """The runtime directory (sockets, pid files)."""
        return self.sub("run")

    @property
    def mount(self) -> Path:
        """Where the FUSE pool is mounted."""
        return self.sub("pool")

    @property
    def control(self) -> Path:
        """The control file: while it exists, the FUSE pool withholds its replies."""
        return self.sub("pool.blocked")

    @property
    def state(self) -> Path:
        """The testbed's state file."""
        return self.sub("state.json")

    def uri(self, topo: Topology, model_uri: str) -> str:
        """The testbed URI that serves ``model_uri`` in ``topo``; RealHostError when it serves
        none.
        """
        try:
            return topo.uris[model_uri].replace("{run}", str(self.run))
        except KeyError:
            raise RealHostError(f"URI {model_uri!r} is not served by testbed {topo.name}") from None


@dataclass
class State:
    """What the testbed brought up (``state.json``): topology, directories it created, FUSE
    server pid, guests, network and virtualisation type.
    """

    topology: str = "monolithic"
    created_dirs: list[str] = field(default_factory=list)
    fuse_pid: int | None = None
    guests: list[str] = field(default_factory=list)
    network: str = "not tried"
    virt: str = ""

    @classmethod
    def read(cls, paths: Paths) -> State:
        """The saved state, or a fresh one when the testbed was never brought up."""
        if not paths.state.exists():
            return cls()
        return cls(**json.loads(paths.state.read_text(encoding="utf-8")))

    def write(self, paths: Paths) -> None:
        """Save the state."""
        paths.state.write_text(json.dumps(self.__dict__, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------ processes
def proc_state(pid: int | None) -> str:
    """``R``/``S``/``D``/``T`` ... from /proc, or ``dead`` (zombies count as dead)."""
    if pid is None:
        return "dead"
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return "dead"
    st = text.rsplit(")", 1)[1].split()[0]
    return "dead" if st in ("Z", "X") else st


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or ``None`` when it is missing or not a number."""
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def daemon_pid(paths: Paths, d: DaemonSpec) -> int | None:
    """The daemon's pid if its pid file names a live process running its binary."""
    pid = read_pid(paths.run / d.pidfile)
    if proc_state(pid) == "dead":
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return pid if Path(exe).name == Path(d.binary).name else None


def is_guest_process(host: RealHost, pid: int | None) -> bool:
    """Whether ``pid`` is a live process running the guest program."""
    if proc_state(pid) == "dead":
        return False
    try:
        return os.readlink(f"/proc/{pid}/exe") == host.guests.emulator
    except OSError:
        return False


def guest_pid(host: RealHost, paths: Paths, name: str) -> int | None:
    """The pid of guest ``name``'s process, or ``None`` when it is not running."""
    pid = read_pid(paths.run / host.guests.pid_dir / f"{name}.pid")
    return pid if is_guest_process(host, pid) else None


def signal_pid(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; a process already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait(predicate: Any, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout_s:
            raise RealHostError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(WAIT_S)
    return time.monotonic() - t0


def socket_answers(path: Path) -> bool:
    """Whether a connection to the UNIX socket at ``path`` succeeds within 1 s."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
    except OSError:
        return False
    finally:
        s.close()
    return True


# ------------------------------------------------------------------------------ preflight
def preflight(host: RealHost) -> list[str]:
    """Problems that stop the testbed (missing programs, FUSE, the Python binding)."""
    problems = [
        f"program {b!r} not found (apt-get install {' '.join(host.packages.apt)})"
        for b in host.packages.binaries
        if shutil.which(b) is None
    ]
    if not Path("/dev/fuse").exists():
        problems.append("/dev/fuse is missing: FUSE is not available on this machine")
    if os.geteuid() != 0:
        problems.append("the testbed needs root (it starts system daemons)")
    for module, pkg in (("libvirt", host.packages.pip[0]), ("fuse", host.packages.pip[1])):
        try:
            __import__(module)
        except (ImportError, OSError) as err:
            problems.append(f"Python module {module!r} unusable ({err}): pip install '{pkg}'")
    return problems


def kvm_usable() -> bool:
    """Whether hardware virtualisation (``/dev/kvm``) can be opened."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


# ------------------------------------------------------------------------------ files
def _setting(value: str | int | list[str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return str(value) if isinstance(value, int) else json.dumps(value)


def write_files(host: RealHost, paths: Paths) -> None:
    """Write the testbed's directories, config files, and the copies of host files with their
    ``append`` lines.
    """
    for name in host.host_dirs:
        paths.sub(name).mkdir(parents=True, exist_ok=True)
    for cf in host.config_files:
        lines = [f"{k} = {_setting(v)}" for k, v in cf.settings.items()]
        (paths.sub("etc") / cf.name).write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    files = paths.sub("files")
    files.mkdir(exist_ok=True)
    for ef in host.extra_files:
        text = Path(ef.path).read_text(encoding="utf-8")
        extra = [line for line in ef.append if line not in text.splitlines()]
        (files / Path(ef.path).name).write_text(text + "".join(f"{x}\n" for x in extra))


def ensure_host_dirs(host: RealHost, state: State) -> None:
    """Mount points must exist on the host; the ones created here are removed at down."""
    for target in host.host_dirs.values():
        p = Path(target)
        if not p.exists():
            p.mkdir(parents=True)
            state.created_dirs.append(str(p))


# ------------------------------------------------------------------------------ daemons
def _mount_script(host: RealHost, paths: Paths) -> list[str]:
    cmds = [
        f"mount --bind {shlex.quote(str(paths.sub('files') / Path(ef.path).name))} "
        f"{shlex.quote(ef.path)}"
        for ef in host.extra_files
    ]
    cmds += [
        f"mount --bind {shlex.quote(str(paths.sub(n)))} {shlex.quote(t)}"
        for n, t in host.host_dirs.items()
    ]
    return cmds


def _daemon_argv(host: RealHost, d: DaemonSpec) -> list[str]:
    etc, run = host.host_dirs["etc"], host.host_dirs["run"]
    return [d.binary, *d.args, d.config_flag, f"{etc}/{d.config}", d.pid_flag, f"{run}/{d.pidfile}"]


def namespace_pid(host: RealHost, paths: Paths, topo: Topology) -> int | None:
    """The pid of the first running daemon of ``topo`` (whose namespaces the others join), or
    ``None``.
    """
    for d in topo.daemons:
        pid = daemon_pid(paths, d)
        if pid is not None:
            return pid
    return None


def start_daemon(host: RealHost, paths: Paths, topo: Topology, d: DaemonSpec) -> float:
    """Start one daemon (in the testbed's namespace); seconds until its socket answers."""
    if daemon_pid(paths, d) is not None:
        return 0.0
    (paths.run / d.pidfile).unlink(missing_ok=True)
    env = "".join(f"{k}={shlex.quote(v)} " for k, v in sorted(d.env.items()))
    argv = env + " ".join(shlex.quote(a) for a in _daemon_argv(host, d))
    ns = namespace_pid(host, paths, topo)
    t0 = time.monotonic()
    if ns is None:
        script = " && ".join([*_mount_script(host, paths), f"exec env {argv}"])
        cmd = ["unshare", "-m", "-n", "--propagation", "private", "sh", "-c", script]
    else:
        cmd = ["nsenter", "-t", str(ns), "-m", "-n", "sh", "-c", f"exec env {argv}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RealHostError(f"{d.name} did not start: {out.stderr.strip() or out.returncode}")
    sock = paths.run / d.socket
    _wait(
        lambda: daemon_pid(paths, d) is not None and socket_answers(sock),
        host.start_timeout_s,
        f"{d.name} to answer on {sock} (see {paths.sub('log')})",
    )
    return time.monotonic() - t0


def stop_daemon(paths: Paths, d: DaemonSpec, timeout_s: float = 10.0) -> None:
    """Stop a daemon: SIGCONT and SIGTERM, then SIGKILL if it has not exited within ``timeout_s``
    seconds.
    """
    pid = daemon_pid(paths, d)
    if pid is None:
        return
    signal_pid(pid, signal.SIGCONT)
    signal_pid(pid, signal.SIGTERM)
    try:
        _wait(lambda: daemon_pid(paths, d) is None, timeout_s, f"{d.name} to exit")
    except RealHostError:
        signal_pid(pid, signal.SIGKILL)
        _wait(lambda: daemon_pid(paths, d) is None, 5.0, f"{d.name} to die")


# ------------------------------------------------------------------------------ FUSE
def is_mounted(path: Path) -> bool:
    """Whether ``path`` is a mount point."""
    target = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        return any(line.split()[1] == target for line in fh)


def start_fuse(host: RealHost, paths: Paths, state: State) -> None:
    """Mount the FUSE pool unblocked, unless it is already mounted and served."""
    if is_mounted(paths.mount) and proc_state(state.fuse_pid) != "dead":
        return
    paths.mount.mkdir(parents=True, exist_ok=True)
    paths.control.unlink(missing_ok=True)
    log = (paths.sub("log") / "fuse.log").open("ab")
    argv = [
        sys.executable,
        "-m",
        "sim.realhost.fusefs",
        str(paths.mount),
        str(paths.control),
        str(host.pool.volumes),
    ]
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    state.fuse_pid = proc.pid
    try:
        _wait(lambda: is_mounted(paths.mount), 15.0, "the FUSE mount")
    except RealHostError:
        raise RealHostError(f"FUSE mount failed; see {paths.sub('log') / 'fuse.log'}") from None


def set_blocked(paths: Paths, blocked: bool) -> None:
    """Make the FUSE pool withhold (``blocked``) or give its replies."""
    if blocked:
        paths.control.touch()
    else:
        paths.control.unlink(missing_ok=True)


def stop_fuse(paths: Paths, state: State) -> None:
    """Unblock and unmount the FUSE pool and stop its server."""
    set_blocked(paths, False)
    if is_mounted(paths.mount):
        subprocess.run(
            ["fusermount", "-u", "-z", str(paths.mount)],
            capture_output=True,
            check=False,
            timeout=30,
        )
    if state.fuse_pid is not None and proc_state(state.fuse_pid) != "dead":
        signal_pid(state.fuse_pid, signal.SIGTERM)
        try:
            _wait(lambda: proc_state(state.fuse_pid) == "dead", 5.0, "the FUSE server")
        except RealHostError:
            signal_pid(state.fuse_pid, signal.SIGKILL)
    state.fuse_pid = None


# ------------------------------------------------------------------------------ objects
def guest_names(host: RealHost, count: int | None = None) -> list[str]:
    """The testbed's guest names (``<prefix>-<i>``), ``count`` of them or the description's
    count.
    """
    n = host.guests.count if count is None else count
    return [f"{host.guests.prefix}-{i}" for i in range(n)]


def _guest_xml(host: RealHost, name: str, virt: str) -> str:
    g = host.guests
    return g.xml.format(name=name, virt=virt, memory_mib=g.memory_mib, emulator=g.emulator)


def define_objects(host: RealHost, paths: Paths, topo: Topology, state: State, n: int) -> None:
    """Define the pool, ``n`` guests and the network through the testbed's first URI, recording
    them in ``state``.
    """
    lib = library()
    conn = connect(paths.uri(topo, next(iter(topo.uris))))
    try:
        _ensure_pool(lib, conn, host, paths)
        virt = host.guests.accelerated if kvm_usable() else host.guests.emulated
        state.virt = virt
        state.guests = guest_names(host, n)
        for name in state.guests:
            _ensure_guest(lib, conn, host, name, virt)
        state.network = _ensure_network(lib, conn, host)
    finally:
        conn.close()


def _ensure_pool(lib: Any, conn: Any, host: RealHost, paths: Paths) -> None:
    try:
        pool = conn.storagePoolLookupByName(host.pool.name)
    except lib.libvirtError:
        xml = host.pool.xml.format(name=host.pool.name, path=paths.mount)
        pool = conn.storagePoolDefineXML(xml, 0)
    if not pool.isActive():
        pool.create(0)
    pool.refresh(0)


def _ensure_guest(lib: Any, conn: Any, host: RealHost, name: str, virt: str) -> None:
    try:
        dom = conn.lookupByName(name)
    except lib.libvirtError:
        dom = conn.defineXML(_guest_xml(host, name, virt))
    if not dom.isActive():
        dom.create()


def _ensure_network(lib: Any, conn: Any, host: RealHost) -> str:
    if host.network is None:
        return "none in the host description"
    spec = host.network
    try:
        try:
            net = conn.networkLookupByName(spec.name)
        except lib.libvirtError:
            net = conn.networkDefineXML(spec.xml.format(name=spec.name))
        if not net.isActive():
            net.create()
    except lib.libvirtError as err:
        return f"skipped: {' '.join(str(err).split())}"
    return "active"


# ------------------------------------------------------------------------------ verbs
def up(
    host: RealHost, prefix: Path, guests: int | None = None, topology: str = "monolithic"
) -> dict[str, Any]:
    """Bring the testbed up (idempotent); return its status."""
    problems = preflight(host)
    if problems:
        raise RealHostError("cannot bring the testbed up:\n  " + "\n  ".join(problems))
    topo = host.topology(topology)
    missing = [d.binary for d in topo.daemons if shutil.which(d.binary) is None]
    if missing:
        raise RealHostError(f"topology {topology}: {', '.join(missing)} not installed")
    paths = Paths(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    state = State.read(paths)
    state.topology = topology
    write_files(host, paths)
    ensure_host_dirs(host, state)
    state.write(paths)
    start_fuse(host, paths, state)
    state.write(paths)
    for d in topo.daemons:
        start_daemon(host, paths, topo, d)
    define_objects(host, paths, topo, state, guests if guests is not None else host.guests.count)
    state.write(paths)
    return status(host, prefix)


def down(host: RealHost, prefix: Path, keep: bool = False) -> list[str]:
    """Stop everything the testbed started; what was done, one line each."""
    paths = Paths(prefix)
    state = State.read(paths)
    if not paths.state.exists():
        return [f"nothing to do: no testbed at {prefix}"]
    done: list[str] = []
    set_blocked(paths, False)
    topo = host.topology(state.topology)
    for d in topo.daemons:
        pid = daemon_pid(paths, d)
        if pid is not None:
            signal_pid(pid, signal.SIGCONT)
    _destroy_guests(host, paths, topo, state, done)
    for d in reversed(topo.daemons):
        if daemon_pid(paths, d) is not None:
            stop_daemon(paths, d)
            done.append(f"stopped {d.name}")
    if is_mounted(paths.mount) or state.fuse_pid is not None:
        stop_fuse(paths, state)
        done.append("unmounted the FUSE pool")
    for made in reversed(state.created_dirs):
        try:
            Path(made).rmdir()
        except OSError:
            done.append(f"left {made} (not empty)")
    state.created_dirs = []
    if not keep and prefix.exists():
        shutil.rmtree(prefix)
        done.append(f"removed {prefix}")
    elif prefix.exists():
        state.write(paths)
    return done


def _destroy_guests(
    host: RealHost, paths: Paths, topo: Topology, state: State, done: list[str]
) -> None:
    names = state.guests or guest_names(host)
    for name in names:
        pid = guest_pid(host, paths, name)
        if pid is not None:
            signal_pid(pid, signal.SIGCONT)
            signal_pid(pid, signal.SIGKILL)
            done.append(f"killed guest {name} (pid {pid})")
    pid_dir = paths.run / host.guests.pid_dir
    for pidfile in sorted(pid_dir.glob("*.pid")) if pid_dir.exists() else []:
        pid = read_pid(pidfile)
        if pid is not None and is_guest_process(host, pid) and pidfile.stem not in names:
            signal_pid(pid, signal.SIGKILL)
            done.append(f"killed {pidfile.stem} (pid {pid})")


def status(host: RealHost, prefix: Path) -> dict[str, Any]:
    """The testbed's state: topology, whether it is up (every daemon running), daemons' and
    guests' pids and process states, pool, network and URI.
    """
    paths = Paths(prefix)
    state = State.read(paths)
    if not paths.state.exists():
        state.topology = host.topologies[0].name
    topo = host.topology(state.topology)
    daemons = {}
    for d in topo.daemons:
        pid = daemon_pid(paths, d)
        daemons[d.name] = {"pid": pid, "state": proc_state(pid)}
    guests = {}
    for name in state.guests:
        pid = guest_pid(host, paths, name)
        guests[name] = {"pid": pid, "state": proc_state(pid)}
    return {
        "prefix": str(prefix),
        "topology": state.topology,
        "up": paths.state.exists() and all(v["pid"] for v in daemons.values()),
        "daemons": daemons,
        "guests": guests,
        "virt": state.virt,
        "pool": {
            "mounted": is_mounted(paths.mount),
            "blocked": paths.control.exists(),
            "fuse_pid": state.fuse_pid,
        },
        "network": state.network,
        "uri": paths.uri(topo, next(iter(topo.uris))),
    }
