"""An import mapping: how a host's systemd units, presets and daemon configs become a topology.

The unit files say how units depend on each other; they do not say which process hosts
which driver, which sockets feed which worker pool, which config file a daemon reads, or
which socket a client library tries first for a URI.  The mapping says all of that, with
provenance, so that the importer (:mod:`sim.importer`) stays free of any daemon's name.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.schema.common import (
    Count,
    Count0,
    KeepaliveInterval,
    Millis,
    Name,
    PosSeconds,
    Seconds,
    Sourced,
    Strict,
)

ServerField = Literal[
    "min_workers",
    "max_workers",
    "prio_workers",
    "max_clients",
    "max_client_requests",
    "keepalive_interval_s",
    "keepalive_count",
]
"""The fields of a topology server that a daemon config file can set."""


class ServerDefaults(Sourced):
    """Worker-pool values used when the daemon's config file does not set them."""

    min_workers: Count0
    max_workers: Count
    prio_workers: Count0
    max_clients: Count
    max_client_requests: Count
    keepalive_interval_s: KeepaliveInterval
    keepalive_count: Count0


class ServerMap(Strict):
    """One server of a daemon: which of its socket units feed it (``fnmatch`` globs), which
    config keys set its pool (a key set of ``conf_keys``), and its defaults (a named set of
    ``server_defaults``)."""

    name: Name
    sockets: list[str]
    conf_keys: Name | None = None
    defaults: Name


class DaemonMap(Sourced):
    """A daemon: the service unit that runs it and what the unit files cannot say."""

    name: Name
    unit: Name
    description: str = ""
    roles: list[Name] = Field(default_factory=list)
    drivers: list[Name] = Field(default_factory=list)
    conf: str | None = None
    start_cpu_ms: Millis = 0.0
    stop_grace_s: Seconds = 30.0
    servers: list[ServerMap]


class TargetMap(Sourced):
    """A target unit the topology models (targets are not read from the unit files)."""

    name: Name
    description: str = ""
    requires: list[Name] = Field(default_factory=list)
    wants: list[Name] = Field(default_factory=list)
    after: list[Name] = Field(default_factory=list)


class RouteMap(Sourced):
    """A URI and the socket units a client tries for it, in order; the importer keeps those
    present on the host and writes their listening paths."""

    uri: str
    sockets: list[Name]


class UnitDefaults(Sourced):
    """The service manager's defaults for values a unit file does not set."""

    restart_sec: Seconds
    start_limit_interval_s: Seconds
    start_limit_burst: Count0
    timeout_start_s: PosSeconds
    trigger_limit_interval_s: PosSeconds
    trigger_limit_burst: Count
    remove_on_stop: bool
    kill_mode: Literal["control-group", "process", "mixed", "none"]
    restart: Literal["no", "on-failure", "always"]


class ImportMap(Sourced):
    """The mapping file (``kind: import-map``).

    ``catalog`` is relative to this file.  ``external_units`` are declared always active in
    every import, besides the units the imported units name without the import modelling
    them (those are found by the importer).  ``idle_timeout_options`` are the daemon command
    line options whose value is the idle-exit timeout in seconds.  ``port_names`` name a
    numeric ``ListenStream=`` port in the model (default ``tcp:<port>``).  ``conf_keys``
    are named key sets: server field -> key in the daemon's config file.
    """

    kind: Literal["import-map"]
    name: Name
    description: str = ""
    catalog: str
    boot_target: Name
    external_units: list[Name] = Field(default_factory=list)
    idle_timeout_options: list[str] = Field(default_factory=list)
    port_names: dict[str, str] = Field(default_factory=dict)
    unit_defaults: UnitDefaults
    conf_keys: dict[Name, dict[ServerField, str]] = Field(default_factory=dict)
    server_defaults: dict[Name, ServerDefaults]
    targets: list[TargetMap]
    daemons: list[DaemonMap]
    routes: list[RouteMap]

    @model_validator(mode="after")
    def _references(self) -> ImportMap:
        problems = []
        for d in self.daemons:
            for s in d.servers:
                if s.defaults not in self.server_defaults:
                    problems.append(f"daemon {d.name!r}: unknown server_defaults {s.defaults!r}")
                if s.conf_keys is not None and s.conf_keys not in self.conf_keys:
                    problems.append(f"daemon {d.name!r}: unknown conf_keys {s.conf_keys!r}")
        names = [d.name for d in self.daemons]
        units = [d.unit for d in self.daemons]
        for what, items in (("daemon name", names), ("daemon unit", units)):
            dups = sorted({n for n in items if items.count(n) > 1})
            if dups:
                problems.append(f"duplicate {what}: {', '.join(dups)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
