"""Held-out evaluation during training: the seeded subsample of held-out users, scoring
from the chain's counts in chunks, its law against an enumerated posterior, and the saved
setting."""
import itertools
import json
from math import lgamma, log

import numba
import numpy as np
import pytest

from gibbslda import LDA, _rng, heldout, sampler
from gibbslda._kernels import heldout as _heldout_kernels
from gibbslda.corpus import Corpus
from gibbslda.evaluate import completion_log_likelihood, split_users
from tests.reference import csr


@pytest.fixture(scope="module")
def split(planted):
    return split_users(planted.corpus, test_fraction=0.3, hidden_fraction=0.5, seed=3)


def rows_of(corpus: Corpus, users) -> Corpus:
    """The users ``users`` (indices) of a corpus, in that order, written out."""
    lists = [corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]].tolist() for d in users]
    indptr, words = csr(lists)
    return Corpus(indptr, words.astype(np.int32), corpus.user_ids[users], corpus.item_ids)


def test_subsample_is_seeded_sorted_and_sized():
    a = heldout.subsample(1000, 50, entropy=7)
    assert a.shape == (50,) and np.all(np.diff(a) > 0) and a.max() < 1000
    np.testing.assert_array_equal(a, heldout.subsample(1000, 50, entropy=7))
    assert not np.array_equal(a, heldout.subsample(1000, 50, entropy=8))
    assert heldout.subsample(50, 50, entropy=7) is None  # all of them
    assert heldout.subsample(50, None, entropy=7) is None


def test_training_scores_its_subsample(split):
    """The recorded figure is completion_log_likelihood on the subsample's users, the same
    users at every evaluation and in every fit with that seed."""
    kwargs = dict(n_iter=6, eval_every=3, random_state=5, heldout_users=20)
    parts = (split.observed, split.hidden)
    model = LDA(5, **kwargs).fit(split.train, heldout=parts)
    history = model.loglik_
    assert history["iteration"].tolist() == [0, 3, 6]
    assert np.all(np.isfinite(history["heldout"]))
    users = heldout.subsample(split.observed.n_users, 20, model.seed_entropy_)
    assert users.shape == (20,) and split.observed.n_users > 20
    assert history["heldout"][-1] == completion_log_likelihood(
        model, rows_of(split.observed, users), rows_of(split.hidden, users))
    assert history["heldout"][-1] != completion_log_likelihood(model, *parts)
    again = LDA(5, **kwargs).fit(split.train, heldout=parts)
    fields = ["iteration", "loglik", "heldout"]  # "seconds" is the clock's
    assert again.loglik_[fields].tolist() == history[fields].tolist()


def test_every_user_when_asked(split):
    model = LDA(5, n_iter=4, random_state=5, heldout_users=None).fit(
        split.train, heldout=(split.observed, split.hidden))
    assert model.loglik_["heldout"][-1] == completion_log_likelihood(
        model, split.observed, split.hidden)


def test_resume_subsamples_anew_when_the_size_changes(split):
    parts = (split.observed, split.hidden)
    model = LDA(5, n_iter=4, random_state=5, heldout_users=10).fit(split.train,
                                                                   heldout=parts)
    model.heldout_users = None
    model.resume(1)
    assert model.loglik_["heldout"][-1] == completion_log_likelihood(model, *parts)


def test_chunks_and_the_phi_table_leave_the_figure_alone(split):
    """One user a chunk, and a one-item phi table (every other item's phi found in its
    row), give the default's figure bit for bit."""
    model = LDA(5, n_iter=10, random_state=2).fit(split.train)
    parts = model._heldout_parts((split.observed, split.hidden), every=True)

    def score(**kwargs):
        return heldout.completion_from_state(
            model.state_, parts, n_iter=12, burn_in=3,
            rng=_rng.seed_streams(model.seed_entropy_, _rng.FOLD_IN, 1), **kwargs)
    default = score()
    assert score(chunk_cells=1) == default
    assert score(table_cells=1) == default
    assert len(list(heldout._chunks(parts, 5, 1))) == parts.n_users


def exact_predictive(doc, phi, alpha):
    """p(w | doc) = sum_k E[theta_k | doc] phi_kw for every w, by enumerating z."""
    n_topics = len(alpha)
    weights, means = [], []
    for z in itertools.product(range(n_topics), repeat=len(doc)):
        counts = np.bincount(z, minlength=n_topics)
        log_w = sum(np.log(phi[k, w]) for k, w in zip(z, doc))
        log_w += sum(lgamma(counts[k] + alpha[k]) - lgamma(alpha[k])
                     for k in range(n_topics))
        weights.append(log_w)
        means.append((counts + alpha) / (len(doc) + alpha.sum()))
    weights = np.exp(np.array(weights) - max(weights))
    theta = (weights[:, None] * np.array(means)).sum(0) / weights.sum()
    return theta @ phi


