"""Typed, strict schema of every input file (pydantic v2, unknown keys are errors).

One module per document kind: :mod:`catalog` (drivers, object kinds, procedures),
:mod:`topology` (daemons, servers, units, routes, preset), :mod:`workload` (objects,
guests, clients, probes) and :mod:`experiment` (topologies x workload x faults).
"""

from sim.schema.catalog import Catalog
from sim.schema.experiment import Experiment
from sim.schema.topology import Topology
from sim.schema.workload import ClientProfiles, Workload

__all__ = ["Catalog", "ClientProfiles", "Experiment", "Topology", "Workload"]
