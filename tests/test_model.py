"""The estimator: invariants, determinism, continuation, parameters, transform."""
import itertools

import numpy as np
import pytest

from gibbslda import LDA, Corpus, NotFittedError, SweepInfo, _kernels, sampler


def recount(corpus, z, n_topics):
    """n_dk, n_wk and n_k counted from the assignments token by token, here in the test
    (not with the library's counting): user d owns tokens indptr[d]:indptr[d + 1]."""
    users = np.repeat(np.arange(corpus.n_users), np.diff(corpus.indptr))
    n_dk = np.zeros((corpus.n_users, n_topics), dtype=np.int64)
    n_wk = np.zeros((corpus.n_items, n_topics), dtype=np.int64)
    n_k = np.zeros(n_topics, dtype=np.int64)
    np.add.at(n_dk, (users, z), 1)
    np.add.at(n_wk, (corpus.words, z), 1)
    np.add.at(n_k, z, 1)
    return n_dk, n_wk, n_k


def assert_invariants(model, corpus):
    n_dk, n_wk, n_k = model.n_dk_, model.n_wk_, model.n_k_
    for counts in (n_dk, n_wk, n_k):
        assert counts.min() >= 0
        assert counts.sum() == corpus.n_tokens
    np.testing.assert_array_equal(n_dk.sum(1), corpus.lengths)
    np.testing.assert_array_equal(n_wk.sum(1), np.bincount(corpus.words, minlength=corpus.n_items))
    np.testing.assert_array_equal(n_dk.sum(0), n_k)
    np.testing.assert_array_equal(n_wk.sum(0), n_k)
    assert model.z_.shape == corpus.words.shape
    assert 0 <= model.z_.min() and model.z_.max() < model.n_topics
    want_dk, want_wk, want_k = recount(corpus, model.z_, model.n_topics)
    for got, want in zip((n_dk, n_wk, n_k), (want_dk, want_wk, want_k)):
        np.testing.assert_array_equal(got, want)
    # theta and phi from the recount, by their definitions
    alpha, beta = np.asarray(model.alpha_), model.beta_
    np.testing.assert_allclose(model.doc_topic_, (want_dk + alpha)
                               / (corpus.lengths[:, None] + alpha.sum()), rtol=1e-12)
    np.testing.assert_allclose(model.topic_word_, (want_wk.T + beta)
                               / (want_k[:, None] + corpus.n_items * beta), rtol=1e-12)
    for matrix in (model.topic_word_, model.doc_topic_):
        assert np.isfinite(matrix).all()
        np.testing.assert_allclose(matrix.sum(1), 1.0, rtol=1e-12)
    assert np.isfinite(model.loglik_["loglik"]).all()
    # log p(w, z) is a log-probability of a discrete outcome: never above 0.
    assert (model.loglik_["loglik"] < 0).all()


@pytest.mark.parametrize("alpha", [0.1, [0.05, 0.1, 0.2, 0.4, 0.8]])
def test_fit_keeps_invariants(planted, alpha):
    model = LDA(5, alpha=alpha, n_iter=30, random_state=0).fit(planted.corpus)
    assert model.n_iter_ == 30
    assert model.topic_word_.shape == (5, planted.corpus.n_items)
    assert model.doc_topic_.shape == (planted.corpus.n_users, 5)
    assert_invariants(model, planted.corpus)


SEEDS = range(5)


def matched_tv(phi, truth):
    """Total variation of each recovered topic from its true topic, after the best matching."""
    best = min(itertools.permutations(range(truth.shape[0])),
               key=lambda perm: np.abs(phi[list(perm)] - truth).sum())
    return 0.5 * np.abs(phi[list(best)] - truth).sum(1)


def test_planted_topics_are_recovered(planted):
    """Over 5 seeds, recovered topics are on average within total variation 0.04 of the
    truth, and no topic of any seed is beyond 0.10.

    The truth is five disjoint blocks of 20 items; with about 2,700 tokens per topic the
    sampling noise of the empirical phi alone is near 0.03 in TV (measured: 0.028 for every
    seed, spread 0.001), so 0.04 on the mean leaves room for noise but not for a sampler
    whose topics are biased on every seed. One seed stuck with two planted topics merged
    (TV >= 0.5 on two of its topics) moves the mean by >= 0.04 and fails it too.
    """
    tvs = np.array([matched_tv(LDA(5, alpha=0.1, beta=0.01, n_iter=150, random_state=seed)
                               .fit(planted.corpus).topic_word_, planted.topic_word)
                    for seed in SEEDS])
    assert tvs.mean() < 0.04, tvs.mean(1)
    assert tvs.max() < 0.10, tvs


