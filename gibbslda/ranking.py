"""Top-k ranking evaluation: recall, NDCG, precision, hit rate, MAP, coverage, novelty.

Every metric ranks *all* items for a user, with the user's known (training) items left
out, and compares the top k with the user's held-out items (binary relevance).

Conventions
-----------
- Ties: items are ordered by score, highest first, and equal scores by lower item index,
  so a ranking is a deterministic function of the scores (and every top-k list is a
  prefix of the top-K list for K > k): :func:`gibbslda.topn.top_k` ranks.
- A score of ``-inf`` means "never recommend" (known items are set to it). A user with
  fewer than k other items gets a list padded with -1, and the padding counts as misses.
- NaN scores are an error.
- Held-out items that the user also has in ``train`` are dropped from the truth: they
  are excluded from the ranking, so they could never be hits.
- Users left with no held-out item are not evaluated: their per-user values are NaN and
  they are left out of every mean, of coverage and of novelty.
- ``candidates`` (optional) marks the items a model can recommend, for example the items
  some training user has (an item first seen in the test period was never learnt); the
  others score ``-inf`` for everyone. Held-out items outside the candidates stay in the
  truth and count as misses (``n_unscorable`` says how many there were).

Normalisations, with ``n`` the user's number of held-out items and ``h_i`` = 1 when the
item at rank i (1-based) is held out:

- Recall@k = sum h_i / min(k, n) (Liang et al. 2018), so a perfect list scores 1 even
  when n > k.
- Precision@k = sum h_i / k.  HitRate@k = 1 if any h_i else 0.
- NDCG@k = DCG / IDCG, DCG = sum h_i / log2(i + 1), IDCG = sum_{i <= min(k, n)} 1 / log2(i + 1).
- MAP@k: mean over users of AP@k = sum_i h_i * Precision@i / min(k, n).
- Coverage@k: share of all items that appear in at least one evaluated user's top k.
- Novelty@k: per user, mean over the recommended items of -log2 p(item), where p(item) is
  the share of training users who have the item (:func:`item_popularity`; items no
  training user has count as one user's worth). Reported as the mean over users.

References
----------
Liang, Krishnan, Hoffman & Jebara (2018), "Variational autoencoders for collaborative
filtering", WWW.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda import _validate
from gibbslda.corpus import Corpus
from gibbslda.topn import top_k

_CHUNK_SCORES = 2 ** 22  # default scores per chunk: about 160 MB of working memory
_METRICS = ("recall", "ndcg", "precision", "hit_rate", "average_precision", "novelty")


@dataclass(frozen=True)
class RankingMetrics:
    """Metrics at one cutoff ``k``.

    Per-user arrays have shape (n_users,) in the row order of ``heldout``; they are NaN
    for users with no held-out item (outside ``train``), who are not evaluated.

    Attributes
    ----------
    k : the cutoff.
    n_heldout : int64 (n_users,)  held-out items per user, after dropping known ones.
    recall, ndcg, precision, hit_rate, average_precision, novelty : float64 (n_users,).
    coverage : share of all items in any evaluated user's top k.
    n_users : number of users evaluated.
    n_unscorable : held-out items (user-item pairs) of the evaluated users outside
        ``candidates``: misses by construction (0 without ``candidates``).
    """

    k: int
    n_heldout: np.ndarray
    recall: np.ndarray
    ndcg: np.ndarray
    precision: np.ndarray
    hit_rate: np.ndarray
    average_precision: np.ndarray
    novelty: np.ndarray
    coverage: float
    n_users: int
    n_unscorable: int = 0

    def means(self) -> dict[str, float]:
        """Mean of each per-user metric over the evaluated users, plus coverage."""
        out = {name: float(np.nanmean(getattr(self, name))) for name in _METRICS}
        out["coverage"] = self.coverage
        return out


def item_popularity(train, n_items: int | None = None) -> np.ndarray:
    """Share of training users who have each item, float64 (n_items,), in (0, 1].

    ``train`` is a users x items CSR (see :func:`ranking_metrics`). Items no user has get
    1 / n_users (as if one user had them), so their -log2 popularity stays finite.
    """
    indptr, indices, hint = _as_csr(train, "train")
    n_items = _n_items(n_items, hint, indices, "train")
    n_users = max(indptr.shape[0] - 1, 1)
    counts = np.bincount(indices, minlength=n_items)[:n_items]
    return np.maximum(counts, 1) / n_users


def ranking_metrics(scorer, train, heldout, k=(10, 20), *, item_popularity=None,
                    n_items: int | None = None, chunk_size: int | None = None,
                    candidates=None) -> dict[int, RankingMetrics]:
    """Rank all items for every user with held-out items and score the top k lists.

    Parameters
    ----------
    scorer : how to score users, one of
        - a float array (n_users, n_items);
        - a callable ``f(users) -> (len(users), n_items)`` taking int64 row numbers, for
          example ``lambda u: theta[u] @ phi`` for an LDA model;
        - a fitted baseline (an object with ``scores(users, history)``, see
          :mod:`gibbslda.baselines`): it is called with ``history=train``, so it scores
          the users from their known items.
    train : users x items CSR of each user's known items, excluded from their ranking:
        a pair ``(indptr, indices)`` (a third array of values is ignored), a scipy CSR
        matrix, or a :class:`~gibbslda.corpus.Corpus`. Repeats count once.
    heldout : the held-out items of the same users in the same order, in the same forms.
    k : cutoff or cutoffs, integers >= 1.
    item_popularity : optional float (n_items,) in (0, 1], the popularity used by
        novelty. Default: :func:`item_popularity` of ``train``. When the evaluated users
        are not the training users (held-out users), pass the training users' instead.
    n_items : catalogue size; by default the score matrix's width.
    chunk_size : users scored at a time; the working memory is about 40 bytes x
        chunk_size x n_items. Default: about 4M scores a chunk (max(1, 2**22 // n_items)).
    candidates : optional bool (n_items,), the items that may be recommended (default:
        all). The others are never recommended; held-out items among them count as misses.

    Returns
    -------
    dict mapping each k to its :class:`RankingMetrics`.
    """
    ks = _check_ks(k)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(
            chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    t_indptr, t_indices, t_hint = _as_csr(train, "train")
    h_indptr, h_indices, h_hint = _as_csr(heldout, "heldout")
    n_users = h_indptr.shape[0] - 1
    if t_indptr.shape[0] - 1 != n_users:
        raise ValueError(f"train has {t_indptr.shape[0] - 1} users but heldout has "
                         f"{n_users}: pass the two parts for the same users in one order")
    score_rows, n_items = _resolve_scorer(scorer, (t_indptr, t_indices), n_users,
                                          n_items if n_items is not None else
                                          t_hint if t_hint is not None else h_hint)
    truth_ptr, truth = _minus(h_indptr, h_indices, t_indptr, t_indices)
    n_heldout = np.diff(truth_ptr)
    users = np.flatnonzero(n_heldout > 0)
    if users.size == 0:
        raise ValueError("no user has a held-out item outside train: nothing to evaluate")
    acc = _Accumulator(ks, n_users, n_heldout)
    popularity = None
    if n_items is not None:
        n_items = _n_items(n_items, None, t_indices, "train")
        _check_range(truth, n_items, "heldout")
        popularity = _check_popularity(item_popularity, (t_indptr, t_indices), n_items)
        banned = _banned(candidates, n_items)
    start = 0
    while start < users.size:
        size = chunk_size or (max(1, _CHUNK_SCORES // n_items) if n_items else 64)
        rows = users[start:start + size]
        start += rows.size
        block = np.array(score_rows(rows), dtype=np.float64)
        if block.ndim != 2 or block.shape[0] != rows.size:
            raise ValueError(f"the scorer returned shape {block.shape} for {rows.size} "
                             "users; it must return (len(users), n_items)")
        if popularity is None:  # a callable scorer: its first block gives n_items
            n_items = _n_items(block.shape[1], None, t_indices, "train")
            _check_range(truth, n_items, "heldout")
            popularity = _check_popularity(item_popularity, (t_indptr, t_indices), n_items)
            banned = _banned(candidates, n_items)
        if block.shape[1] != n_items:
            raise ValueError(f"the scorer returned {block.shape[1]} items per user, "
                             f"expected n_items = {n_items}")
        r, w = _pairs(t_indptr, t_indices, rows)
        block[r, w] = -np.inf
        block[:, banned] = -np.inf
        top = top_k(block, max(ks))
        r, w = _pairs(truth_ptr, truth, rows)
        relevant = np.zeros(block.shape, dtype=bool)
        relevant[r, w] = True
        acc.add(rows, top, relevant, -np.log2(popularity))
    return acc.result(n_items, int(np.isin(truth, banned).sum()))


def evaluate_rankings(scorer, train, heldout, k=(10, 20), **options) -> dict[str, list]:
    """Mean metrics per cutoff as a table: a dict of equal-length columns.

    Columns: ``k``, ``n_users``, ``recall``, ``ndcg``, ``precision``, ``hit_rate``,
    ``map``, ``coverage``, ``novelty``; one row per cutoff, in increasing k.
    ``polars.DataFrame(table)`` turns it into a frame. Arguments and keyword options are
    those of :func:`ranking_metrics`, which gives the per-user values.
    """
    table: dict[str, list] = {name: [] for name in (
        "k", "n_users", "recall", "ndcg", "precision", "hit_rate", "map", "coverage",
        "novelty")}
    for cutoff, metrics in ranking_metrics(scorer, train, heldout, k, **options).items():
        row = {"k": cutoff, "n_users": metrics.n_users, **metrics.means()}
        row["map"] = row.pop("average_precision")
        for name, column in table.items():
            column.append(row[name])
    return table


class _Accumulator:
    """Per-user metric arrays for every cutoff, filled one chunk of users at a time."""

    def __init__(self, ks, n_users, n_heldout):
        self.ks, self.n_heldout = ks, n_heldout
        self.values = {(k, m): np.full(n_users, np.nan) for k in ks for m in _METRICS}
        self.seen = {k: None for k in ks}
        self.n_users = 0

    def add(self, rows, top, relevant, self_information):
        valid = top >= 0
        hits = np.take_along_axis(relevant, np.where(valid, top, 0), axis=1) & valid
        info = np.where(valid, self_information[np.where(valid, top, 0)], 0.0)
        n = self.n_heldout[rows]
        self.n_users += rows.size
        for k in self.ks:
            h = hits[:, :k]
            n_hits = h.sum(axis=1)
            denom = np.minimum(k, n)
            discount = 1.0 / np.log2(np.arange(2, k + 2))
            ideal = np.cumsum(discount)[denom - 1]
            at_i = np.cumsum(h, axis=1) / np.arange(1, k + 1)
            n_valid = valid[:, :k].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                novelty = info[:, :k].sum(axis=1) / n_valid
            for name, value in (("recall", n_hits / denom), ("ndcg", h @ discount / ideal),
                                ("precision", n_hits / k), ("hit_rate", n_hits > 0),
                                ("average_precision", (at_i * h).sum(axis=1) / denom),
                                ("novelty", novelty)):
                self.values[k, name][rows] = value
            shown = np.unique(top[:, :k][valid[:, :k]])
            self.seen[k] = shown if self.seen[k] is None else np.union1d(self.seen[k], shown)

    def result(self, n_items, n_unscorable):
        return {k: RankingMetrics(
            k=k, n_heldout=self.n_heldout,
            **{name: self.values[k, name] for name in _METRICS},
            coverage=float(self.seen[k].size / n_items) if n_items else 0.0,
            n_users=self.n_users, n_unscorable=n_unscorable) for k in self.ks}


def _resolve_scorer(scorer, history, n_users, n_items):
    """A function rows -> score block, and the catalogue size where it is known."""
    if isinstance(scorer, np.ndarray):
        if scorer.ndim != 2 or scorer.shape[0] != n_users:
            raise ValueError(f"the score matrix must have shape (n_users={n_users}, "
                             f"n_items), got {scorer.shape}")
        if n_items is not None and scorer.shape[1] != n_items:
            raise ValueError(f"the score matrix has {scorer.shape[1]} items but n_items "
                             f"is {n_items}")
        return (lambda rows: scorer[rows]), scorer.shape[1]
    method = getattr(scorer, "scores", None)
    if callable(method):
        fitted = getattr(scorer, "n_items_", None)
        if fitted is not None and n_items is not None and fitted != n_items:
            raise ValueError(f"the baseline was fitted on {fitted} items but the data "
                             f"has n_items = {n_items}")
        return (lambda rows: method(rows, history=history)), \
            fitted if fitted is not None else n_items
    if callable(scorer):
        return scorer, n_items
    raise TypeError(f"scorer must be a score matrix, a callable users -> scores or a "
                    f"fitted baseline, got {type(scorer).__name__}")


def _as_csr(x, name: str):
    """(indptr int64, indices int64, n_items or None) with each row's items unique, sorted."""
    hint = None
    if isinstance(x, Corpus):
        indptr, indices, hint = x.indptr, x.words, x.n_items
    elif hasattr(x, "indptr") and hasattr(x, "indices"):
        if getattr(x, "format", "csr") != "csr":
            raise TypeError(f"{name} must be a CSR matrix (users in rows), got format "
                            f"{x.format!r}: convert it with .tocsr()")
        indptr, indices = x.indptr, x.indices
        hint = int(x.shape[1]) if getattr(x, "shape", None) is not None else None
    elif isinstance(x, (tuple, list)) and len(x) in (2, 3):
        indptr, indices = x[0], x[1]
    else:
        raise TypeError(f"{name} must be a CSR pair (indptr, indices), a scipy CSR matrix "
                        f"or a Corpus, got {type(x).__name__}")
    indptr, indices = _validate.as_csr(indptr, indices, prefix=f"{name}: ",
                                       ids_dtype=np.int64)
    width = int(indices.max()) + 1 if indices.size else 1
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    keys = np.unique(rows * width + indices)
    indptr = np.zeros_like(indptr)
    np.cumsum(np.bincount(keys // width, minlength=indptr.size - 1), out=indptr[1:])
    return indptr, keys % width, hint


def _pairs(indptr, indices, rows):
    """(position in ``rows``, item) of every item of the given users, as two arrays."""
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    offsets = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    take = np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], lengths)
    return np.repeat(np.arange(rows.size), lengths), indices[take]


def _minus(indptr, indices, other_ptr, other):
    """Each row of (indptr, indices) without the items its row in ``other`` has."""
    width = int(max(indices.max(initial=0), other.max(initial=0))) + 1
    rows = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    other_rows = np.repeat(np.arange(other_ptr.size - 1, dtype=np.int64), np.diff(other_ptr))
    keep = ~np.isin(rows * width + indices, other_rows * width + other)
    out = np.zeros_like(indptr)
    np.cumsum(np.bincount(rows[keep], minlength=indptr.size - 1), out=out[1:])
    return out, indices[keep]


def _check_ks(k) -> list[int]:
    ks = [k] if isinstance(k, (int, np.integer)) else list(k) if hasattr(k, "__iter__") \
        else None
    if not ks or any(isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer))
                     or c < 1 for c in ks):
        raise ValueError(f"k must be an integer >= 1 or a sequence of them, got {k!r}")
    return sorted({int(c) for c in ks})


