"""The real-host suite (``-m realhost``): a real testbed on this machine.

Needs root, FUSE, the daemons and the binding (``.ci/realhost`` installs them); every test is
skipped with the reason when something is missing.  About two minutes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.cli.realhost import dump_yaml
from sim.model.calibration import load_overlay
from sim.model.load import load_experiment
from sim.realhost import testbed as tb
from sim.realhost.calibrate import calibrate
from sim.realhost.lv import RealHostError, connect
from sim.realhost.session import realrun
from sim.schema.experiment import METRICS
from sim.schema.realhost import RealHost

pytestmark = pytest.mark.realhost

ROOT = Path(__file__).resolve().parent.parent
HOST = ROOT / "models/libvirt/realhost.yaml"
KILL = ROOT / "experiments/validation/daemon-kill.yaml"


@pytest.fixture(scope="module")
def bed() -> Iterator[tuple[RealHost, Path]]:
    host = tb.load_host(HOST)
    problems = tb.preflight(host)
    if problems:
        pytest.skip("real host unavailable: " + "; ".join(problems))
    prefix = Path(f"/var/tmp/virtchaos-ci-{os.getpid()}")
    try:
        tb.up(host, prefix, guests=4)
        yield host, prefix
    finally:
        tb.down(host, prefix)


def _uri(host: RealHost, prefix: Path) -> str:
    return str(tb.status(host, prefix)["uri"])


def test_up_is_idempotent_and_status_shows_everything(bed: tuple[RealHost, Path]) -> None:
    host, prefix = bed
    first = tb.status(host, prefix)
    again = tb.up(host, prefix, guests=4)
    assert first["up"] and again["up"]

    def pids(st: dict[str, Any], what: str) -> dict[str, int]:
        return {k: v["pid"] for k, v in st[what].items()}

    # same pids (states may differ between two looks: R or S): nothing was restarted
    assert pids(again, "daemons") == pids(first, "daemons")
    assert pids(again, "guests") == pids(first, "guests")
    assert sorted(first["guests"]) == ["vm-0", "vm-1", "vm-2", "vm-3"]
    assert all(g["state"] != "dead" for g in first["guests"].values())
    assert first["pool"] == first["pool"] | {"mounted": True, "blocked": False}


def test_blocked_mount_holds_a_pool_refresh_until_unblocked(bed: tuple[RealHost, Path]) -> None:
    host, prefix = bed
    conn = connect(_uri(host, prefix))
    pool = conn.storagePoolLookupByName(host.pool.name)
    done = threading.Event()

    def refresh() -> None:
        pool.refresh(0)
        done.set()

    tb.set_blocked(tb.Paths(prefix), True)
    try:
        threading.Thread(target=refresh, daemon=True).start()
        assert not done.wait(1.5), "a refresh finished while the mount was blocked"
    finally:
        tb.set_blocked(tb.Paths(prefix), False)
    assert done.wait(15), "the refresh did not finish after unblocking"
    conn.close()


def test_calibrate_writes_an_overlay_the_simulator_applies(
    bed: tuple[RealHost, Path], tmp_path: Path
) -> None:
    host, prefix = bed
    catalog = ROOT / "models/libvirt/catalog.yaml"
    doc = calibrate(host, prefix, catalog, None, n=20, warmup=2, lifecycle_n=2, daemon_reps=1)
    path = tmp_path / "overlay.yaml"
    path.write_text(dump_yaml(doc), encoding="utf-8")
    overlay = load_overlay(path).doc
    names = {p.name for p in overlay.procedures}
    assert {"domainGetInfo", "connectListAllDomains", "domainCreate", "domainDestroy"} <= names
    lifecycle = {"domainCreate", "domainDestroy"}
    assert all(p.measured.n == (2 if p.name in lifecycle else 20) for p in overlay.procedures)
    assert "libvirt " in overlay.source and "method:" in overlay.source
    assert {m.name for m in overlay.measurements} >= {"daemon_start", "connect", "rpc_round_trip"}
    model = load_experiment(KILL, path)
    info = model.systems[0].procedures["domainGetInfo"]
    assert info.service.model_dump()["median_ms"] == next(
        p.service.model_dump()["median_ms"] for p in overlay.procedures if p.name == "domainGetInfo"
    )
    assert tb.status(host, prefix)["up"]  # the daemon restarts left it up


def test_realrun_of_a_daemon_kill(bed: tuple[RealHost, Path], tmp_path: Path) -> None:
    host, prefix = bed
    out = tmp_path / "real"
    outcome = realrun(KILL, "testbed-monolithic", host, prefix, out, 1, [])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "real" and manifest["refused"] == {}
    (row,) = outcome.summary["rows"]
    assert set(METRICS) <= set(row["metrics"])
    m = {k: v["mean"] for k, v in row["metrics"].items()}
    assert m["vms_running"] == 4 and m["vms_lost"] == 0  # guests outlive their daemon
    assert m["vms_unmanageable"] == 4  # every probe fails while the daemon is away
    assert 5 < m["time_to_recover_s"] < 30  # the restart by hand is 10 s after the kill
    calls = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    failed = [c for c in calls if not c["ok"] and 20 <= c["t_start"] <= 30]
    assert failed and all(c["error"] for c in failed)
    assert json.loads((out / "probes.json").read_text())["rows"]


def test_a_fault_the_host_cannot_take_is_refused(
    bed: tuple[RealHost, Path], tmp_path: Path
) -> None:
    host, prefix = bed
    exp = tmp_path / "slow.yaml"
    text = KILL.read_text().replace(
        "{kind: crash, target: {role: hypervisor}, at_s: 20}",
        "{kind: slow, target: {role: hypervisor}, at_s: 20, factor: 5}",
    )
    exp.write_text(text.replace("../../", f"{ROOT}/"))
    with pytest.raises(RealHostError, match="no way to slow one daemon"):
        realrun(exp, "testbed-monolithic", host, prefix, tmp_path / "out", 1, [])


def test_down_leaves_nothing_running(bed: tuple[RealHost, Path]) -> None:
    host, prefix = bed
    st = tb.status(host, prefix)
    pids = [d["pid"] for d in st["daemons"].values()] + [g["pid"] for g in st["guests"].values()]
    pids.append(st["pool"]["fuse_pid"])
    tb.down(host, prefix)
    time.sleep(0.5)
    assert all(tb.proc_state(p) == "dead" for p in pids)
    assert not tb.is_mounted(tb.Paths(prefix).mount)
    assert not prefix.exists()


def test_modular_testbed_when_a_build_is_there(tmp_path: Path) -> None:
    """The modular daemons from a meson build of Debian's source (skipped without one)."""
    host = tb.load_host(HOST)
    modular = host.topology("modular")
    missing = [d.binary for d in modular.daemons if tb.shutil.which(d.binary) is None]
    if missing or tb.preflight(host):
        pytest.skip(f"no modular build here ({', '.join(missing) or 'preflight'})")
    prefix = Path(f"/var/tmp/virtchaos-ci-mod-{os.getpid()}")
    try:
        st = tb.up(host, prefix, guests=1, topology="modular")
        assert st["up"] and set(st["daemons"]) == {d.name for d in modular.daemons}
        conn = connect(st["uri"])
        pools = [p.name() for p in conn.listAllStoragePools()]  # forwarded to the storage daemon
        conn.close()
        assert host.pool.name in pools
    finally:
        tb.down(host, prefix)
    assert not prefix.exists()
