"""The ``virtchaos`` command line (also ``python -m sim``).

Thin by design: each verb parses its arguments, calls library functions and maps errors to
exit codes (DESIGN 5): 0 ok; 1 completed but a hypothesis deviated; 2 invalid input (each
problem printed as ``file:line: field: message``, never a traceback); 3 internal failure.

Verbs still to come, each to be added here as one more ``@app.command()`` over its library
module: ``report``, ``gate``, ``diff``, ``import-units``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sim import analysis, render
from sim.documents import json_schemas, validate_document, write_json_schemas
from sim.dot import Highlight, collapse_guests, to_dot, write_graph
from sim.errors import ConfigError, SimError, SimulationError
from sim.model import System, WorkloadModel, load_system, load_workload

DEFAULT_WORKLOAD = Path("..") / "workloads" / "virt-host.yaml"
"""Where ``analyze`` and ``graph`` look for a workload, relative to the model's folder."""

EXIT_INVALID = 2
EXIT_INTERNAL = 3

app = typer.Typer(
    name="virtchaos",
    help="Fault-isolation chaos simulator for daemon architectures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class FaultMode(enum.StrEnum):
    crash = "crash"
    hang = "hang"


def _err(line: str) -> None:
    typer.echo(" ".join(line.split("\n")), err=True)


@contextmanager
def _guard() -> Iterator[None]:
    """Map library errors to exit codes; an unexpected exception is one line and exit 3."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except ConfigError as err:
        for issue in err.issues:
            _err(str(issue))
        raise typer.Exit(EXIT_INVALID) from None
    except SimulationError as err:
        _err(f"internal error: {err}")
        raise typer.Exit(EXIT_INTERNAL) from None
    except SimError as err:
        _err(f"error: {err}")
        raise typer.Exit(EXIT_INVALID) from None
    except Exception as err:
        _err(f"internal error: {type(err).__name__}: {err}")
        raise typer.Exit(EXIT_INTERNAL) from None


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _load(model: Path, workload: Path | None) -> tuple[System, WorkloadModel]:
    system = load_system(model)
    if workload is None:
        workload = model.parent / DEFAULT_WORKLOAD
        if not workload.is_file():
            msg = f"no --workload given and the default {DEFAULT_WORKLOAD} is absent"
            raise ConfigError.single(model, msg, field="--workload")
    return system, load_workload(workload)


ModelArg = Annotated[Path, typer.Argument(help="A topology file (kind: topology).")]
WorkloadOpt = Annotated[
    Path | None,
    typer.Option("--workload", "-w", help=f"Workload file [default: MODEL's {DEFAULT_WORKLOAD}]"),
]


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Model, workload or experiment files.")],
) -> None:
    """Check files of any kind; print every problem as file:line: field: message."""
    failed = False
    with _guard():
        for path in files:
            try:
                typer.echo(str(validate_document(path)))
            except ConfigError as err:
                failed = True
                for issue in err.issues:
                    _err(str(issue))
    if failed:
        raise typer.Exit(EXIT_INVALID)


@app.command()
def analyze(
    model: ModelArg,
    workload: WorkloadOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Static blast radius: what each daemon's and driver's fault reaches; SPOFs; cycles."""
    with _guard():
        system, wl = _load(model, workload)
        result = analysis.analyze(system, wl)
        if as_json:
            typer.echo(result.to_json())
        else:
            _console().print(render.analysis_view(result))


@app.command()
def graph(
    model: ModelArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .dot, .svg or .png.")],
    workload: WorkloadOpt = None,
    highlight: Annotated[
        str | None,
        typer.Option(help="Colour what a fault reaches: KIND:NAME, e.g. driver:NAME."),
    ] = None,
    mode: Annotated[FaultMode, typer.Option(help="Fault mode for --highlight.")] = FaultMode.crash,
    per_guest: Annotated[
        bool, typer.Option("--per-guest", help="One node per guest, not per group.")
    ] = False,
) -> None:
    """Draw the dependency graph (units, daemons, pools, drivers, guests)."""
    with _guard():
        system, wl = _load(model, workload)
        g = analysis.build_graph(system, wl)
        hl = Highlight()
        if highlight is not None:
            try:
                fault_mode: analysis.Mode = "hang" if mode is FaultMode.hang else "crash"
                r = analysis.highlight(system, wl, highlight, g, fault_mode)
            except ValueError as err:
                _err(f"error: --highlight: {err}")
                raise typer.Exit(EXIT_INVALID) from None
            hl = Highlight(frozenset(r.seeds), frozenset(r.nodes), frozenset(r.exhausted))
        if not per_guest:
            g, mapping = collapse_guests(g)
            hl = hl.mapped(mapping)
        title = f"{system.name} / {wl.name}" + (f" / {mode.value} {highlight}" if highlight else "")
        files = write_graph(to_dot(g, title, hl), out)
        typer.echo(f"wrote {files.dot}" + (f" and {files.rendered}" if files.rendered else ""))
        if files.note:
            typer.echo(files.note)


@app.command()
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write <kind>.schema.json files here.")
    ] = None,
) -> None:
    """Export the JSON Schema of every document kind (for editors and external checks)."""
    with _guard():
        if out is None:
            for kind, s in json_schemas().items():
                fields = ", ".join(s.get("properties", {}))
                typer.echo(f"{kind:16} {s.get('title', '')}: {fields}")
            return
        for path in write_json_schemas(out):
            typer.echo(f"wrote {path}")


