"""Non-topic baselines for the ranking metrics: popularity, item-kNN and EASE.

Each baseline has ``fit(train, n_items=None)`` on a users x items matrix and
``scores(users, history=None)``, which returns float64 (len(users), n_items) scores for the
given rows of ``history`` (by default the training matrix itself), so a fitted baseline can
be passed straight to :func:`gibbslda.ranking.ranking_metrics` as the scorer. Matrices are
CSR pairs ``(indptr, indices)``, scipy CSR matrices or :class:`~gibbslda.corpus.Corpus`
objects; interactions are binary (repeats count once). No scipy needed: the sparse work
is numpy and two small numba kernels.

Glossary of the kernels: ``d`` a user, ``w`` and ``v`` items; ``user_ptr`` (int64) /
``user_items`` (int32) the users' items in CSR, ``item_ptr`` / ``item_users`` the items'
users (the same matrix in CSC).

References
----------
Deshpande & Karypis (2004), "Item-based top-N recommendation algorithms", ACM TOIS 22(1).
Steck (2019), "Embarrassingly shallow autoencoders for sparse data", WWW.
"""
from __future__ import annotations

import numpy as np

from gibbslda._kernels.neighbours import (cooccurrence, cosine_neighbours, dense_row_sums,
                                          sparse_product)
from gibbslda.errors import NotFittedError
from gibbslda.ranking import _as_csr, _n_items, _pairs


class _Baseline:
    """fit() input handling and the history rows each scores() call works on."""

    def _fit_input(self, train, n_items):
        indptr, indices, hint = _as_csr(train, "train")
        self.n_items_ = _n_items(n_items, hint, indices, "train")
        self._train = (indptr, indices)
        return indptr, indices

    def _rows(self, users, history):
        """(position in ``users``, item) of the users' distinct items, and the row count."""
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call "
                                 "fit(train) first")
        indptr, indices = self._train if history is None else _history(history)
        users = np.asarray(users)
        if users.ndim != 1 or (users.size and not np.issubdtype(users.dtype, np.integer)):
            raise TypeError(f"users must be a 1-D array of row numbers, got "
                            f"{users.dtype} with shape {users.shape}")
        n_rows = indptr.shape[0] - 1
        if users.size and (users.min() < 0 or users.max() >= n_rows):
            raise ValueError(f"users must be row numbers in [0, {n_rows}), got "
                             f"{users.min()}..{users.max()}")
        r, w = _pairs(indptr, indices, users.astype(np.int64))
        if w.size and (w.min() < 0 or w.max() >= self.n_items_):
            raise ValueError(f"history has item indices outside [0, {self.n_items_}), the "
                             "items the baseline was fitted on")
        keys = np.unique(r * self.n_items_ + w)  # repeats count once
        return keys // self.n_items_, keys % self.n_items_, users.size


class Popularity(_Baseline):
    """Everyone gets the same list: items by the number of training users who have them.

    Attributes
    ----------
    item_counts_ : int64 (n_items,)  training users per item (the score).
    n_items_ : int
    """

    def fit(self, train, n_items: int | None = None) -> "Popularity":
        indptr, indices = self._fit_input(train, n_items)
        self.item_counts_ = np.bincount(indices, minlength=self.n_items_).astype(np.int64)
        return self

    def scores(self, users, history=None) -> np.ndarray:
        """float64 (len(users), n_items): each row is ``item_counts_``."""
        *_, n = self._rows(users, history)
        return np.tile(self.item_counts_.astype(np.float64), (n, 1))


