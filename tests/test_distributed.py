"""AD-LDA on Dask: the chain against its definition, reproducibility across worker counts,
held-out quality against one machine, consistency after every merge, a lost worker."""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from gibbslda import LDA, Corpus, NotFittedError, _rng, sampler  # noqa: E402
from gibbslda.distributed import PURPOSE, DistributedLDA  # noqa: E402
from gibbslda.evaluate import completion_log_likelihood, split_users  # noqa: E402
from gibbslda.model import CHECK_ENV  # noqa: E402
from gibbslda.packed import apply_item_delta, combine, set_item_counts  # noqa: E402
from gibbslda.synthetic import planted_corpus  # noqa: E402


def _cluster(n_workers, threads=1):
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads,
                                       processes=True, dashboard_address=":0",
                                       worker_dashboard_address=None)
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def two_workers():
    cluster, client = _cluster(2)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def one_worker():
    cluster, client = _cluster(1)
    yield client
    client.close()
    cluster.close()


def reference_adlda(corpus, n_topics, name, n_partitions, n_iter, sweeps_per_round, seed):
    """AD-LDA by its definition, in one process: each round every partition sweeps its own
    tokens against the counts of every token's topic as the round began."""
    rng = _rng.seed_streams(seed, PURPOSE, n_partitions)
    bounds = sampler.shard_layout(corpus.indptr, corpus.words, corpus.n_items,
                                  n_partitions)[1]
    parts = []
    for p in range(n_partitions):
        lo, hi = corpus.indptr[bounds[p]], corpus.indptr[bounds[p + 1]]
        parts.append(sampler.init_state(
            corpus.indptr[bounds[p]:bounds[p + 1] + 1] - lo, corpus.words[lo:hi], n_topics,
            corpus.n_items, alpha=0.1, beta=0.01, rng=rng[p:p + 1].copy(), sampler=name))
    done = 0
    while done < n_iter:
        n = min(sweeps_per_round, n_iter - done)
        z = np.concatenate([s.z for s in parts])
        _, n_wk, n_k = sampler.counts_from_z(corpus.indptr, corpus.words, z, n_topics,
                                             corpus.n_items)
        packed = sampler.packed_counts(corpus.words, z, n_topics, corpus.n_items)
        for s in parts:
            if name == "sparse":
                s.layout["wc"] = tuple(a.copy() for a in packed)
            else:
                s.n_wk[:] = n_wk
            s.n_k[:] = n_k
            for _ in range(n):
                sampler.sweep(s)
        done += n
    return np.concatenate([s.z for s in parts]), np.concatenate([s.rng for s in parts])


@pytest.mark.parametrize("name", ["dense", "sparse"])
def test_chain_equals_its_definition(two_workers, planted, name, monkeypatch):
    # 3 partitions on 2 workers: two actors share one worker; every merge is checked
    # against the tokens' topics and every partition's copy (GIBBSLDA_CHECK=1).
    monkeypatch.setenv(CHECK_ENV, "1")
    fit = DistributedLDA(5, n_iter=7, random_state=3, sampler=name, n_partitions=3,
                         sweeps_per_round=2, eval_every=2).fit(planted.corpus, two_workers)
    z, rng = reference_adlda(planted.corpus, 5, name, 3, 7, 2, seed=3)
    np.testing.assert_array_equal(fit.model_.z_, z)
    np.testing.assert_array_equal(fit.model_.rng_state_, rng)
    assert fit.rounds_["sweeps"].tolist() == [2, 4, 6, 7]
    # log p(w, z) assembled from the partitions' user terms equals the one-state value
    assert fit.model_.loglik_["loglik"][-1] == pytest.approx(
        sampler.log_likelihood(fit.model_.state_), rel=1e-12)
    assert fit.model_.loglik_["iteration"].tolist() == [4, 7]


@pytest.fixture(scope="module")
def two_threads():
    cluster, client = _cluster(1, threads=2)
    yield client
    client.close()
    cluster.close()


def test_partitions_of_a_worker_share_its_threads_with_the_same_result(
        two_threads, one_worker, two_workers, planted):
    # 1 worker x 2 threads sweeps 2 of its 3 partitions at a time; 1 worker x 1 thread one
    # at a time; 2 workers x 1 thread hold 2 and 1. The chain is AD-LDA's by definition in
    # each (every partition its own stream, merges in partition order): thread and worker
    # counts do not change a bit of it.
    z, rng = reference_adlda(planted.corpus, 5, "sparse", 3, 5, 1, seed=4)
    down = []
    for client, placed in ((two_threads, [([0, 1, 2], 2)]), (one_worker, [([0, 1, 2], 1)]),
                           (two_workers, [([0, 2], 1), ([1], 1)])):
        fit = DistributedLDA(5, n_iter=5, random_state=4, sampler="sparse", n_partitions=3,
                             sweeps_per_round=1).fit(planted.corpus, client)
        np.testing.assert_array_equal(fit.model_.z_, z)
        np.testing.assert_array_equal(fit.model_.rng_state_, rng)
        workers = fit.setup_["workers"]
        assert [(w["partitions"], w["threads"]) for w in workers.values()] == placed
        down.append(fit.rounds_["bytes_down"])
    # the same chain merges the same changes; they go down once per worker (1, 1 and 2
    # actors), not once per partition (3 each)
    assert down[0][:-1].min() > 0 and down[0][-1] == 0
    np.testing.assert_array_equal(down[1], down[0])
    np.testing.assert_array_equal(down[2], 2 * down[0])


