"""Demand forecasts by interest: top-down from each interest's forecast activity to items.

The method (:func:`forecast`), on the complete periods of an events log (see
:mod:`gibbslda.trends` for periods and how events are split over interests):

1. Interest activity. Each event is split over the interests by p(k | user, item), so
   interest k has a series A_k,t (events it explains per period). Each series is
   forecast by exponential smoothing (Hyndman et al. 2008): simple (level), damped
   additive trend, each with an additive season when the history holds two whole seasons
   (7 days, 52 weeks, 12 months); parameters on a grid by the one-step squared error,
   the form by AIC. Interest series pool many items, so their trend and season are seen
   where an item's own series is mostly zeros.
2. Top-down to items. An item's own recent level is an exponentially weighted mean of its
   series (weight alpha (1 - alpha)^age, normalised). Splitting it over interests the same
   way, the item inherits each interest's expected change, g_k(h) = Ahat_k(h) / level_k:
   ``scaled = sum over the item's events of their weight x sum_k p(k | event) g_k(h)``.
   A pure top-down part spreads each interest's forecast over items by the model's
   phi_k,item, which gives items with little or no recent history the demand their
   interests predict: ``topdown = sum_k Ahat_k(h) phi_k,item``. The forecast is
   ``c ((1 - omega) ((1 - lambda) own + lambda scaled) + omega topdown)``.
3. Choice on the history only. alpha, lambda and omega are chosen per volume bucket of
   items (top 1%, 1-10%, 10-50%, the rest of the items with history, items without)
   by the lowest absolute error (summed) when forecasting, from the periods before them,
   the last H' = ``min(horizon, T // 3)`` periods of the history and, when the history
   is long enough, the H' before those (two rolling origins: one window alone is a noisy
   judge). c is 1 or, where that validates better, calibrates the bucket's level: the
   ratio of the bucket's validated demand to its forecast (a mean correction: demand
   drifting away from known items as new ones arrive, or a level that rises as a season
   builds, shows there first; on sparse items a larger mean can cost absolute error,
   which is why it is a choice). The forecast
   then starts again from the whole history with those choices.
   Nothing after the history is read (the model's own topics may have seen the
   validated periods when it was trained on them: a mild optimism of the choices).
4. Prediction intervals. Items (and categories): split conformal (Vovk et al. 2005) on
   that same validation: the residuals y - f of the chosen forecasts, pooled over the
   validation's origins and steps and binned by forecast size (20 quantile bins), give the
   quantiles added to a forecast of that size (lower clipped at 0); they assume the
   errors of the last validated periods resemble those to come, and pool the horizons.
   Interests: the one-step residuals' standard deviation s, with the simple-smoothing
   variance s^2 (1 + (h - 1) alpha^2) and normal quantiles (for trend and season forms
   an approximation).

:func:`gibbslda.demand_eval.evaluate_forecast` holds out the last ``horizon`` complete
periods, forecasts them from the events before (the interest series, levels and every
choice above see only those), and scores against naive forecasts. The model's topics
themselves come from whatever it was trained on: a model trained on the held-out periods'
events leaks them into p(k | user, item) and phi; ``Evaluation.leak`` says so when the
model has times.

References
----------
Hyndman, Koehler, Ord & Snyder (2008), "Forecasting with Exponential Smoothing: the State
Space Approach", Springer. Gardner (2006), "Exponential smoothing: the state of the art,
part II", Int. J. Forecasting (damped trend). Athanasopoulos, Ahmed & Hyndman (2009),
"Hierarchical forecasts for Australian domestic tourism", IJF (top-down by proportions).
Vovk, Gammerman & Shafer (2005), "Algorithmic Learning in a Random World" (conformal).
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import polars as pl

from gibbslda._kernels import demand as _kernels
from gibbslda._validate import check_int as _check_count
from gibbslda.recommend import _check_model
from gibbslda.scores import theta_rows
from gibbslda.trends import Events, Periods, blocks, period_grid, read_events, season_length

ALPHAS = (0.1, 0.25, 0.5, 1.0)      # items' smoothing; 1.0 is the last period alone
LAMBDAS = (0.0, 0.5, 1.0)           # weight of the interests' expected change
OMEGAS = (0.0, 0.2, 0.5, 1.0)       # weight of the pure top-down part
BUCKETS = (0.01, 0.10, 0.50)        # volume ranks splitting the items with history
N_BINS = 20                         # forecast-size bins of the conformal intervals
MIN_PERIODS = 3
LEVELS = ("item", "category", "interest")
_ETS_ALPHAS = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
_ETS_TRENDS = ((0.0, 1.0),) + tuple((b, f) for b in (0.02, 0.1) for f in (0.8, 0.9, 0.98))
_ETS_GAMMAS = (0.05, 0.2)


@dataclass(frozen=True, eq=False)
class _History:
    """Aggregated events of complete periods: (user, item) pairs sorted by item, each with
    its row of ``weights`` (theta of its user, or n_k + alpha_k for unknown users), cells
    (period, weight of events) grouped by pair, and the interest series A (K, T)."""

    periods: Periods
    pair_item: np.ndarray
    pair_row: np.ndarray
    weights: np.ndarray
    cell_ptr: np.ndarray
    cell_pair: np.ndarray
    cell_t: np.ndarray
    cell_n: np.ndarray
    interest: np.ndarray

    @property
    def n(self) -> int:
        return self.periods.n

    def items(self, n_items: int, t0: int, t1: int) -> np.ndarray:
        """Item series over periods t0:t1, (V, t1 - t0) float64."""
        keep = (self.cell_t >= t0) & (self.cell_t < t1)
        width = t1 - t0
        key = self.pair_item[self.cell_pair[keep]] * width + self.cell_t[keep] - t0
        return np.bincount(key, weights=self.cell_n[keep],
                           minlength=n_items * width).reshape(n_items, width)

def _weights(n: int) -> list[np.ndarray]:
    """Per alpha, the weight of each of n periods in the exponentially weighted mean:
    alpha (1 - alpha)^age / (1 - (1 - alpha)^n), age 0 for the last (alpha 1: it alone)."""
    age = np.arange(n)[::-1]
    return [a * (1 - a) ** age / (1 - (1 - a) ** n) if a < 1 else (age == 0) * 1.0
            for a in ALPHAS]


def _history(model, ev: Events, periods: Periods) -> _History:
    t = periods.index(ev.time)
    keep = t >= 0
    n_users, n = model.corpus_.n_users + 1, periods.n
    # one sort: cells (item, user, period) in order, so pairs (item, user) come grouped
    cells, owner = np.unique((ev.item[keep] * n_users + ev.user[keep] + 1) * n + t[keep],
                             return_inverse=True)
    cell_n = np.bincount(owner.ravel(), weights=ev.weight[keep], minlength=cells.size)
    cell_t, pair_key = cells % n, cells // n
    first = np.flatnonzero(np.diff(pair_key, prepend=-1))
    keys = pair_key[first]
    cell_pair = np.repeat(np.arange(keys.size), np.diff(np.append(first, cells.size)))
    pair_user, pair_item = keys % n_users - 1, keys // n_users
    present = np.bincount(pair_user + 1, minlength=n_users) > 0   # -1 (unknown) first
    users = np.flatnonzero(present) - 1
    pair_row = (np.cumsum(present) - 1)[pair_user + 1]
    state = model.state_
    known = users[users >= 0]
    weights = np.empty((users.size, model.n_topics))
    weights[users.size - known.size:] = theta_rows(state, known)
    if known.size < users.size:
        weights[0] = state.n_k + state.alpha
    cell_ptr = np.append(first, cells.size).astype(np.int64)
    hist = _History(periods, pair_item.astype(np.int64), pair_row.astype(np.int64),
                    weights, cell_ptr, cell_pair, cell_t.astype(np.int64), cell_n, None)
    t_ = model._tables()
    interest = _kernels.interest_series(hist.pair_item, hist.pair_row, cell_ptr,
                                        hist.cell_t, cell_n, weights, t_.item_ptr,
                                        t_.item_topic, t_.item_count, t_.denom,
                                        float(t_.beta), periods.n)
    return _History(**{**hist.__dict__, "interest": interest})


# -- interest activity: exponential smoothing ----------------------------------------------
def _ets(series: np.ndarray, horizon: int, season: int | None):
    """Forecast each row of ``series`` (K, T) ``horizon`` steps on: (K, H) forecasts
    (clipped at 0), the one-step residual standard deviation (K,) and the level's alpha
    (K,)."""
    k, n = series.shape
    grid = [(a, b, f, 0.0) for a in _ETS_ALPHAS for b, f in _ETS_TRENDS if b <= a
            and (b == 0 or n >= 4)]
    m = season if season and n >= 2 * season else None
    if m:
        grid += [(a, b, f, g) for a, b, f, _ in grid for g in _ETS_GAMMAS]
    p = np.array(grid)                                    # (G, 4): alpha beta phi gamma
    level = np.repeat(series[:, :m or min(n, 4)].mean(axis=1, keepdims=True), len(p), 1)
    trend = np.zeros_like(level)
    seas = np.zeros((k, len(p), m or 1))
    if m:
        seas[:] = (series[:, :m] - series[:, :m].mean(axis=1, keepdims=True))[:, None, :]
    sse = np.zeros_like(level)
    for t in range(n):
        s = t % m if m else 0
        err = series[:, t:t + 1] - (level + p[:, 2] * trend + seas[:, :, s])
        sse += err ** 2
        level = level + p[:, 2] * trend + p[:, 0] * err
        trend = p[:, 2] * trend + p[:, 1] * err
        seas[:, :, s] += p[:, 3] * err
    n_par = 2 + 3 * (p[:, 1] > 0) + (1 + (m or 0)) * (p[:, 3] > 0)
    aic = n * np.log(sse / n + 1e-12) + 2 * n_par
    best = aic.argmin(axis=1)
    rows = np.arange(k)
    steps = np.arange(1, horizon + 1)
    damp = np.cumsum(p[best, 2][:, None] ** steps, axis=1)
    out = level[rows, best][:, None] + damp * trend[rows, best][:, None]
    if m:
        out += seas[rows, best][:, (n + steps - 1) % m]
    return (np.maximum(out, 0.0), np.sqrt(sse[rows, best] / n), p[best, 0])


# -- items ---------------------------------------------------------------------------------
def _topdown(model, interest_forecast: np.ndarray) -> np.ndarray:
    """sum_k Ahat_k(h) phi_k,item for every item: (V, H), from the sparse counts."""
    t = model._tables()
    per = interest_forecast / t.denom[:, None]                 # (K, H)
    out = np.empty((t.n_items, per.shape[1]))
    out[:] = t.beta * per.sum(axis=0)
    for a, b in blocks(t.n_items, max(8, per.shape[1] * 8)):
        lo, hi = t.item_ptr[a], t.item_ptr[b]
        rows = np.repeat(np.arange(b - a), np.diff(t.item_ptr[a:b + 1]))
        vals = t.item_count[lo:hi, None] * per[t.item_topic[lo:hi]]
        for h in range(per.shape[1]):
            out[a:b, h] += np.bincount(rows, weights=vals[:, h], minlength=b - a)
    return out


def _scaled(model, hist: _History, origins, growths) -> tuple[list, list]:
    """For each origin and its growth (A, K, H_j): the items' own smoothed levels over
    the periods before it (A, V) and those levels scaled by their interests' growth
    (A, V, H_j); one pass of :func:`_kernels.scaled_levels` for all origins (growth
    padded to the longest H)."""
    t = model._tables()
    width = max(g.shape[2] for g in growths)
    growth = np.concatenate([np.pad(g, ((0, 0), (0, 0), (0, width - g.shape[2])))
                             for g in growths])
    table = np.zeros((len(origins) * len(ALPHAS), hist.n))
    for j, at in enumerate(origins):
        table[j * len(ALPHAS):(j + 1) * len(ALPHAS), :at] = _weights(at)
    scaled, own = _kernels.scaled_levels(hist.pair_item, hist.pair_row, hist.cell_ptr,
                                         hist.cell_t, hist.cell_n, table, growth,
                                         hist.weights, t.item_ptr, t.item_topic,
                                         t.item_count, t.denom, float(t.beta),
                                         model.corpus_.n_items)
    n = len(ALPHAS)
    return ([own[j * n:(j + 1) * n] for j in range(len(origins))],
            [scaled[j * n:(j + 1) * n, :, :g.shape[2]] for j, g in enumerate(growths)])


def _buckets(volume: np.ndarray) -> np.ndarray:
    """Bucket of each item by its history volume: 0 (top 1%) .. 3, and 4 for none."""
    out = np.full(volume.size, len(BUCKETS) + 1, dtype=np.int64)
    active = np.flatnonzero(volume > 0)
    order = active[np.lexsort((active, -volume[active]))]
    rank = np.arange(order.size) / max(order.size, 1)
    out[order] = np.searchsorted(np.array(BUCKETS), rank, side="right")
    return out


def _pick(origins) -> tuple[np.ndarray, np.ndarray]:
    """Per bucket the (alpha, lambda, omega) indices and the scale c of the lowest
    absolute error summed over the validation origins, each (own (A, V), scaled
    (A, V, H), topdown (V, H), actual (V, H), bucket (V,)); c is 1 or, where that
    validates better, sum y / sum f of the bucket's validation (1 when f sums to 0);
    the first (simplest: uncalibrated) candidate on ties."""
    n_b = len(BUCKETS) + 2
    shape = (len(ALPHAS), len(LAMBDAS), len(OMEGAS), n_b)
    total_y, total_f, err = np.zeros(n_b), np.zeros(shape), np.zeros((2,) + shape)
    for own, scaled, topdown, actual, bucket in origins:  # sums of f are linear in parts
        total_y += np.bincount(bucket, weights=actual.sum(axis=1), minlength=n_b)
        sums = [np.bincount(bucket, weights=x, minlength=n_b) for x in
                (topdown.sum(axis=1), *(own * actual.shape[1]), *scaled.sum(axis=2))]
        for i, j, o in np.ndindex(shape[:3]):
            total_f[i, j, o] += _mix(sums[1 + i], sums[1 + len(ALPHAS) + i], sums[0],
                                     LAMBDAS[j], OMEGAS[o])
    ratio = np.divide(total_y, total_f, out=np.ones(shape), where=total_f > 0)
    scale = np.stack([np.ones(shape), ratio])           # uncalibrated, calibrated
    for own, scaled, topdown, actual, bucket in origins:
        err += _kernels.blend_errors(np.ascontiguousarray(own), np.ascontiguousarray(scaled),
                                     np.ascontiguousarray(topdown), actual,
                                     bucket.astype(np.int64), np.array(LAMBDAS),
                                     np.array(OMEGAS), scale)
    flat = err.reshape(-1, n_b).argmin(axis=0)  # argmin: the first of equal ones
    choice = np.stack(np.unravel_index(flat, err.shape[:4]), axis=1)
    return choice[:, 1:], scale.reshape(-1, n_b)[flat, np.arange(n_b)]


def _mix(own, scaled, topdown, lam, om):
    return (1 - om) * ((1 - lam) * own + lam * scaled) + om * topdown


def _conformal(forecast: np.ndarray, residual: np.ndarray, coverage: float):
    """Bin edges by forecast size and per bin the residual quantiles (lo, hi)."""
    f, r = forecast.ravel(), residual.ravel()
    positive = f > 0
    n_bins = max(1, min(N_BINS, int(positive.sum()) // 50))
    edges = np.quantile(f[positive], np.linspace(0, 1, n_bins + 1)[1:-1]) if positive.any() \
        else np.zeros(0)
    which = np.where(positive, 1 + np.searchsorted(edges, f, side="right"), 0)
    q = np.zeros((n_bins + 1, 2))
    for b in range(n_bins + 1):
        sel = r[which == b]
        if sel.size:
            q[b] = np.quantile(sel, [(1 - coverage) / 2, (1 + coverage) / 2])
    return edges, q


def _interval(forecast, edges, q):
    which = np.where(forecast > 0, 1 + np.searchsorted(edges, forecast, side="right"), 0)
    return np.maximum(forecast + q[which, 0], 0.0), np.maximum(forecast + q[which, 1], 0.0)


def _growth(series: np.ndarray, ahead: np.ndarray) -> np.ndarray:
    """g_k(h) = Ahat_k(h) / level_k for each alpha, (A, K, H); 0 where the level is 0."""
    out = np.zeros((len(ALPHAS),) + ahead.shape)
    for i, w in enumerate(_weights(series.shape[1])):
        level = series @ w
        np.divide(ahead, level[:, None], out=out[i], where=level[:, None] > 0)
    return out


def _chosen(own, scaled, topdown, choice, bucket, scale) -> np.ndarray:
    """The blend each item's bucket chose, times the bucket's scale, (V, H)."""
    rows = np.arange(bucket.size)
    pick = choice[bucket]
    lam = np.array(LAMBDAS)[pick[:, 1]][:, None]
    om = np.array(OMEGAS)[pick[:, 2]][:, None]
    base = (1 - lam) * own[pick[:, 0], rows][:, None] + lam * scaled[pick[:, 0], rows]
    return ((1 - om) * base + om * topdown) * scale[bucket][:, None]


@dataclass(frozen=True, eq=False)
class DemandForecast:
    """What :func:`fit_forecast` found: the history's periods, the future periods'
    starts (``future``, int64 us), the interests' history (K, T) and forecast with
    intervals (K, H), the items' forecast with intervals (V, H), the choices per volume
    bucket (alpha, lambda, omega), the validated periods they were chosen on (over all
    origins) and the validation's forecasts and actuals (V, periods)."""

    periods: Periods
    future: np.ndarray
    history: _History
    interest_forecast: np.ndarray
    interest_lower: np.ndarray
    interest_upper: np.ndarray
    item_forecast: np.ndarray
    item_lower: np.ndarray
    item_upper: np.ndarray
    choices: pl.DataFrame
    validation_periods: int
    validation: tuple  # (forecast, actual), (V, validation_periods), origins side by side
    coverage: float


