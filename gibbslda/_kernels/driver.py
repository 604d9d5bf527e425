"""The sharded sweep: a deterministic parallel schedule over users x item blocks.

Users are split into P contiguous blocks and items into P blocks (Yan, Xu & Qi 2009;
tomotopy's PARTITION scheme). A sweep runs P rounds; in round r shard p samples the cell
(user block p, item block (p + r) mod P). Within a round no two shards touch the same
user or the same item, so the per-item counts ``n_wk`` and the topics ``z`` they read are
never written concurrently. Only the topic totals ``n_k`` are shared: each shard works on a
private copy taken at the start of the round, and the copies' changes are summed in shard
order when the round ends. That staleness of ``n_k`` within a round is the one
approximation; with P = 1 the sweep is the exact serial chain. Shard p always uses random
stream p, so the result depends on the seed and P, never on the number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from gibbslda._kernels.gibbs import dense_cell, sparse_cell
from gibbslda._kernels.mh import mh_cell

DENSE, SPARSE, MH = 0, 1, 2


@njit(cache=True, nogil=True)
def _cell(kind, tok, wt, wi, n_wk, n_k, prior, rng, d0, d1, b, mh_steps):
    alpha, alpha_cdf, beta = prior
    if kind == DENSE:
        dense_cell(tok, n_wk, n_k, alpha, beta, rng, d0, d1, b)
    elif kind == SPARSE:
        sparse_cell(tok, wt, n_wk, n_k, alpha, beta, rng, d0, d1, b)
    else:
        mh_cell(tok, wi, n_wk, n_k, alpha, alpha_cdf, beta, rng, d0, d1, b, mh_steps)


@njit(cache=True, nogil=True)
def sweep_serial(kind, tok, wt, wi, n_wk, n_k, prior, rng, mh_steps):
    """One sweep with a single shard: the exact chain, no threads started."""
    _cell(kind, tok, wt, wi, n_wk, n_k, prior, rng[0], 0, tok[0].shape[0] - 1, 0, mh_steps)


@njit(cache=True, parallel=True)
def sweep_sharded(kind, tok, wt, wi, n_wk, n_k, prior, rng, doc_bounds, mh_steps):
    """One sweep of sampler ``kind`` (DENSE, SPARSE or MH) over every token, P shards.

    ``tok = (indptr, cell_ptr, words, z)``, ``wt = (wt_ptr, wt_topic, wt_len)`` (SPARSE),
    ``wi = (word_ptr, word_z, tok_pos)`` (MH), ``prior = (alpha, alpha_cdf, beta)``.
    """
    n_shards = doc_bounds.shape[0] - 1
    local = np.empty((n_shards, n_k.shape[0]), dtype=np.int64)
    for r in range(n_shards):
        for p in range(n_shards):
            local[p, :] = n_k
        for p in prange(n_shards):
            _cell(kind, tok, wt, wi, n_wk, local[p], prior, rng[p], doc_bounds[p],
                  doc_bounds[p + 1], (p + r) % n_shards, mh_steps)
        merged = n_k.copy()
        for p in range(n_shards):
            merged += local[p] - n_k
        n_k[:] = merged
