"""Numba kernels of incremental updates (:mod:`gibbslda.update`): first topics for new
tokens, and the uniform draws that thin old tokens and pick old users to refresh.

Glossary (the classic LDA symbols, as in :mod:`.gibbs`):

- ``d``: a user; ``w``: an item; ``k``, ``t``: topics; ``i``: a token of the sub-corpus
  (the users an update touches, their tokens gathered user by user).
- ``indptr`` (int64, D_sub + 1): sub-user ``d`` owns tokens ``indptr[d]:indptr[d + 1]``.
- ``rows`` (int32, N_sub): for a new token, the row of its item in ``n_wk_rows``; -1 for
  an old token (which keeps its topic and only counts towards n_dk).
- ``z`` (int32, N_sub): the topic of each token (read for old tokens, written for new).
- ``n_wk_rows`` (int32, W x K): the item x topic counts of the W items the new tokens
  use; ``n_k`` (int64, K) the topic totals; both count every token already placed.
- ``alpha`` (float64, K); ``beta``; ``v_beta`` = V beta with V the grown vocabulary.
- ``rng`` (uint64, 4): one xoshiro256** stream state, advanced in place.

Every kernel here calls only kernels of this module (see the package docstring for why),
so the stream's step is repeated from :mod:`.gibbs`, bit for bit the same generator.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_TWO53_INV = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _uniform(s):
    """Next double in [0, 1) from the xoshiro256** stream ``s`` (as gibbs.uniform)."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return np.float64(result >> np.uint64(11)) * _TWO53_INV


@njit(cache=True, nogil=True)
def uniforms(rng, n):
    """``n`` doubles in [0, 1) from the stream ``rng``, in order."""
    out = np.empty(n)
    for i in range(n):
        out[i] = _uniform(rng)
    return out


@njit(cache=True, nogil=True)
def fold_in_tokens(indptr, rows, z, n_wk_rows, n_k, alpha, beta, v_beta, rng):
    """Give each new token a topic drawn from the collapsed conditional given every token
    placed so far: p(k) proportional to (n_dk + alpha_k)(n_wk + beta) / (n_k + V beta).

    Users are taken in order and a user's new tokens in order; each drawn topic is
    counted at once (in n_dk, ``n_wk_rows`` and ``n_k``), so later tokens see it: the
    sequential initialisation of Gibbs sampling (each draw is exact for the tokens before
    it), which the sweeps that follow then mix.
    """
    n_topics = n_k.shape[0]
    n_dk = np.zeros(n_topics, dtype=np.int64)
    cum = np.empty(n_topics)
    for d in range(indptr.shape[0] - 1):
        for i in range(indptr[d], indptr[d + 1]):
            if rows[i] < 0:
                n_dk[z[i]] += 1
        for i in range(indptr[d], indptr[d + 1]):
            r = rows[i]
            if r < 0:
                continue
            total = 0.0
            for t in range(n_topics):
                total += (n_dk[t] + alpha[t]) * (n_wk_rows[r, t] + beta) / (n_k[t] + v_beta)
                cum[t] = total
            u = _uniform(rng) * total
            k = 0
            while k < n_topics - 1 and cum[k] <= u:
                k += 1
            z[i] = k
            n_dk[k] += 1
            n_wk_rows[r, k] += 1
            n_k[k] += 1
        n_dk[:] = 0
