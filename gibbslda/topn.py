"""Top-k, exactly: the one home of "the k best of each row", ties to the lower index.

- :func:`top_k`: the k best columns of each row of a dense score block (ranking metrics,
  users' interests, topics' top items and labels, the report and the CLI tables).
- :func:`top_n`: the top N items per user by p(item | user) = theta . phi, exactly, in
  bounded memory (never the users x items score matrix).
- :func:`top_n_sparse`: the same for a fitted model's users from its sparse tables
  (:mod:`gibbslda.scores`), never phi: what :mod:`gibbslda.recommend` uses.

Both order by score, highest first, and equal scores by the lower item (column) index, so
a ranking is a deterministic function of the scores and every top-k list is a prefix of
the top-K list for K > k.

How top-N stays fast in bounded memory: users are scored a chunk at a time (about
``SCORES_PER_CHUNK`` scores, never users x items at once) by one float32 BLAS product.
The items are split into groups of ``_GROUP``; the n-th best group maximum is a score that
n distinct items reach, so it bounds the n-th best score from below, and only items within
a rigorous float32 error bound of it (relative (K + 4) 2^-22, see :func:`_error_bound`)
are rescored exactly in float64 and ranked by ``top_k``. The result is the exact float64
top N, as if every score had been computed in float64.
"""
from __future__ import annotations

import numpy as np

from gibbslda import _validate
from gibbslda._kernels import scores as _score_kernels