def test_same_model_on_one_or_two_workers(two_workers, one_worker, planted, tmp_path):
    runs = [DistributedLDA(5, n_iter=6, random_state=11, sampler="sparse", n_partitions=2,
                           sweeps_per_round=3).fit(planted.corpus, client)
            for client in (two_workers, one_worker)]
    np.testing.assert_array_equal(runs[0].model_.z_, runs[1].model_.z_)
    np.testing.assert_array_equal(runs[0].model_.rng_state_, runs[1].model_.rng_state_)
    np.testing.assert_array_equal(runs[0].rounds_["loglik"], runs[1].rounds_["loglik"])
    other = DistributedLDA(5, n_iter=6, random_state=12, sampler="sparse",
                           n_partitions=2).fit(planted.corpus, one_worker)
    assert not np.array_equal(other.model_.z_, runs[0].model_.z_)
    # the result is a regular fitted LDA: invariants, save/load, transform, resume
    model = runs[0].model_
    sampler.check_state(model.state_)
    assert model.n_iter_ == 6 and model.n_k_.sum() == planted.corpus.n_tokens
    np.testing.assert_allclose(model.topic_word_.sum(axis=1), 1.0)
    model.save(tmp_path / "m")
    loaded = LDA.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.z_, model.z_)
    np.testing.assert_allclose(loaded.transform([[0, 1]]), model.transform([[0, 1]]))
    loaded.resume(1)
    sampler.check_state(loaded.state_)


def test_heldout_close_to_one_machine(two_workers):
    # AD-LDA reaches the serial sampler's held-out likelihood (Newman et al. 2009, on 1000
    # processors): medians over the same 5 seeds agree within 0.1%.
    # 4 planted topics: with 5 (the corpus used before) 15% of chains on either side sat in
    # a local optimum (two planted topics merged, 6-10% lower) that 200 sweeps did not
    # leave. Here 0 of 60 serial and 1 of 40 AD-LDA chains did; the median ignores up to
    # 2 of 5 (3 of 5 at that rate: about 1 in 10^4), while a bias in every chain moves it.
    # The rest have a seed-to-seed spread of 0.0006 nats per token (0.02%), so medians of
    # 5 differ by about 0.016% (sd); 0.1% is 6 sd, and an AD-LDA 0.2% worse fails.
    planted = planted_corpus(300, 100, 4, mean_length=50, alpha=0.1, seed=8)
    split = split_users(planted.corpus, test_fraction=0.2, seed=0)
    one, dist = [], []
    for seed in range(5):
        single = LDA(4, n_iter=100, random_state=seed, sampler="sparse").fit(split.train)
        one.append(completion_log_likelihood(single, split.observed, split.hidden))
        fit = DistributedLDA(4, n_iter=100, random_state=seed, sampler="sparse",
                             n_partitions=2, sweeps_per_round=2).fit(split.train, two_workers)
        dist.append(completion_log_likelihood(fit.model_, split.observed, split.hidden))
    assert np.median(dist) == pytest.approx(np.median(one), rel=0.001), (one, dist)


def _kill(pid):
    """SIGKILL a worker process and wait until it is dead (gone, or a zombie)."""
    import psutil  # a dependency of distributed

    os.kill(pid, signal.SIGKILL)
    proc, deadline = psutil.Process(pid), time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.01)


