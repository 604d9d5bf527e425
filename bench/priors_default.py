"""Fixed priors (alpha 0.1, beta 0.01) against learned alpha, learned beta and both, with
the default sampler, on the three shared logs: should learned priors be the default?

Run from the repository root (minutes on a quiet 2-core machine; beside three other jobs
it took over 50 minutes, and its seconds are then only load)::

    NUMBA_NUM_THREADS=2 PYTHONPATH=. .venv/bin/python bench/priors_default.py
    PYTHONPATH=. .venv/bin/python bench/priors_default.py --logs online_retail --ks 20

Logs as bench/ranking.py loads them. Split: ``heldout:0.2`` (:func:`gibbslda.evaluate.
protocol_split`; 20% of the users held out, half of each one's items hidden), seeded by
the seed, which also seeds the chain, so each seed compares the four priors on the same
split and the same chain seed. Each model: ``LDA(K, alpha=..., beta=..., n_iter=300,
random_state=seed)`` with every other setting at its default ("auto" priors learned every
10 sweeps after 50). Scores on the held-out users only: document completion per hidden
token (:func:`gibbslda.evaluate.completion_log_likelihood`, every held-out user; held-out
items no training user has score their smoothed probability), Recall@20 of theta . phi
(:func:`gibbslda.evaluate.lda_scorer`: theta folded in from the known half, known items
excluded), NPMI of each topic's top 10 items counted in the training users. Seconds:
``seconds_`` (the sweeps alone) and the whole ``fit`` (sweeps, log p(w, z) every 10
sweeps, and the prior updates); "learn s" is one round of learning alpha and beta on the
final chain times the rounds a 300-sweep fit runs (26), "learn %" that against the sweeps.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.ranking import LOGS, load
from gibbslda import LDA, priors
from gibbslda.coherence import coherence
from gibbslda.evaluate import (compare, completion_log_likelihood, lda_scorer,
                               parse_protocol, protocol_split)

PRIORS = {"fixed": (0.1, 0.01), "alpha auto": ("auto", 0.01),
          "beta auto": (0.1, "auto"), "both auto": ("auto", "auto")}


def run_one(split, n_topics: int, alpha, beta, seed: int, iterations: int) -> dict:
    started = time.perf_counter()
    model = LDA(n_topics, alpha=alpha, beta=beta, n_iter=iterations,
                random_state=seed).fit(split.train)
    fit = time.perf_counter() - started
    heldout = completion_log_likelihood(model, split.known, split.truth)
    table = compare(split, {"lda": lda_scorer(model, split)}, k=20)
    npmi = float(np.mean(coherence(model.topic_word_, split.train, n=10, measure="npmi")))
    state = model.state_
    alpha_, beta_ = state.alpha.copy(), float(state.beta)
    rounds = max((iterations - model.optimize_burn_in) // model.optimize_every + 1, 0)
    times = []
    for _ in range(3):  # what one round of this model's learning costs, median of 3
        started = time.perf_counter()
        if alpha == "auto":
            priors.learn_alpha(state)
        if beta == "auto":
            priors.learn_beta(state)
        times.append(time.perf_counter() - started)
    learn = float(np.median(times)) * rounds
    return {"heldout": heldout, "recall": table["recall"][0], "npmi": npmi,
            "sweep_s": model.seconds_, "fit_s": fit, "learn_s": learn,
            "sampler": state.sampler, "alpha_sum": float(alpha_.sum()),
            "alpha_min": float(alpha_.min()), "alpha_max": float(alpha_.max()),
            "beta": beta_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--logs", default=",".join(LOGS))
    parser.add_argument("--ks", default="20,50")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", type=Path, help="also write every row as parquet")
    parser.add_argument("--table", type=Path, nargs="+",
                        help="print the table of rows written by earlier runs (--out)")
    parser.add_argument("--timing", action="store_true",
                        help="only the interleaved sweep timing (see interleaved)")
    args = parser.parse_args()
    if args.table:
        summarise(pl.concat([pl.read_parquet(path) for path in args.table]))
        return
    if args.timing:
        for log in args.logs.split(","):
            corpus = load(args.data / log)
            for k in (int(k) for k in args.ks.split(",")):
                interleaved(log, corpus, k, args.iterations)
        return
    LDA(2, alpha="auto", beta="auto", n_iter=2, optimize_burn_in=0, optimize_every=1,
        random_state=0).fit([[0, 1], [1, 2]])  # compile before timing
    rows = []
    for log in args.logs.split(","):
        corpus = load(args.data / log)
        for seed in (int(s) for s in args.seeds.split(",")):
            split = protocol_split(corpus, parse_protocol("heldout:0.2"), seed=seed)
            for k in (int(k) for k in args.ks.split(",")):
                for name, (alpha, beta) in PRIORS.items():
                    row = {"log": log, "k": k, "seed": seed, "priors": name,
                           **run_one(split, k, alpha, beta, seed, args.iterations)}
                    rows.append(row)
                    print(row, flush=True)
    frame = pl.DataFrame(rows)
    if args.out is not None:
        frame.write_parquet(args.out)
    summarise(frame)


def interleaved(log: str, corpus, n_topics: int, iterations: int, block: int = 10) -> None:
    """Seconds of the sweeps and of the whole run (sweeps, evaluations, prior updates) of
    the four priors' chains on the whole log, advanced ``block`` sweeps each in turn, so
    a busy machine slows them alike: their ratios are what to read."""
    models = {name: LDA(n_topics, alpha=alpha, beta=beta, n_iter=0, random_state=0
                        ).fit(corpus) for name, (alpha, beta) in PRIORS.items()}
    wall = dict.fromkeys(models, 0.0)
    for _ in range(iterations // block):
        for name, model in models.items():
            started = time.perf_counter()
            model.resume(block)
            wall[name] += time.perf_counter() - started
    for name, model in models.items():
        print(f"| {log} | {n_topics} | {name} | {model.state_.sampler} | "
              f"{model.seconds_:.1f} | {model.seconds_ / models['fixed'].seconds_:.2f} | "
              f"{wall[name]:.1f} | {wall[name] / wall['fixed']:.2f} |", flush=True)


def summarise(frame: pl.DataFrame) -> None:
    """One line per log, K and priors: medians over the seeds, each seed paired with the
    fixed priors on its own split (the difference's median, min and max)."""
    base = frame.filter(pl.col("priors") == "fixed").select(
        "log", "k", "seed", pl.col("heldout").alias("h0"), pl.col("recall").alias("r0"),
        pl.col("sweep_s").alias("s0"), pl.col("fit_s").alias("f0"))
    paired = frame.join(base, on=["log", "k", "seed"]).with_columns(
        d_heldout=pl.col("heldout") - pl.col("h0"), d_recall=pl.col("recall") - pl.col("r0"),
        fit_ratio=pl.col("fit_s") / pl.col("f0"),
        learn_pct=100 * pl.col("learn_s") / pl.col("sweep_s"))
    summary = paired.group_by("log", "k", "priors", maintain_order=True).agg(
        pl.col("sampler").first(), pl.len().alias("seeds"),
        pl.col("heldout").median(),
        pl.col("d_heldout").median(), pl.col("d_heldout").min().alias("d_heldout_min"),
        pl.col("d_heldout").max().alias("d_heldout_max"), pl.col("recall").median(),
        pl.col("d_recall").median(), pl.col("d_recall").min().alias("d_recall_min"),
        pl.col("d_recall").max().alias("d_recall_max"), pl.col("npmi").median(),
        pl.col("sweep_s").median(), pl.col("fit_ratio").median(),
        pl.col("learn_pct").median(), pl.col("alpha_sum").median(),
        pl.col("beta").median())
    print("| log | K | priors | sampler | seeds | held-out/token | vs fixed (min..max) | "
          "Recall@20 | vs fixed (min..max) | NPMI | sweeps s | fit / fixed | learn % | "
          "sum alpha | beta |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in summary.iter_rows(named=True):
        print(f"| {r['log']} | {r['k']} | {r['priors']} | {r['sampler']} | {r['seeds']} | "
              f"{r['heldout']:.4f} | {r['d_heldout']:+.4f} ({r['d_heldout_min']:+.4f}.."
              f"{r['d_heldout_max']:+.4f}) | {r['recall']:.4f} | {r['d_recall']:+.4f} "
              f"({r['d_recall_min']:+.4f}..{r['d_recall_max']:+.4f}) | {r['npmi']:.4f} | "
              f"{r['sweep_s']:.1f} | {r['fit_ratio']:.2f} | {r['learn_pct']:.1f} | "
              f"{r['alpha_sum']:.2f} | {r['beta']:.4f} |")


if __name__ == "__main__":
    main()
