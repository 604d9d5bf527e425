"""Numba kernels of the per-call paths: sparse item x topic counts and the exact top N.

Glossary (the classic LDA symbols, as in :mod:`.gibbs`):

- ``d``: a user; ``w``: an item; ``k``: a topic; ``K``, ``V``: topics, items.
- item rows ``(w_ptr, w_topic, w_count)``: item w's non-zero counts n_kw are
  ``w_count[w_ptr[w]:w_ptr[w + 1]]``, of the topics ``w_topic[...]`` (ascending).
- topic lists ``(k_ptr, k_item, k_count)``: topic k's non-zero counts, largest first
  (equal counts by lower item).
- ``denom`` (float64, K): n_k + V beta, so phi_kw = (n_kw + beta) / denom_k.
- ``prior`` (float64, V): sum_k alpha_k n_kw / denom_k; ``order`` (int64, V): the items
  by decreasing prior (any order among equal ones).

Every kernel here calls only kernels of this module (see the package docstring for why).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def item_rows_from_tokens(word_ptr, perm, z, n_topics):
    """Item rows from the topics of each item's tokens (``perm`` lists item w's tokens at
    ``perm[word_ptr[w]:word_ptr[w + 1]]``): O(N + nnz log K), one K-sized scratch."""
    n_items = word_ptr.shape[0] - 1
    counts = np.zeros(n_topics, dtype=np.int64)
    ptr = np.zeros(n_items + 1, dtype=np.int64)
    for w in range(n_items):  # pass 1: distinct topics per item
        nnz = 0
        for j in range(word_ptr[w], word_ptr[w + 1]):
            k = z[perm[j]]
            if counts[k] == 0:
                nnz += 1
            counts[k] += 1
        for j in range(word_ptr[w], word_ptr[w + 1]):
            counts[z[perm[j]]] = 0
        ptr[w + 1] = ptr[w] + nnz
    topic = np.empty(ptr[n_items], dtype=np.int32)
    count = np.empty(ptr[n_items], dtype=np.int32)
    for w in range(n_items):  # pass 2: the entries, topics ascending
        at = ptr[w]
        for j in range(word_ptr[w], word_ptr[w + 1]):
            k = z[perm[j]]
            if counts[k] == 0:
                topic[at] = k
                at += 1
            counts[k] += 1
        row = np.sort(topic[ptr[w]:ptr[w + 1]])
        for j in range(row.shape[0]):
            topic[ptr[w] + j] = row[j]
            count[ptr[w] + j] = counts[row[j]]
            counts[row[j]] = 0
    return ptr, topic, count


@njit(cache=True, nogil=True)
def item_rows_from_packed(wc_ptr, wc_val, wc_len, bits):
    """Item rows from the sparse sampler's packed rows (``count << bits | topic``)."""
    n_items = wc_len.shape[0]
    ptr = np.zeros(n_items + 1, dtype=np.int64)
    for w in range(n_items):
        ptr[w + 1] = ptr[w] + wc_len[w]
    topic = np.empty(ptr[n_items], dtype=np.int32)
    count = np.empty(ptr[n_items], dtype=np.int32)
    mask = (1 << bits) - 1
    for w in range(n_items):
        n = wc_len[w]
        keys = np.empty(n, dtype=np.int64)
        for j in range(n):
            keys[j] = np.int64(wc_val[wc_ptr[w] + j])
        by_topic = np.argsort(keys & mask)
        for j in range(n):
            value = keys[by_topic[j]]
            topic[ptr[w] + j] = value & mask
            count[ptr[w] + j] = value >> bits
    return ptr, topic, count


