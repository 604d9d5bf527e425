"""The sampler on your own arrays: a small public layer over the numba kernels.

For research code that wants the collapsed Gibbs sampler without the estimator::

    import numpy as np
    from gibbslda import sampler

    indptr = np.array([0, 3, 5])            # user 0 owns tokens 0..2, user 1 tokens 3..4
    words = np.array([0, 1, 0, 1, 2])        # the item of each token
    state = sampler.init_state(indptr, words, n_topics=2, n_items=3, alpha=0.5,
                               beta=0.1, seed=0, sampler="sparse", n_shards=1)
    for _ in range(100):
        sampler.sweep(state)
    sampler.log_likelihood(state)          # log p(w, z) per token

Every array in the state is updated in place by :func:`sweep`; copy them to keep a sample.
The estimator :class:`gibbslda.LDA` is built on exactly these functions.

Every function checks all its arguments before a kernel runs (:mod:`gibbslda._validate`):
shapes, dtypes, offsets and every item and topic id against its bound, so bad input is a
ValueError or TypeError naming the argument, never a crash or a silently wrong answer.

Samplers (all target the LDA posterior; with ``n_shards=1`` each is an exact MCMC chain):

- ``"dense"``: the textbook conditional over all K topics, O(K) per token; the reference.
- ``"sparse"``: SparseLDA's bucket decomposition, O(K_d + K_w) per token, with sparse
  item x topic counts (MALLET's packed rows: at most 4 bytes a token, no V x K matrix).
- ``"mh"``: Metropolis-Hastings with O(1) item and user proposals (LightLDA), ``mh_steps``
  cycles per token; fastest at large K, mixes a little slower per sweep.
- ``"warp"``: WarpLDA, O(1) a token whatever K: an item pass then a user pass, each token
  one exact MH step per pass, every item (user) independent within its pass, so it runs on
  all numba threads by itself with the same result for any thread count (``n_shards``
  must be 1). The totals and the other side's counts are those of the pass's start: not an
  exact chain (see :mod:`gibbslda._kernels.warp`). K <= 65,536; ``mh_steps`` cycles (item
  pass + user pass) a sweep.
- ``"vector"``: the dense conditional for K <= 64 as float32 rows the compiler vectorises
  (:mod:`gibbslda._kernels.vector`): exact up to float32 rounding, not bit-equal to dense.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gibbslda import _kernels, _rng, _validate
from gibbslda._kernels import vector as _vector
from gibbslda._kernels import warp as _warp
from gibbslda._kernels import layout as _layout_kernels
from gibbslda.layout import block_order, build_layout, shard_cells
from gibbslda.layout import shard_layout  # noqa: F401 (public)
from gibbslda.packed import item_counts, packed_counts, topic_bits  # noqa: F401

SAMPLERS = ("dense", "sparse", "mh", "warp", "vector")
MAX_VECTOR_TOPICS = _vector.MAX_TOPICS
MAX_WARP_TOPICS = _warp.MAX_TOPICS  # a topic and a proposal share one 32-bit word
_KIND = {"dense": _kernels.DENSE, "sparse": _kernels.SPARSE, "mh": _kernels.MH}


@dataclass
class GibbsState:
    """Everything a collapsed Gibbs chain needs; arrays are updated in place.

    Attributes
    ----------
    indptr : int64 (D + 1,)  token offsets of each user.
    words : int32 (N,)  item of each token; with n_shards > 1 each user's tokens are
        ordered by item block (see :func:`init_state`).
    z : int32 (N,)  topic of each token.
    n_wk : int32 (V, K)  the counts of z per item, for the dense and mh samplers; the sparse
        sampler keeps them as packed sparse rows instead (``layout["wc"]``) and ``n_wk`` is
        a V x 0 placeholder: :meth:`item_topic_counts` gives the V x K matrix for any.
    n_k : int64 (K,)  the counts of z per topic.
    alpha : float64 (K,); beta : float  the Dirichlet priors.
    rng : uint64 (n_shards, 4)  one xoshiro256** stream state per shard.
    sampler : str; n_shards : int; mh_steps : int.
    layout : the shard partition and the per-sampler indexes (derived, never saved).
    """

    indptr: np.ndarray
    words: np.ndarray
    z: np.ndarray
    n_wk: np.ndarray
    n_k: np.ndarray
    alpha: np.ndarray
    beta: float
    rng: np.ndarray
    sampler: str = "dense"
    n_shards: int = 1
    mh_steps: int = 2
    layout: dict = field(default_factory=dict, repr=False)

    @property
    def n_tokens(self) -> int:
        return int(self.words.shape[0])

    @property
    def n_topics(self) -> int:
        return int(self.n_k.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.n_wk.shape[0])

    def n_dk(self) -> np.ndarray:
        """Per-user topic counts (D x K, int32), computed from z."""
        return counts_from_z(self.indptr, self.words, self.z, self.n_topics,
                             self.n_items)[0]

    def item_topic_counts(self) -> np.ndarray:
        """Item x topic counts (V x K, int32) for any sampler (a copy for "sparse")."""
        if self.sampler == "warp":
            return counts_from_z(self.indptr, self.words, self.z, self.n_topics,
                                 self.n_items)[1]
        if self.sampler != "sparse":
            return self.n_wk
        wc_ptr, wc_val, wc_len = self.layout["wc"]
        bits = topic_bits(self.n_topics)
        rows = np.repeat(np.arange(self.n_items), wc_len)
        within = np.arange(rows.shape[0]) - np.repeat(np.cumsum(wc_len) - wc_len, wc_len)
        values = wc_val[wc_ptr[:-1][rows] + within]
        n_wk = np.zeros((self.n_items, self.n_topics), dtype=np.int32)
        n_wk[rows, values & ((1 << bits) - 1)] = values >> bits
        return n_wk


def as_alpha(alpha, n_topics: int) -> np.ndarray:
    """alpha as a float64 array of length K, finite and > 0; a scalar means symmetric."""
    return _validate.as_alpha(alpha, n_topics)


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
               beta=0.01, seed=None, rng=None, sampler: str = "dense", n_shards: int = 1,
               mh_steps: int = 2) -> GibbsState:
    """Start a chain: every token's topic drawn uniformly, counts built from them.

    ``seed`` is anything ``LDA(random_state=...)`` accepts; ``rng`` (uint64 (n_shards, 4))
    gives stream states directly instead and wins over ``seed``. Inputs are converted once
    to the kernels' dtypes (int64 offsets, int32 ids), so no second specialisation compiles.
    With ``n_shards > 1`` the state's ``words`` are a copy with each user's tokens ordered
    by item block (a stable reorder; a Corpus's tokens already are ordered that way, and
    then ``words`` is the caller's array, not a copy, as with one shard).
    Every argument is checked first (ValueError or TypeError naming it): ``indptr`` CSR
    offsets over ``words``, every item in [0, n_items), priors finite and > 0.

    Memory: the state holds ``z`` (int32, 4 bytes a token) beside the caller's ``words``,
    plus per sampler the packed rows ("sparse", at most 4 bytes a token), a V x K matrix
    ("dense", "mh"), an item-major mirror and its index ("mh", 8 bytes a token) or the
    item-major order ("warp", 4 bytes a token); building them holds at most one more int32
    index per token (:mod:`gibbslda.layout`).
    """
    indptr, words, n_topics, n_items, alpha, beta, n_shards, mh_steps = _checked(
        indptr, words, n_topics, n_items, alpha, beta, sampler, n_shards, mh_steps)
    rng = (_streams(seed, _rng.TRAIN, n_shards) if rng is None
           else _validate.as_streams(rng, n_streams=n_shards))
    words, shards = _in_block_order(indptr, words, n_items, n_shards)
    state = GibbsState(
        indptr=indptr, words=words, z=np.empty(words.shape[0], dtype=np.int32),
        n_wk=_item_matrix(sampler, n_items, n_topics),
        n_k=np.zeros(n_topics, dtype=np.int64), alpha=alpha, beta=beta, rng=rng,
        sampler=sampler, n_shards=n_shards, mh_steps=mh_steps)
    _kernels.init_topics(state.words, state.z, state.n_wk, state.n_k, state.rng[0])
    build_layout(state, shards)
    return state


def _in_block_order(indptr, words, n_items: int, n_shards: int, z=None):
    """``(words, shards)``, or ``(words, z, shards)`` when ``z`` is given: the tokens with
    each user's in item-block order (the same arrays when they already are, as a Corpus's
    are, and always with one shard) and the partition ``(doc_bounds, cell_ptr)``, derived
    once for the state's layout."""
    doc_bounds, cell_ptr, item_block, ordered = shard_cells(indptr, words, n_items, n_shards)
    if not ordered:
        order = block_order(indptr, words, item_block, cell_ptr)
        words = words[order]
        if z is not None:
            z = z[order]
    shards = (doc_bounds, cell_ptr)
    return (words, shards) if z is None else (words, z, shards)


