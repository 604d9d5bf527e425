"""Interest activity over time: periods, events attributed to interests, trends.

- :func:`interest_trends`: per period (day, week, month: any polars duration such as
  ``"1d"``, ``"1w"``, ``"1mo"``) and interest, the tokens it explains, its share of the
  period's tokens and how many of the period's active users have it as their main
  interest.
- The pieces :mod:`gibbslda.demand` builds its forecasts on: :func:`period_grid` (the
  periods of a span, as ``dt.truncate(freq)`` starts them), :func:`read_events` (an
  events frame mapped onto the model's users and items) and :func:`pair_posteriors`
  (p(topic | user, item) of user-item pairs, a block at a time).

Two sources of times:

* the model's own tokens (no events given): each token's topic is its current
  assignment in the chain (``model.state_.z``) and its time ``model.corpus_.times``. A
  corpus from a prepared folder carries one time per (user, item) pair, the pair's latest
  event (``last_seen``), not one per event: all of a pair's tokens count in the period of
  its last event, so early periods are thinned out and late ones filled up.
* an events frame (one row per event, any log with user, item and time columns): each
  event is split over the interests by p(k | user, item) proportional to
  theta_uk phi_k,item (the posterior of the topic of one more token of that item for
  that user). Users the model does not know get p(k | item), proportional to
  (n_k + alpha_k) phi_k,item; events of items it does not know are left out and counted.
  Use this for a model without times, or to see events the model was not trained on.

Edge periods: a log rarely starts and ends on a period boundary. The first (last) period
is marked incomplete when the log's first (last) event lies more than a seventh of the
period after its start (before its end): the ``complete`` column. :mod:`gibbslda.demand`
forecasts from complete periods only. Stray events (a clock set wrong, a test row) would
stretch the span over empty periods: periods at either end with fewer events than a tenth
of the median non-empty period are left out of the span (their events too), and the
edges are judged from the events left.

Glossary: d user, w item, k topic (interest), t period index, T periods.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from gibbslda.corpus import to_micros
from gibbslda.recommend import _check_labels, _check_model
from gibbslda.scores import phi_columns, theta_rows

EDGE_GAP = 1 / 7   # an edge period missing more than this share of its span is incomplete
STRAY = 0.1        # periods at either end with fewer events than this x the median: strays
_BLOCK_VALUES = 2 ** 22  # pairs x topics values built at a time (32 MB of float64)
_DAY_US = 86_400_000_000


@dataclass(frozen=True, eq=False)
class Periods:
    """The periods of a span: ``starts`` int64 (T,) and ``ends`` int64 (T,) in
    microseconds since 1970 (``ends[t]`` is the next period's start), ``complete`` bool
    (T,) and the ``freq`` they come from."""

    starts: np.ndarray
    ends: np.ndarray
    complete: np.ndarray
    freq: str

    @property
    def n(self) -> int:
        return int(self.starts.size)

    def index(self, times: np.ndarray) -> np.ndarray:
        """The period of each time (int64 microseconds), -1 outside the grid."""
        t = np.searchsorted(self.starts, times, side="right") - 1
        t[(t < 0) | (times >= self.ends[-1])] = -1
        return t

    def datetimes(self, starts=None) -> pl.Series:
        values = self.starts if starts is None else starts
        return pl.Series("period", values, dtype=pl.Int64).cast(pl.Datetime("us"))

    def following(self, n: int) -> np.ndarray:
        """The starts of the ``n`` periods after the grid, int64 (n,)."""
        return _grid(int(self.ends[-1]), n, self.freq)


def check_freq(freq: str) -> str:
    """``freq`` if polars reads it as a calendar duration ("1d", "1w", "1mo"), else a
    one-line ValueError."""
    if not isinstance(freq, str) or not freq:
        raise ValueError(f"freq must be a duration such as '1d', '1w' or '1mo', got {freq!r}")
    try:
        pl.Series([0], dtype=pl.Datetime("us")).dt.truncate(freq)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ValueError(f"freq must be a duration such as '1d', '1w' or '1mo', got "
                         f"{freq!r} ({str(exc).splitlines()[0]})") from None
    return freq


def period_grid(times: np.ndarray, freq: str) -> Periods:
    """Every period from the first event's to the last's, empty ones included, with
    edge periods marked incomplete and stray events trimmed (module docstring)."""
    check_freq(freq)
    times = np.asarray(times, dtype=np.int64)
    if times.size == 0:
        raise ValueError("no events with times: the trends and forecasts need some")
    grid = _span(int(times.min()), int(times.max()), freq)
    volume = np.bincount(grid.index(times), minlength=grid.n)
    dense = np.flatnonzero(volume >= STRAY * np.median(volume[volume > 0]))
    if dense[0] > 0 or dense[-1] < grid.n - 1:
        inside = (times >= grid.starts[dense[0]]) & (times < grid.ends[dense[-1]])
        grid = _span(int(times[inside].min()), int(times[inside].max()), freq)
    return grid


def _span(lo: int, hi: int, freq: str) -> Periods:
    first = _truncate(np.array([lo]), freq)[0]
    last = _truncate(np.array([hi]), freq)[0]
    starts = [first]
    while starts[-1] < last:  # calendar steps: a month is not a fixed duration
        starts.extend(_grid(starts[-1], 256, freq)[1:].tolist())
    starts = np.array([s for s in starts if s <= last], dtype=np.int64)
    ends = np.append(starts[1:], _grid(int(starts[-1]), 2, freq)[1])
    span = ends - starts
    complete = np.ones(starts.size, dtype=bool)
    complete[0] &= lo - starts[0] <= EDGE_GAP * span[0]
    complete[-1] &= ends[-1] - 1 - hi <= EDGE_GAP * span[-1]
    return Periods(starts, ends, complete, freq)


def _truncate(times: np.ndarray, freq: str) -> np.ndarray:
    s = pl.Series("t", times, dtype=pl.Int64).cast(pl.Datetime("us"))
    return s.dt.truncate(freq).cast(pl.Int64).to_numpy()


def _grid(start: int, n: int, freq: str) -> np.ndarray:
    """``n`` period starts from ``start`` on, a calendar step of ``freq`` apart."""
    steps = pl.Series([f"{i * _count(freq)}{_unit(freq)}" for i in range(n)])
    frame = pl.DataFrame({"t": pl.Series([start] * n, dtype=pl.Int64).cast(pl.Datetime("us")),
                          "by": steps})
    return frame.select(pl.col("t").dt.offset_by(pl.col("by")).cast(pl.Int64)).to_series() \
        .to_numpy()


def _count(freq: str) -> int:
    digits = "".join(c for c in freq if c.isdigit())
    return int(digits) if digits and freq[:len(digits)] == digits else 1


def _unit(freq: str) -> str:
    digits = "".join(c for c in freq if c.isdigit())
    return freq[len(digits):] if freq[:len(digits)] == digits else freq


def season_length(periods: Periods) -> int | None:
    """Periods in a season: a week of days (7), a day of hours (24), a year of weeks (52)
    or of months (12); None for other lengths."""
    span = float(np.median(periods.ends - periods.starts)) / _DAY_US
    for length, season in ((1 / 24, 24), (1, 7), (7, 52), (30.4, 12), (91.3, 4)):
        if abs(span - length) <= 0.1 * length:
            return season
    return None


@dataclass(frozen=True, eq=False)
class Events:
    """An events frame mapped onto a model: per row its user index (-1: not a training
    user), item index, time (int64 us) and weight; rows of unknown items are dropped and
    counted (``n_unknown_rows``, ``unknown_weight``)."""

    user: np.ndarray
    item: np.ndarray
    time: np.ndarray
    weight: np.ndarray
    n_unknown_rows: int
    unknown_weight: float

    def select(self, keep: np.ndarray) -> "Events":
        return Events(self.user[keep], self.item[keep], self.time[keep], self.weight[keep],
                      self.n_unknown_rows, self.unknown_weight)


def read_events(model, events, *, user: str = "user_id", item: str = "item_id",
                time: str = "timestamp", weight: str | None = None) -> Events:
    """Map an events frame (polars or pandas, one row per event) onto the model's ids.

    Ids are matched as text, so 17850 and "17850" are the same user. ``weight`` names a
    column of non-negative numbers (a quantity); None counts each row once. Rows with a
    null user, item or time are refused (one-line ValueError); rows of items the model
    does not know are dropped and counted.
    """
    frame = events.collect() if isinstance(events, pl.LazyFrame) else events
    if not isinstance(frame, pl.DataFrame):
        if not hasattr(frame, "columns"):
            raise TypeError(f"events must be a polars or pandas frame, got "
                            f"{type(events).__name__}")
        frame = pl.from_pandas(frame)
    for role, name in (("user", user), ("item", item), ("time", time), ("weight", weight)):
        if name is not None and name not in frame.columns:
            raise ValueError(f"column {name!r} ({role}) not found in the events; its "
                             f"columns are {frame.columns}: pass {role}= to name yours")
    for name in (user, item):
        if frame.get_column(name).null_count():
            raise ValueError(f"column {name!r} has null ids; drop those rows first")
    times = to_micros(frame.get_column(time), time)
    w = (np.ones(frame.height) if weight is None
         else frame.get_column(weight).cast(pl.Float64).fill_null(0.0).to_numpy())
    if w.size and not (np.isfinite(w).all() and w.min() >= 0):
        raise ValueError(f"column {weight!r} must hold finite non-negative weights; drop "
                         "returns or negative quantities first")
    items = _indices(model.item_ids_, frame.get_column(item))
    users = _indices(model.user_ids_, frame.get_column(user))
    known = items >= 0
    return Events(users[known], items[known].astype(np.int64), times[known], w[known],
                  int((~known).sum()), float(w[~known].sum()))


def _indices(ids: np.ndarray, values: pl.Series) -> np.ndarray:
    """The index of each value in ``ids`` (matched as text), -1 when absent."""
    keys = pl.DataFrame({"key": pl.Series(ids).cast(pl.String),
                         "at": np.arange(len(ids), dtype=np.int64)})
    found = values.cast(pl.String).to_frame("key").join(keys, on="key", how="left",
                                                         maintain_order="left")
    return found.get_column("at").fill_null(-1).to_numpy()


def pair_posteriors(model, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """p(k | user, item) (n, K) float64 of n pairs, rows summing to 1: proportional to
    theta_uk phi_k,item, or to (n_k + alpha_k) phi_k,item for user -1 (not a training
    user). Call it on blocks (:func:`blocks`): it builds n x K values."""
    tables, state = model._tables(), model.state_
    phi = phi_columns(tables, items).T  # (n, K)
    known = users >= 0
    weight = np.empty_like(phi)
    weight[~known] = state.n_k + state.alpha
    if known.any():
        uniq, inverse = np.unique(users[known], return_inverse=True)
        weight[known] = theta_rows(state, uniq)[inverse]
    post = weight * phi
    post /= post.sum(axis=1, keepdims=True)
    return post


def unique_pairs(users: np.ndarray, items: np.ndarray, n_items: int):
    """The distinct (user, item) pairs, int64 (2, P) sorted, and each row's pair."""
    keys, inverse = np.unique((users + 1) * n_items + items, return_inverse=True)
    return np.stack([keys // n_items - 1, keys % n_items]), inverse.ravel()


def blocks(n: int, n_topics: int):
    """(start, stop) blocks of n rows of about ``_BLOCK_VALUES / n_topics`` rows each."""
    step = max(1, _BLOCK_VALUES // max(n_topics, 1))
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def interest_trends(model, events=None, *, freq: str = "1w", labels=None,
                    user: str = "user_id", item: str = "item_id", time: str = "timestamp",
                    weight: str | None = None) -> pl.DataFrame:
    """Each interest's activity per period.

    Parameters
    ----------
    model : a fitted :class:`~gibbslda.LDA`.
    events : optional events frame (see :func:`read_events`); None: the model's own
        tokens and times (``model.corpus_.times``; per pair for a prepared corpus, see
        the module docstring).
    freq : polars duration of a period ("1d", "1w", "1mo"); periods start where
        ``dt.truncate(freq)`` puts them (weeks on Mondays, UTC).
    labels : optional one name per interest.

    Returns
    -------
    polars.DataFrame, T x K rows by period then topic: period (Datetime[us], the start),
    topic (Int32), label, tokens (Float64: tokens, or events, it explains; an event is
    split over interests by p(k | user, item)), share (of the period's tokens; 0 in an
    empty period), users_main (active users of the period whose tokens in it are mostly
    this interest, ties to the lower topic), share_users (of the period's active users)
    and complete (False for a partial first or last period).
    """
    _check_model(model)
    labels = _check_labels(labels, model.n_topics)
    n_topics = model.n_topics
    if events is None:
        times = model.corpus_.times
        if times is None:
            raise ValueError("the model's corpus has no times: pass the events (a frame "
                             "with user, item and time columns) to attribute them")
        periods = period_grid(times, freq)
        t = periods.index(times)
        inside = t >= 0  # stray times the grid trimmed (index -1) are left out
        d = np.repeat(np.arange(model.corpus_.n_users, dtype=np.int64),
                      model.corpus_.lengths)[inside]
        t, z = t[inside], model.state_.z[inside].astype(np.int64)
        per_user = _main_counts(d * periods.n + t, z, np.ones(t.size), n_topics, periods.n)
        tokens = np.bincount(t * n_topics + z, minlength=periods.n * n_topics)
    else:
        ev = read_events(model, events, user=user, item=item, time=time, weight=weight)
        periods = period_grid(ev.time, freq)
        t = periods.index(ev.time)
        inside = t >= 0
        ev, t = ev.select(inside), t[inside]
        tokens, per_user = _attributed(model, ev, t, periods.n)
    tokens = tokens.reshape(periods.n, n_topics).astype(np.float64)
    main = np.bincount(per_user, minlength=periods.n * n_topics).reshape(periods.n, n_topics)
    total = tokens.sum(axis=1, keepdims=True)
    active = main.sum(axis=1, keepdims=True)
    return pl.DataFrame([
        periods.datetimes(np.repeat(periods.starts, n_topics)),
        pl.Series("topic", np.tile(np.arange(n_topics), periods.n), dtype=pl.Int32),
        pl.Series("label", (labels or [None] * n_topics) * periods.n, dtype=pl.String),
        pl.Series("tokens", tokens.ravel()),
        pl.Series("share", np.divide(tokens, total, out=np.zeros_like(tokens),
                                     where=total > 0).ravel()),
        pl.Series("users_main", main.ravel(), dtype=pl.Int64),
        pl.Series("share_users", np.divide(main, active, out=np.zeros(main.shape),
                                           where=active > 0).ravel()),
        pl.Series("complete", np.repeat(periods.complete, n_topics)),
    ])


def _attributed(model, ev: Events, t: np.ndarray, n_periods: int):
    """Events split over interests: tokens per (period, topic) (T K,), and the flat
    (period, topic) of each (user, period)'s main interest."""
    n_topics = model.n_topics
    pairs, inverse = unique_pairs(ev.user, ev.item, model.corpus_.n_items)
    tokens = np.zeros(n_periods * n_topics)
    # a (user, period) key per event; unknown users are each their own user
    user = np.where(ev.user >= 0, ev.user, -1 - np.arange(ev.user.size))
    keys, owner = np.unique(user * n_periods + t, return_inverse=True)
    soft = np.zeros((keys.size, n_topics))
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(pairs.shape[1] + 1))
    for a, b in blocks(pairs.shape[1], n_topics):
        post = pair_posteriors(model, pairs[0, a:b], pairs[1, a:b])
        rows = order[bounds[a]:bounds[b]]
        mass = post[inverse[rows] - a] * ev.weight[rows, None]
        np.add.at(soft, owner[rows], mass)
        tokens += np.bincount((t[rows, None] * n_topics + np.arange(n_topics)).ravel(),
                              weights=mass.ravel(), minlength=tokens.size)
    key_period = keys % n_periods
    return tokens, key_period * n_topics + soft.argmax(axis=1)


def _main_counts(keys: np.ndarray, z: np.ndarray, weight: np.ndarray, n_topics: int,
                 n_periods: int) -> np.ndarray:
    """The flat (period, topic) of the main interest of each (user, period) key, from
    hard assignments (key = d T + t)."""
    uniq, owner = np.unique(keys, return_inverse=True)
    counts = np.bincount(owner * n_topics + z, weights=weight,
                         minlength=uniq.size * n_topics).reshape(uniq.size, n_topics)
    return (uniq % n_periods) * n_topics + counts.argmax(axis=1)
