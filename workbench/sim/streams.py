"""Random streams: one per source of randomness, spawned from the run's seed.

Common random numbers need each source drawn from its own stream, so that a policy that changes
who serves an order does not shift the arrivals or the next order's draws. The streams are
numpy generators spawned from ``SeedSequence(seed, spawn_key=(replication,))``, in a fixed order
of names, so the same seed and replication always give the same numbers, whatever process or
Dask worker runs them.
"""

from __future__ import annotations

import numpy as np

#: The sources, in spawn order (append only: reordering would change every result).
NAMES: tuple[str, ...] = (
    "arrivals",
    "orders",
    "behaviour",
    "extra",
    "policy",
    "emit",
    "shifts",
    "cancel",
    "withdraw",
    "dispute",
)


class Streams:
    """Named, independent ``numpy.random.Generator`` streams for one replication."""

    def __init__(self, seed: int, replication: int = 0, *, independent: bool = False) -> None:
        root = np.random.SeedSequence(seed, spawn_key=(replication,))
        children = root.spawn(len(NAMES))
        self.seed, self.replication = seed, replication
        self._g = {
            n: np.random.Generator(np.random.PCG64(c)) for n, c in zip(NAMES, children, strict=True)
        }
        self.independent = independent

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._g[name]

    @staticmethod
    def for_policy(seed: int, replication: int, policy_index: int, *, common: bool) -> Streams:
        """The streams of one (policy, replication) cell of a comparison: the same for every
        policy with common random numbers, different per policy without them (the control a
        test uses to show what CRN buys)."""
        if common:
            return Streams(seed, replication)
        return Streams(seed, replication * 1_000 + policy_index + 1, independent=True)
