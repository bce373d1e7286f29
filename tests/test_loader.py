"""The YAML loader: line numbers, safe loading, and how schema errors are located."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ConfigError, ConfigIssue
from sim.model.load import load_system
from sim.model.loader import load_any, load_as, read_yaml
from sim.schema import Catalog, Topology

FIXTURES = Path(__file__).parent / "fixtures"


def write(tmp_path: Path, text: str, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def line_containing(text: str, needle: str) -> int:
    """1-based number of the only line of ``text`` that contains ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def issues_of(fn: object, *args: object) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.issues


def topology_text(old: str = "", new: str = "") -> str:
    text = (FIXTURES / "topology-split.yaml").read_text(encoding="utf-8")
    text = text.replace("catalog: catalog.yaml", f"catalog: {FIXTURES / 'catalog.yaml'}")
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# ------------------------------------------------------------------ line numbers

NESTED = """\
# a comment, then a blank line

top: 1
outer:
  inner:
    leaf: x        # line 6
  items:
    - a            # line 8

    - {k: v}       # line 10
    - - deep       # line 11
      - deeper     # line 12
  flow: [p, q]     # line 13
  text: >-
    folded text
    over lines
  after: 1         # line 17
"""


def test_lines_of_nested_keys(tmp_path: Path) -> None:
    src = read_yaml(write(tmp_path, NESTED))
    assert src.lines[("top",)] == 3
    assert src.lines[("outer",)] == 4
    assert src.lines[("outer", "inner")] == 5
    assert src.lines[("outer", "inner", "leaf")] == 6
    assert src.lines[("outer", "text")] == 14
    assert src.lines[("outer", "after")] == 17


def test_lines_of_list_items(tmp_path: Path) -> None:
    src = read_yaml(write(tmp_path, NESTED))
    assert src.lines[("outer", "items", 0)] == 8
    assert src.lines[("outer", "items", 1)] == 10
    assert src.lines[("outer", "items", 1, "k")] == 10
    assert src.lines[("outer", "items", 2)] == 11
    assert src.lines[("outer", "items", 2, 0)] == 11
    assert src.lines[("outer", "items", 2, 1)] == 12
    assert src.lines[("outer", "flow", 1)] == 13


def test_line_of_a_missing_location_is_its_deepest_existing_parent(tmp_path: Path) -> None:
    src = read_yaml(write(tmp_path, NESTED))
    assert src.line_of(("outer", "inner", "nope", 3)) == 5
    assert src.line_of(("nope",)) == 1


def test_data_is_plain(tmp_path: Path) -> None:
    data = read_yaml(write(tmp_path, NESTED)).data
    assert data["outer"]["items"] == ["a", {"k": "v"}, ["deep", "deeper"]]
    assert type(data["outer"]["text"]) is str
    assert data["outer"]["text"] == "folded text over lines"


def test_schema_error_in_a_list_item_is_on_that_line(tmp_path: Path) -> None:
    # the second daemon's only server, written in flow style
    text = topology_text(
        "{name: main, sockets: [daemon-b.socket], assumption: fixture}",
        "{name: main, sockets: [daemon-b.socket], max_workers: -1, assumption: fixture}",
    )
    issues = issues_of(load_system, write(tmp_path, text))
    assert [(i.line, i.field) for i in issues] == [
        (line_containing(text, "max_workers: -1"), "daemons[1].servers[0].max_workers")
    ]


def test_schema_error_in_a_nested_block_key_is_on_that_line(tmp_path: Path) -> None:
    text = topology_text("        prio_workers: 1\n", "        prio_workers: -2\n")
    issues = issues_of(load_system, write(tmp_path, text))
    assert [(i.line, i.field) for i in issues] == [
        (line_containing(text, "prio_workers: -2"), "daemons[0].servers[0].prio_workers")
    ]


def test_cross_reference_error_in_a_flow_list_is_on_that_line(tmp_path: Path) -> None:
    text = topology_text("sockets: [/run/b-sock]", "sockets: [/run/b-sock, /run/nowhere]")
    issues = issues_of(load_system, write(tmp_path, text))
    assert [(i.line, i.field) for i in issues] == [
        (line_containing(text, "/run/nowhere"), "routes[2].sockets[1]")
    ]


# ------------------------------------------------------------------ unknown keys


def test_unknown_key_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = topology_text("        prio_workers: 1\n", "        prio_workers: 1\n        prio: 3\n")
    issues = issues_of(load_system, write(tmp_path, text))
    assert len(issues) == 1
    (issue,) = issues
    assert issue.line == line_containing(text, "        prio: 3")
    assert issue.field == "daemons[0].servers[0].prio"
    assert issue.message == "unknown key"


