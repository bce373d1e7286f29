"""virtchaos: a fault-isolation chaos simulator for daemon architectures.

The package is generic: it models units, sockets, daemons, drivers, procedures,
objects, guests, clients and faults.  Everything specific to one system (libvirt)
lives in the YAML files under ``models/``.

The tree is layered; a package imports only the layers below it (and itself), which
``tests/test_layers.py`` enforces, along with "no import circle outside the engine"::

    7  api          ``from sim import load, run, load_results`` (offered lazily by this
                    package: ``import sim`` stays light);  __main__  ``python -m sim``
    6  cli/         the ``virtchaos`` command line and its terminal rendering
    5  gate/        CI regression gate          report/    reports of a results folder
                    realhost/   the same experiments against a real libvirt
    4  experiment/  replications, metrics, statistics, results folders
                    importer/   a host's systemd units and daemon configs as a topology
    3  engine/      the discrete-event simulation of one replication
                    static/     dependency graph and static blast radius, model diffs
    2  model/       loading, checking and resolving the YAML models
    1  schema/      the typed schema of every input document
    0  errors       configuration errors with file, line and field (used everywhere)
       constants    the version and the command line's limits;  _data/  shipped files
"""

from sim.constants import VERSION as __version__

__all__ = ["__version__", "load", "load_results", "run"]


def __getattr__(name: str) -> object:
    """The API (:mod:`sim.api`) on first use, so that ``import sim`` (and the command
    line, which imports it) stays light."""
    if name in ("load", "load_results", "run"):
        from sim import api

        return getattr(api, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
