"""The client library, imported lazily, and calls by catalog procedure name.

The base install works without the client library: only the real-host commands import it,
and a missing package is one clear error.  Which library call serves which procedure comes
from the host description (``procedures:`` and ``lookups:``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the spec (pydantic) is not needed to name the error, as the CLI does
    from sim.schema.realhost import RealHost

_LOOP: dict[str, threading.Thread] = {}


class RealHostError(Exception):
    """A real-host command cannot proceed (missing package, device, daemon ...)."""


def library() -> Any:
    """The client library module; a clear error when it is not installed."""
    try:
        import libvirt
    except ImportError as err:
        msg = (
            f"the libvirt Python binding is missing ({err}): "
            "pip install '.[realhost]' (needs libvirt-dev and pkg-config to build)"
        )
        raise RealHostError(msg) from None
    if not _LOOP:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def ensure_event_loop() -> None:
    """Run the library's default event loop in a thread (needed for keepalive)."""
    lib = library()
    if "loop" in _LOOP:
        return
    lib.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            lib.virEventRunDefaultImpl()

    t = threading.Thread(target=run, name="event-loop", daemon=True)
    t.start()
    _LOOP["loop"] = t


def connect(uri: str) -> Any:
    """Open a connection to ``uri``; RealHostError naming the URI when it fails."""
    try:
        return library().open(uri)
    except library().libvirtError as err:
        raise RealHostError(f"cannot connect to {uri}: {err}") from None


def error_text(err: BaseException) -> str:
    """A client-library error as one line (its type name when it has no message)."""
    return " ".join(str(err).split()) or type(err).__name__


class Caller:
    """Calls catalog procedures on one connection through the host description's mapping."""

    def __init__(self, host: RealHost, conn: Any) -> None:
        self.host = host
        self.conn = conn

    def callable(self, procedure: str) -> bool:
        """Whether the host description maps ``procedure`` to a client call (and does not skip
        it).
        """
        call = self.host.call(procedure)
        return call is not None and call.skip is None

    def why_not(self, procedure: str) -> str:
        """Why ``procedure`` is not called: no mapping, or the ``skip`` reason (empty when it is
        callable).
        """
        call = self.host.call(procedure)
        if call is None:
            return "no mapping to a client call in the host description"
        return call.skip or ""

    def resolve(self, kind: str, name: str) -> Any:
        """The object of ``kind`` called ``name``, looked up with the host description's
        ``lookups``.
        """
        return getattr(self.conn, self.host.lookups[kind])(name)

    def call(self, procedure: str, target: str | None = None) -> Any:
        """Make the call (with the object lookup its mapping needs); raise on failure."""
        spec = self.host.call(procedure)
        if spec is None or spec.method is None:
            raise RealHostError(f"{procedure}: {self.why_not(procedure)}")
        obj = self.conn
        if spec.on != "connection":
            if target is None:
                raise RealHostError(f"{procedure} needs a target {spec.on}")
            obj = self.resolve(spec.on, target)
        args = [target if a == "{target}" else a for a in spec.args]
        return getattr(obj, spec.method)(*args)
