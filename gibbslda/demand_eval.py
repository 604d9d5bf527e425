"""Held-out evaluation of demand forecasts against naive ones (:func:`evaluate_forecast`).

The last ``horizon`` complete periods are held out; :func:`gibbslda.demand.fit_forecast`
forecasts them from the events before (every choice it makes sees only those), and each
level and segment is scored against naive forecasts from the same history. The model's
topics come from whatever it was trained on: ``Evaluation.leak`` says when they saw the
held-out periods (the model has times).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from gibbslda._validate import check_int as _check_count
from gibbslda.demand import (MIN_PERIODS, _complete, _sum_by, _volume, category_codes,
                             category_forecast, fit_forecast)
from gibbslda.recommend import _check_model
from gibbslda.trends import Periods, period_grid, read_events, season_length


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What :func:`evaluate_forecast` measured: ``table`` (level, segment, method, wape,
    mae, bias, vs_best_naive, coverage, n, demand), the ``cutoff`` (the first held-out
    period's start, Datetime), the history's periods, ``leak`` (True: the model was
    trained on events at or after the cutoff, so its topics saw the held-out periods;
    False: it was not; None: the model has no times to tell), the choices made on the
    history, and the rows of items the model does not know (left out)."""

    table: pl.DataFrame
    cutoff: object
    history_periods: int
    horizon: int
    leak: bool | None
    choices: pl.DataFrame
    n_unknown_rows: int


def evaluate_forecast(model, events, *, time: str = "timestamp", freq: str = "1w",
                      horizon: int = 8, user: str = "user_id", item: str = "item_id",
                      weight: str | None = None, categories=None, category: str = "category",
                      coverage: float = 0.8, season: int | None = None,
                      tail: float = 0.10) -> Evaluation:
    """Hold out the last ``horizon`` complete periods, forecast them from the events
    before, and score the forecast and naive ones against what happened.

    Naive forecasts (from the same history): ``last`` (the last period), ``mean_4`` and
    ``mean_8`` (means of the last 4 and 8 periods, when the history has them) and
    ``seasonal`` (the same period one season earlier, when a whole season exists).
    Scores per level (items; categories when ``categories`` is given) and segment
    (``all``; ``tail``: outside the top ``tail`` share of items, or categories, by their
    history demand, ties by index), over the items with an event in the history or the
    held-out periods: WAPE sum|y - f| / sum y, MAE mean |y - f| per item and period,
    bias sum(f - y) / sum y, vs_best_naive (WAPE over the best naive WAPE of the
    segment), and coverage (share of y inside the forecast's interval).
    """
    _check_model(model)
    _check_count("horizon", horizon, minimum=1)
    ev = read_events(model, events, user=user, item=item, time=time, weight=weight)
    grid = _complete(period_grid(ev.time, freq))
    n_hist = grid.n - horizon
    if n_hist < MIN_PERIODS:
        raise ValueError(f"the events span {grid.n} complete period(s) of {freq}: holding "
                         f"out {horizon} leaves fewer than {MIN_PERIODS} to learn from; "
                         "lower --horizon or use a shorter freq")
    past = Periods(grid.starts[:n_hist], grid.ends[:n_hist], grid.complete[:n_hist], freq)
    cutoff = int(grid.starts[n_hist])
    fit = fit_forecast(model, ev.select(ev.time < cutoff), past, horizon=horizon,
                       season=season, coverage=coverage)
    n_items = model.corpus_.n_items
    t = grid.index(ev.time)
    held = t >= n_hist
    actual = np.bincount(ev.item[held] * horizon + t[held] - n_hist, weights=ev.weight[held],
                         minlength=n_items * horizon).reshape(n_items, horizon)
    m = season_length(past) if season is None else (season or None)
    recent = fit.history.items(n_items, max(0, n_hist - max(8, m or 0)), n_hist)
    naive = _naive(recent, horizon, m)
    volume = _volume(fit.history, n_items, n_hist)
    levels = [("item", np.arange(n_items), n_items)]
    if categories is not None:
        names, codes = category_codes(model, categories, item=item, category=category)
        levels.append(("category", codes, names.size))
    rows = []
    for level, codes, n in levels:
        if level == "item":
            preds = {"forecast": (fit.item_forecast, fit.item_lower, fit.item_upper)}
            preds |= {k: (v,) for k, v in naive.items()}
            y, vol = actual, volume
        else:
            preds = {"forecast": category_forecast(fit, codes, n)}
            preds |= {k: (_sum_by(v, codes, n),) for k, v in naive.items()}
            y, vol = _sum_by(actual, codes, n), _sum_by(volume[:, None], codes, n)[:, 0]
        live = (vol > 0) | (y.sum(axis=1) > 0)
        rank = np.lexsort((np.arange(vol.size), -vol))
        top = np.zeros(vol.size, dtype=bool)
        top[rank[:int(np.ceil(tail * live.sum()))]] = True
        for segment, keep in (("all", live), ("tail", live & ~top)):
            rows.extend(_scores(level, segment, preds, y[keep], keep))
    frame = pl.DataFrame(rows)
    best = (frame.filter(pl.col("method") != "forecast").group_by("level", "segment")
            .agg(pl.col("wape").min().alias("best")))
    frame = (frame.join(best, on=["level", "segment"], how="left", maintain_order="left")
             .with_columns((pl.col("wape") / pl.col("best")).alias("vs_best_naive"))
             .drop("best"))
    times = model.corpus_.times
    leak = None if times is None else bool(times.size and times.max() >= cutoff)
    return Evaluation(frame, grid.datetimes(np.array([cutoff]))[0], n_hist, horizon, leak,
                      fit.choices, ev.n_unknown_rows)


def _naive(recent: np.ndarray, horizon: int, season: int | None) -> dict:
    width = recent.shape[1]
    out = {"last": np.repeat(recent[:, -1:], horizon, axis=1)}
    for n in (4, 8):
        if width >= n:
            out[f"mean_{n}"] = np.repeat(recent[:, -n:].mean(axis=1, keepdims=True),
                                         horizon, axis=1)
    if season and width >= season:
        out["seasonal"] = recent[:, width - season + np.arange(horizon) % season]
    return out


def _scores(level, segment, preds, y, keep) -> list[dict]:
    total = y.sum()
    rows = []
    for method, values in preds.items():
        f = values[0][keep]
        err = np.abs(y - f)
        cover = None
        if len(values) == 3:
            cover = float(((y >= values[1][keep]) & (y <= values[2][keep])).mean()) \
                if y.size else None
        rows.append({"level": level, "segment": segment, "method": method,
                     "wape": float(err.sum() / total) if total > 0 else None,
                     "mae": float(err.mean()) if y.size else None,
                     "bias": float((f - y).sum() / total) if total > 0 else None,
                     "coverage": cover, "n": int(keep.sum()), "demand": float(total)})
    return rows
