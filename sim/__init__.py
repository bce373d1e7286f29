"""virtchaos: a fault-isolation chaos simulator for daemon architectures.

The package is generic: it models units, sockets, daemons, drivers, procedures,
objects, guests, clients and faults.  Everything specific to one system (libvirt)
lives in the YAML files under ``models/``.
"""

__version__ = "0.1.0"