def restore_state(indptr, words, z, n_topics: int, n_items: int, *, alpha, beta, rng,
                  sampler: str, n_shards: int, mh_steps: int = 2) -> GibbsState:
    """Rebuild a state from saved assignments: counts and indexes are derived from z.

    With ``n_shards > 1`` each user's tokens (and their topics) are put in item-block
    order, as :func:`init_state` does; a state that init_state made is already in it.
    Arguments are checked as in :func:`init_state`, and ``z`` holds one topic in
    [0, n_topics) per token, ``rng`` one stream state per shard.
    """
    indptr, words, n_topics, n_items, alpha, beta, n_shards, mh_steps = _checked(
        indptr, words, n_topics, n_items, alpha, beta, sampler, n_shards, mh_steps)
    z = _validate.as_ids(z, "z", upper=n_topics, bound=f"n_topics = {n_topics}",
                         what="topics")
    if z.shape[0] != words.shape[0]:
        raise ValueError(f"z must hold one topic per token (len(words) = "
                         f"{words.shape[0]}), got {z.shape[0]}")
    rng = _validate.as_streams(rng, n_streams=n_shards)
    words, z, shards = _in_block_order(indptr, words, n_items, n_shards, z)
    n_k = np.zeros(n_topics, dtype=np.int64)
    n_wk = _item_matrix(sampler, n_items, n_topics)
    _layout_kernels.count_topics(words, z, n_wk, n_k)
    state = GibbsState(indptr=indptr, words=words, z=z, n_wk=n_wk, n_k=n_k, alpha=alpha,
                       beta=beta, rng=rng, sampler=sampler, n_shards=n_shards,
                       mh_steps=mh_steps)
    build_layout(state, shards)
    return state


