"""virtchaos: a fault-isolation chaos simulator for daemon architectures.

The package is generic: it models units, sockets, daemons, drivers, procedures,
objects, guests, clients and faults.  Everything specific to one system (libvirt)
lives in the YAML files under ``models/``.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "load_results", "run"]


def __getattr__(name: str) -> object:
    """The API (:mod:`sim.api`) on first use, so that ``import sim`` (and the command
    line, which imports it) stays light."""
    if name in ("load", "load_results", "run"):
        from sim import api

        return getattr(api, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
