"""Recall@k / NDCG@k of LDA beside the popularity, item-kNN and EASE baselines.

Run from the repository root::

    NUMBA_NUM_THREADS=1 .venv/bin/python bench/ranking.py --data ../shared/data/online_retail
    NUMBA_NUM_THREADS=1 .venv/bin/python bench/ranking.py --data ../shared/data/ml_latest_small

Protocol: Online Retail: purchases of real products (``items.parquet`` ``is_product``;
returns and service codes such as POST dropped), one token per purchase row. MovieLens:
ratings of 3.5 or more, one token each (Liang et al. 2018 binarise at 3.5). Both as a
:class:`~gibbslda.Corpus`.
:func:`gibbslda.evaluate.split_users` holds out a seeded ``--test-fraction`` of the users
and hides half of each one's tokens. Baselines fit on the training users; each held-out
user is scored from the distinct items of the observed half, which are excluded from the
ranking, and judged on the hidden half's distinct items not already observed (repeat
purchases of an observed item are not counted; users with none are left out). Seconds are
wall time of ``fit`` and of scoring plus metrics, after a compile warm-up. LDA
(``--topics``, learned priors, ``--iterations`` sweeps, seed 0) scores a held-out user
by theta (folded in from the observed half) times phi.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from gibbslda import LDA
from gibbslda.baselines import EASE, ItemKNN, Popularity
from gibbslda.corpus import Corpus
from gibbslda.evaluate import split_users
from gibbslda.ranking import evaluate_rankings, item_popularity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/online_retail"))
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--neighbors", type=int, default=100)
    parser.add_argument("--l2", type=float, default=500.0)
    parser.add_argument("--max-items", type=int, default=5000)
    parser.add_argument("--topics", default="25,50")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()

    events = pl.read_parquet(args.data / "interactions.parquet")
    items = pl.read_parquet(args.data / "items.parquet")
    if "is_product" in items.columns:
        products = items.filter("is_product")
        events = (events.filter(pl.col("event") == "purchase")
                  .join(products.select("item_id"), on="item_id"))
    if "rating" in events.columns:
        events = events.filter(pl.col("rating") >= 3.5)
    corpus = Corpus.from_frame(events, user="user_id", item="item_id")
    split = split_users(corpus, test_fraction=args.test_fraction, seed=args.seed)
    popularity = item_popularity(split.train, corpus.n_items)
    print(f"{corpus!r}; train {split.train.n_users} users, held out "
          f"{split.observed.n_users} (seed {args.seed})")

    warm = (np.array([0, 2, 3]), np.array([0, 1, 1]))
    ItemKNN(2).fit(warm, 2).scores(np.arange(2))
    EASE(max_items=2).fit(warm, 2)

    print(f"| model | recall@{args.k} | ndcg@{args.k} | coverage@{args.k} | users | "
          "fit s | eval s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    models = [("popularity", Popularity()),
              (f"item-kNN (k={args.neighbors})", ItemKNN(args.neighbors)),
              (f"EASE (l2={args.l2:g})", EASE(args.l2, args.max_items))]
    models += [(f"LDA K={k} (learned priors)", LDA(int(k), alpha="auto", beta="auto",
                                                   n_iter=args.iterations, random_state=0))
               for k in args.topics.split(",")]
    for name, model in models:
        start = time.perf_counter()
        if isinstance(model, LDA):
            model.fit(split.train)
            fitted = time.perf_counter()
            theta, phi = model.transform(split.observed), model.topic_word_
            scorer = lambda users: theta[users] @ phi  # noqa: E731
        else:
            model.fit(split.train, corpus.n_items)
            fitted = time.perf_counter()
            scorer = model
        table = evaluate_rankings(scorer, split.observed, split.hidden, k=args.k,
                                  item_popularity=popularity)
        done = time.perf_counter()
        print(f"| {name} | {table['recall'][0]:.4f} | {table['ndcg'][0]:.4f} | "
              f"{table['coverage'][0]:.3f} | {table['n_users'][0]} | "
              f"{fitted - start:.2f} | {done - fitted:.2f} |")


if __name__ == "__main__":
    main()
