"""The same experiments against a real libvirt on this host (layer 5; imports
:mod:`sim.experiment`, :mod:`sim.engine` (the trace format), :mod:`sim.model` and below;
the libvirt binding and fusepy only when used, from the ``realhost`` extra).

- :mod:`lv`         the libvirt binding behind a small interface, imported lazily
- :mod:`testbed`    a libvirt testbed: daemons started by hand (no systemd), guests, pools
- :mod:`fusefs`     a FUSE file system whose reads block on demand (a stuck storage backend)
- :mod:`plan`       an experiment turned into a schedule of real calls and faults
- :mod:`realrun`    the schedule run against the testbed; calls recorded as the engine's
- :mod:`results`    real runs summarized like simulated ones
- :mod:`compare`    simulated versus real, per metric, with the agreement rule
- :mod:`calibrate`  procedure costs measured on the host, as a catalog overlay
- :mod:`session`    one real-host session: testbed up, runs, results folder
"""
