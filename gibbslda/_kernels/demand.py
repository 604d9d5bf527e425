"""Numba kernels of the demand forecasts (:mod:`gibbslda.demand`): events split over
interests by p(k | user, item), one user-item pair at a time, never pairs x K at once.

Glossary (as in :mod:`.scores`): ``w`` an item, ``k`` a topic, ``t`` a period, ``a`` a
smoothing candidate, ``h`` a step ahead.

- pairs ``p`` (sorted by item): ``pair_item[p]`` and ``pair_row[p]``, the pair's row of
  ``weights`` (theta of its user, or the prior weights n_k + alpha_k for a user the model
  does not know); its cells (period, weight of events) are
  ``cell_t[cell_ptr[p]:cell_ptr[p + 1]]``, ``cell_n[...]``.
- item rows ``(w_ptr, w_topic, w_count)`` and ``denom`` (n_k + V beta): phi_kw is
  (n_kw + beta) / denom_k.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _posterior(w, row, weights, w_ptr, w_topic, w_count, denom, beta, post):
    """p(k | user, item) into ``post`` (K,), unnormalised (weights_row,k phi_kw); returns
    its sum."""
    n_topics = post.shape[0]
    for k in range(n_topics):
        post[k] = weights[row, k] * beta / denom[k]
    for j in range(w_ptr[w], w_ptr[w + 1]):
        k = w_topic[j]
        post[k] = weights[row, k] * (w_count[j] + beta) / denom[k]
    total = 0.0
    for k in range(n_topics):
        total += post[k]
    return total


@njit(cache=True, nogil=True)
def interest_series(pair_item, pair_row, cell_ptr, cell_t, cell_n, weights, w_ptr, w_topic,
                    w_count, denom, beta, n_periods):
    """A (K, T): the events of each period split over the interests."""
    n_topics = denom.shape[0]
    out = np.zeros((n_topics, n_periods))
    post = np.empty(n_topics)
    for p in range(pair_item.shape[0]):
        total = _posterior(pair_item[p], pair_row[p], weights, w_ptr, w_topic, w_count,
                           denom, beta, post)
        for c in range(cell_ptr[p], cell_ptr[p + 1]):
            n = cell_n[c] / total
            for k in range(n_topics):
                out[k, cell_t[c]] += post[k] * n
    return out


@njit(cache=True, nogil=True)
def scaled_levels(pair_item, pair_row, cell_ptr, cell_t, cell_n, table, growth, weights,
                  w_ptr, w_topic, w_count, denom, beta, n_items):
    """Per smoothing column c (rows of ``table`` (C, T), the weight of each period):
    each item's smoothed level ``own`` (C, V), sum over its cells of table[c, t] n, and
    that level scaled by its interests' growth (C, V, H), sum over its pairs of
    s_c(pair) sum_k p(k | pair) growth[c, k, h]; through each item's smoothed interest
    levels (C x K), so O(cells C + pairs C K + V C K H)."""
    n_cols, n_topics, horizon = growth.shape
    out = np.zeros((n_cols, n_items, horizon))
    own = np.zeros((n_cols, n_items))
    post = np.empty(n_topics)
    smooth = np.empty(n_cols)
    level = np.zeros((n_cols, n_topics))
    n_pairs = pair_item.shape[0]
    for p in range(n_pairs):
        w = pair_item[p]
        smooth[:] = 0.0
        for c in range(cell_ptr[p], cell_ptr[p + 1]):
            for a in range(n_cols):
                smooth[a] += table[a, cell_t[c]] * cell_n[c]
        total = _posterior(w, pair_row[p], weights, w_ptr, w_topic, w_count, denom, beta,
                           post)
        for a in range(n_cols):
            own[a, w] += smooth[a]
            s = smooth[a] / total
            if s != 0.0:  # alpha 1 and the validations' origins leave most pairs out
                for k in range(n_topics):
                    level[a, k] += s * post[k]
        if p + 1 == n_pairs or pair_item[p + 1] != w:  # the item's last pair
            for a in range(n_cols):
                for k in range(n_topics):
                    if level[a, k] != 0.0:
                        for h in range(horizon):
                            out[a, w, h] += level[a, k] * growth[a, k, h]
                        level[a, k] = 0.0
    return out, own


@njit(cache=True, nogil=True)
def blend_errors(own, scaled, topdown, actual, bucket, lambdas, omegas, scale):
    """Absolute errors per (calibration c, alpha a, lambda j, omega o, bucket) of the
    blends c_b ((1 - omega)((1 - lambda) own + lambda scaled) + omega topdown) against
    ``actual`` (V, H); ``scale`` (2, A, L, O, buckets) holds each blend's c."""
    n_alpha, n_items, horizon = scaled.shape
    err = np.zeros(scale.shape)
    for w in range(n_items):
        b = bucket[w]
        for a in range(n_alpha):
            for j in range(lambdas.shape[0]):
                lam = lambdas[j]
                for o in range(omegas.shape[0]):
                    om = omegas[o]
                    c0 = scale[0, a, j, o, b]
                    c1 = scale[1, a, j, o, b]
                    e0 = 0.0
                    e1 = 0.0
                    for h in range(horizon):
                        f = ((1 - om) * ((1 - lam) * own[a, w] + lam * scaled[a, w, h])
                             + om * topdown[w, h])
                        e0 += abs(actual[w, h] - c0 * f)
                        e1 += abs(actual[w, h] - c1 * f)
                    err[0, a, j, o, b] += e0
                    err[1, a, j, o, b] += e1
    return err
