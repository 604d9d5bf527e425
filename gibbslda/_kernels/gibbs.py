"""Numba kernels of the sampler: sweeps, likelihoods, fold-in and left-to-right.

Glossary (the classic LDA symbols, used in every kernel):

- ``d``: a user (document); ``w``: an item (word); ``k``, ``s``, ``t``: topics; ``i``: a token.
- ``indptr`` (int64, D + 1): user ``d`` owns tokens ``indptr[d]:indptr[d + 1]``.
- ``words`` (int32, N): the item of each token; ``z`` (int32, N): its topic.
- ``cell_ptr`` (int64, D x (P + 1)): the tokens of user ``d`` whose item lies in item block
  ``b`` are ``cell_ptr[d, b]:cell_ptr[d, b + 1]`` (each user's tokens are ordered by block).
- ``doc_bounds`` (int64, P + 1): shard ``p`` owns users ``doc_bounds[p]:doc_bounds[p + 1]``.
- ``word_ptr`` (int64, V + 1), ``word_z`` (int32, N), ``tok_pos`` (int32, N): the topics of
  item ``w``'s tokens are ``word_z[word_ptr[w]:word_ptr[w + 1]]``, token ``i``'s at
  ``word_z[tok_pos[i]]`` (only the Metropolis-Hastings sampler uses them).
- ``n_wk`` (int32, V x K, item-major so one item's row is contiguous), ``n_k`` (int64, K):
  topic counts per item and in total. The sparse sampler keeps no V x K matrix (its
  ``n_wk`` is a V x 0 placeholder that carries V): its item counts are the packed rows
  ``wc = (wc_ptr, wc_val, wc_len)``, see :func:`sparse_cell`. Per-user counts ``n_dk`` are never stored for the
  whole corpus: each kernel rebuilds one user's row from ``z`` in a K-sized scratch array.
- ``alpha`` (float64, K) and ``alpha_cdf`` (its running sum); ``beta`` (float64).
- ``rng`` (uint64, 4): one xoshiro256** stream state, advanced in place.

Python owns the iteration loop: one kernel call is one sweep, one likelihood or one
fold-in, so progress, callbacks and checkpoints happen between calls.

Every kernel here calls only kernels of this module (see the package docstring for why).
``xoshiro256**`` (Blackman & Vigna 2021) is here for that reason; seeding lives in
:mod:`gibbslda._rng`.

The sharded sweep (``sweep_sharded``) is a deterministic parallel schedule over users x
item blocks. A *cell* is the work of one shard in one round: its users ``d0:d1`` and, of
their tokens, those whose item lies in item block ``b``.

Users are split into P contiguous blocks and items into P blocks (Yan, Xu & Qi 2009;
tomotopy's PARTITION scheme). A sweep runs P rounds; in round r shard p samples the cell
(user block p, item block (p + r) mod P). Within a round no two shards touch the same
user or the same item, so the per-item counts ``n_wk`` and the topics ``z`` they read are
never written concurrently. Only the topic totals ``n_k`` are shared: each shard works on a
private copy taken at the start of the round, and the copies' changes are summed in shard
order when the round ends. That staleness of ``n_k`` within a round is the one
approximation; with P = 1 the sweep is the exact serial chain. Shard p always uses random
stream p, so the result depends on the seed and P, never on the number of threads.
"""
from __future__ import annotations

from math import lgamma

import numpy as np
from numba import njit, prange

