"""Numerical safety: the GIBBSLDA_CHECK invariant mode, and extreme priors and sizes."""
import numpy as np
import pytest

from gibbslda import LDA, sampler
from gibbslda.evaluate import completion_log_likelihood, split_users

SAMPLERS = ["dense", "sparse", "mh", "vector"]


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("n_shards", [1, 3])
def test_check_mode_passes_every_sweep(planted, monkeypatch, name, n_shards):
    monkeypatch.setenv("GIBBSLDA_CHECK", "1")
    calls = []
    real = sampler.check_state
    monkeypatch.setattr(sampler, "check_state", lambda s: (calls.append(1), real(s)))
    LDA(7, alpha="auto", beta="auto", sampler=name, n_shards=n_shards, n_iter=12,
        optimize_burn_in=4, optimize_every=4, random_state=0).fit(planted.corpus)
    assert len(calls) == 12  # checked after every sweep


@pytest.mark.parametrize("name", SAMPLERS)
def test_check_state_finds_broken_counts(planted, name):
    corpus = planted.corpus
    state = sampler.init_state(corpus.indptr, corpus.words, 6, corpus.n_items, seed=0,
                               sampler=name)
    sampler.sweep(state)
    sampler.check_state(state)
    state.n_k[2] += 1
    with pytest.raises(RuntimeError, match="topic totals"):
        sampler.check_state(state)
    state.n_k[2] -= 1
    if name == "sparse":
        wc_ptr, wc_val, wc_len = state.layout["wc"]
        w = int(np.argmax(wc_len))
        row = slice(wc_ptr[w], wc_ptr[w] + wc_len[w])
        wc_val[row] = wc_val[row][::-1].copy()  # same counts, wrong order
        with pytest.raises(RuntimeError, match="out of order"):
            sampler.check_state(state)
    elif name == "mh":
        state.layout["wi"][1][0] = (state.layout["wi"][1][0] + 1) % 6
        with pytest.raises(RuntimeError, match="mirror"):
            sampler.check_state(state)
    else:
        state.n_wk[0, 0] += 1
        with pytest.raises(RuntimeError, match="item x topic counts"):
            sampler.check_state(state)


def _finite(model):
    for name in ("topic_word_", "doc_topic_", "alpha_"):
        value = getattr(model, name)
        assert np.all(np.isfinite(value)), name
    assert np.isfinite(model.beta_) and np.all(np.isfinite(model.loglik_["loglik"]))
    np.testing.assert_allclose(model.topic_word_.sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(model.doc_topic_.sum(axis=1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("alpha,beta", [(1e-6, 0.01), (0.1, 1e-6), (1e-6, 1e-6),
                                        (1e3, 1e3)])
def test_extreme_priors_stay_finite(planted, monkeypatch, name, alpha, beta):
    monkeypatch.setenv("GIBBSLDA_CHECK", "1")
    split = split_users(planted.corpus, test_fraction=0.1, seed=0)
    model = LDA(6, alpha=alpha, beta=beta, sampler=name, n_iter=10,
                random_state=0).fit(split.train)
    _finite(model)
    assert np.isfinite(completion_log_likelihood(model, split.observed, split.hidden))


@pytest.mark.parametrize("name", SAMPLERS)
def test_more_topics_than_tokens(monkeypatch, name):
    monkeypatch.setenv("GIBBSLDA_CHECK", "1")
    model = LDA(50, sampler=name, alpha="auto", beta="auto", n_iter=8, optimize_burn_in=2,
                optimize_every=2, random_state=1).fit([["a", "b"], ["b", "c", "a"], ["d"]])
    _finite(model)
    assert np.all(model.n_k_ >= 0) and model.n_k_.sum() == 6
    assert np.all(np.isfinite(model.transform([["a"], ["zzz"]])))
