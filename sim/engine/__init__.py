"""The discrete-event engine (simpy).

One :class:`~sim.engine.simulation.Simulation` per replication owns the environment, the RNG
streams, the runtime objects and the collector.  Modules, one concept each:

- :mod:`rng`         named, seeded random streams (common random numbers across topologies)
- :mod:`primitives`  worker pools with priority workers, locks, per-connection request slots
- :mod:`systemd`     service and socket units: start jobs, restart policy, start and trigger
                     limits, dependencies, socket activation, boot from the preset
- :mod:`daemon`      daemon processes: init, readiness, accept, idle exit, crash, hangs
- :mod:`rpc`         connections, calls, dispatch, forwarding, nested calls, locks
- :mod:`guests`      guest processes: start, stop, reconnect after a daemon restart, autostart
- :mod:`clients`     management clients and per-guest probes
- :mod:`faults`      fault injection and scheduled recovery actions
- :mod:`trace`       the collector: event trace and measurements
"""