def _checked(indptr, words, n_topics, n_items, alpha, beta, sampler, n_shards, mh_steps):
    """init_state's and restore_state's common arguments, checked and in kernel dtypes."""
    n_topics = _validate.check_int("n_topics", n_topics, minimum=1,
                                   maximum=_validate.INT32_MAX)
    _validate.check_choice("sampler", sampler, SAMPLERS)
    n_shards = _validate.check_int("n_shards", n_shards, minimum=1)
    mh_steps = _validate.check_int("mh_steps", mh_steps, minimum=1)
    if n_items is not None:
        n_items = _validate.check_int("n_items", n_items, minimum=0,
                                      maximum=_validate.INT32_MAX)
    indptr, words = _validate.as_csr(indptr, words, n_items=n_items, bound=f"n_items = "
                                     f"{n_items}", names=("indptr", "words"))
    if n_items is None:
        n_items = int(words.max()) + 1 if words.size else 0
    if sampler == "warp":
        _check_warp(n_topics, n_shards, words)
    if sampler == "vector" and n_topics > _vector.MAX_TOPICS:
        raise ValueError(f"sampler 'vector' takes at most {_vector.MAX_TOPICS} topics, got "
                         f"n_topics={n_topics}: use sampler='dense' or 'auto'")
    return (indptr, words, n_topics, n_items, _validate.as_alpha(alpha, n_topics),
            _validate.check_positive("beta", beta), n_shards, mh_steps)


def _check_warp(n_topics: int, n_shards: int, words) -> None:
    """What the warp sampler cannot take: shards, more than 2**16 topics, 2**31 tokens."""
    if n_shards != 1:
        raise ValueError(f"n_shards must be 1 for sampler 'warp' (it splits items and users "
                         f"across threads by itself, with the same result), got {n_shards}")
    if n_topics > _warp.MAX_TOPICS:
        raise ValueError(f"sampler 'warp' takes at most {_warp.MAX_TOPICS} topics, got "
                         f"n_topics={n_topics}: use sampler='sparse' or 'mh'")
    if words.shape[0] >= 2**31:
        raise ValueError(f"sampler 'warp' indexes tokens with int32 and takes at most "
                         f"2**31 - 1 tokens, got {words.shape[0]}: use sampler='sparse'")


