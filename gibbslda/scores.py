"""The sparse pieces of phi and theta that per-call paths read instead of dense matrices.

phi_kw = (n_kw + beta) / (n_k + V beta) is a sparse counts part (the non-zero n_kw, at most
one per token) plus one smoothing value beta / (n_k + V beta) per topic; a user's
theta_dk = (n_dk + alpha_k) / (n_d + sum alpha) comes from their own tokens. So one user's
recommendations, one item's phi column or one user's theta never need the users x topics
(D x K) or topics x items (K x V) matrices, nor the V x K integer counts behind them.

- :class:`Tables`: the item x topic counts by item and by topic (largest first), the
  per-topic denominators and each item's prior score: what the exact top N
  (:func:`gibbslda.topn.top_n_sparse`) reads. :func:`build_tables` builds it from a chain
  state in O(N + nnz log); a fitted :class:`gibbslda.LDA` caches it per chain state.
- :func:`theta_rows`, :func:`phi_columns`, :func:`topic_word`, :func:`doc_topic`: dense
  values, bit for bit those of ``doc_topic_`` and ``topic_word_`` (the same operations in
  the same order), for the rows or columns asked only.
- :class:`SparseTopicWord`: phi as CSR arrays (no scipy) plus the smoothing per topic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda import sampler as _sampler
from gibbslda._kernels import scores as _kernels

_THETA_VALUES = 2 ** 21  # users x topics values built at a time (16 MB of float64)


@dataclass(frozen=True, eq=False)
class Tables:
    """What per-call paths read of a chain state (see the module docstring).

    Attributes
    ----------
    item_ptr, item_topic, item_count : int64 (V + 1,), int32 (nnz,), int32 (nnz,)
        The non-zero counts n_kw by item, topics ascending.
    topic_ptr, topic_item, topic_count : int64 (K + 1,), int32 (nnz,), int32 (nnz,)
        The same by topic, largest count first, equal counts by lower item.
    denom : float64 (K,)  n_k + V beta.
    beta : float; alpha : float64 (K,)  the priors of the state.
    prior : float64 (V,)  sum_k alpha_k n_kw / denom_k, each item's score from the prior
        part of theta (the part every user shares, scaled).
    order : int64 (V,)  the items by decreasing ``prior``, equal ones by lower item.

    About 16 bytes a non-zero count plus 20 bytes an item.
    """

    item_ptr: np.ndarray
    item_topic: np.ndarray
    item_count: np.ndarray
    topic_ptr: np.ndarray
    topic_item: np.ndarray
    topic_count: np.ndarray
    denom: np.ndarray
    beta: float
    alpha: np.ndarray
    prior: np.ndarray
    order: np.ndarray

    @property
    def n_topics(self) -> int:
        return int(self.denom.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ptr.shape[0] - 1)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in self.__dataclass_fields__
                   if isinstance(getattr(self, f), np.ndarray))

    def kernel_args(self) -> tuple:
        """The tuple the kernels of :mod:`gibbslda._kernels.scores` take as ``model``."""
        return (self.item_ptr, self.item_topic, self.item_count, self.topic_ptr,
                self.topic_item, self.topic_count, self.denom, self.prior, self.order,
                self.alpha, self.beta)


@dataclass(frozen=True, eq=False)
class SparseTopicWord:
    """phi (K x V) as CSR arrays: ``phi[k, w] = data[j] + smoothing[k]`` where
    ``indices[j] == w`` for some j in ``indptr[k]:indptr[k + 1]``, else ``smoothing[k]``
    (equal to ``topic_word_`` up to one rounding).

    ``data`` is the counts part n_kw / (n_k + V beta) of the non-zero counts (items
    ascending within a topic), ``smoothing`` the per-topic constant beta / (n_k + V beta).
    ``(data, indices, indptr)`` with ``shape`` builds a scipy.sparse CSR matrix as is.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    smoothing: np.ndarray
    shape: tuple


def build_tables(state) -> Tables:
    """The :class:`Tables` of a chain state (any sampler): O(N + nnz log nnz) time, never
    a V x K array (for the dense and mh samplers, which keep one, it is read)."""
    k = state.n_topics
    w_ptr, w_topic, w_count = _sampler.item_topic_csr(state)
    k_ptr, k_item, k_count = _kernels.topic_lists(w_ptr, w_topic, w_count, np.int64(k),
                                                  True)
    denom = _denominators(state)
    alpha = np.array(state.alpha, dtype=np.float64)
    prior = _kernels.prior_scores(w_ptr, w_topic, w_count, alpha, denom)
    order = np.argsort(-prior, kind="stable").astype(np.int64)
    return Tables(w_ptr, w_topic, w_count, k_ptr, k_item, k_count, denom,
                  float(state.beta), alpha, prior, order)


