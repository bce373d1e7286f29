"""The ``virtchaos`` command line (also ``python -m sim``).

Thin by design: each verb parses its arguments, calls library functions and maps errors to
exit codes (DESIGN 5): 0 ok; 1 completed but a hypothesis deviated; 2 invalid input (each
problem printed as ``file:line: field: message``, never a traceback); 3 internal failure.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from sim.cli import common
from sim.constants import MAX_REPLICATIONS, MAX_SEED
from sim.errors import ConfigError

if TYPE_CHECKING:
    from sim.model.resolved import System, WorkloadModel

# Heavy modules (the models and their schemas, networkx, numpy, simpy, matplotlib) are
# imported inside the verbs that need them, so that `--help` and completion start fast.

DEFAULT_WORKLOAD = Path("..") / "workloads" / "virt-host.yaml"
"""Where ``analyze`` and ``graph`` look for a workload, relative to the model's folder."""


HELP_MARKUP: Any = None
"""Plain (click) help: readable at 80 columns, and ``[default: ...]`` in a help text is
shown as written (rich markup would eat it as a tag)."""

app = typer.Typer(
    name="virtchaos",
    help="Fault-isolation chaos simulator for daemon architectures.",
    no_args_is_help=True,
    rich_markup_mode=HELP_MARKUP,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from sim.constants import VERSION as __version__

        typer.echo(f"virtchaos {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Fault-isolation chaos simulator for daemon architectures."""


class OutputFormat(enum.StrEnum):
    """``--format``: text for people, JSON for programs."""

    text = "text"
    json = "json"


FormatOpt = Annotated[
    OutputFormat, typer.Option("--format", help="text for people, json for programs.")
]


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, default=str)


class Annotations(enum.StrEnum):
    """``gate --annotations``: GitHub workflow commands, none, or when ``GITHUB_ACTIONS`` is set."""

    auto = "auto"
    github = "github"
    none = "none"


class FaultMode(enum.StrEnum):
    """``graph --mode``: the kind of fault whose reach ``--highlight`` colours."""

    crash = "crash"
    hang = "hang"


def _load(model: Path, workload: Path | None) -> tuple[System, WorkloadModel]:
    from sim.model.load import load_system, load_workload

    system = load_system(model)
    if workload is None:
        workload = model.parent / DEFAULT_WORKLOAD
        if not workload.is_file():
            msg = f"no --workload given and the default {DEFAULT_WORKLOAD} is absent"
            raise ConfigError.single(model, msg, field="--workload")
    return system, load_workload(workload)


ModelArg = Annotated[
    Path, typer.Argument(help="A topology file (kind: topology).", callback=common.input_path)
]
ExperimentArg = Annotated[
    Path,
    typer.Argument(
        help="An experiment file (kind: experiment), or a shipped experiment's name.",
        callback=common.input_path,
    ),
]
WorkloadOpt = Annotated[
    Path | None,
    typer.Option(
        "--workload",
        "-w",
        help=f"Workload file [default: MODEL's {DEFAULT_WORKLOAD}]",
        callback=common.input_path,
    ),
]


@app.command()
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="Model, workload or experiment files.", callback=common.input_path),
    ],
    as_format: FormatOpt = OutputFormat.text,
) -> None:
    """Check model, workload and experiment files.

    Every problem is printed as file:line: field: message; exit 2 if there is one.
    """
    from sim.model.documents import validate_document

    failed = False
    docs: list[dict[str, Any]] = []
    with common.guard():
        for path in files:
            try:
                found = validate_document(path)
            except ConfigError as err:
                failed = True
                issues = [dataclasses.asdict(i) for i in err.issues]
                docs.append({"path": str(path), "ok": False, "issues": issues})
                if as_format is OutputFormat.text:
                    for issue in err.issues:
                        common.err(str(issue))
                continue
            docs.append(
                {
                    "path": found.path,
                    "ok": True,
                    "kind": found.kind,
                    "name": found.name,
                    "counts": dict((what, n) for what, n in found.counts),
                }
            )
            if as_format is OutputFormat.text:
                typer.echo(str(found))
    if as_format is OutputFormat.json:
        typer.echo(_json(docs))
    if failed:
        raise typer.Exit(common.EXIT_INVALID)