def _check_range(indices, n_items, name):
    if indices.size and indices.max() >= n_items:
        raise ValueError(f"{name} has item index {indices.max()} but there are only "
                         f"{n_items} items (scores per user)")


def _banned(candidates, n_items) -> np.ndarray:
    """Indices of the items outside ``candidates`` (none when it is None)."""
    if candidates is None:
        return np.zeros(0, dtype=np.int64)
    mask = np.asarray(candidates)
    if mask.dtype != np.bool_ or mask.shape != (n_items,):
        raise ValueError(f"candidates must be a bool array of shape ({n_items},), one flag "
                         f"per item, got {mask.dtype} {mask.shape}")
    return np.flatnonzero(~mask)


def _check_popularity(popularity, train, n_items):
    if popularity is None:
        return item_popularity(train, n_items)
    popularity = np.asarray(popularity, dtype=np.float64)
    if popularity.shape != (n_items,):
        raise ValueError(f"item_popularity must have shape ({n_items},), got "
                         f"{popularity.shape}")
    if not np.all((popularity > 0) & (popularity <= 1)):
        raise ValueError("item_popularity must be shares in (0, 1]; use "
                         "gibbslda.ranking.item_popularity(train_users)")
    return popularity


def _n_items(n_items, hint, indices, name: str) -> int:
    """The catalogue size: given, else the matrix's width, else the largest index + 1."""
    if n_items is None:
        n_items = hint if hint is not None else int(indices.max(initial=-1)) + 1
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be an integer >= 1, got {n_items!r}")
    _check_range(indices, n_items, name)
    return int(n_items)