def _denominators(state) -> np.ndarray:
    """n_k + V beta, as ``topic_word_`` computes it."""
    return state.n_k + state.n_items * state.beta


def theta_rows(state, rows) -> np.ndarray:
    """theta (len(rows) x K, float64) of the training users ``rows`` (indices), from their
    own tokens: bit for bit the rows of ``doc_topic_``."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = state.indptr[rows]
    lengths = state.indptr[rows + 1] - starts
    total = int(lengths.sum())
    first = np.cumsum(lengths) - lengths
    tokens = np.arange(total, dtype=np.int64) + np.repeat(starts - first, lengths)
    return _theta(state, np.repeat(np.arange(rows.size, dtype=np.int64), lengths),
                  state.z[tokens], lengths, rows.size)


def theta_range(state, start: int, stop: int) -> np.ndarray:
    """:func:`theta_rows` of the users ``start:stop`` (their tokens are contiguous)."""
    lengths = np.diff(state.indptr[start:stop + 1])
    z = state.z[state.indptr[start]:state.indptr[stop]]
    owner = np.repeat(np.arange(stop - start, dtype=np.int64), lengths)
    return _theta(state, owner, z, lengths, stop - start)


def _theta(state, owner, z, lengths, n_rows) -> np.ndarray:
    k = state.n_topics
    n_dk = np.bincount(owner * k + z, minlength=n_rows * k).reshape(n_rows, k)
    return (n_dk + state.alpha) / (lengths[:, None] + state.alpha.sum())


def doc_topic(state, rows=None, dtype=np.float64) -> np.ndarray:
    """theta of the users ``rows`` (None: every user, D x K) built a block of users at a
    time, as ``dtype``: its only D x K array is the result."""
    n_users, k = state.indptr.shape[0] - 1, state.n_topics
    count = n_users if rows is None else len(rows)
    out = np.empty((count, k), dtype=dtype)
    step = max(1, _THETA_VALUES // k)
    for at in range(0, count, step):
        stop = min(at + step, count)
        out[at:stop] = (theta_range(state, at, stop) if rows is None
                        else theta_rows(state, rows[at:stop]))
    return out


def phi_columns(tables: Tables, items) -> np.ndarray:
    """phi (K x len(items), float64, topic-minor in memory as ``topic_word_``) of the
    items (indices): bit for bit those columns of ``topic_word_``, O(K len(items) + their
    counts)."""
    items = np.asarray(items, dtype=np.int64)
    starts = tables.item_ptr[items]
    lengths = tables.item_ptr[items + 1] - starts
    first = np.cumsum(lengths) - lengths
    at = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - first, lengths)
    by_item = np.empty((items.size, tables.n_topics))
    by_item[:] = tables.beta / tables.denom  # (0 + beta) / denom: no count
    topics = tables.item_topic[at]
    by_item[np.repeat(np.arange(items.size), lengths), topics] = \
        (tables.item_count[at] + tables.beta) / tables.denom[topics]
    return by_item.T


def topic_word(tables: Tables, dtype=np.float64) -> np.ndarray:
    """The dense phi (K x V) as ``dtype``, topic-minor in memory (the transpose of a C
    array, as ``topic_word_`` always was), a block of items at a time: bit for bit
    ``topic_word_`` (rounded once to ``dtype``); its only K x V array is the result."""
    by_item = np.empty((tables.n_items, tables.n_topics), dtype=dtype)
    smooth = tables.beta / tables.denom  # (0 + beta) / denom: no count
    step = max(1, _THETA_VALUES // tables.n_topics)
    for start in range(0, tables.n_items, step):
        stop = min(start + step, tables.n_items)
        a, b = tables.item_ptr[start], tables.item_ptr[stop]
        by_item[start:stop] = smooth
        rows = np.repeat(np.arange(start, stop), np.diff(tables.item_ptr[start:stop + 1]))
        topics = tables.item_topic[a:b]
        by_item[rows, topics] = (tables.item_count[a:b] + tables.beta) / tables.denom[topics]
    return by_item.T


def sparse_topic_word(tables: Tables, dtype=np.float64) -> SparseTopicWord:
    """phi as :class:`SparseTopicWord`, items ascending in each topic."""
    k, v = tables.n_topics, tables.n_items
    ptr, items, counts = _kernels.topic_lists(tables.item_ptr, tables.item_topic,
                                              tables.item_count, np.int64(k), False)
    topic = np.repeat(np.arange(k), np.diff(ptr))
    return SparseTopicWord(ptr, items, (counts / tables.denom[topic]).astype(dtype),
                           (tables.beta / tables.denom).astype(dtype), (k, v))
