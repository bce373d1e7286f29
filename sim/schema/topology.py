"""A topology: which daemons host which drivers, their systemd units, sockets, routes, preset."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.schema.common import (
    Count,
    Count0,
    KeepaliveInterval,
    Millis,
    Name,
    PosSeconds,
    Probability,
    Seconds,
    Sourced,
    Strict,
)


class Server(Sourced):
    """An RPC server inside a daemon: a worker pool behind one or more sockets.

    The pool runs as libvirt's virThreadPool (see :class:`sim.engine.primitives.WorkerPool`):
    one FIFO queue; normal workers take its head, priority workers only high-priority jobs;
    both kinds race for a high-priority job when both are idle (a normal worker wins with
    probability ``race_normal``); normal workers grow from ``min_workers`` to
    ``max_workers``, each new one ready ``worker_spawn_ms`` after the job that spawned it.
    """

    name: Name
    sockets: list[Name]
    min_workers: Count0 = 5
    max_workers: Count = 20
    prio_workers: Count0 = 5
    max_clients: Count = 5000
    max_client_requests: Count = 5
    keepalive_interval_s: KeepaliveInterval = 5.0
    keepalive_count: Count0 = 5
    worker_spawn_ms: Millis = 0.1
    race_normal: Probability = 0.5

    @model_validator(mode="after")
    def _pool(self) -> Server:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers must be <= max_workers, got {self.min_workers} > {self.max_workers}"
            )
        return self


class Hypothetical(Strict):
    """A mechanism libvirt does not have: a mitigation the model can try.  Its numbers have
    no upstream source, so ``assumption:`` (why this value, what it stands for) is required."""

    assumption: str = Field(min_length=1)


class ForwardTimeout(Hypothetical):
    """A bound on every call the daemon makes to another daemon (a call it forwards, or a
    nested call of one of its operations): after ``timeout_s`` the calling worker gives up
    with the error ``forward-timeout`` (connecting and the handshake count); the call runs
    on in the other daemon, holding its request slot on the connection until it ends."""

    timeout_s: PosSeconds


class ForwardPool(Hypothetical):
    """A worker pool of its own for the calls the daemon forwards (procedures whose driver
    another daemon hosts): they run there instead of on the server's pool, with the same
    virThreadPool rules (``prio_workers`` for high-priority calls), all workers started."""

    max_workers: Count
    prio_workers: Count0 = 0


class DriverCaps(Hypothetical):
    """At most ``max_busy[driver]`` of the daemon's workers (of all its pools) run calls of
    that driver at once; a further call of that driver waits for one of them to finish
    before it takes a worker, holding only its request slot; one whose client has gone by
    then is dropped."""

    max_busy: dict[Name, Count] = Field(min_length=1)


class Daemon(Sourced):
    """A daemon process: hosts drivers, runs servers, is run by one service unit.

    ``roles`` are names a fault can target so one experiment line resolves in every topology.
    ``idle_timeout_s`` is the ``--timeout`` argument (idle exit), ``None`` for never.
    ``forward_timeout``, ``forward_pool`` and ``driver_caps`` are hypothetical mitigations
    (:class:`Hypothetical`), absent in libvirt.
    """

    name: Name
    unit: Name
    description: str = ""
    roles: list[Name] = Field(default_factory=list)
    drivers: list[Name] = Field(default_factory=list)
    servers: list[Server]
    idle_timeout_s: PosSeconds | None = None
    start_cpu_ms: Millis = 0.0
    stop_grace_s: Seconds = 30.0
    forward_timeout: ForwardTimeout | None = None
    forward_pool: ForwardPool | None = None
    driver_caps: DriverCaps | None = None


class UnitBase(Sourced):
    """What every unit has: a name, dependencies and ordering (``requires:``, ``after:`` ...)."""

    name: Name
    description: str = ""
    requires: list[Name] = Field(default_factory=list)
    binds_to: list[Name] = Field(default_factory=list)
    wants: list[Name] = Field(default_factory=list)
    after: list[Name] = Field(default_factory=list)
    before: list[Name] = Field(default_factory=list)
    conflicts: list[Name] = Field(default_factory=list)
    also: list[Name] = Field(default_factory=list)
    wanted_by: list[Name] = Field(default_factory=list)


class ServiceUnit(UnitBase):
    """A service unit (systemd.service); ``daemon`` is the process it runs.

    ``kill_mode`` decides what happens to the other processes of the unit's cgroup (guests a
    daemon spawned outside any machine scope) when the main process ends: ``control-group``
    (SIGTERM) and ``mixed`` (SIGKILL) kill them, ``process`` and ``none`` leave them.
    """

    type: Literal["service"]
    daemon: Name | None = None
    notify: bool = True
    restart: Literal["no", "on-failure", "always"] = "no"
    restart_sec: Seconds = 0.1
    start_limit_interval_s: Seconds = 10.0
    start_limit_burst: Count0 = 5
    kill_mode: Literal["control-group", "process", "mixed", "none"] = "control-group"
    timeout_start_s: PosSeconds = 90.0


class Listen(Strict):
    """One socket a socket unit listens on (``listen:``): ``path`` and file ``mode``."""

    path: str
    mode: str | None = None


class SocketUnit(UnitBase):
    """A socket unit (systemd.socket) with ``Accept=no``: one service gets the listening fds."""

    type: Literal["socket"]
    service: Name
    listen: list[Listen]
    remove_on_stop: bool = True
    trigger_limit_interval_s: PosSeconds = 2.0
    trigger_limit_burst: Count = 20


class TargetUnit(UnitBase):
    """A target unit (systemd.target): a synchronisation point with no process of its own."""

    type: Literal["target"]


Unit = Annotated[ServiceUnit | SocketUnit | TargetUnit, Field(discriminator="type")]


class Route(Sourced):
    """How a client library picks a socket for a URI: the first listed path that exists wins."""

    uri: str
    sockets: list[str]


class PresetRule(Strict):
    """One preset rule (``rules:``): ``enable`` or ``disable`` units matching the glob
    ``pattern``.
    """

    action: Literal["enable", "disable"]
    pattern: str


class Preset(Sourced):
    """systemd preset rules: the first rule whose glob matches a unit decides; no match enables."""

    rules: list[PresetRule]


class Topology(Sourced):
    """A topology.  ``external_units`` exist on the host but are not modelled (always active).

    ``supervisor``: ``systemd`` runs the units; ``none`` is a host without a service manager
    (a container entrypoint, OpenRC): the daemons named in ``manual_start`` are started by
    hand at boot, in that order, and nothing restarts or socket-activates anything.  The
    units still describe each daemon's sockets (a daemon listens on its enabled ones).
    """

    kind: Literal["topology"]
    name: Name
    description: str = ""
    catalog: str
    boot_target: Name = "multi-user.target"
    external_units: list[Name] = Field(default_factory=list)
    daemons: list[Daemon]
    units: list[Unit]
    routes: list[Route]
    preset: Preset
    supervisor: Literal["systemd", "none"] = "systemd"
    manual_start: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _supervisor(self) -> Topology:
        if self.supervisor == "none" and not self.manual_start:
            raise ValueError(
                "supervisor 'none' needs manual_start: the daemons started by hand at boot"
            )
        if self.supervisor == "systemd" and self.manual_start:
            raise ValueError("manual_start is only for supervisor 'none' (systemd uses units)")
        return self
