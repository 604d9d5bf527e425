"""Exact-posterior tests: on corpora small enough to enumerate every assignment, the chain's
empirical distribution over z must match p(z | w) computed exactly."""
import itertools
from math import lgamma

import numba
import numpy as np
import pytest

from gibbslda import sampler
from tests import reference
from tests.conftest import csr_from_docs
from tests.stats import chi2_critical, chi_square, exact_posterior, state_index, stationary

N_SAMPLES = 30_000
THIN = 5  # sweeps between recorded states


@pytest.mark.parametrize("name", ["dense", "sparse", "mh", "vector"])
@pytest.mark.parametrize("docs,n_items,n_topics,alpha,beta", [
    ([[0, 1, 0], [1, 2]], 3, 2, [0.5, 0.5], 0.5),
    ([[0, 1, 0], [1, 2]], 3, 3, [0.2, 0.6, 1.5], 0.3),
    ([[0, 0, 1, 1]], 2, 3, [0.1, 0.1, 0.1], 0.05),
])
def test_chain_matches_exact_posterior(name, docs, n_items, n_topics, alpha, beta):
    """Chi-square goodness of fit of thinned chain states against the enumerated posterior.

    Tolerance: reject at p < 0.001 (Wilson-Hilferty critical value). States are thinned by
    5 sweeps; on these 4-5 token corpora the chain forgets its state within a sweep or two,
    so thinned states are close to independent (a residual correlation would only make the
    test stricter, never let a wrong sampler pass). The seed is fixed, so the outcome is
    deterministic; a sampler with one count not decremented scores in the thousands.
    """
    indptr, words = csr_from_docs(docs)
    state = sampler.init_state(indptr, words, n_topics, n_items, alpha=alpha, beta=beta,
                               seed=2024, sampler=name)
    exact = exact_posterior(docs, n_topics, n_items, alpha, beta)
    observed = visits(state, N_SAMPLES, THIN)
    stat, df = chi_square(observed, exact * N_SAMPLES)
    assert stat < chi2_critical(df), f"chi-square {stat:.1f} on {df} df"
    tv = 0.5 * np.abs(observed / N_SAMPLES - exact).sum()
    # Expected TV from sampling noise alone is at most 0.5 * sqrt(2 S / (pi n)) = 0.036 for
    # S = 243 states and n = 30k samples (observed: 0.007-0.026); 0.06 leaves room for the
    # residual autocorrelation. The mutants we tried score 0.30-0.68.
    assert tv < 0.06, f"total variation {tv:.4f}"


def visits(state, n_samples, thin, burn_in=100):
    """How often the chain's z sits in each assignment (base-K index), recording every
    ``thin`` sweeps after ``burn_in`` sweeps."""
    observed = np.zeros(state.n_topics ** state.n_tokens)
    sampler.sweep(state, burn_in)
    for _ in range(n_samples):
        sampler.sweep(state, thin)  # one argument check for ``thin`` sweeps
        observed[state_index(state.z, state.n_topics)] += 1
    return observed


# Packed rows at their capacity min(K, frequency), K = 4: item 0 has 6 tokens, so its row
# can hold all K topics; item 1 has 2, so its row is full at 2 topics (capacity < K). The
# priors spread topics enough that both happen often: under the exact posterior item 0
# holds 4 distinct topics with probability 0.145 and item 1 holds 2 with 0.570.
CAPACITY = dict(docs=[[0, 0, 1], [0, 0, 1], [0, 0]], n_topics=4, n_items=2,
                alpha=[3.0, 4.0, 5.0, 6.0], beta=0.5)


@pytest.fixture(scope="module")
def capacity_posterior():
    """The exact posterior over the 4**8 assignments, each assignment's item x topic table
    (as a cell id) and whether each item's row is full."""
    docs, n_topics = CAPACITY["docs"], CAPACITY["n_topics"]
    words = [w for doc in docs for w in doc]
    tables, cell, full = {}, [], []
    for z in itertools.product(range(n_topics), repeat=len(words)):
        pairs = tuple(sorted(zip(words, z)))  # the (item, topic) multiset: the table
        cell.append(tables.setdefault(pairs, len(tables)))
        full.append([len({k for v, k in pairs if v == w}) == min(n_topics, words.count(w))
                     for w in range(CAPACITY["n_items"])])
    return exact_posterior(**CAPACITY), np.array(cell), np.array(full)


