"""Memory and speed at scale on one machine: a 20M-token log, K = 1000, sampler "sparse";
and the share of training time that held-out evaluation takes at K = 1000.

    PYTHONPATH=. .venv/bin/python -m pytest bench/bench_scale.py --benchmark-only \
        -p no:cacheprovider --benchmark-json=scale.json

The log (:func:`scale_log`, seeded): 300k users with log-normal lengths (mean 70 tokens),
200k items with Zipf popularity (exponent 1.0, the classic law, over all items), drawn from
100 planted interests that each own a random share of the items. The training runs in a
fresh subprocess that loads only the token arrays, so its peak resident set (VmHWM) is the
estimator's, not the generator's; the baseline (Python, numba, the compiled kernels) is
measured in the same process before the arrays are loaded.

Figures in ``extra_info``: peak and baseline RSS, bytes per token of the chain's arrays
(items, topics, the packed item x topic rows, offsets) and of the peak above the baseline,
seconds of initialisation and of each sweep, tokens/s. ``topic_word_`` (a dense K x V
float64: 1.6 GB here) is not computed; nothing in training needs it.

``test_build_peak``: the same log as a users x items count matrix (CSR: int64 offsets,
int32 columns, int64 counts, as scipy.sparse holds it), through ``Corpus.from_csr`` and
then ``sampler.init_state`` for each sampler, in a fresh subprocess each; the peak
resident set above what the process held before the call (VmHWM, reset through
/proc/self/clear_refs) per token, and the bytes a token the state keeps.

``test_heldout_share_k1000``: a 200-sweep training at K = 1000 (``LDA`` defaults:
``eval_every=10``, ``heldout_users=1000``; the sampler "auto" picks, "warp" here, and
"sparse") on 1.34M tokens with 3,000 held-out users; the seconds spent evaluating
(log-likelihood and held-out likelihood, at sweeps 0, 10, ..., 200) against the seconds
of the sweeps.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.conftest import proc_status

N_USERS, N_ITEMS, MEAN_LENGTH, PLANTED = 300_000, 200_000, 70, 100
N_TOPICS, N_SWEEPS = 1000, 5
SEED = 20261128


def scale_log(n_users=N_USERS, n_items=N_ITEMS, *, mean_length=MEAN_LENGTH,
              n_planted=PLANTED, zipf=1.0, alpha=0.1, overlap=0.2, seed=SEED):
    """``(indptr, words)`` of a seeded log with global Zipf item popularity.

    Item w has popularity ``rank(w) ** -zipf`` (ranks shuffled) and a home interest; an
    interest draws its own items with weights proportional to popularity, and with
    probability ``overlap`` any item by popularity. The item marginal is Zipf in the tail
    and flatter at the head (an item cannot take much more than its interest's share: the
    top item has 481k of the 21.0M tokens, 2.3%).
    Vectorised: one searchsorted per interest; peak memory about 1.5 GB at 20M tokens.
    """
    rng = np.random.default_rng(seed)
    pop = np.arange(1, n_items + 1, dtype=np.float64) ** -zipf
    pop = pop[rng.permutation(n_items)]
    home = rng.integers(0, n_planted, n_items)
    theta = rng.dirichlet(np.full(n_planted, alpha), size=n_users)
    sigma = 1.0
    lengths = np.maximum(1, np.round(rng.lognormal(np.log(mean_length) - sigma**2 / 2, sigma,
                                                   size=n_users))).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    cdf = np.cumsum(theta, axis=1)
    cdf /= cdf[:, -1:]
    del theta
    cdf += np.arange(n_users)[:, None]  # row r shifted by r: one sorted array
    topics = np.searchsorted(cdf.ravel(), rng.random(users.shape[0]) + users, side="right")
    del cdf
    topics = np.clip(topics - users * n_planted, 0, n_planted - 1)
    words = np.empty(users.shape[0], dtype=np.int64)
    anywhere = rng.random(users.shape[0]) < overlap
    words[anywhere] = _draw(rng, pop, np.arange(n_items), int(anywhere.sum()))
    for k in range(n_planted):
        mine = np.flatnonzero((topics == k) & ~anywhere)
        items = np.flatnonzero(home == k)
        words[mine] = _draw(rng, pop[items], items, mine.shape[0])
    del topics, anywhere
    keys = users * n_items + words
    del users, words
    keys.sort()
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, (keys % n_items).astype(np.int32)


def _draw(rng, weights, values, size):
    cdf = np.cumsum(weights)
    at = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    return values[np.minimum(at, values.shape[0] - 1)]


@pytest.fixture(scope="module")
def log_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    indptr, words = scale_log()
    np.save(folder / "indptr.npy", indptr)
    np.save(folder / "words.npy", words)
    return folder


def child(folder: str, n_topics: int, n_sweeps: int, n_shards: int) -> None:
    """Train in this (fresh) process and print the figures as one JSON line."""
    import time

    from gibbslda import LDA, sampler
    from gibbslda.corpus import Corpus

    sampler.warm_up()
    baseline = proc_status("VmRSS")
    indptr = np.load(Path(folder) / "indptr.npy")
    words = np.load(Path(folder) / "words.npy")
    freq = np.bincount(words, minlength=N_ITEMS)
    corpus = Corpus(indptr, words, np.arange(indptr.shape[0] - 1), np.arange(N_ITEMS))
    sweeps = []
    model = LDA(n_topics, alpha=0.1, beta=0.01, n_iter=n_sweeps, eval_every=10**6,
                random_state=0, sampler="sparse", n_shards=n_shards, n_jobs=n_shards)
    started = time.perf_counter()
    model.fit(corpus, callback=lambda info: sweeps.append(info.tokens_per_second))
    seconds = time.perf_counter() - started
    s = model.state_
    wc = s.layout["wc"]
    n = s.n_tokens
    arrays = {"words": s.words.nbytes, "z": s.z.nbytes, "indptr": s.indptr.nbytes,
              "packed_rows": sum(a.nbytes for a in wc), "n_k": s.n_k.nbytes,
              "cell_ptr": s.layout["cell_ptr"].nbytes}
    print(json.dumps({
        "n_tokens": n, "n_users": corpus.n_users, "n_items": corpus.n_items,
        "top_item_tokens": int(freq.max()), "packed_dtype": str(wc[1].dtype),
        "packed_entries_capacity": int(wc[0][-1]), "baseline_rss_gib": baseline / 2**30,
        "peak_rss_gib": proc_status("VmHWM") / 2**30, "state_bytes": arrays,
        "state_bytes_per_token": sum(arrays.values()) / n,
        "peak_above_baseline_bytes_per_token": (proc_status("VmHWM") - baseline) / n,
        "fit_seconds": seconds, "sweep_tokens_per_s": sweeps,
        "loglik": model.loglik_["loglik"].tolist()}))


def _in_child(benchmark, function: str, arguments: str) -> dict:
    """``bench.bench_scale.function(arguments)`` in a fresh process, timed once by
    ``benchmark``; the JSON object it prints last."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r}); "
            f"from bench.bench_scale import {function}; {function}({arguments})")
    out = {}

    def run():
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True)
        out.update(json.loads(done.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    return out


@pytest.mark.parametrize("n_shards", [1, 2])
def test_scale_sparse_k1000(benchmark, log_folder, n_shards):
    out = _in_child(benchmark, "child",
                    f"{str(log_folder)!r}, {N_TOPICS}, {N_SWEEPS}, {n_shards}")
    rates = out["sweep_tokens_per_s"]
    benchmark.extra_info.update(out | {
        "n_topics": N_TOPICS, "shards": n_shards, "threads": n_shards,
        "tokens_per_s_last_sweep": rates[-1],
        "tokens_per_s_mean": out["n_tokens"] * len(rates) / sum(
            out["n_tokens"] / r for r in rates)})
    assert out["n_tokens"] >= 20_000_000 and out["peak_rss_gib"] < 24


@pytest.fixture(scope="module")
def csr_folder(log_folder):
    """The log as CSR counts: each user's distinct items (ascending) and their counts."""
    indptr = np.load(log_folder / "indptr.npy")
    words = np.load(log_folder / "words.npy")
    n = words.shape[0]
    new = np.ones(n, dtype=bool)
    new[1:] = words[1:] != words[:-1]
    new[indptr[:-1][indptr[:-1] < n]] = True  # a user's first token starts a run
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, n))
    rows = np.searchsorted(indptr, starts, side="right") - 1
    csr_ptr = np.zeros(indptr.shape[0], dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=indptr.shape[0] - 1), out=csr_ptr[1:])
    np.save(log_folder / "csr_indptr.npy", csr_ptr)
    np.save(log_folder / "csr_indices.npy", words[starts].astype(np.int32))
    np.save(log_folder / "csr_data.npy", counts.astype(np.int64))
    return log_folder


