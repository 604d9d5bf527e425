"""Numba kernels for learning the priors: digamma, count histograms, Minka's fixed point.

Self-contained (calls nothing outside this module); the Python side is
:mod:`gibbslda.priors`.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _digamma(x):
    """psi(x) for x > 0: recurrence up to 6, then the asymptotic series (error < 1e-13)."""
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    return result + np.log(x) - 0.5 * inv - inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))))


@njit(cache=True, nogil=True)
def doc_topic_counts(indptr, z, n_topics, base):
    """``k * base + n_dk`` for every user d and topic k it holds (n_dk >= 1), one entry
    each: at most one per token, so memory stays O(N) however long a user is (``base``
    must exceed every user's length). One pass over z, counts rebuilt in a scratch row."""
    keys = np.empty(z.shape[0], dtype=np.int64)
    n_keys = 0
    n_dk = np.zeros(n_topics, dtype=np.int64)
    for d in range(indptr.shape[0] - 1):
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] += 1
        for i in range(indptr[d], indptr[d + 1]):
            k = z[i]
            if n_dk[k] > 0:
                keys[n_keys] = k * base + n_dk[k]
                n_keys += 1
                n_dk[k] = 0
    return keys[:n_keys]


@njit(cache=True, nogil=True)
def count_histogram(item_counts, shift):
    """``hist[n]``: item x topic cells with count n >= 1 (counts given as in log_joint)."""
    top = 0
    for j in range(item_counts.shape[0]):
        top = max(top, item_counts[j] >> shift)
    hist = np.zeros(top + 1, dtype=np.int64)
    for j in range(item_counts.shape[0]):
        count = item_counts[j] >> shift
        if count > 0:
            hist[count] += 1
    return hist


@njit(cache=True, nogil=True)
def fixed_point_alpha(alpha, topics, sizes, weights, len_sizes, len_weights, n_iter, tol):
    """Minka's fixed point for an asymmetric Dirichlet from count histograms (in place):

    alpha_k <- alpha_k sum_n H[k, n] (psi(n + alpha_k) - psi(alpha_k))
                     / sum_n L[n] (psi(n + alpha_0) - psi(alpha_0)),

    with the non-zero histogram cells as (topics, sizes, weights) and (len_sizes,
    len_weights). Stops when no alpha_k moves by more than ``tol`` relative; a topic with
    no tokens would go to 0, so every alpha_k is kept >= 1e-8. Returns the iterations run.
    """
    n_topics = alpha.shape[0]
    numer = np.empty(n_topics)
    for it in range(n_iter):
        alpha_sum = alpha.sum()
        denom = 0.0
        for j in range(len_sizes.shape[0]):
            denom += len_weights[j] * (_digamma(len_sizes[j] + alpha_sum)
                                       - _digamma(alpha_sum))
        numer[:] = 0.0
        for j in range(topics.shape[0]):
            k = topics[j]
            numer[k] += weights[j] * (_digamma(sizes[j] + alpha[k]) - _digamma(alpha[k]))
        change = 0.0
        for k in range(n_topics):
            new = max(alpha[k] * numer[k] / denom, 1e-8)
            change = max(change, abs(new - alpha[k]) / alpha[k])
            alpha[k] = new
        if change < tol:
            return it + 1
    return n_iter


@njit(cache=True, nogil=True)
def fixed_point_beta(beta, count_hist, n_k, n_items, n_iter, tol):
    """Minka's fixed point for a symmetric Dirichlet over V items:

    beta <- beta sum_n C[n] (psi(n + beta) - psi(beta))
                / (V sum_k (psi(n_k + V beta) - psi(V beta))),

    C[n] the number of item x topic cells with count n. Returns (beta, iterations)."""
    for it in range(n_iter):
        numer = 0.0
        for n in range(1, count_hist.shape[0]):
            if count_hist[n] > 0:
                numer += count_hist[n] * (_digamma(n + beta) - _digamma(beta))
        v_beta = n_items * beta
        denom = 0.0
        for k in range(n_k.shape[0]):
            denom += _digamma(n_k[k] + v_beta) - _digamma(v_beta)
        new = max(beta * numer / (n_items * denom), 1e-8)
        change = abs(new - beta) / beta
        beta = new
        if change < tol:
            return beta, it + 1
    return beta, n_iter
