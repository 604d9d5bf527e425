"""Interaction logs -> weighted user x word token counts, filtered and split (polars).

:func:`prepare` runs one pipeline, lazily where it reads the log:

1. read a file (``.csv``/``.tsv``/``.data``, ``.parquet``, ``.ndjson``, by suffix) or a
   polars/pandas frame, in a public layout (``format=``) or any layout with named columns
   (``format="generic"``), into canonical columns ``user``, ``item``, ``event``,
   ``timestamp``, ``quantity``, ``category``, ``label``, ``rating``;
2. one streaming scan counts the rows per event (with why any are dropped) and sums
   tokens per (user, item[, category]);
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

References
----------
Liang, Krishnan, Hoffman & Jebara (2018), "Variational autoencoders for collaborative
filtering", WWW (held-out users with an observed and a hidden part: strong generalisation).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from gibbslda.corpus import Corpus

DEFAULT_WEIGHTS = {"view": 1, "cart": 2, "fav": 2, "purchase": 3, "return": -3, "rating": 1}
FORMATS = ("generic", "retailrocket", "taobao", "online_retail", "movielens")
DEDUPE = ("none", "exact", "event", "item")
SCHEMA_VERSION = 1
FOLDER_FORMAT = "gibbslda-prepared"
_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".data", ".parquet", ".pq", ".ndjson", ".jsonl")
_FEW_LAST = 4  # LeaveLastN up to this n: linear passes; above: one sort
_FILES = ("prepared.json", "tokens.parquet", "users.parquet", "words.parquet")
_I64, _STR = pl.Int64, pl.String
# Fixed layouts: raw column names (and their dtypes when read from text) in file order.
_LAYOUTS = {
    "retailrocket": {"timestamp": _I64, "visitorid": _I64, "event": _STR, "itemid": _I64,
                     "transactionid": _I64},
    "taobao": {"user_id": _I64, "item_id": _I64, "category_id": _I64, "behavior_type": _STR,
               "timestamp": _I64},
    "movielens": {"userId": _I64, "movieId": _I64, "rating": pl.Float64, "timestamp": _I64},
}
_EVENTS = {"retailrocket": {"view": "view", "addtocart": "cart", "transaction": "purchase"},
           "taobao": {"pv": "view", "cart": "cart", "fav": "fav", "buy": "purchase"}}
_RETAIL = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID")
_RETAIL_ALIASES = {"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"}
_RETAIL_TIMES = ("%m/%d/%Y %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%y %H:%M")


@dataclass(frozen=True)
class LeaveLastN:
    """Hold out each user's ``n`` most recently first-seen words (ties broken by the seed).

    Users with at most ``n`` words stay whole in ``"train"``. Parts: train, test.
    """

    n: int = 1


@dataclass(frozen=True)
class TimeCutoff:
    """Hold out every pair first seen at or after a time. Parts: train, test.

    ``at`` is a datetime, a date or an ISO-8601 string (naive times are UTC), or a float in
    (0, 1): the time before which ``1 - at`` of the pairs were first seen.
    """

    at: datetime | date | str | float


@dataclass(frozen=True)
class HeldOutUsers:
    """Hold out a seeded ``fraction`` of the users with at least two words (strong
    generalisation, Liang et al. 2018); ``hidden_fraction`` of each one's words (at least
    one, at most all but one, seeded) are hidden. Parts: train, observed, hidden.
    """

    fraction: float = 0.2
    hidden_fraction: float = 0.2


@dataclass(frozen=True, eq=False)
class Prepared:
    """Weighted (user, word) token counts, their id maps and split parts.

    Attributes
    ----------
    tokens : polars.DataFrame (n_pairs rows)  ``user`` and ``word`` indices (Int32),
        ``count`` tokens (Int64, > 0), ``first_seen`` (Datetime[us], null without
        timestamps) and ``part`` (the name of its part); sorted by user, word.
    users : polars.DataFrame (n_users rows)  ``user`` index and original ``user_id``.
    words : polars.DataFrame (n_words rows)  ``word`` index, original ``word_id`` (an item
        or a category), ``label`` (null when unknown), ``n_users`` and ``n_tokens``.
    summary : dict  what was read, dropped and kept (the JSON summary of the folder).
    """

    tokens: pl.DataFrame
    users: pl.DataFrame
    words: pl.DataFrame
    summary: dict

    @property
    def parts(self) -> tuple[str, ...]:
        """Names of the parts, training part first."""
        return tuple(self.summary["parts"])

    def corpus(self, part: str = "train") -> Corpus:
        """The tokens of one part as a Corpus indexed by the full word vocabulary.

        Users are those with tokens in the part, in index order (so ``"observed"`` and
        ``"hidden"`` list the same users); ``item_ids`` are all words, so every part
        shares the training corpus's vocabulary.

        Parameters
        ----------
        part : str
            One of :attr:`parts`.

        Returns
        -------
        Corpus
            ``indptr`` int64 (n_users_in_part + 1,), ``words`` int32 (tokens in the part,),
            grouped by user and ordered by word index within a user.
        """
        if part not in self.parts:
            raise ValueError(f"no part {part!r}: this preparation has parts {list(self.parts)}")
        t = self.tokens.filter(pl.col("part") == part)
        users, inverse = np.unique(t.get_column("user").to_numpy(), return_inverse=True)
        counts = t.get_column("count").to_numpy()
        indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(inverse, weights=counts, minlength=users.shape[0]).astype(np.int64),
                  out=indptr[1:])
        words = np.repeat(t.get_column("word").to_numpy().astype(np.int32), counts)
        return Corpus(indptr, np.ascontiguousarray(words),
                      self.users.get_column("user_id").to_numpy()[users],
                      self.words.get_column("word_id").to_numpy())

    def corpora(self) -> dict[str, Corpus]:
        """Every part as a Corpus, keyed by part name (see :meth:`corpus`)."""
        return {part: self.corpus(part) for part in self.parts}


def prepare(source, *, format: str = "generic", user: str | None = None,
            item: str | None = None, event: str | None = None, timestamp: str | None = None,
            quantity: str | None = None, category=None, labels=None, weights=None,
            cap: int | None = 10, dedupe: str = "none", word: str = "item",
            min_user_items: int = 1, min_item_users: int = 1, min_rating: float | None = None,
            split=None, seed: int = 0) -> Prepared:
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
        item id and category. Taobao logs carry their own.
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

    Returns
    -------
    Prepared

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
    names = {"user": user, "item": item, "event": event, "timestamp": timestamp,
             "quantity": quantity, "category": category, "label": labels}
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
    pairs, label_map, summary = _aggregate(lf, has, opts, where, cats is None)
    pairs = _to_words(pairs, cats, opts, summary)
    return _index_filter_split(pairs, label_map, table_labels, opts, summary)


def write_prepared(prepared: Prepared, folder) -> Path:
    """Write ``prepared`` to the folder ``folder`` atomically and return its path.

    Files: ``tokens.parquet``, ``users.parquet``, ``words.parquet`` (see
    :class:`Prepared`) and ``prepared.json`` (format, schema version, gibbslda version,
    summary). Everything is written to a temporary folder beside ``folder`` that is then
    renamed into place, so a reader never sees half a folder. An existing prepared folder
    (or an empty one) is replaced; any other existing path is refused.

    Parameters
    ----------
    prepared : Prepared
    folder : str | os.PathLike

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(prepared, Prepared):
        raise TypeError(f"expected a Prepared (from prepare), got {type(prepared).__name__}")
    folder = Path(folder)
    if folder.exists() and not (folder.is_dir() and (not any(folder.iterdir())
                                                     or (folder / _FILES[0]).is_file())):
        raise ValueError(f"{folder} exists and is not a prepared folder: choose a new path "
                         "or remove it first")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        for name in ("tokens", "users", "words"):
            getattr(prepared, name).write_parquet(tmp / f"{name}.parquet", compression="zstd",
                                                  compression_level=1)
        meta = {"format": FOLDER_FORMAT, "schema_version": SCHEMA_VERSION,
                "gibbslda_version": _version(), "summary": prepared.summary}
        (tmp / _FILES[0]).write_text(json.dumps(meta, indent=1) + "\n")
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_prepared(folder) -> Prepared:
    """Read a folder written by :func:`write_prepared`.

    Parameters
    ----------
    folder : str | os.PathLike

    Returns
    -------
    Prepared
        Use ``.corpus("train")`` (and the other :attr:`Prepared.parts`) for corpora.

    Raises
    ------
    ValueError
        The folder is missing, is not a prepared folder, comes from an unknown schema
        version, or its files are damaged or disagree with each other.
    """
    folder = Path(folder)
    meta_file = folder / _FILES[0]
    if not meta_file.is_file():
        raise ValueError(f"{folder} is not a prepared folder (no {_FILES[0]}): write one "
                         "with write_prepared")
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_file} is not valid JSON ({exc}); prepare the data again") from exc
    if not isinstance(meta, dict) or meta.get("format") != FOLDER_FORMAT:
        raise ValueError(f"{meta_file} is not a gibbslda prepared-data file")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{folder} has schema version {meta.get('schema_version')!r}; this "
                         f"gibbslda reads version {SCHEMA_VERSION}: prepare the data again")
    frames = {}
    for name in ("tokens", "users", "words"):
        try:
            frames[name] = pl.read_parquet(folder / f"{name}.parquet")
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ValueError(f"{folder / (name + '.parquet')} cannot be read "
                             f"({_one_line(exc)}); prepare the data again") from exc
    tokens, users, words = frames["tokens"], frames["users"], frames["words"]
    summary = meta.get("summary") or {}
    parts = set(tokens.get_column("part").unique()) if "part" in tokens.columns else None
    if (not {"user", "word", "count", "first_seen", "part"} <= set(tokens.columns)
            or "user_id" not in users.columns or "word_id" not in words.columns
            or not isinstance(summary.get("parts"), dict) or not parts <= set(summary["parts"])
            or (tokens.height and (tokens["user"].max() >= users.height
                                   or tokens["word"].max() >= words.height))):
        raise ValueError(f"{folder}: tokens, id maps and summary disagree; the folder is "
                         "damaged: prepare the data again")
    return Prepared(tokens, users, words, summary)


