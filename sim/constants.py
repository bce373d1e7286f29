"""Constants every layer may read, kept free of imports so that ``virtchaos --help`` stays
fast: the tool's version and the limits the command line checks before anything is loaded
(:mod:`sim.schema.common` holds the others)."""

VERSION = "0.1.0"
"""The tool's version (also ``sim.__version__``), recorded in every results manifest."""

MAX_REPLICATIONS = 10_000
"""The most replications of an experiment."""
MAX_SEED = 2**63 - 1
"""The largest seed (a signed 64-bit integer)."""