def _streams(seed, purpose: int, n_streams: int) -> np.ndarray:
    """Fresh stream states from ``seed`` (anything ``LDA(random_state=...)`` accepts)."""
    try:
        entropy = _rng.resolve_entropy(seed)
    except (TypeError, ValueError) as exc:  # name the argument as the caller knows it
        raise type(exc)(str(exc).replace("random_state", "seed", 1)) from None
    return _rng.seed_streams(entropy, purpose, n_streams)


def _check(state) -> "GibbsState":
    """A state from init_state or restore_state whose arrays a kernel can run on."""
    if not isinstance(state, GibbsState):
        raise TypeError(f"state must be a GibbsState from init_state or restore_state, got "
                        f"{type(state).__name__}")
    _validate.check_gibbs_state(state, SAMPLERS)
    return state


def _item_matrix(sampler: str, n_items: int, n_topics: int) -> np.ndarray:
    """Zeroed dense item x topic counts, or the V x 0 placeholder of the sparse sampler."""
    return np.zeros((n_items, 0 if sampler in ("sparse", "warp") else n_topics),
                    dtype=np.int32)


def sweep(state: GibbsState, n_sweeps: int = 1) -> None:
    """Resample every token's topic ``n_sweeps`` times, in place, with the state's sampler
    and shards.

    Every call first checks the state's arrays (dtypes, shapes, offsets, layout) and that
    every item and topic id is in range (O(N): 0.1-0.3% of a sweep of 1M tokens; on a
    corpus of a few tokens the check costs more than the sweep, so pass ``n_sweeps`` to
    check once for many), so a state edited by hand is refused with a ValueError instead
    of corrupting memory. Counts that disagree with an in-range ``z`` written by hand are
    not looked for (that costs a recount): rebuild the state with :func:`restore_state`
    after editing ``z``, or run :func:`check_state`.
    """
    layout = _check(state).layout
    n_sweeps = _validate.check_int("n_sweeps", n_sweeps, minimum=0)
    if state.sampler == "warp":
        for _ in range(n_sweeps):
            _warp_sweep(state)
        return
    tok = (state.indptr, layout["cell_ptr"], state.words, state.z)
    if state.sampler == "vector":
        _vector_sweeps(state, tok, n_sweeps)
        return
    prior = (state.alpha, np.cumsum(state.alpha), float(state.beta))
    kind, steps = _KIND[state.sampler], np.int64(state.mh_steps)
    for _ in range(n_sweeps):
        if state.n_shards == 1:
            _kernels.sweep_serial(kind, tok, layout["wc"], layout["wi"], state.n_wk,
                                  state.n_k, prior, state.rng, steps)
        else:
            _kernels.sweep_sharded(kind, tok, layout["wc"], layout["wi"], state.n_wk,
                                   state.n_k, prior, state.rng, layout["doc_bounds"], steps)


def _vector_sweeps(state: GibbsState, tok, n_sweeps: int) -> None:
    """``n_sweeps`` sweeps of the float32 kernel, once its terms are known to stay in
    float32's normal range: alpha beta / (N + V beta) >= 1e-30, sums <= 1e30."""
    n, v_beta = state.n_tokens, state.n_items * float(state.beta)
    if n:
        low = state.alpha.min() * state.beta / (n + v_beta)
        high = state.n_topics * (n + state.alpha.max()) * (n + state.beta) / v_beta
        if not 1e-30 <= low <= high <= 1e30:
            raise ValueError(f"sampler 'vector' computes in float32: with these priors and "
                             f"sizes its terms span {low:.3g} to {high:.3g}, outside "
                             "[1e-30, 1e30]: use sampler='dense'")
    args = (state.n_wk, state.n_k, state.alpha, float(state.beta), state.rng)
    for _ in range(n_sweeps):
        if state.n_shards == 1:
            _vector.sweep_serial(tok, *args)
        else:
            _vector.sweep_sharded(tok, *args, state.layout["doc_bounds"])


