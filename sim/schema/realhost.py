"""Schema of a real-host description (``kind: realhost``): how the testbed drives a real host.

Everything specific to the managed software lives in the YAML file this schema validates
(daemon binaries, config files and keys, the runtime directories, the guest and pool
definitions, the mapping from catalog procedure names to client-library calls, and the
signal or control that realises each fault kind).  The code in :mod:`sim.realhost` reads
it and knows none of those names.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.schema.common import Name, Sourced, Strict

Signal = Literal["SIGKILL", "SIGSTOP", "SIGCONT", "SIGTERM"]


class DaemonSpec(Sourced):
    """One daemon the testbed starts by hand (no service manager on the host)."""

    name: Name
    binary: str
    roles: list[Name] = Field(default_factory=list)
    unit: Name
    config: str = Field(description="config file name under the testbed's etc directory")
    config_flag: str = "-f"
    pidfile: str = Field(description="pid file name under the testbed's run directory")
    pid_flag: str = "-p"
    args: list[str] = Field(default_factory=list)
    socket: str = Field(
        description="listening socket under the run directory: ready when it answers"
    )
    settings: dict[str, str | int | list[str]] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict, description="environment for the daemon")


class Topology(Strict):
    """A daemon layout the testbed can bring up, and how the model's URIs reach it."""

    name: Name
    daemons: list[DaemonSpec]
    uris: dict[str, str] = Field(description="model URI -> testbed URI ({run} is expanded)")
    sockets: dict[Name, str] = Field(
        default_factory=dict,
        description="socket unit -> why an action on it has no effect on this host",
    )


class ExtraFile(Strict):
    """A host file replaced, inside the daemons' private mount namespace only, by a copy
    with ``append`` lines added (for example an account the daemon looks up at start)."""

    path: str
    append: list[str]
    reason: str


class ConfigFile(Sourced):
    """A config file the testbed writes (``config_files:``) with these ``settings``."""

    name: str
    settings: dict[str, str | int | list[str]]


class GuestSpec(Sourced):
    """The tiny guests: a domain definition template with ``{name}`` and ``{virt}``."""

    prefix: Name = "vm"
    count: Annotated[int, Field(ge=0)] = 4
    memory_mib: Annotated[int, Field(ge=16)] = 64
    xml: str
    pid_dir: str = Field(description="where the daemon writes NAME.pid, under the run directory")
    emulator: str = Field(description="the guest process's program (also {emulator} in xml)")
    accelerated: str = Field(description="domain type where /dev/kvm works")
    emulated: str = Field(description="domain type otherwise (TCG)")


class PoolSpec(Sourced):
    """A storage pool on the FUSE mount; ``xml`` has ``{name}`` and ``{path}``."""

    name: Name
    xml: str
    volumes: Annotated[int, Field(ge=0)] = 3


class NetworkSpec(Sourced):
    """A virtual network the testbed defines (``network:``), from its ``xml`` definition."""

    name: Name
    xml: str


class ProcedureCall(Strict):
    """How one catalog procedure is called through the client library.

    ``on`` is ``connection`` or an object kind resolved with ``lookups``; ``method`` is
    called on it with ``args``.  ``calibrate`` says whether timing it on a live host is safe
    (``start``/``stop`` procedures are timed in pairs by the calibrator).  A procedure with
    ``skip`` is never called; the reason is printed.
    """

    procedure: Name
    on: Name = "connection"
    target: Name | None = Field(None, description="object kind the {target} argument names")
    method: str | None = None
    args: list[int | str] = Field(default_factory=list)
    calibrate: bool = True
    skip: str | None = None

    @model_validator(mode="after")
    def _method(self) -> ProcedureCall:
        if (self.method is None) == (self.skip is None):
            raise ValueError("give exactly one of method and skip")
        return self


class FaultImpl(Strict):
    """How a fault kind (and scope) is realised: a signal on a process, or a control."""

    kind: Name
    scope: Name | None = None
    on: Literal["daemon", "guest", "object"]
    start: Signal | Literal["block"]
    end: Signal | Literal["unblock"] | None = None
    how: str


class Refusal(Strict):
    """A fault kind (and scope) this host cannot realise (``refused:``), and why."""

    kind: Name
    scope: Name | None = None
    reason: str


class Packages(Strict):
    """What the host needs (``packages:``): apt and pip packages, programs on PATH."""

    apt: list[str]
    pip: list[str]
    binaries: list[str] = Field(description="programs that must be on PATH")


class RealHost(Sourced):
    """A real host the testbed can build and drive (``models/libvirt/realhost.yaml``)."""

    kind: Literal["realhost"]
    name: Name
    description: str = ""
    packages: Packages
    host_dirs: dict[Name, str] = Field(
        description="testbed sub-directory -> host path bind-mounted over it for the daemons"
    )
    extra_files: list[ExtraFile] = Field(default_factory=list)
    config_files: list[ConfigFile] = Field(default_factory=list)
    topologies: list[Topology]
    guests: GuestSpec
    pool: PoolSpec
    network: NetworkSpec | None = None
    lookups: dict[Name, str]
    procedures: list[ProcedureCall]
    faults: list[FaultImpl]
    refused: list[Refusal] = Field(default_factory=list)
    start_timeout_s: Annotated[float, Field(gt=0)] = 30.0

    def topology(self, name: str) -> Topology:
        """The testbed topology called ``name``; raises ``KeyError`` naming the ones there are."""
        for t in self.topologies:
            if t.name == name:
                return t
        have = ", ".join(t.name for t in self.topologies)
        raise KeyError(f"no testbed topology {name!r} (this host description has {have})")

    def call(self, procedure: str) -> ProcedureCall | None:
        """How ``procedure`` is called on this host, or ``None`` when the file does not say."""
        return next((p for p in self.procedures if p.procedure == procedure), None)
