"""Turn resolved unit files, presets and daemon configs into a topology document.

Every block of the result says where it came from: ``source: "imported from FILE:LINE"``
for what the unit files and configs say, the mapping's own provenance (and its file and
line) for what the mapping adds, and ``assumption:`` for the service manager's defaults
and implicit dependencies.  What the model cannot represent is collected as
:class:`~sim.importer.directives.Unsupported` items, never dropped silently.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ConfigError
from sim.importer.command import command, option_value
from sim.importer.conf import ConfEntry, load_conf
from sim.importer.directives import (
    DEPENDENCIES,
    INSTALL,
    Resolved,
    Unsupported,
    boolean,
    integer,
    time_span,
)
from sim.importer.hosts import HostDaemon, socket_service
from sim.importer.rooted import HostRoot
from sim.model.loader import Loaded
from sim.schema.importmap import ImportMap, ServerMap

RESTART_APPROX = {
    "on-abnormal": "on-failure",
    "on-abort": "on-failure",
    "on-watchdog": "on-failure",
    "on-success": "no",
}
TYPES_NOTIFY = {"notify": True, "notify-reload": True, "simple": False, "exec": False}
KILL_MODES = ("control-group", "process", "mixed", "none")


@dataclass
class Context:
    """What building needs besides the units: the mapping, its file, and the outputs."""

    mapping: Loaded[ImportMap]
    root: HostRoot
    conf_dir: Path | None
    unsupported: list[Unsupported] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_conf: list[str] = field(default_factory=list)
    missing_env: list[str] = field(default_factory=list)

    @property
    def map(self) -> ImportMap:
        """The import mapping document."""
        return self.mapping.doc

    def where(self, *loc: str | int) -> str:
        """``FILE:LINE`` of the mapping at ``loc``, for provenance."""
        return f"{self.mapping.path}:{self.mapping.src.line_of(tuple(loc))}"

    def approx(self, r: Resolved, key: str, reason: str) -> None:
        """Report directive ``key`` of unit ``r`` as approximated: the model keeps a simpler
        meaning, for ``reason``.
        """
        a = r.scalars[key]
        what = f"{key}={a.value}"
        self.unsupported.append(Unsupported(a.where, r.unit.name, what, reason))


def _provenance(r: Resolved) -> str:
    files = [str(r.unit.path) + ":1"] + [f"{p} (drop-in)" for p in r.unit.dropins]
    return "imported from " + ", ".join(files)


def _deps(r: Resolved) -> dict[str, list[str]]:
    out = {}
    for key, fld in {**DEPENDENCIES, **INSTALL}.items():
        words = r.words(key)
        if words:
            out[fld] = words
    return out


# ---------------------------------------------------------------------------- services
def _restart(ctx: Context, r: Resolved) -> str:
    a = r.scalar("Restart")
    if a is None:
        return ctx.map.unit_defaults.restart
    if a.value in ("no", "on-failure", "always"):
        return a.value
    if a.value in RESTART_APPROX:
        approx = RESTART_APPROX[a.value]
        ctx.approx(r, "Restart", f"modelled as {approx}: the model knows no, on-failure, always")
        return approx
    raise ConfigError.single(a.file, f"Restart= has an unknown value {a.value!r}", line=a.line)


def _notify(ctx: Context, r: Resolved) -> bool:
    a = r.scalar("Type")
    if a is None:
        return False
    if a.value in TYPES_NOTIFY:
        return TYPES_NOTIFY[a.value]
    ctx.approx(r, "Type", "modelled as ready when spawned (Type=simple)")
    return False


def _kill_mode(ctx: Context, r: Resolved) -> str:
    a = r.scalar("KillMode")
    if a is None:
        return ctx.map.unit_defaults.kill_mode
    if a.value in KILL_MODES:
        return a.value
    raise ConfigError.single(a.file, f"KillMode= has an unknown value {a.value!r}", line=a.line)


def _timeout_start(ctx: Context, r: Resolved) -> float:
    a = r.scalar("TimeoutStartSec") or r.scalar("TimeoutSec")
    if a is None:
        return ctx.map.unit_defaults.timeout_start_s
    value = time_span(a)
    if value <= 0:
        ctx.approx(r, a.key, "no start timeout is not modelled: the default is kept")
        return ctx.map.unit_defaults.timeout_start_s
    return value


def service_unit(ctx: Context, r: Resolved, daemon: str) -> dict[str, Any]:
    """The topology's service unit block for unit ``r`` running ``daemon``; settings the unit
    does not give are the mapping's unit defaults.
    """
    d = ctx.map.unit_defaults
    interval = r.scalar("StartLimitIntervalSec") or r.scalar("StartLimitInterval")
    burst = r.scalar("StartLimitBurst")
    restart_sec = r.scalar("RestartSec")
    desc = r.scalar("Description")
    return {
        "name": r.unit.name,
        "type": "service",
        "description": desc.value if desc else "",
        "source": _provenance(r),
        "assumption": (
            "values the unit does not set are the service manager's defaults "
            f"({ctx.where('unit_defaults')}: {d.source or d.assumption})"
        ),
        "daemon": daemon,
        "notify": _notify(ctx, r),
        "restart": _restart(ctx, r),
        "restart_sec": time_span(restart_sec) if restart_sec else d.restart_sec,
        "start_limit_interval_s": time_span(interval) if interval else d.start_limit_interval_s,
        "start_limit_burst": integer(burst) if burst else d.start_limit_burst,
        "kill_mode": _kill_mode(ctx, r),
        "timeout_start_s": _timeout_start(ctx, r),
        **_deps(r),
    }


# ---------------------------------------------------------------------------- sockets
def listen_name(ctx: Context, value: str) -> str:
    """The model's path for a ``ListenStream=`` value (ports named by the mapping)."""
    if value.startswith(("/", "@")):
        return value
    return ctx.map.port_names.get(value, f"tcp:{value}")


