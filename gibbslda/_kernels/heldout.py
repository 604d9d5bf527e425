"""Numba kernel of held-out document completion on a model's counts: fold-in by sparse
buckets, then scoring, a chunk of users at a time.

Glossary (the classic LDA symbols, as in :mod:`.gibbs`):

- ``d``: a held-out user; ``w``: an item, numbered 0..m-1 within the chunk; ``k``: a
  topic; ``K`` topics.
- ``n_dk``: the counts of a user's observed tokens' topics during the fold-in.
- item rows ``(row_ptr, row_topic, row_count)``: item w's non-zero counts n_kw, at
  ``row_ptr[w]:row_ptr[w + 1]``.
- ``denom`` (float64, K): n_k + V beta, so phi_kw = (n_kw + beta) / denom_k.

With phi fixed, a token's topic is drawn from p(k) proportional to (n_dk + alpha_k)
phi_kw, split into buckets as SparseLDA splits the training conditional (Yao, Mimno &
McCallum 2009), by the shorter of two walks. Where the item has fewer non-zero counts
(K_w) than the user has topics (K_d): the item's bucket, (alpha_k + n_dk) n_kw / denom_k
over its counts; the user's, n_dk beta / denom_k (its total kept as n_dk changes); the
smoothing, alpha_k beta / denom_k over all topics. Otherwise: the user's, n_dk phi_kw
over its topics (phi read from a table of the user's items); the item's, alpha_k n_kw /
denom_k; the smoothing. The fixed buckets are drawn from by bisecting running totals. So
a token costs O(min(K_w, K_d) + log K), against the O(K) of :func:`.gibbs.fold_in`, for
the same chain law; a hidden token O(K_w).

The random stream is the xoshiro256** of :mod:`gibbslda._rng` (reimplemented here: a
kernel calls only its own module's functions, see the package docstring).
"""
from __future__ import annotations

from math import log

import numpy as np
from numba import njit, prange

