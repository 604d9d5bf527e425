"""One contract for every way to get a fitted LDA (STYLE.md, Tests).

``WAYS`` lists the ways: each sampler, sharded, learned priors, resumed, stopped and
resumed, saved and loaded, updated, distributed. Every check below runs on every way; a new way
of getting a fitted model is one factory added to the list, and gets every check for free
(as implicit's ``RecommenderBaseTestMixin`` does for every recommender).

Expected values are computed here from the tokens and the topics (np.add.at, bincount,
the formulas written out), never with the library's own helpers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from gibbslda import LDA, Corpus
from gibbslda.recommend import recommend
from gibbslda.synthetic import planted_corpus

K, V, D = 5, 40, 60
N_ITER = 20
SEED = 2024
# Rows of theta and phi are K or V float64 quotients added up: rounding leaves them within
# a few ulps of 1, far inside 1e-12; a wrong prior or count moves them by > 1e-4 here.
SUM_TOL = 1e-12


# -- the corpus ------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    corpus: Corpus
    lists: list  # each user's items (ids), the ground truth of the histories


@pytest.fixture(scope="module")
def data():
    """60 users, 40 items (string ids), 5 planted topics, about 1,200 tokens; user ids are
    not row numbers, so a lost id map shows."""
    planted = planted_corpus(D, V, K, mean_length=20, alpha=0.1, seed=5).corpus
    lists = [[f"item{w:02d}" for w in planted.words[a:b]]
             for a, b in zip(planted.indptr[:-1], planted.indptr[1:])]
    user_ids = 1000 + 7 * np.arange(D)
    corpus = Corpus.from_lists(lists, user_ids=user_ids)
    assert corpus.n_users == D and corpus.n_items == V
    return Data(corpus, lists)


# -- the ways ----------------------------------------------------------------------------
class Env:
    """What some ways need besides the corpus: a folder, a Dask client (started lazily,
    so only the distributed way pays for the cluster or skips without dask)."""

    def __init__(self, request, tmp_path_factory):
        self._request, self._tmp = request, tmp_path_factory

    def folder(self):
        return self._tmp.mktemp("model") / "m"

    @property
    def client(self):
        return self._request.getfixturevalue("dask_client")


def _lda(**settings) -> LDA:
    return LDA(K, **({"n_iter": N_ITER, "random_state": SEED} | settings))


def dense(corpus, env):
    return _lda(sampler="dense").fit(corpus)


def sparse(corpus, env):
    return _lda(sampler="sparse").fit(corpus)


def mh(corpus, env):
    return _lda(sampler="mh").fit(corpus)


def warp(corpus, env):
    return _lda(sampler="warp", n_jobs=2).fit(corpus)


def vector(corpus, env):
    return _lda(sampler="vector").fit(corpus)


def sharded(corpus, env):
    return _lda(sampler="sparse", n_shards=3).fit(corpus)


def sharded_two_threads(corpus, env):
    return _lda(sampler="dense", n_shards=3, n_jobs=2).fit(corpus)


def auto_priors(corpus, env):
    model = _lda(alpha="auto", beta="auto", optimize_burn_in=4, optimize_every=4).fit(corpus)
    assert model.beta_ != 0.01 and not np.all(model.alpha_ == 0.1)  # they were learned
    return model


def resumed(corpus, env):
    return _lda(sampler="sparse", n_iter=12).fit(corpus).resume(8)


def stopped_and_resumed(corpus, env):
    model = _lda(sampler="dense").fit(corpus, callback=lambda info: info.iteration < 7)
    assert model.n_iter_ == 7  # the callback did stop it
    return model.resume()


def loaded(corpus, env):
    folder = env.folder()
    _lda(sampler="sparse", n_shards=2).fit(corpus).save(folder)
    return LDA.load(folder)


def updated(corpus, env):
    """Fitted on the first 40 users (over the whole vocabulary), then the other 20 users
    added by one update: the same corpus, users in the same order."""
    ids = np.asarray(corpus.user_ids)
    lists = [list(corpus.item_ids[corpus.words[a:b]])
             for a, b in zip(corpus.indptr[:-1], corpus.indptr[1:])]
    first = Corpus.from_lists(lists[:40], user_ids=ids[:40], vocabulary=corpus.item_ids)
    model = _lda(sampler="sparse").fit(first)
    model.update(Corpus.from_lists(lists[40:], user_ids=ids[40:]), n_iter=5)
    assert model.last_update_.users_added == 20  # the update did add them
    return model


def distributed(corpus, env):
    from gibbslda import DistributedLDA

    est = DistributedLDA(K, n_iter=N_ITER, random_state=SEED, sampler="sparse",
                         n_partitions=2, sweeps_per_round=2, eval_every=3)
    return est.fit(corpus, env.client).model_


@dataclass(frozen=True)
class Way:
    build: Callable
    refit_from_params: bool = True  # LDA(**get_params()).fit(X) retraces this chain

    @property
    def name(self):
        return self.build.__name__


WAYS = [Way(dense), Way(sparse), Way(mh), Way(warp), Way(vector), Way(sharded),
        Way(sharded_two_threads), Way(auto_priors), Way(resumed), Way(stopped_and_resumed),
        Way(loaded),
        Way(updated, refit_from_params=False),
        Way(distributed, refit_from_params=False)]


@pytest.fixture(scope="module")
def dask_client():
    """One small cluster for the module, built as tests/test_distributed.py builds its own."""
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", worker_dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@dataclass
class Fitted:
    way: Way
    model: LDA  # shared by the checks: read, never continued
    data: Data
    env: Env

    def fresh(self) -> LDA:
        """The same model built again, for checks that continue the chain."""
        return self.way.build(self.data.corpus, self.env)


@pytest.fixture(scope="module", params=WAYS, ids=lambda way: way.name)
def fitted(request, data, tmp_path_factory):
    env = Env(request, tmp_path_factory)
    return Fitted(request.param, request.param.build(data.corpus, env), data, env)


# -- expectations, computed here ---------------------------------------------------------
def expected_counts(corpus, z):
    """(n_dk, n_wk, n_k) of the topics ``z`` of the corpus's tokens."""
    users = np.repeat(np.arange(corpus.n_users), np.diff(corpus.indptr))
    n_dk = np.zeros((corpus.n_users, K), dtype=np.int64)
    n_wk = np.zeros((corpus.n_items, K), dtype=np.int64)
    np.add.at(n_dk, (users, z), 1)
    np.add.at(n_wk, (corpus.words, z), 1)
    return n_dk, n_wk, np.bincount(z, minlength=K)


