"""Tokens per second of every sampler at K = 50, 200, 1000 with 1 and 2 threads, and the
peers (tomotopy, lda) on exactly the same tokens in the same run.

    make bench                         # or:
    pytest bench/bench_samplers.py --benchmark-only --benchmark-autosave

Protocol: the "medium" corpus (50k users, 20k items, 2.5M tokens, heavy-tailed lengths,
Zipf popularity); each chain first runs ``BURN_IN`` sweeps from its random start (the
first sweeps, with topics spread uniformly, say little about the rest of training; the
dense sampler's O(K) cost does not depend on the state, so it gets 5), then each round is
one sweep of the same chain. Configurations: 1 shard on 1 thread (the exact serial chain),
and 8 shards on 1 then 2 threads (the same chain, so the thread speed-up is clean); "warp"
(``test_warp``) takes no shards and runs 1 then 2 threads on one chain. Peers
get the same burn-in and priors (alpha 0.1 per topic, beta 0.01, no hyper-parameter
optimisation). The ratio to tomotopy at equal K and threads is in ``extra_info``.
"""
from __future__ import annotations

import time

import numba
import numpy as np
import pytest

from bench.conftest import corpus
from gibbslda import sampler

BURN_IN = 20
TOPICS = [50, 200, 1000]
THREADS = [1, 2]
CONFIGS = [(1, 1), (8, 1), (8, 2)]  # (shards, threads)
_PEER_RATE: dict = {}
_CHAINS: dict = {}


# Peers are defined (and so run) first, so each gibbslda result can carry its ratio.
@pytest.fixture(scope="module")
def peer_docs():
    data = corpus("medium")
    vocab = np.array([f"i{w}" for w in range(data.n_items)], dtype=object)
    return [vocab[data.words[a:b]].tolist() for a, b in zip(data.indptr[:-1], data.indptr[1:])]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n_topics", TOPICS)
def test_tomotopy(benchmark, peer_docs, n_topics, threads):
    tp = pytest.importorskip("tomotopy")
    model = tp.LDAModel(k=n_topics, alpha=0.1, eta=0.01, seed=0)
    model.optim_interval = 0  # tomotopy optimises alpha every 10 iterations by default
    for doc in peer_docs:
        model.add_doc(doc)
    scheme = tp.ParallelScheme.NONE if threads == 1 else tp.ParallelScheme.PARTITION
    model.train(BURN_IN, workers=threads, parallel=scheme)  # same burn-in as gibbslda
    benchmark.pedantic(model.train, args=(1,), kwargs={"workers": threads, "parallel": scheme},
                       rounds=2 if n_topics == 1000 else 3, iterations=1)
    rate = sum(map(len, peer_docs)) / benchmark.stats.stats.median
    _PEER_RATE["tomotopy", n_topics, threads] = rate
    benchmark.extra_info.update({"system": "tomotopy", "n_topics": n_topics,
                                 "threads": threads, "tokens_per_s": rate, "isa": tp.isa})


def state_bytes(state) -> dict:
    """Bytes the chain holds: per token, per user and the item x topic counts."""
    layout = state.layout
    per_token = state.words.nbytes + state.z.nbytes + (
        layout["wi"][1].nbytes + layout["wi"][2].nbytes) * (state.sampler == "mh") + (
        layout["warp"][1].nbytes if state.sampler == "warp" else 0)
    per_user = state.indptr.nbytes + layout["cell_ptr"].nbytes
    counts = state.n_wk.nbytes + state.n_k.nbytes + sum(a.nbytes for a in layout["wc"]) * (
        state.sampler == "sparse")
    return {"bytes_per_token": per_token / state.n_tokens,
            "bytes_per_user": per_user / (state.indptr.shape[0] - 1),
            "count_bytes": counts, "dense_count_bytes": 4 * state.n_items * state.n_topics}


def _rounds(n_topics: int, name: str) -> int:
    return 2 if (name == "dense" and n_topics == 1000) else 3


def burned_in_chain(name: str, n_topics: int, n_shards: int):
    """One chain per (sampler, K, shards), burned in once and shared by thread counts."""
    key = (name, n_topics, n_shards)
    if key not in _CHAINS:
        data = corpus("medium")
        state = sampler.init_state(data.indptr, data.words, n_topics, data.n_items,
                                   alpha=0.1, beta=0.01, seed=0, sampler=name,
                                   n_shards=n_shards)
        for _ in range(5 if name == "dense" else BURN_IN):
            sampler.sweep(state)
        _CHAINS.clear()  # keep one chain in memory at a time
        _CHAINS[key] = state
    return _CHAINS[key]


@pytest.mark.parametrize("n_shards,threads", CONFIGS)
@pytest.mark.parametrize("n_topics", TOPICS)
@pytest.mark.parametrize("name", ["sparse", "mh", "dense"])
def test_sampler(benchmark, name, n_topics, n_shards, threads):
    data = corpus("medium")
    numba.set_num_threads(threads)
    try:
        state = burned_in_chain(name, n_topics, n_shards)
        benchmark.pedantic(sampler.sweep, args=(state,), rounds=_rounds(n_topics, name),
                           iterations=1)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    rate = data.n_tokens / benchmark.stats.stats.median
    peer = _PEER_RATE.get(("tomotopy", n_topics, threads))
    benchmark.extra_info.update({
        "system": f"gibbslda-{name}", "n_topics": n_topics, "threads": threads,
        "shards": n_shards, "n_tokens": data.n_tokens, "tokens_per_s": rate,
        "ratio_to_tomotopy": rate / peer if peer else None, **state_bytes(state),
    })
    assert np.isfinite(sampler.log_likelihood(state))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n_topics", TOPICS)
def test_warp(benchmark, n_topics, threads):
    """WarpLDA: one shard, the threads split each pass's items and users (the same chain on
    1 and 2 threads, so the speed-up is clean); a round is one sweep of ``mh_steps`` = 2
    cycles."""
    test_sampler(benchmark, "warp", n_topics, 1, threads)


@pytest.mark.parametrize("n_topics", [50, 200])
def test_lda(benchmark, n_topics):
    """lda (Cython, dense O(K)); its fit always starts from scratch, so a round is a fit of
    11 sweeps and the rate is taken from the difference with a 1-sweep fit."""
    lda = pytest.importorskip("lda")
    sparse = pytest.importorskip("scipy.sparse")
    data = corpus("medium")
    indptr, indices, counts = data.counts()
    matrix = sparse.csr_matrix((counts, indices, indptr), shape=(data.n_users, data.n_items))

    def fit(n_iter):
        started = time.perf_counter()
        lda.LDA(n_topics=n_topics, n_iter=n_iter, alpha=0.1, eta=0.01, random_state=0,
                refresh=10**9).fit(matrix)
        return time.perf_counter() - started

    one = fit(1)
    benchmark.pedantic(fit, args=(11,), rounds=1, iterations=1)
    rate = 10 * data.n_tokens / (benchmark.stats.stats.median - one)
    benchmark.extra_info.update({"system": "lda", "n_topics": n_topics, "threads": 1,
                                 "tokens_per_s": rate})
