"""Hardening (issue 11): what cannot be a file in ``tests/bad/`` (pipes, links, modes, caps),
the experiment size check, and memory and time caps tested with small limits."""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import simpy
from typer.testing import CliRunner

from sim.cli.main import app
from sim.errors import ConfigError
from sim.experiment import budget
from sim.experiment.runner import run_one, tasks_of
from sim.model.load import load_experiment
from sim.model.loader import Limits, read_yaml

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
ROOT = TESTS.parent
runner = CliRunner()


def issues_of(path: Path, limits: Limits | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        read_yaml(path, limits)
    return [str(i) for i in info.value.issues]


def fixture_copy(tmp_path: Path) -> Path:
    """The fixture experiment and its files in ``tmp_path``; returns the experiment."""
    for f in FIXTURES.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path / "experiment.yaml"


# ------------------------------------------------------------------ only regular files


def test_a_named_pipe_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "topo.yaml"
    os.mkfifo(fifo)
    start = time.monotonic()
    assert issues_of(fifo) == [f"{fifo}: not a regular file (a named pipe)"]
    assert time.monotonic() - start < 30


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert issues_of(tmp_path) == [f"{tmp_path}: not a regular file (a directory)"]


def test_a_link_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert issues_of(link) == [f"{link}: not a regular file (a character device)"]


def test_a_symlink_loop_is_invalid_input_naming_the_file(tmp_path: Path) -> None:
    exp = fixture_copy(tmp_path)
    topo = tmp_path / "topology-split.yaml"
    topo.unlink()
    topo.symlink_to(tmp_path / "other.yaml")
    (tmp_path / "other.yaml").symlink_to(topo)
    result = runner.invoke(app, ["validate", str(exp)])
    assert result.exit_code == 2
    assert "topology-split.yaml: cannot read file: Too many levels of symbolic links" in (
        result.output
    )
    assert f"{exp}:4: topologies[0]: topology 'topology-split.yaml' is invalid" in result.output


def test_the_size_cap_refuses_a_larger_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("kind: catalog\n" + "# padding\n" * 20, encoding="utf-8")
    assert issues_of(path, Limits(max_bytes=100)) == [f"{path}: file is larger than 100 bytes"]
    assert read_yaml(path, Limits(max_bytes=1000)).data == {"kind": "catalog"}


def test_a_file_that_cannot_be_opened_is_invalid_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user other than root gets for a file without read permission."""
    path = tmp_path / "doc.yaml"
    path.write_text("kind: catalog\n", encoding="utf-8")

    def denied(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    assert issues_of(path) == [f"{path}: cannot read file: Permission denied"]


def test_an_unreadable_file_is_invalid_input_for_a_user(tmp_path: Path) -> None:
    """With real permissions: as root, a forked child drops to ``nobody`` to read it."""
    path = tmp_path / "doc.yaml"
    path.write_text("kind: catalog\n", encoding="utf-8")
    path.chmod(0)
    if os.geteuid() != 0:
        assert issues_of(path) == [f"{path}: cannot read file: Permission denied"]
        return
    tmp_path.chmod(0o755)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 9
        try:
            os.setgid(65534)
            os.setuid(65534)
            read_yaml(path)
        except ConfigError as err:
            os.write(write, str(err).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    message = os.read(read, 4096).decode()
    assert os.waitstatus_to_exitcode(status) == 0
    assert message == f"{path}: cannot read file: Permission denied"


# ------------------------------------------------------------------ bounded documents


def test_nesting_beyond_the_depth_limit_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    body = "".join("  " * i + f"k{i}:\n" for i in range(8)) + "  " * 8 + "leaf: 1\n"
    path.write_text("kind: catalog\n" + body, encoding="utf-8")
    assert read_yaml(path, Limits(max_depth=12)).data["k0"]["k1"]
    (issue,) = issues_of(path, Limits(max_depth=5))
    assert issue.startswith(f"{path}:6: invalid yaml: nesting deeper than 5 levels")


def test_alias_expansion_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(
        "kind: catalog\na: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", encoding="utf-8"
    )
    assert len(read_yaml(path, Limits(max_nodes=100)).data["c"]) == 3
    (issue,) = issues_of(path, Limits(max_nodes=20))
    assert "the document expands to more than 20 values (yaml aliases?)" in issue
    assert issue.startswith(f"{path}:3: c[0]: ")  # the line the repeated value is written on


def test_a_long_integer_literal_names_its_field(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("kind: catalog\nseed: 123456\n", encoding="utf-8")
    assert read_yaml(path, Limits(max_digits=6)).data["seed"] == 123456
    assert issues_of(path, Limits(max_digits=5)) == [
        f"{path}:2: seed: an integer of 6 digits is out of range"
    ]


def test_an_alias_bomb_stays_within_a_small_memory_cap(tmp_path: Path) -> None:
    """In a process limited to 1 GiB of address space, the billion laughs is exit 2 in
    seconds; expanded, its 9**9 strings would need tens of GB (MemoryError, exit 3)."""
    path = tmp_path / "bomb.yaml"
    lines = ["kind: catalog", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cap = 1 << 30

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "from sim.model.loader import read_yaml; import sys; "
         "read_yaml(sys.argv[1])", str(path)],
        capture_output=True, text=True, cwd=ROOT, preexec_fn=limit, timeout=120,
    )  # fmt: skip
    assert time.monotonic() - start < 60
    assert "ConfigError" in proc.stderr
    assert "expands to more than 200000 values" in proc.stderr
    assert "MemoryError" not in proc.stderr


# ------------------------------------------------------------------ the experiment's size


def test_estimate_scales_with_replications_and_duration(tmp_path: Path) -> None:
    model = load_experiment(FIXTURES / "experiment.yaml")
    one, two = budget.estimate(model, 1), budget.estimate(model, 2)
    assert two.runs == 2 * one.runs == 2 * len(model.scenarios) * len(model.systems)
    assert two.events == pytest.approx(2 * one.events)
    exp = fixture_copy(tmp_path)
    text = exp.read_text(encoding="utf-8").replace("duration_s: 600", "duration_s: 6000")
    exp.write_text(text, encoding="utf-8")
    longer = budget.estimate(load_experiment(exp), 1)
    assert 9 * one.events < longer.events < 11 * one.events


@pytest.mark.parametrize(
    ("path", "runs"),
    [(FIXTURES / "experiment.yaml", 6), (ROOT / "experiments/nodedev-hang.yaml", 1)],
)
def test_estimate_is_near_the_events_a_run_simulates(
    path: Path, runs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate is an order of magnitude that errs high: between the SimPy events a
    run steps through (counted) and five times as many."""
    steps = [0]
    step = simpy.Environment.step

    def counted(env: simpy.Environment) -> None:
        steps[0] += 1
        step(env)

    monkeypatch.setattr(simpy.Environment, "step", counted)
    model = load_experiment(path)
    for task in itertools.islice(tasks_of(model, 1), runs):
        steps[0] = 0
        run_one(model, task, seed=1)
        _, wl = model.resolve(task.scenario, task.topology)
        estimated = budget.run_events(wl, model.scenario(task.scenario), model.doc.duration_s)
        assert steps[0] < estimated < 5 * steps[0], (task, steps[0], estimated)


def test_run_refuses_an_experiment_over_the_limit_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget, "LIMITS", budget.SizeLimits(events=1e4, run_events=1e9))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(FIXTURES / "experiment.yaml"), "--out", str(out)])
    assert result.exit_code == 2
    assert "the runs are estimated above the limit of 1e+04 events" in result.output
    assert "pass --no-size-check" in result.output
    assert not out.exists()


