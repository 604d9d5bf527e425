"""Slow, obviously correct pure-Python samplers for LDA, one per fast kernel.

They consume the same xoshiro256** streams as the numba kernels (reimplemented here in plain
Python integers), visit tokens in the same order and compute each conditional with the same
floating-point operations in the same order, so on the same input they must produce exactly
the same topics and counts. Nothing here is fast or clever on purpose.

- :class:`ReferenceLDA`: the dense, sparse (SparseLDA buckets) and Metropolis-Hastings
  samplers, serial or on the sharded schedule (users x item blocks, one stream and one copy
  of the topic totals per shard, merged after each round);
- :func:`sweep_matrix`: the exact transition matrix of one such sweep over every assignment
  of a tiny corpus (its stationary law is what a chain of that schedule samples);
- :func:`warp_sweep_matrix`: the same for one cycle of the warp sampler's two passes;
- :func:`log_joint`, :func:`fold_in`, and :func:`completion` (held-out document
  completion by the fold-in's sparse buckets);
- tables from plain loops: :func:`user_topic_rows`, :func:`item_names`,
  :func:`heldout_parts`;
- ranking (:func:`top_k`, :func:`ranking_metrics`), recommendation (:func:`top_n`) and
  coherence (:func:`coherence`) written out one user, one rank, one pair at a time;
- :func:`csr`, the one builder of ``(indptr, indices)`` pairs from lists for the tests.
"""
from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from math import lgamma

import numpy as np

MASK = (1 << 64) - 1