_TWO53_INV = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, inline="always")
def _uniform(s):
    """Advance the xoshiro256** state ``s`` (uint64[4]); a double in [0, 1) from the top
    53 bits of its output."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return np.float64(result >> np.uint64(11)) * _TWO53_INV


@njit(cache=True, inline="always")
def _bisect(cum, start, stop, u):
    """The first index j in [start, stop) with cum[j] > u (stop - 1 when none is)."""
    lo, hi = start, stop - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def item_buckets(rows, alpha, denom):
    """The item buckets: ``(cum, q)``, item w's running totals of alpha_k n_kw / denom_k
    over its row (``cum``, per non-zero count) and their sum ``q[w]``."""
    row_ptr, row_topic, row_count = rows
    cum = np.empty(row_topic.shape[0])
    q = np.zeros(row_ptr.shape[0] - 1)
    for w in range(q.shape[0]):
        total = 0.0
        for j in range(row_ptr[w], row_ptr[w + 1]):
            k = row_topic[j]
            total += alpha[k] * row_count[j] / denom[k]
            cum[j] = total
        q[w] = total
    return cum, q


@njit(cache=True, nogil=True, parallel=True)
def completion(observed, hidden, rows, prior, sweeps, key):
    """log p(hidden tokens | observed tokens) of each user of a chunk, summed over the
    user's hidden tokens (float64, D): theta folded in from the observed tokens by
    Gibbs sweeps with phi fixed, averaged after burn-in as (n_dk + alpha_k) / (n_d +
    sum alpha); each hidden token scores log sum_k theta_dk phi_kw.

    ``observed``, ``hidden``: (indptr, words) over the chunk's items; ``rows``: their item
    rows (topics ascending); ``prior = (alpha, denom, beta)``; ``sweeps = (n_iter,
    burn_in, cells, first)``: a user's phi values are laid out densely for O(1) reads, at
    most ``cells`` of them (past that, found in the rows: the same values), and the
    chunk's first user is user ``first`` of the evaluation. User d draws from its own
    stream, keyed by ``key`` and its number, so blocks of users run on all threads with
    the same result for any thread count and any chunks.
    """
    n_users = observed[0].shape[0] - 1
    buckets = _buckets(rows, prior)
    out = np.zeros(n_users)
    n_blocks = min(n_users, 64)
    for b in prange(n_blocks):
        _block(n_users * b // n_blocks, n_users * (b + 1) // n_blocks, observed, hidden,
               rows, buckets, prior[0], sweeps, key, out)
    return out


@njit(cache=True, nogil=True)
def _buckets(rows, prior):
    """What the draws read besides the counts: ``(cum, q, smooth, val, phi, base)``, the
    item buckets (:func:`item_buckets`), the smoothing's running totals, and per non-zero
    count n_kw / denom_k and phi_kw, per topic beta / denom_k."""
    alpha, denom, beta = prior
    row_count, row_topic = rows[2], rows[1]
    n_topics = alpha.shape[0]
    cum, q = item_buckets(rows, alpha, denom)
    val = np.empty(row_topic.shape[0])
    phi = np.empty(row_topic.shape[0])
    for e in range(val.shape[0]):
        val[e] = row_count[e] / denom[row_topic[e]]
        phi[e] = (row_count[e] + beta) / denom[row_topic[e]]
    base = np.empty(n_topics)
    smooth = np.empty(n_topics)
    total = 0.0
    for k in range(n_topics):
        base[k] = beta / denom[k]
        total += alpha[k] * beta / denom[k]
        smooth[k] = total
    return cum, q, smooth, val, phi, base


@njit(cache=True, nogil=True)
def _block(start, stop, observed, hidden, rows, buckets, alpha, sweeps, key, out):
    """Users ``start:stop`` of the chunk, one after the other, into ``out``."""
    n_topics = alpha.shape[0]
    lengths = observed[0][start + 1:stop + 1] - observed[0][start:stop]
    longest = lengths.max() if lengths.shape[0] else 0
    # n_dk, acc (n_dk summed over the kept sweeps), the user's topics and their places,
    # the topics acc touched, running totals of a walk, each observed token's topic
    work = (np.zeros(n_topics, dtype=np.int64), np.zeros(n_topics, dtype=np.int64),
            np.empty(n_topics, dtype=np.int64), np.empty(n_topics, dtype=np.int64),
            np.empty(n_topics, dtype=np.int64), np.empty(n_topics),
            np.empty(longest, dtype=np.int64))
    n_rows = min(longest, max(sweeps[2] // n_topics, 1))
    # the user's table: phi of item slot[w] in table[slot[w]], for items[:n] (-1: none)
    table = (np.empty((n_rows, n_topics)),
             np.full(buckets[1].shape[0], -1, dtype=np.int64),
             np.empty(n_rows, dtype=np.int64))
    rng = np.empty(4, dtype=np.uint64)
    for d in range(start, stop):
        _user_stream(key, sweeps[3] + d, rng)
        folded = _fold_in_user(d, observed, rows, buckets, alpha, sweeps, table, work,
                               rng)
        out[d] = _score_user(d, observed, hidden, rows, buckets, alpha, folded, work)


@njit(cache=True, nogil=True)
def stream_key(s):
    """Advance the xoshiro256** state ``s`` (uint64[4]) once; its output keys the users'
    streams of one evaluation."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)  # the output of this step
    _uniform(s)  # takes the step
    return result


@njit(cache=True, inline="always")
def _mix(x):
    """SplitMix64's finaliser: a bijective 64-bit hash."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def _user_stream(key, d, s):
    """User d's xoshiro256** state: four SplitMix64 outputs from key ^ mix(d)."""
    x = key ^ _mix(np.uint64(d))
    for i in range(4):
        x += np.uint64(0x9E3779B97F4A7C15)
        s[i] = _mix(x)


