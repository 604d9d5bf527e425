"""Issue 17: demand forecasts top-down from interests against naive forecasts, and the
forecast's speed at 500k items.

Run from the repository root (about 5 minutes on 2 cores)::

    NUMBA_NUM_THREADS=2 PYTHONPATH=. .venv/bin/python bench/forecast.py
    PYTHONPATH=. .venv/bin/python bench/forecast.py --skip-speed
    PYTHONPATH=. .venv/bin/python bench/forecast.py --logs       # speed only

Quality (:func:`gibbslda.demand_eval.evaluate_forecast`): the last ``horizon`` complete periods
are held out; the model is trained on the events before the cutoff only (one token per
row, the row's time on it), so neither its topics nor the forecast's interest series,
levels and choices see the held-out periods. Logs (``--data``, each
``interactions.parquet``): Online Retail, purchases of real products (``items.parquet``
``is_product``; returns and service codes dropped), one unit of demand per row, weekly,
8 weeks held out (no category table: item level only). Taobao UserBehavior head, every
event (view, cart, fav, purchase) per item, daily in UTC: the log has 8 complete days, so
2 are held out and 6 remain to learn from; categories from ``category_id``. Beside the
naive forecasts, an ablation ``own_only``: the same method without the interests
(lambda = omega = 0, each item's own smoothed level with the same choices and
calibration), to tell what the interests add.

Speed: a synthetic model of 500k items and 50 interests (LDA fitted a few sweeps on a
planted corpus) and 4M events over 52 weeks; the seconds of one
:func:`gibbslda.demand.forecast` of 8 weeks for every item, after a warm-up, and the
process's peak resident memory.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl

from gibbslda import LDA, Corpus, demand
from gibbslda.demand import _complete, forecast
from gibbslda.demand_eval import evaluate_forecast
from gibbslda.synthetic import planted_corpus
from gibbslda.trends import period_grid, read_events

LOGS = {"online_retail": dict(freq="1w", horizon=8),
        "taobao_userbehavior_head": dict(freq="1d", horizon=2)}


def load(data: Path, name: str) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    events = pl.read_parquet(data / name / "interactions.parquet")
    if name == "online_retail":
        products = pl.read_parquet(data / name / "items.parquet").filter("is_product")
        events = events.filter((pl.col("event") == "purchase")
                               & pl.col("item_id").is_in(products["item_id"].implode()))
        return events, None
    categories = (events.select("item_id", "category_id").unique("item_id", keep="first")
                  .rename({"category_id": "category"}))
    return events, categories


def quality(data: Path, name: str, topics: int, iterations: int) -> None:
    events, categories = load(data, name)
    spec = LOGS[name]
    # the cutoff evaluate_forecast will use: the start of the last `horizon` complete periods
    times = events.get_column("timestamp")
    grid = _complete(period_grid(times.cast(pl.Int64).to_numpy(), spec["freq"]))
    cutoff = grid.datetimes()[grid.n - spec["horizon"]]
    train = events.filter(pl.col("timestamp") < cutoff)
    corpus = Corpus.from_frame(train, user="user_id", item="item_id", time="timestamp")
    t0 = time.perf_counter()
    model = LDA(topics, alpha="auto", n_iter=iterations, random_state=0).fit(corpus)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = evaluate_forecast(model, events, freq=spec["freq"], horizon=spec["horizon"],
                               categories=categories)
    eval_s = time.perf_counter() - t0
    print(f"\n## {name}: {spec['freq']} periods, {grid.n} complete, {spec['horizon']} held "
          f"out from {result.cutoff}; model K={topics} on {corpus.n_tokens:,} tokens before "
          f"it ({fit_s:.0f} s), leak={result.leak}; evaluation {eval_s:.1f} s; "
          f"{result.n_unknown_rows:,} rows of items the model does not know left out")
    # ablation: the same smoothing, choices and calibration without the interests
    # (lambda = omega = 0: each item's own level alone)
    saved = demand.LAMBDAS, demand.OMEGAS
    demand.LAMBDAS, demand.OMEGAS = (0.0,), (0.0,)
    try:
        own = evaluate_forecast(model, events, freq=spec["freq"], horizon=spec["horizon"],
                                categories=categories).table
    finally:
        demand.LAMBDAS, demand.OMEGAS = saved
    own = own.filter(pl.col("method") == "forecast").with_columns(method=pl.lit("own_only"))
    table = pl.concat([result.table, own]).sort("level", "segment", maintain_order=True)
    best = (table.filter(~pl.col("method").is_in(["forecast", "own_only"]))
            .group_by("level", "segment").agg(pl.col("wape").min().alias("best")))
    table = (table.drop("vs_best_naive").join(best, on=["level", "segment"])
             .with_columns(vs_best_naive=pl.col("wape") / pl.col("best")).drop("best"))
    with pl.Config(tbl_rows=60, tbl_cols=12, tbl_width_chars=160, float_precision=3):
        print(table.drop("demand"))
        print(result.choices)


def speed(n_items: int = 500_000, n_topics: int = 50, n_events: int = 4_000_000) -> None:
    n_users = n_events // 20
    data = planted_corpus(n_users, n_items, n_topics, mean_length=20, seed=0)
    corpus = data.corpus
    model = LDA(n_topics, n_iter=3, random_state=0).fit(corpus)
    rng = np.random.default_rng(0)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    week = 7 * 86_400_000_000
    users = np.repeat(corpus.user_ids, corpus.lengths)
    events = pl.DataFrame({"user_id": users, "item_id": corpus.item_ids[corpus.words],
                           "timestamp": pl.Series(start + rng.integers(0, 52 * week,
                                                                       users.size))
                           .cast(pl.Datetime("us"))})
    forecast(model, events.head(10_000), freq="1w", horizon=8)  # warm-up
    t0 = time.perf_counter()
    ev = read_events(model, events)
    read_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    table = forecast(model, events, freq="1w", horizon=8)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"\n## speed: {corpus.n_items:,} items x 8 weeks, K={n_topics}, "
          f"{ev.item.size:,} events over 52 weeks: forecast {total:.2f} s wall, {cpu:.2f} s "
          f"CPU (reading and mapping the events alone {read_s:.2f} s), {table.height:,} "
          f"rows, peak RSS {peak:.2f} GiB; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--logs", nargs="*", default=list(LOGS))
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    for name in args.logs:
        quality(args.data, name, args.topics, args.iterations)
    if not args.skip_speed:
        speed()


if __name__ == "__main__":
    main()
