"""Fuzz: random mutations of the shipped files never crash, hang or blow up (issue 11).

Each example copies ``models/`` and ``experiments/``, replaces one value of one shipped file
(chosen from the parsed document, so every field can be hit) by a hostile YAML fragment, or
deletes a key or adds one, then runs ``validate`` on the file and ``run`` on an experiment
that uses it.  The property: exit 0, 1 or 2, never 3 (an internal error); every example
within :data:`SECONDS` of CPU time (and :data:`WALL_SECONDS` on the wall clock); the
process's peak memory within :data:`MEGABYTES`.  The run budget is made tiny
(:data:`sim.experiment.budget.LIMITS`) so that an example costs about a second: runs above it are
refused with exit 2, which is the behaviour under test.
"""

from __future__ import annotations

import resource
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.scalarbool import ScalarBoolean
from typer.testing import CliRunner

from sim.cli.main import app
from sim.experiment import budget
from sim.model.loader import read_yaml

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 20.0
"""The most CPU time one example may take (validate + run)."""
WALL_SECONDS = 180.0
"""The longest one example may take on the wall clock (a blocked read burns no CPU); long,
because the machine may be shared."""
MEGABYTES = 2500
"""The largest peak resident memory of the test process (ru_maxrss)."""
TINY = budget.SizeLimits(events=60_000, run_events=20_000)

EXPERIMENTS = sorted(p.relative_to(ROOT) for p in (ROOT / "experiments").glob("*.yaml"))
MODELS = sorted(p.relative_to(ROOT) for p in (ROOT / "models").glob("*/*.yaml"))
USERS: dict[str, list[str]] = {
    "models/workloads/how-to-test.yaml": ["experiments/how-to-test.yaml"],
    "models/workloads/boot-host.yaml": ["experiments/boot.yaml"],
    "models/libvirt/import-map.yaml": [],
}
"""Experiments that read a model file (default: how-to-test and boot, which read the
topologies and catalog, and crash-loop for the virt-host workload and its clients)."""

HOSTILE = [
    ".inf",
    "-.inf",
    ".nan",
    "1e400",
    "1e12",
    "-1",
    "0",
    "0.0",
    "true",
    "null",
    "'5'",
    "''",
    "[]",
    "{}",
    "100000000",
    "1000000000",
    "9" * 5000,
    "18446744073709551616",
    "[" * 200 + "]" * 200,
    "!!python/object/apply:os.system [echo]",
    "*nowhere",
    "{kind: experiment}",
    "x" * 200,
    "../../../../etc/passwd",
    "/dev/zero",
    "nope.x.0",
]
"""YAML fragments a value is replaced by: each breaks some rule somewhere."""
BENIGN = ["1", "2", "0.5", "10", "30", "3600", "5000", "no", "none", "crash"]
"""Plausible values: they reach the engine more often."""


def _locations(node: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield loc
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _locations(value, (*loc, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _locations(value, (*loc, i))


def _mutate(data: dict[str, Any], loc: tuple[Any, ...], how: str) -> None:
    """Change ``data`` at ``loc`` in place: replace with a marker, delete, add a key."""
    if not loc:
        data["surprise"] = "__HOSTILE__"
        return
    parent: Any = data
    for part in loc[:-1]:
        parent = parent[part]
    last = loc[-1]
    if how == "delete":
        del parent[last]
    elif how == "extra" and isinstance(parent[last], dict):
        parent[last]["surprise"] = "__HOSTILE__"
    elif how == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    else:
        parent[last] = "__HOSTILE__"


def _builtin(node: Any) -> Any:
    """Parsed data with ruamel's scalar subclasses turned into built-in types."""
    if isinstance(node, dict):
        return {str(k): _builtin(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_builtin(v) for v in node]
    for kind in (ScalarBoolean, str, float, int):
        if isinstance(node, kind):
            return bool(node) if kind is ScalarBoolean else kind(node)
    return node


def _dump(data: dict[str, Any], fragment: str) -> str:
    import io

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue().replace("__HOSTILE__", fragment)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, str]:
    """(file, mutated text, experiment to run)."""
    file = str(draw(st.sampled_from([*EXPERIMENTS, *MODELS])))
    data = _builtin(read_yaml(ROOT / file).data)
    loc = draw(st.sampled_from(list(_locations(data))))
    how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra", "duplicate"]))
    _mutate(data, loc, how)
    fragment = draw(st.sampled_from(HOSTILE) | st.sampled_from(BENIGN))
    text = _dump(data, fragment)
    if file.startswith("experiments/"):
        users = [file]
    else:
        default = ["experiments/how-to-test.yaml", "experiments/boot.yaml"]
        if "virt-host" in file or "clients" in file:
            default = ["experiments/crash-loop.yaml"]
        users = USERS.get(file, default)
    experiment = draw(st.sampled_from(users)) if users else ""
    return file, text, experiment


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shipped")
    for sub in ("models", "experiments"):
        shutil.copytree(ROOT / sub, root / sub)
    return root


class Overtime(BaseException):
    """Raised by the alarm: not an Exception, so the CLI's guard cannot swallow it."""


def _alarm(signum: int, frame: object) -> None:
    raise Overtime(f"an example took over {WALL_SECONDS} s")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _check(example: tuple[str, str, str], pristine: Path, work: Path) -> None:
    file, text, experiment = example
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(pristine, work)
    (work / file).write_text(text, encoding="utf-8")
    runner = CliRunner()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, WALL_SECONDS)
    start = _cpu()
    try:
        results = [runner.invoke(app, ["validate", str(work / file)])]
        if experiment:
            args = ["run", str(work / experiment), "--replications", "1", "--out"]
            results.append(runner.invoke(app, [*args, str(work / "out")]))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    for result in results:
        assert result.exit_code in (0, 1, 2), (file, result.exit_code, result.output)
        assert "internal error" not in result.output
    assert _cpu() - start < SECONDS
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < MEGABYTES, f"peak memory {peak_mb:.0f} MB"


PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=24, deadline=None, suppress_health_check=HEALTH, phases=PHASES)
@given(example=mutations())
def test_mutated_shipped_files_exit_0_1_or_2_quickly(
    example: tuple[str, str, str],
    pristine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(budget, "LIMITS", TINY)
    _check(example, pristine, tmp_path / "work")


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=HEALTH, phases=PHASES)
@given(example=mutations())
def test_mutated_shipped_files_long_profile(
    example: tuple[str, str, str],
    pristine: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(budget, "LIMITS", TINY)
    _check(example, pristine, tmp_path / "work")
