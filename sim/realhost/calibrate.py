"""Calibration: time every safely callable catalog procedure on the testbed and write a
catalog overlay (``kind: catalog-overlay``) with a fitted log-normal per procedure.

Method: one connection, sequential calls; ``warmup`` untimed calls, then ``n`` timed ones
(``time.perf_counter`` around the client call, so each figure is the client-observed round
trip over the UNIX socket: the daemon's own work plus RPC).  The fit is the sample median
and sigma = (ln p75 - ln p25) / 1.349 (robust to the odd slow call).  Guest start and stop
are timed in pairs on one guest; daemon start is timed from exec to the first answered call
(with the guests running, so it includes reconnecting to them); a new connection is timed
as open + close.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.model.load import load_catalog
from sim.realhost import testbed as tb
from sim.realhost.lv import Caller, RealHostError, connect, error_text, library
from sim.schema.realhost import RealHost

SIGMA_MAX = 4.0


@dataclass
class Sample:
    """The timed calls of one procedure or measurement: round-trip times (ms) and a note for the
    overlay.
    """

    name: str
    times_ms: list[float] = field(default_factory=list)
    note: str = ""

    def quantile(self, q: float) -> float:
        """The ``q`` quantile of the times (ms), linearly interpolated; the sample must not be
        empty.
        """
        xs = sorted(self.times_ms)
        k = (len(xs) - 1) * q
        lo = int(k)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    def spread(self) -> dict[str, Any]:
        """The sample's size and p10, median, p90 and max (ms), for the overlay's ``measured:``."""
        return {
            "n": len(self.times_ms),
            "p10_ms": round(self.quantile(0.1), 4),
            "median_ms": round(statistics.median(self.times_ms), 4),
            "p90_ms": round(self.quantile(0.9), 4),
            "max_ms": round(max(self.times_ms), 4),
        }

    def fit(self) -> dict[str, Any]:
        """A log-normal service distribution: the sample median, and sigma from the interquartile
        range (``(ln p75 - ln p25) / 1.349``, clamped to ``[0, SIGMA_MAX]``).
        """
        med = max(statistics.median(self.times_ms), 1e-4)
        q25, q75 = self.quantile(0.25), self.quantile(0.75)
        sigma = (math.log(q75) - math.log(q25)) / 1.349 if q25 > 0 else 0.0
        return {
            "dist": "lognormal",
            "median_ms": round(med, 4),
            "sigma": round(min(max(sigma, 0.0), SIGMA_MAX), 4),
        }


def timed(fn: Callable[[], Any], n: int, warmup: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``n`` times; return each timed call's wall time
    in ms.
    """
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


@dataclass
class Targets:
    """One object of each kind to call procedures on."""

    by_kind: dict[str, str]

    @classmethod
    def find(cls, host: RealHost, conn: Any, guests: list[str]) -> Targets:
        """The testbed's objects to call on: the first guest, the pool, and the first network and
        device when there are any.
        """
        found = {"domain": guests[0], "pool": host.pool.name}
        nets = conn.listAllNetworks()
        if nets:
            found["network"] = nets[0].name()
        devs = sorted(d.name() for d in conn.listAllDevices())
        if devs:
            found["nodedev"] = devs[0]
        return cls(found)


def _target_of(host: RealHost, proc: str, targets: Targets) -> tuple[str | None, str]:
    """(target, why not) for one procedure."""
    call = host.call(proc)
    assert call is not None
    kind = call.target if call.on == "connection" else call.on
    if kind is None:
        return None, ""
    if kind not in targets.by_kind:
        return None, f"no {kind} object on the testbed"
    return targets.by_kind[kind], ""


def measure_calls(
    host: RealHost, caller: Caller, procs: list[str], targets: Targets, n: int, warmup: int
) -> tuple[list[Sample], dict[str, str]]:
    """Time every procedure of ``procs`` that can be called safely, ``n`` times after ``warmup``.

    Returns the samples and, per procedure not timed, why: no mapping or a ``skip``, no target
    object of its kind, or the call fails on this host.  Procedures with ``calibrate: false`` are
    left out silently (the lifecycle pair is timed by :func:`measure_lifecycle`).
    """
    samples, skipped = [], {}
    for proc in procs:
        call = host.call(proc)
        if call is None or call.skip is not None:
            skipped[proc] = caller.why_not(proc)
            continue
        if not call.calibrate:
            continue
        target, why = _target_of(host, proc, targets)
        if why:
            skipped[proc] = why
            continue
        try:
            times = timed(lambda p=proc, t=target: caller.call(p, t), n, warmup)  # type: ignore[misc]
        except library().libvirtError as err:
            skipped[proc] = f"the call fails on this host: {error_text(err)}"
            continue
        samples.append(Sample(proc, times))
    return samples, skipped


def measure_lifecycle(caller: Caller, guest: str, start: str, stop: str, n: int) -> list[Sample]:
    """Stop/start pairs on one guest: the start and stop procedures' times."""
    s_start, s_stop = Sample(start), Sample(stop)
    for _ in range(n + 1):
        t0 = time.perf_counter()
        caller.call(stop, guest)
        t1 = time.perf_counter()
        caller.call(start, guest)
        t2 = time.perf_counter()
        s_stop.times_ms.append((t1 - t0) * 1000)
        s_start.times_ms.append((t2 - t1) * 1000)
    for s in (s_start, s_stop):
        del s.times_ms[0]  # the first pair is the warm-up
    return [s_start, s_stop]