def socket_listens(ctx: Context, r: Resolved) -> list[str]:
    """The model's paths of the socket's ``ListenStream=`` values."""
    return [listen_name(ctx, v) for v in r.words("ListenStream")]


def socket_unit(ctx: Context, r: Resolved) -> dict[str, Any]:
    """The topology's socket unit block for unit ``r``, with the implicit ``Before=`` on its
    service and the mapping's defaults.
    """
    d = ctx.map.unit_defaults
    service = socket_service(r)
    mode = r.scalar("SocketMode")
    listen = []
    for path in socket_listens(ctx, r):
        entry: dict[str, Any] = {"path": path}
        if mode is not None and path.startswith(("/", "@")):
            entry["mode"] = mode.value
        listen.append(entry)
    accept = r.scalar("Accept")
    if accept is not None and boolean(accept):
        ctx.approx(r, "Accept", "one service per connection is not modelled (Accept=no assumed)")
    remove = r.scalar("RemoveOnStop")
    t_int, t_burst = r.scalar("TriggerLimitIntervalSec"), r.scalar("TriggerLimitBurst")
    deps = _deps(r)
    implicit = service not in deps.get("before", [])
    if implicit:
        deps["before"] = [*deps.get("before", []), service]
    assumption = f"values the unit does not set are the defaults at {ctx.where('unit_defaults')}"
    if implicit:
        assumption += (
            f"; Before={service} is systemd's implicit ordering of a socket before the "
            "service it activates (systemd.socket(5))"
        )
    desc = r.scalar("Description")
    return {
        "name": r.unit.name,
        "type": "socket",
        "description": desc.value if desc else "",
        "source": _provenance(r),
        "assumption": assumption,
        "service": service,
        "listen": listen,
        "remove_on_stop": boolean(remove) if remove else d.remove_on_stop,
        "trigger_limit_interval_s": time_span(t_int) if t_int else d.trigger_limit_interval_s,
        "trigger_limit_burst": integer(t_burst) if t_burst else d.trigger_limit_burst,
        **deps,
    }


# ---------------------------------------------------------------------------- daemons
def idle_timeout(ctx: Context, r: Resolved) -> tuple[float | None, str]:
    """The idle-exit timeout from the command line, and where it was read."""
    cmd = command(r, ctx.root)
    if cmd is None:
        return None, f"{r.unit.path}: no ExecStart="
    ctx.missing_env += cmd.notes
    value = option_value(cmd.argv, ctx.map.idle_timeout_options)
    where = ", ".join(cmd.where)
    if value is None:
        return None, f"no idle timeout option on the command line ({where})"
    try:
        seconds = float(value)
    except ValueError:
        a = r.lines("ExecStart")[-1]
        msg = f"idle timeout must be a number of seconds, got {value!r}"
        raise ConfigError.single(a.file, msg, line=a.line) from None
    if seconds <= 0:
        a = r.lines("ExecStart")[-1]
        raise ConfigError.single(a.file, f"idle timeout must be > 0, got {value!r}", line=a.line)
    return seconds, f"idle timeout {value} s from the command line ({where})"


def _server_of(servers: list[ServerMap], socket: str) -> ServerMap | None:
    return next(
        (s for s in servers if any(fnmatch.fnmatchcase(socket, p) for p in s.sockets)), None
    )


