"""``run --shard K/N`` and ``merge``: shards of a run joined give the bytes of the whole run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.errors import ConfigError, ResultsError
from sim.experiment.merge import merge_shards
from sim.experiment.runner import Shard, run_experiment

FIXTURES = Path(__file__).parent / "fixtures"
FIXED = FIXTURES / "determinism.yaml"  # 3 scenarios, 2 replications
AUTO = FIXTURES / "sequential.yaml"  # 3 scenarios, replications: auto


def _run_shards(experiment: Path, base: Path, count: int) -> list[Path]:
    folders = []
    for k in range(1, count + 1):
        out = base / f"shard{k}"
        run_experiment(experiment, out=out, jobs=1, shard=Shard(k, count))
        folders.append(out)
    return folders


@pytest.mark.parametrize("experiment", [FIXED, AUTO], ids=["fixed", "auto"])
def test_merged_shards_give_the_whole_runs_bytes(experiment: Path, tmp_path: Path) -> None:
    run_experiment(experiment, out=tmp_path / "whole", jobs=1)
    shards = _run_shards(experiment, tmp_path, 2)
    merge_shards(list(reversed(shards)), tmp_path / "merged")
    for name in ("summary.json", "summary.csv", "runs.jsonl"):
        assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


def test_a_shard_runs_only_its_scenarios(tmp_path: Path) -> None:
    outcome = run_experiment(FIXED, out=tmp_path / "s", jobs=1, shard=Shard(2, 2))
    assert {r["scenario"] for r in outcome.summary["rows"]} == {"crash-hv"}
    assert outcome.summary["shard"] == "2/2"
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["shard"] == "2/2"


def test_a_missing_shard_is_refused(tmp_path: Path) -> None:
    shards = _run_shards(FIXED, tmp_path, 3)
    with pytest.raises(ResultsError, match=r"missing \[2\]"):
        merge_shards([shards[0], shards[2]], tmp_path / "merged")


def test_a_shard_given_twice_is_refused(tmp_path: Path) -> None:
    shards = _run_shards(FIXED, tmp_path, 2)
    with pytest.raises(ResultsError, match=r"twice \[1\]"):
        merge_shards([shards[0], shards[0], shards[1]], tmp_path / "merged")


def test_a_whole_run_is_not_a_shard(tmp_path: Path) -> None:
    run_experiment(FIXED, out=tmp_path / "whole", jobs=1)
    with pytest.raises(ResultsError, match="is not a shard"):
        merge_shards([tmp_path / "whole"], tmp_path / "merged")


def test_shards_of_other_inputs_are_refused(tmp_path: Path) -> None:
    one = tmp_path / "one"
    run_experiment(FIXED, out=one, jobs=1, shard=Shard(1, 2))
    two = tmp_path / "two"
    run_experiment(FIXED, out=two, jobs=1, seed=99, shard=Shard(2, 2))
    with pytest.raises(ResultsError, match=r"ran other inputs.*seed 11 -> 99"):
        merge_shards([one, two], tmp_path / "merged")


def test_a_folder_of_one_shard_does_not_resume_as_another(tmp_path: Path) -> None:
    out = tmp_path / "s"
    run_experiment(FIXED, out=out, jobs=1, shard=Shard(1, 2))
    with pytest.raises(ResultsError):
        run_experiment(FIXED, out=out, jobs=1, shard=Shard(2, 2))


def test_more_shards_than_scenarios_is_bad_input() -> None:
    with pytest.raises(ConfigError, match="at most 3 shards"):
        run_experiment(FIXED, out=Path("/nonexistent"), jobs=1, shard=Shard(4, 4))


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/"])
def test_shard_syntax(text: str) -> None:
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_shard_parse() -> None:
    assert Shard.parse("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"


# ------------------------------------------------------------------ the command line
def _cli(*args: str | Path) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from sim.cli import main as cli

    done = CliRunner().invoke(cli.app, [str(a) for a in args])
    return done.exit_code, done.stdout, done.stderr


def test_cli_shards_and_merge(tmp_path: Path) -> None:
    for k in (1, 2):
        code, _, err = _cli("run", FIXED, "--shard", f"{k}/2", "--out", tmp_path / f"s{k}")
        assert code == 0, err
    code, out, err = _cli("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m")
    assert code == 0, err
    assert "merged 2 shards, 12 runs" in out
    run_experiment(FIXED, out=tmp_path / "whole", jobs=1)
    assert _summary(tmp_path / "m") == _summary(tmp_path / "whole")


def _summary(folder: Path) -> bytes:
    return (folder / "summary.json").read_bytes()


def test_cli_merge_of_an_incomplete_set_is_exit_2(tmp_path: Path) -> None:
    code, _, _ = _cli("run", FIXED, "--shard", "1/2", "--out", tmp_path / "s1")
    assert code == 0
    code, _, err = _cli("merge", tmp_path / "s1", "--out", tmp_path / "m")
    assert code == 2 and "missing [2]" in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--shard", "3/2", "1 <= K <= N"),
        ("--replications", "0", "a number from 1"),
        ("--replications", "many", "or auto"),
    ],
)
def test_cli_bad_values_are_exit_2(flag: str, value: str, message: str, tmp_path: Path) -> None:
    code, _, err = _cli("run", FIXED, flag, value, "--out", tmp_path / "x")
    assert code == 2 and message in err


def test_cli_replications_auto_uses_the_stopping_rule(tmp_path: Path) -> None:
    code, _, err = _cli("run", AUTO, "--replications", "auto", "--out", tmp_path / "a")
    assert code == 0, err
    summary = json.loads(_summary(tmp_path / "a"))
    assert summary["stopping"]["min"] == 3
