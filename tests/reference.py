"""A slow, obviously correct pure-Python collapsed Gibbs sampler for LDA.

It consumes the same xoshiro256** stream as the numba kernels (reimplemented here in plain
Python integers), visits tokens in the same order and computes each conditional with the
same floating-point operations in the same order, so on the same input it must produce
exactly the same topics and counts. Nothing here is fast or clever on purpose.
"""
from __future__ import annotations

from math import lgamma

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


class ReferenceLDA:
    """Counts as lists of lists; docs are lists of item ids."""

    def __init__(self, docs, n_topics, n_items, alpha, beta, rng_state):
        self.docs = [list(doc) for doc in docs]
        self.K = n_topics
        self.V = n_items
        self.alpha = [float(a) for a in alpha]
        self.beta = float(beta)
        self.rng = Xoshiro256(rng_state)
        self.n_dk = [[0] * n_topics for _ in self.docs]
        self.n_wk = [[0] * n_topics for _ in range(n_items)]
        self.n_k = [0] * n_topics
        self.z = []
        for d, doc in enumerate(self.docs):
            topics = []
            for w in doc:
                k = min(int(self.rng.uniform() * self.K), self.K - 1)
                topics.append(k)
                self._add(d, w, k, +1)
            self.z.append(topics)

    def _add(self, d, w, k, delta):
        self.n_dk[d][k] += delta
        self.n_wk[w][k] += delta
        self.n_k[k] += delta

    def conditional(self, d, w):
        """Unnormalised p(z = k | rest) for every k, with the token already removed."""
        v_beta = self.V * self.beta
        return [(self.n_dk[d][k] + self.alpha[k]) * (self.n_wk[w][k] + self.beta)
                / (self.n_k[k] + v_beta) for k in range(self.K)]

    def sweep(self):
        for d, doc in enumerate(self.docs):
            for i, w in enumerate(doc):
                self._add(d, w, self.z[d][i], -1)
                k = _draw(self.conditional(d, w), self.rng.uniform())
                self.z[d][i] = k
                self._add(d, w, k, +1)

    def log_joint(self):
        return log_joint(self.n_dk, self.n_wk, self.n_k, self.alpha, self.beta)


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
