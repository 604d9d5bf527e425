"""The sampler on your own arrays: a small public layer over the numba kernels.

For research code that wants the collapsed Gibbs sampler without the estimator::

    import numpy as np
    from gibbslda import sampler

    indptr = np.array([0, 3, 5])            # user 0 owns tokens 0..2, user 1 tokens 3..4
    words = np.array([0, 1, 0, 1, 2])        # the item of each token
    state = sampler.init_state(indptr, words, n_topics=2, n_items=3, alpha=0.5,
                               beta=0.1, seed=0)
    for _ in range(100):
        sampler.sweep(state)
    sampler.log_likelihood(state)          # log p(w, z) per token

Every array in the state is updated in place by :func:`sweep`; copy them to keep a sample.
The estimator :class:`gibbslda.LDA` is built on exactly these functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gibbslda import _kernels, _rng

SAMPLERS = ("dense",)
_SWEEPS = {"dense": _kernels.sweep_dense}


@dataclass
class GibbsState:
    """Everything a collapsed Gibbs chain needs; arrays are updated in place.

    Attributes
    ----------
    indptr : int64 (D + 1,)  token offsets of each user.
    words : int32 (N,)  item of each token.
    z : int32 (N,)  topic of each token.
    n_dk : int32 (D, K); n_wk : int32 (V, K); n_k : int64 (K,)  the counts of z.
    alpha : float64 (K,); beta : float  the Dirichlet priors.
    rng : uint64 (n_streams, 4)  xoshiro256** stream states (row 0 drives the serial sweep).
    sampler : str  which sweep kernel :func:`sweep` runs.
    """

    indptr: np.ndarray
    words: np.ndarray
    z: np.ndarray
    n_dk: np.ndarray
    n_wk: np.ndarray
    n_k: np.ndarray
    alpha: np.ndarray
    beta: float
    rng: np.ndarray
    sampler: str = "dense"

    @property
    def n_tokens(self) -> int:
        return int(self.words.shape[0])


def as_alpha(alpha, n_topics: int) -> np.ndarray:
    """alpha as a float64 array of length K; a scalar means symmetric."""
    values = np.asarray(alpha, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n_topics, float(values))
    return np.ascontiguousarray(values)


def counts_from_z(indptr, words, z, n_topics: int, n_items: int):
    """Rebuild (n_dk, n_wk, n_k) from the assignments: vectorised, O(N)."""
    n_users = indptr.shape[0] - 1
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
    n_dk = np.bincount(users * n_topics + z, minlength=n_users * n_topics)
    n_wk = np.bincount(words.astype(np.int64) * n_topics + z, minlength=n_items * n_topics)
    n_k = np.bincount(z, minlength=n_topics).astype(np.int64)
    return (
        n_dk.astype(np.int32).reshape(n_users, n_topics),
        n_wk.astype(np.int32).reshape(n_items, n_topics),
        n_k,
    )


def init_state(indptr, words, n_topics: int, n_items: int | None = None, *, alpha=0.1,
               beta=0.01, seed=None, rng=None, sampler: str = "dense") -> GibbsState:
    """Start a chain: every token's topic drawn uniformly, counts built from them.

    ``seed`` is anything ``LDA(random_state=...)`` accepts; ``rng`` (uint64 (S, 4)) gives
    stream states directly instead and wins over ``seed``. Inputs are converted once to
    the kernels' dtypes (int64 offsets, int32 ids), so no second specialisation compiles.
    """
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    words = np.ascontiguousarray(words, dtype=np.int32)
    if n_items is None:
        n_items = int(words.max()) + 1 if words.size else 0
    if rng is None:
        rng = _rng.seed_streams(_rng.resolve_entropy(seed), 0, 1)
    n_users = indptr.shape[0] - 1
    state = GibbsState(
        indptr=indptr,
        words=words,
        z=np.empty(words.shape[0], dtype=np.int32),
        n_dk=np.zeros((n_users, n_topics), dtype=np.int32),
        n_wk=np.zeros((n_items, n_topics), dtype=np.int32),
        n_k=np.zeros(n_topics, dtype=np.int64),
        alpha=as_alpha(alpha, n_topics),
        beta=float(beta),
        rng=np.ascontiguousarray(rng, dtype=np.uint64),
        sampler=sampler,
    )
    _kernels.init_topics(state.indptr, state.words, state.z, state.n_dk, state.n_wk,
                         state.n_k, state.rng[0])
    return state


def sweep(state: GibbsState) -> None:
    """Resample every token's topic once, in place."""
    kernel = _SWEEPS[state.sampler]
    kernel(state.indptr, state.words, state.z, state.n_dk, state.n_wk, state.n_k,
           state.alpha, state.beta, state.rng[0])


def log_joint(state: GibbsState) -> float:
    """log p(w, z | alpha, beta), the collapsed joint of the current assignment."""
    return float(_kernels.log_joint(state.indptr, state.n_dk, state.n_wk, state.n_k,
                                    state.alpha, state.beta))


def log_likelihood(state: GibbsState) -> float:
    """log p(w, z | alpha, beta) per token (0.0 for an empty state)."""
    return log_joint(state) / state.n_tokens if state.n_tokens else 0.0


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel on a tiny corpus, once a process.

    Call it before timing anything; :meth:`gibbslda.LDA.fit` calls it itself. With
    ``cache=True`` the machine code is kept in ``__pycache__`` (or ``NUMBA_CACHE_DIR``), so
    only the first run after install pays the compile time.
    """
    global _WARM
    if _WARM:
        return
    indptr = np.array([0, 2, 3], dtype=np.int64)
    words = np.array([0, 1, 1], dtype=np.int32)
    for name in SAMPLERS:
        state = init_state(indptr, words, 2, 2, seed=0, sampler=name)
        sweep(state)
        log_likelihood(state)
    fold_in(indptr, words, np.full((2, 2), 0.5), 0.1, n_iter=2, burn_in=1, seed=0)
    _WARM = True


_WARM = False


def fold_in(indptr, words, topic_word, alpha, *, n_iter: int = 50, burn_in: int = 10,
            seed=None, rng=None) -> np.ndarray:
    """Topic mix (theta, D x K) of users given fixed topics ``topic_word`` (K x V).

    Runs ``n_iter`` Gibbs sweeps over each user's tokens with phi fixed and averages the
    theta estimate over the sweeps after ``burn_in``. ``rng`` (uint64 (4,) or (1, 4)) is
    advanced in place when given; otherwise a stream is seeded from ``seed``.
    """
    topic_word = np.asarray(topic_word, dtype=np.float64)
    phi_wk = np.ascontiguousarray(topic_word.T)
    if rng is None:
        rng = _rng.seed_streams(_rng.resolve_entropy(seed), 1, 1)
    stream = rng.reshape(-1, 4)[0]
    return _kernels.fold_in(
        np.ascontiguousarray(indptr, dtype=np.int64),
        np.ascontiguousarray(words, dtype=np.int32),
        phi_wk, as_alpha(alpha, phi_wk.shape[1]), np.int64(n_iter), np.int64(burn_in), stream,
    )