def test_loglik_improves_from_initialisation(planted):
    """Over 3 seeds, log p(w, z) per token gains on average more than 2.5 nats from the
    random start within 40 sweeps.

    Random topics are far from the posterior mode: the observed gain is 2.92 for every seed
    (spread 0.02), so 2.5 is a floor with room for noise; a chain that ignores the user
    counts (topics not tied to users) gains far less.
    """
    gains = []
    for seed in range(3):
        model = LDA(5, n_iter=40, eval_every=10, random_state=seed).fit(planted.corpus)
        history = model.loglik_
        assert history["iteration"].tolist() == [0, 10, 20, 30, 40]
        assert np.all(np.diff(history["seconds"]) >= 0)
        gains.append(history["loglik"][-1] - history["loglik"][0])
    assert np.mean(gains) > 2.5, gains


def test_same_seed_same_model_other_seed_differs(planted):
    a = LDA(5, n_iter=15, random_state=42).fit(planted.corpus)
    b = LDA(5, n_iter=15, random_state=42).fit(planted.corpus)
    c = LDA(5, n_iter=15, random_state=43).fit(planted.corpus)
    np.testing.assert_array_equal(a.z_, b.z_)
    np.testing.assert_array_equal(a.rng_state_, b.rng_state_)
    np.testing.assert_array_equal(a.loglik_["loglik"], b.loglik_["loglik"])
    assert not np.array_equal(a.z_, c.z_)


def test_generator_random_state_is_resolved_in_fit(planted):
    model = LDA(3, n_iter=2, random_state=np.random.default_rng(5))
    assert isinstance(model.random_state, np.random.Generator)  # stored as given
    first = model.fit(planted.corpus).z_.copy()
    again = LDA(3, n_iter=2, random_state=np.random.default_rng(5)).fit(planted.corpus)
    np.testing.assert_array_equal(first, again.z_)


def history_without_time(model):
    return model.loglik_[["iteration", "loglik"]].tolist()


def test_stop_and_resume_equals_uninterrupted(planted):
    whole = LDA(5, n_iter=20, eval_every=3, random_state=9).fit(planted.corpus)
    seen = []

    def stop_at_7(info: SweepInfo):
        seen.append(info)
        return info.iteration < 7

    part = LDA(5, n_iter=20, eval_every=3, random_state=9).fit(planted.corpus,
                                                               callback=stop_at_7)
    assert part.n_iter_ == 7 and [i.iteration for i in seen] == list(range(1, 8))
    assert seen[5].loglik is not None and seen[4].loglik is None
    assert all(i.tokens_per_second > 0 and i.n_iter == 20 for i in seen)
    part.resume()
    assert part.n_iter_ == 20
    for name in ("z_", "n_dk_", "n_wk_", "n_k_", "rng_state_"):
        np.testing.assert_array_equal(getattr(part, name), getattr(whole, name))
    assert history_without_time(part) == history_without_time(whole)


def test_resume_more_iterations_continues_the_chain(planted):
    whole = LDA(4, n_iter=12, random_state=2).fit(planted.corpus)
    part = LDA(4, n_iter=5, random_state=2).fit(planted.corpus).resume(7)
    np.testing.assert_array_equal(part.z_, whole.z_)
    assert part.n_iter_ == 12


# a setting the chain is built with, a new value, and both as the message shows them
CHANGED_SETTINGS = [("n_topics", 6, "6", "5"), ("sampler", "sparse", "'sparse'", "'dense'"),
                    ("n_shards", 2, "2", "1"), ("mh_steps", 3, "3", "2"),
                    ("alpha", 0.2, "0.2", "0.1"), ("alpha", "auto", "'auto'", "0.1"),
                    ("beta", 0.02, "0.02", "0.01"), ("beta", "auto", "'auto'", "0.01"),
                    ("random_state", 4, "4", "3")]


