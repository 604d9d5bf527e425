"""One home for the checks between a caller's input and a kernel: integers, id arrays,
CSR offsets, priors, topics and random streams.

Every check names the argument, the value received and the fix; ValueError for values,
TypeError for types. Arrays come back C-contiguous and writeable in the one dtype the
kernels take (ids int32, offsets int64, probabilities float64, streams uint64), without a
copy when they already are: a second dtype would compile a second kernel specialisation,
and an id past its bound would read or write outside an array (numba does not bounds-check).
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

INT32_MAX = 2 ** 31 - 1  # ids (items, topics) are int32


def check_int(name: str, value, *, minimum: int | None = None,
              maximum: int | None = None, bound: str = "") -> int:
    """``value`` as an int: TypeError unless an integer (bool is not), ValueError outside
    [minimum, maximum]; ``bound`` names the maximum ("the number of items")."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if maximum is not None and minimum is not None and not minimum <= value <= maximum:
        upper = f"{bound} {maximum}" if bound else maximum
        raise ValueError(f"{name} must be between {minimum} and {upper}, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def check_positive(name: str, value) -> float:
    """``value`` as a float that is finite and > 0 (TypeError unless a real number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)


def check_priors(alpha, beta, n_topics: int, auto_start: dict) -> tuple[np.ndarray, float]:
    """The estimator's priors as the sampler takes them: alpha (K,) float64 and beta; a
    prior given as "auto" (learned) starts from ``auto_start[name]``."""
    if isinstance(beta, str) and beta == "auto":
        beta = auto_start["beta"]
    elif isinstance(beta, str):
        raise TypeError(f"beta must be a number or 'auto', got {beta!r}")
    beta = check_positive("beta", beta)
    if isinstance(alpha, (str, bytes)) and alpha != "auto":
        raise TypeError(f"alpha must be a number, an array of {n_topics} numbers or "
                        f"'auto', got {alpha!r}")
    values = np.asarray(auto_start["alpha"] if isinstance(alpha, str) else alpha,
                        dtype=np.float64)
    if values.ndim == 0:
        check_positive("alpha", float(values))
    elif values.shape != (n_topics,):
        raise ValueError(f"alpha must be a number or have one value per topic ({n_topics}), "
                         f"got shape {values.shape}")
    elif not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError(f"every alpha must be finite and > 0, got min {values.min()}")
    return as_alpha(values, n_topics), float(beta)


def check_choice(name: str, value, choices) -> str:
    if not (isinstance(value, str) and value in choices):
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def canonical(array: np.ndarray, dtype) -> np.ndarray:
    """C-contiguous, writeable, of ``dtype``; the same object when it already is."""
    out = np.ascontiguousarray(array, dtype=dtype)
    return out if out.flags.writeable else out.copy()


def _integer(array: np.ndarray) -> bool:
    return array.dtype != bool and np.issubdtype(array.dtype, np.integer)


def _array(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nesting, odd objects
        raise TypeError(f"{name} must be an array, got {type(values).__name__} "
                        f"({exc})") from exc


def as_ids(values, name: str, *, upper: int | None = None, bound: str = "",
           what: str = "item indices", dtype=np.int32) -> np.ndarray:
    """A 1-D array of ids in [0, upper) (``bound`` names upper, e.g. "n_items = 5") as
    ``dtype``, checked before the cast, so 2**32 + 1 never wraps to 1."""
    array = _array(values, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=dtype)
    if not _integer(array):
        raise TypeError(f"{name} must be {what} (integers), got {array.dtype}")
    _check_range(array, name, upper, bound, what, np.iinfo(dtype).max)
    return canonical(array, dtype)


def _check_range(array, name, upper, bound, what, top) -> None:
    lo, hi = array.min(), array.max()
    if upper is not None and (lo < 0 or hi >= upper):
        limit = bound or str(upper)
        raise ValueError(f"{name} must be {what} in [0, {limit}), got {lo}..{hi}")
    if lo < 0:
        raise ValueError(f"{name} must be >= 0 ({what}), got min {lo}")
    if hi > top:
        raise ValueError(f"{name} must be {what} <= {top}, got max {hi}")


def as_offsets(indptr, n: int, *, name: str = "indptr", of: str = "len(indices)",
               n_rows: int | None = None, rows: str = "n_users") -> np.ndarray:
    """CSR offsets: 1-D integers, ``n_rows + 1`` of them when given, starting at 0, never
    decreasing, ending at ``n`` (``of`` says what n is); int64."""
    array = _array(indptr, name)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be 1-D and non-empty (one offset per user plus "
                         f"one), got shape {array.shape}")
    if not _integer(array):
        raise TypeError(f"{name} must hold integers, got {array.dtype}")
    if n_rows is not None and array.shape[0] != n_rows + 1:
        raise ValueError(f"{name} must have {rows} + 1 = {n_rows + 1} entries, got "
                         f"{array.shape[0]}")
    steps = np.diff(array.astype(np.int64, copy=False))
    if array[0] != 0 or array[-1] != n or (steps.size and steps.min() < 0):
        where = ("starts at %s" % array[0] if array[0] != 0 else
                 "ends at %s" % array[-1] if array[-1] != n else
                 "decreases after entry %d" % int(np.argmax(steps < 0)))
        raise ValueError(f"{name} must start at 0, never decrease and end at {of} = {n}, "
                         f"got one that {where}")
    return canonical(array, np.int64)


def as_csr(indptr, indices, *, n_items: int | None = None, n_rows: int | None = None,
           prefix: str = "", names=("indptr", "indices"), bound: str = "",
           ids_dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, indices ``ids_dtype``) of a users x items CSR pair, every index in
    [0, n_items) when n_items is given; ``prefix`` ("train: ") starts every message."""
    ptr, ind = (prefix + n for n in names)
    indptr, indices = _array(indptr, ptr), _array(indices, ind)
    if indptr.ndim != 1 or indices.ndim != 1 or indptr.size == 0:
        raise ValueError(f"{ptr} and {names[1]} must be 1-D and {names[0]} non-empty, got "
                         f"shapes {indptr.shape} and {indices.shape}")
    for array, part in ((indptr, ptr), (indices, ind)):
        if array.size and not _integer(array):
            raise TypeError(f"{part} must hold integers, got {array.dtype}")
    indptr = as_offsets(indptr, indices.shape[0], name=ptr, of=f"len({names[1]})",
                        n_rows=n_rows)
    return indptr, as_ids(indices, ind, upper=n_items, bound=bound, dtype=ids_dtype)


def as_alpha(alpha, n_topics: int, name: str = "alpha") -> np.ndarray:
    """alpha as float64 (K,), finite and > 0; a number means symmetric."""
    raw = _array(alpha, name)
    if raw.dtype == bool or raw.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a number or an array of {n_topics} numbers, got "
                        f"{alpha!r}")
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim == 0:
        return np.full(n_topics, check_positive(name, float(values)))
    if values.shape != (n_topics,):
        raise ValueError(f"{name} must be a number or have one value per topic "
                         f"({n_topics}), got shape {values.shape}")
    if values.size and not (np.all(np.isfinite(values)) and values.min() > 0):
        raise ValueError(f"every {name} must be finite and > 0, got min {values.min()}")
    return canonical(values, np.float64)