def child_build(folder: str, sampler_name: str, n_topics: int) -> None:
    """Corpus.from_csr, then init_state, in this (fresh) process: peaks above the memory
    held before each call, as one JSON line."""
    import time

    from gibbslda import sampler
    from gibbslda.corpus import Corpus

    sampler.warm_up()
    Corpus.from_csr([0, 2, 3], [1, 0, 1], [1, 2, 1])  # compile outside the measure
    arrays = [np.load(Path(folder) / f"csr_{name}.npy")
              for name in ("indptr", "indices", "data")]
    out = {}

    def measured(name, call):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = proc_status("VmRSS")
        started = time.perf_counter()
        result = call()
        out[name + "_seconds"] = time.perf_counter() - started
        out[name + "_peak_bytes"] = proc_status("VmHWM") - before
        return result
    corpus = measured("from_csr", lambda: Corpus.from_csr(*arrays, n_items=N_ITEMS))
    arrays.clear()  # the CSR input goes before the chain starts
    state = measured("init_state", lambda: sampler.init_state(
        corpus.indptr, corpus.words, n_topics, corpus.n_items, seed=0,
        sampler=sampler_name))
    n = corpus.n_tokens
    kept = {"z": state.z.nbytes}
    if state.words is not corpus.words:
        kept["words_copy"] = state.words.nbytes
    for key, parts in state.layout.items():
        parts = parts if isinstance(parts, tuple) else (parts,)
        kept[key] = sum(a.nbytes for a in parts)
    kept["n_wk"] = state.n_wk.nbytes
    print(json.dumps(out | {
        "n_tokens": n, "n_users": corpus.n_users,
        "from_csr_peak_bytes_per_token": out["from_csr_peak_bytes"] / n,
        "init_state_peak_bytes_per_token": out["init_state_peak_bytes"] / n,
        "state_bytes": kept, "state_bytes_per_token": sum(kept.values()) / n,
        "corpus_words_bytes_per_token": corpus.words.nbytes / n}))