DENSE, SPARSE, MH = 0, 1, 2
_TWO53_INV = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def next_uint64(s):
    """Advance the xoshiro256** state ``s`` (uint64[4]) and return the next output."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, inline="always")
def uniform(s):
    """Next double in [0, 1) from the top 53 bits of the stream ``s``."""
    return np.float64(next_uint64(s) >> np.uint64(11)) * _TWO53_INV


@njit(cache=True, inline="always")
def uniform_topic(rng, n_topics):
    """A topic drawn uniformly from 0..n_topics - 1."""
    return min(np.int64(uniform(rng) * n_topics), n_topics - 1)


@njit(cache=True, inline="always")
def _draw_cumulative(cum, n_topics, rng):
    """Inverse-CDF draw from running totals ``cum[:n_topics]``: the first k with
    cum[k] > u * cum[-1]."""
    u = uniform(rng) * cum[n_topics - 1]
    k = 0
    while k < n_topics - 1 and cum[k] <= u:
        k += 1
    return k


# -- shared: initialisation, likelihood, fold-in ------------------------------------
@njit(cache=True, nogil=True)
def init_topics(words, z, n_wk, n_k, rng):
    """Draw every token's topic uniformly at random and count them (in ``n_wk`` too unless
    it is a V x 0 placeholder)."""
    n_topics = n_k.shape[0]
    dense = n_wk.shape[1] > 0
    for i in range(words.shape[0]):
        k = uniform_topic(rng, n_topics)
        z[i] = k
        if dense:
            n_wk[words[i], k] += 1
        n_k[k] += 1


@njit(cache=True, nogil=True)
def log_joint(indptr, z, item_counts, shift, n_items, n_k, alpha, beta):
    """log p(w, z | alpha, beta) with theta and phi integrated out (Griffiths & Steyvers 2004).

    ``item_counts`` (int32) holds every item x topic count as ``count << shift`` plus bits
    below ``shift``: the flattened dense ``n_wk`` with shift 0, or the sparse sampler's
    packed rows with shift = its topic bits. Zero counts contribute nothing
    (lgamma(0 + a) - lgamma(a)), so they are skipped; each user's counts are rebuilt from
    ``z`` in a scratch row.
    """
    n_topics = n_k.shape[0]
    v_beta = n_items * beta
    lg_beta = lgamma(beta)
    total = 0.0
    for k in range(n_topics):
        total += lgamma(v_beta) - lgamma(n_k[k] + v_beta)
    for j in range(item_counts.shape[0]):
        count = item_counts[j] >> shift
        if count > 0:
            total += lgamma(count + beta) - lg_beta
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
            k = uniform_topic(rng, n_topics)
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
                k = _draw_cumulative(cum, n_topics, rng)
                z[j] = k
                counts[k] += 1
            if it >= burn_in:
                for t in range(n_topics):
                    theta[d, t] += (counts[t] + alpha[t]) / (n_d + alpha_sum)
        for t in range(n_topics):
            theta[d, t] /= n_iter - burn_in
    return theta


@njit(cache=True, nogil=True)
def left_to_right(indptr, words, phi_wk, alpha, n_particles, rng):
    """Log importance weights (D x R) whose mean exp estimates p(w_d | phi, alpha).

    The left-to-right sequential sampler: each particle walks user d's tokens in order,
    multiplies its weight by p(w_n | z_<n) = sum_k phi_wk[w_n, k] (n_k + alpha_k) /
    (n - 1 + sum alpha) and draws z_n from the terms. The mean over particles of the
    weights is an unbiased estimate of p(w_d) (the proposal is the sequential conditional,
    so E[prod_n p(w_n | z_<n)] = sum_z p(w_d, z)). Wallach et al.'s variant also resamples
    z_<n at every step, which Buntine (2009) showed biased; it is not used.
    """
    n_users = indptr.shape[0] - 1
    n_topics = phi_wk.shape[1]
    alpha_sum = alpha.sum()
    log_w = np.zeros((n_users, n_particles))
    cum = np.empty(n_topics)
    counts = np.zeros(n_topics, dtype=np.int64)
    for d in range(n_users):
        for r in range(n_particles):
            counts[:] = 0
            total_log = 0.0
            for n in range(indptr[d + 1] - indptr[d]):
                w = words[indptr[d] + n]
                total = 0.0
                for k in range(n_topics):
                    total += phi_wk[w, k] * (counts[k] + alpha[k])
                    cum[k] = total
                total_log += np.log(total / (n + alpha_sum))
                counts[_draw_cumulative(cum, n_topics, rng)] += 1
            log_w[d, r] = total_log
    return log_w


# -- exact Gibbs cells ----------------------------------------------------------
@njit(cache=True, nogil=True, inline="always")
def _count(n_dk, n_wk, n_k, w, k, delta):
    """Add ``delta`` to topic k's count for the user, for item w and in total."""
    n_dk[k] += delta
    n_wk[w, k] += delta
    n_k[k] += delta


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
            _count(n_dk, n_wk, n_k, w, k, -1)
            total = 0.0
            for t in range(n_topics):
                total += (n_dk[t] + alpha[t]) * (n_wk[w, t] + beta) / (n_k[t] + v_beta)
                cum[t] = total
            k = _draw_cumulative(cum, n_topics, rng)
            z[i] = k
            _count(n_dk, n_wk, n_k, w, k, 1)
        for i in range(indptr[d], indptr[d + 1]):
            n_dk[z[i]] -= 1