def fit_forecast(model, ev: Events, periods: Periods, *, horizon: int = 8,
                 season: int | None = None, coverage: float = 0.8) -> DemandForecast:
    """The forecast of :func:`forecast` from events already mapped onto the model
    (:func:`gibbslda.trends.read_events`) over the given complete ``periods``."""
    if periods.n < MIN_PERIODS:
        raise ValueError(f"the events span {periods.n} complete period(s) of "
                         f"{periods.freq}; forecasts need at least {MIN_PERIODS}: use a "
                         "shorter freq or a longer log")
    hist = _history(model, ev, periods)
    n, n_items = periods.n, model.corpus_.n_items
    hv = min(horizon, n // 3)
    origins = [n - hv] + ([n - 2 * hv] if n - 2 * hv >= max(MIN_PERIODS, hv) else [])
    season = season_length(periods) if season is None else (season or None)
    growths, tops = [], []
    for at in origins + [n]:
        ahead, sd, alpha = _ets(hist.interest[:, :at], hv if at < n else horizon, season)
        growths.append(_growth(hist.interest[:, :at], ahead))
        tops.append(_topdown(model, ahead))
    own, scaled = _scaled(model, hist, origins + [n], growths)
    valid = [(own[j], scaled[j], tops[j], hist.items(n_items, at, at + hv),
              _buckets(_volume(hist, n_items, at))) for j, at in enumerate(origins)]
    choice, scale = _pick(valid)
    fits = [_chosen(o, s, t, choice, b, scale) for o, s, t, _, b in valid]
    fit_o = np.concatenate(fits, axis=1)
    actual = np.concatenate([v[3] for v in valid], axis=1)
    edges, q = _conformal(fit_o, actual - fit_o, coverage)
    item = _chosen(own[-1], scaled[-1], tops[-1], choice,
                   _buckets(_volume(hist, n_items, n)), scale)
    lower, upper = _interval(item, edges, q)
    z = NormalDist().inv_cdf((1 + coverage) / 2)
    spread = z * sd[:, None] * np.sqrt(1 + np.arange(horizon) * alpha[:, None] ** 2)
    names = ["top 1%", "1-10%", "10-50%", "50-100%", "no history"]
    choices = pl.DataFrame({"bucket": names,
                            "alpha": [ALPHAS[c] for c in choice[:, 0]],
                            "lambda": [LAMBDAS[c] for c in choice[:, 1]],
                            "omega": [OMEGAS[c] for c in choice[:, 2]], "scale": scale})
    return DemandForecast(periods, periods.following(horizon + 1)[:horizon], hist, ahead,
                          np.maximum(ahead - spread, 0.0), ahead + spread, item, lower,
                          upper, choices, len(origins) * hv, (fit_o, actual), coverage)


def _volume(hist: _History, n_items: int, origin: int) -> np.ndarray:
    keep = hist.cell_t < origin
    return np.bincount(hist.pair_item[hist.cell_pair[keep]], weights=hist.cell_n[keep],
                       minlength=n_items)


def forecast(model, events, *, time: str = "timestamp", freq: str = "1w", horizon: int = 8,
             level: str = "item", user: str = "user_id", item: str = "item_id",
             weight: str | None = None, categories=None, category: str = "category",
             coverage: float = 0.8, season: int | None = None) -> pl.DataFrame:
    """Forecast demand (expected events per period) for the ``horizon`` periods after the
    events, top-down from the interests (the method: module docstring).

    Parameters
    ----------
    model : a fitted :class:`~gibbslda.LDA`; its items are what is forecast.
    events : polars or pandas frame, one row per event, with ``user``, ``item`` and
        ``time`` columns (and ``weight``, a quantity per row, if given). Rows of items the
        model does not know are left out. Only complete periods are used (a partial
        first or last period is dropped, :mod:`gibbslda.trends`).
    freq : polars duration of a period, "1d", "1w", "1mo" ...; periods start where
        ``dt.truncate(freq)`` puts them (weeks on Mondays, UTC).
    horizon : periods to forecast.
    level : "item", "category" (sums of the item forecasts; needs ``categories``, a dict
        item id -> category or a frame with columns ``item`` and ``category``) or
        "interest".
    coverage : the prediction intervals' nominal coverage.
    season : periods in a season; None: 7 for days, 52 for weeks, 12 for months, used
        only when the history holds two whole seasons; 0: never.

    Returns
    -------
    polars.DataFrame: item_id (or category, or topic), period (Datetime[us], the start of
    each future period), forecast, lower, upper; V x horizon rows for items, in item then
    period order.
    """
    _check_model(model)
    _check_count("horizon", horizon, minimum=1)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {list(LEVELS)}, got {level!r}")
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, got {coverage!r}")
    if level == "category" and categories is None:
        raise ValueError("level='category' needs categories=: a dict item id -> category "
                         "or a frame with item and category columns")
    ev = read_events(model, events, user=user, item=item, time=time, weight=weight)
    grid = period_grid(ev.time, freq)
    fit = fit_forecast(model, ev, _complete(grid), horizon=horizon, season=season,
                       coverage=coverage)
    return table(model, fit, level, categories=categories, item=item, category=category)


def _complete(grid: Periods) -> Periods:
    keep = np.flatnonzero(grid.complete)
    if keep.size == 0:
        raise ValueError(f"the events do not cover one complete period of {grid.freq}: "
                         "use a shorter freq")
    sl = slice(keep[0], keep[-1] + 1)
    return Periods(grid.starts[sl], grid.ends[sl], grid.complete[sl], grid.freq)


def table(model, fit: DemandForecast, level: str = "item", *, categories=None,
          item: str = "item_id", category: str = "category") -> pl.DataFrame:
    """The forecast table of :func:`forecast` at ``level`` from a :class:`DemandForecast`."""
    h = fit.future.size
    if level == "interest":
        ids, values = pl.Series("topic", np.arange(model.n_topics), dtype=pl.Int32), (
            fit.interest_forecast, fit.interest_lower, fit.interest_upper)
    elif level == "item":
        ids = pl.Series("item_id", model.item_ids_)
        values = (fit.item_forecast, fit.item_lower, fit.item_upper)
    else:
        names, codes = category_codes(model, categories, item=item, category=category)
        values = category_forecast(fit, codes, names.size)
        ids = pl.Series("category", names, dtype=pl.String)
    n = len(ids)
    return pl.DataFrame([
        ids.gather(np.repeat(np.arange(n), h)),
        fit.periods.datetimes(np.tile(fit.future, n)),
        pl.Series("forecast", values[0].ravel()),
        pl.Series("lower", values[1].ravel()),
        pl.Series("upper", values[2].ravel()),
    ])


def category_codes(model, categories, *, item: str = "item_id", category: str = "category"):
    """(names (C,) object, code per model item (V,) int64, -1: none)."""
    from gibbslda.profiles import _label_per_item

    per_item = _label_per_item(model, categories, item=item, value=category)
    known = np.array([c is not None for c in per_item], dtype=bool)
    names, codes = np.unique(per_item[known].astype(str), return_inverse=True)
    out = np.full(per_item.size, -1, dtype=np.int64)
    out[known] = codes
    return names.astype(object), out


def category_forecast(fit: DemandForecast, codes: np.ndarray, n_cat: int):
    """Sums of the item forecasts per category, with conformal intervals from the
    category sums on the validation."""
    val_f, val_y = (_sum_by(x, codes, n_cat) for x in fit.validation)
    edges, q = _conformal(val_f, val_y - val_f, fit.coverage)
    f = _sum_by(fit.item_forecast, codes, n_cat)
    return (f,) + _interval(f, edges, q)


def _sum_by(values: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    keep = codes >= 0
    return np.stack([np.bincount(codes[keep], weights=values[keep, h], minlength=n)
                     for h in range(values.shape[1])], axis=1)