class Xoshiro256:
    """xoshiro256** (Blackman & Vigna), state given as four ints."""

    def __init__(self, state):
        self.s = [int(x) for x in state]

    def next_uint64(self) -> int:
        s = self.s
        result = (_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def uniform(self) -> float:
        return (self.next_uint64() >> 11) * (1.0 / 9007199254740992.0)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


def shard_bounds(sizes, n_shards):
    """Split units with these sizes into ``n_shards`` contiguous blocks of about equal total:
    block p ends after the last unit whose running total is <= total * p / n_shards."""
    total = sum(sizes)
    running = list(itertools.accumulate(sizes))
    inner = [sum(1 for c in running if c <= total * p / n_shards) for p in range(1, n_shards)]
    return [0] + inner + [len(sizes)]


def layout(docs, n_items, n_shards):
    """The sharded schedule's partition: ``(docs, doc_bounds, block)``, where each user's
    items are stably reordered by item block, shard p owns users doc_bounds[p]:doc_bounds[p+1]
    and item w lies in block ``block[w]`` (the last block whose bound is <= w)."""
    freq = [0] * n_items
    for doc in docs:
        for w in doc:
            freq[w] += 1
    item_bounds = shard_bounds(freq, n_shards)
    block = [max(b for b in range(n_shards) if item_bounds[b] <= w) for w in range(n_items)]
    ordered = [sorted(doc, key=lambda w: block[w]) for doc in docs]  # sorted() is stable
    return ordered, shard_bounds([len(doc) for doc in docs], n_shards), block


class ReferenceLDA:
    """Counts as lists of lists; docs are lists of item ids.

    ``rng_state`` is one stream state (four ints) or one per shard; ``sampler`` is "dense",
    "sparse" or "mh". With ``n_shards > 1`` each user's tokens are reordered by item block
    (``self.docs``, ``self.z`` are in that order) and a sweep runs P rounds: in round r shard p
    resamples its users' tokens of item block (p + r) mod P with stream p and its own copy of
    the topic totals, and the copies' changes are added up when the round ends.
    """

    def __init__(self, docs, n_topics, n_items, alpha, beta, rng_state, *, sampler="dense",
                 n_shards=1, mh_steps=2):
        self.docs, self.doc_bounds, self.block = layout(docs, n_items, n_shards)
        self.K = n_topics
        self.V = n_items
        self.alpha = [float(a) for a in alpha]
        self.beta = float(beta)
        self.sampler, self.n_shards, self.mh_steps = sampler, n_shards, mh_steps
        rows = rng_state if hasattr(rng_state[0], "__len__") else [rng_state]
        self.rngs = [Xoshiro256(row) for row in rows]
        self.rng = self.rngs[0]
        self.n_dk = [[0] * n_topics for _ in self.docs]
        self.n_wk = [[0] * n_topics for _ in range(n_items)]
        self.n_k = [0] * n_topics
        self.z = []
        self.item_tokens = [[] for _ in range(n_items)]  # (d, i) of each item, corpus order
        for d, doc in enumerate(self.docs):
            topics = []
            for i, w in enumerate(doc):
                k = min(int(self.rng.uniform() * self.K), self.K - 1)
                topics.append(k)
                self._add(d, w, k, +1, self.n_k)
                self.item_tokens[w].append((d, i))
            self.z.append(topics)

    def _add(self, d, w, k, delta, n_k):
        self.n_dk[d][k] += delta
        self.n_wk[w][k] += delta
        n_k[k] += delta

    def conditional(self, d, w, n_k=None):
        """Unnormalised p(z = k | rest) for every k, with the token already removed."""
        n_k = self.n_k if n_k is None else n_k
        v_beta = self.V * self.beta
        return [(self.n_dk[d][k] + self.alpha[k]) * (self.n_wk[w][k] + self.beta)
                / (n_k[k] + v_beta) for k in range(self.K)]

    def sweep(self):
        P = self.n_shards
        for r in range(P):
            start = list(self.n_k)
            copies = [list(start) for _ in range(P)]
            for p in range(P):
                cell = []
                for d in range(self.doc_bounds[p], self.doc_bounds[p + 1]):
                    tokens = [i for i, w in enumerate(self.docs[d])
                              if self.block[w] == (p + r) % P]
                    if tokens:
                        cell.append((d, tokens))
                getattr(self, f"_{self.sampler}_cell")(cell, copies[p], self.rngs[p])
            self.n_k = [start[k] + sum(c[k] - start[k] for c in copies) for k in range(self.K)]

    def _dense_cell(self, cell, n_k, rng):
        for d, tokens in cell:
            for i in tokens:
                w = self.docs[d][i]
                self._add(d, w, self.z[d][i], -1, n_k)
                k = _draw(self.conditional(d, w, n_k), rng.uniform())
                self.z[d][i] = k
                self._add(d, w, k, +1, n_k)

    def _sparse_cell(self, cell, n_k, rng):
        """SparseLDA: p(k) split into smoothing, user and item buckets (see the kernel).

        The bucket totals s and r are running sums updated per token, as in the kernel, so
        the same rounding happens here. The item bucket walks the item's non-zero counts
        largest first (ties: larger topic first), the order of MALLET's packed rows; the
        user bucket walks the user's topics in first-seen order, a removed topic's slot
        taken by the last one.
        """
        a, beta, K = self.alpha, self.beta, self.K
        v_beta = self.V * beta
        inv = [1.0 / (n_k[k] + v_beta) for k in range(K)]
        s_sum = 0.0
        for k in range(K):
            s_sum += a[k] * beta * inv[k]
        for d, tokens in cell:
            n_dk = self.n_dk[d]
            doc_topics = list(dict.fromkeys(self.z[d]))
            r_sum = 0.0
            for k in doc_topics:
                r_sum += n_dk[k] * beta * inv[k]
            for i in tokens:
                w, k = self.docs[d][i], self.z[d][i]
                s_sum -= a[k] * beta * inv[k]
                r_sum -= n_dk[k] * beta * inv[k]
                self._add(d, w, k, -1, n_k)
                inv[k] = 1.0 / (n_k[k] + v_beta)
                s_sum += a[k] * beta * inv[k]
                r_sum += n_dk[k] * beta * inv[k]
                if n_dk[k] == 0:
                    doc_topics[doc_topics.index(k)] = doc_topics[-1]
                    doc_topics.pop()
                row = sorted(((c, t) for t, c in enumerate(self.n_wk[w]) if c > 0), reverse=True)
                q_sum, q_terms = 0.0, []
                for c, t in row:
                    q_sum += c * ((a[t] + n_dk[t]) * inv[t])
                    q_terms.append(q_sum)
                u = rng.uniform() * (s_sum + r_sum + q_sum)
                if u < q_sum:
                    j = 0
                    while j < len(row) - 1 and q_terms[j] <= u:
                        j += 1
                    k = row[j][1]
                elif u < q_sum + r_sum and doc_topics:
                    u -= q_sum
                    for k in doc_topics:
                        u -= n_dk[k] * beta * inv[k]
                        if u < 0.0:
                            break
                else:
                    u -= q_sum + r_sum
                    k = 0
                    while k < K - 1:
                        u -= a[k] * beta * inv[k]
                        if u < 0.0:
                            break
                        k += 1
                s_sum -= a[k] * beta * inv[k]
                r_sum -= n_dk[k] * beta * inv[k]
                if n_dk[k] == 0:
                    doc_topics.append(k)
                self.z[d][i] = k
                self._add(d, w, k, +1, n_k)
                inv[k] = 1.0 / (n_k[k] + v_beta)
                s_sum += a[k] * beta * inv[k]
                r_sum += n_dk[k] * beta * inv[k]

    def _mh_cell(self, cell, n_k, rng):
        """Metropolis-Hastings with LightLDA's item and user proposals (see the kernel); a
        proposal ``t`` is accepted when num >= den, else with probability num / den (one
        uniform drawn only then)."""
        a, beta, K = self.alpha, self.beta, self.K
        v_beta, k_beta = self.V * beta, K * beta
        a_cdf = list(itertools.accumulate(a))
        for d, tokens in cell:
            n_dk, n_d = self.n_dk[d], len(self.docs[d])
            for i in tokens:
                w, s = self.docs[d][i], self.z[d][i]
                self._add(d, w, s, -1, n_k)
                n_w, n_wk = len(self.item_tokens[w]), self.n_wk[w]
                for _ in range(self.mh_steps):
                    u = rng.uniform() * (n_w + k_beta)
                    if u < n_w:  # the topic of one of the item's tokens (this one included)
                        e, j = self.item_tokens[w][int(u)]
                        t = self.z[e][j]
                    else:
                        t = min(int((u - n_w) / beta), K - 1)
                    if t != s and _accept((n_dk[t] + a[t]) * (n_k[s] + v_beta),
                                          (n_dk[s] + a[s]) * (n_k[t] + v_beta), rng):
                        s = self.z[d][i] = t
                    u = rng.uniform() * (n_d + a_cdf[-1])
                    if u < n_d:  # the topic of one of the user's tokens (this one included)
                        t = self.z[d][int(u)]
                    else:
                        t = min(bisect_right(a_cdf, u - n_d), K - 1)
                    if t != s and _accept((n_wk[t] + beta) * (n_k[s] + v_beta),
                                          (n_wk[s] + beta) * (n_k[t] + v_beta), rng):
                        s = self.z[d][i] = t
                self._add(d, w, s, +1, n_k)

    def log_joint(self):
        return log_joint(self.n_dk, self.n_wk, self.n_k, self.alpha, self.beta)


def _accept(num, den, rng):
    return num >= den or rng.uniform() * den < num


def _draw(weights, u):
    """Inverse-CDF draw: the first k whose running total exceeds u * total."""
    cum, total = [], 0.0
    for p in weights:
        total += p
        cum.append(total)
    target = u * total
    for k, c in enumerate(cum[:-1]):
        if c > target:
            return k
    return len(cum) - 1


def sweep_matrix(docs, n_topics, n_items, alpha, beta, *, sampler="dense", n_shards=1,
                 mh_steps=2):
    """The exact law of one :meth:`ReferenceLDA.sweep`: a K**N x K**N row-stochastic matrix
    (nested lists) whose entry [a][b] is p(z after = b | z before = a), assignments indexed
    in base K over the tokens of ``layout(docs, ...)[0]`` in order (token 0 most significant).

    Within a round the shards are independent given the round's start: shard p reads and
    writes only its users' and its item block's topics, and its copy of the topic totals
    equals the start's totals plus its own changes, which are the totals of its own partial
    assignment. So each shard's cell is enumerated alone, token by token, and the shards'
    outcomes are multiplied. Per token: the Gibbs conditional (dense, sparse), or
    ``mh_steps`` cycles of the item then the user Metropolis-Hastings kernel (mh).
    """
    K, P = n_topics, n_shards
    docs, doc_bounds, block = layout(docs, n_items, n_shards)
    law = _TokenLaw(docs, K, n_items, [float(a) for a in alpha], float(beta), sampler, mh_steps)
    states = list(itertools.product(range(K), repeat=len(law.words)))
    index = {z: s for s, z in enumerate(states)}
    matrix = None
    for r in range(P):
        cells = [[j for j, (d, w) in enumerate(zip(law.user, law.words))
                  if doc_bounds[p] <= d < doc_bounds[p + 1] and block[w] == (p + r) % P]
                 for p in range(P)]
        step = [[0.0] * len(states) for _ in states]
        for z0 in states:
            joint = {z0: 1.0}
            for cell in cells:
                outcomes = law.cell(z0, cell)
                joint = {_merge(z, x, cell): pz * px for z, pz in joint.items()
                         for x, px in outcomes.items()}
            for z, pz in joint.items():
                step[index[z0]][index[z]] += pz
        matrix = step if matrix is None else _matmul(matrix, step)
    return matrix


def _merge(z, x, cell):
    z = list(z)
    for j in cell:
        z[j] = x[j]
    return tuple(z)


def _matmul(a, b):
    cols = list(zip(*b))
    return [[sum(x * y for x, y in zip(row, col)) for col in cols] for row in a]


class _TokenLaw:
    """p(token j's new topic | the current assignment z) for one sampler, by enumeration."""

    def __init__(self, docs, K, V, alpha, beta, sampler, mh_steps):
        self.words = [w for doc in docs for w in doc]
        self.user = [d for d, doc in enumerate(docs) for _ in doc]
        self.K, self.V, self.alpha, self.beta = K, V, alpha, beta
        self.sampler, self.mh_steps = sampler, mh_steps

    def cell(self, z0, cell):
        """Distribution of the assignment after the cell's tokens are resampled in order."""
        dist = {z0: 1.0}
        for j in cell:
            new = {}
            for z, pz in dist.items():
                for k, q in enumerate(self.token(z, j)):
                    if q > 0.0:
                        z2 = z[:j] + (k,) + z[j + 1:]
                        new[z2] = new.get(z2, 0.0) + pz * q
            dist = new
        return dist

    def token(self, z, j):
        K, a, beta = self.K, self.alpha, self.beta
        d, w = self.user[j], self.words[j]
        ndk, nwk, nk = [0] * K, [0] * K, [0] * K
        for i, k in enumerate(z):
            if i != j:
                nk[k] += 1
                ndk[k] += self.user[i] == d
                nwk[k] += self.words[i] == w
        v_beta = self.V * beta
        if self.sampler != "mh":
            weights = [(ndk[k] + a[k]) * (nwk[k] + beta) / (nk[k] + v_beta) for k in range(K)]
            return [x / sum(weights) for x in weights]
        n_w, n_d = sum(nwk) + 1, sum(ndk) + 1  # token j's item and user, j included

        def kernel(propose, ratio):  # an MH step: propose t, accept w.p. min(1, ratio(s, t))
            rows = [[propose(t) * min(1.0, ratio(s, t)) if t != s else 0.0 for t in range(K)]
                    for s in range(K)]
            for s in range(K):
                rows[s][s] = 1.0 - sum(rows[s])
            return rows

        item = kernel(lambda t: (nwk[t] + beta) / (n_w + K * beta),
                      lambda s, t: (ndk[t] + a[t]) * (nk[s] + v_beta)
                      / ((ndk[s] + a[s]) * (nk[t] + v_beta)))
        user = kernel(lambda t: (ndk[t] + a[t]) / (n_d + sum(a)),
                      lambda s, t: (nwk[t] + beta) * (nk[s] + v_beta)
                      / ((nwk[s] + beta) * (nk[t] + v_beta)))
        row = [float(k == z[j]) for k in range(K)]
        for _ in range(self.mh_steps):
            row = _matmul(_matmul([row], item), user)[0]
        return row


def log_joint(n_dk, n_wk, n_k, alpha, beta):
    """log p(w, z) = sum_k log B(n_k. + beta) / B(beta) + sum_d log B(n_d. + alpha) / B(alpha)."""
    V, K = len(n_wk), len(n_k)
    total = 0.0
    for k in range(K):
        total += lgamma(V * beta) - lgamma(n_k[k] + V * beta)
        total += sum(lgamma(n_wk[w][k] + beta) - lgamma(beta) for w in range(V))
    a_sum = sum(alpha)
    for row in n_dk:
        total += lgamma(a_sum) - lgamma(sum(row) + a_sum)
        total += sum(lgamma(row[k] + alpha[k]) - lgamma(alpha[k]) for k in range(K))
    return total


def fold_in(docs, phi, alpha, n_iter, burn_in, rng_state):
    """Reference fold-in: Gibbs on each new doc's z with phi (K x V) fixed."""
    rng = Xoshiro256(rng_state)
    K = len(phi)
    a_sum = sum(alpha)
    thetas = []
    for doc in docs:
        counts = [0] * K
        z = []
        for _ in doc:
            k = min(int(rng.uniform() * K), K - 1)
            z.append(k)
            counts[k] += 1
        theta = [0.0] * K
        for it in range(n_iter):
            for j, w in enumerate(doc):
                counts[z[j]] -= 1
                k = _draw([(counts[t] + alpha[t]) * phi[t][w] for t in range(K)], rng.uniform())
                z[j] = k
                counts[k] += 1
            if it >= burn_in:
                for t in range(K):
                    theta[t] += (counts[t] + alpha[t]) / (len(doc) + a_sum)
        thetas.append([t / (n_iter - burn_in) for t in theta])
    return thetas


def completion(observed, hidden, n_wk, n_k, alpha, beta, n_iter, burn_in, rng_state):
    """Reference of held-out document completion from a chain's counts
    (``gibbslda.heldout.completion_from_state``): sum over hidden tokens of log p(w |
    observed part), and their number.

    Each user's observed tokens start from uniform topics; each sweep redraws every token
    from (n_dk + alpha_k) phi_kw, phi_kw = (n_wk + beta) / denom_k, denom_k = n_k + V beta,
    split into buckets. When the item's non-zero counts are fewer than the user's topics:
    the item's, (alpha_k + n_dk) n_wk / denom_k over them
    (topics ascending), then the user's, n_dk beta / denom_k (kept as a running mass),
    then the smoothing, alpha_k beta / denom_k over all topics. Otherwise the user's,
    n_dk phi_kw over the user's topics, then the item's, alpha_k n_wk / denom_k, then the
    smoothing. The user's topics are listed in the order a list keeps them: appended when
    their count becomes 1 and, when it drops to 0, replaced by the last. n_dk summed over
    the sweeps after burn-in gives theta = (mean n_dk + alpha) / (n_d + sum alpha); a
    hidden token scores log sum_k theta_k phi_kw, written as the kernel writes it. User d
    draws from its own xoshiro256** stream: four SplitMix64 outputs from key ^ mix(d),
    key the next output of ``rng_state``.
    """
    key = Xoshiro256(rng_state).next_uint64()
    K, V = len(alpha), len(n_wk)
    denom = [n_k[k] + V * beta for k in range(K)]
    base = [beta / denom[k] for k in range(K)]
    smooth, total = [], 0.0
    for k in range(K):
        total += alpha[k] * beta / denom[k]
        smooth.append(total)

    def row(w):  # the item's non-zero counts: topics ascending, n / denom, alpha bucket
        topics, val, cum, q = [], [], [], 0.0
        for k in range(K):
            if n_wk[w][k] > 0:
                topics.append(k)
                val.append(n_wk[w][k] / denom[k])
                q += alpha[k] * n_wk[w][k] / denom[k]
                cum.append(q)
        return topics, val, cum, q

    def first_above(cum, u):
        return min(bisect_right(cum, u), len(cum) - 1)

    log_p, n_hidden = 0.0, 0
    for d, (obs, hid) in enumerate(zip(observed, hidden)):
        rng = Xoshiro256(_user_state(key, d))
        counts, listed, z, mass = [0] * K, [], [], 0.0
        for _ in obs:
            k = min(int(rng.uniform() * K), K - 1)
            z.append(k)
            if counts[k] == 0:
                listed.append(k)
            counts[k] += 1
            mass += base[k]
        acc, touched = [0] * K, []
        for it in range(n_iter if obs else 0):
            for j, w in enumerate(obs):
                k = z[j]
                counts[k] -= 1
                if counts[k] == 0:
                    place, last = listed.index(k), listed.pop()
                    if place < len(listed):
                        listed[place] = last
                mass = mass - base[k] if listed else 0.0
                topics, val, cum, q = row(w)
                if len(topics) < len(listed):
                    mine, part = 0.0, []
                    for t, v in zip(topics, val):
                        mine += (alpha[t] + counts[t]) * v
                        part.append(mine)
                    u = rng.uniform() * ((mine + mass) + smooth[-1])
                    if u < mine:
                        k = topics[first_above(part, u)]
                    elif u - mine < mass:
                        k, run = listed[-1], 0.0
                        for t in listed:
                            run += counts[t] * base[t]
                            if run > u - mine:
                                k = t
                                break
                    else:
                        k = first_above(smooth, (u - mine) - mass)
                else:
                    mine, part = 0.0, []
                    for t in listed:
                        mine += counts[t] * ((n_wk[w][t] + beta) / denom[t])
                        part.append(mine)
                    u = rng.uniform() * ((mine + q) + smooth[-1])
                    if u < mine:
                        k = listed[first_above(part, u)]
                    elif u - mine < q:
                        k = topics[first_above(cum, u - mine)]
                    else:
                        k = first_above(smooth, (u - mine) - q)
                z[j] = k
                if counts[k] == 0:
                    listed.append(k)
                counts[k] += 1
                mass += base[k]
            if it >= burn_in:
                for t in listed:
                    if acc[t] == 0:
                        touched.append(t)
                    acc[t] += counts[t]
        kept = n_iter - burn_in if obs else 1
        scale = 1.0 / (len(obs) + sum(alpha))
        shared = 0.0
        for t in touched:
            shared += acc[t] * base[t]
        for w in hid:
            topics, val, _, q = row(w)
            mine = shared
            for t, v in zip(topics, val):
                mine += acc[t] * v
            log_p += math.log((mine / kept + (q + smooth[-1])) * scale)
            n_hidden += 1
    return log_p, n_hidden


def _splitmix_mix(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def _user_state(key: int, d: int) -> list:
    """Four SplitMix64 outputs from key ^ mix(d): a user's stream state."""
    x, state = key ^ _splitmix_mix(d), []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & MASK
        state.append(_splitmix_mix(x))
    return state


def user_topic_rows(theta, user_ids):
    """Reference of the long theta table: (user id as text, topic, weight) for every user
    in order, topics in order within a user."""
    return [(str(u), k, float(theta[d][k])) for d, u in enumerate(user_ids)
            for k in range(len(theta[d]))]


def item_names(item_ids, labels: dict):
    """Reference of item naming: each item's label (looked up by its id as text), or the
    id as text where it has none or an empty one."""
    return [labels.get(str(i)) or str(i) for i in item_ids]


def heldout_parts(tokens, user_ids, train_user_ids):
    """Reference of what a ranking evaluation compares, from rows (user, word, count,
    part) of a prepared split: per evaluated user (in user index order), the sorted word
    lists (known, truth) and the user's row in the training users (None with held-out
    users). Held-out users: observed -> hidden; else the test users known to training:
    train -> test."""
    lists = {}
    for user, word, count, part in tokens:
        lists.setdefault((part, user), []).extend([word] * count)
    parts = {part for part, _ in lists}
    if {"observed", "hidden"} <= parts:
        known, truth = "observed", "hidden"
    else:
        known, truth = "train", "test"
    rows = {u: d for d, u in enumerate(train_user_ids)}
    out = []
    for user in sorted({user for part, user in lists if part == truth}):
        row = None if known == "observed" else rows.get(user_ids[user])
        if known == "train" and row is None:
            continue  # a test user the model was not trained on
        out.append((user_ids[user], sorted(lists.get((known, user), [])),
                    sorted(lists[(truth, user)]), row))
    return out


def warp_sweep_matrix(docs, n_topics, n_items, alpha, beta):
    """The exact law of one cycle of the warp sampler (``_kernels.warp``): a K**N x K**N
    row-stochastic matrix over assignments in base K (user-major tokens, token 0 most
    significant). A sweep of ``mh_steps`` cycles is its ``mh_steps``-th power, with the
    same stationary law.

    A cycle: every token i draws a user proposal from q(k) ~ n_dk^-i + alpha_k of the
    cycle's start z; the item pass takes the tokens item after item (each item's in user
    order), token i accepting t over its topic s with probability min(1, (c_wt + beta)
    (n_s^-i + V beta) / ((c_ws + beta)(n_t^-i + V beta))), c_w the item's counts without i
    as they stand (earlier tokens of the item already moved), n_k the start's totals; then
    from the pass's result z1 every token draws an item proposal q(k) ~ n_wk^-i + beta and
    the user pass does the same with c_d + alpha, the totals of z1.
    """
    K, V = n_topics, n_items
    a, b = [float(x) for x in alpha], float(beta)
    words = [w for doc in docs for w in doc]
    user = [d for d, doc in enumerate(docs) for _ in doc]
    by_item = sorted(range(len(words)), key=lambda i: (words[i], i))
    states = list(itertools.product(range(K), repeat=len(words)))
    index = {z: s for s, z in enumerate(states)}

    def others(z, i, same):  # topic counts of the tokens j != i with same(j)
        counts = [0] * K
        for j, k in enumerate(z):
            if j != i and same(j):
                counts[k] += 1
        return counts

    def proposal(z, i, side):
        if side == "user":
            c = others(z, i, lambda j: user[j] == user[i])
            weights = [c[k] + a[k] for k in range(K)]
        else:
            c = others(z, i, lambda j: words[j] == words[i])
            weights = [c[k] + b for k in range(K)]
        return [x / sum(weights) for x in weights]

    def token_pass(z0, order, side):
        """Distribution of z after the tokens of ``order`` each take one MH step."""
        n_k = [sum(k == t for k in z0) for t in range(K)]
        q = {i: proposal(z0, i, "user" if side == "item" else "item") for i in order}
        dist = {z0: 1.0}
        for i in order:
            new = {}
            for z, pz in dist.items():
                s = z[i]
                if side == "item":
                    c = others(z, i, lambda j: words[j] == words[i])
                    prior = [b] * K
                else:
                    c = others(z, i, lambda j: user[j] == user[i])
                    prior = a
                stay = 1.0
                for t in range(K):
                    if t == s:
                        continue
                    ratio = ((c[t] + prior[t]) * (n_k[s] - 1 + V * b)
                             / ((c[s] + prior[s]) * (n_k[t] + V * b)))
                    move = q[i][t] * min(1.0, ratio)
                    stay -= move
                    z2 = z[:i] + (t,) + z[i + 1:]
                    new[z2] = new.get(z2, 0.0) + pz * move
                new[z] = new.get(z, 0.0) + pz * stay
            dist = new
        return dist

    user_rows = {}
    matrix = [[0.0] * len(states) for _ in states]
    for z0 in states:
        for z1, p1 in token_pass(z0, by_item, "item").items():
            if z1 not in user_rows:
                user_rows[z1] = token_pass(z1, range(len(words)), "user")
            for z2, p2 in user_rows[z1].items():
                matrix[index[z0]][index[z2]] += p1 * p2
    return matrix


# -- test data ------------------------------------------------------------------------------
def csr(lists, dtype=np.int64):
    """``(indptr, indices)`` of a list of lists, row by row: indptr int64, indices ``dtype``."""
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=indptr[1:])
    return indptr, np.array([i for x in lists for i in x], dtype=dtype)


# -- ranking (gibbslda.topn.top_k, gibbslda.ranking.ranking_metrics) ----------------------
def top_k(scores, k):
    """Reference top-k: each row's items by a stable argsort of the negated scores (ties
    to the lower item index), ``-inf`` items left out, padded with -1 to k."""
    out = np.full((len(scores), k), -1, dtype=np.int64)
    for r, row in enumerate(np.asarray(scores, dtype=np.float64)):
        best = [w for w in np.argsort(-row, kind="stable") if row[w] != -np.inf][:k]
        out[r, :len(best)] = best
    return out


def item_popularity(train_lists, n_items):
    """Share of users holding each item; an item nobody holds counts as held by one user."""
    n_users = max(len(train_lists), 1)
    return [max(sum(item in set(row) for row in train_lists), 1) / n_users
            for item in range(n_items)]


def ranking_metrics(scores, train, heldout, k, popularity):
    """Per-user metrics at one k written out plainly, one user and one rank at a time:
    ({metric: per-user values, NaN for users with nothing held out}, catalogue coverage)."""
    nan = float("nan")
    out = {m: [] for m in ("recall", "ndcg", "precision", "hit_rate", "average_precision",
                           "novelty")}
    shown = set()
    for u, row in enumerate(scores):
        known = set(train[u])
        truth = set(heldout[u]) - known
        if not truth:
            for values in out.values():
                values.append(nan)
            continue
        candidates = [i for i in range(len(row)) if i not in known and row[i] != -math.inf]
        ranked = sorted(candidates, key=lambda i: (-row[i], i))[:k]
        shown.update(ranked)
        hits = [1 if i in truth else 0 for i in ranked] + [0] * (k - len(ranked))
        m = min(k, len(truth))
        out["recall"].append(sum(hits) / m)
        out["precision"].append(sum(hits) / k)
        out["hit_rate"].append(1.0 if any(hits) else 0.0)
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        out["ndcg"].append(dcg / sum(1 / math.log2(i + 2) for i in range(m)))
        out["average_precision"].append(
            sum(hits[i] * sum(hits[:i + 1]) / (i + 1) for i in range(k)) / m)
        out["novelty"].append(sum(-math.log2(popularity[i]) for i in ranked) / len(ranked)
                              if ranked else nan)
    return out, len(shown) / len(scores[0])


# -- recommendation (gibbslda.topn.top_n) ---------------------------------------------------
def _item_scores(theta, phi):
    """Every p(item | user), the K products added in topic order (the library's rule)."""
    scores = np.zeros((theta.shape[0], phi.shape[1]))
    for k in range(phi.shape[0]):
        scores += theta[:, [k]] * phi[k]
    return scores


def top_n(theta, phi, n, seen=None, banned=()):
    """Per user: unseen, unbanned items by (-score, item), the first n; -1 / -inf padding."""
    scores = _item_scores(theta, phi)
    width = min(n, phi.shape[1])
    items = np.full((theta.shape[0], width), -1)
    values = np.full((theta.shape[0], width), -np.inf)
    for u, row in enumerate(scores):
        skip = set(banned) | (set(seen[u]) if seen is not None else set())
        ranked = sorted((w for w in range(row.size) if w not in skip),
                        key=lambda w: (-row[w], w))[:width]
        items[u, :len(ranked)] = ranked
        values[u, :len(ranked)] = row[ranked]
    return items, values


# -- coherence (gibbslda.coherence.coherence) -----------------------------------------------
def coherence(phi, docs, n, measure):
    """Obviously correct: sets of items per user, loops over pairs."""
    users = [set(d) for d in docs]
    big_n = len(users)

    def df(*items):
        return sum(all(w in u for w in items) for u in users)

    scores = []
    for row in phi:
        top = sorted(range(len(row)), key=lambda w: (-row[w], w))[:n]
        values = []
        for l, m in itertools.combinations(range(n), 2):  # every l < m
            wl, wm = top[l], top[m]
            if measure == "umass":
                values.append(math.log((df(wm, wl) + 1) / df(wl)) if df(wl) else math.nan)
            elif df(wl, wm) == 0:
                values.append(-1.0)
            elif df(wl, wm) == big_n:
                values.append(1.0)
            else:
                p_ij = df(wl, wm) / big_n
                values.append(math.log(p_ij / (df(wl) / big_n * df(wm) / big_n))
                              / -math.log(p_ij))
        scores.append(sum(values) / len(values))
    return np.array(scores)


# -- weighted EM fold-in (gibbslda._kernels.foldin_em.em_theta) ---------------------------
def em_theta(docs, weights, phi, alpha, n_iter):
    """Obviously correct: per user, n_iter updates theta_k = (alpha_k + sum_t weight_t
    r_tk) / (sum weight + sum alpha), r_tk = theta_k phi[k][w_t] / sum_j theta_j phi[j][w_t],
    from the prior mean; phi a K x V nested list."""
    out = []
    k_topics, alpha_sum = len(alpha), sum(alpha)
    for doc, weight in zip(docs, weights):
        theta = [a / alpha_sum for a in alpha]
        for _ in range(n_iter if doc else 0):
            acc = [0.0] * k_topics
            for w, c in zip(doc, weight):
                r = [theta[k] * phi[k][w] for k in range(k_topics)]
                for k in range(k_topics):
                    acc[k] += c * r[k] / sum(r)
            theta = [(alpha[k] + acc[k]) / (sum(weight) + alpha_sum)
                     for k in range(k_topics)]
        out.append(theta)
    return out


# -- interest trends and demand forecasts (gibbslda.trends, gibbslda.demand) ---------------
def period_topic_counts(periods, topics, n_periods, n_topics):
    """Tokens per (period, topic) from one (period, topic) per token, by a loop."""
    out = [[0.0] * n_topics for _ in range(n_periods)]
    for t, k in zip(periods, topics):
        out[int(t)][int(k)] += 1
    return out


def naive_forecast(series, horizon, method):
    """One item's naive forecast from its history (a list of numbers), by hand."""
    if method == "last":
        value = series[-1]
    else:
        n = int(method.split("_")[1])
        value = sum(series[-n:]) / n
    return [value] * horizon


def wape(actual, forecast):
    """sum |y - f| / sum y over paired lists of lists."""
    num = sum(abs(y - f) for ys, fs in zip(actual, forecast) for y, f in zip(ys, fs))
    return num / sum(y for ys in actual for y in ys)


def update_fold_in(users, n_wk, n_k, alpha, beta, n_items, rng_state):
    """Reference first topics of an update's new tokens (gibbslda.update, step 3).

    ``users``: one ``(old_topics, new_items)`` pair per user the update touches, in the
    order it takes them; ``n_wk`` (dict item -> K counts) and ``n_k`` (K counts) count every
    old token kept. Each new token, in order, is drawn from (n_dk + alpha_k)(n_wk + beta) /
    (n_k + V beta) and counted at once. Returns the new topics, one list per user."""
    rng = Xoshiro256(rng_state)
    K = len(n_k)
    n_k = list(n_k)
    n_wk = {w: list(row) for w, row in n_wk.items()}
    out = []
    for old_topics, new_items in users:
        n_dk = [0] * K
        for k in old_topics:
            n_dk[k] += 1
        drawn = []
        for w in new_items:
            row = n_wk.setdefault(w, [0] * K)
            k = _draw([(n_dk[t] + alpha[t]) * (row[t] + beta) / (n_k[t] + n_items * beta)
                       for t in range(K)], rng.uniform())
            drawn.append(k)
            n_dk[k] += 1
            row[k] += 1
            n_k[k] += 1
        out.append(drawn)
    return out


# -- recommend()'s dense variants (gibbslda.rankers.Scorer) --------------------------------
def em_theta_share(docs, weights, phi, pop, alpha, mean, strength, n_iter):
    """Obviously correct: per user, theta and lam of p(w) = (1 - lam) sum_k theta_k
    phi[k][w] + lam pop[w] by n_iter EM steps from (alpha / sum alpha, mean): a token's
    parts r_k = (1 - lam) theta_k phi[k][w] / p(w), q = lam pop[w] / p(w); then theta_k =
    (alpha_k + A_k) / (sum A + sum alpha), lam = (strength mean + Q) / (strength + sum A +
    Q), A_k and Q the weighted sums of r_k and q. Returns (thetas, lams)."""
    thetas, lams = [], []
    k_topics, alpha_sum = len(alpha), sum(alpha)
    for doc, weight in zip(docs, weights):
        theta, lam = [a / alpha_sum for a in alpha], mean
        for _ in range(n_iter if doc else 0):
            acc, back = [0.0] * k_topics, 0.0
            for w, c in zip(doc, weight):
                r = [(1 - lam) * theta[k] * phi[k][w] for k in range(k_topics)]
                p = sum(r) + lam * pop[w]
                for k in range(k_topics):
                    acc[k] += c * r[k] / p
                back += c * lam * pop[w] / p
            theta = [(alpha[k] + acc[k]) / (sum(acc) + alpha_sum) for k in range(k_topics)]
            lam = (strength * mean + back) / (strength + sum(acc) + back)
        thetas.append(theta)
        lams.append(lam)
    return thetas, lams


def variant_scores(docs, times, phi, alpha, n_iter, half_life_days, lam, train_docs,
                   partner, b, strength=None):
    """Obviously correct scores of one user per row, as gibbslda.rankers documents them:
    token weights 0.5 ** (age / half-life) (age in days from the user's latest event,
    scaled to sum to the user's token count; all 1 without a half-life), theta by
    :func:`em_theta`, p = sum_k theta_k phi[k][w]; with lam > 0, (1 - lam) p + lam pop[w]
    (pop: the training users holding w, normalised to sum 1); with lam > 0 and a
    ``strength``, each user's own lam by :func:`em_theta_share` (Beta prior of mean lam,
    that strength; its theta dropped, theta stays :func:`em_theta`'s); with b > 0, (1 - b) p / max p + b s / max s, s the
    row of ``partner`` (users x V) with -inf counted 0 (max s taken as 1 when not
    positive)."""
    day = 86_400 * 10 ** 6
    n_items = len(phi[0])
    holders = [sum(w in set(doc) for doc in train_docs) for w in range(n_items)]
    pop = [h / sum(holders) for h in holders]
    weights = []
    for doc, stamps in zip(docs, times):
        if half_life_days is None or not doc:
            weights.append([1.0] * len(doc))
            continue
        raw = [0.5 ** ((max(stamps) - t) / (half_life_days * day)) for t in stamps]
        weights.append([r * len(doc) / sum(raw) for r in raw])
    thetas, lams = em_theta(docs, weights, phi, alpha, n_iter), [lam] * len(docs)
    if lam > 0 and strength is not None:
        lams = em_theta_share(docs, weights, phi, pop, alpha, lam, strength, n_iter)[1]
    out = []
    for u, theta in enumerate(thetas):
        row = [sum(theta[k] * phi[k][w] for k in range(len(theta))) for w in range(n_items)]
        if lam > 0:
            row = [(1 - lams[u]) * p + lams[u] * pop[w] for w, p in enumerate(row)]
        if b > 0:
            other = [s if s != -math.inf else 0.0 for s in partner[u]]
            top_other = max(other) if max(other) > 0 else 1.0
            row = [(1 - b) * p / max(row) + b * s / top_other for p, s in zip(row, other)]
        out.append(row)
    return np.array(out)


def interest_knn_scores(docs, train_docs, phi, n_neighbors):
    """Obviously correct partner scores of ``"lda+iknn"`` (gibbslda.rankers): cosine
    s(j, i) = |U_j & U_i| / sqrt(|U_j| |U_i|) of the training users holding each item,
    each j keeping its ``n_neighbors`` most similar other items (positive only, ties to
    the lower item); a(i, j) the cosine of the items' p(k | i) = phi[k][i] / sum_k
    phi[k][i]; user u scores i as sum over distinct j in docs[u] of s(j, i) a(i, j)."""
    n_items = len(phi[0])
    holders = [set(u for u, doc in enumerate(train_docs) if w in doc) for w in range(n_items)]
    kept = []
    for j in range(n_items):
        sims = [(len(holders[j] & holders[i]) / math.sqrt(len(holders[j]) * len(holders[i])),
                 i) for i in range(n_items) if i != j and holders[i] and holders[j]]
        best = sorted((s for s in sims if s[0] > 0), key=lambda s: (-s[0], s[1]))
        kept.append({i: s for s, i in best[:n_neighbors]})
    p = []
    for i in range(n_items):
        total = sum(phi[k][i] for k in range(len(phi)))
        p.append([phi[k][i] / total for k in range(len(phi))])

    def agreement(i, j):
        dot = sum(a * b for a, b in zip(p[i], p[j]))
        return dot / math.sqrt(sum(a * a for a in p[i]) * sum(b * b for b in p[j]))

    return np.array([[sum(kept[j].get(i, 0.0) * agreement(i, j) for j in set(doc))
                      for i in range(n_items)] for doc in docs])
