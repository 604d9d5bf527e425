"""Held-out scoring on arrays: document completion below the estimator.

The estimator records it during training (``fit(X, heldout=...)``),
:func:`gibbslda.evaluate.completion_log_likelihood` wraps it for a fitted model and the
benchmarks score peers' topics with it, so every figure comes from one function.
"""
from __future__ import annotations

import numpy as np

from gibbslda import sampler

CHUNK = 65536  # hidden tokens scored at once: bounds the (chunk, K) temporaries


def completion(topic_word, alpha, observed, hidden, *, n_iter: int = 50, burn_in: int = 10,
               seed=None, rng=None) -> float:
    """Mean log p(hidden token | observed part) per hidden token, with topics fixed.

    Parameters
    ----------
    topic_word : ndarray of shape (K, V)
        phi, each row a distribution over items.
    alpha : float or ndarray of shape (K,)
        The users' Dirichlet prior.
    observed, hidden : tuple (indptr, words)
        The two parts of the same held-out users, as CSR arrays over item indices of
        ``topic_word`` (``indptr`` of length D + 1 in both).
    n_iter, burn_in, seed, rng
        The fold-in of ``observed`` (:func:`gibbslda.sampler.fold_in`).

    Returns
    -------
    float
        sum over hidden tokens of log sum_k theta_dk phi_k,w, divided by their number;
        perplexity is exp(-value).
    """
    theta = sampler.fold_in(*observed, topic_word, alpha, n_iter=n_iter, burn_in=burn_in,
                            seed=seed, rng=rng)
    return score_hidden(theta, topic_word, *hidden)


def score_hidden(theta, topic_word, indptr, words) -> float:
    """Mean over hidden tokens of log sum_k theta_dk phi_k,w.

    ``theta`` (D x K) holds the users of the CSR arrays ``indptr`` (D + 1) and ``words``
    (item indices of ``topic_word``, K x V).
    """
    theta = np.asarray(theta, dtype=np.float64)
    phi = np.asarray(topic_word, dtype=np.float64)
    indptr = np.asarray(indptr, dtype=np.int64)
    words = np.asarray(words)
    if indptr.shape[0] - 1 != theta.shape[0]:
        raise ValueError(f"observed has {theta.shape[0]} users but hidden has "
                         f"{indptr.shape[0] - 1}: pass the two parts of one split")
    if words.shape[0] == 0:
        raise ValueError("no hidden token has an item the model knows")
    users = np.repeat(np.arange(theta.shape[0]), np.diff(indptr))
    total = 0.0
    for start in range(0, words.shape[0], CHUNK):
        stop = min(start + CHUNK, words.shape[0])
        probs = np.einsum("ik,ki->i", theta[users[start:stop]], phi[:, words[start:stop]])
        total += float(np.log(probs).sum())
    return total / words.shape[0]