@app.command()
def analyze(
    model: ModelArg,
    workload: WorkloadOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Static blast radius of each daemon and driver fault.

    What each daemon's and driver's fault reaches; single points of failure; unit cycles.
    """
    from sim.cli import render
    from sim.static import analysis

    with common.guard():
        system, wl = _load(model, workload)
        result = analysis.analyze(system, wl)
        if as_json:
            typer.echo(result.to_json())
        else:
            common.console().print(render.analysis_view(result))


@app.command()
def graph(
    model: ModelArg,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output: .dot, .svg or .png; - for DOT on stdout.")
    ],
    workload: WorkloadOpt = None,
    highlight: Annotated[
        str | None,
        typer.Option(help="Colour what a fault reaches: KIND:NAME, e.g. driver:NAME."),
    ] = None,
    mode: Annotated[FaultMode, typer.Option(help="Fault mode for --highlight.")] = FaultMode.crash,
    per_guest: Annotated[
        bool, typer.Option("--per-guest", help="One node per guest, not per group.")
    ] = False,
    from_: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            metavar="GLOB",
            help="Only edges from nodes matching this glob, as kind:name or name "
            "(repeatable), e.g. 'client:*'.",
        ),
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            metavar="GLOB",
            help="Only edges to nodes matching this glob (repeatable), e.g. 'daemon:*'.",
        ),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            metavar="KIND",
            help="Only nodes of this kind (repeatable): unit, daemon, server, driver, "
            "proc, object, guest, op (a guest operation), client.",
        ),
    ] = None,
) -> None:
    """Draw the dependency graph (DOT, SVG or PNG).

    Units, daemons, pools, drivers and guests, with what a fault reaches coloured.
    """
    from sim.static import analysis
    from sim.static.dot import Highlight, collapse_guests, filter_graph, to_dot, write_graph

    with common.guard():
        system, wl = _load(model, workload)
        g = analysis.build_graph(system, wl)
        hl = Highlight()
        if highlight is not None:
            try:
                fault_mode: analysis.Mode = "hang" if mode is FaultMode.hang else "crash"
                r = analysis.highlight(system, wl, highlight, g, fault_mode)
            except ValueError as err:
                common.err(f"error: --highlight: {err}")
                raise typer.Exit(common.EXIT_INVALID) from None
            hl = Highlight(frozenset(r.seeds), frozenset(r.nodes), frozenset(r.exhausted))
        if not per_guest:
            g, mapping = collapse_guests(g)
            hl = hl.mapped(mapping)
        if from_ or to or kind:
            g = filter_graph(g, from_ or (), to or (), kind or ())
            if not g:
                common.err("error: --from/--to/--kind: no edge of the graph matches")
                raise typer.Exit(common.EXIT_INVALID)
        title = f"{system.name} / {wl.name}" + (f" / {mode.value} {highlight}" if highlight else "")
        text = to_dot(g, title, hl)
        if str(out) == "-":
            typer.echo(text, nl=False)
            return
        files = write_graph(text, out)
        typer.echo(f"wrote {files.dot} ({len(g)} nodes, {g.number_of_edges()} edges)")
        if files.rendered:
            typer.echo(f"wrote {files.rendered}")
        if files.note:
            common.err(f"error: {files.note}")
            raise typer.Exit(common.EXIT_INVALID)


@app.command()
def schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write <kind>.schema.json files here.")
    ] = None,
) -> None:
    """Export the JSON Schema of every document kind.

    For editors and external checks.
    """
    from sim.model.documents import json_schemas, write_json_schemas

    with common.guard():
        if out is None:
            for kind, s in json_schemas().items():
                fields = ", ".join(s.get("properties", {}))
                typer.echo(f"{kind:16} {s.get('title', '')}: {fields}")
            return
        for path in write_json_schemas(out):
            typer.echo(f"wrote {path}")


EXIT_DEVIATED = 1
JOBS_HELP = "Parallel worker processes (at most the machine's cores unless --force-jobs)."
ForceJobsOpt = Annotated[
    bool, typer.Option("--force-jobs", help="Allow more --jobs than the machine has cores.")
]


def _mean(h: dict[str, Any]) -> str:
    """A hypothesis' mean for the terminal (with why it is undefined, when it is)."""
    mean = "n/a" if h["mean"] is None else f"{h['mean']:g}"
    return mean + (f" ({h['undefined']})" if "undefined" in h else "")


def _cap_jobs(jobs: int, force: bool) -> int:
    """``jobs``, lowered to the machine's cores unless ``force`` (with a note)."""
    from sim.experiment.workers import max_jobs

    cores = max_jobs()
    if jobs <= cores or force:
        return jobs
    common.err(f"note: --jobs {jobs} is more than the {cores} cores here: using {cores}")
    return cores


class _ProgressLines:
    """Progress without a terminal (CI logs): one line on stderr at each tenth of the runs
    and at most every :attr:`EVERY_S` seconds between, never a redrawn bar."""

    EVERY_S = 30.0

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()
        self._last = self._start
        self._tenth = -1

    def update(self, done: int, total: int) -> None:
        now = self._clock()
        tenth = done * 10 // total if total else 10
        if tenth == self._tenth and now - self._last < self.EVERY_S:
            return
        self._tenth, self._last = tenth, now
        pct = 100 * done // total if total else 100
        common.err(f"progress: {done}/{total} runs ({pct}%), {now - self._start:.0f} s elapsed")


class Executor(enum.StrEnum):
    """Where ``run`` sends its tasks."""

    local = "local"
    dask = "dask"


@app.command()
def run(
    experiment: ExperimentArg,
    out: Annotated[
        Path | None,
        typer.Option(help="Results folder [default: results/<experiment>/<run-id>]."),
    ] = None,
    replications: Annotated[
        str | None,
        typer.Option(
            help="Replications per scenario and topology, or 'auto': run each scenario until "
            "its intervals are narrow enough (the experiment's stopping: rule) "
            "[default: the experiment's].",
            metavar="N|auto",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, max=MAX_SEED, help="Seed [default: the experiment's].")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help=JOBS_HELP)] = 1,
    force: Annotated[
        bool, typer.Option(help="Replace a results folder of ours (finished or not), whole.")
    ] = False,
    force_jobs: ForceJobsOpt = False,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Run only shard K of N (whole scenarios; join the shards with merge).",
            metavar="K/N",
        ),
    ] = None,
    executor: Annotated[
        Executor,
        typer.Option(help="Where the runs go: local processes, or a Dask cluster."),
    ] = Executor.local,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address, e.g. tcp://HOST:8786 [default: a local cluster "
            "of --jobs workers]."
        ),
    ] = None,
    size_check: Annotated[
        bool,
        typer.Option(
            help="Refuse, before starting, runs estimated too large (sim.experiment.budget)."
        ),
    ] = True,
    calibration: Annotated[
        Path | None, typer.Option(help="A catalog overlay of measured service times.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Only print the plan: scenarios, runs, estimated size and time."
        ),
    ] = False,
    as_format: FormatOpt = OutputFormat.text,
) -> None:
    """Run an experiment: every scenario in every topology.

    Writes the results folder and prints a summary.

    Exit 0 when every steady-state hypothesis held, 1 when one deviated.  --out must be
    new, empty or a results folder of ours.  An interrupted run (Ctrl-C, a crash) keeps
    what finished in runs.jsonl: run the same command again to resume.
    """
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    from sim.cli import render
    from sim.experiment.runner import Interrupted, run_experiment

    reps = _replications(replications)
    part = _shard(shard)
    with common.guard():
        jobs = _cap_jobs(jobs, force_jobs) if executor is Executor.local else jobs
        if dry_run:
            fixed = reps if isinstance(reps, int) else None
            _print_plan(experiment, fixed, jobs, calibration, as_format)
            return
        columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeElapsedColumn())
        err = Console(stderr=True)
        try:
            with Progress(
                *columns, console=err, transient=True, disable=not err.is_terminal
            ) as bar:
                task = bar.add_task("replications", total=None)
                lines = _ProgressLines()

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)
                    if not err.is_terminal:
                        lines.update(done, total)

                def warn(message: str) -> None:
                    bar.console.print(f"warning: {message}", markup=False, soft_wrap=True)

                outcome = run_experiment(
                    experiment,
                    out,
                    reps,
                    seed,
                    jobs,
                    force,
                    progress,
                    warn,
                    size_check=size_check,
                    calibration=calibration,
                    shard=part,
                    executor=executor.value,
                    scheduler=scheduler,
                )
        except KeyboardInterrupt as exc:
            if isinstance(exc, Interrupted):
                common.err(f"interrupted: {exc.done} of {exc.total} runs kept in {exc.folder}")
                common.err("run the same command again to resume")
            else:
                common.err("interrupted before the runs started")
            raise typer.Exit(130) from None
        if as_format is OutputFormat.json:
            typer.echo(
                _json(
                    {
                        "folder": str(outcome.folder),
                        "resumed": outcome.resumed,
                        "summary": outcome.summary,
                    }
                )
            )
            if not all(h["held"] for h in outcome.hypotheses):
                raise typer.Exit(EXIT_DEVIATED)
            return
        console = common.console()
        console.print(render.summary_table(outcome.summary, console.width))
        deviated = [h for h in outcome.hypotheses if not h["held"]]
        if outcome.hypotheses:
            held = len(outcome.hypotheses) - len(deviated)
            console.print(f"hypotheses: {held} held, {len(deviated)} deviated", markup=False)
        for h in deviated:
            bounds = f"min {h['min']}, max {h['max']}"
            console.print(
                f"  DEVIATED {h['hypothesis']} ({h['scenario']} / {h['topology']}): "
                f"{h['metric']} = {_mean(h)}, expected {bounds}",
                markup=False,
            )
        if outcome.resumed:
            console.print(f"resumed: {outcome.resumed} runs were already done")
        typer.echo(f"results: {outcome.folder}")
        if not all(h["held"] for h in outcome.hypotheses):
            raise typer.Exit(EXIT_DEVIATED)