@njit(cache=True, nogil=True, inline="always")
def _row_find(val, start, length, k, mask):
    """Position of topic k in the packed row val[start:start + length] (its end if absent)."""
    j = start
    end = start + length
    while j < end and (val[j] & mask) != k:
        j += 1
    return j


@njit(cache=True, nogil=True, inline="always")
def _row_add(val, start, length, j, k, delta, unit):
    """Add ``delta`` (+1 or -1) to the count of topic k at position j of a packed row (j at
    the row's end: k enters with count 1) and restore the descending order; returns the new
    length. An entry whose count falls to 0 has moved to the end and leaves the row."""
    end = start + length
    if j == end:
        v = unit | k
        length += 1
    else:
        v = val[j] + delta * unit
    if delta > 0:
        while j > start and val[j - 1] < v:
            val[j] = val[j - 1]
            j -= 1
    else:
        while j + 1 < end and val[j + 1] > v:
            val[j] = val[j + 1]
            j += 1
        if v < unit:
            length -= 1
    val[j] = v
    return length


@njit(cache=True, nogil=True)
def sparse_cell(tok, wc, n_items, n_k, alpha, beta, rng, d0, d1, b):
    """SparseLDA (Yao, Mimno & McCallum 2009): the conditional split into three buckets,

    smoothing  s = sum_k alpha_k beta / (n_k + V beta)                   (all topics, kept),
    user       r = sum_{k: n_dk > 0} n_dk beta / (n_k + V beta)          (user's topics),
    item       q = sum_{k: n_wk > 0} n_wk (alpha_k + n_dk) / (n_k + V beta) (item's topics),

    so a token costs O(K_d + K_w). The item x topic counts are sparse, as in MALLET: item
    w's non-zero counts are the packed entries ``count << bits | topic`` of
    ``wc_val[wc_ptr[w]:wc_ptr[w] + wc_len[w]]`` (capacity min(K, item frequency)), kept
    sorted by count, largest first, so the item bucket's draw usually stops at its first
    entries; no V x K matrix exists (``n_items`` is V). The user's non-zero topics are
    rebuilt from ``z`` per user. ``inv[k] = 1 / (n_k + V beta)`` is kept per topic, so a
    token costs two divisions whatever its buckets.

    The helpers share ``work = (n_dk, doc_topics, inv, coef, q_terms)`` (the user's counts
    and non-zero topics, inv, ``coef[k] = (alpha_k + n_dk) inv[k]`` and the item bucket's
    running sums), ``prior = (alpha, beta, V beta)`` and ``sums = (s, r, len(doc_topics))``.
    The helpers called per token are straight-line or one loop: arrays unpacked inside a
    branchy helper leave increfs in the token loop that numba's reference-count pruning
    cannot remove, and the sweep slows down.
    """
    indptr, cell_ptr, _, z = tok
    n_topics = n_k.shape[0]
    bits = 1
    while (1 << bits) < n_topics:
        bits += 1
    v_beta = n_items * beta
    prior = (alpha, beta, v_beta)
    n_dk = np.zeros(n_topics, dtype=np.int32)
    doc_topics = np.empty(n_topics, dtype=np.int32)
    inv = np.empty(n_topics)
    coef = np.empty(n_topics)
    work = (n_dk, doc_topics, inv, coef, np.empty(n_topics))
    s_sum = 0.0
    for k in range(n_topics):
        inv[k] = 1.0 / (n_k[k] + v_beta)
        s_sum += alpha[k] * beta * inv[k]
        coef[k] = alpha[k] * inv[k]
    for d in range(d0, d1):
        if cell_ptr[d, b] == cell_ptr[d, b + 1]:
            continue
        sums = _sparse_user(z[indptr[d]:indptr[d + 1]], work, prior, s_sum)
        sums = _sparse_tokens(tok, wc, n_k, work, prior, bits, rng, d, b, sums)
        s_sum = sums[0]
        for j in range(sums[2]):  # clear the user's topics for the next user
            k = doc_topics[j]
            n_dk[k] = 0
            coef[k] = alpha[k] * inv[k]


