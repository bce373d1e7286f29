"""An experiment: topologies x workload x scenarios (faults, actions), hypotheses, replications."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sim.schema.common import Name, Strict
from sim.schema.workload import ClientDecl

PosFloat = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]

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

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        given = [k for k, v in self.model_dump().items() if v is not None]
        if len(given) != 1:
            raise ValueError(f"a target names exactly one of {list(type(self).model_fields)}")
        return self

    @property
    def key(self) -> tuple[str, str]:
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
    ``factor``.  ``guest-crash`` kills guests (a control).  ``duration_s: null`` lasts until
    the process restarts (or the end of the run).
    """

    kind: Literal["crash", "crash-loop", "hang", "slow", "guest-crash"]
    target: Target
    scope: Literal["process", "driver", "object"] | None = None
    at_s: NonNeg
    duration_s: PosFloat | None = None
    factor: Annotated[float, Field(ge=1)] = 10.0
    count: Annotated[int, Field(ge=1)] = 100
    after_start_s: NonNeg = 0.5

    @model_validator(mode="after")
    def _scope(self) -> Fault:
        if self.kind == "hang" and self.scope is None:
            raise ValueError("a hang needs scope: process, driver or object")
        if self.kind != "hang" and self.scope is not None:
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
    at_s: NonNeg
    uri: str | None = None

    @model_validator(mode="after")
    def _guest_target(self) -> Action:
        if self.kind.startswith("guest-") and self.target.guest is None:
            raise ValueError(f"a {self.kind} action targets a guest")
        return self


class Scenario(Strict):
    """One scenario: faults, operator actions, and clients added to the workload's own."""

    name: Name
    description: str = ""
    clients: list[ClientDecl] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)


class Hypothesis(Strict):
    """A steady-state hypothesis: ``metric``'s mean stays within [min, max].

    Restricted to one topology and/or scenario when given.  A deviation makes the run exit 1.
    """

    name: Name
    metric: Metric
    topology: Name | None = None
    scenario: Name | None = None
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> Hypothesis:
        if self.max is None and self.min is None:
            raise ValueError("a hypothesis needs max: or min:")
        return self


class Experiment(Strict):
    """An experiment.

    ``start: steady`` begins with the host up for a while: guests marked ``running`` run,
    autostart has happened, and the enabled units boot (the hypervisor daemon reconnects to
    the running guests).  ``start: boot`` begins at power-on: no guest runs, autostart
    guests start when the daemon hosting their driver first starts.
    """

    kind: Literal["experiment"]
    name: Name
    description: str = ""
    topologies: list[str]
    workload: str
    duration_s: PosFloat
    warmup_s: NonNeg = 0.0
    replications: Annotated[int, Field(ge=1)] = 10
    seed: Annotated[int, Field(ge=0)] = 0
    start: Literal["steady", "boot"] = "steady"
    scenarios: list[Scenario]
    hypotheses: list[Hypothesis] = Field(default_factory=list)

    @field_validator("warmup_s")
    @classmethod
    def _window(cls, warmup_s: float, info: ValidationInfo) -> float:
        duration = info.data.get("duration_s")
        if duration is not None and warmup_s >= duration:
            raise ValueError(f"warmup_s must be < duration_s, got {warmup_s} >= {duration}")
        return warmup_s
