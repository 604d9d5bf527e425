"""Seeding of the per-stream pseudo-random numbers the numba kernels draw.

Every sampling stream (one per shard, one for fold-in) owns a xoshiro256** state of four
uint64 words, held as one row of a ``(n_streams, 4)`` uint64 array. The kernels advance
the row they are given in place, so the state after a fit is exactly what a later call
needs to continue the same stream: it is saved with the model.

States are seeded from :class:`numpy.random.SeedSequence`, so streams spawned from one seed
are independent of each other and of the number of threads that later runs them.

References
----------
Blackman & Vigna (2021), "Scrambled linear pseudorandom number generators", ACM TOMS 47(4).
"""
from __future__ import annotations

import numpy as np

_ONE = np.uint64(1)

# The purposes of seed_streams: each spawns its own independent family of streams from one
# seed. The values are part of every saved model's random numbers: never renumber them.
TRAIN = 0          # the sampler's sweeps, one stream per shard
FOLD_IN = 1        # transform / sampler.fold_in on new users
LEFT_TO_RIGHT = 2  # the left-to-right likelihood estimator
PARTITIONS = 3     # DistributedLDA, one stream per partition


def __getattr__(name: str):
    # The numba stream functions live in gibbslda._kernels (see its docstring for why).
    if name in ("next_uint64", "uniform"):
        from gibbslda import _kernels
        return getattr(_kernels, name)
    raise AttributeError(f"module 'gibbslda._rng' has no attribute {name!r}")


def resolve_entropy(random_state) -> int:
    """Turn ``random_state`` (int, Generator or None) into the entropy of a SeedSequence."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, np.random.Generator):
        words = random_state.integers(0, 2**63, size=2, dtype=np.int64)
        return int(words[0]) << 63 | int(words[1])
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    raise TypeError(
        "random_state must be an int, a numpy Generator or None, "
        f"got {type(random_state).__name__}"
    )


def stream_states(seed_seq: np.random.SeedSequence, n_streams: int) -> np.ndarray:
    """One xoshiro256** state per stream, spawned from ``seed_seq``: (n_streams, 4) uint64."""
    states = np.empty((n_streams, 4), dtype=np.uint64)
    for i, child in enumerate(seed_seq.spawn(n_streams)):
        state = child.generate_state(4, dtype=np.uint64)
        if not state.any():  # the all-zero state is the one fixed point of xoshiro
            state[0] = _ONE
        states[i] = state
    return states


def seed_streams(entropy: int, purpose: int, n_streams: int) -> np.ndarray:
    """States for ``n_streams`` streams of one ``purpose`` (TRAIN, FOLD_IN, LEFT_TO_RIGHT
    or PARTITIONS)."""
    root = np.random.SeedSequence(entropy, spawn_key=(purpose,))
    return stream_states(root, n_streams)