EXIT_DEVIATED = 1


@app.command()
def run(
    experiment: Annotated[Path, typer.Argument(help="An experiment file (kind: experiment).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Results folder [default: results/<experiment>/<run-id>]."),
    ] = None,
    replications: Annotated[
        int | None, typer.Option(min=1, help="Replications [default: the experiment's].")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Seed [default: the experiment's].")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    force: Annotated[bool, typer.Option(help="Overwrite a finished results folder.")] = False,
) -> None:
    """Run every scenario in every topology; write the results folder; print a summary.

    Exit 0 when every steady-state hypothesis held, 1 when one deviated.  An interrupted
    run (Ctrl-C) keeps what finished in runs.jsonl: run the same command again to resume.
    """
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    from sim.runner import run_experiment

    with _guard():
        columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("replications", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                outcome = run_experiment(
                    experiment, out, replications, seed, jobs, force, progress=progress
                )
            except KeyboardInterrupt:
                _err("interrupted: finished runs are kept; run the same command to resume")
                raise typer.Exit(130) from None
        console = _console()
        console.print(render.summary_table(outcome.summary))
        deviated = [h for h in outcome.hypotheses if not h["held"]]
        if outcome.hypotheses:
            held = len(outcome.hypotheses) - len(deviated)
            console.print(f"hypotheses: {held} held, {len(deviated)} deviated", markup=False)
        for h in deviated:
            bounds = f"min {h['min']}, max {h['max']}"
            console.print(
                f"  DEVIATED {h['hypothesis']} ({h['scenario']} / {h['topology']}): "
                f"{h['metric']} = {h['mean']:g}, expected {bounds}",
                markup=False,
            )
        if outcome.resumed:
            console.print(f"resumed: {outcome.resumed} runs were already done")
        typer.echo(f"results: {outcome.folder}")
        if not all(h["held"] for h in outcome.hypotheses):
            raise typer.Exit(EXIT_DEVIATED)


@app.command()
def replay(
    results: Annotated[Path, typer.Argument(help="A results folder written by `run`.")],
    replication: Annotated[int, typer.Option(min=0, help="Which replication (0-based).")],
    scenario: Annotated[str | None, typer.Option(help="Only this scenario.")] = None,
    topology: Annotated[str | None, typer.Option(help="Only this topology.")] = None,
    limit: Annotated[int, typer.Option(help="Timeline lines to print per run (0: all).")] = 60,
) -> None:
    """Re-run one replication with its full event trace (traces/*.jsonl) and a timeline."""
    from sim.replay import changed_inputs, load_manifest
    from sim.replay import replay as do_replay

    with _guard():
        changed = changed_inputs(load_manifest(results))
        for name in changed:
            _err(f"warning: {name} changed since the run; the replay may differ")
        console = _console()
        for r in do_replay(results, replication, scenario, topology):
            console.print(render.timeline(r.task, r.events, limit))
            same = "matches runs.jsonl" if r.matches else "DIFFERS from runs.jsonl"
            console.print(f"trace: {r.trace_file} ({len(r.events)} events; metrics {same})")


def main() -> None:
    """Entry point of the ``virtchaos`` script."""
    app(prog_name="virtchaos")
