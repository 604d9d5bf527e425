"""Weighted fold-in of users' topic mixes by expectation-maximisation, topics fixed.

Self-contained (calls nothing outside this module); the Python side is
:mod:`gibbslda.rankers`. Glossary: d a user, w an item, k a topic; ``phi_wk`` the topics
item-major (V x K, C order), ``weight`` one non-negative weight per token.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def em_theta(indptr, words, weight, phi_wk, alpha, n_iter, out):
    """Row d of ``out`` (D x K): theta_d = (alpha + sum_t weight_t r_tk) / (sum weight +
    sum alpha), r_tk proportional to theta_dk phi_k,w_t; ``n_iter`` updates from the
    prior mean. A user without tokens keeps the prior mean."""
    n_users = indptr.shape[0] - 1
    k_topics = phi_wk.shape[1]
    alpha_sum = alpha.sum()
    acc = np.empty(k_topics)
    resp = np.empty(k_topics)
    for d in range(n_users):
        total = 0.0
        for t in range(indptr[d], indptr[d + 1]):
            total += weight[t]
        for k in range(k_topics):
            out[d, k] = alpha[k] / alpha_sum
        if indptr[d + 1] == indptr[d] or total <= 0.0:
            continue
        for _ in range(n_iter):
            acc[:] = 0.0
            for t in range(indptr[d], indptr[d + 1]):
                w = words[t]
                norm = 0.0
                for k in range(k_topics):
                    resp[k] = out[d, k] * phi_wk[w, k]
                    norm += resp[k]
                if norm <= 0.0:
                    continue
                scale = weight[t] / norm
                for k in range(k_topics):
                    acc[k] += resp[k] * scale
            for k in range(k_topics):
                out[d, k] = (alpha[k] + acc[k]) / (total + alpha_sum)