def test_unknown_key_in_a_flow_mapping_is_reported_on_its_line(tmp_path: Path) -> None:
    text = topology_text("{action: enable, pattern:", "{action: enable, glob: x, pattern:")
    issues = issues_of(load_system, write(tmp_path, text))
    assert [(i.line, i.field, i.message) for i in issues] == [
        (line_containing(text, "glob: x"), "preset.rules[0].glob", "unknown key")
    ]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = topology_text("boot_target:", "colour: red\nboot_target:")
    issues = issues_of(load_system, write(tmp_path, text))
    assert [(i.line, i.field, i.message) for i in issues] == [
        (line_containing(text, "colour: red"), "colour", "unknown key")
    ]


# ------------------------------------------------------------------ safe loading


@pytest.mark.parametrize(
    "template",
    [
        'name: !!python/object/apply:os.system ["touch {marker}"]\n',
        "name: !!python/object/apply:os.system\n  - touch {marker}\n",
        'drivers: !!python/object/apply:os.system ["touch {marker}"]\n',
        "name: !!python/object/new:subprocess.call {{args: [touch, {marker}]}}\n",
        "description: !!python/name:os.system\n",
        "name: !custom {marker}\n",
    ],
    ids=["scalar-field", "block-seq", "list-field", "mapping", "name-tag", "local-tag"],
)
def test_python_tags_are_never_executed(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "executed"
    path = write(tmp_path, "kind: catalog\n" + template.format(marker=marker))
    with pytest.raises(ConfigError):
        load_as(path, Catalog)
    assert not marker.exists()


def test_python_tag_gives_a_config_error_on_its_line(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = f'kind: catalog\nname: !!python/object/apply:os.system ["touch {marker}"]\n'
    issues = issues_of(load_as, write(tmp_path, text), Catalog)
    assert ("name", 2) in {(i.field, i.line) for i in issues}
    assert not marker.exists()


def test_python_tag_is_refused_even_where_the_value_would_fit(tmp_path: Path) -> None:
    text = topology_text(
        "    roles: [network]\n", "    roles: !!python/object/apply:os.getcwd []\n"
    )
    issues = issues_of(load_system, write(tmp_path, text))
    assert any("tag" in i.message for i in issues)


# ------------------------------------------------------------------ yaml-level errors


def test_duplicate_key_is_reported_on_the_second_occurrence(tmp_path: Path) -> None:
    issues = issues_of(read_yaml, write(tmp_path, "kind: catalog\nname: a\nx: 1\nname: b\n"))
    assert [(i.line, i.field) for i in issues] == [(4, "")]
    assert issues[0].message.startswith('invalid yaml: found duplicate key "name"')


def test_syntax_error_line(tmp_path: Path) -> None:
    issues = issues_of(read_yaml, write(tmp_path, "kind: catalog\nname: [a, b\nx: 1\n"))
    assert len(issues) == 1
    assert issues[0].message.startswith("invalid yaml:")
    assert issues[0].line in (2, 3, 4)


def test_two_documents_in_one_file_are_refused(tmp_path: Path) -> None:
    issues = issues_of(read_yaml, write(tmp_path, "kind: catalog\n---\nkind: topology\n"))
    assert issues[0].message.startswith("invalid yaml:")


def test_merge_keys_are_resolved_with_a_line(tmp_path: Path) -> None:
    text = "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n"
    src = read_yaml(write(tmp_path, text))
    assert src.data["m"] == {"x": 1, "y": 2}
    assert src.lines[("m", "y")] == 4
    assert src.lines[("m", "x")] in (1, 2, 3)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert issues_of(read_yaml, path) == [ConfigIssue(str(path), 0, "", "file not found")]


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("kind: catalog\nname: caf\u00e9\n".encode("latin-1"))
    (issue,) = issues_of(read_yaml, path)
    assert issue.message.startswith("cannot read file")


@pytest.mark.parametrize("kind", ["[catalog]", "{a: 1}", "3", "null"])
def test_kind_that_is_not_a_string(tmp_path: Path, kind: str) -> None:
    (issue,) = issues_of(load_any, write(tmp_path, f"name: x\nkind: {kind}\n"))
    assert (issue.line, issue.field) == (2, "kind")
    assert issue.message.startswith("kind must be one of")


def test_load_as_refuses_another_kind() -> None:
    (issue,) = issues_of(load_as, FIXTURES / "catalog.yaml", Topology)
    assert issue.field == "kind"
    assert issue.message == "expected a topology file, got kind 'catalog'"


def test_load_any_picks_the_model_by_kind() -> None:
    assert isinstance(load_any(FIXTURES / "catalog.yaml").doc, Catalog)
    assert isinstance(load_any(FIXTURES / "topology-mono.yaml").doc, Topology)


# ----------------------------------------------------------------------------- overlays
MODELS = Path(__file__).resolve().parent.parent / "models" / "libvirt"
SPLIT = Path(__file__).parent / "fixtures" / "topology-split.yaml"


def overlay(tmp_path: Path, text: str, base: Path = SPLIT) -> Path:
    """``text`` as ``over.yaml`` next to a copy of ``base`` (``base.yaml``) and its catalog."""
    (tmp_path / "base.yaml").write_text(base.read_text().replace("catalog.yaml", "cat.yaml"))
    (tmp_path / "cat.yaml").write_text((base.parent / "catalog.yaml").read_text())
    path = tmp_path / "over.yaml"
    path.write_text(text)
    return path


def overlay_issues(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_system(path)
    return info.value.issues


def test_overlay_replaces_top_level_keys_and_patches_named_items(tmp_path: Path) -> None:
    path = overlay(
        tmp_path,
        "kind: topology\nextends: base.yaml\nname: split-x\n"
        "patch:\n  daemons:\n    daemon-a: {idle_timeout_s: 7}\n",
    )
    base, new = load_system(tmp_path / "base.yaml"), load_system(path)
    assert new.name == "split-x"
    assert new.daemons["daemon-a"].idle_timeout_s == 7
    changed = {"name", "daemons"}
    old_doc, new_doc = base.topology.doc.model_dump(), new.topology.doc.model_dump()
    assert {k: v for k, v in old_doc.items() if k not in changed} == {
        k: v for k, v in new_doc.items() if k not in changed
    }
    rest = [d for d in new_doc["daemons"] if d["name"] != "daemon-a"]
    assert rest == [d for d in old_doc["daemons"] if d["name"] != "daemon-a"]


def test_overlay_error_in_a_patch_names_the_patch_line(tmp_path: Path) -> None:
    path = overlay(
        tmp_path,
        "kind: topology\nextends: base.yaml\nname: x\npatch:\n  daemons:\n"
        "    daemon-a:\n      idle_timeout_s: -1\n",
    )
    (issue,) = overlay_issues(path)
    assert (Path(issue.file).name, issue.line) == ("over.yaml", 7)
    assert issue.field.endswith("idle_timeout_s")


def test_overlay_patch_of_an_unknown_item_is_an_error(tmp_path: Path) -> None:
    path = overlay(
        tmp_path, "kind: topology\nextends: base.yaml\npatch:\n  daemons:\n    nope: {x: 1}\n"
    )
    (issue,) = overlay_issues(path)
    assert issue.line == 5 and "no item named 'nope' in 'daemons'" in issue.message


def test_overlay_patch_of_a_field_that_is_not_a_named_list_is_an_error(tmp_path: Path) -> None:
    path = overlay(tmp_path, "kind: topology\nextends: base.yaml\npatch:\n  name: {a: {}}\n")
    (issue,) = overlay_issues(path)
    assert "'name' is not a list of named items" in issue.message


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("../base.yaml", "extends must name a file in the same folder"),
        ("missing.yaml", "extends: file 'missing.yaml' not found"),
        ("over.yaml", "extends cycle"),
    ],
)
def test_overlay_extends_errors(tmp_path: Path, ref: str, message: str) -> None:
    path = overlay(tmp_path, f"kind: topology\nname: x\nextends: {ref}\n")
    (issue,) = overlay_issues(path)
    assert issue.line == 3 and message in issue.message


def test_overlay_of_another_kind_is_an_error(tmp_path: Path) -> None:
    path = overlay(tmp_path, "kind: workload\nextends: base.yaml\n")
    with pytest.raises(ConfigError, match="extends a topology file"):
        load_any(path)


def test_patch_without_extends_is_an_error(tmp_path: Path) -> None:
    text = SPLIT.read_text() + "patch: {daemons: {}}\n"
    (tmp_path / "catalog.yaml").write_text((SPLIT.parent / "catalog.yaml").read_text())
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(ConfigError, match="patch needs 'extends:'"):
        load_system(tmp_path / "t.yaml")


@pytest.mark.parametrize("name", ["monolithic", "modular"])
def test_shipped_nosystemd_models_are_their_base_without_a_supervisor(name: str) -> None:
    base = load_system(MODELS / f"{name}.yaml").topology.doc
    new = load_system(MODELS / f"{name}-nosystemd.yaml").topology.doc
    assert (new.supervisor, base.supervisor) == ("none", "systemd")
    assert sorted(new.manual_start) == sorted(d.name for d in new.daemons)
    assert new.units == base.units and new.routes == base.routes
    assert all(d.idle_timeout_s is None for d in new.daemons)
    assert [d.name for d in new.daemons] == [d.name for d in base.daemons]
