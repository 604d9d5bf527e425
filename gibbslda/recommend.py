"""Ranked recommendations: p(item | user) = sum_k theta_uk phi_k,item, top-N per user."""
from __future__ import annotations

import numpy as np


def top_n(theta: np.ndarray, phi: np.ndarray, n: int = 20, *, exclude=None,
          chunk_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` highest-scoring items for every user.

    Parameters
    ----------
    theta : (D, K) users' topic mixes.  phi : (K, V) topics' item distributions.
    exclude : optional CSR pair ``(indptr, indices)`` of items to leave out per user
        (for example what each user already bought).
    chunk_size : users scored per matrix product, bounding memory to chunk_size x V floats.

    Returns
    -------
    items : int64 (D, n) item indices, best first (-1 where a user has fewer candidates).
    scores : float64 (D, n) p(item | user) of each, NaN-free (-inf where items is -1).
    """
    n_users, n_items = theta.shape[0], phi.shape[1]
    n = min(n, n_items)
    items = np.full((n_users, n), -1, dtype=np.int64)
    scores = np.full((n_users, n), -np.inf)
    for start in range(0, n_users, chunk_size):
        stop = min(start + chunk_size, n_users)
        block = theta[start:stop] @ phi
        if exclude is not None:
            indptr, indices = exclude
            rows = np.repeat(np.arange(stop - start), np.diff(indptr[start:stop + 1]))
            block[rows, indices[indptr[start]:indptr[stop]]] = -np.inf
        part = np.argpartition(-block, n - 1, axis=1)[:, :n] if n < n_items else \
            np.tile(np.arange(n_items), (stop - start, 1))
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        best_scores = np.take_along_axis(part_scores, order, axis=1)
        valid = np.isfinite(best_scores)
        items[start:stop] = np.where(valid, best, -1)
        scores[start:stop] = best_scores
    return items, scores
