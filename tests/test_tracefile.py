"""Trace files: filters by subject, time and kind, and the Chrome/Perfetto export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import main as cli
from sim.errors import ResultsError
from sim.experiment.runner import run_experiment
from sim.experiment.tracefile import read_trace, select, to_chrome

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Replication 0 of the fixture's crash-hv scenario in the split topology: the
    hypervisor daemon crashes at 100 s, systemd restarts it, reset-failed at 200 s."""
    folder = tmp_path_factory.mktemp("trace") / "r"
    run_experiment(ROOT / "tests/fixtures/experiment.yaml", folder)
    code, _, err = run(
        "replay", folder, "--replication", "0", "--scenario", "crash-hv", "--topology", "split"
    )
    assert code == 0, err
    return folder / "traces" / "crash-hv.split.r0.jsonl"


def test_select_by_subject_time_and_kind(trace_file: Path) -> None:
    events = read_trace(trace_file)
    chosen = select(events, ["daemon-a*"], 99.0, 201.0)
    assert chosen and all(str(e["subject"]).startswith("daemon-a") for e in chosen)
    assert all(99.0 <= e["t"] <= 201.0 for e in chosen)
    assert [e["t"] for e in chosen] == sorted(e["t"] for e in chosen)
    expected = [
        e for e in events if str(e["subject"]).startswith("daemon-a") and 99 <= e["t"] <= 201
    ]
    assert len(chosen) == len(expected)
    kinds = {e["event"] for e in chosen}
    assert {"exited", "spawned", "ready", "action:reset-failed"} <= kinds
    assert {e["event"] for e in select(events, kinds=["call"])} == {"call"}


def test_chrome_export_is_trace_events_in_microseconds(trace_file: Path) -> None:
    events = read_trace(trace_file)
    doc = json.loads(json.dumps(to_chrome(events, "t")))
    trace = doc["traceEvents"]
    calls = [e for e in events if e["event"] == "call"]
    spans = [e for e in trace if e["ph"] == "X"]
    assert len(spans) == len(calls)
    for call, span in zip(calls, spans, strict=True):
        assert span["ts"] == pytest.approx(call["t"] * 1e6)
        assert span["dur"] == pytest.approx(call["latency_ms"] * 1000)
        assert span["name"] == call["procedure"]
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"] for e in trace if e.get("name") == "thread_name"
    }
    assert set(threads.values()) == {e["subject"] for e in events}
    for e in trace:
        if e["ph"] in ("X", "i"):
            assert (e["pid"], e["tid"]) in threads
    processes = {e["pid"]: e["args"]["name"] for e in trace if e.get("name") == "process_name"}
    crash = next(e for e in trace if e["ph"] == "i" and e["name"] == "exited")
    assert processes[crash["pid"]] == "t: daemons" and threads[(crash["pid"], crash["tid"])] == (
        "daemon-a"
    )
    inject = next(e for e in trace if e["ph"] == "i" and e["name"] == "inject")
    assert processes[inject["pid"]] == "t: faults and actions"
    assert any(e["ph"] == "C" and e["name"] == "daemon-a busy workers" for e in trace)


def test_trace_verb_filters_and_exports(trace_file: Path, tmp_path: Path) -> None:
    code, out, _ = run("trace", trace_file, "--subject", "daemon-a.service", "--limit", "0")
    assert code == 0
    lines = out.splitlines()
    assert lines and all(line.split()[1] == "daemon-a.service" for line in lines)
    code, out, _ = run("trace", trace_file, "--from", "150", "--to", "250", "--event", "exited")
    assert code == 0 and out.split() == ["220.110", "daemon-a", "exited", "code=0,", "why=idle",
                                         "timeout"]  # fmt: skip
    out_file = tmp_path / "t.json"
    code, out, _ = run("trace", trace_file, "--perfetto", out_file, "--subject", "burst-*")
    assert code == 0 and "ui.perfetto.dev" in out
    doc = json.loads(out_file.read_text())
    assert {e["ph"] for e in doc["traceEvents"]} <= {"M", "X", "i", "C"}
    assert all(e["args"]["name"].startswith("burst-") for e in doc["traceEvents"]
               if e.get("name") == "thread_name")  # fmt: skip
    code, _, err = run("trace", tmp_path / "none.jsonl")
    assert code == 2 and "no such trace file" in err


def test_replay_timeline_filters(trace_file: Path) -> None:
    folder = trace_file.parent.parent
    args = ["replay", folder, "--replication", "0", "--scenario", "crash-hv", "--topology"]
    code, out, _ = run(*args, "split", "--subject", "fault*", "--from", "50")
    assert code == 0
    assert "inject" in out and "spawned" not in out


def test_bad_trace_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 0, "subject": "a", "event": "x"}\nnot json\n')
    with pytest.raises(ResultsError, match=r"bad.jsonl:2: not a trace line"):
        read_trace(bad)
