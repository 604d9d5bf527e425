"""Held-out evaluation: user splits and document-completion log-likelihood.

References
----------
Wallach, Murray, Salakhutdinov & Mimno (2009), "Evaluation methods for topic models", ICML.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda.corpus import Corpus, as_corpus


@dataclass(frozen=True)
class UserSplit:
    """Training users, and each held-out user's tokens split into observed and hidden."""

    train: Corpus
    observed: Corpus
    hidden: Corpus


def split_users(corpus: Corpus, *, test_fraction: float = 0.2, hidden_fraction: float = 0.5,
                seed: int = 0) -> UserSplit:
    """Hold out a seeded random ``test_fraction`` of the users with at least two tokens.

    Each held-out user's tokens are shuffled (seeded) and ``hidden_fraction`` of them
    (at least one, at most all but one) become the hidden part; the rest are observed.
    ``observed`` and ``hidden`` list the same users in the same order.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0 < hidden_fraction < 1:
        raise ValueError(f"hidden_fraction must be in (0, 1), got {hidden_fraction}")
    rng = np.random.default_rng(seed)
    lengths = corpus.lengths
    eligible = np.flatnonzero(lengths >= 2)
    n_test = int(round(test_fraction * eligible.shape[0]))
    if n_test == 0 or n_test == corpus.n_users:
        raise ValueError("the corpus is too small to hold users out: need users with at "
                         "least two tokens on both sides of the split")
    test = np.sort(rng.choice(eligible, size=n_test, replace=False))
    is_test = np.zeros(corpus.n_users, dtype=bool)
    is_test[test] = True
    train = _subset(corpus, np.flatnonzero(~is_test))
    observed, hidden = [], []
    for d in test:
        tokens = rng.permutation(corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]])
        n_hidden = min(max(int(round(hidden_fraction * tokens.shape[0])), 1),
                       tokens.shape[0] - 1)
        hidden.append(np.sort(tokens[:n_hidden]))
        observed.append(np.sort(tokens[n_hidden:]))
    user_ids = corpus.user_ids[test]
    return UserSplit(train, _from_token_lists(observed, user_ids, corpus.item_ids),
                     _from_token_lists(hidden, user_ids, corpus.item_ids))


def completion_log_likelihood(model, observed, hidden) -> float:
    """Mean log p(hidden token | observed part) per hidden token (document completion).

    theta of each held-out user comes from folding in the observed part with the topics
    fixed (``model.transform``); each hidden token then scores log sum_k theta_k phi_k,w.
    Hidden tokens whose item is not in the model's vocabulary are left out (with
    :func:`split_users` the training corpus keeps the whole vocabulary, so none are: an
    item seen only by held-out users scores its smoothed probability). Perplexity is
    exp(-value).
    """
    theta = model.transform(observed)
    hidden = as_corpus(hidden, vocabulary=model.item_ids_, drop_empty=False)
    if hidden.n_users != theta.shape[0]:
        raise ValueError(f"observed has {theta.shape[0]} users but hidden has "
                         f"{hidden.n_users}: pass the two parts of one split")
    if hidden.n_tokens == 0:
        raise ValueError("no hidden token has an item the model knows")
    users = np.repeat(np.arange(hidden.n_users), hidden.lengths)
    phi = model.topic_word_
    total = 0.0
    for start in range(0, hidden.n_tokens, 65536):
        stop = min(start + 65536, hidden.n_tokens)
        probs = np.einsum("ik,ki->i", theta[users[start:stop]], phi[:, hidden.words[start:stop]])
        total += float(np.log(probs).sum())
    return total / hidden.n_tokens


def _subset(corpus: Corpus, users: np.ndarray) -> Corpus:
    lengths = corpus.lengths[users]
    indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # token j of the subset is token j - indptr[r] + corpus.indptr[users[r]] of the corpus
    take = np.arange(indptr[-1]) + np.repeat(corpus.indptr[users] - indptr[:-1], lengths)
    return Corpus(indptr, corpus.words[take], corpus.user_ids[users], corpus.item_ids)


def _from_token_lists(lists, user_ids, item_ids) -> Corpus:
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in lists], out=indptr[1:])
    words = np.concatenate(lists).astype(np.int32) if lists else np.zeros(0, np.int32)
    return Corpus(indptr, words, np.asarray(user_ids), item_ids)
