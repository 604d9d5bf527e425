"""Held-out quality of the "sparse" sampler against tomotopy on the same tokens.

Run with ``make bench`` or ``pytest bench/bench_quality.py --benchmark-only``. The "small"
corpus is split once (``split_users(test_fraction=0.1, hidden_fraction=0.5, seed=0)``);
both systems train ``N_ITER`` sweeps on the training users with alpha 0.1, beta 0.01 and
one thread, and both are scored by the same document completion
(``bench.convergence.heldout_loglik``: our fold-in on the observed half, mean log p of the
hidden half). The timed round is our ``fit``; tomotopy is timed by the same helper the
convergence script uses. The figures and their ratios go to ``extra_info``: quality and
speed goals are reported, not asserted, so the test only checks the values are finite.
"""
from __future__ import annotations

import math

import pytest

from bench.conftest import corpus
from bench.convergence import ALPHA, BETA, Schedule, heldout_loglik, train_tomotopy
from gibbslda import LDA
from gibbslda.evaluate import split_users

pytest.importorskip("tomotopy")

N_TOPICS, N_ITER, SEED = 50, 200, 0


@pytest.fixture(scope="module")
def split():
    return split_users(corpus("small"), test_fraction=0.1, hidden_fraction=0.5, seed=0)


def _fit_sparse(train):
    model = LDA(N_TOPICS, alpha=ALPHA, beta=BETA, n_iter=N_ITER, random_state=SEED,
                sampler="sparse", n_shards=1, n_jobs=1, eval_every=N_ITER)
    return model.fit(train)


def test_sparse_vs_tomotopy_heldout(benchmark, split):
    def score(phi):
        return heldout_loglik(phi, split.observed, split.hidden)

    model = benchmark.pedantic(_fit_sparse, args=(split.train,), rounds=1, iterations=1)
    ours = score(model.topic_word_)
    ours_speed = split.train.n_tokens * N_ITER / model.seconds_
    peer = train_tomotopy(split.train, N_TOPICS, Schedule(N_ITER, N_ITER, None), score, SEED)
    peer_value, peer_speed = peer.rows[-1][2], peer.tokens_per_second
    benchmark.extra_info.update({
        "sampler": "sparse", "peer": "tomotopy", "n_topics": N_TOPICS, "n_iter": N_ITER,
        "threads": 1, "shards": 1, "n_tokens": split.train.n_tokens,
        "tokens_per_s": ours_speed, "peer_tokens_per_s": peer_speed,
        "speed_ratio": ours_speed / peer_speed,
        "heldout_loglik": ours, "peer_heldout_loglik": peer_value,
        # both are negative: a ratio above 1 means ours is worse
        "heldout_ratio": ours / peer_value,
        "heldout_gap_pct": 100 * (ours - peer_value) / abs(peer_value),
        "perplexity_ratio": math.exp(peer_value - ours),
    })
    assert math.isfinite(ours) and math.isfinite(peer_value)
    assert ours < 0 and peer_value < 0