def _replications(text: str | None) -> int | Literal["auto"] | None:
    """``--replications``: a count in range, or ``auto``."""
    if text is None or text == "auto":
        return text  # type: ignore[return-value]
    if not text.isdigit() or not 1 <= int(text) <= MAX_REPLICATIONS:
        raise typer.BadParameter(
            f"a number from 1 to {MAX_REPLICATIONS}, or auto; got {text!r}",
            param_hint="--replications",
        )
    return int(text)


def _shard(text: str | None) -> Any:
    """``--shard K/N``."""
    if text is None:
        return None
    from sim.experiment.runner import Shard

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard") from None


@app.command()
def merge(
    shards: Annotated[
        list[Path], typer.Argument(help="The results folders of shards 1..N (run --shard K/N).")
    ],
    out: Annotated[Path, typer.Option(help="The merged results folder.")],
    force: Annotated[
        bool, typer.Option(help="Replace a results folder of ours (finished or not), whole.")
    ] = False,
) -> None:
    """Join a run's shards into one results folder.

    The folder is the one the whole run would have written, its summary byte-identical.
    The shards must be finished runs of the same inputs, one per shard index.
    """
    from sim.cli import render
    from sim.experiment.merge import merge_shards

    with common.guard():
        outcome = merge_shards(shards, out, force, common.warn)
        console = common.console()
        console.print(render.summary_table(outcome.summary, console.width))
        typer.echo(f"merged {len(shards)} shards, {outcome.resumed} runs: {outcome.folder}")


