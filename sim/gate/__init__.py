"""The CI regression gate (layer 5; imports :mod:`sim.experiment`, :mod:`sim.static`,
:mod:`sim.model` and below).

:mod:`check` runs a gate experiment against a committed baseline, compares every gated
metric by the rule of :mod:`sim.experiment.significance`, adds the static risks found by
:mod:`sim.static.modeldiff`, and writes the verdict as text, Markdown and JUnit XML.
"""
