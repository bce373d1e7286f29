"""Test-wide settings.

Hypothesis' per-example deadline (200 ms) is off: the machines the suite runs on are shared
(2 cores, other jobs), and the first example of a test may pay a one-time lazy import
(scipy's t quantile costs about a second); a property's failure is a wrong value, not a slow
one.  Speed is measured in ``benchmarks/``, never in a test.
"""

from hypothesis import settings

settings.register_profile("virtchaos", deadline=None)
settings.load_profile("virtchaos")
