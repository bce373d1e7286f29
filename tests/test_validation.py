"""One bad input file per validation rule (CONVENTIONS 15).

Every ``tests/bad/*.yaml`` is a copy of a fixture from ``tests/fixtures/`` with one defect.
Its header names the rule and the issue loading it must report::

    # rule: <the rule the file breaks>
    # expect: [<file, relative to the bad file> ]line <n>: <field, or - for none>: <message part>
    # issues: <exact number of issues>                               (optional)

Each ``expect`` line must match one reported :class:`~sim.errors.ConfigIssue`: same file
(default: the bad file itself), same line, same field, and a message containing the text.
The loader is chosen by the file's ``kind:`` (``load_any`` when it has none we know).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.errors import ConfigError, ConfigIssue
from sim.model.load import load_catalog, load_experiment, load_system, load_workload
from sim.model.loader import load_any, load_as
from sim.schema import ClientProfiles

TESTS = Path(__file__).parent
BAD = TESTS / "bad"
FIXTURES = TESTS / "fixtures"

LOADERS: dict[str, Callable[[Path], object]] = {
    "catalog": load_catalog,
    "topology": load_system,
    "workload": load_workload,
    "client-profiles": lambda path: load_as(path, ClientProfiles),
    "experiment": load_experiment,
}

KIND_RE = re.compile(r"^kind:\s*([\w-]+)\s*$", re.MULTILINE)
RULE_RE = re.compile(r"^# rule: (.+)$", re.MULTILINE)
ISSUES_RE = re.compile(r"^# issues: (\d+)$", re.MULTILINE)
EXPECT_RE = re.compile(
    r"^# expect: (?:(?P<file>\S+) )?line (?P<line>\d+): (?P<field>\S+): (?P<message>.+)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Expected:
    file: Path
    line: int
    field: str
    message: str

    def matches(self, issue: ConfigIssue) -> bool:
        return (
            Path(issue.file).resolve() == self.file
            and issue.line == self.line
            and issue.field == self.field
            and self.message in issue.message
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: ...{self.message}..."


def expectations(path: Path) -> list[Expected]:
    out = []
    for m in EXPECT_RE.finditer(path.read_text(encoding="utf-8")):
        file = (path.parent / m["file"]).resolve() if m["file"] else path.resolve()
        field = "" if m["field"] == "-" else m["field"]
        out.append(Expected(file, int(m["line"]), field, m["message"]))
    return out


def loader_for(path: Path) -> Callable[[Path], object]:
    m = KIND_RE.search(path.read_text(encoding="utf-8"))
    return LOADERS.get(m[1], load_any) if m else load_any


def load_issues(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        loader_for(path)(path)
    return info.value.issues


BAD_FILES = sorted(BAD.glob("*.yaml"))
FIXTURE_FILES = sorted(FIXTURES.glob("*.yaml"))


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_file_reports_its_rule(path: Path) -> None:
    issues = load_issues(path)
    got = "\n".join(str(i) for i in issues)
    for want in expectations(path):
        assert any(want.matches(i) for i in issues), f"expected {want}\ngot:\n{got}"
    if m := ISSUES_RE.search(path.read_text(encoding="utf-8")):
        assert len(issues) == int(m[1]), got


def test_every_bad_file_names_one_rule_and_an_expectation() -> None:
    rules = []
    for path in BAD_FILES:
        text = path.read_text(encoding="utf-8")
        found = RULE_RE.findall(text)
        assert len(found) == 1, f"{path.name}: needs exactly one '# rule:' line"
        assert expectations(path), f"{path.name}: needs an '# expect:' line"
        rules += found
    assert len(rules) == len(set(rules)), "two bad files claim the same rule"
    assert len(BAD_FILES) >= 90


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_fixture_loads_cleanly(path: Path) -> None:
    """The bad files are fixtures plus one defect: the fixtures themselves must be valid."""
    loader_for(path)(path)


# ------------------------------------------------------------------ all errors at once


def test_three_schema_defects_give_three_issues() -> None:
    path = BAD / "all-at-once-schema.yaml"
    issues = load_issues(path)
    assert [i.field for i in issues] == [
        "daemons[0].servers[0].max_workers",
        "daemons[1].unit",
        "units[1].restart",
    ]
    assert len({i.line for i in issues}) == 3
    assert all(i.file == str(path) for i in issues)


def test_three_cross_reference_defects_give_three_issues() -> None:
    issues = load_issues(BAD / "all-at-once-checks.yaml")
    assert sorted(i.field for i in issues) == [
        "lifecycle.stop",
        "object_kinds[1].driver",
        "procedures[5].name",
    ]


def test_experiment_reports_every_broken_reference_at_once(tmp_path: Path) -> None:
    text = (FIXTURES / "experiment.yaml").read_text(encoding="utf-8")
    text = text.replace("topology-mono.yaml", str(tmp_path / "missing-topology.yaml"))
    text = text.replace("workload.yaml", str(tmp_path / "missing-workload.yaml"))
    text = text.replace("topology-split.yaml", str(FIXTURES / "topology-split.yaml"))
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    issues = load_issues(path)
    not_found = sorted(Path(i.file).name for i in issues if i.message == "file not found")
    assert not_found == ["missing-topology.yaml", "missing-workload.yaml"]
    assert {i.field for i in issues if i.file == str(path)} == {"topologies[1]", "workload"}


# ------------------------------------------------------------------ how an issue reads


def test_issue_str_is_file_line_field_message() -> None:
    issue = ConfigIssue("topo.yaml", 12, "daemons[0].drivers[1]", "unknown driver 'nope'")
    assert str(issue) == "topo.yaml:12: daemons[0].drivers[1]: unknown driver 'nope'"


def test_issue_str_without_line_or_field() -> None:
    assert str(ConfigIssue("a.yaml", 0, "", "file not found")) == "a.yaml: file not found"
    assert str(ConfigIssue("a.yaml", 3, "", "invalid yaml: x")) == "a.yaml:3: invalid yaml: x"


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_every_reported_issue_is_one_line(path: Path) -> None:
    issues = load_issues(path)
    for issue in issues:
        text = str(issue)
        assert "\n" not in text
        if issue.line and issue.field:
            assert text == f"{issue.file}:{issue.line}: {issue.field}: {issue.message}"
    with pytest.raises(ConfigError) as info:
        loader_for(path)(path)
    assert str(info.value).splitlines() == [str(i) for i in issues]


# ------------------------------------------------------------------ known gaps in sim/


def test_unrouted_call_uri_points_at_the_call(tmp_path: Path) -> None:
    """A client call's unrouted uri should be reported on its own line, as ``profiles[i]``.

    ``check_experiment`` builds the location ``("profiles", <name>, "calls", j, "uri")``
    against the workload file, so the line falls back to ``profiles:`` and a call of an
    imported profile is blamed on the workload instead of the client-profiles file.
    """
    text = (FIXTURES / "workload.yaml").read_text(encoding="utf-8")
    text = text.replace("catalog: catalog.yaml", f"catalog: {FIXTURES / 'catalog.yaml'}")
    text = text.replace("imports: [clients.yaml]", f"imports: [{FIXTURES / 'clients.yaml'}]")
    old = '{procedure: guestStop, uri: "hv:///system"'
    text = text.replace(old, old.replace("system", "readonly"))
    (tmp_path / "workload.yaml").write_text(text, encoding="utf-8")
    exp = (FIXTURES / "experiment.yaml").read_text(encoding="utf-8")
    for name in ("topology-split.yaml", "topology-mono.yaml"):
        exp = exp.replace(name, str(FIXTURES / name))
    (tmp_path / "experiment.yaml").write_text(exp, encoding="utf-8")
    issues = load_issues(tmp_path / "experiment.yaml")
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "hv:///readonly" in s)
    assert [(i.line, i.field) for i in issues] == [(line, "profiles[0].calls[0].uri")]


@pytest.mark.xfail(
    strict=True,
    reason="_data_loc treats the union tag 'service' as a key",
    raises=AssertionError,
)
def test_stray_service_key_on_a_service_unit_keeps_other_fields_right(tmp_path: Path) -> None:
    """A service unit with a stray ``service:`` key: ``restart`` must still be located."""
    text = (FIXTURES / "topology-split.yaml").read_text(encoding="utf-8")
    text = text.replace("catalog: catalog.yaml", f"catalog: {FIXTURES / 'catalog.yaml'}")
    text = text.replace(
        "    daemon: daemon-b\n", "    daemon: daemon-b\n    service: x\n    restart: sometimes\n"
    )
    (tmp_path / "topology.yaml").write_text(text, encoding="utf-8")
    issues = load_issues(tmp_path / "topology.yaml")
    assert "units[3].restart" in {i.field for i in issues}


def test_call_with_unknown_guest_group(tmp_path: Path) -> None:
    """A call limited to a guest group that does not exist should be an error."""
    text = (FIXTURES / "workload.yaml").read_text(encoding="utf-8")
    text = text.replace("catalog: catalog.yaml", f"catalog: {FIXTURES / 'catalog.yaml'}")
    text = text.replace("imports: [clients.yaml]", f"imports: [{FIXTURES / 'clients.yaml'}]")
    text = text.replace("group: web", "group: no-such-group")
    (tmp_path / "workload.yaml").write_text(text, encoding="utf-8")
    issues = load_issues(tmp_path / "workload.yaml")
    assert [i.field for i in issues] == ["profiles[0].calls[0].group"]
