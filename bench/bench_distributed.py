"""AD-LDA on a Dask LocalCluster (2 worker processes, 1 thread each) against one process.

    .venv/bin/pip install -e ".[bench,distributed]"
    PYTHONPATH=. .venv/bin/python -m pytest bench/bench_distributed.py --benchmark-only \
        -p no:cacheprovider --benchmark-json=distributed.json

Each case fits ``DistributedLDA(sampler="sparse", n_partitions=2)`` from scratch and
records, from ``rounds_``, the time split of a round: sample (the slower partition's
sweeps), sync (a partition adding the others' changes to its copy of the counts and
finding its own change; the slower one), step (the slower partition's whole call), merge
(the driver summing, applying and checking the changes) and other (the round's wall time
less step and merge: serialising, sending, receiving); and the communication volume per
round (count changes up from the partitions, the summed change down to them, as array
bytes), the first round apart (it moves the most topics) and the mean of the others but
the last (which sends nothing down). The same chain length on one process (``LDA``, one
shard, one thread) is measured in the same run for the speed ratio and log p(w, z) per
token after the same sweeps (what staleness costs). Worker peak RSS (VmHWM, read in
each worker process, reset before each case) shows how memory splits.

Cases: the "medium" corpus (2.5M tokens, 20k items) at K = 100 and 1000, one sweep per
round and 4 sweeps per round; and the 21M-token log of ``bench_scale`` at K = 1000 for a
few rounds (per-worker memory at scale).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from bench.conftest import corpus, proc_status
from gibbslda import LDA
from gibbslda.corpus import Corpus

distributed = pytest.importorskip("distributed")
from gibbslda.distributed import DistributedLDA  # noqa: E402

# name: (corpus, K, sweeps, sweeps per round)
CASES = {
    "medium-k100-s1": ("medium", 100, 16, 1),
    "medium-k1000-s1": ("medium", 1000, 16, 1),
    "medium-k1000-s4": ("medium", 1000, 16, 4),
    "scale-k1000-s1": ("scale", 1000, 3, 1),
}
_SINGLE: dict = {}


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set (Linux >= 4.0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    client = distributed.Client(cluster)
    tiny = corpus("small")  # compile / load the kernels in every worker, outside timings
    DistributedLDA(5, n_iter=2, random_state=0, sampler="sparse").fit(tiny, client)
    yield client
    client.close()
    cluster.close()


def _corpus(name: str) -> Corpus:
    if name == "scale":
        from bench.bench_scale import N_ITEMS, scale_log

        indptr, words = scale_log()
        return Corpus(indptr, words, np.arange(indptr.shape[0] - 1), np.arange(N_ITEMS))
    return corpus(name)


def _split(rounds) -> dict:
    wall = rounds["seconds"] - np.concatenate([[0.0], rounds["seconds"][:-1]])
    other = wall - rounds["step_s"] - rounds["merge_s"] - rounds["checkpoint_s"]
    parts = {"wall_s": wall, "step_s": rounds["step_s"], "sample_s": rounds["sample_s"],
             "sync_s": rounds["sync_s"], "merge_s": rounds["merge_s"], "other_s": other,
             "bytes_up": rounds["bytes_up"], "bytes_down": rounds["bytes_down"]}
    out = {f"first_round_{k}": float(v[0]) for k, v in parts.items()}
    if rounds.shape[0] > 2:  # the last round sends nothing down: leave it out of the mean
        out |= {f"mean_round_{k}": float(v[1:-1].mean()) for k, v in parts.items()}
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_distributed(benchmark, client, case):
    name, n_topics, n_iter, per_round = CASES[case]
    data = _corpus(name)
    if name != "scale":  # one process, same chain length, for the ratio
        key = (name, n_topics, n_iter)
        if key not in _SINGLE:
            started = time.perf_counter()
            single = LDA(n_topics, n_iter=n_iter, random_state=0, sampler="sparse",
                         eval_every=10**6).fit(data)
            _SINGLE[key] = (time.perf_counter() - started, single.loglik_["loglik"][-1])
    client.run(_reset_peak)
    baseline = client.run(proc_status, "VmRSS")
    est = DistributedLDA(n_topics, n_iter=n_iter, random_state=0, sampler="sparse",
                         n_partitions=2, sweeps_per_round=per_round, eval_every=10**6)
    started = []

    def fit():
        started.append(time.perf_counter())
        est.fit(data, client)
        started.append(time.perf_counter())

    benchmark.pedantic(fit, rounds=1, iterations=1)
    peaks = client.run(proc_status, "VmHWM")
    rounds = est.rounds_
    total = started[1] - started[0]
    info = benchmark.extra_info
    info.update({
        "case": case, "n_tokens": data.n_tokens, "n_items": data.n_items,
        "n_topics": n_topics, "sweeps": n_iter, "sweeps_per_round": per_round,
        "workers": 2, "partitions": 2, "threads_per_worker": 1,
        "fit_seconds": total, "setup_seconds": est.setup_["seconds"],
        "setup_bytes": {k: v for k, v in est.setup_.items() if k != "seconds"},
        "rounds_seconds": float(rounds["seconds"][-1]),
        "tokens_per_s_rounds": data.n_tokens * n_iter / float(rounds["seconds"][-1]),
        "sample_share": float(rounds["sample_s"].sum() / rounds["seconds"][-1]),
        "loglik": float(rounds["loglik"][-1]),
        "worker_baseline_rss_gib": sorted(v / 2**30 for v in baseline.values()),
        "worker_peak_rss_gib": sorted(v / 2**30 for v in peaks.values()),
    } | _split(rounds))
    if name != "scale":
        seconds, loglik = _SINGLE[name, n_topics, n_iter]
        info.update({"single_process_seconds": seconds, "single_process_loglik": loglik,
                     "speedup_vs_single": seconds / total})
    assert est.model_.n_k_.sum() == data.n_tokens
