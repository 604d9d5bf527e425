"""Serial dense sampler: tokens per second of one Gibbs sweep at K = 50 and K = 200.

Run with ``make bench`` or ``pytest bench/bench_serial.py --benchmark-only``. Each round is
one sweep on the same chain (the chain moves on between rounds, as in training).
"""
from __future__ import annotations

import numpy as np
import pytest

from bench.conftest import corpus
from gibbslda import sampler


@pytest.mark.parametrize("n_topics", [50, 200])
def test_dense_sweep(benchmark, n_topics):
    data = corpus("small")
    state = sampler.init_state(data.indptr, data.words, n_topics, data.n_items, alpha=0.1,
                               beta=0.01, seed=0)
    for _ in range(3):  # leave the uniform initialisation before timing
        sampler.sweep(state)
    benchmark.pedantic(sampler.sweep, args=(state,), rounds=7, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({
        "sampler": "dense", "n_topics": n_topics, "threads": 1, "shards": 1,
        "n_tokens": data.n_tokens, "tokens_per_s": data.n_tokens / median,
    })
    assert np.all(state.n_k >= 0)
