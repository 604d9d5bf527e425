"""Issue 16: incremental updates against retraining, replaying the shared logs with times.

Run from the repository root (figures: bench/README.md, "Issue 16: incremental updates")::

    .venv/bin/python bench/daily_replay.py --data ../shared/data/online_retail
    .venv/bin/python bench/daily_replay.py --data ../shared/data/taobao_userbehavior_head

Tokens: Online Retail, purchases of real products (``items.parquet`` ``is_product``), one
token per purchase row; Taobao head, one token per event with the item's category as the
word (most items are seen once, README of the data). Each token's time is its event's.

(a) One update: a model trained (``--topics``, learned priors, ``--iterations`` sweeps,
seed 0) on the events before the 70% quantile of time-ordered events takes the next 15%
by one ``update``; a model retrained on everything before the 85% quantile is the
reference. (b) Daily updates: a model trained on the events before ``end - 2 x --days``
days takes each following day's events by one ``update`` a day for ``--days`` days
(Taobao's 9 days: as many days as the log has); the reference is retrained on everything
up to the last update. Both are judged on the period after their training (the last 15%;
the last ``--days`` days): users with events before it and in it; Recall@20 from each
model's own theta of the user (``doc_topic``, what ``recommend`` uses) times phi,
excluding items the user had before the period; held-out likelihood = document
completion per token of the period's events given the user's history
(:func:`gibbslda.evaluate.completion_log_likelihood`). Costs are wall seconds of ``fit``
and of the updates (each update's own O(N) growth included), after a compile warm-up.
(c) counts the update's users and items missing from the model afterwards (goal: 0).
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from gibbslda import LDA
from gibbslda.corpus import Corpus
from gibbslda.evaluate import completion_log_likelihood
from gibbslda.ranking import ranking_metrics


def events_of(folder: Path) -> pl.DataFrame:
    """user_id, item_id (the word), time; sorted by time."""
    events = pl.read_parquet(folder / "interactions.parquet")
    items = pl.read_parquet(folder / "items.parquet")
    if "is_product" in items.columns:
        events = (events.filter(pl.col("event") == "purchase")
                  .join(items.filter("is_product").select("item_id"), on="item_id"))
    if "category_id" in events.columns:
        events = events.with_columns(item_id=pl.col("category_id"))
    return (events.select("user_id", "item_id", time=pl.col("timestamp"))
            .sort("time", "user_id", "item_id"))


def corpus_of(frame: pl.DataFrame, vocabulary=None, drop_empty=True) -> Corpus:
    return Corpus.from_frame(frame, user="user_id", item="item_id", time="time",
                             vocabulary=vocabulary, drop_empty=drop_empty)


def new_model(args, seed: int) -> LDA:
    return LDA(args.topics, alpha="auto", beta="auto", n_iter=args.iterations,
               random_state=seed, sampler=args.sampler)


def judge(model: LDA, history: pl.DataFrame, period: pl.DataFrame, items) -> dict:
    """Recall@20 and completion likelihood of ``model`` on ``period`` for users in both."""
    users = np.intersect1d(history["user_id"].unique().to_numpy(),
                           period["user_id"].unique().to_numpy())
    keep = pl.col("user_id").is_in(pl.Series(users).implode())
    h = corpus_of(history.filter(keep), vocabulary=items, drop_empty=False)
    p = corpus_of(period.filter(keep), vocabulary=items, drop_empty=False)
    assert np.array_equal(h.user_ids, p.user_ids)
    rows = pd.Index(model.user_ids_).get_indexer(h.user_ids)
    cols = pd.Index(model.item_ids_).get_indexer(items)
    assert (rows >= 0).all() and (cols >= 0).all()
    theta = model.doc_topic(rows)
    phi = model.topic_word_[:, cols]
    metrics = ranking_metrics(lambda u: theta[u] @ phi, h, p, k=20, n_items=len(items))
    return {"recall": metrics[20].means()["recall"], "users": metrics[20].n_users,
            "heldout": completion_log_likelihood(model, h, p)}


def missing(model: LDA, frame: pl.DataFrame) -> tuple[int, int]:
    users = set(frame["user_id"].to_list()) - set(model.user_ids_.tolist())
    items = set(frame["item_id"].to_list()) - set(model.item_ids_.tolist())
    return len(users), len(items)


def one_update(events: pl.DataFrame, args, seed: int) -> tuple:
    times = events["time"]
    t0, t1 = times.quantile(0.70, "nearest"), times.quantile(0.85, "nearest")
    base_events = events.filter(pl.col("time") < t0)
    new_events = events.filter((pl.col("time") >= t0) & (pl.col("time") < t1))
    train_events = events.filter(pl.col("time") < t1)
    period = events.filter(pl.col("time") >= t1)
    model = new_model(args, seed).fit(corpus_of(base_events))
    start = time.perf_counter()
    model.update(corpus_of(new_events), n_iter=args.sweeps, refresh=args.refresh,
                 scope=args.scope)
    update_s = time.perf_counter() - start
    report = model.last_update_
    if seed == args.seeds[0]:
        print(f"(a) one update: base {base_events.height} events, update "
              f"{new_events.height} ({new_events.height / train_events.height:.1%} of the "
              f"retrain's); {report.users_added} users, {report.items_added} words added; "
              f"swept {report.users_swept} users, {report.tokens_swept} tokens "
              f"({report.tokens_swept / model.state_.n_tokens:.0%}) x {report.sweeps}")
    return _versus(model, update_s, train_events, period, args, seed,
                   missing(model, new_events))


def daily(events: pl.DataFrame, args, seed: int) -> tuple:
    last = pd.Timestamp(events["time"].max()).normalize()
    early = pd.Timestamp(events["time"].quantile(0.05, "nearest")).normalize()
    if (last - early).days > 2 * args.days:
        eval_start = last - pd.Timedelta(days=args.days)
        first = eval_start - pd.Timedelta(days=args.days)
    else:  # a short log (Taobao's 9 days): its last 2 days judged, updates from its middle
        eval_start = last - pd.Timedelta(days=1)
        first = early + pd.Timedelta(days=(eval_start - early).days // 2)
    base_events = events.filter(pl.col("time") < first)
    train_events = events.filter(pl.col("time") < eval_start)
    model = new_model(args, seed).fit(corpus_of(base_events))
    update_s, n_updates, lost, swept = 0.0, 0, [0, 0], []
    for day in pd.date_range(first, eval_start, freq="D", inclusive="left"):
        batch = events.filter((pl.col("time") >= day)
                              & (pl.col("time") < day + pd.Timedelta(days=1)))
        if batch.height == 0:
            continue
        start = time.perf_counter()
        model.update(corpus_of(batch), n_iter=args.sweeps, refresh=args.refresh,
                     scope=args.scope)
        update_s += time.perf_counter() - start
        n_updates += 1
        swept.append(model.last_update_.tokens_swept / model.state_.n_tokens)
        lost = [a + b for a, b in zip(lost, missing(model, batch))]
    if seed == args.seeds[0]:
        print(f"(b) daily: base {base_events.height} events before {first:%Y-%m-%d}; "
              f"{n_updates} daily updates of {train_events.height - base_events.height} "
              f"events to {eval_start:%Y-%m-%d}; each swept {np.mean(swept):.1%} of the "
              f"tokens on average")
    return _versus(model, update_s, train_events,
                   events.filter(pl.col("time") >= eval_start), args, seed, tuple(lost))


def _versus(model, update_s, train_events, period, args, seed, lost) -> tuple:
    """(update row, retrain row, missing): each row (seconds, judge's figures)."""
    start = time.perf_counter()
    retrained = new_model(args, seed).fit(corpus_of(train_events))
    retrain_s = time.perf_counter() - start
    items = retrained.item_ids_
    return ((update_s, judge(model, train_events, period, items)),
            (retrain_s, judge(retrained, train_events, period, items)), lost)


def _table(results) -> None:
    print("| seed | update s | retrain s | cost | Recall@20 update | retrain | ratio | "
          "held-out ll update | retrain | diff | users | missing users, words |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for seed, ((us, u), (rs, r), lost) in results:
        rows.append((us, rs, u["recall"], r["recall"], u["heldout"], r["heldout"]))
        print(f"| {seed} | {us:.2f} | {rs:.2f} | {us / rs:.1%} | {u['recall']:.4f} | "
              f"{r['recall']:.4f} | {u['recall'] / r['recall']:.3f} | {u['heldout']:.4f} | "
              f"{r['heldout']:.4f} | {(u['heldout'] - r['heldout']) / abs(r['heldout']):+.2%} "
              f"| {u['users']} | {lost[0]}, {lost[1]} |")
    us, rs, ur, rr, uh, rh = np.array(rows).mean(axis=0)
    print(f"| mean | {us:.2f} | {rs:.2f} | {us / rs:.1%} | {ur:.4f} | {rr:.4f} | "
          f"{ur / rr:.3f} | {uh:.4f} | {rh:.4f} | {(uh - rh) / abs(rh):+.2%} | | |")
    spread = np.array(rows)[:, 3]
    print(f"retrain Recall@20 over seeds: min {spread.min():.4f}, max {spread.max():.4f} "
          f"(max / min {spread.max() / spread.min():.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/online_retail"))
    parser.add_argument("--topics", type=int, default=25)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--sweeps", type=int, default=None,
                        help="sweeps per update (default: gibbslda.update.DEFAULT_SWEEPS)")
    parser.add_argument("--refresh", type=float, default=0.0,
                        help="share of untouched users each update sweeps too")
    parser.add_argument("--scope", choices=("users", "new"), default="new",
                        help="what an update resamples of the users it touches")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--part", choices=("a", "b", "both"), default="both")
    parser.add_argument("--seeds", default="0,1,2",
                        help="seeds of the base and retrained chains (one row each)")
    parser.add_argument("--sampler", default="sparse",
                        help="sampler of every model (auto picks warp here; see README)")
    args = parser.parse_args()
    args.seeds = [int(seed) for seed in args.seeds.split(",")]
    events = events_of(args.data)
    import numba

    print(f"{args.data.name}: {events.height} events, {events['user_id'].n_unique()} users, "
          f"{events['item_id'].n_unique()} words; K = {args.topics}, "
          f"{args.iterations} sweeps, sampler {args.sampler}, sweeps per update "
          f"{args.sweeps or 'default'}, refresh {args.refresh}, scope {args.scope}, "
          f"{numba.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus")
    warm = Corpus.from_lists([[0, 1], [1]])  # compile outside the timings
    LDA(2, n_iter=2, random_state=0).fit(warm).update(
        Corpus.from_lists([[1, 2]], user_ids=[5]), n_iter=1)
    for part, run in (("a", one_update), ("b", daily)):
        if args.part in (part, "both"):
            _table([(seed, run(events, args, seed)) for seed in args.seeds])


if __name__ == "__main__":
    main()
