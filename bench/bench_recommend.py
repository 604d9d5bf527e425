"""Top-N speed: the top 20 items of every user at K = 100 topics and V = 50k items.

Goal of the recommendation issue: 5,000 users/s or more on 2 cores. theta and phi are
seeded random Dirichlet draws (alpha 0.1 per topic, 0.05 per item), and each user's
history to exclude is a seeded random draw of Poisson(20) items. The work is one float32
BLAS product per chunk of users plus numpy screening, so the threads are BLAS's: run with
``OPENBLAS_NUM_THREADS=2`` (or nothing, on a 2-core machine) for the goal's setting.

    OPENBLAS_NUM_THREADS=2 PYTHONPATH=. .venv/bin/python -m pytest bench/bench_recommend.py \\
        --benchmark-only -p no:cacheprovider
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from gibbslda.topn import SCORES_PER_CHUNK, top_n

# name: (users, items, topics, mean history length)
SIZES = {"goal": (50_000, 50_000, 100, 20)}
TOP = 20


@pytest.fixture(scope="module")
def problem():
    users, items, topics, history = SIZES["goal"]
    rng = np.random.default_rng(20261128)
    theta = rng.dirichlet(np.full(topics, 0.1), size=users)
    phi = rng.dirichlet(np.full(items, 0.05), size=topics)
    lengths = rng.poisson(history, size=users)
    indptr = np.zeros(users + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    seen = rng.integers(0, items, size=indptr[-1])
    return theta, phi, (indptr, seen)


def test_top20_every_user(benchmark, problem):
    theta, phi, seen = problem
    users, items, topics, history = SIZES["goal"]
    head = seen[0][:501]
    top_n(theta[:500], phi, TOP, exclude=(head, seen[1][:head[-1]]))  # first-call costs
    benchmark.extra_info.update({
        "users": users, "items": items, "topics": topics, "n": TOP,
        "mean_history": history, "chunk_users": max(1, SCORES_PER_CHUNK // items),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS",
                                       f"default ({os.cpu_count()} cpus)"),
    })
    found, _ = benchmark.pedantic(top_n, args=(theta, phi, TOP), rounds=3, iterations=1,
                                  kwargs={"exclude": seen})
    assert (found >= 0).all()
    benchmark.extra_info["users_per_second"] = users / benchmark.stats.stats.median
