"""Running experiments: replications of the engine, their metrics and statistics (layer 4;
imports :mod:`sim.engine`, :mod:`sim.model`, :mod:`sim.schema`, :mod:`sim.errors`).

- :mod:`runner`        tasks (scenario x topology x replication), the worker pool, summaries
- :mod:`workers`       a process pool that survives a crashed worker and stops on Ctrl-C
- :mod:`budget`        the size of a run estimated before it starts, and its limits
- :mod:`metrics`       metrics computed from one replication's collector
- :mod:`stats`         intervals over replications (Student t, Wilson), paired differences
- :mod:`significance`  when a difference counts (interval and tolerance), shared with the gate
- :mod:`resultsdir`    which results folders may be written, and how
- :mod:`runlog`        the append-only log of finished runs, for resuming
- :mod:`replay`        one replication run again with its full trace
"""
