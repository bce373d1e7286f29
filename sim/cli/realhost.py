"""Command-line verbs of the real-host testbed: ``testbed up|down|status``, ``calibrate``,
``realrun`` and ``compare``.  Registered on the main app by :func:`register`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from sim.cli import common
from sim.cli.common import EXIT_INVALID
from sim.realhost.lv import RealHostError

testbed_app = typer.Typer(
    help="A real libvirt host on this machine (needs root, FUSE).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PrefixOpt = Annotated[Path, typer.Option(help="Testbed prefix: configs, sockets, state, logs.")]
HostOpt = Annotated[Path, typer.Option("--host", help="The host description (kind: realhost).")]
DEFAULT_PREFIX = Path("/var/tmp/virtchaos-testbed")
DEFAULT_HOST = Path("models/libvirt/realhost.yaml")


@contextmanager
def _guard() -> Iterator[None]:
    """The CLI's error mapping (:func:`sim.cli.common.guard`), plus the real host's own
    errors and unknown names, which are bad input (exit 2)."""
    with common.guard():
        try:
            yield
        except (RealHostError, KeyError) as err:
            msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            typer.echo(f"error: {msg}", err=True)
            raise typer.Exit(EXIT_INVALID) from None


def _host(path: Path) -> Any:
    from sim.realhost.testbed import load_host

    return load_host(common.input_path(path))


def _print_status(st: dict[str, Any]) -> None:
    typer.echo(f"testbed {st['prefix']} ({st['topology']}): {'up' if st['up'] else 'down'}")
    for name, d in st["daemons"].items():
        typer.echo(f"  daemon {name:10} pid {d['pid'] or '-':>7}  {d['state']}")
    for name, g in st["guests"].items():
        typer.echo(f"  guest  {name:10} pid {g['pid'] or '-':>7}  {g['state']}  ({st['virt']})")
    pool = st["pool"]
    typer.echo(f"  pool   mounted {pool['mounted']}, blocked {pool['blocked']}")
    typer.echo(f"  network: {st['network']}")
    typer.echo(f"  uri: {st['uri']}")


@testbed_app.command("up")
def testbed_up(
    prefix: PrefixOpt = DEFAULT_PREFIX,
    host: HostOpt = DEFAULT_HOST,
    guests: Annotated[int | None, typer.Option(min=1, help="Guests [default: the host's].")] = None,
    topology: Annotated[
        str, typer.Option(help="Daemon layout of the host description.")
    ] = "monolithic",
    modular: Annotated[
        bool, typer.Option("--modular", help="Same as --topology modular (a meson build).")
    ] = False,
) -> None:
    """Start daemons, FUSE-backed pool and guests (idempotent)."""
    from sim.realhost import testbed as tb

    with _guard():
        _print_status(tb.up(_host(host), prefix, guests, "modular" if modular else topology))


@testbed_app.command("down")
def testbed_down(
    prefix: PrefixOpt = DEFAULT_PREFIX,
    host: HostOpt = DEFAULT_HOST,
    keep: Annotated[bool, typer.Option(help="Keep the prefix (logs) after stopping.")] = False,
) -> None:
    """Stop guests and daemons; remove what the testbed created.

    Unmounts the pool too.
    """
    from sim.realhost import testbed as tb

    with _guard():
        for line in tb.down(_host(host), prefix, keep):
            typer.echo(line)
        typer.echo("testbed down")


@testbed_app.command("status")
def testbed_status(
    prefix: PrefixOpt = DEFAULT_PREFIX,
    host: HostOpt = DEFAULT_HOST,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What runs: daemons, guests, the pool mount.  Exit 1 when the testbed is not up."""
    from sim.realhost import testbed as tb

    with _guard():
        st = tb.status(_host(host), prefix)
        typer.echo(json.dumps(st, indent=2)) if as_json else _print_status(st)
    if not st["up"]:
        raise typer.Exit(1)


