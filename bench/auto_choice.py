"""What ``sampler="auto"`` should pick: tokens/s of dense, sparse and warp (1 and 2 threads)
per K on planted corpora of four shapes. A script (results: bench/README.md, "What auto
picks"):

    PYTHONPATH=. .venv/bin/python bench/auto_choice.py

Each row: one corpus and K; every sampler from the same random start, 2 warm sweeps, then
the median of 3 timings of 5 sweeps, reported in millions of tokens per second. Read a row
across (the samplers side by side), since the machine's load moves whole rows.
"""
import json

import numba
import numpy as np

if __name__ != "__main__":
    raise ImportError("bench/auto_choice.py is a script: run it with python")
import time  # noqa: E402

from gibbslda import sampler  # noqa: E402
from gibbslda.synthetic import planted_corpus  # noqa: E402

SHAPES = [(1000, 20), (8000, 25), (40000, 25), (100000, 5)]  # users, mean length
sampler.warm_up()
for n_users, length in SHAPES:
    corpus = planted_corpus(n_users, max(500, n_users // 4), 50, mean_length=length,
                            sigma=1.0, zipf=1.1, overlap=0.2, seed=7).corpus
    for n_topics in (10, 20, 50, 200):
        row = {"tokens": int(corpus.n_tokens), "users": corpus.n_users, "K": n_topics}
        for name, threads in (("dense", 1), ("sparse", 1), ("warp", 1), ("warp", 2)):
            if name == "dense" and n_topics > 50:
                continue
            numba.set_num_threads(threads)
            state = sampler.init_state(corpus.indptr, corpus.words, n_topics,
                                       corpus.n_items, alpha=0.1, beta=0.01, seed=1,
                                       sampler=name)
            sampler.sweep(state, 2)
            times = []
            for _ in range(3):
                started = time.perf_counter()
                sampler.sweep(state, 5)
                times.append(time.perf_counter() - started)
            row[f"{name}{threads}"] = round(corpus.n_tokens * 5 / np.median(times) / 1e6, 2)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        print(json.dumps(row), flush=True)
