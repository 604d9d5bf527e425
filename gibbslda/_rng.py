"""Per-stream pseudo-random numbers for the numba kernels.

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
from numba import njit

_ONE = np.uint64(1)
_TWO53_INV = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_uint64(s):
    """Advance the xoshiro256** state ``s`` (uint64[4]) and return the next output."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """Next double in [0, 1) from the top 53 bits of the stream ``s``."""
    return np.float64(next_uint64(s) >> np.uint64(11)) * _TWO53_INV


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
    """States for ``n_streams`` streams of one purpose (0 = training, 1 = fold-in)."""
    root = np.random.SeedSequence(entropy, spawn_key=(purpose,))
    return stream_states(root, n_streams)