class ItemKNN(_Baseline):
    """Item-based k nearest neighbours on cosine similarity of binary item columns.

    sim(v, w) = |U_v & U_w| / sqrt(|U_v| |U_w|) with U_v the training users of item v.
    Each item keeps its ``n_neighbors`` most similar other items (positive similarity
    only; ties to the lower item index), stored sparse as row v of ``similarity_``. A user
    with items H scores item w as sum over v in H of similarity_[v, w].

    Parameters
    ----------
    n_neighbors : int >= 1, neighbours kept per item.

    Attributes
    ----------
    similarity_ : (indptr int64 (n_items + 1,), indices int32, data float64) CSR of the
        kept similarities; each row is ordered by similarity, highest first.
    n_items_ : int
    """

    def __init__(self, n_neighbors: int = 100):
        self.n_neighbors = n_neighbors

    def fit(self, train, n_items: int | None = None) -> "ItemKNN":
        k = self.n_neighbors
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_neighbors must be an integer >= 1, got {k!r}")
        user_ptr, items = self._fit_input(train, n_items)
        n_items = self.n_items_
        users = np.repeat(np.arange(user_ptr.size - 1, dtype=np.int32), np.diff(user_ptr))
        order = np.argsort(items, kind="stable")
        item_ptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(items, minlength=n_items), out=item_ptr[1:])
        k = min(int(k), max(n_items - 1, 1))
        out_items = np.full((n_items, k), -1, dtype=np.int32)
        out_sims = np.zeros((n_items, k), dtype=np.float64)
        cosine_neighbours(item_ptr, np.ascontiguousarray(users[order]), user_ptr,
                           items.astype(np.int32), out_items, out_sims)
        kept = out_items >= 0
        indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(kept.sum(axis=1), out=indptr[1:])
        self.similarity_ = (indptr, out_items[kept], out_sims[kept])
        return self

    def scores(self, users, history=None) -> np.ndarray:
        """float64 (len(users), n_items): the user's binary history x ``similarity_``."""
        r, w, n = self._rows(users, history)
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=n), out=ptr[1:])
        out = np.zeros((n, self.n_items_), dtype=np.float64)
        sparse_product(ptr, w.astype(np.int32), *self.similarity_, out)
        return out