@njit(cache=True, nogil=True)
def _sparse_user(z_d, work, prior, s_sum):
    """Rebuild one user's non-zero topic counts from their topics ``z_d`` (n_dk is all zero
    on entry) and set their coefficients; returns ``sums`` with the user bucket r."""
    n_dk, doc_topics, inv, coef, _ = work
    alpha, beta, _ = prior
    n_doc_topics = 0
    for k in z_d:
        if n_dk[k] == 0:
            doc_topics[n_doc_topics] = k
            n_doc_topics += 1
        n_dk[k] += 1
    r_sum = 0.0
    for j in range(n_doc_topics):
        k = doc_topics[j]
        r_sum += n_dk[k] * beta * inv[k]
        coef[k] = (alpha[k] + n_dk[k]) * inv[k]
    return s_sum, r_sum, n_doc_topics


@njit(cache=True, nogil=True)
def _sparse_tokens(tok, wc, n_k, work, prior, bits, rng, d, b, sums):
    """Resample user d's tokens in item block b (see :func:`sparse_cell`); returns ``sums``."""
    _, cell_ptr, words, z = tok
    wc_ptr, wc_val, wc_len = wc
    n_dk, doc_topics, inv, coef, q_terms = work
    alpha, beta, _ = prior
    s_sum, r_sum, n_doc_topics = sums
    mask = (1 << bits) - 1
    unit = 1 << bits
    for i in range(cell_ptr[d, b], cell_ptr[d, b + 1]):
        w = words[i]
        k = np.int64(z[i])
        start = wc_ptr[w]
        pos = _row_find(wc_val, start, wc_len[w], k, mask)
        wc_len[w] = _row_add(wc_val, start, wc_len[w], pos, k, -1, unit)
        s_sum, r_sum = _sparse_count(k, -1, n_k, work, prior, s_sum, r_sum)
        if n_dk[k] == 0:  # k left the user's topics
            j = 0
            while doc_topics[j] != k:
                j += 1
            n_doc_topics -= 1
            doc_topics[j] = doc_topics[n_doc_topics]
        length = wc_len[w]
        q_sum = 0.0
        for j in range(length):
            v = wc_val[start + j]
            q_sum += (v >> bits) * coef[v & mask]
            q_terms[j] = q_sum
        u = uniform(rng) * (s_sum + r_sum + q_sum)
        if u < q_sum:
            j = 0
            while j < length - 1 and q_terms[j] <= u:
                j += 1
            pos = start + j
            k = wc_val[pos] & mask
        else:
            if u < q_sum + r_sum and n_doc_topics > 0:
                k = _user_draw(u - q_sum, doc_topics, n_doc_topics, n_dk, inv, beta)
            else:
                k = _smoothing_draw(u - (q_sum + r_sum), alpha, inv, beta)
            pos = _row_find(wc_val, start, length, k, mask)
        if n_dk[k] == 0:  # k joins the user's topics
            doc_topics[n_doc_topics] = k
            n_doc_topics += 1
        z[i] = k
        wc_len[w] = _row_add(wc_val, start, length, pos, k, 1, unit)
        s_sum, r_sum = _sparse_count(k, 1, n_k, work, prior, s_sum, r_sum)
    return s_sum, r_sum, n_doc_topics


