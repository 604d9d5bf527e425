"""Exact collapsed Gibbs cells: the dense O(K) sampler and SparseLDA's O(K_d + K_w) one.

A cell is the work of one shard in one round: its users ``d0:d1`` and, of their tokens,
those whose item lies in item block ``b`` (see :mod:`gibbslda._kernels.driver`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from gibbslda._rng import uniform


@njit(cache=True, nogil=True)
def dense_cell(tok, n_wk, n_k, alpha, beta, rng, d0, d1, b):
    """Gibbs on each token: p(k) proportional to (n_dk + alpha_k)(n_wk + beta)/(n_k + V beta).

    The conditional of Griffiths & Steyvers (2004, eq. 5), evaluated for every topic.
    """
    indptr, cell_ptr, words, z = tok
    n_topics = n_k.shape[0]
    v_beta = n_wk.shape[0] * beta
    n_dk = np.zeros(n_topics, dtype=np.int32)
    cum = np.empty(n_topics)
    for d in range(d0, d1):
        if cell_ptr[d, b] == cell_ptr[d, b + 1]:
            continue
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] += 1
        for i in range(cell_ptr[d, b], cell_ptr[d, b + 1]):
            w = words[i]
            k = z[i]
            n_dk[k] -= 1
            n_wk[w, k] -= 1
            n_k[k] -= 1
            total = 0.0
            for t in range(n_topics):
                total += (n_dk[t] + alpha[t]) * (n_wk[w, t] + beta) / (n_k[t] + v_beta)
                cum[t] = total
            u = uniform(rng) * total
            k = 0
            while k < n_topics - 1 and cum[k] <= u:
                k += 1
            z[i] = k
            n_dk[k] += 1
            n_wk[w, k] += 1
            n_k[k] += 1
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] -= 1


@njit(cache=True, nogil=True, inline="always")
def _list_remove(topics, start, length, k):
    """Remove topic k from the sorted run topics[start:start + length]; returns new length."""
    j = start
    while topics[j] != k:
        j += 1
    for m in range(j, start + length - 1):
        topics[m] = topics[m + 1]
    return length - 1


@njit(cache=True, nogil=True, inline="always")
def _list_insert(topics, start, length, k):
    """Insert topic k into the sorted run topics[start:start + length]; returns new length."""
    j = start + length
    while j > start and topics[j - 1] > k:
        topics[j] = topics[j - 1]
        j -= 1
    topics[j] = k
    return length + 1


@njit(cache=True, nogil=True)
def sparse_cell(tok, wt, n_wk, n_k, alpha, beta, rng, d0, d1, b):
    """SparseLDA (Yao, Mimno & McCallum 2009): the same conditional split into three buckets,

    smoothing  s = sum_k alpha_k beta / (n_k + V beta)                   (all topics, kept),
    user       r = sum_{k: n_dk > 0} n_dk beta / (n_k + V beta)          (user's topics),
    item       q = sum_{k: n_wk > 0} n_wk (alpha_k + n_dk) / (n_k + V beta) (item's topics),

    so a token costs O(K_d + K_w). ``wt = (wt_ptr, wt_topic, wt_len)`` holds each item's
    non-zero topics, sorted, in a run of capacity min(K, item frequency); the user's
    non-zero topics are rebuilt from ``z`` per user. ``inv[k] = 1 / (n_k + V beta)`` is
    kept per topic, so a token costs two divisions whatever its buckets.
    """
    indptr, cell_ptr, words, z = tok
    wt_ptr, wt_topic, wt_len = wt
    n_topics = n_k.shape[0]
    v_beta = n_wk.shape[0] * beta
    n_dk = np.zeros(n_topics, dtype=np.int32)
    doc_topics = np.empty(n_topics, dtype=np.int32)
    inv = np.empty(n_topics)
    coef = np.empty(n_topics)  # (alpha_k + n_dk) / (n_k + V beta)
    q_terms = np.empty(n_topics)
    s_sum = 0.0
    for k in range(n_topics):
        inv[k] = 1.0 / (n_k[k] + v_beta)
        s_sum += alpha[k] * beta * inv[k]
        coef[k] = alpha[k] * inv[k]
    for d in range(d0, d1):
        if cell_ptr[d, b] == cell_ptr[d, b + 1]:
            continue
        n_doc_topics = 0
        for i in range(indptr[d], indptr[d + 1]):
            k = z[i]
            if n_dk[k] == 0:
                doc_topics[n_doc_topics] = k
                n_doc_topics += 1
            n_dk[k] += 1
        r_sum = 0.0
        for j in range(n_doc_topics):
            k = doc_topics[j]
            r_sum += n_dk[k] * beta * inv[k]
            coef[k] = (alpha[k] + n_dk[k]) * inv[k]
        for i in range(cell_ptr[d, b], cell_ptr[d, b + 1]):
            w = words[i]
            k = z[i]
            # take token i out: every cached term that involves topic k changes
            s_sum -= alpha[k] * beta * inv[k]
            r_sum -= n_dk[k] * beta * inv[k]
            n_dk[k] -= 1
            n_wk[w, k] -= 1
            n_k[k] -= 1
            inv[k] = 1.0 / (n_k[k] + v_beta)
            s_sum += alpha[k] * beta * inv[k]
            r_sum += n_dk[k] * beta * inv[k]
            coef[k] = (alpha[k] + n_dk[k]) * inv[k]
            if n_wk[w, k] == 0:
                wt_len[w] = _list_remove(wt_topic, wt_ptr[w], wt_len[w], k)
            if n_dk[k] == 0:
                j = 0
                while doc_topics[j] != k:
                    j += 1
                n_doc_topics -= 1
                doc_topics[j] = doc_topics[n_doc_topics]
            q_sum = 0.0
            start = wt_ptr[w]
            for j in range(wt_len[w]):
                t = wt_topic[start + j]
                q_sum += n_wk[w, t] * coef[t]
                q_terms[j] = q_sum
            u = uniform(rng) * (s_sum + r_sum + q_sum)
            if u < q_sum:
                j = 0
                while j < wt_len[w] - 1 and q_terms[j] <= u:
                    j += 1
                k = wt_topic[start + j]
            elif u < q_sum + r_sum and n_doc_topics > 0:
                u -= q_sum
                j = 0
                k = doc_topics[0]
                while j < n_doc_topics:
                    k = doc_topics[j]
                    u -= n_dk[k] * beta * inv[k]
                    if u < 0.0:
                        break
                    j += 1
            else:
                u -= q_sum + r_sum
                k = 0
                while k < n_topics - 1:
                    u -= alpha[k] * beta * inv[k]
                    if u < 0.0:
                        break
                    k += 1
            # put token i back with topic k
            s_sum -= alpha[k] * beta * inv[k]
            r_sum -= n_dk[k] * beta * inv[k]
            if n_wk[w, k] == 0:
                wt_len[w] = _list_insert(wt_topic, wt_ptr[w], wt_len[w], k)
            if n_dk[k] == 0:
                doc_topics[n_doc_topics] = k
                n_doc_topics += 1
            z[i] = k
            n_dk[k] += 1
            n_wk[w, k] += 1
            n_k[k] += 1
            inv[k] = 1.0 / (n_k[k] + v_beta)
            s_sum += alpha[k] * beta * inv[k]
            r_sum += n_dk[k] * beta * inv[k]
            coef[k] = (alpha[k] + n_dk[k]) * inv[k]
        for j in range(n_doc_topics):
            k = doc_topics[j]
            n_dk[k] = 0
            coef[k] = alpha[k] * inv[k]
