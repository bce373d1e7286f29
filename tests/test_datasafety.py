"""Data safety (issue 15) and resume/crash safety (issue 11): where ``run`` writes, how
``runs.jsonl`` is recovered, what ``--force`` replaces, and what a killed run leaves.

The tests named ``test_rule_*`` guard a security rule: each fails when its rule is removed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import main as cli
from sim.errors import ResultsError
from sim.experiment import resultsdir
from sim.experiment.replay import replay
from sim.experiment.runlog import parse_lines, read_runs, record_line
from sim.experiment.runner import dumps, run_experiment, tasks_of
from sim.experiment.workers import IN_FLIGHT, imap_unordered, max_jobs
from sim.model.load import load_experiment

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
FILES = ("manifest.json", "runs.jsonl", "summary.json", "summary.csv")
FINAL = ("runs.jsonl", "summary.json", "summary.csv")


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    """A private copy of the fixture experiment and its models (so a test may edit them)."""
    models = tmp_path / "models"
    models.mkdir()
    for f in FIXTURES.glob("*.yaml"):
        shutil.copy(f, models / f.name)
    return models / "determinism.yaml"


def _bytes(folder: Path, names: tuple[str, ...] = FINAL) -> dict[str, bytes]:
    return {n: (folder / n).read_bytes() for n in names}


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    command = [sys.executable, "-m", "sim", *(str(a) for a in args)]
    return subprocess.run(
        command, cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The bytes of an uninterrupted run of the fixture (2 replications)."""
    out = tmp_path_factory.mktemp("ref") / "out"
    run_experiment(FIXTURES / "determinism.yaml", out, replications=2)
    return _bytes(out)


# ------------------------------------------------------------------- results folder rules
def test_rule_foreign_folder_is_never_written(exp: Path, tmp_path: Path) -> None:
    """A non-empty folder without a virtchaos manifest is refused; nothing in it changes."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    (folder / "manifest.json").write_text('{"tool": "other", "files": 3}\n')
    (folder / "runs.jsonl").write_text("not ours\n")
    before = _tree(folder)
    with pytest.raises(ResultsError, match="not a results folder"):
        run_experiment(exp, folder, replications=1)
    assert _tree(folder) == before


def test_rule_force_never_touches_a_foreign_folder(exp: Path, tmp_path: Path) -> None:
    """``--force`` replaces only a results folder of ours: a foreign one stays as it was,
    and nothing is left beside it."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "summary.json").write_text("{}\n")
    (folder / "report.md").write_text("someone's report\n")
    before = _tree(folder)
    with pytest.raises(ResultsError, match="--force never replaces"):
        run_experiment(exp, folder, replications=1, force=True)
    assert _tree(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "models"]


def test_rule_force_replaces_the_whole_folder(exp: Path, tmp_path: Path) -> None:
    """After ``--force`` no file of the old run is left (report, figures), and no staging
    folder beside it."""
    out = tmp_path / "out"
    run_experiment(exp, out, replications=1, seed=1)
    (out / "report.md").write_text("old report, seed 1\n")
    (out / "figures").mkdir()
    (out / "figures" / "heatmap.svg").write_text("<svg/>")
    run_experiment(exp, out, replications=1, seed=2, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "out"]


def test_finished_folder_refused_without_force(exp: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_experiment(exp, out, replications=1)
    before = _tree(out)
    with pytest.raises(ResultsError, match="already holds a finished run; use --force"):
        run_experiment(exp, out, replications=1)
    assert _tree(out) == before


def test_empty_and_absent_folders_are_written(exp: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for name in ("empty", "a/b/new"):
        run_experiment(exp, tmp_path / name, replications=1)
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == sorted(FILES)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "--out {p} is a file, not a folder"),
        ("file/sub", "--out {p}: {f} is a file, not a folder"),
    ],
)
def test_out_at_or_under_a_file_is_exit_2(exp: Path, tmp_path: Path, where: str, message: str):
    (tmp_path / "file").write_text("x")
    p = tmp_path / where
    done = _cli("run", exp, "--replications", "1", "--out", p)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "error: " + message.format(p=p, f=tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_out_where_we_cannot_write_is_exit_2(
    exp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resultsdir, "can_write", lambda _: False)
    runner = CliRunner()
    p = tmp_path / "ro" / "out"
    result = runner.invoke(cli.app, ["run", str(exp), "--replications", "1", "--out", str(p)])
    assert result.exit_code == 2
    assert f"--out {p}: cannot write in {tmp_path} (permission denied)" in result.output
    assert not (tmp_path / "ro").exists()


def test_empty_out_in_a_folder_that_is_not_ours_is_refused(exp: Path, tmp_path: Path) -> None:
    """``--out ""`` means the current folder: refused when it holds other files."""
    (tmp_path / "notes.txt").write_text("keep")
    done = _cli("run", exp, "--replications", "1", "--out", "", cwd=tmp_path)
    assert done.returncode == 2
    assert "is not empty and is not a results folder" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "notes.txt"]


