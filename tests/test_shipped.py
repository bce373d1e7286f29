"""The shipped models and experiments as package data: ``models list``, ``init``, inputs
named by their repository path or bare name outside a checkout, and a wheel installed into
a fresh virtual environment (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim import _data
from sim.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
REPO_FILES = sorted(
    p.relative_to(ROOT).as_posix()
    for folder in ("models", "experiments")
    for p in (ROOT / folder).rglob("*")
    if p.suffix in (".yaml", ".json")
)

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_the_checkout_ships_the_repository_folders() -> None:
    assert sorted(i.relpath for i in _data.shipped()) == REPO_FILES
    assert (_data.root() / "models").resolve() == ROOT / "models"


def test_models_list_names_every_shipped_file_with_its_kind() -> None:
    code, out, _ = run("models", "list", "--format", "json")
    assert code == 0
    listed = json.loads(out)["files"]
    assert sorted(f["path"] for f in listed) == REPO_FILES
    kinds = {f["path"]: f["kind"] for f in listed}
    assert kinds["models/libvirt/modular.yaml"] == "topology"
    assert kinds["experiments/fesco-matrix.yaml"] == "experiment"
    code, out, _ = run("models", "list", "--kind", "workload")
    assert code == 0
    assert "models/workloads/virt-host.yaml" in out and "topology" not in out


def test_init_copies_keeps_identical_files_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "mine"
    code, out, _ = run("init", dest)
    assert code == 0 and f"wrote {len(REPO_FILES)} files" in out
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == REPO_FILES
    assert run("init", dest)[1].startswith("wrote 0 files")
    edited = dest / "models/libvirt/modular.yaml"
    edited.write_text(edited.read_text() + "# mine\n")
    code, _, err = run("init", dest)
    assert code == 2 and "modular.yaml exists and differs" in err
    assert edited.read_text().endswith("# mine\n")
    code, out, _ = run("init", dest, "--force")
    assert code == 0 and out.startswith("wrote 1 files")
    monkeypatch.chdir(dest)  # the copies' relative paths hold
    code, out, err = run("validate", "experiments/gate.yaml")
    assert (code, err) == (0, "")
    assert out.startswith("ok: experiments/gate.yaml ")  # the copy, no note


def test_outside_a_checkout_inputs_resolve_to_the_shipped_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("validate", "experiments/gate.yaml", "how-to-test")
    assert code == 0
    assert out.count("ok: ") == 2
    assert "note: how-to-test is not here: using the shipped" in err
    code, _, err = run("validate", "no-such-experiment")
    assert code == 2


def test_import_of_a_host_without_daemon_units_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a folder with no models/: the shipped import map is used; no unit of its
    daemons installed is one clear error, and no model is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "units").mkdir()
    code, _, err = run("import-units", "--units", "units", "--out", "host.yaml")
    assert code == 2
    assert err.startswith("units: --units: no libvirt daemon units found in units (")
    assert "virtqemud.service" in err and "catalog" not in err
    assert not (tmp_path / "host.yaml").exists()


@pytest.mark.slow
def test_an_installed_wheel_works_from_an_unrelated_folder(tmp_path: Path) -> None:
    """Build the wheel, install it (without dependencies: the test's own are reused) into
    a fresh virtual environment and use it as a person would, outside the checkout."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env_dir)
    pip = env_dir / "bin" / "pip"
    wheel = next(wheels.glob("virtchaos-*.whl"))
    subprocess.run([pip, "install", "-q", "--no-deps", wheel], check=True, capture_output=True)
    exe = env_dir / "bin" / "virtchaos"
    work = tmp_path / "elsewhere"
    work.mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"COLUMNS": "80"}

    def virtchaos(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], capture_output=True, text=True, cwd=work, env=environ, check=False
        )

    listed = virtchaos("models", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert str(env_dir) in json.loads(listed.stdout)["root"]  # not the checkout
    assert sorted(f["path"] for f in json.loads(listed.stdout)["files"]) == REPO_FILES
    assert virtchaos("init", "copy").returncode == 0
    assert (work / "copy/models/libvirt/modular.yaml").is_file()
    checked = virtchaos("validate", "experiments/how-to-test.yaml")
    assert checked.returncode == 0, checked.stderr
    ran = virtchaos("run", "how-to-test", "--replications", "1", "--out", "r")
    assert ran.returncode == 0, ran.stderr
    assert (work / "r/summary.json").is_file()
    assert "monolithic -> modular" in ran.stdout


def test_the_composite_action_calls_only_options_that_exist() -> None:
    """action.yml's steps call ``virtchaos VERB --option``: each option is one of VERB's."""
    import re

    from ruamel.yaml import YAML

    action = YAML(typ="safe").load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    scripts = "\n".join(step.get("run", "") for step in action["runs"]["steps"])
    joined = re.sub(r"\\\n\s*", " ", scripts)
    calls = re.findall(r"virtchaos ([a-z-]+)((?: [^\n]*)?)", joined)
    assert {verb for verb, _ in calls} == {"import-units", "gate"}
    for verb, rest in calls:
        code, helptext, _ = run(verb, "--help")
        assert code == 0
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
            assert option in helptext, (verb, option)
    used = set(re.findall(r"inputs\.([a-z-]+)", (ROOT / "action.yml").read_text()))
    assert used <= set(action["inputs"])
