"""``import-units``: the unit-file parser, presets, daemon configs, and imports of the fixture
hosts compared semantically with the hand-written models."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import main as cli
from sim.errors import ConfigError
from sim.experiment.runner import Task, run_one
from sim.importer import Inputs, import_units, to_yaml
from sim.importer.command import command, option_value
from sim.importer.conf import parse_conf_text
from sim.importer.directives import resolve, time_span
from sim.importer.presets import decide, load_presets, parse_preset_text
from sim.importer.units import Assignment, UnitFile, UnitTree, parse_unit_text
from sim.model.load import load_experiment, load_system
from sim.static.modeldiff import Change, compare_models

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "units"
MAP = ROOT / "models" / "libvirt" / "import-map.yaml"
runner = CliRunner()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def unit_from(tmp: Path, name: str, text: str) -> UnitFile:
    write(tmp / name, text)
    return UnitTree.scan([tmp]).load(name)


def fixture_inputs(host: str, out: Path, **kw: object) -> Inputs:
    base = FIXTURES / host
    units = [base / "usr/lib/systemd/system"]
    if (base / "etc/systemd/system").is_dir():
        units.append(base / "etc/systemd/system")
    args: dict[str, object] = {
        "units": units,
        "mapping": MAP,
        "output": out,
        "presets": [base / "usr/lib/systemd/system-preset"],
        "conf": base / "etc/libvirt",
        "root": base,
    }
    args.update(kw)
    return Inputs(**args)  # type: ignore[arg-type]


def imported(host: str, tmp: Path, name: str = "imported", **kw: object) -> Path:
    out = tmp / f"{name}.yaml"
    out.write_text(to_yaml(import_units(fixture_inputs(host, out, **kw))))
    return out


# ---------------------------------------------------------------------------- syntax
def test_repeated_list_keys_accumulate_and_empty_assignment_resets(tmp_path: Path) -> None:
    u = unit_from(
        tmp_path,
        "a.service",
        "[Unit]\nAfter=x.target\nAfter=y.target z.target\nWants=w.service\nWants=\n"
        "Wants=v.service\n[Service]\nRestart=always\nRestart=on-failure\n",
    )
    r = resolve(u)
    assert r.words("After") == ["x.target", "y.target", "z.target"]
    assert r.words("Wants") == ["v.service"]
    assert r.scalar("Restart").value == "on-failure"  # type: ignore[union-attr]


def test_line_continuation_joins_lines_and_skips_comments_inside(tmp_path: Path) -> None:
    text = (
        "[Unit]\nAfter=a.target \\\n# a comment inside\n  b.target \\\n  c.target\n"
        "Wants=d.service\n"
    )
    r = resolve(unit_from(tmp_path, "a.service", text))
    assert r.words("After") == ["a.target", "b.target", "c.target"]
    assert r.lines("After")[0].line == 2
    assert r.lines("Wants")[0].line == 6


def test_comments_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    text = "# head\n; semi\n\n[Unit]\n  # indented comment\nRequires=a.socket\n"
    assert [a.key for a in resolve(unit_from(tmp_path, "a.service", text)).unit.assignments] == [
        "Requires"
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[Unit]\nRequires=a.socket\nthis is not valid\n", 3, "expected 'Key=Value'"),
        ("Requires=a.socket\n[Unit]\n", 1, "before the first [Section]"),
        ("[Unit]\n[Service\n", 2, "invalid section header"),
        ("[Unit]\nDescription=x\n[Socket]\nListenStream=@runstatedir@/x\n", 4, "placeholder"),
        ("[Unit]\nbad key=1\n", 2, "invalid key"),
    ],
)
def test_parse_errors_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_unit_text(text, "some/dir/x.service")
    issue = exc.value.issues[0]
    assert (issue.file, issue.line) == ("some/dir/x.service", line)
    assert message in issue.message


def test_dropins_apply_after_the_main_file_in_lexical_order(tmp_path: Path) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    write(usr / "a.service", "[Service]\nRestart=no\nRestartSec=1\n[Unit]\nAfter=x.target\n")
    write(usr / "a.service.d" / "20-b.conf", "[Service]\nRestart=always\n")
    write(usr / "a.service.d" / "10-a.conf", "[Service]\nRestart=on-failure\nRestartSec=2\n")
    write(etc / "a.service.d" / "15-etc.conf", "[Unit]\nAfter=\nAfter=y.target\n")
    u = UnitTree.scan([usr, etc]).load("a.service")
    assert [p.name for p in u.dropins] == ["10-a.conf", "15-etc.conf", "20-b.conf"]
    r = resolve(u)
    assert r.scalar("Restart").value == "always"  # type: ignore[union-attr]
    assert r.scalar("RestartSec").value == "2"  # type: ignore[union-attr]
    assert r.words("After") == ["y.target"]


def test_later_directory_overrides_unit_file_and_same_named_dropin(tmp_path: Path) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    write(usr / "a.service", "[Service]\nRestart=no\n")
    write(etc / "a.service", "[Service]\nRestart=on-failure\n")
    write(usr / "a.service.d" / "x.conf", "[Service]\nRestartSec=5\n")
    write(etc / "a.service.d" / "x.conf", "[Service]\nRestartSec=7\n")
    u = UnitTree.scan([usr, etc]).load("a.service")
    assert u.path == etc / "a.service"
    assert u.dropins == [etc / "a.service.d" / "x.conf"]
    assert resolve(u).scalar("RestartSec").value == "7"  # type: ignore[union-attr]


def test_masked_unit_is_recognised(tmp_path: Path) -> None:
    os.symlink("/dev/null", tmp_path / "a.socket")
    assert UnitTree.scan([tmp_path]).load("a.socket").masked


def test_unknown_directives_are_reported_with_file_and_line(tmp_path: Path) -> None:
    text = "[Unit]\nDocumentation=man:a(8)\n[Service]\nLimitNOFILE=8192\nType=notify\n"
    r = resolve(unit_from(tmp_path, "a.service", text))
    assert [(u.where.rsplit(":", 1)[1], u.directive) for u in r.unsupported] == [
        ("4", "[Service] LimitNOFILE=8192")
    ]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("100ms", 0.1), ("5", 5.0), ("1min 30s", 90.0), ("2h", 7200.0), ("1s 500ms", 1.5)],
)
def test_time_spans(value: str, seconds: float) -> None:
    assert time_span(Assignment("Service", "RestartSec", value, "f", 1)) == pytest.approx(seconds)


def test_bad_time_span_names_file_and_line() -> None:
    with pytest.raises(ConfigError, match="RestartSec= must be a time span"):
        time_span(Assignment("Service", "RestartSec", "soon", "f.service", 9))


def test_command_line_expands_environment_and_environment_file(tmp_path: Path) -> None:
    write(tmp_path / "etc/sysconfig/a", '# comment\nA_ARGS="--timeout 300 --verbose"\n')
    text = (
        '[Service]\nEnvironment=A_ARGS="--timeout 120" "B=x y"\n'
        "EnvironmentFile=-/etc/sysconfig/a\nEnvironmentFile=-/etc/sysconfig/missing\n"
        "ExecStart=/usr/bin/a --other\nExecStart=\nExecStart=-/usr/bin/a $A_ARGS --b=${B}\n"
    )
    cmd = command(resolve(unit_from(tmp_path / "u", "a.service", text)), tmp_path)
    assert cmd is not None
    assert cmd.argv == ["/usr/bin/a", "--timeout", "300", "--verbose", "--b=x y"]
    assert option_value(cmd.argv, ["--timeout", "-t"]) == "300"
    assert option_value(["d", "--timeout=45"], ["--timeout"]) == "45"
    assert any("missing" in n for n in cmd.notes)


# ---------------------------------------------------------------------------- presets
def test_preset_first_match_wins_across_files_in_lexical_order(tmp_path: Path) -> None:
    usr, etc = tmp_path / "usr", tmp_path / "etc"
    write(usr / "90-default.preset", "enable a.service\nenable b*.socket\ndisable c.service\n")
    write(usr / "99-default-disable.preset", "disable *\n")
    write(etc / "50-local.preset", "# local choice wins: lexically first\ndisable a.service\n")
    rules = load_presets([usr, etc])
    units = {n: (True, []) for n in ("a.service", "b1.socket", "c.service", "d.service")}
    got = {n: d.enabled for n, d in decide(units, rules).items()}
    assert got == {"a.service": False, "b1.socket": True, "c.service": False, "d.service": False}


def test_preset_same_file_name_later_directory_replaces(tmp_path: Path) -> None:
    write(tmp_path / "usr" / "90-default.preset", "enable a.service\n")
    write(tmp_path / "etc" / "90-default.preset", "disable a.service\n")
    rules = load_presets([tmp_path / "usr", tmp_path / "etc"])
    assert [(r.action, r.pattern) for r in rules] == [("disable", "a.service")]


def test_preset_also_closure_static_units_and_no_match() -> None:
    rules = parse_preset_text("enable a.service\ndisable b.socket\ndisable s.target\n", "p")
    units = {
        "a.service": (True, ["b.socket"]),
        "b.socket": (True, ["c.socket"]),
        "c.socket": (True, []),
        "s.target": (False, []),
        "z.socket": (True, []),
    }
    got = decide(units, rules)
    assert got["b.socket"].enabled and got["b.socket"].why == "Also= of a.service"
    assert got["c.socket"].enabled  # transitively through b.socket's Also=
    assert got["s.target"].enabled and "static" in got["s.target"].why
    assert got["z.socket"].enabled and "no preset line matches" in got["z.socket"].why


def test_preset_unknown_action_is_an_error_with_line() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_preset_text("enable a.service\nturn-on b.service\n", "x.preset")
    assert (exc.value.issues[0].line, "unknown preset action" in str(exc.value)) == (2, True)


# ---------------------------------------------------------------------------- daemon configs
def test_conf_values_lists_comments_and_last_assignment() -> None:
    text = (
        '# comment\nmax_workers = 20\nlog_outputs="3:syslog:x" # trailing\n'
        'listen_addr = [ "a",\n   "b", ]\nmax_workers = 2\nkeepalive_interval = -1\n'
    )
    conf = parse_conf_text(text, "x.conf")
    assert conf["max_workers"].value == 2 and conf["max_workers"].line == 6
    assert conf["log_outputs"].value == "3:syslog:x"
    assert conf["listen_addr"].value == ["a", "b"]
    assert conf["keepalive_interval"].value == -1


@pytest.mark.parametrize(
    ("text", "line"), [("a = 1\nb = \n", 2), ("a = 1\nb 2\n", 2), ('x = [1,\n 2\n "a"]\n', 3)]
)
def test_conf_syntax_error_names_the_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_conf_text(text, "x.conf")
    assert exc.value.issues[0].line == line


def test_conf_sets_pool_reports_unknown_keys_and_clamps_min_workers(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    base = FIXTURES / "fedora35-modular" / "etc" / "libvirt"
    conf.mkdir()
    text = (base / "virtqemud.conf").read_text().replace("max_workers = 20", "max_workers = 2")
    (conf / "virtqemud.conf").write_text(text + 'unix_sock_group = "virt"\nadmin_max_clients = 7\n')
    result = import_units(fixture_inputs("fedora35-modular", tmp_path / "m.yaml", conf=conf))
    qemu = next(d for d in result.topology["daemons"] if d["name"] == "virtqemud")
    main, admin = qemu["servers"]
    assert (main["max_workers"], main["min_workers"], admin["max_clients"]) == (2, 2, 7)
    assert "lowered to max_workers" in main["assumption"]
    assert any(u.directive.startswith("unix_sock_group") for u in result.unsupported)


# ---------------------------------------------------------------------------- whole imports
# Differences between the fixture imports and the hand-written models that are legitimate:
# installed socket units carry a resolved SocketMode= (the hand-written models leave
# @sockmode@ unresolved, LIBVIRT-FACTS 1.1 appendix), and the TCP/TLS sockets set no
# RemoveOnStop= (the hand-written models set it "for uniformity"; it has no effect on a
# port).  Neither changes what the engine does.
def legitimate(c: Change) -> bool:
    rw_mode = c.kind == "listen" and [str(x) for x in c.new] == [f"{c.old[0]} 0666"]
    tcp = c.kind == "remove_on_stop" and c.subject.endswith(("-tcp.socket", "-tls.socket"))
    return rw_mode or tcp


@pytest.mark.parametrize(
    ("host", "model"),
    [("fedora34-monolithic", "monolithic.yaml"), ("fedora35-modular", "modular.yaml")],
)
def test_import_matches_the_hand_written_model(host: str, model: str, tmp_path: Path) -> None:
    ours = load_system(imported(host, tmp_path))
    theirs = load_system(ROOT / "models" / "libvirt" / model)
    changes = compare_models(theirs, ours)
    for c in changes:
        print(("legitimate: " if legitimate(c) else "DIFFERENCE: ") + str(c).strip())
    assert [str(c) for c in changes if not legitimate(c)] == []
    assert ours.enabled & set(ours.units) == theirs.enabled & set(theirs.units)


def test_newer_template_layout_imports_and_runs(tmp_path: Path) -> None:
    path = imported("modular-template", tmp_path, name="modular")
    system = load_system(path)
    qemu = system.service("virtqemud.service")
    assert qemu.binds_to == ["virtqemud.socket"]
    assert set(qemu.wants) >= {"virtqemud-ro.socket", "virtqemud-admin.socket"}
    assert "nfs-client.target" in system.service("virtstoraged.service").after  # the drop-in
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        (ROOT / "experiments" / "gate.yaml")
        .read_text()
        .replace("../models/libvirt/monolithic.yaml, ../models/libvirt/modular.yaml", str(path))
        .replace("../models/workloads", str(ROOT / "models" / "workloads"))
        .replace("duration_s: 900", "duration_s: 400")
    )
    model = load_experiment(exp)
    record, _ = run_one(model, Task("hypervisor-crash", "modular", 0), 1)
    assert record["metrics"]["vms_running"] == 50


def test_disabled_conflicting_daemon_is_left_out(tmp_path: Path) -> None:
    result = import_units(fixture_inputs("fedora35-modular", tmp_path / "m.yaml"))
    names = [d["name"] for d in result.topology["daemons"]]
    assert "libvirtd" not in names and "virtqemud" in names
    assert any("libvirtd" in n and "left out" in n for n in result.notes)
    assert "libvirtd.service" in result.topology["external_units"]  # named by Conflicts=


def test_every_block_says_where_it_came_from(tmp_path: Path) -> None:
    doc = import_units(fixture_inputs("fedora35-modular", tmp_path / "m.yaml")).topology
    blocks = [doc, doc["preset"], *doc["routes"], *doc["units"], *doc["daemons"]]
    blocks += [s for d in doc["daemons"] for s in d["servers"]]
    assert all(b.get("source") or b.get("assumption") for b in blocks)
    units = {u["name"]: u for u in doc["units"]}
    assert units["virtqemud.service"]["source"].startswith("imported from ")
    assert re.search(r"import-map\.yaml:\d+", doc["daemons"][0]["source"])


def test_mapping_rules_are_checked_with_file_and_line(tmp_path: Path) -> None:
    text = MAP.read_text().replace("drivers: [qemu]", "drivers: [qemu2]")
    text = text.replace("catalog: catalog.yaml", f"catalog: {MAP.parent / 'catalog.yaml'}")
    bad = write(tmp_path / "map.yaml", text)
    line = text.splitlines().index("    drivers: [qemu2]") + 1
    code, _, err = run_cli("validate", bad)
    assert code == 2
    assert f"{bad}:{line}: daemons[1].drivers[0]: unknown driver 'qemu2'" in err


def test_enablement_from_wants_links_when_no_preset_is_given(tmp_path: Path) -> None:
    base = FIXTURES / "fedora34-monolithic" / "usr/lib/systemd/system"
    etc = tmp_path / "etc"
    (etc / "multi-user.target.wants").mkdir(parents=True)
    (etc / "sockets.target.wants").mkdir(parents=True)
    os.symlink(base / "libvirtd.service", etc / "multi-user.target.wants" / "libvirtd.service")
    os.symlink(base / "virtlogd.socket", etc / "sockets.target.wants" / "virtlogd.socket")
    inputs = Inputs(units=[base, etc], mapping=MAP, output=tmp_path / "m.yaml")
    result = import_units(inputs)
    enabled = {n for n, d in result.decisions.items() if d.enabled}
    assert {"libvirtd.service", "virtlogd.socket"} <= enabled
    assert "libvirtd.socket" not in enabled and "multi-user.target" in enabled
    assert "*.wants/" in result.topology["preset"]["source"]


def test_values_the_model_lacks_are_approximated_and_listed(tmp_path: Path) -> None:
    host = tmp_path / "host"
    units = FIXTURES / "fedora34-monolithic" / "usr/lib/systemd/system"
    for f in units.iterdir():
        write(host / f.name, f.read_text())
    text = (host / "libvirtd.service").read_text()
    text = text.replace("Restart=on-failure", "Restart=on-abnormal").replace(
        "KillMode=process", "KillMode=none"
    )
    (host / "libvirtd.service").write_text(text)
    result = import_units(Inputs(units=[host], mapping=MAP, output=tmp_path / "m.yaml"))
    service = next(u for u in result.topology["units"] if u["name"] == "libvirtd.service")
    assert (service["restart"], service["kill_mode"]) == ("on-failure", "none")
    listed = {u.directive: u.reason for u in result.unsupported}
    assert "modelled as on-failure" in listed["Restart=on-abnormal"]
    assert "KillMode=none" not in listed  # modelled as such (issue 16)


def test_sim_knows_no_daemon_name() -> None:
    """Everything libvirt-specific of the import lives in models/ (the mapping)."""
    names = re.compile(
        r"\b(libvirtd|virt(qemu|network|nodedev|storage|secret|interface|nwfilter|proxy|log|lock)d)\b"
    )
    offenders = [
        f"{p}:{n}"
        for p in sorted((ROOT / "sim").rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), start=1)
        if names.search(line)
    ]
    assert offenders == []


# ---------------------------------------------------------------------------- CLI
def run_cli(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_import_lists_unsupported_in_output_and_file(tmp_path: Path) -> None:
    base = FIXTURES / "fedora34-monolithic"
    out = tmp_path / "sub" / "mono.yaml"
    code, stdout, err = run_cli(
        "import-units",
        "--units",
        base / "usr/lib/systemd/system",
        "--preset",
        base / "usr/lib/systemd/system-preset",
        "--conf",
        base / "etc/libvirt",
        "--root",
        base,
        "--map",
        MAP,
        "-o",
        out,
    )
    assert code == 0, err
    text = out.read_text()
    assert "# unsupported:" in text and "LimitNOFILE=8192" in text
    assert "LimitNOFILE=8192" in stdout and "unix_sock_group" in stdout
    assert load_system(out).name == "mono"


def test_cli_import_parse_error_exits_2_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "units" / "libvirtd.service", "[Unit]\nRequires=libvirtd.socket\noops\n")
    code, _, err = run_cli(
        "import-units", "--units", tmp_path / "units", "--map", MAP, "-o", tmp_path / "x.yaml"
    )
    assert code == 2
    assert f"{tmp_path / 'units' / 'libvirtd.service'}:3:" in err
    assert "Traceback" not in err