# -- options and reading ------------------------------------------------------------------

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


def _split_options(split) -> dict | None:
    """Validate a split spec; describe it for the summary."""
    if split is None:
        return None
    if isinstance(split, LeaveLastN):
        if isinstance(split.n, bool) or not isinstance(split.n, (int, np.integer)) or split.n < 1:
            raise ValueError(f"LeaveLastN(n) needs an integer n >= 1, got {split.n!r}")
        return {"kind": "leave_last_n", "n": int(split.n)}
    if isinstance(split, TimeCutoff):
        at = split.at
        if isinstance(at, float):
            if not 0 < at < 1:
                raise ValueError(f"TimeCutoff(at) as a fraction must be in (0, 1), got {at}")
            return {"kind": "time_cutoff", "fraction": at}
        return {"kind": "time_cutoff", "at": _iso(_micros(at))}
    if isinstance(split, HeldOutUsers):
        for name in ("fraction", "hidden_fraction"):
            value = getattr(split, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"HeldOutUsers({name}) must be in (0, 1), got {value!r}")
        return {"kind": "held_out_users", "fraction": float(split.fraction),
                "hidden_fraction": float(split.hidden_fraction)}
    raise TypeError("split must be LeaveLastN(n), TimeCutoff(at), HeldOutUsers(fraction, "
                    f"hidden_fraction) or None, got {type(split).__name__}")


