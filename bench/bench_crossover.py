"""Where dense item x topic counts stop paying: the crossover "auto" is set from.

    PYTHONPATH=. .venv/bin/python -m pytest bench/bench_crossover.py --benchmark-only

The dense sampler keeps a V x K int32 matrix and an O(K) loop per token; the sparse one
keeps MALLET-style packed rows (at most one int32 per token) and costs O(K_d + K_w). Each
round is a whole short training from the random start: ``init_state`` then ``N_SWEEPS``
sweeps on the "medium" corpus, one thread, one shard. The sparse sampler's first sweeps
are its slowest (every item's row starts full), so timing from the start is the fair
comparison with dense, whose cost does not depend on the state. ``extra_info`` holds
tokens per second over the training and the bytes of each count layout.
"""
from __future__ import annotations

import numba
import pytest

from bench.conftest import corpus
from gibbslda import sampler

N_SWEEPS = 50
TOPICS = [8, 16, 24, 32, 48, 64, 100]


def train(name: str, n_topics: int):
    data = corpus("medium")
    state = sampler.init_state(data.indptr, data.words, n_topics, data.n_items, alpha=0.1,
                               beta=0.01, seed=0, sampler=name)
    for _ in range(N_SWEEPS):
        sampler.sweep(state)
    return state


@pytest.mark.parametrize("n_topics", TOPICS)
@pytest.mark.parametrize("name", ["dense", "sparse"])
def test_training(benchmark, name, n_topics):
    numba.set_num_threads(1)
    try:
        state = benchmark.pedantic(train, args=(name, n_topics), rounds=1, iterations=1)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    data = corpus("medium")
    counts = (sum(a.nbytes for a in state.layout["wc"]) if name == "sparse"
              else state.n_wk.nbytes)
    benchmark.extra_info.update({
        "system": f"gibbslda-{name}", "n_topics": n_topics, "sweeps": N_SWEEPS,
        "tokens_per_s": N_SWEEPS * data.n_tokens / benchmark.stats.stats.median,
        "item_count_bytes": counts})
