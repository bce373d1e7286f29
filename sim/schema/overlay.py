"""A catalog overlay (``kind: catalog-overlay``): measured service times that replace the
catalog's assumed ones for the procedures it names (``run --calibration``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sim.schema.common import Distribution, Name, Sourced, Strict


class Spread(Strict):
    """What was measured: sample size and quantiles of the observed times (ms)."""

    n: Annotated[int, Field(ge=1)]
    p10_ms: float
    median_ms: float
    p90_ms: float
    max_ms: float


class MeasuredProcedure(Sourced):
    """A procedure's fitted service-time distribution and the sample it came from."""

    name: Name
    service: Distribution
    measured: Spread


class Measurement(Sourced):
    """A host measurement that is not a procedure's service time (daemon start ...)."""

    name: Name
    measured: Spread


class CatalogOverlay(Sourced):
    """The ``kind: catalog-overlay`` document: measured service times for the named ``catalog``.

    ``procedures`` replace those procedures' service distributions; ``measurements`` are other host
    measurements kept for the record; ``skipped`` names the procedures not measured, with the
    reason.
    """

    kind: Literal["catalog-overlay"]
    name: Name
    catalog: Name = Field(description="the name of the catalog this overlay applies to")
    procedures: list[MeasuredProcedure]
    measurements: list[Measurement] = Field(default_factory=list)
    skipped: dict[Name, str] = Field(default_factory=dict)
