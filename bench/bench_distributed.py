"""AD-LDA on Dask LocalClusters against one process, and the cores a worker uses.

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

Cases on 2 workers x 1 thread, 2 partitions: the "medium" corpus (2.5M tokens, 20k
items) at K = 100 and 1000, one sweep per round and 4 sweeps per round; and the 21M-token
log of ``bench_scale`` at K = 1000 for a few rounds (per-worker memory at scale).

Cores (``threads-*``): the same chain (medium, 2 partitions, 16 sweeps, one a round) on
1 worker x 1 thread and 1 worker x 2 threads: a worker sweeps as many of its partitions
at once as it has threads, so the second should approach twice the first's tokens/s
(``speedup_vs_1_thread``, from the rounds' seconds; the fit is the same bit for bit).
``cores_used`` (every case) is the workers' CPU seconds over the fit's wall seconds: the
cores kept busy, a steadier figure than seconds when other jobs share the machine.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from bench.conftest import corpus, proc_status
from gibbslda import LDA
from gibbslda.corpus import Corpus

distributed = pytest.importorskip("distributed")
from gibbslda.distributed import DistributedLDA  # noqa: E402

# name: (corpus, K, sweeps, sweeps per round, workers, threads per worker)
CASES = {
    "medium-k100-s1": ("medium", 100, 16, 1, 2, 1),
    "medium-k1000-s1": ("medium", 1000, 16, 1, 2, 1),
    "medium-k1000-s4": ("medium", 1000, 16, 4, 2, 1),
    "scale-k1000-s1": ("scale", 1000, 3, 1, 2, 1),
    "threads-k100-1x1": ("medium", 100, 16, 1, 1, 1),  # one cluster shape after another
    "threads-k1000-1x1": ("medium", 1000, 16, 1, 1, 1),
    "threads-k100-1x2": ("medium", 100, 16, 1, 1, 2),
    "threads-k1000-1x2": ("medium", 1000, 16, 1, 1, 2),
}
_SINGLE: dict = {}
_RATES: dict = {}  # (corpus, K, workers, threads) -> tokens/s of the rounds, this run


def _cpu_seconds() -> float:
    """CPU seconds (user + system, all threads) of this process so far."""
    times = os.times()
    return times.user + times.system


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set (Linux >= 4.0)


@pytest.fixture(scope="module")
def clients():
    """A client per cluster shape (workers, threads per worker), started on first use."""
    made: dict = {}

    def get(n_workers: int, threads: int):
        if (n_workers, threads) not in made:
            for client, cluster in made.values():  # one cluster at a time on 2 cores
                client.close()
                cluster.close()
            made.clear()
            cluster = distributed.LocalCluster(n_workers=n_workers,
                                               threads_per_worker=threads, processes=True,
                                               dashboard_address=":0")
            client = distributed.Client(cluster)
            tiny = corpus("small")  # compile / load the kernels in every worker
            DistributedLDA(5, n_iter=2, random_state=0, sampler="sparse").fit(tiny, client)
            made[n_workers, threads] = (client, cluster)
        return made[n_workers, threads][0]

    yield get
    for client, cluster in made.values():
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
def test_distributed(benchmark, clients, case):
    name, n_topics, n_iter, per_round, n_workers, threads = CASES[case]
    client = clients(n_workers, threads)
    data = _corpus(name)
    if name != "scale" and n_workers > 1:  # one process, same chain length, for the ratio
        key = (name, n_topics, n_iter)
        if key not in _SINGLE:
            started = time.perf_counter()
            single = LDA(n_topics, n_iter=n_iter, random_state=0, sampler="sparse",
                         eval_every=10**6).fit(data)
            _SINGLE[key] = (time.perf_counter() - started, single.loglik_["loglik"][-1])
    client.run(_reset_peak)
    baseline = client.run(proc_status, "VmRSS")
    cpu = client.run(_cpu_seconds)
    est = DistributedLDA(n_topics, n_iter=n_iter, random_state=0, sampler="sparse",
                         n_partitions=2, sweeps_per_round=per_round, eval_every=10**6)
    started = []

    def fit():
        started.append(time.perf_counter())
        est.fit(data, client)
        started.append(time.perf_counter())

    benchmark.pedantic(fit, rounds=1, iterations=1)
    peaks = client.run(proc_status, "VmHWM")
    cpu = {w: t - cpu[w] for w, t in client.run(_cpu_seconds).items()}
    rounds = est.rounds_
    total = started[1] - started[0]
    info = benchmark.extra_info
    info.update({
        "case": case, "n_tokens": data.n_tokens, "n_items": data.n_items,
        "n_topics": n_topics, "sweeps": n_iter, "sweeps_per_round": per_round,
        "workers": n_workers, "partitions": 2, "threads_per_worker": threads,
        "threads_used": {w: v["threads"] for w, v in est.setup_["workers"].items()},
        # cores busy on average: the workers' CPU seconds over the fit's wall seconds
        "worker_cpu_seconds": sorted(cpu.values()), "cores_used": sum(cpu.values()) / total,
        "fit_seconds": total, "setup_seconds": est.setup_["seconds"],
        "setup_bytes": {k: v for k, v in est.setup_.items() if k != "seconds"},
        "rounds_seconds": float(rounds["seconds"][-1]),
        "tokens_per_s_rounds": data.n_tokens * n_iter / float(rounds["seconds"][-1]),
        "sample_share": float(rounds["sample_s"].sum() / rounds["seconds"][-1]),
        "loglik": float(rounds["loglik"][-1]),
        "worker_baseline_rss_gib": sorted(v / 2**30 for v in baseline.values()),
        "worker_peak_rss_gib": sorted(v / 2**30 for v in peaks.values()),
    } | _split(rounds))
    rate = info["tokens_per_s_rounds"]
    _RATES[name, n_topics, n_workers, threads] = rate
    if threads > 1 and (name, n_topics, n_workers, 1) in _RATES:
        info["speedup_vs_1_thread"] = rate / _RATES[name, n_topics, n_workers, 1]
    if name != "scale" and n_workers > 1:
        seconds, loglik = _SINGLE[name, n_topics, n_iter]
        info.update({"single_process_seconds": seconds, "single_process_loglik": loglik,
                     "speedup_vs_single": seconds / total})
    assert est.model_.n_k_.sum() == data.n_tokens