def _warp_sweep(state: GibbsState) -> None:
    """One warp sweep: ``mh_steps`` cycles of user proposals, the item pass and the user
    pass (:mod:`gibbslda._kernels.warp`), each cycle keyed by one output of ``rng[0]``."""
    word_ptr, perm, user_bounds, item_bounds = state.layout["warp"]
    z = state.z.view(np.uint32)  # a topic and a proposal share each word during the sweep
    prob, alias = _warp.alias_table(state.alpha)
    keys = [np.uint64(_warp.sweep_key(state.rng[0])) for _ in range(state.mh_steps)]
    prior = (state.alpha, state.n_items * float(state.beta))

    def proposal(c):
        return prob, alias, float(state.alpha.sum()), keys[c % len(keys)]
    try:
        _warp.propose_users(state.indptr, z, proposal(0), user_bounds)
        for c, key in enumerate(keys):
            _warp.item_pass(word_ptr, perm, z, state.n_k, float(state.beta), key,
                            item_bounds)
            _warp.user_pass(state.indptr, z, state.n_k, prior, key, user_bounds,
                            proposal(c + 1), c + 1 < len(keys))
    except BaseException:
        # interrupted between two passes (Ctrl-C in a notebook): drop pending proposals so
        # z holds topics again; the counts match them at every pass boundary
        np.bitwise_and(z, np.uint32(0xFFFF), out=z)
        raise


def check_state(state: GibbsState) -> None:
    """Verify every count against ``z`` (O(N + V K)); raise RuntimeError naming the first
    broken invariant. The estimator runs it after every sweep when ``GIBBSLDA_CHECK=1``."""
    k, v = state.n_topics, state.n_items
    if state.z.size and (state.z.min() < 0 or state.z.max() >= k):
        raise RuntimeError(f"a topic assignment is outside 0..{k - 1}")
    _, n_wk, n_k = counts_from_z(state.indptr, state.words, state.z, k, v)
    if not np.array_equal(state.n_k, n_k):
        raise RuntimeError("topic totals n_k disagree with the assignments z")
    if not np.array_equal(state.item_topic_counts(), n_wk):
        raise RuntimeError("item x topic counts disagree with the assignments z")
    if state.sampler == "sparse":
        wc_ptr, wc_val, wc_len = state.layout["wc"]
        rows = np.repeat(np.arange(v), wc_len)
        within = np.arange(rows.shape[0]) - np.repeat(np.cumsum(wc_len) - wc_len, wc_len)
        values = wc_val[wc_ptr[:-1][rows] + within].astype(np.int64)
        same_row = rows[1:] == rows[:-1]
        if np.any(values[1:][same_row] >= values[:-1][same_row]) or np.any(
                wc_len > np.diff(wc_ptr)):
            raise RuntimeError("a packed item row is out of order or over its capacity")
        used = np.zeros(wc_val.shape[0], dtype=bool)
        used[wc_ptr[:-1][rows] + within] = True
        if np.any(wc_val[~used] >> topic_bits(k)):
            raise RuntimeError("a packed item row holds a count past its length")
    if state.sampler == "warp":
        word_ptr, perm = state.layout["warp"][:2]
        if not (np.array_equal(perm, np.argsort(state.words, kind="stable"))
                and np.array_equal(np.diff(word_ptr), np.bincount(state.words, minlength=v))):
            raise RuntimeError("the item-major order of the tokens disagrees with words")
    if state.sampler == "mh":
        _, word_z, tok_pos = state.layout["wi"]
        if not np.array_equal(word_z[tok_pos], state.z):
            raise RuntimeError("the item-major mirror of z disagrees with z")
    if not (np.all(np.isfinite(state.alpha)) and np.all(state.alpha > 0)
            and np.isfinite(state.beta) and state.beta > 0):
        raise RuntimeError(f"priors are not finite and positive: beta {state.beta}, alpha "
                           f"min {state.alpha.min()}")


def log_joint(state: GibbsState) -> float:
    """log p(w, z | alpha, beta), the collapsed joint of the current assignment."""
    if _check(state).sampler == "warp":
        word_ptr, perm = state.layout["warp"][:2]
        return float(_warp.log_joint(state.indptr, word_ptr, perm, state.z, state.n_k,
                                     state.alpha, float(state.beta)))
    counts, shift = item_counts(state)
    return float(_kernels.log_joint(state.indptr, state.z, counts, np.int64(shift),
                                    np.int64(state.n_items), state.n_k, state.alpha,
                                    state.beta))


def log_likelihood(state: GibbsState) -> float:
    """log p(w, z | alpha, beta) per token (0.0 for an empty state)."""
    n_tokens = _check(state).n_tokens
    return log_joint(state) / n_tokens if n_tokens else 0.0


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
        for n_shards in (1, 2) if name != "warp" else (1,):
            state = init_state(indptr, words, 2, 2, seed=0, sampler=name, n_shards=n_shards)
            sweep(state)
    log_likelihood(state)
    fold_in(indptr, words, np.full((2, 2), 0.5), 0.1, n_iter=2, burn_in=1, seed=0)
    left_to_right(indptr, words, np.full((2, 2), 0.5), 0.1, n_particles=2, seed=0)
    _WARM = True


