"""Building blocks shared by every schema: strict models, bounded numbers, provenance,
distributions.

Every number an input file can hold is finite (no ``.inf``, no ``.nan``) and within a stated
range, and of its own type (``true`` is not an integer, ``"5"`` is not a number): use the
types below for new fields rather than bare ``int`` / ``float``.

========================  =====================================  ===========================
type                      range                                  for
========================  =====================================  ===========================
:data:`Seconds`           0 <= s <= :data:`MAX_SECONDS`          instants, delays, windows
:data:`PosSeconds`        0 <  s <= :data:`MAX_SECONDS`          periods, timeouts, durations
:data:`Millis`            0 <= ms <= :data:`MAX_MS`              service times, costs
:data:`PosMillis`         0 <  ms <= :data:`MAX_MS`              means, medians, SLOs
:data:`Factor`            1 <= x <= :data:`MAX_FACTOR`           slow-down multipliers
:data:`Rate`              0 <  r <= :data:`MAX_RATE`             Poisson arrivals per second
:data:`Count`             1 <= n <= :data:`MAX_COUNT`            pool sizes, limits, bursts
:data:`Count0`            0 <= n <= :data:`MAX_COUNT`            the same, zero allowed
:data:`Population`        1 <= n <= :data:`MAX_POPULATION`       guests, objects, clients
:data:`Population0`       0 <= n <= :data:`MAX_POPULATION`       the same, zero allowed
:data:`Replications`      1 <= n <= :data:`MAX_REPLICATIONS`     replications
:data:`Seed`              0 <= n <= :data:`MAX_SEED`             seeds
:data:`Bound`             abs(x) <= :data:`MAX_BOUND`            hypothesis bounds
========================  =====================================  ===========================

:func:`bounded_int` and :func:`bounded_float` build others with the same properties.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.constants import MAX_REPLICATIONS, MAX_SEED

MAX_SECONDS = 31_536_000.0
"""One year of simulated time: the longest time any field may hold (s)."""
MAX_MS = 86_400_000.0
"""One day: the longest single service time or cost (ms)."""
MAX_FACTOR = 1_000_000.0
"""The largest slow-down factor."""
MAX_RATE = 10_000.0
"""The highest Poisson call rate of one client call (per second)."""
MAX_COUNT = 1_000_000
"""The largest pool size, connection limit, burst or retry count."""
MAX_POPULATION = 100_000
"""The most guests, objects or clients one declaration may ask for."""
MAX_BOUND = 1e15
"""The largest magnitude of a hypothesis bound."""


def bounded_int(ge: int, le: int) -> Any:
    """A strict integer type with ``ge <= n <= le`` (booleans and strings are refused)."""
    return Annotated[int, Field(strict=True, ge=ge, le=le)]


def bounded_float(ge: float | None = None, le: float = math.inf, gt: float | None = None) -> Any:
    """A strict, finite number type with ``ge <= x`` (or ``gt < x``) and ``x <= le``.

    Integers are accepted (``5`` for ``5.0``); booleans, strings, ``.inf`` and ``.nan`` are not.
    """
    return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=ge, gt=gt, le=le)]


Seconds = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_SECONDS)]
PosSeconds = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_SECONDS)]
Millis = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_MS)]
PosMillis = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_MS)]
Factor = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=1, le=MAX_FACTOR)]
Rate = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=MAX_RATE)]
Bound = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_BOUND, le=MAX_BOUND)]
Count = Annotated[int, Field(strict=True, ge=1, le=MAX_COUNT)]
Count0 = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
Population = Annotated[int, Field(strict=True, ge=1, le=MAX_POPULATION)]
Population0 = Annotated[int, Field(strict=True, ge=0, le=MAX_POPULATION)]
Replications = Annotated[int, Field(strict=True, ge=1, le=MAX_REPLICATIONS)]
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
Probability = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=1)]
KeepaliveInterval = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1, le=MAX_SECONDS)]
"""A server's keepalive interval (s); -1 disables keepalive, as in the daemon's config."""

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]*$"
Name = Annotated[str, Field(pattern=NAME_RE, max_length=128)]
"""An identifier that may also become part of a file name: no slashes, no '..' prefix."""

SAFE_NAME = re.compile(NAME_RE)


class Strict(BaseModel):
    """Base of every schema model: unknown keys are errors, instances are immutable, values
    are of their field's own type (strict: no ``true`` for an integer, no ``"5"`` for a
    number) and numbers are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Sourced(Strict):
    """A block whose numbers must say where they come from.

    Exactly one convention (CONVENTIONS 8): ``source:`` cites LIBVIRT-FACTS or an upstream
    reference; ``assumption:`` gives the reason for a value nobody measured.  At least one of
    the two is required; both may be given (a sourced structure with an assumed number).
    """

    source: str | None = None
    assumption: str | None = None

    @model_validator(mode="after")
    def _has_provenance(self) -> Sourced:
        if not (self.source or self.assumption):
            raise ValueError("numbers need provenance: give 'source:' or 'assumption:'")
        return self


class Constant(Strict):
    """A fixed time (``dist: constant``): always ``value_ms`` milliseconds."""

    dist: Literal["constant"]
    value_ms: Millis

    @property
    def mean_ms(self) -> float:
        """Mean in milliseconds: the value itself."""
        return self.value_ms


class Exponential(Strict):
    """Exponentially distributed time (``dist: exponential``), mean ``mean_ms`` ms."""

    dist: Literal["exponential"]
    mean_ms: PosMillis


class Uniform(Strict):
    """Uniform time (``dist: uniform``) from ``low_ms`` to ``high_ms`` (>= ``low_ms``) ms."""

    dist: Literal["uniform"]
    low_ms: Millis
    high_ms: Millis

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high_ms < self.low_ms:
            raise ValueError(f"high_ms must be >= low_ms, got {self.high_ms} < {self.low_ms}")
        return self

    @property
    def mean_ms(self) -> float:
        """Mean in milliseconds: the midpoint of the range."""
        return (self.low_ms + self.high_ms) / 2


class LogNormal(Strict):
    """Log-normal service time given by its median and the sigma of log(time)."""

    dist: Literal["lognormal"]
    median_ms: PosMillis
    sigma: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0, le=4)]

    @property
    def mean_ms(self) -> float:
        """Mean in milliseconds: ``median_ms * exp(sigma**2 / 2)``."""
        return self.median_ms * math.exp(self.sigma**2 / 2)


Distribution = Annotated[Constant | Exponential | Uniform | LogNormal, Field(discriminator="dist")]
"""A service-time or cost distribution, in milliseconds."""
