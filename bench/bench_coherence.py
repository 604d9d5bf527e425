"""Coherence and diversity of K = 1000 topics, top 10 items, on 50k users x 100k items.

    PYTHONPATH=. .venv/bin/python -m pytest bench/bench_coherence.py --benchmark-only

The reference is a seeded planted corpus (about 2.5M tokens, Zipf item popularity). The
topics are random, not fitted: "dirichlet" draws each row from a flat Dirichlet(0.1), so
the top items are mostly rare ones; "popular" weights those draws by each item's token
count, so the top items are the corpus's popular ones and each topic's co-occurrence
counting touches thousands of users (the harder, and more realistic, case). Topics are
float32 (400 MB) to keep the run small. ``extra_info`` holds the median seconds and the
peak memory that tracemalloc sees during one extra, untimed call (numpy reports its
allocations to tracemalloc; the inputs themselves are not counted).
"""
from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import pytest

from gibbslda.coherence import coherence, diversity
from gibbslda.synthetic import planted_corpus

N_USERS, N_ITEMS, N_TOPICS, N_TOP = 50_000, 100_000, 1000, 10
SEED = 20261128


@functools.lru_cache(maxsize=None)
def reference():
    return planted_corpus(N_USERS, N_ITEMS, 100, mean_length=50, sigma=1.0, zipf=1.1,
                          overlap=0.2, seed=SEED).corpus


@pytest.fixture(scope="module", params=["dirichlet", "popular"])
def topics(request):
    rng = np.random.default_rng(SEED)
    phi = rng.standard_gamma(0.1, size=(N_TOPICS, N_ITEMS), dtype=np.float32)
    if request.param == "popular":
        phi *= np.bincount(reference().words, minlength=N_ITEMS).astype(np.float32)
    phi /= phi.sum(axis=1, keepdims=True)
    return request.param, phi


def _peak_bytes(function, *args, **kwargs) -> int:
    tracemalloc.start()
    try:
        function(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _record(benchmark, kind, name, peak):
    corpus = reference()
    benchmark.extra_info.update({
        "topics": kind, "measure": name, "n_topics": N_TOPICS, "n_users": corpus.n_users,
        "n_items": corpus.n_items, "n_tokens": corpus.n_tokens, "threads": 1,
        "seconds": benchmark.stats.stats.median, "peak_bytes": peak})


@pytest.mark.parametrize("measure", ["npmi", "umass"])
def test_coherence(benchmark, topics, measure):
    kind, phi = topics
    corpus = reference()
    scores = benchmark.pedantic(coherence, args=(phi, corpus),
                                kwargs={"n": N_TOP, "measure": measure},
                                rounds=3, iterations=1)
    peak = _peak_bytes(coherence, phi, corpus, n=N_TOP, measure=measure)
    _record(benchmark, kind, f"{measure}@{N_TOP}", peak)
    benchmark.extra_info["mean_score"] = float(np.nanmean(scores))
    assert scores.shape == (N_TOPICS,)


def test_diversity(benchmark, topics):
    kind, phi = topics
    value = benchmark.pedantic(diversity, args=(phi,), kwargs={"n": 25}, rounds=3,
                               iterations=1)
    _record(benchmark, kind, "diversity@25", _peak_bytes(diversity, phi, n=25))
    benchmark.extra_info["diversity"] = value
    assert 0 < value <= 1