def assign_sockets(d: HostDaemon) -> dict[str, list[str]]:
    """Socket unit names per server name, ordered by the mapping's patterns, then by name."""
    out: dict[str, list[str]] = {s.name: [] for s in d.spec.servers}
    for sock in d.sockets:
        server = _server_of(d.spec.servers, sock.unit.name)
        if server is None:
            msg = (
                f"socket {sock.unit.name} activates {d.spec.unit} but matches no server of "
                f"daemon {d.spec.name} in the mapping; add it to a server's sockets"
            )
            raise ConfigError.single(sock.unit.path, msg)
        out[server.name].append(sock.unit.name)

    for s in d.spec.servers:
        out[s.name].sort(key=lambda name, s=s: _rank(s, name))  # type: ignore[misc]
    return out


def _rank(server: ServerMap, name: str) -> tuple[int, str]:
    """A socket's place in its server: the first pattern it matches, then its name."""
    hits = [i for i, p in enumerate(server.sockets) if fnmatch.fnmatchcase(name, p)]
    return (hits[0], name)


def _conf_value(entry: ConfEntry, field_name: str) -> float | int:
    if isinstance(entry.value, int) and not isinstance(entry.value, bool):
        return entry.value
    msg = f"{entry.key} (sets {field_name}) must be an integer, got {entry.value!r}"
    raise ConfigError.single(entry.file, msg, line=entry.line)


def server(
    ctx: Context, d: HostDaemon, s: ServerMap, sockets: list[str], conf: dict[str, ConfEntry]
) -> tuple[dict[str, Any], set[str]]:
    """One server block and the config keys it consumed."""
    defaults = ctx.map.server_defaults[s.defaults]
    values: dict[str, Any] = defaults.model_dump(exclude={"source", "assumption"})
    keys = ctx.map.conf_keys.get(s.conf_keys, {}) if s.conf_keys else {}
    used, read = set(), []
    for fld, key in keys.items():
        if key in conf:
            values[fld] = _conf_value(conf[key], fld)
            used.add(key)
            read.append(f"{conf[key].where} ({key})")
    source = f"defaults {s.defaults!r} at {ctx.where('server_defaults', s.defaults)}"
    source += f": {defaults.source}" if defaults.source else ""
    if read:
        source = "imported from " + ", ".join(read) + "; other " + source
    assumption = defaults.assumption or ""
    if values["min_workers"] > values["max_workers"]:
        note = (
            f"min_workers {values['min_workers']} > max_workers {values['max_workers']}: "
            "lowered to max_workers, as the daemon's thread pool does"
        )
        values["min_workers"] = values["max_workers"]
        ctx.notes.append(f"daemon {d.spec.name}, server {s.name}: {note}")
        assumption = f"{assumption}; {note}" if assumption else note
    block = {"name": s.name, "sockets": sockets, "source": source}
    if assumption:
        block["assumption"] = assumption
    return block | values, used


def daemon_block(ctx: Context, d: HostDaemon) -> dict[str, Any]:
    """The topology's daemon block for host daemon ``d``: its servers from the mapping and its
    config file (keys that no server uses are reported unsupported).
    """
    spec = d.spec
    conf: dict[str, ConfEntry] = {}
    conf_note = "no config file mapped"
    if spec.conf is not None:
        path = (ctx.conf_dir / spec.conf) if ctx.conf_dir is not None else None
        if path is not None and ctx.root.tree_of(path.parent).local(path, str(path)).is_file():
            conf, conf_note = load_conf(path, ctx.root), f"config {path}"
        else:
            conf_note = f"no {spec.conf} in the config directory: defaults"
            ctx.missing_conf.append(spec.conf)
    assigned = assign_sockets(d)
    servers, used = [], set()
    for s in spec.servers:
        server_block, keys = server(ctx, d, s, assigned[s.name], conf)
        servers.append(server_block)
        used |= keys
    for key in sorted(set(conf) - used):
        e = conf[key]
        ctx.unsupported.append(
            Unsupported(e.where, spec.name, f"{key} = {e.value!r}", "not modelled")
        )
    timeout, timeout_src = idle_timeout(ctx, d.service)
    desc = d.service.scalar("Description")
    block: dict[str, Any] = {
        "name": spec.name,
        "unit": spec.unit,
        "description": spec.description or (desc.value if desc else ""),
        "roles": list(spec.roles),
        "drivers": list(spec.drivers),
        "idle_timeout_s": timeout,
        "start_cpu_ms": spec.start_cpu_ms,
        "stop_grace_s": spec.stop_grace_s,
        "source": (
            f"imported from {d.service.unit.path}: {timeout_src}; {conf_note}; roles, drivers, "
            f"servers and costs from the mapping at {ctx.where('daemons', d.index)}"
            + (f": {spec.source}" if spec.source else "")
        ),
    }
    if spec.assumption:
        block["assumption"] = spec.assumption
    block["servers"] = servers
    return block


def relative_catalog(mapping_path: Path, catalog: str, output: Path) -> str:
    """The mapping's ``catalog`` path, relative to the folder of the output file."""
    target = (mapping_path.parent / catalog).resolve()
    return os.path.relpath(target, output.resolve().parent)
