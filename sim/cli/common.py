"""What every verb shares: exit codes, one-line errors and the console.

Exit codes (DESIGN 5): 0 ok; 1 completed but a hypothesis deviated; 2 invalid input (each
problem printed as ``file:line: field: message``, never a traceback); 3 internal failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from sim.errors import ConfigError, SimError, SimulationError

if TYPE_CHECKING:
    from rich.console import Console

EXIT_INVALID = 2
EXIT_INTERNAL = 3


def err(line: str) -> None:
    """Print one line on stderr (a message's line breaks become spaces)."""
    typer.echo(" ".join(line.split("\n")), err=True)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    err(f"warning: {message}")


@contextmanager
def guard() -> Iterator[None]:
    """Map library errors to exit codes; an unexpected exception is one line and exit 3."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except ConfigError as exc:
        for issue in exc.issues:
            err(str(issue))
        raise typer.Exit(EXIT_INVALID) from None
    except SimulationError as exc:
        err(f"internal error: {exc}")
        raise typer.Exit(EXIT_INTERNAL) from None
    except SimError as exc:
        err(f"error: {exc}")
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as exc:
        err(f"internal error: {type(exc).__name__}: {exc}")
        raise typer.Exit(EXIT_INTERNAL) from None


def console() -> Console:
    """The terminal's console; 160 columns for a log file or pipe (wide enough for the wide
    tables) unless ``COLUMNS`` says otherwise."""
    from rich.console import Console

    out = Console()
    if out.is_terminal or os.environ.get("COLUMNS"):
        return out
    return Console(width=160)


def input_path(value: Any) -> Any:
    """An input file argument: as given when it exists, else the shipped file it names
    (``experiments/gate.yaml`` or ``gate`` outside a checkout: see ``models list``)."""
    if isinstance(value, list):
        return [input_path(v) for v in value]
    if value is None or value.exists():
        return value
    from sim import _data

    found = _data.find(value)
    if found is None:
        return value
    err(f"note: {value} is not here: using the shipped {found}")
    return found