def measure_connect(uri: str, n: int, warmup: int) -> Sample:
    """Time opening and closing a new connection to ``uri``."""

    def once() -> None:
        connect(uri).close()

    return Sample("connect", timed(once, n, warmup), "open + close of a new connection")


def measure_daemon_start(host: RealHost, paths: tb.Paths, uri: str, reps: int) -> Sample:
    """SIGTERM the hypervisor daemon (guests keep running), start it, time the first answer."""
    topo = host.topology(tb.State.read(paths).topology)
    daemon = next(d for d in topo.daemons if "hypervisor" in d.roles)
    out = Sample("daemon_start", note=f"{daemon.name}: exec to the first answered call")
    for _ in range(reps):
        tb.stop_daemon(paths, daemon)
        t0 = time.perf_counter()
        tb.start_daemon(host, paths, topo, daemon)
        deadline = t0 + host.start_timeout_s
        while True:
            try:
                c = library().open(uri)
                c.getLibVersion()
                c.close()
                break
            except library().libvirtError:
                if time.perf_counter() > deadline:
                    raise RealHostError("the daemon did not answer after restart") from None
                time.sleep(0.005)
        out.times_ms.append((time.perf_counter() - t0) * 1000)
    return out


def host_facts(conn: Any) -> dict[str, str]:
    """What the measurements were made on: host name, client library and hypervisor versions,
    kernel and date (UTC).
    """

    def ver(v: int) -> str:
        return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"

    return {
        "host": platform.node(),
        "libvirt": ver(conn.getLibVersion()),
        "hypervisor": ver(conn.getVersion()),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def calibrate(
    host: RealHost,
    prefix: Path,
    catalog: Path,
    model_uri: str | None,
    n: int,
    warmup: int,
    lifecycle_n: int,
    daemon_reps: int,
) -> dict[str, Any]:
    """Measure on the running testbed; the overlay document as a dict."""
    paths = tb.Paths(prefix)
    st = tb.status(host, prefix)
    if not st["up"]:
        raise RealHostError(f"the testbed is not up at {prefix}: run `virtchaos testbed up`")
    topo = host.topology(st["topology"])
    uri = paths.uri(topo, model_uri or next(iter(topo.uris)))
    cat = load_catalog(catalog).doc
    guests = sorted(st["guests"])
    conn = connect(uri)
    facts = host_facts(conn)
    caller = Caller(host, conn)
    targets = Targets.find(host, conn, guests)
    in_catalog = [p.name for p in cat.procedures]
    extra = [p.procedure for p in host.procedures if p.procedure not in in_catalog]
    samples, skipped = measure_calls(host, caller, in_catalog + extra, targets, n, warmup)
    samples += measure_lifecycle(
        caller, guests[-1], cat.lifecycle.start, cat.lifecycle.stop, lifecycle_n
    )
    floor = Sample(
        "rpc_round_trip",
        timed(conn.getLibVersion, n, warmup),
        "the cheapest call (library version): the RPC floor of every figure",
    )
    conn.close()
    others = [
        floor,
        measure_connect(uri, n, warmup),
        measure_daemon_start(host, paths, uri, daemon_reps),
    ]
    return overlay_doc(cat.name, facts, samples, others, skipped, set(in_catalog), n, warmup)


def overlay_doc(
    catalog: str,
    facts: dict[str, str],
    samples: list[Sample],
    others: list[Sample],
    skipped: dict[str, str],
    known: set[str],
    n: int,
    warmup: int,
) -> dict[str, Any]:
    """The ``kind: catalog-overlay`` document: a fitted distribution for every sampled procedure
    the catalog knows (``known``), the other samples as measurements, and the skipped procedures
    with their reasons.
    """
    method = (
        f"libvirt-python, one connection over the UNIX socket, {warmup} warm-up calls "
        f"then {n} timed sequential calls (client-observed round trip); lognormal fit: "
        "sample median, sigma = (ln p75 - ln p25) / 1.349"
    )
    where = (
        f"host {facts['host']} (kernel {facts['kernel']}), libvirt {facts['libvirt']}, "
        f"QEMU {facts['hypervisor']}, {facts['date']}"
    )
    procs = [
        {"name": s.name, "service": s.fit(), "measured": s.spread(), "source": f"measured: {where}"}
        for s in samples
        if s.name in known
    ]
    measurements = [
        {
            "name": s.name,
            "measured": s.spread(),
            "source": f"measured: {where}" + (f"; {s.note}" if s.note else ""),
        }
        for s in others
    ] + [
        {
            "name": f"procedure.{s.name}",
            "measured": s.spread(),
            "source": f"measured: {where}; not in the catalog yet, so not applied",
        }
        for s in samples
        if s.name not in known
    ]
    return {
        "kind": "catalog-overlay",
        "name": f"calibration-{facts['host']}-{facts['date']}",
        "catalog": catalog,
        "source": f"virtchaos calibrate on {where}; method: {method}",
        "procedures": procs,
        "measurements": measurements,
        "skipped": dict(sorted(skipped.items())),
    }
