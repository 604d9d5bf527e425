"""Learning the Dirichlet priors from the chain: asymmetric alpha, symmetric beta.

Minka's fixed-point iteration on count histograms, as MALLET does (Wallach 2008, ch. 2):
given the current assignment z, alpha maximises p(z | alpha) (the users' topic counts) and
beta maximises p(w | z, beta) (the items' topic counts). Both need only histograms of the
counts: how many users hold n tokens of topic k, how many item x topic cells hold a
count n. One O(N) pass builds them; the iteration then runs over their non-zero cells,
so an update costs a small part of a sweep.

References
----------
Minka (2000), "Estimating a Dirichlet distribution".
Wallach (2008), "Structured topic models for language", PhD thesis, ch. 2.
Wallach, Mimno & McCallum (2009), "Rethinking LDA: why priors matter", NIPS.
"""
from __future__ import annotations

import numpy as np

from gibbslda import _kernels
from gibbslda.sampler import GibbsState, item_counts


def learn_alpha(state: GibbsState, *, n_iter: int = 100, tol: float = 1e-6) -> int:
    """Set ``state.alpha`` (asymmetric) to the fixed point for the current z; returns the
    iterations it took."""
    base = histogram_base(state.indptr)
    hist = user_histograms(state.indptr, state.z, state.n_topics, base)
    state.alpha, used = fit_alpha(state.alpha, hist, base, n_iter=n_iter, tol=tol)
    return used


def learn_beta(state: GibbsState, *, n_iter: int = 100, tol: float = 1e-6) -> int:
    """Set ``state.beta`` (symmetric) to the fixed point for the current z; returns the
    iterations it took."""
    counts, shift = item_counts(state)
    hist = _kernels.count_histogram(counts, np.int64(shift))
    state.beta, used = fit_beta(state.beta, hist, state.n_k, state.n_items, n_iter=n_iter,
                                tol=tol)
    return used


# -- the steps of learn_alpha / learn_beta, for callers whose counts are spread out (the
# Dask trainer: each partition builds its users' histograms, the driver sums and fits) ---
def histogram_base(indptr) -> np.int64:
    """The key base of :func:`user_histograms` for users with offsets ``indptr`` (all the
    users, so every block's keys decode alike): one more than the longest user."""
    lengths = np.diff(indptr)
    return np.int64(int(lengths.max()) + 1 if lengths.size else 1)


def user_histograms(indptr, z, n_topics: int, base) -> tuple:
    """The users' count histograms: ``(cells, weights, len_sizes, len_weights)``, int64,
    sorted: cell ``k * base + n`` holds ``weights`` users with n tokens of topic k (n >= 1),
    ``len_weights`` users have length ``len_sizes`` (> 0)."""
    keys = _kernels.doc_topic_counts(indptr, z, np.int64(n_topics), np.int64(base))
    cells, weights = np.unique(keys, return_counts=True)
    lengths = np.diff(indptr)
    len_sizes, len_weights = np.unique(lengths[lengths > 0], return_counts=True)
    return (cells.astype(np.int64), weights.astype(np.int64), len_sizes.astype(np.int64),
            len_weights.astype(np.int64))


def sum_histograms(parts) -> tuple:
    """The :func:`user_histograms` of disjoint blocks of users summed, in the given order:
    the histograms of all of them, as :func:`user_histograms` gives them."""
    out = []
    for j in (0, 2):
        keys = np.concatenate([p[j] for p in parts])
        values = np.concatenate([p[j + 1] for p in parts])
        cells, where = np.unique(keys, return_inverse=True)
        out += [cells.astype(np.int64), np.bincount(where.reshape(-1), weights=values,
                                                    minlength=cells.size).astype(np.int64)]
    return tuple(out)


def fit_alpha(alpha, hist, base, *, n_iter: int = 100, tol: float = 1e-6) -> tuple:
    """``(alpha, iterations)``: the fixed point from ``alpha`` (not changed) for the
    :func:`user_histograms` ``hist`` keyed with ``base``."""
    cells, weights, len_sizes, len_weights = hist
    alpha = np.array(alpha, dtype=np.float64)
    used = _kernels.fixed_point_alpha(
        alpha, (cells // base).astype(np.int64), (cells % base).astype(np.float64),
        weights.astype(np.float64), len_sizes.astype(np.float64),
        len_weights.astype(np.float64), np.int64(n_iter), float(tol))
    return alpha, int(used)


def fit_beta(beta, count_hist, n_k, n_items: int, *, n_iter: int = 100,
             tol: float = 1e-6) -> tuple:
    """``(beta, iterations)``: the fixed point from ``beta`` for ``count_hist`` (item x
    topic cells per count, :func:`gibbslda._kernels.count_histogram`) and the topic
    totals ``n_k`` (int64) over ``n_items`` items."""
    beta, used = _kernels.fixed_point_beta(float(beta), count_hist, n_k, np.int64(n_items),
                                           np.int64(n_iter), float(tol))
    return float(beta), int(used)


def learn_on_schedule(model) -> None:
    """Learn a fitted LDA's "auto" priors when its sweep count ``n_iter_`` is due: from
    ``optimize_burn_in`` sweeps on, every ``optimize_every``. A function of the sweep count
    only, so a resumed run learns at the same sweeps as an uninterrupted one."""
    if model.n_iter_ < model.optimize_burn_in or model.n_iter_ % model.optimize_every:
        return
    if isinstance(model.alpha, str):
        learn_alpha(model.state_)
    if isinstance(model.beta, str):
        learn_beta(model.state_)
