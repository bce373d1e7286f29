"""A workload: managed objects, guests with their configuration, clients, probes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.schema.common import (
    Count,
    Count0,
    Name,
    Population,
    PosMillis,
    PosSeconds,
    Rate,
    Seconds,
    Sourced,
    Strict,
)

Refs = dict[Name, list[Name]]
"""Object references by kind: ``{network: [default], pool: [images]}``."""


class ObjectDecl(Strict):
    """A managed object (a virtual network, a storage pool, a host device ...)."""

    name: Name
    kind: Name
    count: Population = 1
    refs: Refs = Field(default_factory=dict)


class GuestGroup(Sourced):
    """``count`` guests of one configuration, named ``<name>-<i>`` when count > 1.

    ``refs`` is the configuration that matters for dependencies: the networks its NICs sit
    on, the pools its volume disks come from, its secrets, filters, host devices, leases.
    """

    name: Name
    count: Population = 1
    driver: Name
    running: bool = True
    autostart: bool = False
    refs: Refs = Field(default_factory=dict)


class Command(Sourced):
    """A client command: calls made in order on one connection (``virsh pool-refresh``:
    look the pool up, then refresh it).  The last step is the operation the command is for;
    the first failure or timeout ends the command."""

    name: Name
    description: str = ""
    steps: Annotated[list[Name], Field(min_length=1, max_length=64)]


class CallSpec(Strict):
    """One kind of call a client makes: one ``procedure``, or a library ``command``.

    ``target``: ``each-guest`` makes one call per guest each period; ``one-guest`` picks one
    guest at random; ``object`` acts on the named object (or a random one of ``object_kind``);
    ``none`` is connection-wide.  ``group`` limits guest targets to one guest group; a
    procedure that starts (stops) guests picks among stopped (running) ones.  Exactly one of
    ``every_s`` (fixed period) and ``rate_per_s`` (Poisson arrivals) is given.  With
    ``jitter`` (the default) the first call comes at a random phase within the first period;
    without, exactly at the client's ``start_s``.  ``nowait`` is the call's "do not wait
    for a busy object's job" flag (``VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT``).
    """

    procedure: Name | None = None
    command: Name | None = None
    before: Annotated[list[Name], Field(max_length=64)] = Field(default_factory=list)
    uri: str
    target: Literal["none", "each-guest", "one-guest", "object"] = "none"
    object: Name | None = None
    object_kind: Name | None = None
    group: Name | None = None
    every_s: PosSeconds | None = None
    rate_per_s: Rate | None = None
    jitter: bool = True
    nowait: bool = False

    @model_validator(mode="after")
    def _one_rate(self) -> CallSpec:
        if (self.procedure is None) == (self.command is None):
            raise ValueError("give exactly one of procedure and command")
        if self.before and self.command is not None:
            raise ValueError("'before' goes with 'procedure:', a command lists its own steps")
        if (self.every_s is None) == (self.rate_per_s is None):
            raise ValueError("give exactly one of every_s and rate_per_s")
        if self.target == "object" and not (self.object or self.object_kind):
            raise ValueError("target 'object' needs 'object:' or 'object_kind:'")
        return self


class Keepalive(Strict):
    """Client keepalive (``keepalive:``): a ping every ``interval_s`` seconds; after ``count``
    unanswered ones (``interval_s * (count + 1)`` seconds of silence) the connection is dead.
    """

    interval_s: PosSeconds
    count: Count0


class Reconnect(Strict):
    """Reconnection after a lost connection (``reconnect:``): wait ``delay_s`` seconds first.

    ``max_attempts`` (``null``: no limit) is validated but not yet read by the engine.
    """

    delay_s: Seconds = 5.0
    max_attempts: Count0 | None = None


class ClientProfile(Sourced):
    """A management application's behaviour: what it calls, how often, with what timeout.

    ``connection: persistent`` keeps one connection per URI open; ``per-call`` opens and
    closes one for every call (a scraper).
    """

    name: Name
    description: str = ""
    calls: list[CallSpec]
    timeout_s: PosSeconds | None = None
    keepalive: Keepalive | None = None
    reconnect: Reconnect = Field(default_factory=Reconnect)
    connection: Literal["persistent", "per-call"] = "persistent"


class ClientProfiles(Sourced):
    """The ``kind: client-profiles`` document: commands and client profiles a workload imports."""

    kind: Literal["client-profiles"]
    name: Name
    commands: list[Command] = Field(default_factory=list)
    profiles: list[ClientProfile]


class ClientDecl(Strict):
    """Clients of one profile; ``timeout_s`` overrides the profile's (``none``: no timeout)."""

    name: Name
    profile: Name
    count: Population = 1
    start_s: Seconds = 0.0
    timeout_s: PosSeconds | Literal["none"] | None = None


class Probe(Sourced):
    """The measuring instrument: one call per running guest every ``every_s``
    (``before``: calls made first on the same connection, as in a command).

    A probe that fails, times out or takes longer than ``slo_ms`` marks the guest
    unmanageable until a probe succeeds within the SLO again.  After a failed connection
    the agent waits ``reconnect.delay_s`` before trying again (its guests stay unmanageable).
    """

    procedure: Name
    before: Annotated[list[Name], Field(max_length=64)] = Field(default_factory=list)
    uri: str
    every_s: PosSeconds
    slo_ms: PosMillis
    timeout_s: PosSeconds
    reconnect: Reconnect = Field(default_factory=Reconnect)


class Host(Sourced):
    """The machine (issue 16): ``cores`` of CPU shared by processor sharing between daemon
    initialisation, reconnects and guest starts (omitted: CPU is not contended, every cost
    is a plain delay); ``guest_scope``: ``machine`` when each guest gets its own scope
    (systemd-machined registers it), ``daemon`` when guests stay in the cgroup of the
    daemon that started them (no machined, or an unprivileged daemon)."""

    cores: Count | None = None
    guest_scope: Literal["machine", "daemon"] = "machine"


class Workload(Sourced):
    """The ``kind: workload`` document: objects, guests, clients and the probe."""

    kind: Literal["workload"]
    name: Name
    description: str = ""
    catalog: str
    imports: list[str] = Field(default_factory=list)
    commands: list[Command] = Field(default_factory=list)
    objects: list[ObjectDecl] = Field(default_factory=list)
    guests: list[GuestGroup] = Field(default_factory=list)
    profiles: list[ClientProfile] = Field(default_factory=list)
    clients: list[ClientDecl] = Field(default_factory=list)
    probe: Probe
    host: Host | None = None