SCORES_PER_CHUNK = 2 ** 23  # users per chunk = this // n_items: a 32 MB float32 block
_GROUP = 64                 # items per screening group (at most)
_TINY32 = 2.0 ** -60        # float32 inputs below this are flushed: no subnormal products
_TINY64 = 2.0 ** -400
_RESCORE_VALUES = 2 ** 21   # candidate x topic products rescored at a time (16 MB)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best items of each row of a dense score block, best first.

    Ties go to the lower item index; ``-inf`` items are never returned (-1 instead).

    Parameters
    ----------
    scores : float (n_rows, n_items), no NaN.
    k : int >= 1.

    Returns
    -------
    items : int64 (n_rows, k), -1 where a row has fewer than k finite-scored items.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (users x items), got shape {scores.shape}")
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; give items that must not be recommended -inf")
    n_rows, n_items = scores.shape
    kk = min(int(k), n_items)
    items = np.full((n_rows, int(k)), -1, dtype=np.int64)
    if kk == 0 or n_rows == 0:
        return items
    if kk < n_items:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        threshold = np.take_along_axis(scores, part, axis=1).min(axis=1)[:, None]
    else:
        threshold = scores.min(axis=1)[:, None]
    # Everything above the k-th best score is in; of the items tied with it, the
    # lowest-indexed ones fill the remaining places.
    above = scores > threshold
    tied = scores == threshold
    need = kk - above.sum(axis=1, dtype=np.int64)
    chosen = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int64) <= need[:, None]))
    best = np.nonzero(chosen)[1].reshape(n_rows, kk)  # ascending item index per row
    values = np.take_along_axis(scores, best, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    items[:, :kk] = np.where(values == -np.inf, -1, best)
    return items


def top_n(theta: np.ndarray, phi: np.ndarray, n: int = 20, *, exclude=None,
          chunk_size: int | None = None, exclude_items=None
          ) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` highest-scoring items for every row of ``theta``.

    Parameters
    ----------
    theta : (D, K) users' topic mixes, finite and >= 0.
    phi : (K, V) topics' item distributions, finite and >= 0.
    n : items per user (at most V are returned).
    exclude : optional CSR pair ``(indptr, indices)`` of items to leave out per user
        (for example what each user already bought; repeats are harmless).
    chunk_size : users scored per matrix product; the working memory is about
        5 x chunk_size x V bytes (a float32 score block and its group maxima) plus the
        float32 and transposed copies of phi. Default: ``SCORES_PER_CHUNK // V`` (at
        least 1; 167 users at V = 50k, measured fastest between 32 and 512).
    exclude_items : optional item indices no user gets.

    Returns
    -------
    items : int64 (D, min(n, V)) item indices, best first (-1 where a user has fewer
        candidates).
    scores : float64 (D, min(n, V)) p(item | user) of each (-inf where items is -1).
    """
    theta = _as_weights(theta, "theta", ndim=2)
    phi = _as_weights(phi, "phi", ndim=2)
    if theta.shape[1] != phi.shape[0]:
        raise ValueError(f"theta has {theta.shape[1]} topics (columns) but phi has "
                         f"{phi.shape[0]} (rows)")
    if phi.shape[0] == 0:
        raise ValueError("phi must have at least one topic (row)")
    _check_count("n", n)
    n_users, n_items = theta.shape[0], phi.shape[1]
    chunk = _chunk_size(chunk_size, n_items)
    exclude = _check_exclude(exclude, n_users, n_items)
    banned = None if exclude_items is None else _check_items(exclude_items, n_items)
    width = min(int(n), n_items)
    items = np.full((n_users, width), -1, dtype=np.int64)
    scores = np.full((n_users, width), -np.inf)
    if n_users == 0 or width == 0:
        return items, scores
    screen = _Screen(phi, width, theta.max(initial=0.0), theta.sum(axis=1).max())
    for start in range(0, n_users, chunk):
        stop = min(start + chunk, n_users)
        pairs = None
        if exclude is not None:
            indptr, indices = exclude
            pairs = (np.repeat(np.arange(stop - start), np.diff(indptr[start:stop + 1])),
                     indices[indptr[start]:indptr[stop]])
        items[start:stop], scores[start:stop] = screen.top(theta[start:stop], pairs, banned)
    return items, scores


class _Screen:
    """phi prepared once for the chunks of one call: float32 (or float64) copy in groups.

    Item w sits in group w % G at slot w // G, so the screening block of a chunk reshapes
    to (users, _GROUP slots, G groups) and the group maxima are one pass over it.
    """

    def __init__(self, phi: np.ndarray, n: int, theta_max: float, theta_row_sum: float):
        n_topics, n_items = phi.shape
        self.n, self.n_items, self.phi = n, n_items, phi
        self.phi_t = np.ascontiguousarray(phi.T)  # rows gathered for exact rescoring
        group = int(np.clip(n_items // (8 * n), 1, _GROUP))
        self.n_groups = -(-n_items // group)
        self.dtype, self.tiny, unit = _screen_precision(n_topics, theta_max,
                                                        phi.max(initial=0.0))
        padded = np.zeros((n_topics, group * self.n_groups), dtype=self.dtype)
        padded[:, :n_items] = np.where(phi < self.tiny, 0.0, phi)
        self.phi_s, self.group = padded, group
        self.slots = np.arange(group, dtype=np.int64) * self.n_groups
        self.gamma = _error_bound(n_topics, unit)
        column_max = phi.sum(axis=0).max(initial=0.0)
        self.eta = self.tiny * (column_max + theta_row_sum)  # what flushing can change

    def top(self, theta: np.ndarray, pairs, banned) -> tuple[np.ndarray, np.ndarray]:
        """Exact top n of one chunk of users: (items, scores), each (len(theta), n)."""
        rows, items = self._candidates(theta, pairs, banned)
        order = np.lexsort((items, rows))  # by user, then item: top_k's tie rule holds
        rows, items = rows[order], items[order]
        exact = np.empty(rows.size)
        step = max(1, _RESCORE_VALUES // theta.shape[1])  # bounded even when many tie
        for start in range(0, rows.size, step):
            part = slice(start, start + step)
            exact[part] = np.cumsum(theta[rows[part]] * self.phi_t[items[part]], axis=1)[:, -1]
        n_rows = theta.shape[0]
        counts = np.bincount(rows, minlength=n_rows)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = np.arange(rows.size) - starts[rows]
        width = max(int(counts.max(initial=0)), 1)
        block = np.full((n_rows, width), -np.inf)
        block[rows, slot] = exact
        ids = np.full((n_rows, width), -1, dtype=np.int64)
        ids[rows, slot] = items
        best = top_k(block, self.n)
        found = best >= 0
        best = np.where(found, best, 0)
        return (np.where(found, np.take_along_axis(ids, best, axis=1), -1),
                np.where(found, np.take_along_axis(block, best, axis=1), -np.inf))

    def _candidates(self, theta, pairs, banned) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) of every item whose screening score could put it in the top n."""
        n_rows = theta.shape[0]
        screen = np.where(theta < self.tiny, 0.0, theta).astype(self.dtype)
        block = screen @ self.phi_s
        block[:, self.n_items:] = -np.inf
        if banned is not None:
            block[:, banned] = -np.inf
        if pairs is not None:
            block[pairs[0], pairs[1]] = -np.inf
        cube = block.reshape(n_rows, self.group, self.n_groups)
        group_max = cube.max(axis=1)
        # n distinct items score at least the n-th best group maximum q (n <= n_groups by
        # the choice of the group size), so the n-th best exact score is about q or more,
        # and every item of the top n scores at least ``low`` here (see _error_bound).
        last = self.n_groups - self.n
        q = np.partition(group_max, last, axis=1)[:, last].astype(np.float64)
        with np.errstate(invalid="ignore"):
            low = (1 - self.gamma) * (q / (1 + self.gamma) - self.eta)
        low[np.isneginf(q)] = -np.inf
        r, g = np.nonzero(group_max >= low[:, None])
        values = cube[r, :, g]  # (selected groups, slots)
        keep = (values >= low[r, None]) & (values > -np.inf)
        rows = np.broadcast_to(r[:, None], keep.shape)[keep]
        items = (g[:, None] + self.slots[None, :])[keep]
        return rows.astype(np.int64), items.astype(np.int64)


def _screen_precision(n_topics: int, theta_max: float, phi_max: float):
    """float32 screening where nothing can overflow and its error bound is useful, else
    float64. Returns (dtype, flush threshold, unit roundoff)."""
    theta_max, phi_max = float(theta_max), float(phi_max)  # Python floats: inf, no warning
    reach = max(theta_max, phi_max, theta_max * phi_max * (n_topics + 1))
    if reach < 2.0 ** 100 and _error_bound(n_topics, 2.0 ** -24) < 0.01:
        return np.float32, _TINY32, 2.0 ** -24
    if not reach < 2.0 ** 1000:
        raise ValueError(f"theta and phi are too large to score (largest values "
                         f"{theta_max:.3g} and {phi_max:.3g}); rescale them")
    return np.float64, _TINY64, 2.0 ** -53


def _error_bound(n_topics: int, unit: float) -> float:
    """A relative error bound gamma for screening scores against the exact ones.

    A sum of K non-negative products in any order (BLAS blocking, FMA), inputs rounded
    first, is within (K + 2) u of the real value (Higham, "Accuracy and Stability of
    Numerical Algorithms", 2002, sec. 3.1); the float64 rescoring adds K 2^-53. With the
    inputs below the flush threshold set to zero (absolute change at most ``eta``):
    s_screen >= (1 - gamma)(s_exact - eta) and s_screen <= (1 + gamma) s_exact.
    4 (K + 4) u covers both terms with a margin.
    """
    return 4.0 * (n_topics + 4) * unit


# -- from the sparse tables of a model --------------------------------------------------
USERS_PER_CALL = 256  # users per kernel call of top_n_sparse (the calls run on threads)


def top_n_sparse(tables, n: int = 20, *, theta=None, users=None, exclude_seen=False,
                 exclude=None, exclude_items=None, chunk_size: int | None = None,
                 n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_n` for a fitted model from its sparse tables: the same items and scores,
    bit for bit, without phi or any users x items block.

    Parameters
    ----------
    tables : :class:`gibbslda.scores.Tables` of the model.
    n : items per user (at most V are returned).
    theta : (D, K) topic mixes of the form (c_k + alpha_k) / (n_d + sum alpha) with
        c_k >= 0 (a fold-in's mean counts), alpha the model's; or
    users : ``(state, rows)``: the training users ``rows`` (indices) of the chain state,
        theta read from their own tokens as ``doc_topic_`` computes it.
    exclude_seen : with ``users``, leave out each user's own items.
    exclude, exclude_items : as in :func:`top_n`.
    chunk_size : users per kernel call (default ``USERS_PER_CALL``).
    n_threads : threads the calls run on (default: numba's thread count); never changes
        the result.

    Notes
    -----
    A user's score is p(w | d) = S_w / (n_d + sum alpha) + const with S_w the prior part
    lambda * ``tables.prior`` plus, over the user's own topics only, their weights times
    n_kw. The kernel (:func:`gibbslda._kernels.scores._top_one`) reads the items by
    decreasing prior and each own topic's items by decreasing count down to a depth that
    doubles until n items beat every unread one by a margin of 4 (2K + 16) 2^-53
    (relative: first-order rounding bounds of the screening and of the exact scores,
    doubled and doubled again); those within the margin of the n-th best are scored
    exactly as :func:`top_n` scores them. Work per user: O((|own topics| + 1) x depth x
    row length + K x candidates), not O(K V).
    """
    import numba

    if (theta is None) == (users is None):
        raise TypeError("top_n_sparse takes theta or users, one of them")
    _check_count("n", n)
    n_items, n_topics = tables.n_items, tables.n_topics
    if theta is not None:
        theta = _as_weights(theta, "theta", ndim=2)
        if theta.shape[1] != n_topics:
            raise ValueError(f"theta has {theta.shape[1]} topics (columns), the model "
                             f"{n_topics}: pass theta from this model (model.transform)")
        n_users = theta.shape[0]
    else:
        state, rows = users
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        n_users = rows.shape[0]
        tokens = (state.indptr, state.words, state.z, np.float64(state.alpha.sum()))
    exclude = _check_exclude(exclude, n_users, n_items)
    banned = np.zeros(n_items, dtype=np.bool_)
    if exclude_items is not None:
        banned[_check_items(exclude_items, n_items)] = True
    step = USERS_PER_CALL if chunk_size is None else _chunk_size(chunk_size, 1)
    width = min(int(n), n_items)
    items = np.full((n_users, width), -1, dtype=np.int64)
    scores = np.full((n_users, width), -np.inf)
    if n_users == 0 or width == 0:
        return items, scores
    model = tables.kernel_args()
    gamma = 4.0 * (2 * n_topics + 16) * 2.0 ** -53
    ex_ptr, ex_items = exclude if exclude is not None else (
        np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def run(start: int) -> None:
        stop = min(start + step, n_users)
        a, b = ex_ptr[start], ex_ptr[stop]
        ex = (ex_ptr[start:stop + 1] - a, ex_items[a:b], banned)
        if theta is not None:
            _score_kernels.top_n_theta(theta[start:stop], model, ex, np.int64(width), gamma,
                                       items[start:stop], scores[start:stop])
        else:
            _score_kernels.top_n_rows(tokens, rows[start:stop], (bool(exclude_seen), *ex),
                                      model, np.int64(width), gamma, items[start:stop],
                                      scores[start:stop])

    starts = range(0, n_users, step)
    threads = numba.get_num_threads() if n_threads is None else int(n_threads)
    if threads <= 1 or len(starts) == 1:
        for start in starts:
            run(start)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(threads, len(starts))) as pool:
            for done in [pool.submit(run, start) for start in starts]:
                done.result()
    return items, scores


# -- the model API ----------------------------------------------------------------------


def _check_count(name: str, value) -> None:
    _validate.check_int(name, value, minimum=1)


def _chunk_size(chunk_size, n_items: int) -> int:
    if chunk_size is None:
        return max(1, SCORES_PER_CHUNK // max(n_items, 1))
    _check_count("chunk_size", chunk_size)
    return int(chunk_size)


def _as_weights(x, name: str, *, ndim: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    numeric = np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    if x.dtype == bool or not numeric:
        raise TypeError(f"{name} must hold numbers, got {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.size and not (np.isfinite(x).all() and x.min() >= 0):
        raise ValueError(f"{name} must be finite and >= 0 (probabilities)")
    return x


def _check_exclude(exclude, n_users: int, n_items: int):
    if exclude is None:
        return None
    if not (isinstance(exclude, (tuple, list)) and len(exclude) in (2, 3)):
        raise TypeError(f"exclude must be a CSR pair (indptr, indices), got "
                        f"{type(exclude).__name__}")
    return _validate.as_csr(exclude[0], exclude[1], n_items=n_items, n_rows=n_users,
                            prefix="exclude: ", ids_dtype=np.int64)


def _check_items(items, n_items: int, name: str = "exclude_items") -> np.ndarray:
    return _validate.as_ids(np.asarray(items).ravel(), name, upper=n_items, dtype=np.int64)