@njit(cache=True, nogil=True)
def topic_lists(w_ptr, w_topic, w_count, n_topics, by_count):
    """Topic lists from item rows: a counting sort by topic (items stay ascending), then
    with ``by_count`` each topic's entries by decreasing count, stably (O(nnz log))."""
    n_items = w_ptr.shape[0] - 1
    k_ptr = np.zeros(n_topics + 1, dtype=np.int64)
    for j in range(w_topic.shape[0]):
        k_ptr[w_topic[j] + 1] += 1
    for k in range(n_topics):
        k_ptr[k + 1] += k_ptr[k]
    fill = k_ptr[:-1].copy()
    k_item = np.empty(w_topic.shape[0], dtype=np.int32)
    k_count = np.empty(w_topic.shape[0], dtype=np.int32)
    for w in range(n_items):
        for j in range(w_ptr[w], w_ptr[w + 1]):
            k = w_topic[j]
            k_item[fill[k]] = w
            k_count[fill[k]] = w_count[j]
            fill[k] += 1
    for k in range(n_topics if by_count else 0):
        a, b = k_ptr[k], k_ptr[k + 1]
        order = np.argsort(-k_count[a:b], kind="mergesort")
        items = k_item[a:b][order]
        counts = k_count[a:b][order]
        k_item[a:b] = items
        k_count[a:b] = counts
    return k_ptr, k_item, k_count


@njit(cache=True, nogil=True)
def prior_scores(w_ptr, w_topic, w_count, alpha, denom):
    """sum_k alpha_k n_kw / denom_k per item (float64, V)."""
    n_items = w_ptr.shape[0] - 1
    prior = np.zeros(n_items)
    for w in range(n_items):
        total = 0.0
        for j in range(w_ptr[w], w_ptr[w + 1]):
            k = w_topic[j]
            total += alpha[k] * w_count[j] / denom[k]
        prior[w] = total
    return prior


@njit(cache=True, nogil=True)
def top_n_theta(theta, model, exclude, n, gamma, items_out, scores_out):
    """The exact top ``n`` items of each row of ``theta`` by p(w | d) = sum_k theta_dk
    phi_kw, without scoring every item (:func:`_top_one`).

    ``model`` = (w_ptr, w_topic, w_count, k_ptr, k_item, k_count, denom, prior, order,
    alpha, beta); ``exclude`` = (ex_ptr, ex_items, banned): row d never gets the items
    ``ex_items[ex_ptr[d]:ex_ptr[d + 1]]`` nor those with ``banned[w]``.
    """
    scratch = _scratch(model)
    ex_ptr, ex_items, banned = exclude
    for d in range(theta.shape[0]):
        _top_one(theta[d], ex_items[ex_ptr[d]:ex_ptr[d + 1]], d + 1, model, banned, n,
                 gamma, scratch, items_out[d], scores_out[d])


@njit(cache=True, nogil=True)
def top_n_rows(tokens, rows, exclude, model, n, gamma, items_out, scores_out):
    """:func:`top_n_theta` for training users ``rows``, theta_dk = (n_dk + alpha_k) /
    (n_d + alpha_sum) built from their tokens as ``doc_topic_`` builds it.

    ``tokens`` = (indptr, words, z, alpha_sum); ``exclude`` = (seen, ex_ptr, ex_items,
    banned): with ``seen`` a user's own items are excluded too.
    """
    indptr, words, z, alpha_sum = tokens
    seen, ex_ptr, ex_items, banned = exclude
    alpha = model[9]
    n_topics = alpha.shape[0]
    scratch = _scratch(model)
    counts = np.zeros(n_topics, dtype=np.int64)
    th = np.empty(n_topics)
    for r in range(rows.shape[0]):
        d = rows[r]
        a, b = indptr[d], indptr[d + 1]
        for i in range(a, b):
            counts[z[i]] += 1
        for k in range(n_topics):
            th[k] = (counts[k] + alpha[k]) / ((b - a) + alpha_sum)
        for i in range(a, b):
            counts[z[i]] = 0
        if seen:
            _mark(scratch[2], words[a:b], r + 1)
        _top_one(th, ex_items[ex_ptr[r]:ex_ptr[r + 1]], r + 1, model, banned, n, gamma,
                 scratch, items_out[r], scores_out[r])


@njit(cache=True, nogil=True)
def _mark(excluded, items, mark):
    for j in range(items.shape[0]):
        excluded[items[j]] = mark


