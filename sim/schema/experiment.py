"""An experiment: topologies x workload x scenarios (faults, actions), hypotheses, replications."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.constants import MAX_REPLICATIONS
from sim.schema.common import (
    Bound,
    Count,
    Count0,
    Factor,
    Name,
    Population0,
    PosMillis,
    PosSeconds,
    Replications,
    Seconds,
    Seed,
    Strict,
)
from sim.schema.workload import ClientDecl

MAX_SCENARIOS = 10_000
"""The most scenarios an experiment may expand to (its list, matrix and sweeps together)."""
MAX_SNAPSHOTS = 1_000
"""The most ``snapshots_s`` instants."""

METRICS = (
    "vms_running",
    "vms_lost",
    "vms_unmanageable",
    "blast_radius",
    "unmanageable_vm_seconds",
    "failed_operations",
    "time_to_recover_s",
    "api_p50_ms",
    "api_p99_ms",
    "api_errors",
)
Metric = Literal[
    "vms_running",
    "vms_lost",
    "vms_unmanageable",
    "blast_radius",
    "unmanageable_vm_seconds",
    "failed_operations",
    "time_to_recover_s",
    "api_p50_ms",
    "api_p99_ms",
    "api_errors",
]


class Target(Strict):
    """What a fault or action hits; exactly one field.  Resolved per topology."""

    daemon: Name | None = None
    unit: Name | None = None
    driver: Name | None = None
    role: Name | None = None
    procedure: Name | None = None
    object: Name | None = None
    guest: Name | None = None
    group: Name | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [k for k, v in self.model_dump().items() if v is not None]
        if len(given) != 1:
            raise ValueError(f"a target names exactly one of {list(type(self).model_fields)}")
        return self

    @property
    def key(self) -> tuple[str, str]:
        """The one field given, as ``(field, value)`` (for example ``('daemon', 'd1')``)."""
        for k, v in self.model_dump().items():
            if v is not None:
                return k, str(v)
        raise AssertionError("unreachable")

    def __str__(self) -> str:
        k, v = self.key
        return f"{k}:{v}"


class Fault(Strict):
    """A fault.

    ``crash``: the process dies at ``at_s`` (restart per unit policy).  ``crash-loop``: it
    dies, and dies again ``after_start_s`` after each of the next ``count`` starts.  ``hang``
    with ``scope`` ``process`` (nothing answered), ``driver`` (every call into the driver
    blocks) or ``object`` (the object's lock is held).  ``slow`` multiplies service times by
    ``factor``.  ``guest-crash`` kills guests (a control).  ``guest-hang`` stops a guest's
    own process (``scope: process``, SIGSTOP) or its monitor (``scope: monitor``): every
    call that talks to its monitor blocks; it targets a guest or a guest group.
    ``duration_s: null`` lasts until the process restarts (or the end of the run).
    """

    kind: Literal["crash", "crash-loop", "hang", "slow", "guest-crash", "guest-hang"]
    target: Target
    scope: Literal["process", "driver", "object", "monitor"] | None = None
    at_s: Seconds
    duration_s: PosSeconds | None = None
    factor: Factor = 10.0
    count: Count = 100
    after_start_s: Seconds = 0.5

    @model_validator(mode="after")
    def _scope(self) -> Fault:
        if self.kind == "hang" and self.scope not in ("process", "driver", "object"):
            raise ValueError("a hang needs scope: process, driver or object")
        if self.kind == "guest-hang":
            if self.scope not in ("process", "monitor"):
                raise ValueError("a guest-hang needs scope: process or monitor")
            if self.target.guest is None and self.target.group is None:
                raise ValueError("a guest-hang targets a guest or a group")
        elif self.kind != "hang" and self.scope is not None:
            raise ValueError(f"scope applies to hangs only, not to '{self.kind}'")
        return self


class Action(Strict):
    """A scheduled operator action.

    ``restart``, ``start``, ``stop``, ``reset-failed`` act on units (``systemctl``);
    ``guest-start`` and ``guest-stop`` run the catalog's lifecycle procedure on a guest
    through ``uri`` (default: the probe's URI), as ``virsh start`` / ``virsh destroy`` do.
    """

    kind: Literal["restart", "start", "stop", "reset-failed", "guest-start", "guest-stop"]
    target: Target
    at_s: Seconds
    uri: str | None = None

    @model_validator(mode="after")
    def _guest_target(self) -> Action:
        if self.kind.startswith("guest-") and self.target.guest is None:
            raise ValueError(f"a {self.kind} action targets a guest")
        return self


class PoolOverride(Strict):
    """Worker-pool settings applied to every server of every daemon (sensitivity runs)."""

    max_workers: Count | None = None
    prio_workers: Count0 | None = None
    max_client_requests: Count | None = None


class ProbeOverride(Strict):
    """Probe settings for one scenario (``probe:`` under ``overrides:``); a field left out keeps
    the workload's.
    """

    every_s: PosSeconds | None = None
    slo_ms: PosMillis | None = None
    timeout_s: PosSeconds | None = None


class HostOverride(Strict):
    """Host settings for one scenario (see :class:`~sim.schema.workload.Host`)."""

    cores: Annotated[int, Field(ge=1)] | None = None
    guest_scope: Literal["machine", "daemon"] | None = None


class Overrides(Strict):
    """Changes to the models for one scenario: counts of guest groups or objects by name,
    worker pools, the probe.  (Client settings are overridden on the scenario's clients.)"""

    counts: dict[Name, Population0] = Field(default_factory=dict)
    pool: PoolOverride | None = None
    probe: ProbeOverride | None = None
    host: HostOverride | None = None


class Scenario(Strict):
    """One scenario: faults, operator actions, clients added to the workload's own, and
    model overrides."""

    name: Name
    description: str = ""
    clients: list[ClientDecl] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    overrides: Overrides = Field(default_factory=Overrides)


class MatrixTarget(Strict):
    """One row of the fault matrix: how to hit it as a process (``role``) and as a driver
    (``driver``), and the clients that call it (callers that pile up on a hang)."""

    name: Name
    role: Name | None = None
    driver: Name | None = None
    clients: list[ClientDecl] = Field(default_factory=list)


class MatrixAction(Strict):
    """An operator action on the row's target (the same target the fault uses)."""

    kind: Literal["restart", "start", "stop", "reset-failed"]
    at_s: Seconds


class MatrixFault(Strict):
    """One column of the fault matrix: a fault without its target; ``on`` says which of the
    row's targets it uses (rows without it are skipped)."""

    name: Name
    on: Literal["role", "driver"]
    kind: Literal["crash", "crash-loop", "hang", "slow"]
    scope: Literal["process", "driver", "object"] | None = None
    duration_s: PosSeconds | None = None
    factor: Factor = 10.0
    count: Count = 100
    after_start_s: Seconds = 0.5
    actions: list[MatrixAction] = Field(default_factory=list)


class Matrix(Strict):
    """Fault targets x fault kinds, expanded into scenarios named ``<target>.<fault>``."""

    targets: list[MatrixTarget]
    faults: list[MatrixFault]
    at_s: Seconds
    clients: list[ClientDecl] = Field(default_factory=list)


class Axis(Strict):
    """One swept parameter: ``path`` is a dotted path into the scenario template
    (``clients.0.count``, ``overrides.pool.max_workers``); ``labels`` name the values in
    scenario names (default: the values themselves)."""

    name: Name
    path: str
    values: list[Any]
    labels: list[Name] | None = None

    @model_validator(mode="after")
    def _labels(self) -> Axis:
        if not self.values:
            raise ValueError("an axis needs at least one value")
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(f"{len(self.labels)} labels for {len(self.values)} values")
        return self


class Sweep(Strict):
    """A scenario template and axes; the cartesian product of the axes' values gives
    scenarios named ``<sweep>.<axis>-<label>...``."""

    name: Name
    description: str = ""
    template: dict[str, Any]
    axes: list[Axis]

    @model_validator(mode="after")
    def _size(self) -> Sweep:
        if not self.axes:
            raise ValueError("a sweep needs at least one axis")
        size = math.prod(len(a.values) for a in self.axes)
        if size > MAX_SCENARIOS:
            raise ValueError(f"the axes give {size} scenarios, more than {MAX_SCENARIOS}")
        return self


class Hypothesis(Strict):
    """A steady-state hypothesis: ``metric``'s mean stays within [min, max].

    Restricted to one topology and/or scenario when given.  A deviation makes the run exit 1.
    """

    name: Name
    metric: Metric
    topology: Name | None = None
    scenario: Name | None = None
    max: Bound | None = None
    min: Bound | None = None

    @model_validator(mode="after")
    def _bound(self) -> Hypothesis:
        if self.max is None and self.min is None:
            raise ValueError("a hypothesis needs max: or min:")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min must be <= max, got {self.min:g} > {self.max:g}")
        return self


class Stopping(Strict):
    """Sequential stopping, for ``replications: auto``.

    Every scenario first runs ``min`` replications in every topology, then ``batch`` more at
    a time, and stops when, for each of ``metrics`` (default: ``blast_radius`` and
    ``vms_lost``), the 95% Student-t interval
    half-width in each topology and of each paired difference between topologies is at most
    the metric's tolerance (the gate's, :data:`sim.experiment.significance.TOLERANCES`), or
    at ``max`` replications.  A scenario whose values do not vary
    stops at ``min``.  The decision reads only the scenario's own replications in order, so
    the result does not depend on the number of processes.
    """

    min: Annotated[int, Field(strict=True, ge=2, le=MAX_REPLICATIONS)] = 5
    max: Replications = 30
    batch: Replications = 5
    metrics: list[Metric] = Field(default_factory=list)

    @model_validator(mode="after")
    def _range(self) -> Stopping:
        if self.min > self.max:
            raise ValueError(f"min must be <= max, got {self.min} > {self.max}")
        return self


class Experiment(Strict):
    """An experiment.

    ``start: steady`` begins with the host up for a while: guests marked ``running`` run,
    autostart has happened, and the enabled units boot (the hypervisor daemon reconnects to
    the running guests).  ``start: boot`` begins at power-on: no guest runs, autostart
    guests start when the daemon hosting their driver first starts.  ``snapshots_s`` adds
    metrics ``daemons_running.t<T>`` (how many daemons run at time T).  Scenarios come from
    ``scenarios``, the expanded ``matrix`` and the expanded ``sweeps``.  ``calibration``
    names a catalog overlay (``kind: catalog-overlay``) whose measured service times replace
    the catalog's (``run --calibration`` overrides it).  ``replications: auto`` runs each
    scenario until its intervals are narrow enough by the ``stopping`` rule
    (:class:`Stopping`; its defaults when absent), as does ``run --replications auto``.
    """

    kind: Literal["experiment"]
    name: Name
    description: str = ""
    topologies: list[str]
    workload: str
    duration_s: PosSeconds
    warmup_s: Seconds = 0.0
    replications: Replications | Literal["auto"] = 10
    stopping: Stopping | None = None
    seed: Seed = 0
    start: Literal["steady", "boot"] = "steady"
    snapshots_s: Annotated[list[Seconds], Field(max_length=MAX_SNAPSHOTS)] = Field(
        default_factory=list
    )
    scenarios: list[Scenario] = Field(default_factory=list)
    matrix: Matrix | None = None
    sweeps: list[Sweep] = Field(default_factory=list)
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    calibration: str | None = None

    @property
    def sequential(self) -> Stopping | None:
        """The stopping rule when ``replications: auto``, else None."""
        if self.replications != "auto":
            return None
        return self.stopping or Stopping()

    @property
    def max_replications(self) -> int:
        """The replications per scenario and topology: the fixed number, or the most
        sequential stopping may run."""
        if isinstance(self.replications, int):
            return self.replications
        return (self.stopping or Stopping()).max

    @field_validator("snapshots_s")
    @classmethod
    def _snapshots(cls, snapshots: list[float], info: ValidationInfo) -> list[float]:
        duration = info.data.get("duration_s")
        late = [t for t in snapshots if duration is not None and t >= duration]
        if late:
            raise ValueError(f"snapshots must be < duration_s ({duration}), got {late}")
        return snapshots

    @field_validator("warmup_s")
    @classmethod
    def _window(cls, warmup_s: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration_s")
        if duration is not None and warmup_s >= duration:
            raise ValueError(f"warmup_s must be < duration_s, got {warmup_s} >= {duration}")
        return warmup_s
