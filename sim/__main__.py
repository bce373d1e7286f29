"""``python -m sim`` is the same as the ``virtchaos`` command."""

from sim.cli.main import main

main()
