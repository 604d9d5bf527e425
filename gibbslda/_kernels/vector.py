"""Numba kernels of the small-K exact sampler (``sampler="vector"``, K <= 64): the dense
conditional as contiguous float32 rows the compiler vectorises.

Glossary (the classic LDA symbols, as in :mod:`.gibbs`):

- ``d``: a user; ``w``: an item; ``k``, ``t``: topics; ``i``: a token.
- ``indptr``, ``cell_ptr``, ``words``, ``z``, ``doc_bounds``: the tokens and the shard
  schedule, exactly as in :mod:`.gibbs` (``tok = (indptr, cell_ptr, words, z)``).
- ``n_wk`` (int32, V x K), ``n_k`` (int64, K): topic counts per item and in total;
  ``n_dk`` (int32, K): one user's, rebuilt from ``z`` in a scratch row.
- ``inv`` (float32, K): ``1 / (n_k + V beta)``, updated on every count change.
- ``p`` (float32, K rounded up to ``LANES``, zero past K): the token's conditional, then
  its running sums along each lane: ``p[t]`` becomes ``p[t] + p[t - LANES] + ...``.

Per token the conditional of Griffiths & Steyvers (2004, eq. 5),
p(k) proportional to (n_dk + alpha_k)(n_wk + beta) / (n_k + V beta), is the row ``p``
computed over contiguous float32 arrays with no branch and no division, which LLVM turns
into vector instructions. The draw needs no serial prefix sum over K: the running sums
along the ``LANES`` strided lanes (topics l, l + 8, l + 16, ...) are one vector add per 8
topics, with no reassociation, so no ``fastmath`` and the same bits on every CPU; an
inverse-CDF draw then counts the lane totals below u and the chosen lane's running sums
below what remains (branch-free counts). Any fixed order of the topics gives an exact
inverse-CDF draw, so the chain is the exact Gibbs chain up to float32 rounding, not
bit-equal to ``dense``. The rounding's bound is absolute, not relative: each term moves by
a relative 2**-24, but a running sum absorbs a term below about 2**-24 of itself, so a
topic whose term is that small is drawn with probability 0 (or twice its share): about
K 2**-24 (4e-6 at K = 64) of total variation per draw at most. The only divisions are two a
token (``inv`` of the old and the new topic), against K for ``dense``.

Every kernel here calls only kernels of this module (see the package docstring);
xoshiro256** is repeated for that reason.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

MAX_TOPICS = 64
LANES = 8  # float32 lanes of a 256-bit vector
_TWO53_INV = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _uniform(s):
    """Next double in [0, 1) from the xoshiro256** stream ``s`` (as :mod:`.gibbs`)."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return np.float64(result >> np.uint64(11)) * _TWO53_INV


@njit(cache=True, nogil=True, inline="always")
def _count(n_dk, inv, n_wk, n_k, v_beta, w, k, delta):
    """Add ``delta`` to topic k's count for the user, item w and in total; refresh
    ``inv[k]``."""
    n_dk[k] += delta
    n_wk[w, k] += delta
    n_k[k] += delta
    inv[k] = np.float32(1.0 / (n_k[k] + v_beta))


@njit(cache=True, nogil=True, inline="always")
def _draw(p, lane, n_topics, u01):
    """Inverse-CDF draw from the row ``p`` (zero past ``n_topics``; overwritten), topics in
    strided order: lane 0 (topics 0, 8, 16, ...), then lane 1, ...; ``u01`` in [0, 1)."""
    n_pad = p.shape[0]
    for t in range(n_topics, n_pad):  # the last pass left running sums there
        p[t] = 0.0
    for t in range(n_pad - LANES):  # running sums along each lane: vector adds
        p[t + LANES] += p[t]
    end = n_pad - LANES
    total = np.float32(0.0)
    for l in range(LANES):
        lane[l] = total  # the sum of the lanes before lane l
        total += p[end + l]
    u = np.float32(u01 * total)
    l = 0
    for m in range(1, min(LANES, n_topics)):  # never a lane of padding only
        l += lane[m] <= u
    u -= lane[l]
    n = 0
    for t in range(l, n_topics - LANES, LANES):  # stops before the lane's last topic
        n += p[t] <= u
    return l + LANES * n


@njit(cache=True, nogil=True)
def vector_cell(tok, n_wk, n_k, alpha, beta, rng, d0, d1, b):
    """Gibbs on the tokens of users d0:d1 whose item is in item block b (see the module
    docstring); the same conditional as ``gibbs.dense_cell``."""
    indptr, cell_ptr, words, z = tok
    n_topics = n_k.shape[0]
    v_beta = n_wk.shape[0] * beta
    beta32 = np.float32(beta)
    alpha32 = alpha.astype(np.float32)
    n_dk = np.zeros(n_topics, dtype=np.int32)
    inv = np.empty(n_topics, dtype=np.float32)
    p = np.zeros((n_topics + LANES - 1) // LANES * LANES, dtype=np.float32)
    lane = np.empty(LANES, dtype=np.float32)
    for k in range(n_topics):
        inv[k] = np.float32(1.0 / (n_k[k] + v_beta))
    for d in range(d0, d1):
        if cell_ptr[d, b] == cell_ptr[d, b + 1]:
            continue
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] += 1
        for i in range(cell_ptr[d, b], cell_ptr[d, b + 1]):
            w = words[i]
            _count(n_dk, inv, n_wk, n_k, v_beta, w, z[i], -1)
            for t in range(n_topics):  # the vectorised row: no branch, no division
                p[t] = ((np.float32(n_dk[t]) + alpha32[t])
                        * (np.float32(n_wk[w, t]) + beta32) * inv[t])
            k = _draw(p, lane, n_topics, _uniform(rng))
            z[i] = k
            _count(n_dk, inv, n_wk, n_k, v_beta, w, k, 1)
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] = 0


@njit(cache=True, nogil=True)
def sweep_serial(tok, n_wk, n_k, alpha, beta, rng):
    """One sweep with a single shard: the exact chain (up to float32 rounding)."""
    vector_cell(tok, n_wk, n_k, alpha, beta, rng[0], 0, tok[0].shape[0] - 1, 0)


# nogil: other Python threads (the CLI's Ctrl-C watcher) run during a sweep
@njit(cache=True, parallel=True, nogil=True)
def sweep_sharded(tok, n_wk, n_k, alpha, beta, rng, doc_bounds):
    """One sweep over P shards, the schedule of ``gibbs.sweep_sharded``: in round r shard
    p samples users block p x item block (p + r) mod P on its own copy of ``n_k`` and its
    own stream ``rng[p]``; the copies' changes are summed in shard order."""
    n_shards = doc_bounds.shape[0] - 1
    local = np.empty((n_shards, n_k.shape[0]), dtype=np.int64)
    for r in range(n_shards):
        for p in range(n_shards):
            local[p, :] = n_k
        for p in prange(n_shards):
            vector_cell(tok, n_wk, local[p], alpha, beta, rng[p], doc_bounds[p],
                        doc_bounds[p + 1], (p + r) % n_shards)
        merged = n_k.copy()
        for p in range(n_shards):
            merged += local[p] - n_k
        n_k[:] = merged
