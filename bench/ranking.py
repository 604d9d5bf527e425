"""Ranking quality of every recommendation variant beside popularity, item-kNN and EASE,
on the three shared logs under three protocols.

Run from the repository root (about 10-20 minutes on 2 cores)::

    NUMBA_NUM_THREADS=2 PYTHONPATH=. .venv/bin/python bench/ranking.py
    PYTHONPATH=. .venv/bin/python bench/ranking.py --logs ml_latest_small --protocols last:5

Logs (``--data`` folder, each ``interactions.parquet`` with times; one token per row, the
row's time on it): Online Retail: purchases of real products (``items.parquet``
``is_product``; returns and service codes such as POST dropped). MovieLens latest-small:
ratings of 3.5 or more (Liang et al. 2018 binarise at 3.5). Taobao UserBehavior head: every
event (view, cart, fav, purchase) at the item level.

Protocols (:func:`gibbslda.evaluate.protocol_split`, ``--protocols``, seed 0):
``heldout:0.2`` 20% of the users held out, half of each one's items hidden, scored from
the other half; ``last:5`` each user's 5 newest items held out, training keeps each
evaluated user's events before them; ``time:0.2`` a global cutoff with 20% of the (user,
item) pairs first seen at or after it: training keeps the events before it, the truth is each
user's new items after it. Known items are never recommended; held-out items no training
user has are misses ("unscorable"); users with no training history are not evaluated.

Models, fitted on the training part only: LDA (``--topics``, learned priors,
``--iterations`` sweeps, seed 0) and its variants (:func:`gibbslda.rankers.variants`;
their settings and the default, "chosen", are tuned on a validation split carved from the
training part, timed as "tune s"); popularity, item-kNN (100 neighbours) and EASE (l2 500,
5000 items). Fit seconds are wall time after a compile warm-up. The test part is used
only to report. ``--profile-tuning`` prints the choice's cProfile (by own time) to stderr.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from gibbslda import LDA
from gibbslda.baselines import EASE, ItemKNN, Popularity
from gibbslda.corpus import Corpus
from gibbslda.evaluate import compare, lda_scorer, parse_protocol, protocol_split

LOGS = ("online_retail", "ml_latest_small", "taobao_userbehavior_head")


def load(folder: Path) -> Corpus:
    """The log's corpus, one token per kept row, with its times (see the docstring)."""
    events = pl.read_parquet(folder / "interactions.parquet")
    items = pl.read_parquet(folder / "items.parquet")
    if "is_product" in items.columns:
        events = (events.filter(pl.col("event") == "purchase")
                  .join(items.filter("is_product").select("item_id"), on="item_id"))
    if "rating" in events.columns:
        events = events.filter(pl.col("rating") >= 3.5)
    return Corpus.from_frame(events, user="user_id", item="item_id", time="timestamp")


def systems(split, args):
    """name -> (scorer, fit seconds, tune seconds) for the LDA variants and baselines."""
    out = {}
    started = time.perf_counter()
    model = LDA(args.topics, alpha="auto", beta="auto", n_iter=args.iterations,
                random_state=0).fit(split.train)
    fit = time.perf_counter() - started
    if args.lda_only:  # theta . phi of the last state alone, no tuning
        out["lda"] = (lda_scorer(model, split), fit, 0.0)
    else:
        from gibbslda import rankers

        profile = cProfile.Profile() if args.profile_tuning else None
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        chosen = rankers.choose(model).chosen
        tune = time.perf_counter() - started
        if profile is not None:
            profile.disable()
            pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(15)
        for name, scorer in rankers.variants(model, split.known).items():
            out[f"chosen = {chosen}" if name == "chosen" else name] = (scorer, fit, tune)
    for name, baseline in (("popularity", Popularity()), ("item-kNN", ItemKNN(100)),
                           ("EASE", EASE(500.0, 5000))):
        started = time.perf_counter()
        baseline.fit(split.train, split.train.n_items)
        out[name] = (baseline, time.perf_counter() - started, 0.0)
    return out


def _pairs(corpus: Corpus) -> int:
    users = np.repeat(np.arange(corpus.n_users, dtype=np.int64), corpus.lengths)
    return int(np.unique(users * corpus.n_items + corpus.words).size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--logs", default=",".join(LOGS))
    parser.add_argument("--protocols", default="heldout:0.2,last:5,time:0.2")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write every row as parquet")
    parser.add_argument("--lda-only", action="store_true",
                        help="theta . phi alone instead of every variant")
    parser.add_argument("--profile-tuning", action="store_true",
                        help="print where the choice's time goes (cProfile, to stderr)")
    args = parser.parse_args()

    warm = (np.array([0, 2, 3]), np.array([0, 1, 1]))
    ItemKNN(2).fit(warm, 2).scores(np.arange(2))
    EASE(max_items=2).fit(warm, 2)
    k = args.k
    print(f"| log / protocol | model | Recall@{k} | NDCG@{k} | Precision@{k} | HR@{k} | "
          f"MAP@{k} | coverage@{k} | novelty | fit s | tune s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    frames = []
    for log in args.logs.split(","):
        corpus = load(args.data / log)
        for text in args.protocols.split(","):
            split = protocol_split(corpus, parse_protocol(text), seed=args.seed)
            fitted = systems(split, args)
            table = pl.DataFrame(compare(split, {n: s for n, (s, *_) in fitted.items()}, k=k))
            table = table.with_columns(
                log=pl.lit(log), protocol=pl.lit(split.protocol),
                fit_seconds=pl.Series([fitted[n][1] for n in table["model"]]),
                tune_seconds=pl.Series([fitted[n][2] for n in table["model"]]))
            frames.append(table)
            print(f"| **{log}**, {split.protocol}: {corpus.n_users:,} users, "
                  f"{corpus.n_items:,} items, {corpus.n_tokens:,} tokens; train "
                  f"{split.train.n_tokens:,} tokens; {split.truth.n_users:,} users "
                  f"evaluated, {split.n_cold_users:,} without history left out, "
                  f"{split.n_unscorable:,} of {_pairs(split.truth):,} held-out pairs "
                  "unscorable | | | | | | | | | | |", flush=True)
            for r in table.iter_rows(named=True):
                print(f"| | {r['model']} | {r['recall']:.4f} | {r['ndcg']:.4f} | "
                      f"{r['precision']:.4f} | {r['hit_rate']:.4f} | {r['map']:.4f} | "
                      f"{r['coverage']:.3f} | {r['novelty']:.2f} | {r['fit_seconds']:.2f} | "
                      f"{r['tune_seconds']:.2f} |", flush=True)
    if args.out is not None:
        pl.concat(frames).write_parquet(args.out)


if __name__ == "__main__":
    main()
