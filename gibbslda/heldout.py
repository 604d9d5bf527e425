"""Held-out scoring on arrays: document completion below the estimator.

Two entry points, one estimator (theta folded in from each held-out user's observed part
with the topics fixed, averaged over the sweeps after burn-in; each hidden token scored
log sum_k theta_dk phi_kw):

- :func:`completion_from_state` scores a fitted chain from its counts: the estimator
  records it during training (``fit(X, heldout=...)``, on a seeded subsample of the
  held-out users, :func:`subsample`) and :func:`gibbslda.evaluate.completion_log_likelihood`
  on every user given. It reads phi for the items the held-out users hold only, never the
  K x V ``topic_word_``, and folds users in by sparse buckets (O(K_d + log K) a token,
  :mod:`gibbslda._kernels.heldout`) a chunk at a time, each chunk's tokens x K at most
  :data:`CHUNK_CELLS`.
- :func:`completion` scores any dense phi (K x V), for instance a peer's in the
  benchmarks, by the plain O(K) fold-in (:func:`gibbslda.sampler.fold_in`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda import _validate, sampler
from gibbslda._kernels import heldout as _kernels

CHUNK = 65536  # hidden tokens scored at once: bounds the (chunk, K) temporaries
# A chunk of held-out users holds (observed + hidden tokens) x K <= CHUNK_CELLS, so its
# items' non-zero counts number at most that many (32 bytes each with what the draws
# derive from them: 128 MB at worst, a few MB in practice)
CHUNK_CELLS = 2**22
# phi values of one user's items laid out densely for O(1) reads (float64: 8 MB)
TABLE_CELLS = 2**20
_SUBSAMPLE = 0x48454C44  # "HELD": the SeedSequence key of the held-out subsample


@dataclass(frozen=True)
class HeldOut:
    """Held-out users ready to score again and again: both parts over the local item
    numbering ``items`` (the model's item indices of the items they hold, ascending).

    Attributes
    ----------
    items : int64 (m,)  model item index of each local item.
    observed, hidden : (indptr int64 (D + 1,), words int32)  the parts, local items.
    """

    items: np.ndarray
    observed: tuple
    hidden: tuple

    @property
    def n_users(self) -> int:
        return int(self.observed[0].shape[0] - 1)

    @property
    def n_hidden(self) -> int:
        return int(self.hidden[1].shape[0])


def prepare(observed, hidden, n_items: int, users=None) -> HeldOut:
    """:class:`HeldOut` of two CSR parts ``(indptr, words)`` over item indices in
    [0, n_items) of the same users; ``users`` (indices) keeps those only, in that order."""
    parts = [_validate.as_csr(*part, n_items=n_items, bound=f"n_items = {n_items}",
                              names=(f"{name}.indptr", f"{name}.words"))
             for part, name in ((observed, "observed"), (hidden, "hidden"))]
    if parts[0][0].shape[0] != parts[1][0].shape[0]:
        raise ValueError(f"observed has {parts[0][0].shape[0] - 1} users but hidden has "
                         f"{parts[1][0].shape[0] - 1}: pass the two parts of one split")
    if users is not None:
        parts = [_rows(indptr, words, users) for indptr, words in parts]
    items = np.unique(np.concatenate([parts[0][1], parts[1][1]])).astype(np.int64)
    local = [(indptr, np.searchsorted(items, words).astype(np.int32))
             for indptr, words in parts]
    return HeldOut(items, local[0], local[1])


def subsample(n_users: int, size: int | None, entropy: int) -> np.ndarray | None:
    """``size`` of ``n_users`` held-out users drawn without replacement, seeded by
    ``entropy`` (a model's ``seed_entropy_``), ascending; None (all of them) when
    ``size`` is None or not below ``n_users``."""
    if size is None or size >= n_users:
        return None
    rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(_SUBSAMPLE,)))
    return np.sort(rng.choice(n_users, size=size, replace=False)).astype(np.int64)


def completion_from_state(state, heldout: HeldOut, *, n_iter: int, burn_in: int,
                          rng, chunk_cells: int = CHUNK_CELLS,
                          table_cells: int = TABLE_CELLS) -> float:
    """Mean log p(hidden token | observed part) per hidden token of ``heldout`` under the
    chain ``state`` (a :class:`gibbslda.sampler.GibbsState`): phi = (n_kw + beta) /
    (n_k + V beta) from its counts, alpha its alpha.

    Users are folded in ``n_iter`` sweeps (``burn_in`` discarded), on all numba threads,
    each user on its own stream keyed by one draw from ``rng`` (uint64 (1, 4), advanced
    in place) and its place in ``heldout``, a chunk at a time. Neither the thread count,
    the chunks
    (``chunk_cells``: (observed + hidden tokens) x K per chunk) nor the dense phi table of
    a user's items (``table_cells`` values; items past it read their row) changes the
    result, only memory and speed. Perplexity is exp(-value).
    """
    if heldout.n_hidden == 0:
        raise ValueError("no hidden token has an item the model knows: score held-out "
                         "parts split from the training log (split_users keeps its items)")
    rows = _item_rows(state, heldout.items)
    prior = (np.ascontiguousarray(state.alpha, dtype=np.float64),
             state.n_k + state.n_items * float(state.beta), float(state.beta))
    key = np.uint64(_kernels.stream_key(_validate.as_streams(rng)[0]))
    per_user = np.zeros(heldout.n_users)
    for start, stop in _chunks(heldout, state.n_topics, chunk_cells):
        observed, hidden, chunk_rows = _chunk(heldout, rows, start, stop)
        sweeps = (np.int64(n_iter), np.int64(burn_in), np.int64(table_cells),
                  np.int64(start))
        per_user[start:stop] = _kernels.completion(observed, hidden, chunk_rows, prior,
                                                   sweeps, key)
    return float(per_user.sum() / heldout.n_hidden)


def warm_up() -> None:
    """Compile (or load from numba's cache) the held-out scoring kernels on a tiny chain,
    once a process (:func:`gibbslda.sampler.warm_up` does the sampling kernels)."""
    global _WARM
    if _WARM:
        return
    indptr, words = np.array([0, 2, 3], dtype=np.int64), np.array([0, 1, 1], dtype=np.int32)
    state = sampler.init_state(indptr, words, 2, 2, seed=0)
    parts = prepare((indptr, words), (indptr, words), 2)
    completion_from_state(state, parts, n_iter=2, burn_in=1,
                          rng=np.zeros((1, 4), dtype=np.uint64) + np.uint64(1))
    _WARM = True


_WARM = False


def _item_rows(state, items):
    """The non-zero counts of ``items`` (model indices) as rows over their positions:
    ``(ptr, topic, count)``, from :func:`gibbslda.sampler.item_topic_csr`."""
    ptr, topic, count = sampler.item_topic_csr(state)
    starts, lengths = ptr[items], ptr[items + 1] - ptr[items]
    at = _ranges(starts, lengths)
    out_ptr = np.zeros(items.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    return out_ptr, topic[at], count[at]


def _chunks(heldout: HeldOut, n_topics: int, chunk_cells: int):
    """Consecutive user ranges, each with (observed + hidden tokens) x K <= chunk_cells
    (or one user when a user alone holds more)."""
    tokens = np.diff(heldout.observed[0]) + np.diff(heldout.hidden[0])
    ends = np.cumsum(tokens)
    budget = max(1, chunk_cells // max(n_topics, 1))
    start = 0
    while start < heldout.n_users:
        before = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, before + budget, side="right")), start + 1)
        yield start, stop
        start = stop


def _chunk(heldout: HeldOut, rows, start: int, stop: int):
    """The users ``start:stop``: their parts over the chunk's own items, and those items'
    rows."""
    parts = [(indptr[start:stop + 1] - indptr[start], words[indptr[start]:indptr[stop]])
             for indptr, words in (heldout.observed, heldout.hidden)]
    items, inverse = np.unique(np.concatenate([parts[0][1], parts[1][1]]),
                               return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int32)
    cut = parts[0][1].shape[0]
    observed = (np.ascontiguousarray(parts[0][0]), inverse[:cut])
    hidden = (np.ascontiguousarray(parts[1][0]), inverse[cut:])
    ptr, topic, count = rows
    starts, lengths = ptr[items], ptr[items + 1] - ptr[items]
    chunk_ptr = np.zeros(items.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=chunk_ptr[1:])
    at = _ranges(starts, lengths)
    return observed, hidden, (chunk_ptr, topic[at], count[at])


def _rows(indptr, words, users):
    """The CSR rows ``users`` of ``(indptr, words)``."""
    users = np.asarray(users, dtype=np.int64)
    lengths = indptr[users + 1] - indptr[users]
    out = np.zeros(users.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out, words[_ranges(indptr[users], lengths)]


def _ranges(starts, lengths) -> np.ndarray:
    """The concatenated index ranges ``starts[i]:starts[i] + lengths[i]`` (int64)."""
    first = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - first, lengths)


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
        raise ValueError("no hidden token has an item the model knows: score held-out "
                         "parts split from the training log (split_users keeps its items)")
    users = np.repeat(np.arange(theta.shape[0]), np.diff(indptr))
    total = 0.0
    for start in range(0, words.shape[0], CHUNK):
        stop = min(start + CHUNK, words.shape[0])
        probs = np.einsum("ik,ki->i", theta[users[start:stop]], phi[:, words[start:stop]])
        total += float(np.log(probs).sum())
    return total / words.shape[0]