@njit(cache=True, nogil=True)
def _scratch(model):
    """Per-call work arrays: topic weights, touched topics, per-item marks (excluded for
    row r: r + 1; candidate of round t: t), the round counter and beta / denom."""
    denom, beta = model[6], model[10]
    n_topics, n_items = denom.shape[0], model[0].shape[0] - 1
    smooth = np.empty(n_topics)
    for k in range(n_topics):
        smooth[k] = beta / denom[k]  # (0 + beta) / denom_k: phi of a zero count
    return (np.zeros(n_topics), np.empty(n_topics, dtype=np.int64),
            np.zeros(n_items, dtype=np.int32), np.zeros(n_items, dtype=np.int32),
            np.zeros(1, dtype=np.int64), smooth)


@njit(cache=True, nogil=True)
def _top_one(th, ex_items, mark, model, banned, n, gamma, scratch, items, scores):
    """The exact top n of one user (topic mix ``th``) into ``items`` / ``scores``.

    With lambda = min_k theta_k / alpha_k, theta_k = lambda alpha_k + r_k (r_k >= 0, zero
    outside the user's own topics T), so up to the constant beta sum_k theta_k / denom_k
    every item scores S_w = lambda prior_w + sum_{k in T} (r_k / denom_k) n_kw. Taking the
    first p entries of the prior order and of each list of T, an item in none of them
    scores at most tau = lambda prior[order[p]] + sum_{k in T} (r_k / denom_k) k_count at
    depth p; p doubles until n candidates beat tau by the rounding margin ``gamma``
    (relative). Candidates within the margin of the n-th best are then scored exactly as
    the dense product does (K products added in topic order) and ranked by (-score, w).
    """
    w_ptr, w_topic, w_count, k_ptr, k_item, k_count, denom, prior, order, alpha, beta = model
    weight, touched, excluded, seen, rounds, smooth = scratch
    n_topics = th.shape[0]
    n_items = w_ptr.shape[0] - 1
    lam = np.inf
    for k in range(n_topics):
        lam = min(lam, th[k] / alpha[k])
    n_touched = 0
    base = 0.0
    for k in range(n_topics):
        base += th[k] / denom[k]
        rest = th[k] - lam * alpha[k]
        weight[k] = 0.0
        if rest > 8e-16 * th[k]:
            weight[k] = rest / denom[k]
            touched[n_touched] = k
            n_touched += 1
    base *= beta
    _mark(excluded, ex_items, mark)
    depth = max(2 * n, 16)
    while True:
        rounds[0] += 1
        cand, screen, n_cand = _candidates(model, lam, weight, touched[:n_touched],
                                           depth, seen, rounds[0])
        pool = (cand, screen, n_cand)
        n_ok, nth = _nth_best(pool, (excluded, banned, mark), n)
        if depth >= n_items:
            break
        tau = lam * prior[order[depth]]
        for t in range(n_touched):
            k = touched[t]
            if k_ptr[k] + depth < k_ptr[k + 1]:
                tau += weight[k] * k_count[k_ptr[k] + depth]
        if n_ok >= n and (tau + base) * (1 + gamma) < (nth + base) * (1 - gamma):
            break
        depth *= 2
    _rescore(model, th, smooth, pool, (excluded, banned, mark), n_ok >= n,
             (nth + base) * (1 - gamma) / (1 + gamma) - base, items, scores)


@njit(cache=True, nogil=True)
def _candidates(model, lam, weight, touched, depth, seen, stamp):
    """The first ``depth`` items of the prior order and of each touched topic's list, once
    each, with their screening scores lambda prior_w + sum_k weight_k n_kw."""
    w_ptr, w_topic, w_count, k_ptr, k_item, k_count, denom, prior, order, alpha, beta = model
    n_items = w_ptr.shape[0] - 1
    top = min(depth, n_items)
    room = top
    for t in range(touched.shape[0]):
        room += min(depth, k_ptr[touched[t] + 1] - k_ptr[touched[t]])
    cand = np.empty(min(room, n_items), dtype=np.int64)
    n_cand = 0
    for j in range(top):
        w = order[j]
        if seen[w] != stamp:
            seen[w] = stamp
            cand[n_cand] = w
            n_cand += 1
    for t in range(touched.shape[0]):
        k = touched[t]
        for j in range(k_ptr[k], min(k_ptr[k] + depth, k_ptr[k + 1])):
            w = k_item[j]
            if seen[w] != stamp:
                seen[w] = stamp
                cand[n_cand] = w
                n_cand += 1
    screen = np.empty(n_cand)
    for c in range(n_cand):
        w = cand[c]
        total = lam * prior[w]
        for j in range(w_ptr[w], w_ptr[w + 1]):
            total += weight[w_topic[j]] * w_count[j]
        screen[c] = total
    return cand, screen, n_cand