# ------------------------------------------------------------------- resume: same inputs?
def _interrupt(out: Path, keep: int) -> None:
    """Make ``out`` look like a run killed after ``keep`` runs."""
    (out / "summary.json").unlink()
    lines = (out / "runs.jsonl").read_text().splitlines(keepends=True)
    (out / "runs.jsonl").write_text("".join(lines[:keep]))


def test_resume_with_changed_inputs_is_refused_naming_the_difference(
    exp: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_experiment(exp, out, replications=2)
    _interrupt(out, 3)
    before = _tree(out)
    exp.write_text(exp.read_text().replace("at_s: 60, duration_s: 40", "at_s: 90, duration_s: 40"))
    with pytest.raises(ResultsError) as err:
        run_experiment(exp, out, replications=2)
    message = str(err.value)
    assert "holds an interrupted run of other inputs" in message
    assert "experiment.scenarios[2].faults[0].at_s: 60.0 -> 90.0" in message
    assert "determinism.yaml changed" in message
    assert _tree(out) == before
    run_experiment(exp, out, replications=2, force=True)  # --force: a fresh run of new inputs
    fresh = tmp_path / "fresh"
    run_experiment(exp, fresh, replications=2)
    assert _bytes(out) == _bytes(fresh)


@pytest.mark.parametrize(
    ("change", "named"),
    [(("--seed", "12"), "seed 11 -> 12"), (("--replications", "3"), "replications 2 -> 3")],
)
def test_resume_with_another_seed_or_size_is_refused(
    exp: Path, tmp_path: Path, change: tuple[str, str], named: str
) -> None:
    out = tmp_path / "out"
    run_experiment(exp, out, replications=2)
    _interrupt(out, 2)
    done = _cli("run", exp, "--replications", "2", "--out", out, *change)
    assert done.returncode == 2
    assert named in done.stderr


def test_differences_name_tool_version_and_files() -> None:
    old = {"version": "0.1.0", "seed": 1, "experiment_file": "/a/e.yaml",
           "inputs": {"/a/e.yaml": "1", "/a/t.yaml": "2"}}  # fmt: skip
    new = old | {"version": "0.2.0", "experiment_file": "/b/e.yaml",
                 "inputs": {"/b/e.yaml": "1", "/b/t.yaml": "3", "/b/w.yaml": "4"}}  # fmt: skip
    assert resultsdir.differences(old, new) == [
        'version "0.1.0" -> "0.2.0"',
        "t.yaml changed",
        "w.yaml is a new input",
    ]
    assert resultsdir.differences(old, old) == []


# ------------------------------------------------------------------- runs.jsonl recovery
def test_resume_drops_only_broken_lines_and_redoes_what_is_missing(
    tmp_path: Path, reference: dict[str, bytes]
) -> None:
    out = tmp_path / "out"
    run_experiment(FIXTURES / "determinism.yaml", out, replications=2)
    lines = (out / "runs.jsonl").read_text().splitlines(keepends=True)
    (out / "summary.json").unlink()
    broken = [lines[0], "{not json\n", *lines[2:6], '{"scenario": 1}\n', *lines[7:9], lines[9][:25]]
    (out / "runs.jsonl").write_text("".join(broken))
    warnings: list[str] = []
    outcome = run_experiment(
        FIXTURES / "determinism.yaml", out, replications=2, warn=warnings.append
    )
    runs = out / "runs.jsonl"
    assert warnings == [
        f"{runs}:2: not valid JSON: line dropped, that run is done again",
        f"{runs}:7: scenario missing or not a str: line dropped, that run is done again",
        f"{runs}:10: the last line is incomplete (an interrupted write): dropped, that run is "
        "done again",
    ]
    assert outcome.resumed == 7  # lines 1, 3-6 and 8-9: later lines are kept, not dropped
    assert _bytes(out) == reference


def test_parse_lines_rejects_non_records_and_non_finite_metrics() -> None:
    good = record_line({"scenario": "s", "topology": "t", "replication": 0, "seed": 1,
                        "metrics": {"m": 1.0}})  # fmt: skip
    bad = [
        "[1, 2]",
        '{"scenario": "s", "topology": "t", "replication": true, "seed": 1, "metrics": {}}',
        '{"scenario": "s", "topology": "t", "replication": 0, "seed": 1, "metrics": {"m": NaN}}',
        '{"scenario": "s", "topology": "t", "replication": 0, "seed": 1, "metrics": []}',
    ]
    said: list[str] = []
    data = (good + "\n".join(bad) + "\n" + good).encode() + b"\xff\n"
    assert len(parse_lines(data, "r", said.append)) == 2
    assert [s.split(": ", 1)[1] for s in said] == [
        "not a JSON object: line dropped, that run is done again",
        "replication missing or not a int: line dropped, that run is done again",
        "metric m is not a finite number: line dropped, that run is done again",
        "metrics missing or not an object: line dropped, that run is done again",
        "not valid JSON: line dropped, that run is done again",
    ]


def test_replay_reads_a_runs_file_with_a_partial_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_experiment(FIXTURES / "determinism.yaml", out, replications=1)
    text = (out / "runs.jsonl").read_text()
    (out / "runs.jsonl").write_text(text + text.splitlines()[0][:30])
    said: list[str] = []
    results = list(replay(out, 0, "baseline", "split", warn=said.append))
    assert [r.matches for r in results] == [True]
    assert said and "the last line is incomplete" in said[0]
    done = _cli("replay", out, "--replication", "0", "--scenario", "baseline")
    assert done.returncode == 0, done.stderr
    assert "warning: " in done.stderr and "Traceback" not in done.stderr


def test_read_runs_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_runs(tmp_path / "runs.jsonl") == []


# ------------------------------------------------------------------- strict JSON
def test_json_out_is_strict() -> None:
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            dumps({"x": value})
        with pytest.raises(ValueError):
            record_line({"x": value})


# ------------------------------------------------------------------- crash safety
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _start(out: Path, reps: int, *extra: str, **kw: object) -> subprocess.Popen[bytes]:
    """``run`` in the background; its stderr goes to ``out``'s sibling ``stderr.txt`` (not a
    pipe: a worker left behind would keep a pipe open)."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "sim", "run", str(FIXTURES / "determinism.yaml")]
    command += ["--out", str(out), "--replications", str(reps), *extra]
    with (out.parent / "stderr.txt").open("wb") as err:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
            **kw,  # type: ignore[call-overload]
        )  # fmt: skip


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@linux_only
def test_rule_workers_die_with_their_parent(tmp_path: Path) -> None:
    """``kill -9`` of ``run`` leaves no worker process behind."""
    proc = _start(tmp_path / "out", 200, "--jobs", "2", "--force-jobs")
    _wait_for(lambda: len(_children(proc.pid)) >= 2)
    workers = _children(proc.pid)
    proc.kill()
    proc.wait()
    try:
        _wait_for(lambda: not any(_alive(w) for w in workers), timeout=10)
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else -1


@pytest.mark.parametrize("after", [0, 5, 11])
def test_kill_9_at_any_moment_then_rerun_gives_the_same_bytes(
    tmp_path: Path, reference: dict[str, bytes], after: int
) -> None:
    """Killed once ``after`` of the 12 runs are in runs.jsonl, then run again."""
    out = tmp_path / "out"
    proc = _start(out, 2)
    _wait_for(lambda: _lines(out / "runs.jsonl") >= after)
    proc.kill()
    proc.wait()
    done = _cli("run", FIXTURES / "determinism.yaml", "--out", out, "--replications", "2")
    finished = "already holds a finished run" in done.stderr  # killed after summary.json
    assert done.returncode == 0 or (done.returncode == 2 and finished), done.stderr
    assert _bytes(out) == reference


@linux_only
def test_ctrl_c_prints_a_clean_message_and_the_resume_hint(tmp_path: Path) -> None:
    """20 replications (120 runs, a few seconds): long enough for the signal to arrive while
    runs are still going."""
    out = tmp_path / "out"
    run_experiment(FIXTURES / "determinism.yaml", tmp_path / "ref", replications=20)
    reference = _bytes(tmp_path / "ref")
    proc = _start(out, 20, "--jobs", "2", "--force-jobs", start_new_session=True)
    _wait_for(lambda: (out / "runs.jsonl").is_file() and (out / "runs.jsonl").stat().st_size)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole group
    try:
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130
    lines = [line for line in stderr.splitlines() if not line.startswith("progress: ")]
    assert len(lines) == 2, stderr  # progress lines (no terminal here), then the message
    assert lines[0].startswith("interrupted: ") and f"of 120 runs kept in {out}" in lines[0]
    assert lines[1] == "run the same command again to resume"
    done = _cli("run", FIXTURES / "determinism.yaml", "--out", out, "--replications", "20")
    assert done.returncode == 0, done.stderr
    assert _bytes(out) == reference


def test_interrupted_forced_run_resumes_beside_and_keeps_the_old_folder(
    exp: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_experiment(exp, out, replications=1, seed=1)
    old = _tree(out)
    calls = 0

    def stop(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, out, replications=1, seed=2, force=True, progress=stop)
    assert _tree(out) == old  # the old folder is whole until the new run has finished
    outcome = run_experiment(exp, out, replications=1, seed=2, force=True)
    assert outcome.resumed == 2
    assert json.loads((out / "summary.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "out"]


# ------------------------------------------------------------------- bounded resources
def test_jobs_are_capped_at_the_cores_unless_forced(exp: Path, tmp_path: Path) -> None:
    done = _cli("run", exp, "--replications", "1", "--out", tmp_path / "a", "--jobs", "1000")
    assert done.returncode == 0, done.stderr
    cores = max_jobs()
    assert f"note: --jobs 1000 is more than the {cores} cores here: using {cores}" in done.stderr
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["jobs"] == cores


def test_tasks_are_streamed_lazily() -> None:
    model = load_experiment(FIXTURES / "determinism.yaml")
    start = time.monotonic()
    tasks = tasks_of(model, 10**9)
    first = [next(tasks) for _ in range(3)]
    assert time.monotonic() - start < 1.0
    assert [t.key for t in first] == [("baseline", "split", r) for r in range(3)]


def test_pool_takes_tasks_only_as_workers_free_up() -> None:
    taken = 0

    def items():  # type: ignore[no-untyped-def]
        nonlocal taken
        for i in range(10**6):
            taken += 1
            yield -i

    results = imap_unordered(abs, items(), 2, dict, ())
    assert next(results) >= 0
    assert taken <= 2 * IN_FLIGHT + 1
    results.close()


# ------------------------------------------------------------------- undefined metrics
def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"bare {name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_no_recovery_is_null_with_its_reason(exp: Path, tmp_path: Path) -> None:
    """A hang that never ends: time_to_recover_s is null with why, in runs.jsonl, the
    summary, the hypothesis and the report; every JSON file parses strictly."""
    text = exp.read_text().replace(
        "{kind: hang, scope: driver, target: {driver: net}, at_s: 60, duration_s: 40}",
        "{kind: hang, scope: process, target: {role: hypervisor}, at_s: 60}",
    )
    exp.write_text(
        text + "hypotheses:\n  - {name: recovers, metric: time_to_recover_s, max: 100}\n"
    )
    out = tmp_path / "out"
    outcome = run_experiment(exp, out, replications=2)
    for name in ("summary.json", "manifest.json"):
        _strict((out / name).read_text())
    runs = [_strict(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    hung = [r for r in runs if r["scenario"] == "hang-net"]  # type: ignore[index]
    assert {r["metrics"]["time_to_recover_s"] for r in hung} == {None}  # type: ignore[index]
    assert {r["undefined"]["time_to_recover_s"] for r in hung} == {  # type: ignore[index]
        "not recovered by the end of the run"
    }
    row = next(r for r in outcome.summary["rows"] if r["scenario"] == "hang-net")
    assert row["metrics"]["time_to_recover_s"] == {
        "mean": None,
        "ci95": [None, None],
        "n": 0,
        "undefined": "undefined in 2 of 2 replications: not recovered by the end of the run",
    }
    other = next(r for r in outcome.summary["rows"] if r["scenario"] == "crash-hv")
    assert "undefined" not in other["metrics"]["time_to_recover_s"]
    failed = [h for h in outcome.hypotheses if not h["held"]]
    assert {h["scenario"] for h in failed} == {"hang-net"}
    assert all("not recovered" in h["undefined"] for h in failed)
    done = _cli("report", out, "--no-figures", "--no-timelines")
    assert done.returncode == 0, done.stderr
    assert "note: time_to_recover_s is undefined in some runs" in done.stderr
    assert "(mean n/a)" in (out / "report.md").read_text()


def test_summaries_leave_undefined_values_out() -> None:
    from sim.experiment.stats import paired, summarize

    assert summarize([1.0, None, 3.0], "why") == {
        "mean": 2.0, "ci95": [-10.706205, 14.706205], "n": 2,
        "undefined": "undefined in 1 of 3 replications: why",
    }  # fmt: skip
    assert summarize([1.0, 3.0]) == {"mean": 2.0, "ci95": [-10.706205, 14.706205], "n": 2}
    assert paired([None, 1.0], [2.0, 4.0], "why") == {
        "diff_mean": 3.0, "ci95": [3.0, 3.0],
        "undefined": "undefined in 1 of 2 replications: why",
    }  # fmt: skip
    assert paired([None], [None])["diff_mean"] is None


def test_non_finite_metric_becomes_null_with_a_reason() -> None:
    from sim.experiment.runner import defined

    values, why = defined({"a": 1.23456789, "b": math.inf, "time_to_recover_s": None})
    assert values == {"a": 1.234568, "b": None, "time_to_recover_s": None}
    assert why == {
        "b": "not a finite number (inf): an input is infinite or out of range",
        "time_to_recover_s": "not recovered by the end of the run",
    }