class EASE(_Baseline):
    """Steck's EASE on the ``max_items`` most popular items.

    B = I - P diag(1 / diag(P)), P = (X^T X + l2 I)^-1, so diag(B) = 0; a user with
    binary history x scores x B = x - (x P) / diag(P). The closed form inverts an m x m
    matrix, so only the ``max_items`` items with the most training users (ties to the
    lower index) are kept: the other items score ``-inf`` (never recommended) and are
    ignored in histories. With fewer training users n (holding a kept item) than m, the
    same P comes from an n x n inverse (Woodbury): P = (I - X^T (X X^T + l2 I)^-1 X) / l2,
    so the fit costs O(n^2 m + n^3) time instead of O(m^3), keeps X and the n x n inverse
    (8 n m + 8 n^2 bytes instead of B's 8 m^2), and a user scores
    x P = (x - (x X^T) (X X^T + l2 I)^-1 X) / l2 without B being built (on
    MovieLens-small, 609 users and 5000 kept items: a 609 x 609 inverse, not 5000 x
    5000). Both forms give the same scores up to rounding.

    Parameters
    ----------
    l2 : float > 0, the ridge penalty lambda.
    max_items : int >= 1, catalogue cap (memory 8 x max_items^2 bytes, a few times over).

    Attributes
    ----------
    items_ : int64 (m,)  the kept item indices, ascending; m = min(max_items, n_items).
    n_dropped_items_ : int  items left out by the cap (they are never recommended).
    weights_ : float64 (m, m)  B, rows and columns in the order of ``items_`` (built on
        first access when the fit took the n x n form).
    n_items_ : int

    References
    ----------
    Steck (2019), "Embarrassingly shallow autoencoders for sparse data", WWW.
    """

    def __init__(self, l2: float = 500.0, max_items: int = 5000):
        self.l2 = l2
        self.max_items = max_items

    def fit(self, train, n_items: int | None = None) -> "EASE":
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float, np.number)) \
                or not np.isfinite(self.l2) or self.l2 <= 0:
            raise ValueError(f"l2 must be a finite number > 0, got {self.l2!r}")
        m = self.max_items
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"max_items must be an integer >= 1, got {m!r}")
        user_ptr, items = self._fit_input(train, n_items)
        counts = np.bincount(items, minlength=self.n_items_)
        ranked = np.lexsort((np.arange(self.n_items_), -counts))
        self.items_ = np.sort(ranked[:m]).astype(np.int64)
        self.n_dropped_items_ = self.n_items_ - self.items_.size
        self._position = np.full(self.n_items_, -1, dtype=np.int64)
        self._position[self.items_] = np.arange(self.items_.size)
        pos = self._position[items]
        rows = np.repeat(np.arange(user_ptr.size - 1), np.diff(user_ptr))[pos >= 0]
        users = np.unique(rows)  # the users holding a kept item: the rows of X
        self._weights = self._dual = None
        if users.size < self.items_.size:
            x = np.zeros((users.size, self.items_.size), dtype=np.float64)
            x[np.searchsorted(users, rows), pos[pos >= 0]] = 1.0
            inner = x @ x.T
            inner[np.diag_indices_from(inner)] += float(self.l2)
            inverse = np.linalg.inv(inner)  # M = (X X^T + l2 I)^-1
            diagonal = (1.0 - np.einsum("ij,ij->j", x, inverse @ x)) / float(self.l2)
            self._dual = (x, inverse, diagonal)
            return self
        ptr = np.zeros(user_ptr.size, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=user_ptr.size - 1), out=ptr[1:])
        gram = np.zeros((self.items_.size, self.items_.size), dtype=np.float64)
        cooccurrence(ptr, pos[pos >= 0].astype(np.int32), gram)
        gram[np.diag_indices_from(gram)] += float(self.l2)
        self._weights = _zero_diagonal(np.linalg.inv(gram))
        return self

    @property
    def weights_(self) -> np.ndarray:
        if not hasattr(self, "_dual"):
            raise NotFittedError("this EASE is not fitted yet: call fit(train) first")
        if self._weights is None:  # the n x n form: P = (I - X^T (X X^T + l2 I)^-1 X) / l2
            x, inverse, _ = self._dual
            precision = -(x.T @ (inverse @ x))
            precision[np.diag_indices_from(precision)] += 1.0
            self._weights = _zero_diagonal(precision / float(self.l2))
        return self._weights

    def scores(self, users, history=None) -> np.ndarray:
        """float64 (len(users), n_items): x B on the kept items, -inf elsewhere."""
        r, w, n = self._rows(users, history)
        if not hasattr(self, "_dual"):
            raise NotFittedError("this EASE is not fitted yet: call fit(train) first")
        pos = self._position[w]
        out = np.full((n, self.n_items_), -np.inf)
        if self._dual is None:  # x B as the sum of B's rows of the user's items
            kept = pos >= 0
            ptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(r[kept], minlength=n), out=ptr[1:])
            part = np.zeros((n, self.items_.size), dtype=np.float64)
            dense_row_sums(ptr, pos[kept].astype(np.int32), self._weights, part)
            out[:, self.items_] = part
            return out
        # the n x n form: x B = x - (x P) / diag(P), x P = (x - (x X^T) M X) / l2
        x = np.zeros((n, self.items_.size), dtype=np.float64)
        x[r[pos >= 0], pos[pos >= 0]] = 1.0
        train, inverse, diagonal = self._dual
        xp = (x - ((x @ train.T) @ inverse) @ train) / float(self.l2)
        out[:, self.items_] = x - xp / diagonal
        return out


def _zero_diagonal(precision: np.ndarray) -> np.ndarray:
    """B = -P diag(1 / diag(P)) with its diagonal set to 0 (I - P diag(1 / diag(P)))."""
    weights = precision / -np.diag(precision)  # column j divided by -P_jj
    np.fill_diagonal(weights, 0.0)
    return weights


def _history(history):
    if _is_clean_pair(history):
        return history
    indptr, indices, _ = _as_csr(history, "history")
    return indptr, indices


def _is_clean_pair(x) -> bool:
    """A pair already in the canonical dtypes (as ranking_metrics passes it): skip the sort.

    Repeats are removed per chunk in ``_rows`` anyway, so only the structure matters here.
    """
    return (isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], np.ndarray)
            and isinstance(x[1], np.ndarray) and x[0].dtype == np.int64
            and x[1].dtype == np.int64 and x[0].ndim == 1 and x[0].size > 0
            and x[0][-1] == x[1].size)