def _print_plan(
    experiment: Path,
    replications: int | None,
    jobs: int,
    calibration: Path | None,
    as_format: OutputFormat,
) -> None:
    from sim.cli.discovery import plan
    from sim.model.load import load_experiment

    model = load_experiment(experiment, calibration)
    p = plan(model, replications or model.doc.max_replications, jobs)
    if as_format is OutputFormat.json:
        typer.echo(_json(p))
        return
    typer.echo(
        _wrap(
            f"experiment {p['experiment']}: {len(p['scenarios'])} scenarios x "
            f"{len(p['topologies'])} topologies ({', '.join(p['topologies'])}) x "
            f"{p['replications']} replications = {p['runs']} runs of {p['duration_s']:g} s "
            f"simulated, workload {p['workload']}",
            "",
        )
    )
    for sc in p["scenarios"]:
        clients = [f"clients {', '.join(sc['clients'])}"] if sc["clients"] else []
        what = "; ".join(sc["faults"] + sc["actions"] + clients)
        typer.echo(_wrap(f"{sc['scenario']}" + (f": {what}" if what else ""), "  ", "      "))
    typer.echo(
        _wrap(
            f"estimated {p['estimated_events']:.3g} events: about "
            f"{_duration(p['estimated_cpu_s'])} of CPU, {_duration(p['estimated_wall_s'])} "
            f"with --jobs {jobs} (an order of magnitude)",
            "",
        )
    )