def as_topic_word(topic_word, name: str = "topic_word") -> np.ndarray:
    """Topic x item weights as float64 (K, V), K >= 1, finite and >= 0."""
    phi = _array(topic_word, name)
    if phi.dtype == bool or phi.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real-valued array, got dtype {phi.dtype}")
    if phi.ndim != 2 or phi.shape[0] == 0:
        raise ValueError(f"{name} must be 2-D (topics x items) with at least one topic, "
                         f"got shape {phi.shape}")
    phi = np.asarray(phi, dtype=np.float64)
    if phi.size and not (np.isfinite(phi).all() and phi.min() >= 0):
        raise ValueError(f"{name} must be finite and >= 0 (topic x item probabilities)")
    return phi


def as_streams(rng, name: str = "rng", *, n_streams: int | None = None) -> np.ndarray:
    """Random stream states, advanced in place, so never copied: a C-contiguous, writeable
    uint64 array of shape (n_streams, 4) (given) or (4,) / (n, 4) with n >= 1 (any); no
    all-zero row (the one state xoshiro256** never leaves). Returned as (n, 4)."""
    want = (f"({n_streams}, 4), one per shard (n_shards = {n_streams})"
            if n_streams is not None else "(4,) or (n, 4)")
    if (not isinstance(rng, np.ndarray) or rng.dtype != np.uint64
            or not rng.flags.c_contiguous or not rng.flags.writeable):
        got = (f"{rng.dtype} {rng.shape}" if isinstance(rng, np.ndarray)
               else type(rng).__name__)
        raise ValueError(f"{name} must be a C-contiguous uint64 array of stream states "
                         f"(4 words each, shape {want}), advanced in place; got {got}")
    ok = (rng.shape == (n_streams, 4) if n_streams is not None else
          rng.shape == (4,) or (rng.ndim == 2 and rng.shape[0] >= 1 and rng.shape[1] == 4))
    if not ok:
        raise ValueError(f"{name} must have shape {want} (4 uint64 words a stream), got "
                         f"{rng.shape}")
    streams = rng if rng.ndim == 2 else rng.reshape(1, 4)
    if not streams.any(axis=1).all():
        raise ValueError(f"{name} has an all-zero stream state, which xoshiro256** never "
                         "leaves: seed the streams with gibbslda._rng.seed_streams")
    return streams


