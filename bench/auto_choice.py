"""What ``sampler="auto"`` should pick. A script (results: bench/README.md, "What auto
picks" and "Issue 13: the exact chain's samplers on a quiet machine"):

    PYTHONPATH=. .venv/bin/python bench/auto_choice.py           # warp's rule
    PYTHONPATH=. .venv/bin/python bench/auto_choice.py --exact   # the exact chain's rule

Default: tokens/s of dense, sparse and warp (1 and 2 threads) per K on planted corpora of
four shapes; 2 warm sweeps, then the median of 3 timings of 5 sweeps. ``--exact``: where
auto runs the exact chain (under 50,000 tokens, or ``n_shards > 1``), dense, sparse and
vector per K on two small corpora and one sharded one (on as many threads as shards); 2
warm sweeps, then the median of 5 timings of 10 sweeps, the fastest marked. Every sampler
from the same random start; millions of tokens per second (wall: run it on a quiet
machine). Read a row across (the samplers side by side), since load moves whole rows.
"""
import json
import sys

import numba
import numpy as np

if __name__ != "__main__":
    raise ImportError("bench/auto_choice.py is a script: run it with python")
import time  # noqa: E402

from gibbslda import sampler  # noqa: E402
from gibbslda.synthetic import planted_corpus  # noqa: E402

SHAPES = [(1000, 20), (8000, 25), (40000, 25), (100000, 5)]  # users, mean length
EXACT_CASES = [(1000, 20, 1), (2000, 20, 1), (8000, 25, 2)]  # users, mean length, shards


def planted(n_users: int, length: int):
    return planted_corpus(n_users, max(500, n_users // 4), 50, mean_length=length,
                          sigma=1.0, zipf=1.1, overlap=0.2, seed=7).corpus


def rate(corpus, n_topics: int, name: str, *, shards: int, timings: int,
         sweeps: int) -> float:
    """Millions of tokens per second: 2 warm sweeps, then the median of ``timings``
    timings of ``sweeps`` sweeps, from the same random start for every sampler."""
    state = sampler.init_state(corpus.indptr, corpus.words, n_topics, corpus.n_items,
                               alpha=0.1, beta=0.01, seed=1, sampler=name, n_shards=shards)
    sampler.sweep(state, 2)
    times = []
    for _ in range(timings):
        started = time.perf_counter()
        sampler.sweep(state, sweeps)
        times.append(time.perf_counter() - started)
    return round(corpus.n_tokens * sweeps / np.median(times) / 1e6, 2)


sampler.warm_up()
if "--exact" in sys.argv[1:]:
    for n_users, length, shards in EXACT_CASES:
        corpus = planted(n_users, length)
        numba.set_num_threads(min(shards, numba.config.NUMBA_NUM_THREADS))
        for n_topics in (16, 20, 24, 32, 40, 48):
            row = {"tokens": int(corpus.n_tokens), "shards": shards, "K": n_topics}
            for name in ("dense", "sparse", "vector"):
                row[name] = rate(corpus, n_topics, name, shards=shards, timings=5, sweeps=10)
            row["fastest"] = max(("dense", "sparse", "vector"), key=row.get)
            print(json.dumps(row), flush=True)
    sys.exit(0)
for n_users, length in SHAPES:
    corpus = planted(n_users, length)
    for n_topics in (10, 20, 50, 200):
        row = {"tokens": int(corpus.n_tokens), "users": corpus.n_users, "K": n_topics}
        for name, threads in (("dense", 1), ("sparse", 1), ("warp", 1), ("warp", 2)):
            if name == "dense" and n_topics > 50:
                continue
            numba.set_num_threads(threads)
            row[f"{name}{threads}"] = rate(corpus, n_topics, name, shards=1, timings=3,
                                           sweeps=5)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        print(json.dumps(row), flush=True)
