"""The catalog: drivers, object kinds and procedures (the API), shared by every topology."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.schema.common import Count0, Distribution, Millis, Name, PosSeconds, Sourced, Strict


class Driver(Sourced):
    """A driver: a body of code that a daemon hosts and that serves procedures.

    ``uri`` is what another driver (or a forwarding daemon) opens to reach it; the topology's
    routes map it to a socket.  ``hosts_guests`` marks a hypervisor-like driver whose running
    guests inhibit the daemon's idle exit when ``inhibits_idle_exit`` is set.  With
    ``init_in_background`` the per-object part of its initialisation (an enumeration) runs
    after the daemon is ready, and every call into the driver waits until it is done.
    ``job_wait_s`` and ``max_queued_jobs`` bound the waits for an object's job.
    """

    name: Name
    uri: str
    description: str = ""
    hosts_guests: bool = False
    inhibits_idle_exit: bool = False
    init_cpu_ms: Millis = 0.0
    init_cpu_ms_per_object: dict[Name, Millis] = Field(default_factory=dict)
    reconnect_procedure: Name | None = None
    job_wait_s: PosSeconds = 30.0
    max_queued_jobs: Count0 = 0
    init_in_background: bool = False


class ObjectKind(Strict):
    """A kind of managed object (a guest, a network, a pool ...) and the driver that owns it."""

    name: Name
    driver: Name
    description: str = ""


class NestedCall(Strict):
    """A call a procedure makes into another procedure (maybe of another driver).

    ``for_each`` names an object kind: the call is made once per object of that kind that the
    caller's target refers to (a guest's networks, a pool's secrets); without it, once, on the
    same target.  ``on_error: ignore`` continues when the nested call fails.
    """

    procedure: Name
    for_each: Name | None = None
    on_error: Literal["fail", "ignore"] = "fail"


JobKind = Literal["none", "query", "modify", "destroy", "async"]


class Sweep(Strict):
    """A procedure that visits every object of ``kind`` its daemon holds, in turn (listing
    or collecting domains): per object it may take the object's lock (``lock``), a job
    (``job``; one it cannot get within the driver's wait, or at once under the caller's
    ``nowait``, only skips that object's monitor work) and spend ``service`` (in the
    object's monitor when ``monitor``)."""

    kind: Name
    lock: bool = False
    job: Literal["none", "query", "modify"] = "none"
    monitor: bool = False
    service: Distribution | None = None


class Procedure(Sourced):
    """One API procedure.

    Attributes
    ----------
    target : object kind the procedure acts on (``None`` for connection-wide calls)
    priority : ``high`` may run on a priority worker when all normal workers are busy
    service : service-time distribution of the procedure's own work (ms), nested calls excluded
    locks : ``driver`` (the driver-wide lock) and/or ``object`` (the target object's lock)
    calls : nested calls, made in order while the locks are held
    guest_effect : ``start`` / ``stop`` change the target guest's state when the call succeeds
    operation : class of management operation, for failed-operation counts and the analysis
    internal : not callable by clients (run by the engine, e.g. reconnect at daemon start)
    job : the job it takes on its target object (``none``: none); held for the whole call
    monitor : its own service time is spent in the target guest's monitor (the object's lock
        is released meanwhile; it blocks while the guest's monitor is hung)
    each : a sweep over every object of a kind (see :class:`Sweep`)
    """

    name: Name
    driver: Name
    target: Name | None = None
    priority: Literal["high", "low"] = "low"
    service: Distribution
    locks: list[Literal["driver", "object"]] = Field(default_factory=list)
    calls: list[NestedCall] = Field(default_factory=list)
    guest_effect: Literal["none", "start", "stop"] = "none"
    operation: Literal["query", "manage", "start", "stop", "reconnect", "config", "connect"] = (
        "query"
    )
    internal: bool = False
    job: JobKind = "none"
    monitor: bool = False
    each: Sweep | None = None


class Lifecycle(Strict):
    """Which procedures the engine runs to start and stop guests (autostart, control faults)."""

    start: Name
    stop: Name


class Handshake(Sourced):
    """What every new connection runs before its first call (authentication, feature
    negotiation and ``connectOpen``, taken as one call): an RPC served by a worker of the
    daemon the connection reaches, whatever its drivers."""

    name: Name
    priority: Literal["high", "low"] = "high"
    service: Distribution


class Catalog(Sourced):
    """The ``kind: catalog`` document: a system's drivers, object kinds, procedures, lifecycle."""

    kind: Literal["catalog"]
    name: Name
    description: str = ""
    handshake: Handshake | None = None
    drivers: list[Driver]
    object_kinds: list[ObjectKind]
    procedures: list[Procedure]
    lifecycle: Lifecycle
