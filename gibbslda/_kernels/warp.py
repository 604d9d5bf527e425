"""Numba kernels of the WarpLDA sampler (``sampler="warp"``): an item pass then a user pass
per cycle, every item (then every user) independent within its pass, O(1) per token
whatever K.

Glossary (the classic LDA symbols, as in :mod:`.gibbs`):

- ``d``: a user; ``w``: an item; ``k``, ``s``, ``t``: topics; ``i``: a token (user-major
  index), ``j``: a slot of the item-major order.
- ``indptr`` (int64, D + 1): user ``d`` owns tokens ``indptr[d]:indptr[d + 1]``.
- ``word_ptr`` (int64, V + 1) and ``perm`` (int32, N): the item-major order; item ``w``'s
  tokens are ``perm[word_ptr[w]:word_ptr[w + 1]]`` (user-major indexes, in user order).
- ``z`` (uint32 view of the state's int32 topics, N): between sweeps the topic of each
  token; within a sweep the low 16 bits hold the topic and the high 16 bits the token's
  pending proposal (so K <= 2**16, and a sweep needs no proposal array).
- ``n_k`` (int64, K): topic totals, updated once at the end of each pass (delayed);
  ``c_d`` / ``c_w``: one user's / item's topic counts, rebuilt from ``z`` in a K-sized
  scratch row of the block that owns them.
- ``alpha`` (float64, K), its alias table ``(prob, alias)``; ``beta``; ``v_beta`` = V beta.
- ``key`` (uint64): the cycle's key, one output of the state's xoshiro256** stream.

One cycle, three steps (Python calls the kernels; a sweep is ``mh_steps`` cycles):

1. :func:`propose_users`: every token i of user d draws t from the user proposal
   q_d(t) proportional to n_dt^-i + alpha_t (one of the user's *other* tokens uniformly,
   taking its topic, or with weight sum(alpha) a topic from alpha), stored in z's high bits
   (for every cycle of a sweep but the first, the previous user pass does it, per user).
2. :func:`item_pass`: per item w, c_w rebuilt; each token in turn (c_w updated as it goes)
   accepts its user proposal t over its topic s with probability

       min(1, (c_wt^-i + beta)(n_s^-i + V beta) / ((c_ws^-i + beta)(n_t^-i + V beta)));

   then draws its item proposal q_w(t) proportional to c_wt^-i + beta (one of the item's
   other tokens, or with weight K beta a uniform topic) into the high bits.
3. :func:`user_pass`: per user d, c_d rebuilt; each token in turn accepts its item
   proposal with probability

       min(1, (c_dt^-i + alpha_t)(n_s^-i + V beta) / ((c_ds^-i + alpha_s)(n_t^-i + V beta)))

   and z is left clean (topics only).

Why these ratios: the target for token i is the collapsed conditional
pi(k) proportional to (n_dk^-i + alpha_k)(n_wk^-i + beta) / (n_k^-i + V beta). With the
user proposal q(k) proportional to n_dk^-i + alpha_k, the Metropolis-Hastings ratio
pi(t) q(s) / (pi(s) q(t)) loses the user factors exactly; with the item proposal the item
factors cancel. The proposals leave out token i itself (its "other tokens"), so the
cancellation is exact, not WarpLDA's approximation n_dk^-i ~ n_dk. Each pass's ratio needs
only its own side's counts (c_w or c_d) and the totals: that is what lets a pass see one
item (one user) at a time.

What is approximate (delayed counts): within a pass the totals n_k are those of the pass's
start (n^-i = n_k minus token i's own start topic), and the other side's counts are those
of the pass's start, the state the proposals were drawn from: in the item pass a user's
counts do not see its tokens in other items move during the pass, in the user pass an
item's counts do not see its other users' tokens move. So every item (user) is updated
given the pass's start, as all shards are in AD-LDA, each token by an exact MH step for
that conditional; within one item (user) the updates are sequential and exact. The chain
targets the LDA posterior up to that staleness, which shrinks as counts grow; on a tiny
corpus its exact stationary law is enumerated by ``tests/reference.py`` (warp_sweep_matrix).
Measured on 1M tokens of 25-token users at K = 1000, the staleness leaves log p(w, z) about
1.3% below the exact chain's after convergence, while held-out completion matches
(bench/README.md): short users and many topics are its worst case.

Randomness: each (cycle, pass, item or user) owns a SplitMix64 stream seeded by hashing the
cycle's key with (pass, index), so the draws do not depend on which thread runs which block
or on the number of blocks; the per-block changes to n_k are integers summed after the
pass. The model is bit-identical for any number of threads. Within a pass a token's
accept and its next proposal take the low and the high 32 bits of one 64-bit output (one
hash a token instead of two: 10-16% of a pass, measured). A proposal is one of the other
tokens' topics or a topic from the prior (beta or alpha): both candidates are computed and
one selected, with no branch to mispredict (up to 1.7x faster proposals at K = 200,
where alpha's share of a short user's proposals nears a half), the prior's topic taken
from the draw's remainder where that resolves it to 2**-20 (``_FINE``), else (a long item
or user, where the prior's share is small) from a fresh 53-bit draw in a branch. What the
32 bits cost: on a row of n tokens and prior mass S (K beta or sum(alpha)) each of the
proposal's n - 1 + S units of mass gets 2**32 / (n - 1 + S) grid points, give or take
one, so q is drawn with relative error at most (n - 1 + S) / 2**32: 2**-16 up to
``_WIDE`` = 2**16, past which (bestsellers, heavy users) every proposal of the row takes a
fresh 53-bit draw. The Metropolis-Hastings steps are written
out in the token loops: arrays passed to a helper there leave reference-count updates in
the loop that numba does not remove (a 1.5x slower pass, measured).

Every kernel here calls only kernels of this module (see the package docstring for why).

References
----------
Chen, Li, Zhu & Chen (2016), "WarpLDA: a cache efficient O(1) algorithm for latent
Dirichlet allocation", PVLDB 9(10). Steele, Lea & Flood (2014), "Fast splittable
pseudorandom number generators", OOPSLA (SplitMix64).
"""
from __future__ import annotations

