"""Named random streams: one seed in, one independent stream per purpose out.

Streams are keyed by (experiment seed, replication, name); the topology is deliberately not
part of the key, so both topologies see the same workload and fault draws (common random
numbers).  Adding a stream never shifts the draws of another one.
"""

from __future__ import annotations

import random
import zlib

import numpy as np


def stream_seed(seed: int, replication: int, name: str) -> int:
    """A 64-bit seed for stream ``name``, independent of process and PYTHONHASHSEED."""
    key = zlib.crc32(name.encode("utf-8"))
    seq = np.random.SeedSequence(entropy=seed, spawn_key=(replication, key))
    return int(seq.generate_state(1, dtype=np.uint64)[0])


class Streams:
    """Factory and cache of :class:`random.Random` streams for one replication."""

    def __init__(self, seed: int, replication: int) -> None:
        self.seed = seed
        self.replication = replication
        self._streams: dict[str, random.Random] = {}

    def get(self, name: str) -> random.Random:
        """The stream called ``name``, created on first use from (seed, replication, name)."""
        rng = self._streams.get(name)
        if rng is None:
            rng = random.Random(stream_seed(self.seed, self.replication, name))
            self._streams[name] = rng
        return rng
