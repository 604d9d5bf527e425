"""Recall@20 / NDCG@20 of every recommendation variant (:mod:`gibbslda.rankers`) beside
popularity, item-kNN and EASE, on the held-out-users protocol of bench/ranking.py.

Run from the repository root (one log a run, as measured in bench/README.md)::

    NUMBA_NUM_THREADS=2 PYTHONPATH=. .venv/bin/python bench/recommend_quality.py \
        --data ../shared/data/online_retail

Data as bench/ranking.py loads it (Online Retail purchases of products, MovieLens ratings
>= 3.5, Taobao every event), with event times. :func:`gibbslda.evaluate.split_users`
(seed 0) holds out 20% of the users and hides a random half of each one's tokens; the
hidden half is never seen by the fit or by the choice (:func:`gibbslda.rankers.choose`
validates on the training users only). Each LDA variant scores a held-out user from the
observed half (with its times); seconds are wall time after a compile warm-up: the fit,
the choice (tuning) and the baselines' fits.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from gibbslda import LDA, rankers
from gibbslda.baselines import EASE, ItemKNN, Popularity
from gibbslda.corpus import Corpus
from gibbslda.evaluate import split_users
from gibbslda.ranking import evaluate_rankings, item_popularity

from bench.ranking import load  # the shared logs as bench/ranking.py reads them


def observed_with_times(corpus: Corpus, observed: Corpus) -> Corpus:
    """split_users drops times: give each observed token its pair's latest time."""
    user_of = {u: d for d, u in enumerate(corpus.user_ids)}
    times = np.empty(observed.n_tokens, dtype=np.int64)
    for row, user in enumerate(observed.user_ids):
        d = user_of[user]
        words = corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]]
        stamps = corpus.times[corpus.indptr[d]:corpus.indptr[d + 1]]
        latest = {}
        for w, t in zip(words.tolist(), stamps.tolist()):
            latest[w] = max(latest.get(w, t), t)
        part = slice(observed.indptr[row], observed.indptr[row + 1])
        times[part] = [latest[w] for w in observed.words[part].tolist()]
    return Corpus(observed.indptr, observed.words, observed.user_ids, observed.item_ids,
                  times=times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/online_retail"))
    parser.add_argument("--topics", default="50,200")
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    corpus = load(args.data)
    split = split_users(corpus, test_fraction=0.2, seed=0)
    observed = observed_with_times(corpus, split.observed)
    popularity = item_popularity(split.train, corpus.n_items)
    print(f"{args.data.name}: {corpus!r}; train {split.train.n_users} users, held out "
          f"{observed.n_users}", flush=True)
    LDA(2, n_iter=2, random_state=0).fit([[0, 1], [1, 2]])  # compile
    warm = LDA(3, n_iter=20, random_state=0).fit([[0, 1, 2, 3], [1, 2, 3, 4]] * 5)
    rankers.choose(warm)

    def row(name, scorer, seconds="", validation=""):
        table = evaluate_rankings(scorer, observed, split.hidden, k=20,
                                  item_popularity=popularity)
        print(f"| {name} | {table['recall'][0]:.4f} | {table['ndcg'][0]:.4f} | "
              f"{table['coverage'][0]:.3f} | {table['novelty'][0]:.2f} | {validation} | "
              f"{seconds} |", flush=True)
        return table["recall"][0]

    print("| model | recall@20 | ndcg@20 | coverage@20 | novelty@20 | validation recall@20 "
          "| seconds |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, model in (("popularity", Popularity()), ("item-kNN (k=100)", ItemKNN(100)),
                        ("EASE (l2=500)", EASE(500.0, 5000))):
        start = time.perf_counter()
        model.fit(split.train, corpus.n_items)
        row(name, model, f"fit {time.perf_counter() - start:.1f}")
    for k in args.topics.split(","):
        model = LDA(int(k), alpha="auto", beta="auto", n_iter=args.iterations,
                    random_state=0)
        start = time.perf_counter()
        model.fit(split.train)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        choice = rankers.choose(model)
        tune = time.perf_counter() - start
        print(f"| K={k}: fit {fit:.1f} s, choice {tune:.1f} s ({tune / fit:.2f}x) on "
              f"{choice.n_users} validation users, chosen {choice.chosen}, half-life "
              f"{choice.half_life_days}, pop {choice.popularity} (per-user strength "
              f"{choice.propensity_strength}), b_knn {choice.knn_blend}, "
              f"b_ease {choice.ease_blend}; validation recall@20 of EASE alone "
              f"{choice.recall.get('lda+ease b=1.0', float('nan')):.4f} | | | | | | |",
              flush=True)
        for name, scorer in rankers.variants(model, observed).items():
            row(f"K={k} {name}", scorer,
                validation=f"{choice.recall.get(name, choice.recall[choice.chosen]):.4f}")


if __name__ == "__main__":
    main()