def test_lost_worker_is_reported_and_training_resumes(one_worker, planted, tmp_path):
    cluster, client = _cluster(2)
    try:
        pids = client.run(os.getpid)
        est = DistributedLDA(5, n_iter=8, random_state=5, sampler="sparse", n_partitions=2,
                             sweeps_per_round=2, checkpoint=tmp_path / "run.npz")

        def kill_after_round_2(info):
            if info.round == 2:  # the checkpoint of round 2 is written before this call
                _kill(pids[sorted(pids)[1]])

        with pytest.raises(RuntimeError, match=r"worker tcp://\S+ \(partition 1\) lost at "
                           r"round 3; the last checkpoint is at .*run\.npz \(round 2, 4 "
                           r"sweeps\); call fit\(X, client, resume=True\)"):
            est.fit(planted.corpus, client, callback=kill_after_round_2)
    finally:
        client.close()
        cluster.close()
    resumed = est.fit(planted.corpus, one_worker, resume=True)
    assert resumed.rounds_["round"].tolist() == [1, 2, 3, 4]
    whole = DistributedLDA(5, n_iter=8, random_state=5, sampler="sparse", n_partitions=2,
                           sweeps_per_round=2).fit(planted.corpus, one_worker)
    np.testing.assert_array_equal(resumed.model_.z_, whole.model_.z_)
    np.testing.assert_array_equal(resumed.model_.rng_state_, whole.model_.rng_state_)
    sampler.check_state(resumed.model_.state_)
    # a checkpoint only continues the corpus and settings it was written for
    with pytest.raises(ValueError, match="n_topics=5, this model 6"):
        DistributedLDA(6, n_iter=8, n_partitions=2, checkpoint=tmp_path / "run.npz").fit(
            planted.corpus, one_worker, resume=True)
    with pytest.raises(ValueError, match="another corpus"):
        DistributedLDA(5, n_iter=8, n_partitions=2, sampler="sparse",
                       checkpoint=tmp_path / "run.npz").fit([[0, 1], [2]], one_worker,
                                                            resume=True)
    with np.load(tmp_path / "run.npz", allow_pickle=False) as npz:
        arrays = dict(npz)
    np.savez(tmp_path / "cut.npz", **(arrays | {"z": arrays["z"].astype(np.int64)}))
    with pytest.raises(ValueError, match="damaged: its arrays do not fit"):
        DistributedLDA(5, n_partitions=2, sampler="sparse",
                       checkpoint=tmp_path / "cut.npz").fit(planted.corpus, one_worker,
                                                            resume=True)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="missing or damaged"):
        DistributedLDA(5, checkpoint=tmp_path / "bad.npz").fit(planted.corpus, one_worker,
                                                               resume=True)


def test_callback_false_stops_after_the_round_and_resume_continues(two_workers, planted,
                                                                   tmp_path):
    settings = dict(random_state=6, sampler="dense", n_partitions=2, n_iter=6)
    est = DistributedLDA(5, checkpoint=tmp_path / "run.npz", checkpoint_every=3, **settings)
    stopped = est.fit(planted.corpus, two_workers, callback=lambda info: info.round < 2)
    # round 2 neither gathered the chain nor wrote a checkpoint on its own schedule
    assert stopped.rounds_["round"].tolist() == [1, 2] and stopped.model_.n_iter_ == 2
    sampler.check_state(stopped.model_.state_)
    resumed = est.fit(planted.corpus, two_workers, resume=True)
    assert resumed.rounds_["round"].tolist() == list(range(1, 7))
    whole = DistributedLDA(5, **settings).fit(planted.corpus, two_workers)
    np.testing.assert_array_equal(resumed.model_.z_, whole.model_.z_)
    np.testing.assert_array_equal(resumed.model_.rng_state_, whole.model_.rng_state_)


def test_no_checkpoint_message():
    from gibbslda.distributed.driver import Run

    class Gone:
        status = "error"

    class Running:
        status = "finished"

    run = Run(DistributedLDA(5), None, None, None, None)
    run.futures, run.workers, run.groups = [Gone()], ["tcp://w:1"], [[0]]
    error = run._lost(OSError("closed"), 4)
    assert "tcp://w:1 (partition 0) lost at round 4; no checkpoint was written" in str(error)
    assert run._lost(ValueError("other"), 4).args == ("other",)
    # a worker holds partitions 0 and 2, the other 1 and 3: the lost one names both of its
    run.futures, run.groups = [Running(), Gone()], [[0, 2], [1, 3]]
    run.workers = ["tcp://w:1", "tcp://w:2", "tcp://w:1", "tcp://w:2"]
    assert str(run._lost(OSError("closed"), 2)).startswith(
        "worker tcp://w:2 (partitions 1, 3) lost at round 2;")


@pytest.mark.parametrize("setting, value, error, match", [
    ("n_partitions", 0, ValueError, "n_partitions must be >= 1, got 0"),
    ("sweeps_per_round", 1.5, TypeError, "sweeps_per_round must be an integer"),
    ("checkpoint_every", 0, ValueError, "checkpoint_every must be >= 1"),
    ("n_iter", 0, ValueError, "n_iter must be >= 1"),
    ("sampler", "mh", ValueError, "got 'mh'"),
    ("sampler", "warp", ValueError, "got 'warp': its item proposal"),
    ("sampler", "vector", ValueError, "got 'vector': the float32 kernel"),
    ("alpha", "learned", TypeError, "alpha must be a number, an array of 5 numbers"),
    ("optimize_every", 0, ValueError, "optimize_every must be >= 1"),
    ("optimize_burn_in", -1, ValueError, "optimize_burn_in must be >= 0"),
    ("beta", -1.0, ValueError, "beta must be finite and > 0, got -1.0"),
    ("n_topics", 0, ValueError, "n_topics must be >= 1"),
])
def test_invalid_settings(planted, setting, value, error, match):
    est = DistributedLDA(5)
    setattr(est, setting, value)
    with pytest.raises(error, match=match):
        est.fit(planted.corpus, None)


