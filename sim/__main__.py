"""``python -m sim`` is the same as the ``virtchaos`` command."""

from sim.cli import main

main()