def _wrap(text: str, indent: str = "    ", subsequent: str | None = None) -> str:
    """``text`` filled to 80 columns; names with hyphens are never split."""
    import textwrap

    return textwrap.fill(
        text,
        80,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ------------------------------------------------------------------ list
class ListWhat(enum.StrEnum):
    """What ``list`` lists."""

    faults = "faults"
    targets = "targets"
    metrics = "metrics"
    profiles = "profiles"


@app.command("list")
def list_cmd(
    what: Annotated[ListWhat, typer.Argument(help="What to list.")],
    model: Annotated[
        Path,
        typer.Option(
            "--model", "-m", help="The topology whose targets to list.", callback=common.input_path
        ),
    ] = Path("models/libvirt/modular.yaml"),
    workload: WorkloadOpt = None,
    as_format: FormatOpt = OutputFormat.text,
) -> None:
    """List faults, targets, metrics or client profiles.

    What an experiment can name.  faults: fault, scope, action kinds and target fields
    (the schema); targets: every name a target can take in --model and its workload;
    metrics: what a run measures; profiles: the client profiles of the workload.
    """
    from sim.cli import discovery

    with common.guard():
        if what is ListWhat.faults:
            data: Any = discovery.faults()
        elif what is ListWhat.metrics:
            data = discovery.metrics()
        else:
            system, wl = _load(model, workload)
            data = (
                discovery.targets(system, wl)
                if what is ListWhat.targets
                else discovery.profiles(wl)
            )
        if as_format is OutputFormat.json:
            typer.echo(_json(data))
            return
        _print_listing(what, data)


def _print_listing(what: ListWhat, data: Any) -> None:
    wrapped = _wrap

    if what is ListWhat.faults:
        typer.echo("fault kinds: " + ", ".join(data["faults"]))
        typer.echo("hang scopes: " + ", ".join(data["scopes"]))
        typer.echo("action kinds: " + ", ".join(data["actions"]))
        typer.echo("target fields: " + ", ".join(data["targets"]) + " (exactly one per target)")
        for title, doc in (("faults", data["faults_doc"]), ("actions", data["actions_doc"])):
            typer.echo(f"{title}:")
            for para in doc.split("\n\n")[1:] if title == "faults" else doc.split("\n\n"):
                typer.echo(wrapped(" ".join(para.replace("``", "").split())))
    elif what is ListWhat.targets:
        for field, names in data.items():
            typer.echo(wrapped(f"{field} ({len(names)}): " + ", ".join(names), "", "    "))
    elif what is ListWhat.metrics:
        for m in data:
            mark = "*" if m["headline"] else " "
            typer.echo(f"{mark} {m['metric']}")
            typer.echo(wrapped(m["meaning"]))
        typer.echo("* headline metrics: in run's summary table, the report and the gate")
    else:
        for p in data:
            typer.echo(f"{p['profile']}: " + ", ".join(p["calls"]))
            if p["description"]:
                typer.echo(wrapped(p["description"]))


SubjectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--subject",
        metavar="GLOB",
        help="Only events of subjects matching this glob (repeatable), e.g. 'fault*'.",
    ),
]
FromOpt = Annotated[
    float | None, typer.Option("--from", metavar="SECONDS", help="Only events from this time.")
]
ToOpt = Annotated[
    float | None, typer.Option("--to", metavar="SECONDS", help="Only events up to this time.")
]


def _time_ok(t: float, t_from: float | None, t_to: float | None) -> bool:
    return (t_from is None or t >= t_from) and (t_to is None or t <= t_to)


def _subject_ok(subject: str, patterns: list[str] | None) -> bool:
    from fnmatch import fnmatchcase

    return not patterns or any(fnmatchcase(subject, p) for p in patterns)


@app.command()
def trace(
    file: Annotated[Path, typer.Argument(help="A trace file: RESULTS/traces/*.jsonl (replay).")],
    subject: SubjectOpt = None,
    t_from: FromOpt = None,
    t_to: ToOpt = None,
    event: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KIND", help="Only events of this kind (repeatable): call, sample, ready ..."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Lines to print (0: all).")] = 60,
    chrome: Annotated[
        Path | None,
        typer.Option(
            "--chrome",
            "--perfetto",
            help="Write the selected events as a Chrome/Perfetto trace (JSON; - for stdout), "
            "to open in ui.perfetto.dev.",
        ),
    ] = None,
) -> None:
    """Filter a replay's trace file, or export it to Perfetto.

    Prints the selected events (time, subject, event, details) or, with --chrome FILE,
    writes them in the Chrome trace-event format: calls as spans on their client's track,
    state changes and faults as instants, each daemon's busy workers as a counter.
    """
    from sim.experiment.tracefile import read_trace, select, to_chrome

    with common.guard():
        events = select(read_trace(file), subject or (), t_from, t_to, event or ())
        if chrome is not None:
            text = _json(to_chrome(events, file.name.removesuffix(".jsonl")))
            if str(chrome) == "-":
                typer.echo(text)
            else:
                _write_text(chrome, text + "\n")
                typer.echo(f"wrote {chrome} ({len(events)} events): open it in ui.perfetto.dev")
            return
        shown = events if limit <= 0 else events[:limit]
        for e in shown:
            details = ", ".join(
                f"{k}={v}" for k, v in sorted(e.items()) if k not in ("t", "subject", "event")
            )
            typer.echo(f"{float(e['t']):10.3f}  {e['subject']}  {e['event']}  {details}".rstrip())
        if limit > 0 and len(events) > limit:
            typer.echo(f"... {len(events) - limit} more (--limit 0 for all)")


