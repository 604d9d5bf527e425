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
  :func:`heldout_parts` reads what they rank from a prepared split;
- ranking protocols on a :class:`~gibbslda.corpus.Corpus` (:func:`protocol_split`):
  held-out users, leave-last-n and a global time cutoff (the split specs of
  :mod:`gibbslda.preprocess`, applied to tokens with their event times), and
  :func:`compare` to tabulate several scorers on one split.

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
from gibbslda.preprocess.splits import (HeldOutUsers, LeaveLastN, TimeCutoff, _iso, _micros,
                                        _split, _split_options)
from gibbslda.ranking import evaluate_rankings, item_popularity, ranking_metrics

__all__ = ["UserSplit", "split_users", "completion_log_likelihood",
           "left_to_right_log_likelihood", "perplexity", "coherence", "diversity",
           "coherence_scores", "top_items", "ranking_metrics", "evaluate_rankings",
           "item_popularity", "heldout_parts", "HeldOutUsers", "LeaveLastN", "TimeCutoff",
           "RankingSplit", "protocol_split", "prepared_split", "parse_protocol", "lda_scorer",
           "compare"]


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
    ``observed`` and ``hidden`` list the same users in the same order; every part keeps
    the corpus's ``times``.
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
    for d in test:  # token positions, shuffled (the draws of shuffling the tokens)
        tokens = corpus.indptr[d] + rng.permutation(corpus.indptr[d + 1] - corpus.indptr[d])
        n_hidden = min(max(int(round(hidden_fraction * tokens.shape[0])), 1),
                       tokens.shape[0] - 1)
        hidden.append(np.sort(tokens[:n_hidden]))  # in corpus order: by item, then time
        observed.append(np.sort(tokens[n_hidden:]))
    user_ids = corpus.user_ids[test]
    return UserSplit(train, _from_positions(corpus, observed, user_ids),
                     _from_positions(corpus, hidden, user_ids))


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


@dataclass(frozen=True)
class RankingSplit:
    """What a ranking protocol compares: a training corpus, and the evaluated users' known
    and held-out items, row-aligned.

    Attributes
    ----------
    train : Corpus  what every model fits on (times kept when the input had them).
    known : Corpus  each evaluated user's known items: the scorers' history, excluded from
        their ranking.
    truth : Corpus  each evaluated user's held-out items (the same users in the same order).
    rows : int64 (n_evaluated,) or None  each evaluated user's row in ``train``; None for
        held-out users, who are not in ``train`` (fold them in from ``known``).
    candidates : bool (n_items,)  items some training user has: the only ones a model
        fitted on ``train`` can recommend.
    n_unscorable : int  held-out (user, item) pairs outside ``candidates``: misses.
    n_cold_users : int  users with held-out items but no training history: not evaluated.
    protocol : str  what was done, in words.
    """

    train: Corpus
    known: Corpus
    truth: Corpus
    rows: np.ndarray | None
    candidates: np.ndarray
    n_unscorable: int
    n_cold_users: int
    protocol: str


