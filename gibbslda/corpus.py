"""Users x items interactions as a corpus: CSR offsets, token item ids, id maps.

Each user is a document and each interaction with an item one or more tokens of that item
(an integer weight is a repeat count). Tokens are grouped by user; within a user they are
ordered by item index (a pair's tokens by time, when the corpus has times). Users and
items are indexed in the sorted order of their original ids, so the corpus does not depend
on the order of the input rows. Event times, when given, ride along as ``times`` (int64
microseconds since 1970 UTC, one per token).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from gibbslda import _validate
from gibbslda._times import to_micros
from gibbslda._kernels import layout as _layout_kernels


@dataclass(frozen=True)
class Corpus:
    """A users x items token corpus.

    Attributes
    ----------
    indptr : int64 (n_users + 1,)  user ``d`` owns tokens ``indptr[d]:indptr[d + 1]``.
    words : int32 (n_tokens,)  item index of each token, grouped by user.
    user_ids : (n_users,)  original id of each user index.
    item_ids : (n_items,)  original id of each item index (the vocabulary).
    n_dropped_users : int  users in the input left with no tokens, and so dropped.
    n_dropped_tokens : int  tokens whose item is not in a given vocabulary, dropped.
    times : int64 (n_tokens,) or None  each token's event time in microseconds since
        1970-01-01 UTC, aligned with ``words``; None when the corpus has no times.
    """

    indptr: np.ndarray
    words: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    n_dropped_users: int = 0
    n_dropped_tokens: int = 0
    times: np.ndarray | None = None

    def __post_init__(self):
        if self.times is not None and np.shape(self.times) != np.shape(self.words):
            raise ValueError(f"times has shape {np.shape(self.times)}, expected one time a "
                             f"token {np.shape(self.words)}")

    @property
    def n_users(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.words.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per user, int64 (n_users,)."""
        return np.diff(self.indptr)

    def __repr__(self) -> str:
        return (f"Corpus(n_users={self.n_users}, n_items={self.n_items}, "
                f"n_tokens={self.n_tokens}, n_dropped_users={self.n_dropped_users}"
                + (", timed" if self.times is not None else "") + ")")

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The users x items count matrix as a CSR triplet (indptr, indices, data).

        Tokens are grouped by user and ordered by item within a user, so the entries are
        the runs of equal items: one linear pass, no sort."""
        words = self.words
        starts = np.ones(words.shape[0], dtype=bool)
        starts[1:] = words[1:] != words[:-1]
        starts[self.indptr[:-1][self.lengths > 0]] = True  # a user's first token starts a run
        first = np.flatnonzero(starts)
        data = np.diff(np.append(first, words.shape[0])).astype(np.int64)
        indptr = np.searchsorted(first, self.indptr).astype(np.int64)
        return indptr, words[first].astype(np.int32), data

    @classmethod
    def from_frame(cls, df, *, user: str = "user_id", item: str = "item_id",
                   weight: str | None = None, time: str | None = None, vocabulary=None,
                   drop_empty: bool = True) -> "Corpus":
        """Build from a polars or pandas frame with one row per interaction.

        Parameters
        ----------
        df : polars.DataFrame | polars.LazyFrame | pandas.DataFrame
        user, item : column names of the user and item ids (no nulls).
        weight : optional column of non-negative integer repeat counts (default 1 a row).
        time : optional column of event times (datetimes, dates, ISO strings, or unix
            seconds / ms / us told apart by magnitude; no nulls): each token of a row gets
            the row's time, in ``times``; a pair's tokens are ordered by time.
        vocabulary : optional item ids to index items by (for example a fitted model's
            ``item_ids_``); rows with other items are dropped and counted.
        drop_empty : drop users left with no tokens (counted in ``n_dropped_users``).
        """
        frame = _as_polars(df)
        columns = [user, item] + [c for c in (weight, time) if c is not None]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"column {missing[0]!r} not found; the frame has columns "
                             f"{frame.columns}: pass user=, item=, weight= or time= to name "
                             "yours")
        for name in (user, item):
            n_null = frame.get_column(name).null_count()
            if n_null:
                raise ValueError(f"column {name!r} has {n_null} null ids; drop or fill those "
                                 "rows first")
        frame = frame.select(
            pl.col(user).alias("user"),
            pl.col(item).alias("item"),
            _weights(frame, weight).alias("weight"),
            *([pl.lit(to_micros(frame.get_column(time), time)).alias("time")]
              if time is not None else []),
        )
        return _build(frame, vocabulary, drop_empty)

    @classmethod
    def from_csr(cls, indptr, indices=None, data=None, *, n_items: int | None = None,
                 drop_empty: bool = True) -> "Corpus":
        """Build from a users x items count matrix in CSR form.

        Pass the triplet, or one object with ``.indptr``, ``.indices`` and ``.data`` (a
        scipy.sparse CSR matrix or array works). ``data`` holds non-negative integer
        counts (default 1 each). User ids are row numbers, item ids column numbers.

        Built by counting, in O(nnz + tokens): besides the corpus's own arrays (4 bytes a
        token and 8 a user) it holds an int64 copy of ``data`` only when ``data`` is not
        int64 already (8 bytes per entry); rows whose columns are out of order are sorted
        one row at a time.
        """
        if indices is None and hasattr(indptr, "indices"):
            matrix = indptr
            indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
            if n_items is None and getattr(matrix, "shape", None) is not None:
                n_items = int(matrix.shape[1])
        if indices is None:
            raise TypeError("from_csr needs (indptr, indices, data) or an object with "
                            ".indptr, .indices and .data")
        if n_items is not None:
            n_items = _validate.check_int("n_items", n_items, minimum=0)
        indptr, indices = _validate.as_csr(indptr, indices, n_items=n_items,
                                           bound=f"n_items = {n_items}")
        n_cols = int(indices.max()) + 1 if indices.size else 0
        data = _counts(indices.size, data)
        vocabulary = np.arange(n_items if n_items is not None else n_cols, dtype=np.int64)
        corpus = _from_rows(indptr, indices, data, n_users=indptr.size - 1,
                            drop_empty=drop_empty, n_input=None)
        return Corpus(corpus.indptr, corpus.words, corpus.user_ids, vocabulary,
                      corpus.n_dropped_users, 0)

    @classmethod
    def from_lists(cls, users_items, *, user_ids=None, vocabulary=None,
                   drop_empty: bool = True) -> "Corpus":
        """Build from one list of item ids per user; each occurrence is one token."""
        users_items = list(users_items)
        if user_ids is None:
            user_ids = np.arange(len(users_items), dtype=np.int64)
        user_ids = np.asarray(user_ids)
        if user_ids.shape[0] != len(users_items):
            raise ValueError(f"user_ids has {user_ids.shape[0]} ids for "
                             f"{len(users_items)} lists of items")
        lengths = np.array([len(items) for items in users_items], dtype=np.int64)
        flat = [w for items in users_items for w in items]
        frame = pl.DataFrame({"user": np.repeat(np.arange(len(users_items)), lengths),
                              "item": pl.Series(flat, strict=False) if flat else [],
                              "weight": np.ones(len(flat), dtype=np.int64)})
        if any(v is None for v in flat):
            raise ValueError("item ids must not be None")
        corpus = _build(frame, vocabulary, drop_empty, users=np.arange(len(users_items)))
        return _relabel_users(corpus, user_ids)

    def with_vocabulary(self, item_ids) -> "Corpus":
        """The same users indexed against another vocabulary; unknown items are dropped."""
        frame = pl.DataFrame({
            "user": np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths),
            "item": _series(self.item_ids[self.words]),
            "weight": np.ones(self.n_tokens, dtype=np.int64),
            **({"time": self.times} if self.times is not None else {}),
        })
        corpus = _build(frame, item_ids, drop_empty=False, users=np.arange(self.n_users))
        return _relabel_users(corpus, self.user_ids)


def as_corpus(x, *, vocabulary=None, drop_empty: bool = True) -> Corpus:
    """Accept a Corpus, a CSR-like object or one list of item ids per user."""
    if isinstance(x, Corpus):
        if vocabulary is None:
            return x
        if _same_ids(x.item_ids, vocabulary):  # already indexed by it: no join
            return Corpus(x.indptr, x.words, x.user_ids, x.item_ids, times=x.times)
        return x.with_vocabulary(vocabulary)
    if hasattr(x, "indptr") and hasattr(x, "indices"):
        corpus = Corpus.from_csr(x, drop_empty=drop_empty)
        return corpus if vocabulary is None else corpus.with_vocabulary(vocabulary)
    if isinstance(x, (pl.DataFrame, pl.LazyFrame, pd.DataFrame)):
        raise TypeError("a data frame needs its column names: build the corpus with "
                        "Corpus.from_frame(df, user=..., item=...)")
    if isinstance(x, (list, tuple)):
        return Corpus.from_lists(x, vocabulary=vocabulary, drop_empty=drop_empty)
    raise TypeError(f"expected a Corpus, a CSR matrix or a list of item lists, "
                    f"got {type(x).__name__}")


def _same_ids(a, b) -> bool:
    """Whether two id arrays are the same ids in the same order."""
    if a is b:
        return True
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))


def _as_polars(df) -> pl.DataFrame:
    if isinstance(df, pl.LazyFrame):
        return df.collect()
    if isinstance(df, pl.DataFrame):
        return df
    if isinstance(df, pd.DataFrame):
        try:
            return pl.from_pandas(df)
        except (TypeError, ValueError) as exc:  # pyarrow: a column mixes types
            mixed = [str(c) for c in df.columns if df[c].dtype == object
                     and df[c].dropna().map(type).nunique() > 1]
            where = f"column {mixed[0]!r}" if mixed else "a column"
            raise TypeError(f"{where} mixes value types (for example strings and numbers); "
                            f"make each id column one type, e.g. df[col].astype(str)") from exc
    raise TypeError(f"expected a polars or pandas DataFrame, got {type(df).__name__}")


def _weights(frame: pl.DataFrame, weight: str | None) -> pl.Expr:
    if weight is None:
        return pl.lit(1, dtype=pl.Int64)
    return pl.lit(_check_weights(frame.get_column(weight), weight))


def _check_weights(values: pl.Series, name: str) -> pl.Series:
    if values.null_count():
        raise ValueError(f"column {name!r} has {values.null_count()} null weights; fill "
                         "them (for example with 1) or drop those rows")
    if values.dtype.is_float():
        if not values.is_finite().all() or (values != values.round()).any():
            raise ValueError(f"column {name!r} must hold whole repeat counts, found "
                             "fractional or non-finite values; round or rescale them")
    elif not values.dtype.is_integer():
        raise TypeError(f"column {name!r} must be integer repeat counts, got {values.dtype}")
    if values.len() and values.min() < 0:
        raise ValueError(f"column {name!r} has negative weights (min {values.min()}); "
                         "weights are repeat counts, so filter or clip them to >= 0")
    return values.cast(pl.Int64)


def _series(values) -> pl.Series:
    """A polars Series of ids; numpy object arrays (strings read back from Parquet, say)
    go through a list so polars infers String or Int64 instead of its Object type, which
    cannot be joined."""
    values = np.asarray(values)
    return pl.Series(values.tolist() if values.dtype == object else values)


def _build(frame: pl.DataFrame, vocabulary, drop_empty: bool, users=None) -> Corpus:
    """Index users and items, aggregate weights, expand to tokens grouped by user."""
    n_input_tokens = int(frame.get_column("weight").sum() or 0)
    if users is None:
        users = frame.get_column("user").unique().sort().to_numpy()
    if vocabulary is None:
        positive = frame.filter(pl.col("weight") > 0)
        vocab = positive.get_column("item").unique().sort()
    else:
        vocab = _series(vocabulary).alias("item")
    user_map = pl.DataFrame({"user": pl.Series(users).cast(frame.schema["user"]),
                             "d": np.arange(len(users), dtype=np.int64)})
    try:
        item_map = pl.DataFrame({"item": vocab.cast(frame.schema["item"], strict=False),
                                 "w": np.arange(vocab.len(), dtype=np.int32)})
    except pl.exceptions.PolarsError:
        item_map = pl.DataFrame({"item": [], "w": []}, schema={"item": frame.schema["item"],
                                                              "w": pl.Int32})
    pairs = frame.join(user_map, on="user").join(item_map, on="item")
    if "time" in pairs.columns:
        return _build_timed(pairs, users, vocab, drop_empty, n_input_tokens,
                            vocabulary is not None)
    d = pairs.get_column("d").to_numpy()
    w = pairs.get_column("w").to_numpy()
    weight = pairs.get_column("weight").to_numpy()
    del pairs
    # the rows grouped by user by a counting sort; _from_rows orders each user's items
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(np.bincount(d, minlength=len(users)), out=indptr[1:])
    indices = np.empty(d.shape[0], dtype=np.int32)
    counts = np.empty(d.shape[0], dtype=np.int64)
    _layout_kernels.group_rows(_writable(d, np.int64), _writable(w, np.int32),
                               _writable(weight, np.int64), indptr, indices, counts)
    del d, w, weight
    corpus = _from_rows(indptr, indices, counts, n_users=len(users), drop_empty=drop_empty,
                        n_input=n_input_tokens, vocabulary_given=vocabulary is not None)
    return Corpus(corpus.indptr, corpus.words, np.asarray(users)[corpus.user_ids],
                  vocab.to_numpy(), corpus.n_dropped_users, corpus.n_dropped_tokens)


def _build_timed(pairs: pl.DataFrame, users, vocab: pl.Series, drop_empty: bool,
                 n_input: int, vocabulary_given: bool) -> Corpus:
    """Tokens with times: rows sorted by (user, item, time), each expanded to ``weight``
    tokens of its time; the same ``words`` as the untimed path (a polars sort, not the
    counting sort: O(n log n) in rows)."""
    pairs = pairs.filter(pl.col("weight") > 0).sort(["d", "w", "time"])
    weight = pairs.get_column("weight").to_numpy()
    lengths = np.bincount(pairs.get_column("d").to_numpy(), weights=weight,
                          minlength=len(users)).astype(np.int64)
    keep = lengths > 0 if drop_empty else np.ones(len(users), dtype=bool)
    indptr = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=indptr[1:])
    words = np.repeat(pairs.get_column("w").to_numpy().astype(np.int32), weight)
    times = np.repeat(pairs.get_column("time").to_numpy().astype(np.int64), weight)
    if words.shape[0] == 0 and drop_empty:
        raise ValueError("the corpus is empty: no user has a token with a positive weight"
                         + (" and a known item" if vocabulary_given else "")
                         + "; check the filters and the weight column")
    return Corpus(indptr, np.ascontiguousarray(words), np.asarray(users)[keep],
                  vocab.to_numpy(), int((~keep).sum()), n_input - words.shape[0],
                  times=np.ascontiguousarray(times))


def _writable(values, dtype) -> np.ndarray:
    """``values`` as a contiguous writable ``dtype`` array: polars hands out read-only views
    when it can, and a read-only array is another numba signature (another compile)."""
    values = np.ascontiguousarray(values, dtype=dtype)
    return values if values.flags.writeable else values.copy()


def _from_rows(indptr, indices, counts, *, n_users: int, drop_empty: bool, n_input,
               vocabulary_given: bool = False) -> Corpus:
    """Tokens from CSR counts (rows = users, columns = item indices, counts >= 0), each
    user's in increasing item order; ``user_ids`` of the result are the kept row numbers.
    ``n_input``: the tokens given, to count those dropped (None: none were)."""
    lengths = _layout_kernels.row_sums(indptr, counts)
    keep = lengths > 0 if drop_empty else np.ones(n_users, dtype=bool)
    token_ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=token_ptr[1:])
    words = np.empty(int(token_ptr[-1]), dtype=np.int32)
    _layout_kernels.row_tokens(indptr, indices, counts, token_ptr, words)
    out_ptr = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=out_ptr[1:])
    corpus = Corpus(indptr=out_ptr, words=words, user_ids=np.flatnonzero(keep),
                    item_ids=np.zeros(0, dtype=np.int64), n_dropped_users=int((~keep).sum()),
                    n_dropped_tokens=0 if n_input is None else n_input - words.shape[0])
    if corpus.n_tokens == 0 and drop_empty:
        raise ValueError("the corpus is empty: no user has a token with a positive weight"
                         + (" and a known item" if vocabulary_given else "")
                         + "; check the filters and the weight column")
    return corpus


def _counts(n: int, data) -> np.ndarray:
    """``from_csr``'s ``data`` as int64 repeat counts, checked as a weight column is (one
    count per index, whole, finite, >= 0); checked in blocks, so no temporary the size of
    ``data``."""
    if data is None:
        return np.ones(n, dtype=np.int64)
    data = np.asarray(data)
    if data.shape != (n,):
        raise ValueError(f"data must hold one count per index (len(indices) = {n}), got "
                         f"shape {data.shape}")
    if data.dtype.kind == "f":
        for start in range(0, n, _BLOCK):
            block = data[start:start + _BLOCK]
            if not (np.isfinite(block).all() and (block == np.round(block)).all()):
                raise ValueError("column 'data' must hold whole repeat counts, found "
                                 "fractional or non-finite values; round or rescale them")
    elif data.dtype.kind not in "iu":
        raise TypeError(f"column 'data' must be integer repeat counts, got {data.dtype}")
    if n and data.min() < 0:
        raise ValueError(f"column 'data' has negative weights (min {data.min()}); weights "
                         "are repeat counts, so filter or clip them to >= 0")
    return _validate.canonical(data, np.int64)


_BLOCK = 1 << 20  # entries checked at once


def _relabel_users(corpus: Corpus, user_ids: np.ndarray) -> Corpus:
    """Replace row-number user ids by the caller's ids (rows kept by ``_build``)."""
    kept = corpus.user_ids.astype(np.int64)
    return Corpus(corpus.indptr, corpus.words, np.asarray(user_ids)[kept], corpus.item_ids,
                  corpus.n_dropped_users, corpus.n_dropped_tokens, corpus.times)
