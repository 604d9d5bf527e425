"""Kernels shared by every sampler: initialisation, the joint likelihood, fold-in."""
from __future__ import annotations

from math import lgamma

import numpy as np
from numba import njit

from gibbslda._rng import uniform


@njit(cache=True, nogil=True)
def init_topics(words, z, n_wk, n_k, rng):
    """Draw every token's topic uniformly at random and build the counts from them."""
    n_topics = n_k.shape[0]
    for i in range(words.shape[0]):
        k = min(np.int64(uniform(rng) * n_topics), n_topics - 1)
        z[i] = k
        n_wk[words[i], k] += 1
        n_k[k] += 1


@njit(cache=True, nogil=True)
def log_joint(indptr, z, n_wk, n_k, alpha, beta):
    """log p(w, z | alpha, beta) with theta and phi integrated out (Griffiths & Steyvers 2004).

    Zero counts contribute nothing (lgamma(0 + a) - lgamma(a)), so they are skipped; each
    user's counts are rebuilt from ``z`` in a scratch row.
    """
    n_items, n_topics = n_wk.shape
    v_beta = n_items * beta
    lg_beta = lgamma(beta)
    total = 0.0
    for k in range(n_topics):
        total += lgamma(v_beta) - lgamma(n_k[k] + v_beta)
    for w in range(n_items):
        for k in range(n_topics):
            if n_wk[w, k] > 0:
                total += lgamma(n_wk[w, k] + beta) - lg_beta
    alpha_sum = alpha.sum()
    lg_alpha_sum = lgamma(alpha_sum)
    lg_alpha = np.empty(n_topics)
    for k in range(n_topics):
        lg_alpha[k] = lgamma(alpha[k])
    n_dk = np.zeros(n_topics, dtype=np.int64)
    for d in range(indptr.shape[0] - 1):
        total += lg_alpha_sum - lgamma(indptr[d + 1] - indptr[d] + alpha_sum)
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] += 1
        for i in range(indptr[d], indptr[d + 1]):
            k = z[i]
            if n_dk[k] > 0:  # first token of topic k in this user: add its term, clear it
                total += lgamma(n_dk[k] + alpha[k]) - lg_alpha[k]
                n_dk[k] = 0
    return total


@njit(cache=True, nogil=True)
def fold_in(indptr, words, phi_wk, alpha, n_iter, burn_in, rng):
    """Topic mix of new users with the topics fixed: Gibbs on z only, theta averaged.

    p(z_i = k | rest) is proportional to (n_dk + alpha_k) phi_wk[w, k]. Each user's theta
    estimate (n_dk + alpha) / (n_d + sum(alpha)) is averaged over the ``n_iter - burn_in``
    sweeps after burn-in. A user with no tokens gets the prior mean alpha / sum(alpha).
    """
    n_users = indptr.shape[0] - 1
    n_topics = phi_wk.shape[1]
    alpha_sum = alpha.sum()
    theta = np.zeros((n_users, n_topics))
    cum = np.empty(n_topics)
    counts = np.zeros(n_topics, dtype=np.int32)
    z = np.empty(np.int64(np.max(np.diff(indptr))) if n_users > 0 else 0, dtype=np.int32)
    for d in range(n_users):
        start = indptr[d]
        n_d = indptr[d + 1] - start
        counts[:] = 0
        for j in range(n_d):
            k = min(np.int64(uniform(rng) * n_topics), n_topics - 1)
            z[j] = k
            counts[k] += 1
        for it in range(n_iter):
            for j in range(n_d):
                w = words[start + j]
                counts[z[j]] -= 1
                total = 0.0
                for t in range(n_topics):
                    total += (counts[t] + alpha[t]) * phi_wk[w, t]
                    cum[t] = total
                u = uniform(rng) * total
                k = 0
                while k < n_topics - 1 and cum[k] <= u:
                    k += 1
                z[j] = k
                counts[k] += 1
            if it >= burn_in:
                for t in range(n_topics):
                    theta[d, t] += (counts[t] + alpha[t]) / (n_d + alpha_sum)
        for t in range(n_topics):
            theta[d, t] /= n_iter - burn_in
    return theta