@pytest.mark.parametrize("beta", [0.05, 2.0])  # 2.0: most mass off the counts
def test_fold_in_by_buckets_matches_the_exact_predictive(beta):
    """Each hidden item's log p(w | observed) against the enumerated posterior predictive.

    Tolerance 0.015 in log p: 20,000 sweeps with an autocorrelation time of a few sweeps
    give each theta component a standard error near 0.001-0.002 (each sweep's estimate
    lies in [0, 1], the argument of test_posterior), so p (0.2-0.3 here) is within about
    0.004 (1.5%, 0.015 in log) at three standard errors. Scoring with the prior mean
    instead of the fold-in misses by 0.05-0.4.
    """
    # a chain over 4 items and 3 topics whose counts make topics differ clearly
    train = [[0, 0, 0, 1], [1, 1, 2, 0], [2, 2, 3, 3], [3, 2, 1]]
    z = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 1, 2, 1]
    indptr, words = csr(train)
    alpha = np.array([0.3, 0.6, 0.9])
    state = sampler.restore_state(indptr, words, np.array(z), 3, 4, alpha=alpha, beta=beta,
                                  rng=_rng.seed_streams(0, 0, 1), sampler="sparse",
                                  n_shards=1)
    n_wk = state.item_topic_counts()
    phi = (n_wk.T + beta) / (state.n_k[:, None] + 4 * beta)
    doc = [0, 1, 1, 2]
    expected = np.log(exact_predictive(doc, phi, alpha))
    parts = heldout.prepare(csr([doc] * 4), csr([[0], [1], [2], [3]]), 4)
    got = []
    for w in range(4):  # one user a call: its log p is the mean
        one = heldout.prepare(csr([doc]), csr([[w]]), 4)
        got.append(heldout.completion_from_state(state, one, n_iter=20_000, burn_in=100,
                                                 rng=_rng.seed_streams(w, 1, 1)))
    np.testing.assert_allclose(got, expected, atol=0.015)
    assert parts.n_users == 4 and parts.items.tolist() == [0, 1, 2, 3]


def test_a_user_without_observed_items_scores_the_prior_mean(split):
    model = LDA(5, n_iter=5, random_state=1).fit(split.train)
    observed = Corpus(np.array([0, 0]), np.zeros(0, np.int32), np.array(["new"]),
                      split.train.item_ids)
    hidden = Corpus(np.array([0, 2]), np.array([3, 7], np.int32), np.array(["new"]),
                    split.train.item_ids)
    theta = model.alpha_ / model.alpha_.sum()
    phi = model.topic_word_
    want = (log(theta @ phi[:, 3]) + log(theta @ phi[:, 7])) / 2
    assert completion_log_likelihood(model, observed, hidden) == pytest.approx(want,
                                                                               rel=1e-12)


@pytest.mark.parametrize("value,error,match", [
    (0, ValueError, "heldout_users must be >= 1, got 0"),
    (2.5, TypeError, "heldout_users must be an integer"),
])
def test_bad_heldout_users(split, value, error, match):
    with pytest.raises(error, match=match):
        LDA(5, heldout_users=value).fit(split.train)


def test_parts_of_different_users_are_refused(split):
    with pytest.raises(ValueError, match="observed has .* users but hidden has"):
        LDA(5, n_iter=1).fit(split.train, heldout=(split.observed, split.train))


def test_saved_setting_and_old_folders(split, tmp_path):
    """A non-default heldout_users is saved; the default is left out of model.json (a
    gibbslda that predates it loads the folder), and a folder without it loads."""
    model = LDA(5, n_iter=2, random_state=0, heldout_users=7).fit(split.train)
    model.save(tmp_path / "a")
    assert LDA.load(tmp_path / "a").heldout_users == 7
    model.heldout_users = LDA().heldout_users  # the default
    model.save(tmp_path / "b")
    meta = json.loads((tmp_path / "b" / "model.json").read_text())
    assert "heldout_users" not in meta["params"]
    assert LDA.load(tmp_path / "b").get_params() == model.get_params()


def test_same_figure_on_one_thread_and_all(split):
    """Users fold in on all threads, each on its own stream: the thread count never
    changes the figure."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs one thread here")
    figures = []
    for n_jobs in (1, None):
        model = LDA(5, n_iter=3, random_state=4, n_jobs=n_jobs).fit(
            split.train, heldout=(split.observed, split.hidden))
        figures.append(model.loglik_["heldout"].tolist())
    assert figures[0] == figures[1]


def test_heldout_kernels_compile_once(split):
    """Odd inputs (lists of ids, uint8 counts), every sampler, learned priors: one
    signature each."""
    lists = [["x", "y", "z", "x"], ["y", "z"], ["z", "x", "y"]]
    for name in ("dense", "sparse", "mh", "warp", "vector"):
        LDA(3, sampler=name, n_iter=2, random_state=np.uint32(2),
            alpha=np.array([1, 2, 3], dtype=np.int64), beta=1, eval_every=1).fit(
            lists, heldout=(lists[:2], [["y"], ["x"]]))
    model = LDA(4, alpha="auto", beta="auto", n_iter=3, optimize_burn_in=1,
                optimize_every=1, random_state=0).fit(split.train)
    completion_log_likelihood(model, split.observed, split.hidden)
    for kernel in (_heldout_kernels.completion, _heldout_kernels.stream_key):
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)


def test_a_refit_with_bad_heldout_parts_leaves_the_model_as_it_was(planted, split):
    """fit checks the held-out parts before it sets anything: a refit that fails on them
    keeps the first fit's corpus, seed and chain together."""
    model = LDA(3, n_iter=2, random_state=0).fit(split.train)
    corpus, state, entropy = model.corpus_, model.state_, model.seed_entropy_
    with pytest.raises(TypeError, match="heldout must be the pair"):
        model.fit(planted.corpus, heldout="not parts")
    assert model.corpus_ is corpus and model.state_ is state
    assert model.seed_entropy_ == entropy