@pytest.mark.parametrize("sampler_name,n_topics", [
    ("sparse", N_TOPICS), ("dense", 20), ("mh", N_TOPICS), ("warp", N_TOPICS)])
def test_build_peak(benchmark, csr_folder, sampler_name, n_topics):
    out = _in_child(benchmark, "child_build",
                    f"{str(csr_folder)!r}, {sampler_name!r}, {n_topics}")
    benchmark.extra_info.update(out | {"sampler": sampler_name, "n_topics": n_topics})
    assert out["n_tokens"] >= 20_000_000


@pytest.mark.parametrize("sampler_name", ["auto", "sparse"])
def test_heldout_share_k1000(benchmark, sampler_name):
    import time

    from gibbslda import LDA
    from gibbslda.evaluate import split_users
    from gibbslda.synthetic import planted_corpus

    class Timed(LDA):  # its evaluations (log-likelihood and held-out) timed
        eval_seconds = 0.0

        def _record(self, seconds):
            started = time.perf_counter()
            try:
                return super()._record(seconds)
            finally:
                self.eval_seconds += time.perf_counter() - started

    corpus = planted_corpus(30_000, 20_000, 100, mean_length=50, zipf=1.1, overlap=0.2,
                            seed=1).corpus
    split = split_users(corpus, test_fraction=0.1, seed=0)
    out = {}

    def run():
        model = Timed(1000, random_state=0, sampler=sampler_name)
        started = time.perf_counter()
        model.fit(split.train, heldout=(split.observed, split.hidden))
        out.update(fit_seconds=time.perf_counter() - started, sweep_seconds=model.seconds_,
                   eval_seconds=model.eval_seconds, n_evaluations=int(model.loglik_.size),
                   sampler=model.state_.sampler, heldout=model.loglik_["heldout"].tolist())

    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(out | {
        "n_tokens": split.train.n_tokens, "heldout_users_given": split.observed.n_users,
        "eval_share_of_sweeps": out["eval_seconds"] / out["sweep_seconds"]})