from math import lgamma

import numpy as np
from numba import njit, prange

MAX_TOPICS = 1 << 16  # a topic and a proposal share one 32-bit word during a sweep
PROPOSE, ITEM, USER = 0, 1, 2  # the passes, part of every stream's seed: never renumber
_LOW = np.uint32(0xFFFF)
_SHIFT = np.uint32(16)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO53_INV = 1.0 / 9007199254740992.0  # 2**-53
_TWO32_INV = 1.0 / 4294967296.0  # 2**-32
_LOW32 = np.uint64(0xFFFFFFFF)
_FINE = 4096.0  # 2**32 / 2**20: when a 32-bit draw's remainder may pick a prior topic
_WIDE = 65536.0  # 2**16: past it a row's proposals take 53-bit draws (see the docstring)


# -- random numbers ----------------------------------------------------------------
@njit(cache=True, inline="always")
def _mix(x):
    """SplitMix64's finaliser: a bijective 64-bit hash."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def _stream(key, part, index):
    """The SplitMix64 state of stream (pass ``part``, item or user ``index``) of a sweep."""
    return _mix(key ^ _mix((np.uint64(part) << np.uint64(40)) ^ np.uint64(index)))


@njit(cache=True, inline="always")
def _uniform(x):
    """Advance the stream ``x``; return it and a double in [0, 1) from the top 53 bits."""
    x = x + _GAMMA
    return x, np.float64(_mix(x) >> np.uint64(11)) * _TWO53_INV


@njit(cache=True, inline="always")
def _two_uniforms(x):
    """Advance the stream ``x``; return it and two doubles in [0, 1) from the low and the
    high 32 bits of one output (a token's accept and its next proposal: one hash for both,
    10-16% of a pass, measured)."""
    x = x + _GAMMA
    m = _mix(x)
    return x, np.float64(m & _LOW32) * _TWO32_INV, np.float64(m >> np.uint64(32)) * _TWO32_INV


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True, nogil=True)
def sweep_key(s):
    """Advance the xoshiro256** state ``s`` (uint64[4]) once; its output keys a sweep."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit(cache=True, nogil=True)
def alias_table(weights):
    """Walker's alias table (Vose's construction) of ``weights``: (prob, alias)."""
    n = weights.shape[0]
    scaled = weights * (n / weights.sum())
    prob = np.ones(n)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    n_small = n_large = 0
    for k in range(n):
        if scaled[k] < 1.0:
            small[n_small] = k
            n_small += 1
        else:
            large[n_large] = k
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        n_large -= 1
        s, g = small[n_small], large[n_large]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            small[n_small] = g
            n_small += 1
        else:
            large[n_large] = g
            n_large += 1
    return prob, alias