def _exact(array, name: str, dtype, shape) -> np.ndarray:
    """A state's array, used in place: exactly ``dtype``, C-contiguous, writeable and of
    ``shape`` (a tuple, or an int: the number of dimensions)."""
    ok = (isinstance(array, np.ndarray) and array.dtype == dtype
          and array.flags.c_contiguous and array.flags.writeable
          and (array.ndim == shape if isinstance(shape, int) else array.shape == shape))
    if not ok:
        want = f"{shape}-D" if isinstance(shape, int) else f"shape {shape}"
        got = (f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray)
               else type(array).__name__)
        raise ValueError(f"{name} must be a writeable C-contiguous {np.dtype(dtype)} "
                         f"array, {want}; got {got}: build the state with init_state or "
                         "restore_state and change its arrays only in place")
    return array


def _below(array: np.ndarray, upper: int, name: str, bound: str) -> None:
    """Every entry in [0, upper), in one pass: negatives read as huge unsigned values."""
    if array.size and array.view(f"u{array.dtype.itemsize}").max() >= upper:
        raise ValueError(f"{name} must be in [0, {bound} = {upper}), got "
                         f"{array.min()}..{array.max()}")


def check_gibbs_state(state, samplers) -> None:
    """What a kernel needs of a GibbsState: every array's dtype, shape and layout, the
    offsets, and every item and topic id in range; O(N + D P + V), no counting.

    Counts that disagree with ``z`` (an in-range topic written into ``z`` by hand) are not
    looked for here: that is ``sampler.check_state``'s O(N + V K) job.
    """
    check_choice("state.sampler", state.sampler, samplers)
    p = check_int("state.n_shards", state.n_shards, minimum=1)
    check_int("state.mh_steps", state.mh_steps, minimum=1)
    k = _exact(state.n_k, "state.n_k", np.int64, 1).shape[0]
    n = _exact(state.words, "state.words", np.int32, 1).shape[0]
    d = _exact(state.indptr, "state.indptr", np.int64, 1).shape[0] - 1
    v = _exact(state.n_wk, "state.n_wk", np.int32, 2).shape[0]
    sparse = state.sampler in ("sparse", "warp")  # no V x K matrix
    _exact(state.n_wk, "state.n_wk", np.int32, (v, 0 if sparse else k))
    _exact(state.z, "state.z", np.int32, (n,))
    _exact(state.rng, f"state.rng (one stream per shard: state.n_shards = {p})", np.uint64,
           (p, 4))
    alpha = _exact(state.alpha, "state.alpha", np.float64, (k,))
    if k < 1 or not (np.isfinite(alpha).all() and alpha.min() > 0):
        raise ValueError("state.alpha must be finite and > 0, one value per topic (>= 1)")
    check_positive("state.beta", state.beta)
    as_offsets(state.indptr, n, name="state.indptr", of="len(state.words)")
    _below(state.words, v, "state.words", "n_items")
    _below(state.z, k, "state.z", "n_topics")
    _check_layout(state, p, d, v, k, n)


