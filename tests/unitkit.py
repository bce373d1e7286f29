"""Mutations of the fixture host of ``tests/fixtures/units/fedora35-modular`` (older
per-daemon layout), imported to topology files, for the diff and gate tests.

Each harmful mutation class of issue 5 is one function; ``import_host`` copies the fixture,
applies the edits and imports it with the (possibly edited) mapping.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML

from sim.importer import Inputs, import_units, to_yaml

ROOT = Path(__file__).resolve().parent.parent
HOST = Path(__file__).parent / "fixtures" / "units" / "fedora35-modular"
MAP = ROOT / "models" / "libvirt" / "import-map.yaml"
UNITS = Path("usr/lib/systemd/system")
GATE = ROOT / "experiments" / "gate.yaml"
BASELINE = ROOT / "experiments" / "baselines" / "gate.summary.json"
WORKLOAD = ROOT / "models" / "workloads" / "virt-host.yaml"

Edit = Callable[[Path], None]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def import_host(tmp: Path, name: str, *edits: Edit, mapping: Path = MAP) -> Path:
    """Copy the fixture host, apply ``edits`` to the copy, import it as topology ``modular``."""
    host = tmp / f"{name}-host"
    shutil.copytree(HOST, host)
    for e in edits:
        e(host)
    out = tmp / f"{name}.yaml"
    inputs = Inputs(
        units=[host / UNITS],
        mapping=mapping,
        output=out,
        presets=[host / "usr/lib/systemd/system-preset"],
        conf=host / "etc/libvirt",
        root=host,
        name="modular",
    )
    out.write_text(to_yaml(import_units(inputs)))
    return out


# ---------------------------------------------------------------------------- harmful
def no_restart(host: Path) -> None:
    """Restart=on-failure removed from the hypervisor daemon's service."""
    edit(host / UNITS / "virtqemud.service", "Restart=on-failure\n", "")


def no_kill_mode_process(host: Path) -> None:
    """KillMode=process removed from the hypervisor daemon's service (default control-group)."""
    edit(host / UNITS / "virtqemud.service", "KillMode=process\n", "")


def kill_mode_mixed_dropin(host: Path) -> None:
    """A drop-in sets KillMode=mixed on the hypervisor daemon's service."""
    dropin = host / UNITS / "virtqemud.service.d" / "50-kill.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text("[Service]\nKillMode=mixed\n")


def binds_to_nodedev_service(host: Path) -> None:
    """The hypervisor daemon's service BindsTo= the node-device daemon's service."""
    edit(host / UNITS / "virtqemud.service", "[Unit]\n", "[Unit]\nBindsTo=virtnodedevd.service\n")


def binds_to_nodedev_socket(host: Path) -> None:
    """The hypervisor daemon's service BindsTo= the node-device daemon's main socket."""
    edit(host / UNITS / "virtqemud.service", "[Unit]\n", "[Unit]\nBindsTo=virtnodedevd.socket\n")


def requires_nodedev_socket(host: Path) -> None:
    """The hypervisor daemon's service Requires= the node-device daemon's socket."""
    edit(host / UNITS / "virtqemud.service", "[Unit]\n", "[Unit]\nRequires=virtnodedevd.socket\n")


def pool_of_two(host: Path) -> None:
    """The hypervisor daemon's main worker pool shrunk to 2 (max_workers = 2)."""
    edit(host / "etc/libvirt/virtqemud.conf", "\nmax_workers = 20", "\nmax_workers = 2")


def network_socket_disabled(host: Path) -> None:
    """The network daemon's socket disabled in the preset (so no Also= enables ro/admin)."""
    preset = host / "usr/lib/systemd/system-preset/90-default.preset"
    edit(preset, "enable virtnetworkd.socket", "disable virtnetworkd.socket")


def merged_mapping(tmp: Path) -> Path:
    """A mapping in which the hypervisor daemon also hosts the node-device driver (and takes
    its role); the node-device daemon is gone and its URI goes to the hypervisor socket."""
    yaml = YAML(typ="rt")
    doc = yaml.load(MAP.read_text())
    daemons = doc["daemons"]
    qemu = next(d for d in daemons if d["name"] == "virtqemud")
    qemu["drivers"].append("nodedev")
    qemu["roles"].append("nodedev")
    doc["daemons"] = [d for d in daemons if d["name"] != "virtnodedevd"]
    route = next(r for r in doc["routes"] if r["uri"] == "nodedev:///system")
    route["sockets"] = ["virtqemud.socket", "libvirtd.socket", "virtproxyd.socket"]
    doc["catalog"] = str(MAP.parent / doc["catalog"])
    out = tmp / "merged-map.yaml"
    with out.open("w") as fh:
        yaml.dump(doc, fh)
    return out


# ---------------------------------------------------------------------------- harmless
def comments_and_order(host: Path) -> None:
    """Comments added, keys reordered (Type= after Restart=, After= lines swapped) and a
    Documentation= line added: nothing the model can see."""
    path = host / UNITS / "virtqemud.service"
    edit(path, "Type=notify\n", "")
    edit(path, "Restart=on-failure\n", "# restart on crashes\nRestart=on-failure\nType=notify\n")
    edit(
        path,
        "After=network.target\nAfter=dbus.service\n",
        "After=dbus.service\n# x\nAfter=network.target\n",
    )
    edit(path, "[Unit]\n", "[Unit]\n# a comment\nDocumentation=https://example.org/runbook\n")