def _micros(at) -> int:
    """A datetime, date or ISO string (naive = UTC) as microseconds since the epoch."""
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"TimeCutoff(at={at!r}) is not an ISO-8601 time: use for "
                             "example '2017-12-01' or '2017-12-01T12:00'") from None
    if isinstance(at, date) and not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day)
    if not isinstance(at, datetime):
        raise TypeError("TimeCutoff(at) must be a datetime, a date, an ISO string or a "
                        f"fraction in (0, 1), got {type(at).__name__}")
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    delta = at - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(micros: int) -> str:
    return pl.Series([micros], dtype=pl.Int64).cast(pl.Datetime("us")).dt.to_string(
        "%Y-%m-%dT%H:%M:%S%.f").item()


def _open(source, fmt: str) -> tuple[pl.LazyFrame, str]:
    """The source as a lazy frame of its raw columns, and words naming it in messages."""
    if isinstance(source, pl.LazyFrame):
        return source, "the LazyFrame"
    if isinstance(source, pl.DataFrame):
        return source.lazy(), "the DataFrame"
    if isinstance(source, pd.DataFrame):
        return pl.from_pandas(source).lazy(), "the pandas DataFrame"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError("source must be a file path or a polars/pandas frame, got "
                        f"{type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"no file at {path}: check the path")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.scan_parquet(path), path.name
    if suffix in (".ndjson", ".jsonl"):
        return pl.scan_ndjson(path, infer_schema_length=10_000), path.name
    if suffix not in _SUFFIXES:
        raise ValueError(f"cannot read {path.name}: the suffix {suffix!r} is not one of "
                         f"{list(_SUFFIXES)}; convert the file to CSV or Parquet")
    separator = "\t" if suffix in (".tsv", ".tab", ".data") else ","
    if fmt in _LAYOUTS:
        layout = _LAYOUTS[fmt]
        fields = [f.strip().strip('"') for f in _first_line(path).split(separator)]
        header = not _is_number(fields[0])
        if header and [f.lower() for f in fields] != [c.lower() for c in layout]:
            raise ValueError(f"{path.name} does not look like a format={fmt!r} file: its "
                             f"columns are {fields}, expected {list(layout)}; check format=")
        return pl.scan_csv(path, separator=separator, has_header=False,
                           skip_rows=int(header), schema=layout), path.name
    if fmt == "online_retail":  # text columns, cast after: StockCode mixes digits and letters
        return pl.scan_csv(path, separator=separator, infer_schema=False,
                           encoding="utf8-lossy"), path.name
    return pl.scan_csv(path, separator=separator, infer_schema_length=10_000), path.name


def _first_line(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(65536)
    if not head.strip():
        raise ValueError(f"{path.name} is empty")
    return head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _schema(lf: pl.LazyFrame, where: str) -> pl.Schema:
    try:
        return lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"could not read {where}: {_one_line(exc)}") from exc


def _collect(queries: list, where: str) -> list[pl.DataFrame]:
    """Run lazy queries together (a source they share is scanned once)."""
    try:
        return pl.collect_all(queries, engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"could not read {where}: {_one_line(exc)}; check format= and the "
                         "column types") from exc


# -- canonical columns --------------------------------------------------------------------

def _canonical(raw: pl.LazyFrame, fmt: str, names: dict, where: str) -> pl.LazyFrame:
    """Select and convert the source's columns into the canonical ones."""
    schema = _schema(raw, where)
    if fmt != "generic":
        given = [k for k, v in names.items() if v is not None
                 and (k not in ("category", "label") or isinstance(v, str))]
        if given:
            raise ValueError(f"{given[0]}= names a column, which only format='generic' "
                             f"takes; format={fmt!r} has fixed columns (category= and "
                             "labels= may be tables)")
    if fmt == "online_retail":
        raw = raw.rename({a: b for a, b in _RETAIL_ALIASES.items()
                          if a in schema and b not in schema})
        schema = _schema(raw, where)
    columns = {"generic": lambda: _generic_columns(names),
               "retailrocket": lambda: {"user": "visitorid", "item": "itemid",
                                        "event": "event", "timestamp": "timestamp"},
               "taobao": lambda: {"user": "user_id", "item": "item_id",
                                  "category": "category_id", "event": "behavior_type",
                                  "timestamp": "timestamp"},
               "online_retail": lambda: {"user": "CustomerID", "item": "StockCode",
                                         "event": "InvoiceNo", "quantity": "Quantity",
                                         "timestamp": "InvoiceDate"}
               | ({"label": "Description"} if "Description" in schema else {}),
               "movielens": lambda: {"user": "userId", "item": "movieId",
                                     "rating": "rating", "timestamp": "timestamp"}}[fmt]()
    missing = [c for c in columns.values() if c not in schema]
    if missing:
        fix = ("pass user=, item=, event=, ... to name yours" if fmt == "generic"
               else "check format=")
        raise ValueError(f"column {missing[0]!r} not found in {where}; its columns are "
                         f"{list(schema)}: {fix}")
    exprs = [_convert(raw, schema, fmt, role, col).alias(role) for role, col in columns.items()]
    if fmt == "movielens":
        exprs.append(pl.lit("rating").alias("event"))
    return raw.select(exprs)


def _generic_columns(names: dict) -> dict:
    columns = {"user": names["user"] or "user_id", "item": names["item"] or "item_id"}
    columns.update({k: v for k, v in names.items()
                    if k not in columns and isinstance(v, str)})
    return columns


def _convert(lf: pl.LazyFrame, schema, fmt: str, role: str, col: str) -> pl.Expr:
    """One canonical column from the source column ``col``, with its type checked."""
    e, dtype = pl.col(col), schema[col]
    if fmt == "online_retail":
        return _retail(e, dtype, role)
    if role in ("user", "item", "category"):
        if dtype.is_integer():
            return e.cast(pl.Int64)
        if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
            return e.cast(pl.String)
        raise _mistyped(col, role, dtype, schema, "integers or strings")
    if role == "event":
        if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
            return e.cast(pl.String).replace(_EVENTS.get(fmt, {}))
        raise _mistyped(col, role, dtype, schema, "strings (behaviour names)")
    if role == "timestamp":
        unit = {"retailrocket": "ms", "taobao": "s", "movielens": "s"}.get(fmt)
        return _time(lf, e, dtype, col, schema, unit)
    if role == "quantity":
        if dtype.is_integer():
            return e.cast(pl.Int64)
        raise _mistyped(col, role, dtype, schema, "integers")
    if role == "rating":
        if dtype.is_numeric():
            return e.cast(pl.Float64)
        raise _mistyped(col, role, dtype, schema, "numbers")
    return e.cast(pl.String)  # label


def _time(lf, e: pl.Expr, dtype, col: str, schema, unit: str | None) -> pl.Expr:
    """Times as naive UTC Datetime[us]; integers are unix times, floats unix seconds."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            e = e.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return e.cast(pl.Datetime("us"))
    if dtype == pl.Date:
        return e.cast(pl.Datetime("us"))
    if dtype.is_integer():
        if unit is None:  # seconds, ms, us or ns since 1970, told apart by magnitude
            top = lf.head(10_000).select(e.abs().max()).collect().item() or 0
            unit = "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
        return pl.from_epoch(e.cast(pl.Int64), time_unit=unit).cast(pl.Datetime("us"))
    if dtype.is_float():
        return pl.from_epoch((e * 1e6).round().cast(pl.Int64), time_unit="us")
    if dtype == pl.String:
        return (e.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
                .dt.replace_time_zone(None))
    raise _mistyped(col, "timestamp", dtype, schema, "datetimes, ISO strings or unix times")


def _retail(e: pl.Expr, dtype, role: str) -> pl.Expr:
    """UCI Online Retail columns, read as text from CSV or typed from other files."""
    text = e.cast(pl.String).str.strip_chars()
    if role == "user":  # CustomerID: 17850, "17850" or 17850.0; empty when unknown
        return text.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False)
    if role == "item":
        return text
    if role == "event":
        return pl.when(text.str.starts_with("C")).then(pl.lit("return")).otherwise(
            pl.lit("purchase"))
    if role == "quantity":
        return text.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False)
    if role == "timestamp":
        if dtype.is_temporal():
            return e.cast(pl.Datetime("us"))
        return pl.coalesce([text.str.strptime(pl.Datetime("us"), f, strict=False)
                            for f in _RETAIL_TIMES])
    return text  # label: Description


def _mistyped(col: str, role: str, dtype, schema, wanted: str) -> TypeError:
    return TypeError(f"column {col!r} ({role}) has type {dtype} but must hold {wanted}; "
                     f"cast it or map another column (columns: {list(schema)})")


def _table(obj, what: str) -> pl.DataFrame:
    """A two-column key -> value table from a polars or pandas frame."""
    if isinstance(obj, pl.LazyFrame):
        obj = obj.collect()
    elif isinstance(obj, pd.DataFrame):
        obj = pl.from_pandas(obj)
    if not isinstance(obj, pl.DataFrame):
        raise TypeError(f"{what}= must be a column name or a table (polars or pandas frame) "
                        f"of id and {what}, got {type(obj).__name__}")
    if obj.width < 2:
        raise ValueError(f"the {what} table needs two columns (id, {what}), got {obj.columns}")
    table = obj.select(pl.col(obj.columns[0]).alias("key"), pl.col(obj.columns[1]).alias("value"))
    if table.get_column("value").dtype.is_float():
        raise TypeError(f"the {what} table's second column holds floats; use integers or strings")
    as_int = what != "labels" and table.schema["value"].is_integer()
    table = table.drop_nulls().with_columns(pl.col("value").cast(pl.Int64 if as_int else pl.String))
    duplicated = table.filter(pl.col("key").is_duplicated())
    if duplicated.height:
        raise ValueError(f"the {what} table lists id {duplicated.item(0, 'key')!r} more than "
                         "once: keep one row per id")
    return table


# -- weighting, words, filtering, splitting ---------------------------------------------

def _aggregate(lf: pl.LazyFrame, has: set, opts: dict, where: str, category_column: bool):
    """One streaming scan of the source answers three queries: rows counted per event
    (with why any are dropped), tokens per user-item, and item labels when asked for.

    Returns the pairs (user, item[, category], count[, first]), the most frequent label
    per item (or None) and the summary so far.
    """
    keys = ["user", "item"] + (["category"] if opts["word"] == "category" and category_column
                               else [])
    queries = {}
    if opts["dedupe"] == "exact":
        queries["n_read"] = lf.select(pl.len())
        lf = lf.unique()
    reasons = [(f"null_{c}", pl.col(c).is_null()) for c in keys + ["event", "timestamp",
                                                                 "quantity"] if c in has]
    if opts["min_rating"] is not None:
        reasons.append(("below_min_rating",
                        ~(pl.col("rating") >= opts["min_rating"]).fill_null(False)))
    bad = pl.lit(False)
    flags = []
    for name, check in reasons:  # a dropped row is counted once, under its first reason
        flags.append((check & ~bad).sum().alias(name))
        bad = bad | check
    schema = lf.collect_schema()
    # integer ids: group by one Int64 key, user * 2**32 + item (measured ~25% faster); the
    # first pass says whether the ids fit, else the pairs are counted again without it
    packed = keys == ["user", "item"] and all(schema[k].is_integer() for k in keys)
    ranges = [getattr(pl.col(k), f)().alias(f"_{f}_{k}") for k in keys for f in ("min", "max")
              ] if packed else []
    counted = [pl.len().alias("rows"), *flags, *ranges]
    queries["acc"] = lf.group_by("event").agg(counted) if "event" in has else lf.select(counted)
    queries["pairs"] = _pairs_query(lf.filter(~bad), has, keys, packed, opts)
    if "label" in has and opts["word"] == "item":
        queries["labels"] = lf.group_by("item", "label").len()
    results = dict(zip(queries, _collect(list(queries.values()), where)))
    acc, p = results["acc"], results["pairs"]
    summary = _account(acc, [name for name, _ in reasons], has, opts, where,
                       results["n_read"].item() if "n_read" in results else None)
    if packed and not acc.select(
            (pl.col("_min_user").min() >= 0) & (pl.col("_max_user").max() < 2**31)
            & (pl.col("_min_item").min() >= 0) & (pl.col("_max_item").max() < 2**32)).item():
        p = _collect([_pairs_query(lf.filter(~bad), has, keys, False, opts)], where)[0]
    elif packed:
        p = p.select((pl.col("_key") // 2**32).alias("user"),
                     (pl.col("_key") % 2**32).alias("item"), pl.exclude("_key"))
    label_map = None
    if "labels" in results:
        label_map = (results["labels"].drop_nulls().sort(["item", "len", "label"],
                                                  descending=[False, True, False])
                     .group_by("item", maintain_order=True).first().select("item", "label"))
    return _capped(p, keys, "timestamp" in has, opts, summary), label_map, summary


def _account(acc: pl.DataFrame, names: list, has: set, opts: dict, where: str,
             n_read: int | None) -> dict:
    """The summary of the rows read and dropped; raises on unknown events or no rows."""
    n_rows = int(acc["rows"].sum())  # after dropping duplicates, when asked to
    dropped = {name: int(acc[name].sum()) for name in names}
    used = n_rows - sum(dropped.values())
    if n_read is not None:
        dropped["duplicate"] = n_read - n_rows
    n_read = n_rows if n_read is None else n_read
    summary = {"source": where, "options": {k: v for k, v in opts.items() if k[0] != "_"},
               "rows": {"read": n_read, "used": used, "dropped": dropped}}
    if "event" in has:
        unknown = sorted(set(acc["event"].drop_nulls()) - set(opts["weights"]))
        if unknown:
            raise ValueError(f"events {unknown} have no weight: pass weights={{{unknown[0]!r}: "
                             "<int>, ...}} (0 ignores an event)")
        acc = acc.select("event", (pl.col("rows") - pl.sum_horizontal(names)).alias("used"))
        summary["events"] = dict(acc.filter(pl.col("used") > 0).sort("event").iter_rows())
    if used == 0:
        reasons = {k: v for k, v in dropped.items() if v}
        raise ValueError(f"no usable rows in {where}: {n_read} read, dropped {reasons}; "
                         "check the column mapping and types")
    return summary


def _pairs_query(lf: pl.LazyFrame, has: set, keys: list, packed: bool,
                 opts: dict) -> pl.LazyFrame:
    """Net tokens per user-item over the usable rows (weighted, deduplicated, not capped).

    Every per-row quantity is a column before the group-by, so polars aggregates with its
    plain sum/min/max kernels. Unknown events weigh null here; :func:`_account` refuses them.
    """
    w = pl.col("_w")
    lf = lf.with_columns(_w=pl.col("event").replace_strict(
        opts["weights"], default=None, return_dtype=pl.Int64) if "event" in has
        else pl.lit(1, dtype=pl.Int64))
    if opts["dedupe"] == "event":  # each (user, item, event) once: one unit of its weight
        lf = lf.group_by(*keys, "event").agg(w.first(), *(
            [pl.col("timestamp").min()] if "timestamp" in has else []))
        tokens = w
    elif "quantity" in has:  # a negative quantity subtracts: w q; a negative weight: -|w| |q|
        tokens = pl.when(w > 0).then(w * pl.col("quantity")).otherwise(
            w * pl.col("quantity").abs())
    else:
        tokens = w
    aggs = [pl.col("_t").sum().alias("net")]
    if opts["dedupe"] == "item":
        aggs.append(pl.when(w > 0).then(w).max().alias("best"))
    if "timestamp" in has:
        aggs.append(pl.col("timestamp").min().alias("first"))
    by = [(pl.col("user") * 2**32 + pl.col("item")).alias("_key")] if packed else keys
    return lf.with_columns(_t=tokens).group_by(by).agg(aggs)


def _capped(p: pl.DataFrame, keys: list, timed: bool, opts: dict, summary: dict):
    """Tokens per pair after the dedupe policy and the cap; pairs left with none dropped."""
    raw = pl.when(pl.col("net") > 0).then(
        pl.col("best") if opts["dedupe"] == "item" else pl.col("net")).otherwise(0)
    count = raw if opts["cap"] is None else raw.clip(upper_bound=opts["cap"])
    summary["pairs"] = {"read": p.height, **{k: int(v) for k, v in p.select(
        (pl.col("net") <= 0).sum().alias("not_positive"),
        (raw - count).sum().alias("tokens_removed_by_cap")).row(0, named=True).items()}}
    return p.lazy().select(*keys, count.alias("count"), *(["first"] if timed else [])
                           ).filter(pl.col("count") > 0).collect()


def _to_words(p: pl.DataFrame, cats, opts: dict, summary: dict) -> pl.DataFrame:
    """Rename items to words, or sum pairs into (user, category) words."""
    if opts["word"] == "item":
        return p.drop("category", strict=False).rename({"item": "word"})
    if cats is not None:
        cats = cats.with_columns(pl.col("key").cast(p.schema["item"], strict=False))
        p = p.drop("category", strict=False).join(
            cats.rename({"key": "item", "value": "category"}), on="item", how="left")
    lost = p.filter(pl.col("category").is_null())
    summary["pairs"] |= {"without_category": lost.height,
                         "tokens_without_category": int(lost["count"].sum())}
    aggs = [pl.col("count").sum()] + ([pl.col("first").min()] if "first" in p.columns else [])
    return (p.filter(pl.col("category").is_not_null()).group_by("user", "category").agg(aggs)
            .rename({"category": "word"}))


def _kcore(u: np.ndarray, w: np.ndarray, n_users: int, n_words: int, min_user_items: int,
           min_item_users: int) -> tuple[np.ndarray, int]:
    """Pairs kept by iterative k-core filtering (each pair is distinct), and the rounds."""
    keep = np.ones(u.shape[0], dtype=bool)
    by_user, by_word = np.bincount(u, minlength=n_users), np.bincount(w, minlength=n_words)
    rounds = 0
    while min_user_items > 1 or min_item_users > 1:  # degrees fall as pairs are dropped
        drop = keep & ((by_user < min_user_items)[u] | (by_word < min_item_users)[w])
        if not drop.any():
            break
        keep &= ~drop
        by_user -= np.bincount(u[drop], minlength=n_users)
        by_word -= np.bincount(w[drop], minlength=n_words)
        rounds += 1
    return keep, rounds


def _index_filter_split(p: pl.DataFrame, label_map, table_labels, opts: dict,
                        summary: dict) -> Prepared:
    """k-core filter, index users and words in sorted id order, split, assemble."""
    user_ids, word_ids, u, w, count, first = _codes(p)
    del p
    keep, rounds = _kcore(u, w, user_ids.len(), word_ids.len(), opts["min_user_items"],
                          opts["min_item_users"])
    kept_users = np.bincount(u[keep], minlength=user_ids.len()) > 0
    kept_words = np.bincount(w[keep], minlength=word_ids.len()) > 0
    summary["kcore"] = {"rounds": rounds, "dropped_users": int((~kept_users).sum()),
                        "dropped_words": int((~kept_words).sum()),
                        "dropped_pairs": int((~keep).sum()),
                        "dropped_tokens": int(count[~keep].sum())}
    if not keep.any():
        raise ValueError(f"k-core filtering (min_user_items={opts['min_user_items']}, "
                         f"min_item_users={opts['min_item_users']}) left no pairs: lower them")
    user_ids = user_ids.filter(pl.Series(kept_users))
    word_ids = word_ids.filter(pl.Series(kept_words))
    if not keep.all():
        u = (np.cumsum(kept_users) - 1)[u[keep]]
        w = (np.cumsum(kept_words) - 1)[w[keep]]
        count, first = count[keep], None if first is None else first[keep]
    part, names, detail = _split(u, first, opts["_split"], opts["seed"])
    tokens = pl.DataFrame({
        "user": u.astype(np.int32), "word": w.astype(np.int32), "count": count,
        "first_seen": (pl.Series(first) if first is not None else
                       pl.repeat(None, u.shape[0], dtype=pl.Int64, eager=True)
                       ).cast(pl.Datetime("us")),
        "part": pl.Series(names, dtype=pl.String).gather(part)})
    words = pl.DataFrame({"word": np.arange(word_ids.len(), dtype=np.int32),
                          "word_id": word_ids,
                          "label": pl.repeat(None, word_ids.len(), dtype=pl.String, eager=True),
                          "n_users": np.bincount(w, minlength=word_ids.len()),
                          "n_tokens": np.bincount(w, weights=count,
                                                  minlength=word_ids.len()).astype(np.int64)})
    words = _label(words, label_map, table_labels)
    users = pl.DataFrame({"user": np.arange(user_ids.len(), dtype=np.int32), "user_id": user_ids})
    summary["result"] = {"users": users.height, "words": words.height,
                         "pairs": int(count.shape[0]), "tokens": int(count.sum())}
    if first is not None:
        summary["result"] |= {"first_seen_min": _iso(int(first.min())),
                              "first_seen_max": _iso(int(first.max()))}
    summary["split_detail"] = detail
    summary["parts"] = {name: _part_summary(u, w, count, part == i)
                        for i, name in enumerate(names)}
    return Prepared(tokens, users, words, summary)


def _codes(p: pl.DataFrame):
    """Sorted user and word ids, and the pairs as arrays (user and word indices, counts,
    first-seen microseconds or None) sorted by user, word."""
    user_ids, word_ids = p["user"].unique().sort(), p["word"].unique().sort()
    p = (p.lazy()
         .join(pl.LazyFrame({"user": user_ids, "u": np.arange(user_ids.len())}), on="user")
         .join(pl.LazyFrame({"word": word_ids, "w": np.arange(word_ids.len())}), on="word")
         .select("u", "w", "count", *(["first"] if "first" in p.columns else [])).collect())
    # group_by's row order varies between runs: fix the order before any random draw
    order = np.argsort(p["u"].to_numpy() * word_ids.len() + p["w"].to_numpy())  # distinct keys
    u, w = p["u"].to_numpy()[order], p["w"].to_numpy()[order]
    count = p["count"].to_numpy()[order].astype(np.int64)
    first = p["first"].cast(pl.Int64).to_numpy()[order] if "first" in p.columns else None
    return user_ids, word_ids, u, w, count, first


def _part_summary(u, w, count, mask) -> dict:
    return {"users": int(np.count_nonzero(np.bincount(u[mask]))),
            "words": int(np.count_nonzero(np.bincount(w[mask]))),
            "pairs": int(mask.sum()), "tokens": int(count[mask].sum())}


def _label(words: pl.DataFrame, label_map, table_labels) -> pl.DataFrame:
    """Fill ``label`` from a labels table (first) or an item label column."""
    for table in (table_labels, label_map):
        if table is None:
            continue
        table = table.rename({table.columns[0]: "word_id", table.columns[1]: "_label"})
        table = table.with_columns(pl.col("word_id").cast(words.schema["word_id"], strict=False))
        words = (words.join(table.drop_nulls("word_id"), on="word_id", how="left",
                            maintain_order="left")
                 .with_columns(pl.coalesce("label", pl.col("_label").cast(pl.String)))
                 .drop("_label"))
    return words


def _rank_in_user(u: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Position of each pair within its user (``u`` sorted) when ordered by ``keys``."""
    frame = pl.DataFrame({"u": u} | {f"k{i}": k for i, k in enumerate(keys)})
    order = frame.select(pl.arg_sort_by(frame.columns)).to_series().to_numpy()
    counts = np.bincount(u)
    rank = np.empty(u.shape[0], dtype=np.int64)
    rank[order] = np.arange(u.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank


def _latest(u, first, tie, counts, n: int) -> np.ndarray:
    """Each user's ``n`` latest pairs by (first, tie), one linear pass per pick."""
    starts = np.cumsum(counts) - counts
    taken = np.zeros(u.shape[0], dtype=bool)
    for _ in range(n):
        times = np.where(taken, np.iinfo(np.int64).min, first)
        candidate = ~taken & (times == np.maximum.reduceat(times, starts)[u])
        ties = np.where(candidate, tie, -1.0)
        taken |= candidate & (ties == np.maximum.reduceat(ties, starts)[u])
    return taken


def _split(u: np.ndarray, first, spec, seed: int) -> tuple[np.ndarray, list, dict]:
    """Part code of every pair (pairs sorted by user, word), the part names and details."""
    n_pairs = u.shape[0]
    if spec is None:
        return np.zeros(n_pairs, dtype=np.int8), ["train"], {}
    rng = np.random.default_rng(seed)
    counts = np.bincount(u)
    if isinstance(spec, TimeCutoff):
        if isinstance(spec.at, float):
            k = min(max(int(round((1 - spec.at) * n_pairs)), 0), n_pairs - 1)
            cutoff = int(np.partition(first, k)[k])
        else:
            cutoff = _micros(spec.at)
        test = first >= cutoff
        if test.all() or not test.any():
            raise ValueError(f"TimeCutoff at {_iso(cutoff)} puts every pair on one side (pairs "
                             f"first seen {_iso(int(first.min()))} to {_iso(int(first.max()))}): "
                             "choose a time inside that range")
        return test.astype(np.int8), ["train", "test"], {"cutoff": _iso(cutoff)}
    if isinstance(spec, LeaveLastN):  # the latest by time; among equal times, random
        tie = rng.random(n_pairs)
        if spec.n <= _FEW_LAST:
            test = _latest(u, first, tie, counts, spec.n)
        else:
            rank = _rank_in_user(u, first, tie)
            test = rank >= counts[u] - spec.n
        test &= counts[u] > spec.n
        return test.astype(np.int8), ["train", "test"], {
            "users_held_out": int((counts > spec.n).sum())}
    eligible = np.flatnonzero(counts >= 2)
    n_test = int(round(spec.fraction * eligible.shape[0]))
    if n_test == 0 or n_test == counts.shape[0]:
        raise ValueError(f"HeldOutUsers(fraction={spec.fraction}) holds out {n_test} of "
                         f"{counts.shape[0]} users ({eligible.shape[0]} with two words or "
                         "more): need at least one on each side")
    is_test = np.zeros(counts.shape[0], dtype=bool)
    is_test[rng.choice(eligible, size=n_test, replace=False)] = True
    held = np.flatnonzero(is_test[u])  # rank only the held-out users' pairs, at random
    n_hidden = np.maximum(np.minimum(np.round(spec.hidden_fraction * counts), counts - 1), 1)
    part = np.zeros(n_pairs, dtype=np.int8)
    hidden = _rank_in_user(u[held], rng.random(held.shape[0])) < n_hidden[u[held]]
    part[held] = np.where(hidden, 2, 1)
    return part, ["train", "observed", "hidden"], {"users_held_out": n_test}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("gibbslda")
    except PackageNotFoundError:
        return "0+unknown"
