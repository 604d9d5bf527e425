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
    lengths = np.diff(state.indptr)
    base = np.int64(int(lengths.max()) + 1 if lengths.size else 1)
    keys = _kernels.doc_topic_counts(state.indptr, state.z, np.int64(state.n_topics), base)
    cells, weights = np.unique(keys, return_counts=True)  # histogram of (k, n_dk), sparse
    topics, sizes = cells // base, cells % base
    len_sizes, len_weights = np.unique(lengths[lengths > 0], return_counts=True)
    alpha = state.alpha.copy()
    used = _kernels.fixed_point_alpha(
        alpha, topics.astype(np.int64), sizes.astype(np.float64), weights.astype(np.float64),
        len_sizes.astype(np.float64), len_weights.astype(np.float64), np.int64(n_iter),
        float(tol))
    state.alpha = alpha
    return int(used)


def learn_beta(state: GibbsState, *, n_iter: int = 100, tol: float = 1e-6) -> int:
    """Set ``state.beta`` (symmetric) to the fixed point for the current z; returns the
    iterations it took."""
    counts, shift = item_counts(state)
    hist = _kernels.count_histogram(counts, np.int64(shift))
    beta, used = _kernels.fixed_point_beta(float(state.beta), hist, state.n_k,
                                           np.int64(state.n_items), np.int64(n_iter),
                                           float(tol))
    state.beta = float(beta)
    return int(used)


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
