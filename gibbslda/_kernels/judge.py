"""Hits in the top k of each row of a (blended) score block: the validation's judge.

Self-contained (calls nothing outside this module); the Python side is
:class:`gibbslda.validation.Judge`. Glossary: d a user (row), w an item (column).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

ROWS_A_CHUNK = 16  # rows a thread takes at a time (each with its own k slots)


@njit(cache=True, nogil=True, parallel=True)
def top_hits(lda, other, a, b, seen, truth, k, hits):
    """``hits[d]``: how many of row d's ``k`` best items by a lda[d, w] + b other[d, w]
    (``other`` not read when b is 0) are ``truth[d, w]``; items ``seen[d, w]`` are never
    taken, nor items scoring -inf or NaN. Items tied with the k-th score are taken in
    column order. One pass a row, k slots (k small: the top 20); rows in chunks over the
    threads (each row's count is its own: the same for any thread count)."""
    n_users, n_items = lda.shape
    for chunk in prange((n_users + ROWS_A_CHUNK - 1) // ROWS_A_CHUNK):
        value = np.empty(k)
        item = np.empty(k, dtype=np.int64)
        for d in range(chunk * ROWS_A_CHUNK, min(n_users, (chunk + 1) * ROWS_A_CHUNK)):
            value[:] = -np.inf
            item[:] = -1
            low, at = -np.inf, 0  # the smallest kept value and its slot
            for w in range(n_items):
                if seen[d, w]:
                    continue
                x = a * lda[d, w]
                if b != 0.0:
                    x += b * other[d, w]
                if x > low:
                    value[at], item[at] = x, w
                    low, at = value[0], 0
                    for s in range(1, k):  # evict the lowest; among ties the last column
                        if value[s] < low or (value[s] == low and item[s] > item[at]):
                            low, at = value[s], s
            count = 0
            for s in range(k):
                if item[s] >= 0 and truth[d, item[s]]:
                    count += 1
            hits[d] = count