@njit(cache=True, inline="always")
def _alias_draw(prob, alias, u):
    """The topic of ``u`` in [0, K) under the alias table: O(1)."""
    k = min(np.int64(u), prob.shape[0] - 1)
    if u - k >= prob[k]:
        return np.int64(alias[k])
    return k


@njit(cache=True, inline="always")
def _other(r, j):
    """The token a draw ``r`` in [0, n - 1) picks among the n - 1 tokens other than j."""
    o = np.int64(r)
    return o + 1 if o >= j else o


# -- the passes ----------------------------------------------------------------------
@njit(cache=True, parallel=True, nogil=True)
def propose_users(indptr, z, proposal, bounds):
    """Step 1: every token's user proposal into the high bits of z (user blocks
    ``bounds``); ``proposal = (prob, alias, sum(alpha), key)``."""
    for b in prange(bounds.shape[0] - 1):
        for d in range(bounds[b], bounds[b + 1]):
            _propose_user(z, indptr[d], indptr[d + 1], proposal, d)


@njit(cache=True, nogil=True, inline="always")
def _propose_user(z, start, end, proposal, d):
    """User d's tokens draw their user proposals (stream (key, PROPOSE, d))."""
    prob, alias_k, alpha_sum, key = proposal
    n_topics = prob.shape[0]
    n_d = end - start
    x = _stream(key, PROPOSE, d)
    top = np.float64(max(n_d - 2, 0))  # one token: no other token, r < 0 never holds
    for j in range(n_d):
        x, u = _uniform(x)
        r = u * (n_d - 1 + alpha_sum)
        # both candidates, then a select (no branch to mispredict): one of the user's
        # other tokens, or a topic from alpha by the draw's remainder (53 bits)
        other = z[start + min(_other(min(r, top), j), n_d - 1)] & _LOW
        f = max(r - (n_d - 1), 0.0) / alpha_sum * n_topics
        k = min(np.int64(f), n_topics - 1)
        drawn = np.uint32(alias_k[k]) if f - k >= prob[k] else np.uint32(k)
        t = other if r < n_d - 1 else drawn
        z[start + j] = (t << _SHIFT) | (z[start + j] & _LOW)


@njit(cache=True, parallel=True, nogil=True)
def item_pass(word_ptr, perm, z, n_k, beta, key, bounds):
    """Step 2 over item blocks ``bounds``; then n_k takes the pass's changes."""
    delta = np.zeros((bounds.shape[0] - 1, n_k.shape[0]), dtype=np.int64)
    for b in prange(bounds.shape[0] - 1):
        _item_block(word_ptr, perm, z, n_k, beta, key, bounds[b], bounds[b + 1], delta[b])
    for b in range(delta.shape[0]):
        n_k += delta[b]


