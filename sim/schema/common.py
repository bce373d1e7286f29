"""Building blocks shared by every schema: strict models, provenance, distributions."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]*$"
Name = Annotated[str, Field(pattern=NAME_RE, max_length=128)]
"""An identifier that may also become part of a file name: no slashes, no '..' prefix."""

SAFE_NAME = re.compile(NAME_RE)


class Strict(BaseModel):
    """Base of every schema model: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    dist: Literal["constant"]
    value_ms: Annotated[float, Field(ge=0)]

    @property
    def mean_ms(self) -> float:
        return self.value_ms


class Exponential(Strict):
    dist: Literal["exponential"]
    mean_ms: Annotated[float, Field(gt=0)]


class Uniform(Strict):
    dist: Literal["uniform"]
    low_ms: Annotated[float, Field(ge=0)]
    high_ms: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high_ms < self.low_ms:
            raise ValueError(f"high_ms must be >= low_ms, got {self.high_ms} < {self.low_ms}")
        return self

    @property
    def mean_ms(self) -> float:
        return (self.low_ms + self.high_ms) / 2


class LogNormal(Strict):
    """Log-normal service time given by its median and the sigma of log(time)."""

    dist: Literal["lognormal"]
    median_ms: Annotated[float, Field(gt=0)]
    sigma: Annotated[float, Field(ge=0, le=4)]

    @property
    def mean_ms(self) -> float:
        import math

        return self.median_ms * math.exp(self.sigma**2 / 2)


Distribution = Annotated[Constant | Exponential | Uniform | LogNormal, Field(discriminator="dist")]
"""A service-time or cost distribution, in milliseconds."""