@njit(cache=True, nogil=True)
def _nth_best(pool, allowed, n):
    """(how many candidates of ``pool`` = (cand, screen, n_cand) are ``allowed`` =
    (excluded, banned, mark), the n-th best screening score among them)."""
    cand, screen, n_cand = pool
    excluded, banned, mark = allowed
    allowed = np.empty(n_cand)
    n_ok = 0
    for c in range(n_cand):
        w = cand[c]
        if excluded[w] != mark and not banned[w]:
            allowed[n_ok] = screen[c]
            n_ok += 1
    if n_ok < n:
        return n_ok, -np.inf
    best = np.sort(allowed[:n_ok])
    return n_ok, best[n_ok - n]


@njit(cache=True, nogil=True)
def _rescore(model, th, smooth, pool, allowed, cut, low, items, scores):
    """Score exactly (the dense product's arithmetic) the allowed candidates at or above
    ``low`` (all of them unless ``cut``), and write the best ``len(items)`` by
    (-score, item); -1 / -inf pad the rest."""
    w_ptr, w_topic, w_count, k_ptr, k_item, k_count, denom, prior, order, alpha, beta = model
    cand, screen, n_cand = pool
    excluded, banned, mark = allowed
    n_topics = th.shape[0]
    picked = np.empty(n_cand, dtype=np.int64)
    n_picked = 0
    for c in range(n_cand):
        w = cand[c]
        if excluded[w] != mark and not banned[w] and (not cut or screen[c] >= low):
            picked[n_picked] = w
            n_picked += 1
    picked = np.sort(picked[:n_picked])  # by item, so the stable sort keeps ties in order
    exact = np.empty(n_picked)
    for c in range(n_picked):
        w = picked[c]
        j, end = w_ptr[w], w_ptr[w + 1]
        total = 0.0
        for k in range(n_topics):
            if j < end and w_topic[j] == k:
                total += th[k] * ((w_count[j] + beta) / denom[k])
                j += 1
            else:
                total += th[k] * smooth[k]
        exact[c] = total
    by_score = np.argsort(-exact, kind="mergesort")
    for r in range(items.shape[0]):
        if r < n_picked:
            items[r] = picked[by_score[r]]
            scores[r] = exact[by_score[r]]
        else:
            items[r] = -1
            scores[r] = -np.inf


@njit(cache=True, nogil=True)
def text_sums(k_ptr, k_item, k_count, codes, n_texts):
    """Per topic, the summed counts of the items carrying each text (``codes[w]``, -1 for
    none): ``(t_ptr, t_code, t_sum)``, topic k's texts ``t_code[t_ptr[k]:t_ptr[k + 1]]``
    (in order of first appearance in its list) with their sums. O(nnz), one text-sized
    scratch."""
    n_topics = k_ptr.shape[0] - 1
    acc = np.zeros(n_texts, dtype=np.int64)
    t_ptr = np.zeros(n_topics + 1, dtype=np.int64)
    t_code = np.empty(k_item.shape[0], dtype=np.int64)
    t_sum = np.empty(k_item.shape[0], dtype=np.int64)
    at = 0
    for k in range(n_topics):
        for j in range(k_ptr[k], k_ptr[k + 1]):
            c = codes[k_item[j]]
            if c < 0:
                continue
            if acc[c] == 0:
                t_code[at] = c
                at += 1
            acc[c] += k_count[j]
        for j in range(t_ptr[k], at):
            t_sum[j] = acc[t_code[j]]
            acc[t_code[j]] = 0
        t_ptr[k + 1] = at
    return t_ptr, t_code[:at].copy(), t_sum[:at].copy()