@pytest.mark.slow
def test_sparse_chain_matches_exact_posterior_at_packed_capacity(capacity_posterior):
    """8 tokens at K = 4 (65,536 assignments), 30,000 states thinned by 2 sweeps.

    Tolerance: chi-square at p < 0.001 with bins expected below 5 pooled, on the states
    (371 bins) and on the item x topic tables, the packed rows' content (737 bins);
    autocorrelation as in test_chain_matches_exact_posterior (measured over four seeds:
    356-416 and 721-743, critical 461 and 860). A q bucket that skips the 4th entry of a
    full row scores 1,005 on the tables. Both rows' full states must also be visited at
    their posterior frequency within 0.02 (binomial sd near 0.002 at 30k, inflated by
    autocorrelation).
    """
    exact, cell, full = capacity_posterior
    n = 30_000
    indptr, words = csr_from_docs(CAPACITY["docs"])
    state = sampler.init_state(indptr, words, CAPACITY["n_topics"], CAPACITY["n_items"],
                               alpha=CAPACITY["alpha"], beta=CAPACITY["beta"], seed=5,
                               sampler="sparse")
    observed = visits(state, n, thin=2)
    stat, df = chi_square(observed, exact * n)
    assert stat < chi2_critical(df), f"states: chi-square {stat:.1f} on {df} df"
    stat, df = chi_square(np.bincount(cell, observed), np.bincount(cell, exact) * n)
    assert stat < chi2_critical(df), f"item x topic tables: chi-square {stat:.1f} on {df} df"
    np.testing.assert_allclose(observed @ full / n, exact @ full, atol=0.02)


# The sharded schedule on 6 tokens at K = 2 (64 assignments), 2 shards: users [0, 1, 2] and
# [2, 1, 0] (one per shard), items {0} and {1, 2} (one block each), so every cell of both
# rounds holds tokens. Within a round each shard sees only its own changes to n_k.
SHARDED = dict(docs=[[0, 1, 2], [2, 1, 0]], n_topics=2, n_items=3, alpha=[0.3, 0.6],
               beta=0.2)


@pytest.fixture
def one_thread():
    """Sharded sweeps on one thread: results do not depend on the thread count (see
    test_samplers), and a 2-core runner launches one-thread parallel regions faster."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dense", "sparse", "mh", "vector"])
def test_sharded_chain_matches_its_exact_law(one_thread, name):
    """The sharded chain samples the stationary law of its schedule, enumerated exactly.

    Stale n_k within a round (the schedule's one approximation, see _kernels.gibbs) makes
    that law differ from the posterior: on this corpus TV(law, posterior) = 0.089 for dense
    and sparse (the same conditional) and 0.058 for mh, and against the posterior these
    chains score chi-square 366, 376 and 205 on 58 df, critical 97, so no exact-posterior
    test can hold for them. Against the exact law of their own schedule
    (reference.sweep_matrix, pure Python) they must pass at p < 0.001: 6,000 states thinned
    by 3 sweeps, bins expected below 5 pooled (measured 64, 49 and 67 on 60 df, critical
    100). A kernel that loses or double-counts a shard's changes to n_k, or runs a cell in
    the wrong round, samples another law.
    """
    n, thin = 6_000, 3
    law = stationary(reference.sweep_matrix(
        **SHARDED, sampler="mh" if name == "mh" else "dense", n_shards=2))
    indptr, words = csr_from_docs(SHARDED["docs"])
    state = sampler.init_state(indptr, words, SHARDED["n_topics"], SHARDED["n_items"],
                               alpha=SHARDED["alpha"], beta=SHARDED["beta"], seed=3,
                               sampler=name, n_shards=2)
    observed = visits(state, n, thin)
    stat, df = chi_square(observed, law * n)
    assert stat < chi2_critical(df), f"chi-square {stat:.1f} on {df} df"


def test_fold_in_matches_exact_posterior_mean():
    """theta from fold-in equals E[(n_k + alpha_k) / (n + sum alpha) | w, phi], enumerated.

    Tolerance 0.01 absolute: each sweep's estimate lies in [0, 1] (sd < 0.5) and 20,000
    sweeps with an autocorrelation time of a few sweeps give a standard error near 0.005.
    """
    doc = [0, 1, 1, 2, 0]
    phi = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.3, 0.5, 0.2]])
    alpha = np.array([0.3, 0.6, 0.9])
    n_topics, a_sum = 3, alpha.sum()
    weights, means = [], []
    for z in itertools.product(range(n_topics), repeat=len(doc)):
        counts = np.bincount(z, minlength=n_topics)
        log_w = sum(np.log(phi[k, w]) for k, w in zip(z, doc))
        log_w += sum(lgamma(counts[k] + alpha[k]) - lgamma(alpha[k]) for k in range(n_topics))
        weights.append(log_w)
        means.append((counts + alpha) / (len(doc) + a_sum))
    weights = np.exp(np.array(weights) - max(weights))
    expected = (weights[:, None] * np.array(means)).sum(0) / weights.sum()
    indptr, words = csr_from_docs([doc])
    theta = sampler.fold_in(indptr, words, phi, alpha, n_iter=20_000, burn_in=100, seed=11)
    np.testing.assert_allclose(theta[0], expected, atol=0.01)
