"""Event times as naive UTC ``Datetime[us]`` (polars) or int64 microseconds since 1970.

One home for reading a time column, used by :mod:`gibbslda.preprocess` (lazily, on a
log) and by :class:`gibbslda.corpus.Corpus` (eagerly, on a frame): datetimes (a time zone
is converted to UTC), dates, ISO-8601 strings, floats as unix seconds, and integers as unix
seconds, milliseconds, microseconds or nanoseconds, told apart by their magnitude.
"""
from __future__ import annotations

import numpy as np
import polars as pl

WHAT = "datetimes, dates, ISO strings or unix times"


def datetime_expr(e: pl.Expr, dtype, magnitude=None, unit: str | None = None):
    """``e`` (of polars type ``dtype``) as naive UTC ``Datetime[us]``; None when ``dtype``
    is not a time. ``magnitude()`` gives the largest absolute value of an integer column
    (called only when needed, to tell the unit); ``unit`` fixes it instead."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            e = e.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return e.cast(pl.Datetime("us"))
    if dtype == pl.Date:
        return e.cast(pl.Datetime("us"))
    if dtype.is_integer():
        if unit is None:  # seconds, ms, us or ns since 1970, told apart by magnitude
            top = (magnitude() if magnitude is not None else 0) or 0
            unit = "s" if top < 1e11 else "ms" if top < 1e14 else "us" if top < 1e17 else "ns"
        return pl.from_epoch(e.cast(pl.Int64), time_unit=unit).cast(pl.Datetime("us"))
    if dtype.is_float():
        return pl.from_epoch((e * 1e6).round().cast(pl.Int64), time_unit="us")
    if dtype == pl.String:
        return (e.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
                .dt.replace_time_zone(None))
    return None


def to_micros(values, name: str = "time") -> np.ndarray:
    """A column of times as int64 microseconds since 1970-01-01 UTC.

    ``values``: a polars or pandas Series, a numpy array (``datetime64``, integers, floats
    or strings) or a list. Raises TypeError for a column that holds no times and
    ValueError for nulls or unparseable strings (the message names ``name``)."""
    series = values if isinstance(values, pl.Series) else pl.Series(name, values)
    if series.null_count():
        raise ValueError(f"column {name!r} has {series.null_count()} null times; drop or "
                         "fill those rows first")
    expr = datetime_expr(pl.col("t"), series.dtype,
                         magnitude=lambda: series.abs().max() if series.len() else 0)
    if expr is None:
        raise TypeError(f"column {name!r} must hold {WHAT}, got {series.dtype}")
    out = pl.DataFrame({"t": series}).select(expr.cast(pl.Int64)).to_series()
    if out.null_count():
        raise ValueError(f"column {name!r} has {out.null_count()} times that do not parse; "
                         "use ISO-8601 strings such as '2017-12-01T12:00:00' or datetimes")
    return out.to_numpy().astype(np.int64, copy=False)
