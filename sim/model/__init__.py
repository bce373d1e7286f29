"""Loading, checking and resolving models (layer 2; imports :mod:`sim.schema` and
:mod:`sim.errors` only).

- :mod:`loader`       YAML with line numbers, document kinds, overlays (``extends:``/``patch:``)
- :mod:`checks`       cross-reference rules no schema can state (every issue, with its line)
- :mod:`scenarios`    an experiment's matrix and sweeps expanded into scenarios
- :mod:`resolved`     the resolved views the engine reads: system, workload, experiment
- :mod:`routing`      which daemon answers a URI, and what it forwards where
- :mod:`calibration`  catalog overlays (measured costs) applied to a loaded experiment
- :mod:`importmap`    the import mapping document (which unit is which daemon)
- :mod:`documents`    validate any document by its kind; JSON Schemas of every kind
- :mod:`load`         the loaders: a path in, a checked and resolved model out
"""
