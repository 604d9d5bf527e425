"""Weighted fold-in of users' topic mixes by expectation-maximisation, topics fixed.

Self-contained (calls nothing outside this module); the Python side is
:mod:`gibbslda.rankers`. Glossary: d a user, w an item, k a topic; ``phi_wk`` the topics
item-major (V x K, C order), ``weight`` one non-negative weight per token; ``pop`` the
background (popularity) distribution over items, ``share`` a user's background share lam_d.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

USERS_A_CHUNK = 16  # users a thread takes at a time (each user's fit is its own)


@njit(cache=True, nogil=True, parallel=True)
def em_theta(indptr, words, weight, phi_wk, alpha, n_iter, out):
    """Row d of ``out`` (D x K): theta_d = (alpha + sum_t weight_t r_tk) / (sum weight +
    sum alpha), r_tk proportional to theta_dk phi_k,w_t; ``n_iter`` updates from the
    prior mean. A user without tokens keeps the prior mean. Users in chunks over the
    threads (each user's fit is its own: the same for any thread count)."""
    n_users = indptr.shape[0] - 1
    k_topics = phi_wk.shape[1]
    alpha_sum = _total(alpha)  # a plain loop: in a parallel kernel .sum() is a reduction
    for chunk in prange((n_users + USERS_A_CHUNK - 1) // USERS_A_CHUNK):
        acc = np.empty(k_topics)
        resp = np.empty(k_topics)
        for d in range(chunk * USERS_A_CHUNK, min(n_users, (chunk + 1) * USERS_A_CHUNK)):
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


@njit(cache=True, nogil=True, parallel=True)
def em_theta_share(indptr, words, weight, phi_wk, alpha, pop, prior, n_iter, theta, share):
    """Row d of ``theta`` (D x K) and ``share[d]``: the user's topic mix and own background
    share lam_d of p(w | d) = (1 - lam_d) sum_k theta_dk phi_k,w + lam_d pop[w], jointly by
    EM from (alpha / sum alpha, prior mean). E step: a token's background part
    q_t = lam pop[w] / p(w | d), topic parts r_tk = (1 - lam) theta_k phi_k,w / p(w | d).
    M step: theta_k = (alpha_k + A_k) / (sum_k A_k + sum alpha), A_k = sum_t weight_t
    r_tk; lam = (s m + Q) / (s + Q + sum_k A_k), Q = sum_t weight_t q_t: a Beta prior of
    mean m = prior[0] and strength s = prior[1] (pseudo-tokens) added to the expected
    counts, as alpha is to theta's (the posterior mean's form, not the MAP's a - 1). A user
    without tokens keeps the prior means. Users in chunks over the threads, as em_theta."""
    n_users = indptr.shape[0] - 1
    k_topics = phi_wk.shape[1]
    alpha_sum = _total(alpha)  # a plain loop: in a parallel kernel .sum() is a reduction
    mean, strength = prior[0], prior[1]
    for chunk in prange((n_users + USERS_A_CHUNK - 1) // USERS_A_CHUNK):
        acc = np.empty(k_topics)
        resp = np.empty(k_topics)
        for d in range(chunk * USERS_A_CHUNK, min(n_users, (chunk + 1) * USERS_A_CHUNK)):
            for k in range(k_topics):
                theta[d, k] = alpha[k] / alpha_sum
            share[d] = mean
            for _ in range(n_iter if indptr[d + 1] > indptr[d] else 0):
                acc[:] = 0.0
                back = 0.0
                for t in range(indptr[d], indptr[d + 1]):
                    w = words[t]
                    norm = share[d] * pop[w]
                    for k in range(k_topics):
                        resp[k] = (1.0 - share[d]) * theta[d, k] * phi_wk[w, k]
                        norm += resp[k]
                    if norm <= 0.0:
                        continue
                    scale = weight[t] / norm
                    back += share[d] * pop[w] * scale
                    for k in range(k_topics):
                        acc[k] += resp[k] * scale
                topical = _total(acc)
                if topical + back <= 0.0:
                    break
                for k in range(k_topics):
                    theta[d, k] = (alpha[k] + acc[k]) / (topical + alpha_sum)
                share[d] = (strength * mean + back) / (strength + topical + back)


@njit(cache=True, nogil=True)
def _total(x):
    """sum(x) in index order, whatever the thread count (numba makes ``x.sum()`` in a
    parallel kernel a reduction whose order follows the threads)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i]
    return total