def protocol_split(corpus: Corpus, protocol, *, seed: int = 0) -> RankingSplit:
    """Split a corpus for a ranking evaluation by one of the split specs of
    :mod:`gibbslda.preprocess` (the same code splits a prepared folder's pairs).

    A (user, item) pair goes to one side whole; its time is its first event.

    - ``HeldOutUsers(fraction, hidden_fraction)``: a seeded share of the users (with two
      items or more) is held out; a seeded ``hidden_fraction`` of each one's items is the
      truth, the rest is known. The others are ``train``. No times needed.
    - ``LeaveLastN(n)``: each user's ``n`` newest items (by first event; equal times
      broken by the seed) are the truth; users with at most ``n`` items stay whole. The
      user's events from the first held-out event on are dropped, so training sees each
      evaluated user's past only. Needs times.
    - ``TimeCutoff(at)``: a global cutoff (a date, or ``at`` in (0, 1): the share of the
      pairs first seen at or after it, as in prepare): training keeps the events before
      it; a user's truth is the items they first touched at or after it (new items
      only). Needs times.

    Held-out items that no training user has cannot be scored by a model fitted on
    ``train``: they stay in the truth as misses, counted in ``n_unscorable``; pass
    ``candidates`` to the metrics (:func:`compare` does). With a prepared folder's corpus
    a pair's time is its last event (prepare keeps a time per pair, not per event).

    Parameters
    ----------
    corpus : Corpus, with ``times`` for the time protocols.
    protocol : HeldOutUsers | LeaveLastN | TimeCutoff
    seed : seeds every random choice.
    """
    kind = type(protocol).__name__
    if not isinstance(protocol, (HeldOutUsers, LeaveLastN, TimeCutoff)):
        raise TypeError("protocol must be HeldOutUsers(fraction, hidden_fraction), "
                        f"LeaveLastN(n) or TimeCutoff(at), got {kind}")
    _split_options(protocol)
    timed = not isinstance(protocol, HeldOutUsers)
    if timed and corpus.times is None:
        raise ValueError(f"{kind} needs event times: build the corpus with "
                         "Corpus.from_frame(..., time='timestamp')")
    users, starts, pair, first = _pairs_in(corpus, timed)
    u = np.unique(users[starts], return_inverse=True)[1].astype(np.int64)
    part = _split(u, first, protocol, seed)[0][pair]  # of each token
    if isinstance(protocol, HeldOutUsers):
        train, known, truth = (_tokens(corpus, part == code) for code in (0, 1, 2))
        return _ranking_split(train, known, truth, None, 0, f"{protocol}")
    test = part == 1
    if isinstance(protocol, TimeCutoff):
        cutoff = (first[part[starts] == 1].min() if isinstance(protocol.at, float)
                  else _micros(protocol.at))
        limit = np.full(corpus.n_users, cutoff, dtype=np.int64)
        what = f"TimeCutoff(at={_iso(cutoff)})"
    else:
        limit = np.full(corpus.n_users, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(limit, users[test], corpus.times[test])
        what = f"{protocol}"
    train = _tokens(corpus, ~test & (corpus.times < limit[users]))
    truth = _tokens(corpus, test)
    rows = {u: d for d, u in enumerate(train.user_ids.tolist())}
    seen = np.array([u in rows for u in truth.user_ids.tolist()], dtype=bool)
    users_in_train = np.array([rows[u] for u in truth.user_ids[seen].tolist()],
                              dtype=np.int64)
    truth = _subset(truth, np.flatnonzero(seen))
    return _ranking_split(train, _subset(train, users_in_train), truth, users_in_train,
                          int((~seen).sum()), what)


def _pairs_in(corpus: Corpus, timed: bool):
    """Each token's user; the first token of each (user, item) pair (tokens are grouped by
    user and item); each token's pair; each pair's first time (zeros when not ``timed``)."""
    users = np.repeat(np.arange(corpus.n_users, dtype=np.int64), corpus.lengths)
    keys = users * max(corpus.n_items, 1) + corpus.words
    new = np.r_[True, keys[1:] != keys[:-1]] if keys.size else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    first = (np.minimum.reduceat(corpus.times, starts) if timed and starts.size
             else np.zeros(starts.size, dtype=np.int64))
    return users, starts, np.cumsum(new) - 1, first


def parse_protocol(text: str):
    """A protocol from its short form: ``heldout[:FRACTION]`` (users held out, default 0.2,
    half of each one's items hidden), ``last[:N]`` (default 1) or ``time[:AT]`` (a date or
    ISO time, or the share of the pairs first seen at or after the cutoff; default 0.2)."""
    name, _, value = str(text).partition(":")
    try:
        if name == "heldout":
            return HeldOutUsers(float(value) if value else 0.2, 0.5)
        if name == "last":
            return LeaveLastN(int(value) if value else 1)
        if name == "time":
            try:
                return TimeCutoff(float(value) if value else 0.2)
            except ValueError:
                return TimeCutoff(value)
    except ValueError:
        pass
    raise ValueError(f"a protocol is heldout[:FRACTION], last[:N] or time[:DATE or "
                     f"FRACTION], got {text!r}")


def lda_scorer(model, split: RankingSplit):
    """theta . phi of a model fitted on ``split.train`` for the split's evaluated users:
    their fitted mixes (``doc_topic``), or, for held-out users, mixes folded in from their
    known items (``transform``). A callable users -> scores for :func:`compare`."""
    theta = (model.transform(split.known) if split.rows is None
             else model.doc_topic(split.rows))
    phi = model.topic_word_
    return lambda users: theta[users] @ phi


def compare(split: RankingSplit, scorers: dict, k=(20,)) -> dict[str, list]:
    """:func:`evaluate_rankings` of every scorer on one split, as one table.

    ``scorers`` maps a name to a scorer of the split's evaluated users (a score matrix, a
    callable users -> scores, or a baseline fitted on ``split.train``: it scores them from
    ``split.known``). Only ``split.candidates`` are recommended; novelty uses the
    popularity among the training users. Columns: ``model``, those of
    :func:`evaluate_rankings`, ``n_unscorable`` and ``n_cold_users``.
    """
    popularity = item_popularity(split.train, split.train.n_items)
    table: dict[str, list] = {"model": []}
    for name, scorer in scorers.items():
        part = evaluate_rankings(scorer, split.known, split.truth, k=k,
                                 candidates=split.candidates,
                                 item_popularity=popularity, n_items=split.train.n_items)
        for column, values in part.items():
            table.setdefault(column, []).extend(values)
        table["model"].extend([name] * len(part["k"]))
    n_rows = len(table["model"])
    table["n_unscorable"] = [split.n_unscorable] * n_rows
    table["n_cold_users"] = [split.n_cold_users] * n_rows
    return table


def prepared_split(model, prepared) -> RankingSplit:
    """The prepared folder's own held-out part (:func:`heldout_parts`) as a
    :class:`RankingSplit`, with its ``"train"`` part as ``train`` (``rows`` is None: the
    scorers fold the users in from ``known``)."""
    known, truth, _ = heldout_parts(model, prepared)
    return _ranking_split(prepared.corpus("train"), known, truth, None, 0, "prepared split")


def _ranking_split(train, known, truth, rows, n_cold, what) -> RankingSplit:
    if truth.n_users == 0:
        raise ValueError(f"{what} leaves no user with both training and held-out items: "
                         "choose a later cutoff, a smaller n or a larger fraction")
    candidates = np.bincount(train.words, minlength=train.n_items)[:train.n_items] > 0
    users = np.repeat(np.arange(truth.n_users, dtype=np.int64), truth.lengths)
    pairs = np.unique(users * max(truth.n_items, 1) + truth.words)
    n_unscorable = int((~candidates[pairs % max(truth.n_items, 1)]).sum())
    return RankingSplit(train, known, truth, rows, candidates, n_unscorable, n_cold, what)


def _tokens(corpus: Corpus, mask: np.ndarray) -> Corpus:
    """The tokens where ``mask`` holds, users left with none dropped; times kept."""
    users = np.repeat(np.arange(corpus.n_users, dtype=np.int64), corpus.lengths)[mask]
    lengths = np.bincount(users, minlength=corpus.n_users)
    keep = lengths > 0
    indptr = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=indptr[1:])
    return Corpus(indptr, np.ascontiguousarray(corpus.words[mask]), corpus.user_ids[keep],
                  corpus.item_ids,
                  times=None if corpus.times is None else corpus.times[mask])


def _subset(corpus: Corpus, users: np.ndarray) -> Corpus:
    lengths = corpus.lengths[users]
    indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # token j of the subset is token j - indptr[r] + corpus.indptr[users[r]] of the corpus
    take = np.arange(indptr[-1]) + np.repeat(corpus.indptr[users] - indptr[:-1], lengths)
    return Corpus(indptr, corpus.words[take], corpus.user_ids[users], corpus.item_ids,
                  times=None if corpus.times is None else corpus.times[take])


def _from_positions(corpus: Corpus, lists, user_ids) -> Corpus:
    """The tokens at the given positions of ``corpus``, one list per user, times kept."""
    indptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in lists], out=indptr[1:])
    take = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    return Corpus(indptr, np.ascontiguousarray(corpus.words[take]), np.asarray(user_ids),
                  corpus.item_ids, times=None if corpus.times is None else corpus.times[take])
