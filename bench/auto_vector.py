"""Where ``sampler="auto"`` runs the exact chain (under 50,000 tokens, or ``n_shards > 1``):
tokens/s of dense, sparse and vector per K, to place vector in the rule. A script (results:
bench/README.md, "Issue 13: vector in auto"):

    PYTHONPATH=. .venv/bin/python bench/auto_vector.py

Each row: one planted corpus, K and shard count; every sampler from the same random start,
2 warm sweeps, then the median of 5 timings of 10 sweeps (wall seconds; run it on a quiet
machine), in millions of tokens per second, the fastest marked. Sharded rows run on 2
threads (shards are what make the exact chain parallel).
"""
import json

import numba
import numpy as np

if __name__ != "__main__":
    raise ImportError("bench/auto_vector.py is a script: run it with python")
import time  # noqa: E402

from gibbslda import sampler  # noqa: E402
from gibbslda.synthetic import planted_corpus  # noqa: E402

CASES = [(1000, 20, 1), (2000, 20, 1), (8000, 25, 2)]  # users, mean length, shards
sampler.warm_up()
for n_users, length, shards in CASES:
    corpus = planted_corpus(n_users, max(500, n_users // 4), 50, mean_length=length,
                            sigma=1.0, zipf=1.1, overlap=0.2, seed=7).corpus
    numba.set_num_threads(min(shards, numba.config.NUMBA_NUM_THREADS))
    for n_topics in (16, 20, 24, 32, 40, 48):
        row = {"tokens": int(corpus.n_tokens), "shards": shards, "K": n_topics}
        for name in ("dense", "sparse", "vector"):
            state = sampler.init_state(corpus.indptr, corpus.words, n_topics,
                                       corpus.n_items, alpha=0.1, beta=0.01, seed=1,
                                       sampler=name, n_shards=shards)
            sampler.sweep(state, 2)
            times = []
            for _ in range(5):
                started = time.perf_counter()
                sampler.sweep(state, 10)
                times.append(time.perf_counter() - started)
            row[name] = round(corpus.n_tokens * 10 / np.median(times) / 1e6, 2)
        row["fastest"] = max(("dense", "sparse", "vector"), key=row.get)
        print(json.dumps(row), flush=True)
