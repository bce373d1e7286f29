"""Import a host's systemd units, presets and daemon configs as a topology.

Modules, by concept: :mod:`units` (unit file syntax, load path, drop-ins),
:mod:`directives` (what repeated and reset assignments mean), :mod:`command` (environment
and ``ExecStart=``), :mod:`presets` (systemd presets), :mod:`conf` (daemon config files),
:mod:`hosts` (which mapped daemons the host has), :mod:`build` (topology blocks with
provenance), :mod:`pipeline` (the whole import) and :mod:`emit` (the YAML text).

Nothing here knows a daemon by name: the import mapping (``kind: import-map``) says which
service is which daemon, what it hosts and which config file it reads.

The result is always a systemd topology (``supervisor: systemd``: units, socket activation,
restart policies).  A host without systemd is modelled by an overlay of the imported file
(``extends:``, ``supervisor: none``, ``manual_start:``; see :mod:`sim.model.loader`).
"""

from sim.importer.emit import to_yaml
from sim.importer.pipeline import Imported, Inputs, import_units

__all__ = ["Imported", "Inputs", "import_units", "to_yaml"]