@njit(cache=True, nogil=True, inline="always")
def _sparse_count(k, delta, n_k, work, prior, s_sum, r_sum):
    """Add ``delta`` to topic k's count for the user and in total, update inv[k] and
    coef[k], and return the buckets s and r with topic k's terms updated."""
    n_dk, _, inv, coef, _ = work
    alpha, beta, v_beta = prior
    s_sum -= alpha[k] * beta * inv[k]
    r_sum -= n_dk[k] * beta * inv[k]
    n_dk[k] += delta
    n_k[k] += delta
    inv[k] = 1.0 / (n_k[k] + v_beta)
    s_sum += alpha[k] * beta * inv[k]
    r_sum += n_dk[k] * beta * inv[k]
    coef[k] = (alpha[k] + n_dk[k]) * inv[k]
    return s_sum, r_sum


@njit(cache=True, nogil=True, inline="always")
def _user_draw(u, doc_topics, n_doc_topics, n_dk, inv, beta):
    """The topic where ``u`` (below r) falls among the user bucket's terms n_dk beta inv[k]."""
    j = 0
    k = doc_topics[0]
    while j < n_doc_topics:
        k = doc_topics[j]
        u -= n_dk[k] * beta * inv[k]
        if u < 0.0:
            break
        j += 1
    return np.int64(k)


@njit(cache=True, nogil=True, inline="always")
def _smoothing_draw(u, alpha, inv, beta):
    """The topic where ``u`` (below s) falls among the smoothing terms alpha_k beta inv[k]."""
    k = 0
    while k < alpha.shape[0] - 1:
        u -= alpha[k] * beta * inv[k]
        if u < 0.0:
            break
        k += 1
    return k


# -- Metropolis-Hastings cells -------------------------------------------------
@njit(cache=True, nogil=True)
def mh_cell(tok, wi, n_wk, n_k, prior, rng, cell, mh_steps):
    """Metropolis-Hastings cells with O(1) proposals (LightLDA's cycle of item and user proposals).
    
    The target for token i is the collapsed conditional
    pi(k) proportional to (n_dk + alpha_k)(n_wk + beta) / (n_k + V beta), all counts without i.
    Two proposals alternate, each drawn in O(1) and accepted with the exact MH ratio, so every
    step leaves pi invariant and the chain targets the LDA posterior:
    
    - item proposal q(k) proportional to n_wk + beta (counts with i): pick one of item w's
      tokens uniformly and take its topic, or (with weight K beta) a uniform topic; the
      topics of each item's tokens are mirrored, item-major, in ``word_z`` (token i sits at
      ``tok_pos[i]``) so the pick is one read from a contiguous run;
      acceptance min(1, (n_dt + alpha_t)(n_s + V beta) / ((n_ds + alpha_s)(n_t + V beta)));
    - user proposal q(k) proportional to n_dk + alpha_k (counts with i): pick one of the user's
      tokens uniformly and take its topic, or (weight sum(alpha)) a topic drawn from alpha;
      acceptance min(1, (n_wt + beta)(n_s + V beta) / ((n_ws + beta)(n_t + V beta))).
    
    Token i's own topic ``z[i]`` (and its mirror in ``word_z``) always holds the chain's current
    state s during its steps, which is what makes "counts with i" in the proposals exact.
    ``prior = (alpha, alpha_cdf, beta)``; ``cell = (d0, d1, b)``: users d0:d1, item block b.
    
    References
    ----------
    Yuan et al. (2015), "LightLDA: Big topic models on modest computer clusters", WWW.
    """
    indptr, cell_ptr, words, z = tok
    word_ptr, word_z, tok_pos = wi
    alpha, alpha_cdf, beta = prior
    d0, d1, b = cell
    n_topics = n_k.shape[0]
    v_beta = n_wk.shape[0] * beta
    k_beta = n_topics * beta
    alpha_sum = alpha_cdf[n_topics - 1]
    n_dk = np.zeros(n_topics, dtype=np.int32)
    for d in range(d0, d1):
        if cell_ptr[d, b] == cell_ptr[d, b + 1]:
            continue
        start = indptr[d]
        n_d = indptr[d + 1] - start
        for i in range(start, start + n_d):
            n_dk[z[i]] += 1
        for i in range(cell_ptr[d, b], cell_ptr[d, b + 1]):
            w = words[i]
            s = z[i]
            _count(n_dk, n_wk, n_k, w, s, -1)
            w_start = word_ptr[w]
            n_w = word_ptr[w + 1] - w_start
            for _ in range(mh_steps):
                u = uniform(rng) * (n_w + k_beta)
                if u < n_w:
                    t = word_z[w_start + np.int64(u)]
                else:
                    t = min(np.int64((u - n_w) / beta), n_topics - 1)
                if t != s:
                    num = (n_dk[t] + alpha[t]) * (n_k[s] + v_beta)
                    den = (n_dk[s] + alpha[s]) * (n_k[t] + v_beta)
                    if num >= den or uniform(rng) * den < num:  # accept w.p. min(1, num/den)
                        s = t
                        z[i] = s
                        word_z[tok_pos[i]] = s
                u = uniform(rng) * (n_d + alpha_sum)
                if u < n_d:
                    t = z[start + np.int64(u)]
                else:
                    t = min(np.searchsorted(alpha_cdf, u - n_d, side="right"), n_topics - 1)
                if t != s:
                    num = (n_wk[w, t] + beta) * (n_k[s] + v_beta)
                    den = (n_wk[w, s] + beta) * (n_k[t] + v_beta)
                    if num >= den or uniform(rng) * den < num:
                        s = t
                        z[i] = s
                        word_z[tok_pos[i]] = s
            _count(n_dk, n_wk, n_k, w, s, 1)
        for i in range(start, start + n_d):
            n_dk[z[i]] -= 1