@app.command()
def replay(
    results: Annotated[Path, typer.Argument(help="A results folder written by `run`.")],
    replication: Annotated[int, typer.Option(min=0, help="Which replication (0-based).")],
    scenario: Annotated[str | None, typer.Option(help="Only this scenario.")] = None,
    topology: Annotated[str | None, typer.Option(help="Only this topology.")] = None,
    limit: Annotated[int, typer.Option(help="Timeline lines to print per run (0: all).")] = 60,
    subject: SubjectOpt = None,
    t_from: FromOpt = None,
    t_to: ToOpt = None,
) -> None:
    """Re-run one replication with its full event trace.

    Writes traces/*.jsonl in RESULTS and prints a timeline.
    """
    from sim.cli import render
    from sim.experiment.replay import changed_inputs, load_manifest
    from sim.experiment.replay import replay as do_replay

    with common.guard():
        changed = changed_inputs(load_manifest(results))
        for name in changed:
            common.err(f"warning: {name} changed since the run; the replay may differ")
        console = common.console()
        for r in do_replay(results, replication, scenario, topology, common.warn):
            shown = [
                ev
                for ev in r.events
                if _time_ok(ev[0], t_from, t_to) and _subject_ok(ev[1], subject)
            ]
            console.print(render.timeline(r.task, shown, limit))
            same = "matches runs.jsonl" if r.matches else "DIFFERS from runs.jsonl"
            console.print(f"trace: {r.trace_file} ({len(r.events)} events; metrics {same})")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results folder written by `run`.")],
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Draw figures/ (SVG and PNG).")
    ] = True,
    timelines: Annotated[
        bool,
        typer.Option(help="Re-run replication 0 of the chosen scenarios and draw timelines."),
    ] = True,
    timeline: Annotated[
        list[str] | None,
        typer.Option(
            "--timeline",
            metavar="GLOB",
            help="Draw timelines for the scenarios matching this glob (repeatable; "
            "default: every scenario, or at most 24 with the largest differences).",
        ),
    ] = None,
    sensitivity: Annotated[
        Path | None,
        typer.Option(help="A results folder with sweeps: which assumptions move conclusions."),
    ] = None,
    validation: Annotated[
        Path | None,
        typer.Option(help="A folder with compare.json: the sim-versus-real table."),
    ] = None,
) -> None:
    """Write report.md, report.html and figures/ into RESULTS.

    report.html is self-contained (figures inlined).
    """
    from sim.report import FigureOptions, write_report

    with common.guard():
        opts = FigureOptions(timelines=timelines, timeline_scenarios=tuple(timeline or ()))
        files = write_report(results, figures, opts, sensitivity, validation)
        for note in files.notes:
            common.err(f"note: {note}")
        typer.echo(f"wrote {files.markdown}, {files.html} and {len(files.figures)} figure files")


# ------------------------------------------------------------------ shipped files
models_app = typer.Typer(
    help="The shipped models, workloads and experiments.",
    no_args_is_help=True,
    rich_markup_mode=HELP_MARKUP,
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    kind: Annotated[
        str | None, typer.Option(help="Only this kind (topology, workload, experiment ...).")
    ] = None,
    as_format: FormatOpt = OutputFormat.text,
) -> None:
    """List the shipped files: kind, path, name.

    The paths are relative to the shipped folder (printed first); every verb that takes an
    input file accepts them, and `run` a shipped experiment's bare name, when no such file
    is here.  `virtchaos init DIR` copies them to edit.
    """
    from sim import _data

    items = [i for i in _data.shipped() if kind is None or i.kind == kind]
    if as_format is OutputFormat.json:
        rows = [{"kind": i.kind, "path": i.relpath, "name": i.name} for i in items]
        typer.echo(_json({"root": str(_data.root().resolve()), "files": rows}))
        return
    typer.echo(f"shipped in {_data.root().resolve()}:")
    width = max((len(i.kind) for i in items), default=0)
    for i in items:
        typer.echo(f"  {i.kind:{width}}  {i.relpath}" + (f"  ({i.name})" if i.name else ""))


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Where to copy models/ and experiments/.")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that differ from the shipped ones.")
    ] = False,
) -> None:
    """Copy the shipped models and experiments, to edit.

    Into FOLDER.

    The copies keep the layout of the repository (FOLDER/models, FOLDER/experiments), so the
    experiments' relative paths hold.  Files already identical are left alone; a file that
    differs is an error unless --force.
    """
    from sim import _data

    with common.guard():
        try:
            written = _data.copy_to(folder, force)
        except FileExistsError as err:
            common.err(f"error: {err} (--force to overwrite)")
            raise typer.Exit(common.EXIT_INVALID) from None
        typer.echo(f"wrote {len(written)} files into {folder}")
        typer.echo(f"try: cd {folder} && virtchaos run experiments/how-to-test.yaml")


# ------------------------------------------------------------------ import-units, diff, gate
def _default_map() -> Path:
    """The only ``models/*/import-map.yaml`` under the working directory, else the only
    shipped one."""
    from sim import _data

    found = sorted(Path("models").glob("*/import-map.yaml"))
    if not found:
        found = sorted((_data.root() / "models").glob("*/import-map.yaml"))
    if len(found) != 1:
        msg = f"give --map: found {len(found)} models/*/import-map.yaml files here"
        raise ConfigError.single("--map", msg)
    return found[0]


