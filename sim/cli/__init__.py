"""The ``virtchaos`` command line (layer 6, the top; may import every layer).

- :mod:`main`      the typer application: validate, analyze, graph, run, report, diff, gate ...
- :mod:`common`    exit codes, one-line errors, the console (shared by every verb)
- :mod:`render`    rich tables and views of summaries, analyses and traces
- :mod:`realhost`  the ``testbed``/``realrun``/``calibrate``/``compare`` commands of
                   :mod:`sim.realhost`
"""
