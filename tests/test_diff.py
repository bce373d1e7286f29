"""``virtchaos diff``: semantic differences between two topologies, risk marks, static blast
radius, Markdown; each harmful mutation class of the fixture host is flagged, harmless
edits are not."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from unitkit import (
    MAP,
    ROOT,
    WORKLOAD,
    binds_to_nodedev_service,
    comments_and_order,
    import_host,
    merged_mapping,
    network_socket_disabled,
    no_restart,
    pool_of_two,
    requires_nodedev_socket,
)

from sim.cli import main as cli
from sim.model.load import load_system, load_workload
from sim.model.resolved import WorkloadModel
from sim.static.modeldiff import ModelDiff, compare_models, diff_models, to_markdown

runner = CliRunner()
QEMU = "virtqemud.service"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("diff")


@pytest.fixture(scope="module")
def original(tmp: Path) -> Path:
    return import_host(tmp, "original")


@pytest.fixture(scope="module")
def workload() -> WorkloadModel:
    return load_workload(WORKLOAD)


def diff_to(original: Path, mutated: Path, workload: WorkloadModel) -> ModelDiff:
    return diff_models(load_system(original), load_system(mutated), workload)


def test_same_model_has_no_difference(original: Path, workload: WorkloadModel) -> None:
    d = diff_to(original, original, workload)
    assert (d.changes, d.blast, d.risks) == ((), (), [])


def test_harmless_edits_are_not_flagged(tmp: Path, original: Path) -> None:
    mutated = import_host(tmp, "harmless", comments_and_order)
    assert compare_models(load_system(original), load_system(mutated)) == []


@pytest.mark.parametrize(
    ("edit", "section", "kind", "subject"),
    [
        (no_restart, "policies", "restart", "virtqemud.service"),
        (
            binds_to_nodedev_service,
            "edges",
            "binds_to",
            "virtqemud.service -> virtnodedevd.service",
        ),
        (requires_nodedev_socket, "edges", "requires", "virtqemud.service -> virtnodedevd.socket"),
        (pool_of_two, "limits", "max_workers", "virtqemud/main"),
        (network_socket_disabled, "preset", "state", "virtnetworkd.socket"),
    ],
    ids=["no-restart", "binds-to", "requires", "pool-of-two", "preset-disabled"],
)
def test_harmful_unit_tree_changes_are_flagged_as_risks(
    edit: object,
    section: str,
    kind: str,
    subject: str,
    tmp: Path,
    original: Path,
    workload: WorkloadModel,
) -> None:
    mutated = import_host(tmp, kind, edit)  # type: ignore[arg-type]
    d = diff_to(original, mutated, workload)
    flagged = [c for c in d.changes if (c.section, c.kind, c.subject) == (section, kind, subject)]
    assert flagged and flagged[0].risk, [str(c) for c in d.changes]


def test_merged_daemons_are_flagged_with_a_larger_static_blast_radius(
    tmp: Path, original: Path, workload: WorkloadModel
) -> None:
    mutated = import_host(tmp, "merged", mapping=merged_mapping(tmp))
    d = diff_to(original, mutated, workload)
    hosts = [c for c in d.changes if c.kind == "daemon->driver" and c.change == "added"]
    assert [(c.subject, bool(c.risk)) for c in hosts] == [("virtqemud -> nodedev", True)]
    grew = {(b.target, b.mode) for b in d.blast if b.risk}
    assert ("driver:nodedev", "crash") in grew


def test_markdown_has_edge_settings_and_blast_tables(
    tmp: Path, original: Path, workload: WorkloadModel
) -> None:
    mutated = import_host(tmp, "md", no_restart, binds_to_nodedev_service, pool_of_two)
    text = to_markdown(diff_to(original, mutated, workload))
    assert text.startswith("### Model diff")
    assert "| + | binds_to | `virtqemud.service -> virtnodedevd.service` |" in text
    assert "| policies | `virtqemud.service` | restart | `on-failure` | `no` |" in text
    assert "#### Static blast radius (of 50 guests)" in text


def test_monolithic_to_modular_moves_every_driver(workload: WorkloadModel) -> None:
    libvirt = ROOT / "models" / "libvirt"
    d = diff_models(
        load_system(libvirt / "monolithic.yaml"), load_system(libvirt / "modular.yaml"), workload
    )
    moved = {c.subject for c in d.changes if c.kind == "daemon->driver" and c.change == "added"}
    assert "virtnodedevd -> nodedev" in moved and "virtqemud -> qemu" in moved
    hang = next(b for b in d.blast if (b.target, b.mode) == ("driver:nodedev", "crash"))
    assert hang.new_guests is not None and hang.old_guests is not None


def test_cli_diff_writes_markdown_and_fails_on_risk_when_asked(tmp: Path, original: Path) -> None:
    mutated = import_host(tmp, "cli", no_restart)
    md = tmp / "diff.md"
    args = ["diff", str(original), str(mutated), "--workload", str(WORKLOAD)]
    result = runner.invoke(cli.app, [*args, "--markdown", str(md)])
    assert result.exit_code == 0, result.stderr
    assert "! virtqemud.service: restart on-failure -> no" in result.stdout
    assert md.read_text().startswith("### Model diff")
    assert runner.invoke(cli.app, [*args, "--fail-on-risk"]).exit_code == 1
    same = runner.invoke(cli.app, ["diff", str(original), str(original), "-w", str(WORKLOAD)])
    assert same.exit_code == 0 and "0 changes, 0 risks" in same.stdout


def test_cli_diff_without_a_workload_is_invalid_input(original: Path) -> None:
    result = runner.invoke(cli.app, ["diff", str(original), str(original)])
    assert result.exit_code == 2
    assert "--workload" in result.stderr


def test_mapping_file_validates() -> None:
    result = runner.invoke(cli.app, ["validate", str(MAP)])
    assert result.exit_code == 0 and "import-map libvirt" in result.stdout
