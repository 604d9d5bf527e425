"""Seeded synthetic users x items corpora drawn from known (planted) topics.

Used by the tests (planted-topic recovery) and the benchmarks (named corpus sizes), and
handy in research code. User lengths are heavy-tailed (log-normal) and item popularity
Zipf-like, as in real interaction logs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda.corpus import Corpus


@dataclass(frozen=True)
class Planted:
    corpus: Corpus
    topic_word: np.ndarray  # (K, V) the true phi
    doc_topic: np.ndarray   # (D, K) the true theta


def planted_corpus(n_users: int, n_items: int, n_topics: int, *, mean_length: float = 50,
                   sigma: float = 1.0, alpha=0.1, zipf: float = 1.1,
                   overlap: float = 0.0, seed: int = 0) -> Planted:
    """Draw a corpus from LDA's generative process with known topics.

    Each topic owns a block of V/K items (plus ``overlap`` of its mass spread over all
    items) with Zipf-shaped popularity inside the block; each user draws theta from
    Dirichlet(alpha) (a scalar: symmetric; K values: asymmetric) and a log-normal length
    with the given mean and ``sigma``.
    """
    rng = np.random.default_rng(seed)
    block = n_items // n_topics
    phi = np.full((n_topics, n_items), overlap / n_items)
    ranks = np.arange(1, block + 1, dtype=np.float64) ** -zipf
    for k in range(n_topics):
        phi[k, k * block:(k + 1) * block] += (1 - overlap) * rng.permutation(ranks) / ranks.sum()
    phi /= phi.sum(axis=1, keepdims=True)
    theta = rng.dirichlet(np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n_topics,)),
                          size=n_users)
    mu = np.log(mean_length) - sigma**2 / 2
    lengths = np.maximum(1, np.round(rng.lognormal(mu, sigma, size=n_users))).astype(np.int64)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    topics = _draw_rows(rng, theta, lengths)
    words = _draw_rows(rng, phi, np.bincount(topics, minlength=n_topics), order=topics)
    corpus = Corpus.from_csr(indptr, words, np.ones_like(words), n_items=n_items)
    return Planted(corpus=corpus, topic_word=phi, doc_topic=theta)


def _draw_rows(rng, probs, counts, order=None):
    """Draw ``counts[r]`` categories from row ``r`` of ``probs``; vectorised by inverse CDF."""
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    if order is None:
        rows = np.repeat(np.arange(probs.shape[0]), counts)
    else:
        rows = order
    # Row r's CDF shifted by r makes one sorted array: one searchsorted draws every token.
    n_rows, n_cols = probs.shape
    shifted = (cdf + np.arange(n_rows)[:, None]).ravel()
    u = rng.random(rows.shape[0]) + rows
    flat = np.searchsorted(shifted, u, side="right")
    return np.clip(flat - rows * n_cols, 0, n_cols - 1)