def test_invalid_fit_arguments(planted, one_worker):
    with pytest.raises(NotFittedError, match="not fitted yet .no model_.: call fit"):
        DistributedLDA(5).model_
    with pytest.raises(ValueError, match="cannot fit an empty corpus"):
        DistributedLDA(5).fit(Corpus.from_lists([[]], drop_empty=False), one_worker)
    with pytest.raises(TypeError, match="client must be a distributed.Client, got NoneType"):
        DistributedLDA(5).fit(planted.corpus, None)
    with pytest.raises(ValueError, match="resume=True needs checkpoint=path"):
        DistributedLDA(5).fit(planted.corpus, one_worker, resume=True)
    with pytest.raises(ValueError, match=r"n_partitions must be <= the number of users \(2\)"):
        DistributedLDA(5, n_partitions=3).fit([[0, 1], [2]], one_worker)


@pytest.mark.parametrize("one_key", [True, False])
@pytest.mark.parametrize("name", ["dense", "sparse"])
def test_count_updates_match_a_rebuild(planted, name, one_key, monkeypatch):
    if not one_key:  # the argsort / lexsort path taken when keys exceed 31 bits
        monkeypatch.setattr("gibbslda.packed._ONE_KEY", 0)
    corpus = planted.corpus
    gen = np.random.default_rng(0)
    z = gen.integers(0, 7, corpus.n_tokens).astype(np.int32)
    _, n_wk, n_k = sampler.counts_from_z(corpus.indptr, corpus.words, z, 7, corpus.n_items)
    keys = np.flatnonzero(n_wk)
    # a state holding the first 40 users' tokens, with the whole corpus's counts
    part = sampler.init_state(corpus.indptr[:41], corpus.words[:corpus.indptr[40]], 7,
                              corpus.n_items, seed=0, sampler=name)
    set_item_counts(part, keys, n_wk.reshape(-1)[keys], n_k)
    np.testing.assert_array_equal(part.item_topic_counts(), n_wk)
    moved = z.copy()
    change = gen.random(z.size) < 0.3
    moved[change] = gen.integers(0, 7, int(change.sum()))
    _, after, n_k_after = sampler.counts_from_z(corpus.indptr, corpus.words, moved, 7,
                                                corpus.n_items)
    diff = (after - n_wk).reshape(-1)
    delta = np.flatnonzero(diff)
    apply_item_delta(part, delta, diff[delta].astype(np.int32))
    part.n_k[:] = n_k_after
    np.testing.assert_array_equal(part.item_topic_counts(), after)
    if name == "sparse":  # the rows are the ones packed_counts builds from the tokens
        full = sampler.packed_counts(corpus.words, moved, 7, corpus.n_items)
        np.testing.assert_array_equal(part.layout["wc"][2], full[2])
        for w in range(corpus.n_items):
            a, b = part.layout["wc"][0][w], full[0][w]
            np.testing.assert_array_equal(part.layout["wc"][1][a:a + full[2][w]],
                                          full[1][b:b + full[2][w]])
        # every slot past a row's length reads count 0 (what log_joint and the prior
        # histograms assume); a shrunk row once kept its old tail
        wc_ptr, wc_val, wc_len = part.layout["wc"]
        for w in range(corpus.n_items):
            tail = wc_val[wc_ptr[w] + wc_len[w]:wc_ptr[w + 1]]
            assert not np.any(tail >> sampler.topic_bits(7)), w
    with pytest.raises(RuntimeError, match="below zero"):
        apply_item_delta(part, delta[:1], np.array([-10**6], dtype=np.int32))


@pytest.mark.parametrize("one_key", [True, False])
def test_combine_sums_entries(one_key, monkeypatch):
    if not one_key:
        monkeypatch.setattr("gibbslda.packed._ONE_KEY", 0)
    keys, values = combine([np.array([5, 3, 5, 2**40 if not one_key else 9]),
                             np.array([3, 7])], [1, np.array([-1, 2], dtype=np.int32)])
    assert keys.tolist() == [5, 7, 2**40 if not one_key else 9]
    assert values.tolist() == [2, 2, 1] and values.dtype == np.int32
    assert combine([np.zeros(0, np.int64)], [1])[0].size == 0


def test_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'gibbslda\[distributed\]'"):
        DistributedLDA(5).fit([[0]], None)
