"""Held-out perplexity, NPMI and diversity for several K, fixed against learned priors.

Run from the repository root::

    NUMBA_NUM_THREADS=1 .venv/bin/python bench/select_k_priors.py \\
        --data ../shared/data/online_retail --ks 10,25,50,100 --iterations 300

Protocol: purchases of real products (``items.parquet`` ``is_product``), one token per
purchase row; :func:`gibbslda.select.select_k` splits the users once (``--seed``,
10% held out, half of each held-out user hidden) and fits every K on the same training
users with the same seed, once with alpha 0.1 and beta 0.01 and once with
``alpha="auto", beta="auto"`` (learned every 10 sweeps after 50). Scores: document
completion per hidden token (perplexity = exp(-value)), NPMI and UMass of each topic's top
10 items counted in the training users, diversity of the top 10.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from gibbslda import Corpus
from gibbslda.select import select_k


def purchases(folder: Path) -> Corpus:
    events = pl.read_parquet(folder / "interactions.parquet")
    items = pl.read_parquet(folder / "items.parquet")
    if "is_product" in items.columns:
        products = items.filter(pl.col("is_product")).select("item_id")
        events = events.join(products, on="item_id", how="semi")
    return Corpus.from_frame(events.filter(pl.col("event") == "purchase"), user="user_id",
                             item="item_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/online_retail"))
    parser.add_argument("--ks", default="10,25,50,100")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = purchases(args.data)
    print(f"{corpus.n_users} users, {corpus.n_items} items, {corpus.n_tokens} tokens")
    ks = [int(k) for k in args.ks.split(",")]
    tables = []
    for name, alpha, beta in (("fixed", 0.1, 0.01), ("learned", "auto", "auto")):
        table = select_k(corpus, ks, alpha=alpha, beta=beta, n_iter=args.iterations,
                         seed=args.seed)
        tables.append(table.with_columns(priors=pl.lit(name)))
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=4, tbl_width_chars=200):
        print(pl.concat(tables).sort("k", "priors"))


if __name__ == "__main__":
    main()