_WARM = False


def fold_in(indptr, words, topic_word, alpha, *, n_iter: int = 50, burn_in: int = 10,
            seed=None, rng=None) -> np.ndarray:
    """Topic mix (theta, D x K) of users given fixed topics ``topic_word`` (K x V).

    Runs ``n_iter`` Gibbs sweeps over each user's tokens with phi fixed and averages the
    theta estimate over the sweeps after ``burn_in``. ``rng`` (uint64 (4,) or (1, 4)) is
    advanced in place when given; otherwise a stream is seeded from ``seed``.
    """
    n_iter = _validate.check_int("n_iter", n_iter, minimum=1)
    burn_in = _validate.check_int("burn_in", burn_in, minimum=0)
    if burn_in >= n_iter:
        raise ValueError(f"fold-in needs 0 <= burn_in < n_iter, got burn_in={burn_in}, "
                         f"n_iter={n_iter}")
    indptr, words, phi_wk, alpha = _fixed_topics(indptr, words, topic_word, alpha)
    stream = _streams(seed, _rng.FOLD_IN, 1) if rng is None else _validate.as_streams(rng)
    return _kernels.fold_in(indptr, words, phi_wk, alpha, np.int64(n_iter),
                            np.int64(burn_in), stream[0])


def _fixed_topics(indptr, words, topic_word, alpha):
    """fold_in's and left_to_right's common arguments: (indptr, words, phi_wk, alpha)."""
    phi = _validate.as_topic_word(topic_word)
    n_topics, n_items = phi.shape
    indptr, words = _validate.as_csr(indptr, words, n_items=n_items,
                                     bound=f"topic_word.shape[1] = {n_items}",
                                     names=("indptr", "words"))
    return indptr, words, np.ascontiguousarray(phi.T), _validate.as_alpha(alpha, n_topics)


def left_to_right(indptr, words, topic_word, alpha, *, n_particles: int = 20, seed=None,
                  rng=None) -> np.ndarray:
    """Log importance weights (D x n_particles) of the left-to-right estimator: for each
    user, ``log(mean(exp(row)))`` estimates log p(w_d | topics, alpha), and the mean of the
    exponentiated weights is unbiased for p(w_d) (see ``_kernels.left_to_right``).
    ``rng`` is advanced in place when given; otherwise a stream is seeded from ``seed``."""
    n_particles = _validate.check_int("n_particles", n_particles, minimum=1)
    indptr, words, phi_wk, alpha = _fixed_topics(indptr, words, topic_word, alpha)
    stream = _streams(seed, _rng.LEFT_TO_RIGHT, 1) if rng is None else _validate.as_streams(rng)
    return _kernels.left_to_right(indptr, words, phi_wk, alpha, np.int64(n_particles),
                                  stream[0])


def item_topic_csr(state: GibbsState):
    """The non-zero item x topic counts of any sampler's state as CSR rows by item, never a
    V x K matrix for the samplers that keep none ("sparse", "warp"): O(N + nnz).

    Returns ``(indptr, topics, counts)``: int64 (V + 1,), int32 (nnz,), int32 (nnz,); item
    w's counts are ``counts[indptr[w]:indptr[w + 1]]`` of the topics ``topics[...]``, in
    ascending topic order. The same counts as :meth:`GibbsState.item_topic_counts`.
    """
    from gibbslda._kernels import scores as _score_kernels  # per-call kernels, see there

    _check(state)
    if state.sampler == "warp":
        word_ptr, perm = state.layout["warp"][:2]
        return _score_kernels.item_rows_from_tokens(word_ptr, perm, state.z,
                                                    np.int64(state.n_topics))
    if state.sampler == "sparse":
        wc_ptr, wc_val, wc_len = state.layout["wc"]
        return _score_kernels.item_rows_from_packed(wc_ptr, wc_val, wc_len,
                                                    np.int64(topic_bits(state.n_topics)))
    rows, topics = np.nonzero(state.n_wk)
    indptr = np.zeros(state.n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=state.n_items), out=indptr[1:])
    return indptr, topics.astype(np.int32), state.n_wk[rows, topics]