@pytest.mark.parametrize("how", ["fitted", "loaded"])
@pytest.mark.parametrize("name, value, shown, fitted", CHANGED_SETTINGS)
def test_a_changed_setting_is_refused_by_resume_and_save(planted, tmp_path, how, name,
                                                         value, shown, fitted):
    model = LDA(5, alpha=0.1, beta=0.01, n_iter=3, random_state=3,
                sampler="dense").fit(planted.corpus)
    if how == "loaded":
        model.save(tmp_path / "m")
        model = LDA.load(tmp_path / "m")
    z = model.z_.copy()
    before = getattr(model, name)
    setattr(model, name, value)
    message = (f"^{name} is {shown} but this model was fitted with {fitted}; a fitted chain "
               f"keeps the settings it was built with: refit with fit\\(\\), or set {name} "
               f"back to {fitted}$")
    with pytest.raises(ValueError, match=message):
        model.resume(2)
    assert model.n_iter_ == 3
    np.testing.assert_array_equal(model.z_, z)
    with pytest.raises(ValueError, match=message):  # it would write a folder load refuses
        model.save(tmp_path / "changed")
    assert not (tmp_path / "changed").exists()
    setattr(model, name, before)
    assert model.resume(2).n_iter_ == 5


def test_resume_takes_changed_run_settings_and_the_same_chain(planted, tmp_path):
    whole = LDA(5, alpha=0.1, beta=0.01, n_iter=8, random_state=3,
                sampler="dense").fit(planted.corpus)
    model = LDA(5, alpha=0.1, beta=0.01, n_iter=3, random_state=3,
                sampler="dense").fit(planted.corpus)
    model.n_iter, model.n_jobs, model.eval_every = 8, 1, 2  # how long and how: free
    model.sampler = "auto"  # picks "dense" at 5 topics: the same chain
    model.alpha = np.full(5, 0.1)  # the same prior, per topic
    model.resume()
    np.testing.assert_array_equal(model.z_, whole.z_)
    model.save(tmp_path / "m")
    assert LDA.load(tmp_path / "m").resume(1).n_iter_ == 9