@njit(cache=True, nogil=True)
def _item_block(word_ptr, perm, z, n_k, beta, key, w0, w1, delta):
    n_topics = n_k.shape[0]
    v_beta = (word_ptr.shape[0] - 1) * beta
    k_beta = n_topics * beta
    c_w = np.zeros(n_topics, dtype=np.int32)
    longest = 0
    for w in range(w0, w1):
        longest = max(longest, word_ptr[w + 1] - word_ptr[w])
    buf = np.empty(longest, dtype=np.uint32)  # the item's words of z, then its topics
    ahead = np.empty(longest)  # each token's uniform for its item proposal
    for w in range(w0, w1):
        start = word_ptr[w]
        n_w = word_ptr[w + 1] - start
        x = _stream(key, ITEM, w)
        for j in range(n_w):
            v = z[perm[start + j]]
            buf[j] = v
            c_w[v & _LOW] += 1
        for j in range(n_w):
            s, t = buf[j] & _LOW, buf[j] >> _SHIFT
            x, u, ahead[j] = _two_uniforms(x)
            c_w[s] -= 1
            if t != s:
                num = (c_w[t] + beta) * (n_k[s] - 1 + v_beta)
                den = (c_w[s] + beta) * (n_k[t] + v_beta)
                if u * den < num:  # Metropolis-Hastings: accept w.p. min(1, num / den)
                    delta[s] -= 1
                    delta[t] += 1
                    s = t
            c_w[s] += 1
            buf[j] = s
        # item proposals q_w(t) proportional to c_wt^-j + beta: one of the item's other
        # tokens' topics, or a uniform topic
        if n_w >= 2 and n_w - 1 + k_beta <= _FINE * beta:
            # the draw's remainder resolves the topic to 2**-20: both candidates, then a
            # select (no branch to mispredict on a short item)
            top = np.float64(n_w - 2)
            for j in range(n_w):
                r = ahead[j] * (n_w - 1 + k_beta)
                other = buf[_other(min(r, top), j)]
                flat = np.uint32(min(np.int64(max(r - (n_w - 1), 0.0) / beta), n_topics - 1))
                t = other if r < n_w - 1 else flat
                z[perm[start + j]] = (t << _SHIFT) | buf[j]
        else:  # a long item, where a uniform topic is rare: from a fresh 53-bit draw
            wide = n_w - 1 + k_beta > _WIDE
            for j in range(n_w):
                r = ahead[j] * (n_w - 1 + k_beta)
                if wide:  # past 2**16 tokens: all of the draw from 53 bits
                    x, u = _uniform(x)
                    r = u * (n_w - 1 + k_beta)
                if r < n_w - 1:
                    t = buf[_other(r, j)]
                else:
                    x, u = _uniform(x)
                    t = np.uint32(min(np.int64(u * n_topics), n_topics - 1))
                z[perm[start + j]] = (t << _SHIFT) | buf[j]
        for j in range(n_w):
            c_w[buf[j]] = 0


@njit(cache=True, parallel=True, nogil=True)
def user_pass(indptr, z, n_k, prior, key, bounds, proposal, propose):
    """Step 3 over user blocks ``bounds`` (``prior = (alpha, v_beta)``); then n_k takes the
    pass's changes. With ``propose``, each user then draws the next cycle's proposals
    (step 1's law, from the user's own stream of this pass, while its tokens are in
    cache; ``proposal[3]``, step 1's key, is not read)."""
    delta = np.zeros((bounds.shape[0] - 1, n_k.shape[0]), dtype=np.int64)
    for b in prange(bounds.shape[0] - 1):
        _user_block(indptr, z, n_k, prior, key, bounds[b:b + 2], delta[b], proposal,
                    propose)
    for b in range(delta.shape[0]):
        n_k += delta[b]


@njit(cache=True, nogil=True)
def _user_block(indptr, z, n_k, prior, key, users, delta, proposal, propose):
    alpha, v_beta = prior
    prob, alias_k, alpha_sum = proposal[0], proposal[1], proposal[2]
    n_topics = n_k.shape[0]
    c_d = np.zeros(n_topics, dtype=np.int32)
    longest = 0
    for d in range(users[0], users[1]):
        longest = max(longest, indptr[d + 1] - indptr[d])
    ahead = np.empty(longest)  # each token's uniform for its next user proposal
    for d in range(users[0], users[1]):
        start, end = indptr[d], indptr[d + 1]
        n_d = end - start
        x = _stream(key, USER, d)
        for i in range(start, end):
            c_d[z[i] & _LOW] += 1
        for i in range(start, end):
            s, t = z[i] & _LOW, z[i] >> _SHIFT
            x, u, ahead[i - start] = _two_uniforms(x)
            c_d[s] -= 1
            if t != s:
                num = (c_d[t] + alpha[t]) * (n_k[s] - 1 + v_beta)
                den = (c_d[s] + alpha[s]) * (n_k[t] + v_beta)
                if u * den < num:  # Metropolis-Hastings: accept w.p. min(1, num / den)
                    delta[s] -= 1
                    delta[t] += 1
                    s = t
            c_d[s] += 1
            z[i] = s
        for i in range(start, end):
            c_d[z[i]] = 0
        if not propose:
            continue
        # the next cycle's user proposals (the _propose_user law)
        if n_d >= 2 and (n_d - 1 + alpha_sum) * n_topics <= _FINE * alpha_sum:
            # the draw's remainder resolves the alias coin to 2**-20: a select
            top = np.float64(n_d - 2)
            for j in range(n_d):
                r = ahead[j] * (n_d - 1 + alpha_sum)
                other = z[start + _other(min(r, top), j)] & _LOW
                f = max(r - (n_d - 1), 0.0) / alpha_sum * n_topics
                k = min(np.int64(f), n_topics - 1)
                drawn = np.uint32(alias_k[k]) if f - k >= prob[k] else np.uint32(k)
                t = other if r < n_d - 1 else drawn
                z[start + j] = (t << _SHIFT) | (z[start + j] & _LOW)
        else:  # one token, or a long user (alpha rare): a fresh 53-bit draw for alpha
            wide = n_d - 1 + alpha_sum > _WIDE
            for j in range(n_d):
                r = ahead[j] * (n_d - 1 + alpha_sum)
                if wide:  # past 2**16 tokens: all of the draw from 53 bits
                    x, u = _uniform(x)
                    r = u * (n_d - 1 + alpha_sum)
                if r < n_d - 1:
                    t = z[start + _other(r, j)] & _LOW
                else:
                    x, u = _uniform(x)
                    t = np.uint32(_alias_draw(prob, alias_k, u * n_topics))
                z[start + j] = (t << _SHIFT) | (z[start + j] & _LOW)


