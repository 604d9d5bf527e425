"""Cost of learning the priors against one sweep, on the medium corpus.

    PYTHONPATH=. .venv/bin/python -m pytest bench/bench_priors.py --benchmark-only

A chain of the sparse sampler burned in for 20 sweeps; one round learns alpha (count
histograms of every user, Minka's fixed point) and beta (histogram of the item x topic
counts). ``extra_info`` holds the seconds of one sweep of the same chain and the ratio.
"""
from __future__ import annotations

import time

import numba
import pytest

from bench.conftest import corpus
from gibbslda import priors, sampler


@pytest.mark.parametrize("n_topics", [50, 1000])
def test_learn_priors(benchmark, n_topics):
    data = corpus("medium")
    numba.set_num_threads(1)
    state = sampler.init_state(data.indptr, data.words, n_topics, data.n_items, alpha=0.1,
                               beta=0.01, seed=0, sampler="sparse")
    for _ in range(20):
        sampler.sweep(state)
    started = time.perf_counter()
    sampler.sweep(state)
    sweep = time.perf_counter() - started

    def learn():
        state.alpha[:] = 0.1  # the same start every round
        state.beta = 0.01
        priors.learn_alpha(state)
        priors.learn_beta(state)

    benchmark.pedantic(learn, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update({"n_topics": n_topics, "sweep_seconds": sweep,
                                 "share_of_sweep": benchmark.stats.stats.median / sweep})
