"""The validation split that :func:`gibbslda.rankers.choose` learns on, and its judge.

Carved from the training corpus only (the test part is never looked at). Validation users:
a seeded ``VALIDATION_SHARE`` of the training users with at least 4 tokens (at least 1
user), capped at ``VALIDATION_USERS`` and at max(100, ``VALIDATION_VALUES`` // V); each
hides their last ``HIDDEN_SHARE`` tokens by time (a seeded random part without times).
:class:`Judge` scores a dense (validation users x V) block by Recall@``K_VALIDATION`` on
the hidden items, in one pass a row (:func:`gibbslda._kernels.judge.top_hits`), blends
included without building the blended block.
"""
from __future__ import annotations

import numpy as np

from gibbslda._kernels.judge import top_hits
from gibbslda.corpus import Corpus

VALIDATION_USERS, VALIDATION_SHARE, HIDDEN_SHARE, K_VALIDATION = 2000, 0.5, 0.3, 20
VALIDATION_VALUES = 2 ** 25  # validation users x items scored at once (256 MB float64)
_VALIDATION_SEED = 15  # spawn key of the validation split's stream


def split(corpus: Corpus, seed_entropy) -> tuple:
    """(hidden token indices, the training corpus without them, observed, hidden): the
    validation users' parts (see the module docstring), seeded by ``seed_entropy``."""
    rng = np.random.default_rng([_VALIDATION_SEED, seed_entropy])
    lengths = np.diff(corpus.indptr)
    eligible = np.flatnonzero(lengths >= 4)
    n_val = min(VALIDATION_USERS, max(1, int(VALIDATION_SHARE * eligible.size)),
                max(100, VALIDATION_VALUES // corpus.n_items))
    users = np.sort(rng.choice(eligible, size=min(n_val, eligible.size), replace=False))
    hide = np.zeros(corpus.n_tokens, dtype=bool)
    for d in users:
        start, stop = corpus.indptr[d], corpus.indptr[d + 1]
        n_hidden = max(1, int(round(HIDDEN_SHARE * (stop - start))))
        if corpus.times is not None:
            order = np.argsort(corpus.times[start:stop], kind="stable")
        else:
            order = rng.permutation(stop - start)
        hide[start + order[-n_hidden:]] = True
    keep_train = subset_tokens(corpus, ~hide, np.arange(corpus.n_users))
    return (np.flatnonzero(hide), keep_train, subset_tokens(corpus, ~hide, users),
            subset_tokens(corpus, hide, users))


class Judge:
    """Recall@``K_VALIDATION`` of a dense (validation users x V) score block, as
    :func:`gibbslda.ranking.ranking_metrics` defines it (observed items excluded, hidden
    items the user had observed dropped from the truth), without its per-call set-up;
    items tied with the K-th score are taken in column order (a choice between settings
    never hangs on such ties). ``judge(block)``, or ``judge(lda, other, b)`` for the blend
    (1 - b) lda + b other, computed on the fly."""

    def __init__(self, observed: Corpus, hidden: Corpus):
        shape = (observed.n_users, observed.n_items)
        self.seen = np.zeros(shape, dtype=bool)
        self.seen[np.repeat(np.arange(observed.n_users), np.diff(observed.indptr)),
                  observed.words] = True
        truth = np.zeros(shape, dtype=bool)
        truth[np.repeat(np.arange(hidden.n_users), np.diff(hidden.indptr)),
              hidden.words] = True
        truth &= ~self.seen
        self.truth = truth
        self.n_truth = truth.sum(axis=1)

    def __call__(self, block: np.ndarray, other=None, b: float = 0.0) -> float:
        width = min(K_VALIDATION, block.shape[1])
        hits = np.empty(block.shape[0], dtype=np.int64)
        top_hits(block, block if other is None else other, 1.0 - b, float(b), self.seen,
                 self.truth, np.int64(width), hits)
        judged = self.n_truth > 0
        return float(np.mean(hits[judged] / np.minimum(K_VALIDATION, self.n_truth[judged])))


def new_items(observed: Corpus, hidden: Corpus) -> np.ndarray:
    """Per hidden token: whether its user's observed part lacks its item."""
    width = np.int64(observed.n_items)
    keys = np.repeat(np.arange(observed.n_users, dtype=np.int64),
                     np.diff(observed.indptr)) * width + observed.words
    hid = np.repeat(np.arange(hidden.n_users, dtype=np.int64),
                    np.diff(hidden.indptr)) * width + hidden.words
    return ~np.isin(hid, keys)


def subset_tokens(corpus: Corpus, keep: np.ndarray, users: np.ndarray) -> Corpus:
    """The users' tokens where ``keep`` (None: all), as a Corpus over the same items
    (times kept)."""
    starts = corpus.indptr[users]
    lengths = corpus.indptr[users + 1] - starts
    first = np.cumsum(lengths) - lengths
    take = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - first, lengths)
    owner = np.repeat(np.arange(users.size), lengths)
    if keep is not None:
        take, owner = take[keep[take]], owner[keep[take]]
    indptr = np.zeros(users.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=users.size), out=indptr[1:])
    times = None if corpus.times is None else corpus.times[take]
    return Corpus(indptr, corpus.words[take], corpus.user_ids[users], corpus.item_ids,
                  times=times)
