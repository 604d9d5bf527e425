"""Reading interaction logs into canonical columns (polars, lazy).

:func:`_open` opens a file (by suffix) or a polars/pandas frame as a lazy frame of its raw
columns; the fixed layouts of the public formats are checked against the header.
:func:`_canonical` selects and converts the source's columns into the canonical ones,
``user``, ``item``, ``event``, ``timestamp``, ``quantity``, ``category``, ``label`` and
``rating``, checking each column's type (:func:`_convert`, :func:`_time`, :func:`_retail`).
:func:`_table` reads an id -> value table (categories, labels) and :func:`_collect` runs
lazy queries together, turning polars errors into one-line ValueErrors. For big logs,
:func:`_n_rows` sizes the source and :func:`_spill` writes a text file's canonical rows to
a temporary Parquet file that the passes over buckets of users read.

Every per-row expression here streams in polars (bounded memory whatever the rows):
mappings are when/then chains (:func:`_mapped`), never ``replace``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import polars as pl

from gibbslda import _times

_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".data", ".parquet", ".pq", ".ndjson", ".jsonl")
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


def _n_rows(source, where: str) -> tuple[int | None, bool]:
    """The source's rows and whether it is a text file (parsed again by every pass).

    Frames and Parquet files say how many rows they have; a text file's rows are estimated
    from the lines in three samples of 256 KiB (start, middle, end; the estimate only
    sizes the passes); a LazyFrame's are not known (None).
    """
    if isinstance(source, pl.LazyFrame):
        return None, False
    if isinstance(source, (pl.DataFrame, pd.DataFrame)):
        return len(source), False
    path = Path(source)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pl.scan_parquet(path).select(pl.len()).collect().item(), False
        except pl.exceptions.PolarsError as exc:
            raise ValueError(f"could not read {where}: {_one_line(exc)}") from exc
    size, sample = path.stat().st_size, b""
    with open(path, "rb") as f:
        for at in (0, size // 2, max(size - 2**18, 0)):
            f.seek(at)
            sample += f.read(2**18)
    return size * max(sample.count(b"\n"), 1) // max(len(sample), 1), True


def _spill(lf: pl.LazyFrame, where: str, folder: Path) -> tuple[pl.LazyFrame, int]:
    """Write the canonical rows to a Parquet file in ``folder`` in one streaming pass, so
    that later passes read them instead of parsing the text again; the rows written."""
    path = folder / "rows.parquet"
    try:
        lf.sink_parquet(path, compression="lz4", statistics=False, engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise ValueError(f"could not read {where}: {_one_line(exc)}; check format= and the "
                         "column types") from exc
    rows = pl.scan_parquet(path)
    return rows, rows.select(pl.len()).collect().item()


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
            text = e.cast(pl.String)
            return _mapped(text, {k: pl.lit(v) for k, v in _EVENTS.get(fmt, {}).items()}, text)
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


def _mapped(e: pl.Expr, mapping: dict, default: pl.Expr) -> pl.Expr:
    """``e`` with each key of ``mapping`` replaced by its value (an expression), else
    ``default``. A chain of when/then, which polars streams; ``replace`` and
    ``replace_strict`` gather the whole column first (polars 2.1: 1.6 GB at 30M rows)."""
    out = None
    for key, value in mapping.items():
        out = (pl.when(e == key) if out is None else out.when(e == key)).then(value)
    return default if out is None else out.otherwise(default)


def _time(lf, e: pl.Expr, dtype, col: str, schema, unit: str | None) -> pl.Expr:
    """Times as naive UTC Datetime[us]; integers are unix times, floats unix seconds."""
    out = _times.datetime_expr(
        e, dtype, magnitude=lambda: lf.head(10_000).select(e.abs().max()).collect().item(),
        unit=unit)
    if out is None:
        raise _mistyped(col, "timestamp", dtype, schema, _times.WHAT)
    return out


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