def test_one_run_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "LIMITS", budget.SizeLimits(events=1e12, run_events=100))
    model = load_experiment(FIXTURES / "experiment.yaml")
    with pytest.raises(ConfigError) as info:
        budget.check_size(model, 1)
    (issue,) = info.value.issues
    assert "one run is estimated above the limit of 100 events" in issue.message
    assert f"the largest run is scenario {budget.estimate(model, 1).largest!r}" in issue.message


def test_no_size_check_overrides_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "LIMITS", budget.SizeLimits(events=1, run_events=1))
    exp = ROOT / "experiments" / "how-to-test.yaml"
    out = tmp_path / "out"
    args = ["run", str(exp), "--replications", "1", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 2
    result = runner.invoke(app, [*args, "--no-size-check"])
    assert result.exit_code == 0, result.output
    assert (out / "summary.json").exists()


def test_gate_checks_the_size_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "LIMITS", budget.SizeLimits(events=1, run_events=1))
    exp = ROOT / "experiments" / "how-to-test.yaml"
    args = ["gate", str(exp), "--baseline", str(tmp_path / "none.json"), "--update-baseline"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "estimated above the limit" in result.output
    assert runner.invoke(app, [*args, "--no-size-check"]).exit_code == 0


def test_gate_refuses_a_named_pipe_as_baseline(tmp_path: Path) -> None:
    fifo = tmp_path / "baseline.json"
    os.mkfifo(fifo)
    exp = ROOT / "experiments" / "how-to-test.yaml"
    result = runner.invoke(app, ["gate", str(exp), "--baseline", str(fifo)])
    assert result.exit_code == 2
    assert f"{fifo}: not a regular file (a named pipe)" in result.output
