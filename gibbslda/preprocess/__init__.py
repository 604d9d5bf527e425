"""Interaction logs -> weighted user x word token counts, filtered and split (polars).

:func:`prepare` runs one pipeline, lazily where it reads the log:

1. read a file (``.csv``/``.tsv``/``.data``, ``.parquet``, ``.ndjson``, by suffix) or a
   polars/pandas frame, in a public layout (``format=``) or any layout with named columns
   (``format="generic"``), into canonical columns ``user``, ``item``, ``event``,
   ``timestamp``, ``quantity``, ``category``, ``label``, ``rating``;
2. one streaming scan counts the rows per event (with why any are dropped) and sums
   tokens per (user, item[, category]); a log of more than ``BUCKET_ROWS`` rows is read
   in several passes, one bucket of users each, so memory follows the pairs kept, not the
   rows read (a text file is first written, once, to a temporary Parquet file under the
   system temporary folder, ``TMPDIR``: about 12 bytes an event);
3. weights: a row gives ``weights[event]`` tokens per unit (``abs(quantity)`` units when
   a quantity column is used, else 1); it subtracts when its weight or its quantity is
   negative (returns, cancellations). A user-item pair keeps ``clip(sum, 0, cap)`` tokens;
4. words are items, or item categories (``word="category"``);
5. iterative k-core filtering of (user, word) pairs;
6. an optional seeded split of the pairs into parts (a pair is never in two parts).

A pair's time is the first time the user touched it (``first_seen``): time-based splits
ask which words a user comes to next. :func:`write_prepared` writes the result as a
folder (Parquet tokens, id maps, labels, parts, a JSON summary) and :func:`read_prepared`
reads it back; :meth:`Prepared.corpus` builds a :class:`~gibbslda.corpus.Corpus` per part.

The code lives in modules: :mod:`.readers` (sources, formats, canonical columns),
:mod:`.weigh` (aggregation, weights, words, k-core), :mod:`.splits` (split specs and
splitting) and :mod:`.folder` (:class:`Prepared` and its folder); :func:`prepare` is here,
and every public name is re-exported here.

References
----------
Liang, Krishnan, Hoffman & Jebara (2018), "Variational autoencoders for collaborative
filtering", WWW (held-out users with an observed and a hidden part: strong generalisation).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from gibbslda.preprocess.folder import (FOLDER_FORMAT, SCHEMA_VERSION, Prepared, check_target,
                                        read_prepared, write_prepared)
from gibbslda.preprocess.readers import _canonical, _n_rows, _open, _spill, _table
from gibbslda.preprocess.splits import HeldOutUsers, LeaveLastN, TimeCutoff, _split_options
from gibbslda.preprocess.weigh import _aggregate, _index_filter_split
from gibbslda.privacy import MIN_KEY_BYTES

__all__ = ["DEFAULT_WEIGHTS", "DEDUPE", "FOLDER_FORMAT", "FORMATS", "SCHEMA_VERSION",
           "HeldOutUsers", "LeaveLastN", "Prepared", "TimeCutoff", "prepare", "check_target", "read_prepared",
           "write_prepared"]

DEFAULT_WEIGHTS = {"view": 1, "cart": 2, "fav": 2, "purchase": 3, "return": -3, "rating": 1}
FORMATS = ("generic", "retailrocket", "taobao", "online_retail", "movielens")
DEDUPE = ("none", "exact", "event", "item")
# Rows a pass aggregates: polars's group-by tables take about 100 bytes a pair, so a pass
# holds at most about 1 GB; a bigger log is read in ceil(rows / BUCKET_ROWS) passes
BUCKET_ROWS = 10_000_000


def prepare(source, *, format: str = "generic", user: str | None = None,
            item: str | None = None, event: str | None = None, timestamp: str | None = None,
            quantity: str | None = None, category=None, labels=None, weights=None,
            cap: int | None = 10, dedupe: str = "none", word: str = "item",
            min_user_items: int = 1, min_item_users: int = 1, min_rating: float | None = None,
            split=None, seed: int = 0, pseudonym_key: bytes | None = None) -> Prepared:
    """Turn an interaction log into weighted (user, word) token counts, filtered and split.

    Parameters
    ----------
    source : str | os.PathLike | polars.DataFrame | polars.LazyFrame | pandas.DataFrame
        A ``.csv``/``.tsv``/``.txt``/``.data``, ``.parquet`` or ``.ndjson``/``.jsonl`` file
        (read lazily), or a frame with the columns of ``format``.
    format : {"generic", "retailrocket", "taobao", "online_retail", "movielens"}
        ``"retailrocket"``: ``events.csv`` (timestamp [ms], visitorid, event, itemid,
        transactionid). ``"taobao"``: ``UserBehavior.csv`` (user_id, item_id, category_id,
        behavior_type in pv/buy/cart/fav, timestamp [s]; header optional).
        ``"online_retail"``: UCI Online Retail (InvoiceNo, StockCode, Description,
        Quantity, InvoiceDate, UnitPrice, CustomerID, Country; invoices starting with "C"
        are returns). ``"movielens"``: ``ratings.csv`` (userId, movieId, rating,
        timestamp [s]) or ``u.data`` (tab-separated, no header). ``"generic"``: the
        columns named below.
    user, item : str, optional
        Generic only: id columns (integers or strings), default ``"user_id"``, ``"item_id"``.
    event, timestamp, quantity : str, optional
        Generic only: the behaviour column (strings, keys of ``weights``), the time column
        (datetimes, dates, ISO strings or unix seconds/ms/us by magnitude) and the integer
        quantity column. Without ``event`` every row weighs 1.
    category : str | polars.DataFrame | pandas.DataFrame, optional
        Item categories: a column name (generic) or a table whose first two columns are
        item id and category. Taobao logs carry their own. When words are items, an item
        without a label is labelled by its category (its most frequent one).
    labels : str | polars.DataFrame | pandas.DataFrame, optional
        Word labels: an item label column (generic; its most frequent value per item), or a
        table whose first two columns are word id and label. Online Retail uses Description.
    weights : dict[str, int], optional
        Tokens per event, merged over ``DEFAULT_WEIGHTS`` (view 1, cart 2, fav 2,
        purchase 3, return -3, rating 1); negative weights subtract, 0 ignores an event.
    cap : int or None
        Most tokens one user-item pair can hold (None: no cap).
    dedupe : {"none", "exact", "event", "item"}
        ``"exact"`` drops identical rows; ``"event"`` counts each event once per user-item
        (quantities ignored); ``"item"`` gives each user-item with a positive net the weight
        of its strongest event, once.
    word : {"item", "category"}
        What a token is.
    min_user_items, min_item_users : int
        k-core: repeatedly drop users with fewer words and words with fewer users.
    min_rating : float, optional
        MovieLens only: keep ratings >= this.
    split : LeaveLastN | TimeCutoff | HeldOutUsers | None
        How to split the pairs into parts (None: one part, ``"train"``).
    seed : int
        Seed of every random choice in the split.
    pseudonym_key : bytes, optional
        A secret of at least 16 bytes: every user id is replaced by its keyed hash
        (:func:`gibbslda.privacy.pseudonymize`) before users are indexed, so users are in
        the sorted order of their pseudonyms (a keyed permutation, unrelated to the order
        of the original ids) and the split's draws follow that order. The result is that
        of preparing the pseudonyms themselves; the key is not kept.

    Returns
    -------
    Prepared

    Notes
    -----
    Memory follows the (user, word) pairs kept, not the rows read: a source of more than
    ``BUCKET_ROWS`` rows (10M) is aggregated in passes over buckets of users, a big CSV or
    NDJSON file after one streaming copy of its rows to a temporary Parquet file (about
    12 bytes an event, under ``TMPDIR``). 100M Taobao-like events (58M pairs) peaked at
    3.7 GiB (``bench/scale_prepare.py``). A LazyFrame source is read in one pass.

    Raises
    ------
    ValueError
        A bad option value, a missing column or file, an unknown event, a file that does
        not parse, or nothing left after dropping and filtering (the message says which).
    TypeError
        An option or a column of the wrong type (the message names it and the columns).
    """
    opts = _options(format, weights, cap, dedupe, word, min_user_items, min_item_users,
                    min_rating, split, seed)
    opts["_pseudonym_key"] = _pseudonym_key(pseudonym_key)
    names = {"user": user, "item": item, "event": event, "timestamp": timestamp,
             "quantity": quantity, "category": category, "label": labels}
    # the column names given, recorded so that later reads of new events (update) match
    opts["columns"] = {("labels" if k == "label" else k): v for k, v in names.items()
                       if isinstance(v, str)}
    raw, where = _open(source, format)
    lf = _canonical(raw, format, names, where)
    cats = None if category is None or isinstance(category, str) else _table(category, "category")
    table_labels = None if labels is None or isinstance(labels, str) else _table(labels, "labels")
    has = set(lf.collect_schema().names())
    if opts["word"] == "category" and "category" not in has and cats is None:
        raise ValueError("word='category' needs categories: pass category= (a column name "
                         "or an item -> category table)")
    if min_rating is not None and "rating" not in has:
        raise ValueError("min_rating needs ratings, which only format='movielens' has; "
                         "filter your frame before prepare instead")
    if weights is not None and "event" not in has:
        raise ValueError("weights= needs an event column: pass event= (generic) or leave "
                         "weights unset")
    if isinstance(split, (LeaveLastN, TimeCutoff)) and "timestamp" not in has:
        raise ValueError(f"{type(split).__name__} needs times: pass timestamp= (generic) or "
                         "split with HeldOutUsers")
    n_rows, text = _n_rows(source, where)
    with tempfile.TemporaryDirectory(prefix="gibbslda-prepare-") as folder:
        if text and n_rows > 1.1 * BUCKET_ROWS:  # (an estimate, within a few %)
            lf, n_rows = _spill(lf, where, Path(folder))  # parse once, not once a bucket
        elif text:
            n_rows = None  # one pass over the text
        n_buckets = 1 if n_rows is None else max(1, -(-n_rows // BUCKET_ROWS))
        pairs, label_map, summary = _aggregate(lf, has, opts, where, cats, n_buckets)
    return _index_filter_split(pairs, label_map, table_labels, opts, summary)


def _pseudonym_key(key) -> bytes | None:
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"pseudonym_key must be bytes (for example key.encode()), got "
                        f"{type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"pseudonym_key must be at least {MIN_KEY_BYTES} bytes, got "
                         f"{len(key)}")
    return bytes(key)


def _options(fmt, weights, cap, dedupe, word, min_user_items, min_item_users, min_rating,
             split, seed) -> dict:
    """Validate every option before any data is read; return them JSON-ready."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    merged = dict(DEFAULT_WEIGHTS)
    if weights is not None:
        if not isinstance(weights, dict):
            raise TypeError("weights must be a dict of event name -> integer tokens, got "
                            f"{type(weights).__name__}")
        for key, value in weights.items():
            if not isinstance(key, str):
                raise TypeError(f"weights keys must be event names (str), got {key!r}")
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"weights[{key!r}] must be an integer number of tokens, "
                                f"got {value!r}")
            merged[key] = int(value)
    for name, value, low in (("cap", cap, 1), ("min_user_items", min_user_items, 1),
                             ("min_item_users", min_item_users, 1), ("seed", seed, 0)):
        if value is None and name == "cap":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if dedupe not in DEDUPE:
        raise ValueError(f"dedupe must be one of {list(DEDUPE)}, got {dedupe!r}")
    if word not in ("item", "category"):
        raise ValueError(f"word must be 'item' or 'category', got {word!r}")
    if min_rating is not None and (isinstance(min_rating, bool)
                                   or not isinstance(min_rating, (int, float))):
        raise TypeError(f"min_rating must be a number, got {min_rating!r}")
    return {"format": fmt, "weights": merged, "cap": None if cap is None else int(cap),
            "dedupe": dedupe, "word": word, "min_user_items": int(min_user_items),
            "min_item_users": int(min_item_users), "min_rating": min_rating,
            "split": _split_options(split), "seed": int(seed), "_split": split}
