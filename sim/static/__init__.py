"""Static analysis of a resolved model, with no simulation (layer 3; imports
:mod:`sim.model`, :mod:`sim.schema`, :mod:`sim.errors`).

- :mod:`depgraph`     the dependency graph: units, sockets, daemons, pools, drivers, objects
- :mod:`propagation`  how a failure travels along the graph's edge kinds
- :mod:`analysis`     static blast radius per fault target, single points of failure, cycles
- :mod:`modeldiff`    what changed between two models, and what it does to the blast radius
- :mod:`dot`          Graphviz output of the graph, a fault's reach highlighted
"""
