"""Numba kernels of the item-kNN and EASE baselines: sparse co-occurrence counting.

Self-contained (calls nothing outside this module); the Python side is
:mod:`gibbslda.baselines`. Glossary: d a user, v and w items.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

ITEMS_A_CHUNK = 64  # items a thread takes at a time (each with its own work arrays)


@njit(cache=True, nogil=True, parallel=True)
def cosine_neighbours(item_ptr, item_users, user_ptr, user_items, out_items, out_sims):
    """Row w of out_items / out_sims: w's most cosine-similar items, best first. Items in
    chunks over the threads (each row is its own: the same for any thread count)."""
    n_items, k = out_items.shape
    for chunk in prange((n_items + ITEMS_A_CHUNK - 1) // ITEMS_A_CHUNK):
        together = np.zeros(n_items, dtype=np.int64)  # users having both w and v
        touched = np.empty(n_items, dtype=np.int32)
        for w in range(chunk * ITEMS_A_CHUNK, min(n_items, (chunk + 1) * ITEMS_A_CHUNK)):
            n_touched = 0
            for p in range(item_ptr[w], item_ptr[w + 1]):
                d = item_users[p]
                for q in range(user_ptr[d], user_ptr[d + 1]):
                    v = user_items[q]
                    if v != w:
                        if together[v] == 0:
                            touched[n_touched] = v
                            n_touched += 1
                        together[v] += 1
            candidates = np.sort(touched[:n_touched])
            sims = np.empty(n_touched, dtype=np.float64)
            n_w = np.float64(item_ptr[w + 1] - item_ptr[w])
            for t in range(n_touched):
                v = candidates[t]
                sims[t] = together[v] / np.sqrt(n_w * np.float64(item_ptr[v + 1]
                                                                 - item_ptr[v]))
                together[v] = 0
            order = np.argsort(-sims, kind="mergesort")  # stable: ties keep the lower item
            for t in range(min(k, n_touched)):
                out_items[w, t] = candidates[order[t]]
                out_sims[w, t] = sims[order[t]]


@njit(cache=True, nogil=True, parallel=True)
def interest_agreement(indptr, cols, q, out):
    """out[p] = q[i] . q[cols[p]] for the kept pairs p of row i (rows: ``indptr``); q the
    items' unit interest vectors (V x K, C order)."""
    n_rows = indptr.shape[0] - 1
    for chunk in prange((n_rows + ITEMS_A_CHUNK - 1) // ITEMS_A_CHUNK):
        for i in range(chunk * ITEMS_A_CHUNK, min(n_rows, (chunk + 1) * ITEMS_A_CHUNK)):
            for p in range(indptr[i], indptr[i + 1]):
                j = cols[p]
                total = 0.0
                for k in range(q.shape[1]):
                    total += q[i, k] * q[j, k]
                out[p] = total


@njit(cache=True, nogil=True)
def sparse_product(user_ptr, user_items, sim_ptr, sim_items, sim_values, out):
    """out[d] += sum over the user's items v of the sparse row v of the similarities."""
    for d in range(user_ptr.shape[0] - 1):
        for q in range(user_ptr[d], user_ptr[d + 1]):
            v = user_items[q]
            for p in range(sim_ptr[v], sim_ptr[v + 1]):
                out[d, sim_items[p]] += sim_values[p]


@njit(cache=True, nogil=True)
def cooccurrence(user_ptr, user_items, gram):
    """gram[v, w] += 1 for every user having both v and w (v == w included)."""
    for d in range(user_ptr.shape[0] - 1):
        for a in range(user_ptr[d], user_ptr[d + 1]):
            v = user_items[a]
            for b in range(user_ptr[d], user_ptr[d + 1]):
                gram[v, user_items[b]] += 1.0


@njit(cache=True, nogil=True, parallel=True)
def dense_row_sums(user_ptr, user_items, weights, out):
    """out[d] += the rows ``weights[v]`` of the user's items v (a sparse binary history
    times a dense matrix: O(nnz x columns), not O(users x rows x columns)). Users in
    chunks over the threads; each row's sum runs in the user's item order."""
    n_users = user_ptr.shape[0] - 1
    for chunk in prange((n_users + ITEMS_A_CHUNK - 1) // ITEMS_A_CHUNK):
        for d in range(chunk * ITEMS_A_CHUNK, min(n_users, (chunk + 1) * ITEMS_A_CHUNK)):
            for q in range(user_ptr[d], user_ptr[d + 1]):
                v = user_items[q]
                for w in range(weights.shape[1]):
                    out[d, w] += weights[v, w]