@njit(cache=True, nogil=True)
def _fold_in_user(d, observed, rows, buckets, alpha, sweeps, table, work, rng):
    """Fold user d in: fills ``acc`` (the counts summed over the kept sweeps) and the list
    of the topics it touched; returns (kept sweeps, topics touched).

    Each token is drawn by the shorter walk (the item's when K_w < K_d): its item's
    non-zero counts (SparseLDA's buckets: (alpha_k + n_dk) n_kw / denom_k over the row,
    then the user's n_dk beta / denom_k, then the smoothing) or the user's topics (n_dk
    phi_kw over them, phi read from the user's table, where the item's row is written
    the first time, or past its size found in the row; then the item's alpha_k n_kw /
    denom_k, then the smoothing). The per-token step is written out here, not in helpers: passing the
    arrays to a call per token cost more than the step.
    """
    words = observed[1]
    row_ptr, row_topic = rows[0], rows[1]
    cum, q, smooth, val, phi, base = buckets
    n_dk, acc, topics, where, touched, part, z = work
    dense, slot, items = table
    n_slots = 0
    n_topics = n_dk.shape[0]
    s_total = smooth[n_topics - 1]
    start, n_d = observed[0][d], observed[0][d + 1] - observed[0][d]
    # the user's topics (n_dk > 0) in ``topics[:n_list]``, ``where`` their places, and
    # ``mass`` = sum over them of n_dk beta / denom_k, kept up to date as n_dk changes
    n_list, mass = _start(start, n_d, z, work, base, rng)
    n_touched = 0
    for it in range(sweeps[0] if n_d > 0 else 0):
        for j in range(n_d):
            w, k = words[start + j], z[j]
            n_dk[k] -= 1
            if n_dk[k] == 0:  # unlist k: the last one takes its place
                n_list -= 1
                topics[where[k]] = topics[n_list]
                where[topics[n_list]] = where[k]
            mass = mass - base[k] if n_list > 0 else 0.0
            a, b = row_ptr[w], row_ptr[w + 1]
            mine = 0.0
            if b - a < n_list:  # the item's walk is the shorter
                for e in range(a, b):
                    t = row_topic[e]
                    mine += (alpha[t] + n_dk[t]) * val[e]
                    part[e - a] = mine
                u = _uniform(rng) * ((mine + mass) + s_total)
                if u < mine:
                    k = row_topic[a + _first_above(part, b - a, u)]
                elif u - mine < mass:
                    k = _walk_user(n_dk, topics, n_list, base, u - mine)
                else:
                    k = _bisect(smooth, 0, n_topics, (u - mine) - mass)
            else:
                at = slot[w]
                if at < 0 and n_slots < items.shape[0]:  # write its phi in the table
                    at = slot[w] = n_slots
                    items[n_slots] = w
                    n_slots += 1
                    dense[at, :] = base
                    for e in range(a, b):
                        dense[at, row_topic[e]] = phi[e]
                if at >= 0:
                    phi_w = dense[at]
                    for i in range(n_list):
                        t = topics[i]
                        mine += n_dk[t] * phi_w[t]
                        part[i] = mine
                else:
                    mine = _user_bucket(n_list, topics, n_dk, part, row_topic, a, b, phi,
                                        base)
                u = _uniform(rng) * ((mine + q[w]) + s_total)
                if u < mine:
                    k = topics[_first_above(part, n_list, u)]
                elif u - mine < q[w]:
                    k = row_topic[_bisect(cum, a, b, u - mine)]
                else:
                    k = _bisect(smooth, 0, n_topics, (u - mine) - q[w])
            z[j] = k
            if n_dk[k] == 0:
                topics[n_list] = k
                where[k] = n_list
                n_list += 1
            n_dk[k] += 1
            mass += base[k]
        if it >= sweeps[1]:
            n_touched = _accumulate(n_list, topics, n_dk, acc, touched, n_touched)
    for i in range(n_list):
        n_dk[topics[i]] = 0
    for i in range(n_slots):
        slot[items[i]] = -1
    return (sweeps[0] - sweeps[1] if n_d > 0 else 1), n_touched


