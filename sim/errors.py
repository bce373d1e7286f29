"""The exception tree of virtchaos.

::

    SimError                      root; the CLI maps it to an exit code
    ├── ConfigError               bad input (exit 2): one or more ConfigIssue
    │   └── (raised by loading, schema and cross-reference checks)
    ├── ResultsError              a results folder is missing or would be overwritten (exit 2)
    └── SimulationError           the engine reached an impossible state (exit 3)

Messages are short and lowercase, and name the value and the rule, e.g.
``fault 'f1': duration_s must be > 0, got -3``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class SimError(Exception):
    """Root of every error virtchaos raises on purpose."""


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in one input file.

    Attributes
    ----------
    file : the file the problem is in (as given on the command line or resolved from a reference)
    line : 1-based line number, or 0 when unknown
    field : dotted path of the offending field, e.g. ``daemons[2].servers[0].max_workers``
    message : what rule was broken
    """

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ConfigError(SimError):
    """Invalid input; carries every problem found, not only the first."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(set(issues))
        super().__init__("\n".join(str(i) for i in self.issues))

    @classmethod
    def single(cls, file: str | Path, message: str, field: str = "", line: int = 0) -> ConfigError:
        """A ConfigError of one issue: ``message`` on ``field`` of ``file`` (``line`` 0: none)."""
        return cls([ConfigIssue(str(file), line, field, message)])


class ResultsError(SimError):
    """A results folder cannot be read or written as asked."""


class SimulationError(SimError):
    """The engine reached a state the model rules out (a bug, not bad input)."""