def _write_text(path: Path, text: str) -> None:
    """Write a report or model file atomically, creating its folder."""
    from sim.experiment.runner import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)


@app.command("import-units")
def import_units_cmd(
    units: Annotated[
        list[Path],
        typer.Option(
            "--units",
            help="A unit directory; repeat, lowest precedence first "
            "(/usr/lib/systemd/system, then /etc/systemd/system).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The topology file to write.")],
    preset: Annotated[
        list[Path] | None,
        typer.Option("--preset", help="A preset file or directory (repeatable)."),
    ] = None,
    conf: Annotated[
        Path | None, typer.Option("--conf", help="The daemons' config directory.")
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="Import mapping [default: the one models/*/import-map.yaml here, else the "
            "shipped one].",
        ),
    ] = None,
    root: Annotated[
        Path, typer.Option(help="Host root under which absolute EnvironmentFile= paths are read.")
    ] = Path("/"),
    name: Annotated[
        str | None, typer.Option(help="Topology name [default: the output file's stem].")
    ] = None,
) -> None:
    """Build a topology from systemd units and daemon configs.

    Reads unit directories, presets and the daemons' config files.

    Directives and settings the model cannot represent are listed here and in the file's
    '# unsupported:' header; a file that cannot be parsed is an error naming file and line.
    """
    from sim.importer import Inputs, import_units, to_yaml
    from sim.model.load import load_system

    with common.guard():
        inputs = Inputs(units, mapping or _default_map(), out, preset or (), conf, root, name)
        result = import_units(inputs)
        _write_text(out, to_yaml(result))
        system = load_system(out)
        enabled = sorted(system.enabled & set(system.units))
        typer.echo(
            f"wrote {out}: {len(system.daemons)} daemons, {len(system.units)} units, "
            f"{len(system.routes)} routes; {len(enabled)} units enabled"
        )
        for note in result.notes:
            typer.echo(f"note: {note}")
        typer.echo(f"unsupported ({len(result.unsupported)}, also in the file header):")
        for item in result.unsupported:
            typer.echo(f"  {item}")


@app.command()
def diff(
    model_a: Annotated[Path, typer.Argument(help="The old topology.", callback=common.input_path)],
    model_b: Annotated[Path, typer.Argument(help="The new topology.", callback=common.input_path)],
    workload: WorkloadOpt = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write a Markdown report here.")
    ] = None,
    fail_on_risk: Annotated[
        bool, typer.Option("--fail-on-risk", help="Exit 1 if a change may widen the blast radius.")
    ] = False,
    as_format: FormatOpt = OutputFormat.text,
) -> None:
    """Compare two topologies and flag risky changes.

    Dependency edges, policies, limits, preset and static blast radius, A -> B.
    """
    from sim.model.load import load_system, load_workload
    from sim.static.modeldiff import diff_models, to_markdown, to_text

    with common.guard():
        a = load_system(model_a)
        b = load_system(model_b)
        if workload is None:
            candidates = [m.parent / DEFAULT_WORKLOAD for m in (model_a, model_b)]
            workload = next((c for c in candidates if c.is_file()), None)
            if workload is None:
                msg = f"no --workload given and no {DEFAULT_WORKLOAD} next to either model"
                raise ConfigError.single(model_a, msg, field="--workload")
        result = diff_models(a, b, load_workload(workload))
        if as_format is OutputFormat.json:
            typer.echo(_json({**dataclasses.asdict(result), "risks": result.risks}))
        else:
            typer.echo(to_text(result), nl=False)
        if markdown is not None:
            _write_text(markdown, to_markdown(result))
            typer.echo(f"wrote {markdown}")
    if fail_on_risk and result.risks:
        raise typer.Exit(EXIT_DEVIATED)