def _check_layout(state, p: int, d: int, v: int, k: int, n: int) -> None:
    """The derived indexes: shard bounds, cell offsets, packed rows, item-major mirror."""
    layout = state.layout
    if not (isinstance(layout, dict)
            and {"doc_bounds", "cell_ptr", "wc", "wi"} <= set(layout)):
        raise ValueError("state.layout is missing its indexes: build the state with "
                         "init_state or restore_state")
    name = "state.layout"
    # both index triples reach the kernel (as placeholders when unused): their types must
    # be the compiled ones
    for key, dtypes in (("wc", ((np.int64,), (np.int32, np.int64), (np.int32,))),
                        ("wi", ((np.int64,), (np.int32,), (np.int32,)))):
        parts = layout[key]
        if not (isinstance(parts, tuple) and len(parts) == 3 and all(
                isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype in allowed
                for a, allowed in zip(parts, dtypes))):
            raise ValueError(f"{name}['{key}'] must be a tuple of three 1-D index arrays "
                             "as init_state builds it; build the state again")
    bounds = _exact(layout["doc_bounds"], f"{name}['doc_bounds']", np.int64, (p + 1,))
    as_offsets(bounds, d, name=f"{name}['doc_bounds']", of="the number of users")
    cells = _exact(layout["cell_ptr"], f"{name}['cell_ptr']", np.int64, (d, p + 1))
    if d and (not np.array_equal(cells[:, 0], state.indptr[:-1])
              or not np.array_equal(cells[:, -1], state.indptr[1:])
              or (p > 1 and np.diff(cells, axis=1).min() < 0)):
        raise ValueError(f"{name}['cell_ptr'] does not split each user's tokens: the "
                         "offsets changed after init_state; build a new state")
    if state.sampler == "sparse":
        _check_packed(layout["wc"], v, k)
    if state.sampler == "warp":
        _check_warp(layout.get("warp"), d, v, n)
    if state.sampler == "mh":
        word_ptr, word_z, tok_pos = layout["wi"]
        as_offsets(_exact(word_ptr, f"{name}['wi'][0]", np.int64, (v + 1,)), n,
                   name=f"{name}['wi'][0]", of="len(state.words)")
        _below(_exact(word_z, f"{name}['wi'][1]", np.int32, (n,)), k, f"{name}['wi'][1]",
               "n_topics")
        _below(_exact(tok_pos, f"{name}['wi'][2]", np.int32, (n,)), n, f"{name}['wi'][2]",
               "n_tokens")


def _check_warp(parts, d: int, v: int, n: int) -> None:
    """The warp sampler's item-major order and block bounds (layout.warp_layout)."""
    name = "state.layout['warp']"
    if not (isinstance(parts, tuple) and len(parts) == 4 and all(
            isinstance(a, np.ndarray) for a in parts)):
        raise ValueError(f"{name} must be the tuple (word_ptr, perm, user_bounds, "
                         "item_bounds) that init_state builds; build the state again")
    word_ptr, perm, user_bounds, item_bounds = parts
    as_offsets(_exact(word_ptr, f"{name}[0]", np.int64, (v + 1,)), n, name=f"{name}[0]",
               of="len(state.words)")
    _below(_exact(perm, f"{name}[1]", np.int32, (n,)), n, f"{name}[1]", "n_tokens")
    for i, bounds, last in ((2, user_bounds, d), (3, item_bounds, v)):
        _exact(bounds, f"{name}[{i}]", np.int64, 1)
        if bounds.shape[0] < 2 or bounds[0] != 0 or bounds[-1] != last or (
                np.diff(bounds).min() < 0):
            raise ValueError(f"{name}[{i}] must be block bounds from 0 to {last}; build the "
                             "state again")


def _check_packed(wc, v: int, k: int) -> None:
    """The sparse sampler's packed rows: offsets, lengths within capacity, topics < K."""
    name = "state.layout['wc']"
    wc_ptr = _exact(wc[0], f"{name}[0]", np.int64, (v + 1,))
    values = wc[1]
    wide = getattr(values, "dtype", None) == np.int64  # int64 entries for huge counts
    _exact(values, f"{name}[1]", np.int64 if wide else np.int32, 1)
    wc_len = _exact(wc[2], f"{name}[2]", np.int32, (v,))
    as_offsets(wc_ptr, int(wc_ptr[-1]), name=f"{name}[0]", of="its last entry")
    if wc_ptr[-1] > values.shape[0] or (v and (
            wc_len.view(np.uint32) > np.diff(wc_ptr)).any()):
        raise ValueError(f"{name}: a packed row is longer than its capacity; build the "
                         "state with init_state or restore_state")
    bits = max(1, (k - 1).bit_length())
    if values.size and (values.min() < 0 or (values & ((1 << bits) - 1)).max() >= k):
        raise ValueError(f"{name}[1] holds a topic outside [0, n_topics = {k})")