def dump_yaml(doc: dict[str, Any]) -> str:
    """``doc`` as YAML text (block style, 100 columns), as the models are written."""
    from ruamel.yaml import YAML

    y = YAML()
    y.default_flow_style = None
    y.width = 100
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def calibrate_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="The overlay file to write.")],
    uri: Annotated[
        str | None,
        typer.Option(help="Model URI to calibrate through [default: the testbed's first]."),
    ] = None,
    catalog: Annotated[Path, typer.Option(help="The catalog.")] = Path(
        "models/libvirt/catalog.yaml"
    ),
    calls: Annotated[int, typer.Option("-n", min=5, help="Timed calls per procedure.")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls first.")] = 10,
    lifecycle: Annotated[int, typer.Option(min=1, help="Guest stop/start pairs.")] = 10,
    daemon_starts: Annotated[int, typer.Option(min=1, help="Daemon restarts timed.")] = 5,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    host: HostOpt = DEFAULT_HOST,
) -> None:
    """Measure service times on the testbed (a catalog overlay).

    Times every safely callable catalog procedure and writes a catalog overlay.
    """
    from sim.realhost.calibrate import calibrate

    with _guard():
        doc = calibrate(_host(host), prefix, catalog, uri, calls, warmup, lifecycle, daemon_starts)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(dump_yaml(doc), encoding="utf-8")
        for p in doc["procedures"]:
            m = p["measured"]
            typer.echo(
                f"  {p['name']:28} median {m['median_ms']:9.3f} ms  p10 {m['p10_ms']:8.3f}"
                f"  p90 {m['p90_ms']:8.3f}  sigma {p['service']['sigma']}"
            )
        for m in doc["measurements"]:
            typer.echo(f"  {m['name']:28} median {m['measured']['median_ms']:9.3f} ms")
        for name, why in doc["skipped"].items():
            typer.echo(f"  skipped {name}: {why}")
        typer.echo(f"wrote {out}")


def realrun_cmd(
    experiment: Annotated[Path, typer.Argument(help="An experiment file.")],
    topology: Annotated[
        str, typer.Option(help="The experiment's topology the testbed stands for.")
    ],
    out: Annotated[Path | None, typer.Option(help="Results folder.")] = None,
    replications: Annotated[
        int | None, typer.Option(min=1, help="Replications [default: the experiment's].")
    ] = None,
    scenario: Annotated[
        list[str] | None, typer.Option(help="Only this scenario (repeatable).")
    ] = None,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    host: HostOpt = DEFAULT_HOST,
) -> None:
    """Run the experiment's scenarios on the real testbed.

    Writes the results contract (runs.jsonl, summary.json, manifest.json with backend:
    real, calls.jsonl, probes.json).

    Scenarios with a fault or action the host cannot take are refused (listed, not run).
    """
    from sim.realhost.session import realrun

    with _guard():
        outcome = realrun(
            experiment,
            topology,
            _host(host),
            prefix,
            out,
            replications,
            scenario or [],
            progress=lambda s: typer.echo(f"running {s}", err=True),
        )
        for name, why in outcome.refused.items():
            typer.echo(f"REFUSED {name}: {'; '.join(why)}")
        for note in outcome.notes:
            typer.echo(f"note: {note}")
        from sim.cli import render

        console = common.console()
        console.print(render.summary_table(outcome.summary, console.width))
        typer.echo(f"results: {outcome.folder}")


def compare_cmd(
    sim_results: Annotated[Path, typer.Argument(help="A simulated results folder.")],
    real_results: Annotated[Path, typer.Argument(help="A real results folder (realrun).")],
    markdown: Annotated[Path | None, typer.Option(help="Also write the report here.")] = None,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the rows as JSON (report --validation reads it)."),
    ] = None,
) -> None:
    """Simulated versus real results, with verdicts.

    Per scenario, metric and probe class.
    """
    from sim.realhost.compare import compare, to_json, to_markdown

    with _guard():
        result = compare(sim_results, real_results)
        text = to_markdown(result)
        typer.echo(text, nl=False)
        for path, body in ((markdown, text), (json_out, to_json(result))):
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body, encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add the real-host verbs to the main app."""
    app.add_typer(testbed_app, name="testbed")
    app.command("calibrate")(calibrate_cmd)
    app.command("realrun")(realrun_cmd)
    app.command("compare")(compare_cmd)