@app.command()
def gate(
    experiment: ExperimentArg,
    baseline: Annotated[Path, typer.Option(help="The baseline summary.json.")],
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write a Markdown summary here.")] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Write the new summary to --baseline.")
    ] = False,
    tolerance: Annotated[
        list[str] | None,
        typer.Option(
            help="METRIC=X sets one metric's absolute tolerance, a bare X every metric's "
            "(repeatable) [defaults: blast_radius 0.05, vms_lost 0.5, vms_unmanageable 1, "
            "unmanageable_vm_seconds 60, failed_operations 1]."
        ),
    ] = None,
    topology: Annotated[
        list[str] | None,
        typer.Option(help="NAME=MODEL.yaml: run topology NAME from this file (repeatable)."),
    ] = None,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Only this scenario (repeatable).")
    ] = None,
    only_topology: Annotated[
        list[str] | None,
        typer.Option(help="Only this topology, e.g. the one --topology replaces (repeatable)."),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help=JOBS_HELP)] = 1,
    force_jobs: ForceJobsOpt = False,
    static: Annotated[
        bool,
        typer.Option(
            help="Also fail on the risks `diff` finds between a --topology replacement and "
            "the experiment's own model."
        ),
    ] = True,
    size_check: Annotated[
        bool,
        typer.Option(
            help="Refuse, before starting, runs estimated too large (sim.experiment.budget)."
        ),
    ] = True,
    allow: Annotated[
        Path | None,
        typer.Option(
            help="Allow-list of accepted static risks: YAML 'allow: [{risk: GLOB, reason: "
            "TEXT}]'; an accepted risk is listed with its reason and does not fail."
        ),
    ] = None,
    annotations: Annotated[
        Annotations,
        typer.Option(
            help="Print GitHub workflow annotations (::error file=...,line=...::) for each "
            "failure; auto: when GITHUB_ACTIONS=true."
        ),
    ] = Annotations.auto,
    as_format: FormatOpt = OutputFormat.text,
) -> None:
    """Fail on a regression against a baseline summary (for CI).

    Re-runs EXPERIMENT with the baseline's seed and replications.

    A metric (blast_radius, vms_lost, vms_unmanageable, unmanageable_vm_seconds,
    failed_operations) regresses when its mean grows by more than the tolerance AND the
    Welch 95% interval of the difference (from both summaries' means, intervals and n)
    excludes zero.  Every hypothesis of the experiment must hold.  Exit 0 pass, 1
    regression, 2 bad input.
    """
    from sim.gate import check as g

    with common.guard():
        if update_baseline and (scenario or only_topology):
            msg = "cannot write a baseline of some scenarios or topologies only"
            raise ConfigError.single("--update-baseline", msg)
        result = g.run_gate(
            experiment,
            baseline,
            g.parse_topologies(topology or ()),
            g.parse_tolerances(tolerance or ()),
            scenario or (),
            _cap_jobs(jobs, force_jobs),
            need_baseline=not update_baseline,
            only_topologies=only_topology or (),
            static=static,
            size_check=size_check,
            allow=g.load_allow(allow) if allow is not None else (),
        )
        held = all(h["held"] for h in result.summary["hypotheses"])
        if junit is not None:
            _write_text(junit, g.to_junit(result))
        if markdown is not None:
            _write_text(markdown, g.to_markdown(result))
        if update_baseline and held:
            g.write_baseline(result, baseline)
        if annotations is Annotations.github or (
            annotations is Annotations.auto and os.environ.get("GITHUB_ACTIONS") == "true"
        ):
            for line in g.github_annotations(result, experiment):
                typer.echo(line)
        if as_format is OutputFormat.json:
            typer.echo(_json(g.to_json(result, baseline_written=update_baseline and held)))
        else:
            _print_gate(result, baseline, update_baseline, held)
    if (update_baseline and not held) or (not update_baseline and not result.passed):
        raise typer.Exit(EXIT_DEVIATED)


def _print_gate(result: Any, baseline: Path, update_baseline: bool, held: bool) -> None:
    from sim.gate import check as g

    typer.echo(
        f"gate {result.experiment}: seed {result.seed}, {result.replications} replications, "
        f"baseline {baseline}"
    )
    for name, path in sorted(result.substituted.items()):
        typer.echo(f"topology {name} <- {path}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    for name, risks in sorted(result.static.items()):
        mark = "FAIL" if risks else "PASS"
        reasons = "".join(f"\n        {g.placed(result, r)}" for r in risks)
        typer.echo(f"  {mark}  static diff / {name}{reasons}")
        for risk, why in result.allowed.get(name, []):
            typer.echo(f"        allowed: {risk} ({why})")
    for case in result.cases:
        mark = "SKIP" if case.missing else ("PASS" if case.passed else "FAIL")
        reasons = "".join(f"\n        {f}" for f in case.failures)
        typer.echo(f"  {mark}  {case.scenario} / {case.topology}{reasons}")
    if update_baseline and held:
        typer.echo(f"baseline written: {baseline}")
    elif update_baseline:
        typer.echo("a hypothesis deviated: baseline NOT written")
    typer.echo(f"result: {g.verdict(result)}")


from sim.cli.realhost import register as _register_realhost  # noqa: E402

_register_realhost(app)


def main() -> None:
    """Entry point of the ``virtchaos`` script."""
    app(prog_name="virtchaos")
