"""Held-out evaluation: user splits, held-out likelihood (two estimators), topic quality
and choosing K.

- :func:`split_users` holds users out, each split into an observed and a hidden part;
- :func:`completion_log_likelihood`: log p(hidden | observed) per token (document
  completion);
- :func:`left_to_right_log_likelihood`: log p(whole user) per token (left-to-right
  sequential importance sampling);
- :func:`perplexity` of either; :func:`coherence`, :func:`diversity` and
  :func:`top_items` (from :mod:`gibbslda.coherence`);
- choosing K on one split: :func:`gibbslda.select.select_k` (it fits models, so it lives
  above the estimator);
- :func:`ranking_metrics`, :func:`evaluate_rankings`, :func:`item_popularity` (from
  :mod:`gibbslda.ranking`): Recall/NDCG/Precision/HitRate/MAP@k, coverage, novelty;
  :func:`heldout_parts` reads what they rank from a prepared split.

References
----------
Wallach, Murray, Salakhutdinov & Mimno (2009), "Evaluation methods for topic models", ICML.
Buntine (2009), "Estimating likelihoods for topic models", ACML.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda.coherence import coherence, coherence_scores, diversity, top_items
from gibbslda.corpus import Corpus, as_corpus
from gibbslda.ranking import evaluate_rankings, item_popularity, ranking_metrics

__all__ = ["UserSplit", "split_users", "completion_log_likelihood",
           "left_to_right_log_likelihood", "perplexity", "coherence", "diversity",
           "coherence_scores", "top_items", "ranking_metrics", "evaluate_rankings",
           "item_popularity", "heldout_parts"]


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
    fixed (``transform_iter`` Gibbs sweeps, ``transform_burn_in`` discarded, theta
    averaged over the rest, as ``model.transform`` estimates it); each hidden token then
    scores log sum_k theta_k phi_k,w. Hidden tokens whose item is not in the model's
    vocabulary are left out (with :func:`split_users` the training corpus keeps the whole
    vocabulary, so none are: an item seen only by held-out users scores its smoothed
    probability). Perplexity is exp(-value).

    The function is :func:`gibbslda.heldout.completion_from_state`, shared with training
    (``fit(X, heldout=...)`` records it on ``heldout_users`` of the users): it reads phi
    for the items these users hold only (never the K x V ``topic_word_``), folds in by
    sparse buckets, O(min(K_w, K_d)) a token instead of O(K), on all threads, and is
    deterministic for a fitted model.
    """
    return model._completion(observed, hidden)


def left_to_right_log_likelihood(model, users, *, n_particles: int = 20, seed=0,
                                 per_user: bool = False):
    """log p(each user's items | topics, alpha) per token, by the left-to-right estimator.

    For every user of ``users`` (a Corpus, lists of item ids, ...; items unknown to the
    model are left out) ``n_particles`` sequential particles give weights whose mean is an
    unbiased estimate of p(w_d) (:func:`gibbslda.sampler.left_to_right`); the log of that
    mean is summed over users and divided by their tokens. Its Monte Carlo error shrinks
    as 1 / sqrt(n_particles) per user; the log is biased low by about half the relative
    variance of the weights (Jensen), which is small for short users. ``per_user=True``
    returns the D per-user log estimates instead.
    """
    from gibbslda import sampler

    corpus = as_corpus(users, vocabulary=model.item_ids_, drop_empty=False)
    if corpus.n_tokens == 0:
        raise ValueError("no token of these users has an item the model knows")
    log_w = sampler.left_to_right(corpus.indptr, corpus.words, model.topic_word_,
                                  model.alpha_, n_particles=n_particles, seed=seed)
    top = log_w.max(axis=1, keepdims=True)
    log_p = top[:, 0] + np.log(np.exp(log_w - top).mean(axis=1))
    return log_p if per_user else float(log_p.sum() / corpus.n_tokens)


def perplexity(log_likelihood_per_token: float) -> float:
    """exp(-log-likelihood per token): the effective number of equally likely items."""
    return float(np.exp(-log_likelihood_per_token))


def heldout_parts(model, prepared) -> tuple[Corpus, Corpus, np.ndarray]:
    """What a ranking evaluation of ``model`` on a prepared split compares, row-aligned.

    With held-out users (parts ``"observed"`` and ``"hidden"``, from
    :class:`gibbslda.preprocess.HeldOutUsers`) the users are those held out: their
    observed items are known, their hidden items are the truth and their topic mix is
    folded in from the observed items (``model.transform``). Otherwise (a ``"test"`` part,
    from ``LeaveLastN`` or ``TimeCutoff``) the users are the test users the model was
    trained on: their training items are known, their test items are the truth and their
    topic mix is the fitted ``doc_topic_``; test users the model has not seen are left out.

    Parameters
    ----------
    model : a fitted :class:`gibbslda.LDA`, trained on ``prepared``'s ``"train"`` part.
    prepared : :class:`gibbslda.preprocess.Prepared` (from ``read_prepared``).

    Returns
    -------
    (known, truth, theta): two :class:`Corpus` of the same D users in the same order, and
    theta (D, K), the users' topic mixes, as :func:`evaluate_rankings` takes them.

    Raises
    ------
    ValueError
        ``prepared`` has no held-out part.
    """
    parts = set(prepared.parts)
    if {"observed", "hidden"} <= parts:
        observed, hidden = prepared.corpus("observed"), prepared.corpus("hidden")
        return observed, hidden, model.transform(observed)
    if "test" not in parts:
        raise ValueError("this prepared folder has no held-out part: prepare it with "
                         "--split heldout, last or time")
    test = prepared.corpus("test")
    rows = {u: d for d, u in enumerate(model.user_ids_.tolist())}
    keep = [d for d, u in enumerate(test.user_ids.tolist()) if u in rows]
    users = np.array([rows[u] for u in test.user_ids[keep].tolist()], dtype=np.int64)
    test = _subset(test, np.array(keep, dtype=np.int64))
    return _subset(model.corpus_, users), test, model.doc_topic(users)


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