# -- the sweep drivers ---------------------------------------------------------
@njit(cache=True, nogil=True)
def _cell(kind, tok, wc, wi, n_wk, n_k, prior, rng, d0, d1, b, mh_steps):
    alpha, alpha_cdf, beta = prior
    if kind == DENSE:
        dense_cell(tok, n_wk, n_k, alpha, beta, rng, d0, d1, b)
    elif kind == SPARSE:
        sparse_cell(tok, wc, n_wk.shape[0], n_k, alpha, beta, rng, d0, d1, b)
    else:
        mh_cell(tok, wi, n_wk, n_k, prior, rng, (d0, d1, b), mh_steps)


@njit(cache=True, nogil=True)
def sweep_serial(kind, tok, wc, wi, n_wk, n_k, prior, rng, mh_steps):
    """One sweep with a single shard: the exact chain, no threads started."""
    _cell(kind, tok, wc, wi, n_wk, n_k, prior, rng[0], 0, tok[0].shape[0] - 1, 0, mh_steps)


# nogil: other Python threads (the CLI's Ctrl-C watcher) run during a sweep
@njit(cache=True, parallel=True, nogil=True)
def sweep_sharded(kind, tok, wc, wi, n_wk, n_k, prior, rng, doc_bounds, mh_steps):
    """One sweep of sampler ``kind`` (DENSE, SPARSE or MH) over every token, P shards.

    ``tok = (indptr, cell_ptr, words, z)``, ``wc = (wc_ptr, wc_val, wc_len)`` (SPARSE),
    ``wi = (word_ptr, word_z, tok_pos)`` (MH), ``prior = (alpha, alpha_cdf, beta)``.
    """
    n_shards = doc_bounds.shape[0] - 1
    local = np.empty((n_shards, n_k.shape[0]), dtype=np.int64)
    for r in range(n_shards):
        for p in range(n_shards):
            local[p, :] = n_k
        for p in prange(n_shards):
            _cell(kind, tok, wc, wi, n_wk, local[p], prior, rng[p], doc_bounds[p],
                  doc_bounds[p + 1], (p + r) % n_shards, mh_steps)
        merged = n_k.copy()
        for p in range(n_shards):
            merged += local[p] - n_k
        n_k[:] = merged