# -- likelihood ------------------------------------------------------------------------
_TABLE_WIDTH, _TABLE_CELLS = 1024, 1 << 16  # lgamma terms tabulated: per row, in all


@njit(cache=True, nogil=True)
def log_joint(indptr, word_ptr, perm, z, n_k, alpha, beta):
    """log p(w, z | alpha, beta) (Griffiths & Steyvers 2004), each item's and each user's
    counts rebuilt from ``z`` in a scratch row: O(N + K), no V x K matrix. The terms
    lgamma(c + prior) - lgamma(prior) of the small counts c (most of them) come from a
    table built once a call (the same values, fewer lgamma calls)."""
    n_topics = n_k.shape[0]
    v_beta = (word_ptr.shape[0] - 1) * beta
    total = 0.0
    for k in range(n_topics):
        total += lgamma(v_beta) - lgamma(n_k[k] + v_beta)
    counts = np.zeros(n_topics, dtype=np.int64)
    prior = np.full(1, beta)
    table = _lgamma_table(prior, min(_TABLE_WIDTH, _longest(word_ptr) + 1))
    for w in range(word_ptr.shape[0] - 1):
        total += _row_terms(z, perm[word_ptr[w]:word_ptr[w + 1]], counts, prior, table)
    alpha_sum = alpha.sum()
    table = _lgamma_table(alpha, min(_TABLE_WIDTH, _TABLE_CELLS // n_topics,
                                     _longest(indptr) + 1))
    for d in range(indptr.shape[0] - 1):
        total += lgamma(alpha_sum) - lgamma(indptr[d + 1] - indptr[d] + alpha_sum)
        total += _row_terms(z[indptr[d]:indptr[d + 1]], None, counts, alpha, table)
    return total


@njit(cache=True, nogil=True)
def _longest(ptr):
    """The most tokens of one row of the offsets ``ptr``."""
    longest = 0
    for r in range(ptr.shape[0] - 1):
        longest = max(longest, ptr[r + 1] - ptr[r])
    return longest


@njit(cache=True, nogil=True)
def _lgamma_table(prior, width):
    """``table[k, c] = lgamma(c + prior[k]) - lgamma(prior[k])`` for c < max(width, 1)."""
    width = max(width, 1)
    table = np.empty((prior.shape[0], width))
    for k in range(prior.shape[0]):
        base = lgamma(prior[k])
        for c in range(width):
            table[k, c] = lgamma(c + prior[k]) - base
    return table


@njit(cache=True, nogil=True)
def _row_terms(z, index, counts, prior, table):
    """sum_k lgamma(c_k + prior_k) - lgamma(prior_k) over the non-zero counts c of the
    topics ``z[index]`` (``z`` itself when ``index`` is None); ``prior`` and ``table``
    (:func:`_lgamma_table`) have one row per topic, or one row for all; ``counts`` is left
    zero."""
    n = z.shape[0] if index is None else index.shape[0]
    for j in range(n):
        counts[z[j] if index is None else z[index[j]]] += 1
    shared = prior.shape[0] == 1
    width = table.shape[1]
    total = 0.0
    for j in range(n):
        k = z[j] if index is None else z[index[j]]
        c = counts[k]
        if c > 0:
            row = 0 if shared else k
            if c < width:
                total += table[row, c]
            else:
                total += lgamma(c + prior[row]) - lgamma(prior[row])
            counts[k] = 0
    return total