@njit(cache=True, inline="always")
def _first_above(part, n, u):
    """The first j < n with part[j] > u (n - 1 when none is), by a linear scan: a walk's
    running totals are short, and a scan mispredicts less than a bisection."""
    for j in range(n - 1):
        if part[j] > u:
            return j
    return n - 1


@njit(cache=True, nogil=True)
def _user_bucket(n_list, topics, n_dk, part, row_topic, a, b, phi, base):
    """Running totals of n_dk phi_kw over the user's topics into ``part``, each phi
    found in the item's row ``a:b`` (a user whose items overflow the table)."""
    mine = 0.0
    for i in range(n_list):
        t = topics[i]
        e = _find(row_topic, a, b, t)
        mine += n_dk[t] * (phi[e] if e >= 0 else base[t])
        part[i] = mine
    return mine


@njit(cache=True, inline="always")
def _find(row_topic, start, stop, k):
    """Where topic k sits in the ascending row ``row_topic[start:stop]``, or -1."""
    lo, hi = start, stop
    while lo < hi:
        mid = (lo + hi) // 2
        if row_topic[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < stop and row_topic[lo] == k else -1


@njit(cache=True, nogil=True)
def _start(start, n_d, z, work, base, rng):
    """Uniform topics for the user's observed tokens, counted and listed; returns
    (n_list, mass)."""
    n_dk, topics, where = work[0], work[2], work[3]
    n_topics = n_dk.shape[0]
    n_list, mass = 0, 0.0
    for j in range(n_d):
        k = min(np.int64(_uniform(rng) * n_topics), n_topics - 1)
        z[j] = k
        if n_dk[k] == 0:
            topics[n_list] = k
            where[k] = n_list
            n_list += 1
        n_dk[k] += 1
        mass += base[k]
    return n_list, mass


@njit(cache=True, nogil=True)
def _walk_user(n_dk, topics, n_list, base, u):
    """The user bucket's topic at ``u``: running totals of n_dk beta / denom_k."""
    run = 0.0
    for i in range(n_list):
        t = topics[i]
        run += n_dk[t] * base[t]
        if run > u:
            return t
    return topics[n_list - 1]


@njit(cache=True, nogil=True)
def _accumulate(n_list, topics, n_dk, acc, touched, n_touched):
    """acc += n_dk after a kept sweep, listing the topics acc touches first."""
    for i in range(n_list):
        t = topics[i]
        if acc[t] == 0:
            touched[n_touched] = t
            n_touched += 1
        acc[t] += n_dk[t]
    return n_touched


@njit(cache=True, nogil=True)
def _score_user(d, observed, hidden, rows, buckets, alpha, folded, work):
    """Sum over user d's hidden tokens of log sum_k theta_dk phi_kw, theta from ``acc``;
    clears ``acc``. sum_k acc_k phi_kw is sum over touched k of acc_k beta / denom_k plus
    item w's row of acc_k n_kw / denom_k; sum_k alpha_k phi_kw is q[w] plus the smoothing
    total."""
    indptr, words = hidden
    row_ptr, row_topic = rows[0], rows[1]
    q, smooth, val, base = buckets[1], buckets[2], buckets[3], buckets[5]
    acc, touched = work[1], work[4]
    n_kept, n_touched = folded
    n_d = observed[0][d + 1] - observed[0][d]
    scale = 1.0 / (n_d + alpha.sum())
    s_total = smooth[smooth.shape[0] - 1]
    shared = 0.0
    for i in range(n_touched):
        shared += acc[touched[i]] * base[touched[i]]
    total = 0.0
    for j in range(indptr[d], indptr[d + 1]):
        w = words[j]
        mine = shared
        for e in range(row_ptr[w], row_ptr[w + 1]):
            mine += acc[row_topic[e]] * val[e]
        total += log((mine / n_kept + (q[w] + s_total)) * scale)
    for i in range(n_touched):
        acc[touched[i]] = 0
    return total