# -- the checks --------------------------------------------------------------------------
def test_counts_agree_with_the_topics(fitted):
    model, corpus = fitted.model, fitted.data.corpus
    z = np.asarray(model.z_)
    assert z.shape == (corpus.n_tokens,)
    assert z.min() >= 0 and z.max() < K
    n_dk, n_wk, n_k = expected_counts(corpus, z)
    np.testing.assert_array_equal(model.n_k_, n_k)
    np.testing.assert_array_equal(model.n_wk_, n_wk)
    np.testing.assert_array_equal(model.n_dk_, n_dk)
    for counts in (model.n_k_, model.n_wk_, model.n_dk_):
        assert counts.min() >= 0
        assert counts.sum() == corpus.n_tokens


def test_distributions_are_the_smoothed_counts(fitted):
    model, corpus = fitted.model, fitted.data.corpus
    n_dk, n_wk, n_k = expected_counts(corpus, np.asarray(model.z_))
    beta, alpha = model.beta_, np.asarray(model.alpha_)
    if not isinstance(model.beta, str):
        assert beta == model.beta
    assert alpha.shape == (K,) and np.all(alpha > 0) and beta > 0
    phi, theta = model.topic_word_, model.doc_topic_
    assert phi.shape == (K, V) and theta.shape == (D, K)
    for matrix in (phi, theta):
        assert not np.isnan(matrix).any()
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=SUM_TOL)
    np.testing.assert_allclose(phi, (n_wk.T + beta) / (n_k[:, None] + V * beta),
                               rtol=1e-14, atol=0)
    lengths = np.diff(corpus.indptr)[:, None]
    np.testing.assert_allclose(theta, (n_dk + alpha) / (lengths + alpha.sum()),
                               rtol=1e-14, atol=0)


def test_ids(fitted):
    model, corpus = fitted.model, fitted.data.corpus
    assert len(model.user_ids_) == D and len(model.item_ids_) == V
    np.testing.assert_array_equal(model.user_ids_, 1000 + 7 * np.arange(D))
    assert list(model.item_ids_) == [f"item{w:02d}" for w in range(V)]
    np.testing.assert_array_equal(model.corpus_.words, corpus.words)


