"""Learned priors are the default: ``LDA()`` learns alpha and beta after the burn-in, to the
fixed point a plain formula gives for the chain's counts; explicit numbers still fix them;
a model saved with fixed priors (as every model was before) loads and resumes with them."""
import json

import numpy as np
import pytest

from gibbslda import LDA
from gibbslda.synthetic import planted_corpus

special = pytest.importorskip("scipy.special")

PLANTED_ALPHA = np.array([0.6, 0.3, 0.15, 0.05])


@pytest.fixture(scope="module")
def asymmetric():
    """600 users drawn with a known asymmetric alpha over 4 topics of 20 items each."""
    return planted_corpus(600, 80, 4, mean_length=20, alpha=PLANTED_ALPHA, zipf=0.0,
                          seed=3).corpus


def minka_alpha(n_dk: np.ndarray, start: float = 0.1) -> np.ndarray:
    """The alpha maximising p(z | alpha) for the counts ``n_dk`` (D x K): Minka's
    fixed point written out on the full matrix with scipy's digamma, run to 1e-13."""
    n_dk = n_dk.astype(np.float64)
    lengths = n_dk.sum(axis=1)
    alpha = np.full(n_dk.shape[1], start)
    for _ in range(100_000):
        a0 = alpha.sum()
        new = alpha * ((special.digamma(n_dk + alpha) - special.digamma(alpha)).sum(axis=0)
                       / (special.digamma(lengths + a0) - special.digamma(a0)).sum())
        if np.max(np.abs(new - alpha) / alpha) < 1e-13:
            return new
        alpha = new
    raise AssertionError("the reference fixed point did not converge")


def minka_beta(n_wk: np.ndarray, start: float = 0.01) -> float:
    """The symmetric beta maximising p(w | z, beta) for the counts ``n_wk`` (V x K)."""
    n_wk = n_wk.astype(np.float64)
    v, n_k = n_wk.shape[0], n_wk.sum(axis=0)
    beta = start
    for _ in range(100_000):
        new = beta * ((special.digamma(n_wk + beta) - special.digamma(beta)).sum()
                      / (v * (special.digamma(n_k + v * beta)
                              - special.digamma(v * beta)).sum()))
        if abs(new - beta) / beta < 1e-13:
            return new
        beta = new
    raise AssertionError("the reference fixed point did not converge")


def test_the_default_learns_both_priors_after_the_burn_in(asymmetric):
    """Before ``optimize_burn_in`` (50) sweeps the priors are their starts (0.1, 0.01);
    at sweep 60 (learned at 50 and 60) they are the fixed point for the chain's counts.

    Tolerance 1e-4 relative: the library stops at a relative step of 1e-6 (at most 100
    steps from the values learned at sweep 50); measured 4e-6 for alpha, 6e-7 for beta."""
    model = LDA(4, n_iter=49, random_state=0).fit(asymmetric)
    assert model.get_params()["alpha"] == "auto" and model.get_params()["beta"] == "auto"
    np.testing.assert_array_equal(model.alpha_, np.full(4, 0.1))
    assert model.beta_ == 0.01
    model.resume(11)
    np.testing.assert_allclose(model.alpha_, minka_alpha(model.n_dk_), rtol=1e-4)
    np.testing.assert_allclose(model.beta_, minka_beta(model.n_wk_), rtol=1e-4)
    # the planted alpha is asymmetric (12x from the largest to the smallest): so is the
    # learned one (measured 12x; a symmetric learner or none gives 1x)
    assert model.alpha_.max() / model.alpha_.min() > 4, model.alpha_


@pytest.mark.parametrize("alpha", [0.1, np.array([0.5, 0.2, 0.2, 0.1])])
def test_explicit_numbers_fix_the_priors(asymmetric, alpha):
    model = LDA(4, alpha=alpha, beta=0.01, n_iter=60, random_state=0).fit(asymmetric)
    np.testing.assert_array_equal(model.alpha_, np.broadcast_to(alpha, (4,)))
    assert model.beta_ == 0.01


def test_one_prior_learned_the_other_fixed(asymmetric):
    model = LDA(4, beta=0.05, n_iter=60, random_state=0).fit(asymmetric)
    assert model.beta_ == 0.05
    np.testing.assert_allclose(model.alpha_, minka_alpha(model.n_dk_), rtol=1e-4)


def test_a_folder_with_fixed_priors_loads_and_resumes_unchanged(asymmetric, tmp_path):
    """What earlier versions saved (their default priors 0.1 and 0.01 written in
    model.json) keeps them when loaded with learned priors the default: resuming past the
    burn-in equals the uninterrupted fixed-prior chain bit for bit."""
    whole = LDA(4, alpha=0.1, beta=0.01, n_iter=70, random_state=2).fit(asymmetric)
    part = LDA(4, alpha=0.1, beta=0.01, n_iter=70, random_state=2).fit(
        asymmetric, callback=lambda info: info.iteration < 30)
    part.save(tmp_path / "m")
    params = json.loads((tmp_path / "m" / "model.json").read_text())["params"]
    assert params["alpha"] == 0.1 and params["beta"] == 0.01
    loaded = LDA.load(tmp_path / "m")
    assert loaded.alpha == 0.1 and loaded.beta == 0.01
    loaded.resume()
    assert loaded.n_iter_ == 70
    np.testing.assert_array_equal(loaded.z_, whole.z_)
    np.testing.assert_array_equal(loaded.alpha_, np.full(4, 0.1))
    assert loaded.beta_ == 0.01