def test_unfitted_model_raises():
    model = LDA(3)
    for name in ("topic_word_", "doc_topic_", "n_dk_", "loglik_", "rng_state_"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(model, name)
    with pytest.raises(NotFittedError):
        model.transform([[0, 1]])
    with pytest.raises(NotFittedError):
        model.resume(3)


def test_init_stores_arguments_only():
    model = LDA(0, alpha=-1, beta="x", n_iter=-5, sampler="nope", random_state="bad")
    assert model.n_topics == 0 and model.beta == "x" and model.sampler == "nope"


INVALID_PARAMETERS = [
    ({"n_topics": 0}, ValueError, "n_topics must be >= 1, got 0"),
    ({"n_topics": 2.5}, TypeError, "n_topics must be an integer, got 2.5"),
    ({"alpha": -1.0}, ValueError, "alpha must be finite and > 0, got -1.0"),
    ({"alpha": [0.1, 0.2]}, ValueError, r"one value per topic \(3\), got shape \(2,\)"),
    ({"alpha": [0.1, 0.0, 0.2]}, ValueError, "every alpha must be finite and > 0"),
    ({"alpha": "flat"}, TypeError, "alpha must be a number, an array of 3 numbers or 'auto'"),
    ({"beta": 0.0}, ValueError, "beta must be finite and > 0, got 0.0"),
    ({"beta": float("nan")}, ValueError, "beta must be finite and > 0, got nan"),
    ({"beta": "x"}, TypeError, "beta must be a number or 'auto', got 'x'"),
    ({"optimize_every": 0}, ValueError, "optimize_every must be >= 1, got 0"),
    ({"n_iter": -1}, ValueError, "n_iter must be >= 0, got -1"),
    ({"eval_every": 0}, ValueError, "eval_every must be >= 1, got 0"),
    ({"sampler": "gpu"}, ValueError,
     r"sampler must be one of \['auto', 'dense', 'sparse', 'mh', 'warp', 'vector'\], got 'gpu'"),
    ({"n_shards": 0}, ValueError, "n_shards must be >= 1, got 0"),
    ({"n_jobs": 0}, ValueError, "n_jobs must be >= 1, got 0"),
    ({"mh_steps": 0}, ValueError, "mh_steps must be >= 1, got 0"),
    ({"random_state": -3}, ValueError, "random_state must be >= 0, got -3"),
    ({"random_state": "seed"}, TypeError, "random_state must be an int, a numpy Generator"),
]


@pytest.mark.parametrize("kwargs,error,match", INVALID_PARAMETERS)
def test_invalid_parameter_is_named(kwargs, error, match):
    params = {"n_topics": 3, "n_iter": 2} | kwargs
    with pytest.raises(error, match=match):
        LDA(**params).fit([[0, 1, 2], [1, 2]])


@pytest.mark.parametrize("kwargs,error,match", INVALID_PARAMETERS)
def test_check_params_refuses_what_fit_refuses_without_fitting(kwargs, error, match):
    model = LDA(**({"n_topics": 3, "n_iter": 2} | kwargs))
    with pytest.raises(error, match=match):
        model.check_params()
    assert not hasattr(model, "seed_entropy_")


def test_check_params_returns_the_estimator_and_leaves_a_generator_alone():
    generator = np.random.default_rng(4)
    model = LDA(3, random_state=generator)
    assert model.check_params() is model
    assert generator.integers(0, 2**62) == np.random.default_rng(4).integers(0, 2**62)


def test_invalid_transform_parameters(planted):
    model = LDA(3, n_iter=2, random_state=0).fit(planted.corpus)
    model.transform_burn_in = 60
    with pytest.raises(ValueError, match="transform_burn_in must be < transform_iter"):
        model.transform(planted.corpus)


def test_transform_new_users(planted):
    model = LDA(5, n_iter=100, random_state=4).fit(planted.corpus)
    theta = model.transform(planted.corpus)
    assert theta.shape == (planted.corpus.n_users, 5)
    np.testing.assert_allclose(theta.sum(1), 1.0)
    np.testing.assert_array_equal(theta, model.transform(planted.corpus))  # deterministic
    # Folding the training users back in recovers their topic mix: mean TV below 0.1 (the
    # planted topics are disjoint, so a user's items pin down its topics up to the prior).
    tv = 0.5 * np.abs(theta - model.doc_topic_).sum(1)
    assert tv.mean() < 0.1


def test_transform_unknown_items_give_prior_mean():
    corpus = Corpus.from_lists([["a", "b", "a"], ["b", "c"]])
    model = LDA(2, alpha=[0.2, 0.6], n_iter=5, random_state=0).fit(corpus)
    theta = model.transform(Corpus.from_lists([["zzz"], ["a", "zzz"]]))
    np.testing.assert_allclose(theta[0], [0.25, 0.75])
    assert theta.shape == (2, 2)
    np.testing.assert_allclose(model.transform([["zzz"], ["yyy"]]), [[0.25, 0.75]] * 2)


def test_fold_in_rejects_burn_in_not_below_iterations():
    with pytest.raises(ValueError, match="burn_in < n_iter"):
        sampler.fold_in([0, 1], [0], np.ones((2, 1)), 0.1, n_iter=5, burn_in=5)


def test_kernels_compile_once_for_odd_inputs(tmp_path):
    class Csr:  # a duck-typed matrix with unusual dtypes
        indptr = np.array([0, 2, 3], dtype=np.int32)
        indices = np.array([0, 3, 1], dtype=np.uint16)
        data = np.array([1, 2, 5], dtype=np.uint8)

    LDA(2, n_iter=2, random_state=0).fit(Csr()).transform(Csr())
    LDA(3, alpha=np.array([1, 2, 3], dtype=np.int64), beta=1, n_iter=2,
        random_state=np.uint32(3)).fit([["x", "y"], ["y"]]).transform([["y"]])
    for name in ("dense", "sparse", "mh"):  # "vector" takes K <= 64: test_vector
        LDA(70, sampler=name, n_shards=2, n_iter=2, random_state=0).fit(Csr()).save(
            tmp_path / name)
        LDA.load(tmp_path / name).resume(2)
    for kernel in (_kernels.sweep_serial, _kernels.sweep_sharded, _kernels.init_topics, _kernels.log_joint,
                   _kernels.fold_in):
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)
