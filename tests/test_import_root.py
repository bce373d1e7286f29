"""``import-units --root``: every path read is resolved inside the host tree (issue 15).

A secret file is planted beside the tree; each way a unit tree from a pull request could
reach it (``EnvironmentFile=`` climbing with ``..``, a symbolic link in a unit directory, a
drop-in, a config or preset file) must be refused with exit 2, and neither the output nor
the messages may contain a byte of the secret.  The ``test_rule_*`` tests fail when the
rule is removed: without it the import reads the secret and quotes it in its error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import main as cli
from sim.importer.rooted import HostRoot

FIXTURE = Path(__file__).parent / "fixtures" / "units" / "fedora35-modular"
MAP = Path(__file__).resolve().parent.parent / "models" / "libvirt" / "import-map.yaml"
SECRET = "SECRET-7f3a9 this line is not VAR=value"
UNITS = "usr/lib/systemd/system"
QEMU = "virtqemud.service"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A copy of the fixture host at tmp/host, and a secret at tmp/secret.txt."""
    shutil.copytree(FIXTURE, tmp_path / "host", symlinks=True)
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    return tmp_path / "host"


def _import(host: Path, *extra: str) -> tuple[int, str, Path]:
    out = host.parent / "out.yaml"
    args = ["import-units", "--units", str(host / UNITS), "--map", str(MAP), "--root", str(host)]
    args += ["--preset", str(host / "usr/lib/systemd/system-preset")]
    args += ["--conf", str(host / "etc/libvirt"), "-o", str(out), *extra]
    result = CliRunner().invoke(cli.app, args)
    return result.exit_code, result.output, out


def _dropin(host: Path, text: str, name: str = "50-pr.conf") -> Path:
    folder = host / UNITS / f"{QEMU}.d"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _refused(host: Path, code: int, output: str, out: Path) -> None:
    assert code == 2, output
    assert "SECRET-7f3a9" not in output
    assert not out.exists()


def test_rule_environment_file_never_leaves_root(host: Path) -> None:
    """``EnvironmentFile=/../../…`` climbing out of the tree is refused, unread."""
    up = "/.." * 12 + str(host.parent / "secret.txt")
    conf = _dropin(host, f"[Service]\nEnvironmentFile={up}\n")
    code, output, out = _import(host)
    _refused(host, code, output, out)
    assert f"{conf}:2: {up} leaves --root {host}: refused" in output


def test_rule_optional_environment_file_never_leaves_root(host: Path) -> None:
    up = "/.." * 12 + str(host.parent / "secret.txt")
    _dropin(host, f"[Service]\nEnvironmentFile=-{up}\n")
    code, output, out = _import(host)
    _refused(host, code, output, out)
    assert "leaves --root" in output


def test_rule_unit_symlinks_never_leave_root(host: Path) -> None:
    """A drop-in that is a relative link climbing out of the tree is refused."""
    folder = host / UNITS / f"{QEMU}.d"
    folder.mkdir()
    (folder / "50-pr.conf").symlink_to("../" * 8 + "secret.txt")
    code, output, out = _import(host)
    _refused(host, code, output, out)
    assert "leaves --root" in output


def test_rule_absolute_links_are_read_inside_the_tree(host: Path) -> None:
    """An absolute link means the host's path: it is followed inside the tree, never to
    this machine's file of that name."""
    secret = host.parent / "secret.txt"
    (host / UNITS / "evil.socket").symlink_to(secret)  # the host's /tmp/.../secret.txt
    mirror = host / str(secret).lstrip("/")
    mirror.parent.mkdir(parents=True)
    mirror.write_text("[Unit]\nDescription=the host's own file\n")
    code, output, _ = _import(host)
    assert code == 0, output
    assert "SECRET-7f3a9" not in output


def test_rule_dangling_absolute_link_is_not_followed_out(host: Path) -> None:
    (host / UNITS / f"{QEMU}.d").mkdir()
    (host / UNITS / f"{QEMU}.d" / "50-pr.conf").symlink_to(host.parent / "secret.txt")
    code, output, out = _import(host)
    _refused(host, code, output, out)
    assert "50-pr.conf is not a regular file" in output


def test_rule_config_files_never_leave_root(host: Path) -> None:
    conf = host / "etc/libvirt/virtqemud.conf"
    conf.unlink()
    conf.symlink_to("../../../secret.txt")
    code, output, out = _import(host)
    _refused(host, code, output, out)
    assert f"{conf}: leaves --root {host} (through the link to ../../../secret.txt)" in output


def test_rule_preset_files_never_leave_root(host: Path) -> None:
    presets = host / "usr/lib/systemd/system-preset"
    (presets / "00-pr.preset").symlink_to("../../../../../secret.txt")
    code, output, out = _import(host)
    _refused(host, code, output, out)
    assert "leaves --root" in output


def test_environment_file_through_an_absolute_link_inside_the_tree(host: Path) -> None:
    """/etc/sysconfig/virtqemud -> /etc/pr/env (absolute, inside the host) is read."""
    (host / "etc/pr").mkdir()
    (host / "etc/pr/env").write_text('VIRTQEMUD_ARGS="--timeout 77"\n')
    (host / "etc/sysconfig/virtqemud").symlink_to("/etc/pr/env")
    code, output, out = _import(host)
    assert code == 0, output
    assert "idle_timeout_s: 77" in out.read_text()


def test_symlink_loop_is_exit_2(host: Path) -> None:
    (host / "etc/sysconfig/virtqemud").symlink_to("/etc/sysconfig/virtqemud")
    code, output, _ = _import(host)
    assert code == 2
    assert "too many levels of symbolic links" in output


def test_units_outside_root_are_their_own_tree(host: Path, tmp_path: Path) -> None:
    """A --units directory outside --root is read, but its links may not leave it."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.service").symlink_to("../secret.txt")
    code, output, _ = _import(host, "--units", str(other))
    assert code == 2
    msg = f"{other / 'x.service'}: leaves --root {other} (through the link to ../secret.txt)"
    assert msg + ": refused" in output
    assert "SECRET-7f3a9" not in output


def test_host_root_paths() -> None:
    root = HostRoot(FIXTURE)
    assert root.host_path("/etc/sysconfig/../libvirt", "x") == FIXTURE.resolve() / "etc/libvirt"
    with pytest.raises(Exception, match="leaves --root"):
        root.host_path("/etc/../../x", "u.service:3")
    assert HostRoot(Path("/")).local(Path("/etc")) == Path("/etc").resolve()
