"""The small-K vectorised sampler (``sampler="vector"``, :mod:`gibbslda._kernels.vector`):
its chain against the enumerated posterior at K that fill several vector lanes, resume,
its limits and its compiled signatures.

It is not bit-equal to the reference (float32 terms, topics drawn in strided order), so
test_reference does not apply; test_posterior, test_samplers (held-out quality against
dense, thread counts, sharded resume), test_contract and the other sampler lists run it too.
"""
import numpy as np
import pytest

from gibbslda import LDA, sampler
from gibbslda._kernels import vector
from tests.conftest import csr_from_docs
from tests.stats import chi2_critical, chi_square, exact_posterior, state_index

N_SAMPLES = 30_000
THIN = 5  # sweeps between recorded states, as test_posterior


# K = 9: two rows of 8 lanes, 7 of padding; K = 20: three rows, the last one half full;
# K = 64: the largest, one token, so the posterior is the conditional itself
# (proportional to alpha_k). Priors differ per topic so that a topic drawn from the wrong
# lane or row shows.
@pytest.mark.parametrize("docs,n_items,n_topics,alpha,beta", [
    ([[0, 1], [1]], 2, 9, list(np.linspace(0.2, 1.8, 9)), 0.3),
    ([[0, 0]], 1, 20, list(np.geomspace(0.05, 2.0, 20)), 0.5),
    ([[0]], 1, 64, list(np.linspace(0.1, 6.4, 64)), 0.1),
])
def test_chain_matches_exact_posterior_across_lanes(docs, n_items, n_topics, alpha, beta):
    """Chi-square of thinned chain states against the enumerated posterior at p < 0.001,
    as test_posterior.test_chain_matches_exact_posterior (729, 400 and 64 states; bins
    expected below 5 pooled), and total variation below 1.25 times 0.5 sqrt(2 S / (pi n)),
    the most that sampling noise alone gives on S states (0.078, 0.058 and 0.023 here).

    float32 moves each draw's law by at most about K 2**-24 in total variation (4e-6 at
    K = 64: a running sum absorbs a term below 2**-24 of itself, see the kernel's
    docstring), and these chains forget their state within a sweep or two, so their law
    is within about that of the posterior. A change e of the probabilities adds about
    n e**2 / p (under 1e-2 here) to the chi-square statistic, against critical values of
    100-770: the exact test applies with its tolerance unchanged. Measured over seeds 2026, 1, 2: chi-square 0.81-0.88,
    0.77-0.83 and 0.50-0.72 of the critical value, TV 0.051-0.056, 0.034-0.036 and
    0.016-0.017; the dense kernel scores 0.78-0.91, 0.77-0.87 and 0.46-0.70, TV
    0.053-0.058, 0.034-0.036, 0.015-0.019 on the same cases.
    """
    indptr, words = csr_from_docs(docs)
    state = sampler.init_state(indptr, words, n_topics, n_items, alpha=alpha, beta=beta,
                               seed=2026, sampler="vector")
    exact = exact_posterior(docs, n_topics, n_items, alpha, beta)
    observed = np.zeros(n_topics ** state.n_tokens)
    sampler.sweep(state, 100)
    for _ in range(N_SAMPLES):
        sampler.sweep(state, THIN)
        observed[state_index(state.z, n_topics)] += 1
    stat, df = chi_square(observed, exact * N_SAMPLES)
    assert stat < chi2_critical(df), f"chi-square {stat:.1f} on {df} df"
    tv = 0.5 * np.abs(observed / N_SAMPLES - exact).sum()
    noise = 0.5 * np.sqrt(2 * exact.size / (np.pi * N_SAMPLES))
    assert tv < 1.25 * noise, f"total variation {tv:.4f}, noise level {noise:.4f}"


def test_save_load_resume_equals_uninterrupted(planted, tmp_path):
    """One shard (test_samplers covers three): a saved chain resumes bit for bit."""
    def fingerprint(model):
        return model.z_.tobytes() + model.n_wk_.tobytes() + model.rng_state_.tobytes()

    params = dict(sampler="vector", n_iter=8, eval_every=3, random_state=5)
    whole = LDA(12, **params).fit(planted.corpus)
    LDA(12, **params).fit(planted.corpus, callback=lambda info: info.iteration < 3).save(
        tmp_path / "m")
    resumed = LDA.load(tmp_path / "m").resume()
    assert resumed.state_.sampler == "vector"
    assert fingerprint(resumed) == fingerprint(whole)


def test_counts_and_draws_stay_in_range_at_every_width(planted):
    """K = 1, 7, 8, 9, 63, 64 (a lane of padding only, full rows, a row of one topic):
    counts equal those rebuilt from z, and every topic is drawn."""
    corpus = planted.corpus
    for n_topics in (1, 7, 8, 9, 63, 64):
        state = sampler.init_state(corpus.indptr, corpus.words, n_topics, corpus.n_items,
                                   seed=1, sampler="vector", n_shards=2)
        sampler.sweep(state, 3)
        sampler.check_state(state)
        assert np.bincount(state.z, minlength=n_topics).min() > 0, n_topics


def test_more_than_64_topics_and_float32_range_are_refused():
    indptr, words = np.array([0, 2, 3]), np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"sampler 'vector' takes at most 64 topics, got "
                                         r"n_topics=65: use sampler='dense' or 'auto'"):
        sampler.init_state(indptr, words, 65, 2, sampler="vector", seed=0)
    with pytest.raises(ValueError, match="at most 64 topics"):
        LDA(100, sampler="vector", n_iter=1).fit([[0, 1], [1]])
    state = sampler.init_state(indptr, words, 3, 2, alpha=1e-20, beta=1e-20, seed=0,
                               sampler="vector")
    with pytest.raises(ValueError, match=r"computes in float32.*outside \[1e-30, 1e30\]: "
                                         r"use sampler='dense'"):
        sampler.sweep(state)


def test_vector_kernels_compile_once(tmp_path):
    """Odd input dtypes, shards, learned priors, save, load and resume: one signature."""
    lists = [["x", "y", "z"], ["y"], ["z", "x"]]
    LDA(3, sampler="vector", n_iter=2, random_state=np.uint32(3),
        alpha=np.array([1, 2, 3], dtype=np.int64), beta=1).fit(lists).save(tmp_path / "m")
    LDA.load(tmp_path / "m").resume(2)
    LDA(2, sampler="vector", n_shards=2, alpha="auto", beta="auto", n_iter=3,
        optimize_burn_in=1, optimize_every=1, random_state=0).fit(lists)
    for kernel in (vector.sweep_serial, vector.sweep_sharded):  # vector_cell: inlined callee
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)
