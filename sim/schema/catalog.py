"""The catalog: drivers, object kinds and procedures (the API), shared by every topology."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.schema.common import Distribution, Millis, Name, Sourced, Strict


class Driver(Sourced):
    """A driver: a body of code that a daemon hosts and that serves procedures.

    ``uri`` is what another driver (or a forwarding daemon) opens to reach it; the topology's
    routes map it to a socket.  ``hosts_guests`` marks a hypervisor-like driver whose running
    guests inhibit the daemon's idle exit when ``inhibits_idle_exit`` is set.
    """

    name: Name
    uri: str
    description: str = ""
    hosts_guests: bool = False
    inhibits_idle_exit: bool = False
    init_cpu_ms: Millis = 0.0
    init_cpu_ms_per_object: dict[Name, Millis] = Field(default_factory=dict)
    reconnect_procedure: Name | None = None


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


class Lifecycle(Strict):
    """Which procedures the engine runs to start and stop guests (autostart, control faults)."""

    start: Name
    stop: Name


class Catalog(Sourced):
    kind: Literal["catalog"]
    name: Name
    description: str = ""
    drivers: list[Driver]
    object_kinds: list[ObjectKind]
    procedures: list[Procedure]
    lifecycle: Lifecycle