def test_loglik_history(fitted):
    history = fitted.model.loglik_
    assert history.size >= 2
    assert np.all(np.diff(history["iteration"]) > 0)
    assert history["iteration"][-1] == fitted.model.n_iter_
    assert fitted.model.n_iter_ >= N_ITER
    # log p(w, z) of discrete outcomes: finite and below 0
    assert np.all(np.isfinite(history["loglik"])) and np.all(history["loglik"] < 0)


def test_transform_is_a_deterministic_mix(fitted):
    model, lists = fitted.model, fitted.data.lists
    first = model.transform(lists[:4])
    assert first.shape == (4, K) and not np.isnan(first).any() and first.min() >= 0
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=0, atol=SUM_TOL)
    np.testing.assert_array_equal(model.transform(lists[:4]), first)


def test_save_load_round_trip(fitted, tmp_path):
    model = fitted.model
    model.save(tmp_path / "m")
    back = LDA.load(tmp_path / "m")
    for name in ("z_", "rng_state_", "alpha_", "user_ids_", "item_ids_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name), err_msg=name)
    assert back.beta_ == model.beta_
    assert back.n_iter_ == model.n_iter_
    assert back.loglik_.dtype == model.loglik_.dtype
    for field in model.loglik_.dtype.names:  # per field: NaN "heldout" equals NaN
        np.testing.assert_array_equal(back.loglik_[field], model.loglik_[field], err_msg=field)
    assert back.get_params() == model.get_params()


def test_resume_after_load_equals_resume_in_memory(fitted, tmp_path):
    model = fitted.fresh()
    model.save(tmp_path / "m")
    back = LDA.load(tmp_path / "m")
    before = np.array(model.z_)
    model.resume(2)
    back.resume(2)
    assert back.n_iter_ == model.n_iter_
    np.testing.assert_array_equal(back.z_, model.z_)
    np.testing.assert_array_equal(back.rng_state_, model.rng_state_)
    np.testing.assert_array_equal(back.alpha_, model.alpha_)
    assert back.beta_ == model.beta_
    assert not np.array_equal(model.z_, before)  # the two sweeps did move topics
    n_dk, n_wk, n_k = expected_counts(fitted.data.corpus, np.asarray(back.z_))
    np.testing.assert_array_equal(back.n_wk_, n_wk)
    np.testing.assert_array_equal(back.n_k_, n_k)


def test_recommend_unseen_items_best_first(fitted):
    model, data = fitted.model, fitted.data
    rows = [0, 1, 2]
    users = [int(model.user_ids_[d]) for d in rows]
    table = recommend(model, users=users, n=5, method="lda")
    # p(item | user) = sum_k theta_uk phi_k,item, from the fitted distributions
    scores = model.doc_topic_[rows] @ model.topic_word_
    for d, user in zip(rows, users):
        got = table.filter(table["user_id"] == user)
        seen = set(data.lists[d])
        index = {item: w for w, item in enumerate(model.item_ids_)}
        unseen = [w for w in range(V) if model.item_ids_[w] not in seen]
        assert got.height == min(5, len(unseen))
        items, score = got["item_id"].to_list(), got["score"].to_numpy()
        assert not seen & set(items)
        assert got["rank"].to_list() == list(range(1, got.height + 1))
        assert np.all(np.diff(score) <= 0)
        np.testing.assert_allclose(score, scores[d, [index[i] for i in items]], rtol=1e-12)
        rest = [w for w in unseen if model.item_ids_[w] not in set(items)]
        if rest:
            assert score[-1] >= scores[d, rest].max()


def test_params_round_trip(fitted, data):
    model = fitted.model
    params = model.get_params()
    clone = LDA(**params)
    assert clone.get_params() == params
    assert params["n_topics"] == K
    if not fitted.way.refit_from_params:
        return
    # the parameters describe the chain: the same settings retrace it bit for bit
    again = clone.fit(data.corpus)
    if again.n_iter_ < model.n_iter_:
        again.resume(model.n_iter_ - again.n_iter_)
    np.testing.assert_array_equal(again.z_, model.z_)
    np.testing.assert_array_equal(again.rng_state_, model.rng_state_)
