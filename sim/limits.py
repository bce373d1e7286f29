"""Limits that the command line checks before anything is loaded (kept free of imports, so
that ``virtchaos --help`` stays fast); :mod:`sim.schema.common` holds the others."""

MAX_REPLICATIONS = 10_000
"""The most replications of an experiment."""
MAX_SEED = 2**63 - 1
"""The largest seed (a signed 64-bit integer)."""
