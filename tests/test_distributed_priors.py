"""Learned priors on Dask: DistributedLDA learns alpha and beta by default, on LDA's
schedule, from the same histograms LDA's learn_alpha / learn_beta read on the gathered
chain; numbers fix them; a checkpoint keeps them, so a resumed run is the uninterrupted one."""
from __future__ import annotations

import json

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from gibbslda import LDA, _rng, priors, sampler  # noqa: E402
from gibbslda.distributed import PURPOSE, DistributedLDA  # noqa: E402
from tests.test_distributed import two_workers  # noqa: E402, F401 (a fixture: own cluster here)


def test_one_partition_is_lda_learning_its_priors(two_workers, planted):
    # One partition is the serial chain: LDA's own loop (fit, then resume, which learns
    # on LDA's schedule: sweeps 50, 60, 70) run from the partition's stream (DistributedLDA
    # seeds its partitions for another purpose than LDA its shards) gives the same topics,
    # streams and learned priors, bit for bit, and log p(w, z) under the current priors.
    corpus = planted.corpus
    fit = DistributedLDA(5, n_iter=70, random_state=3, sampler="dense",
                         n_partitions=1).fit(corpus, two_workers)
    lda = LDA(5, n_iter=0, random_state=3, sampler="dense").fit(corpus)
    lda.state_ = sampler.init_state(corpus.indptr, corpus.words, 5, corpus.n_items,
                                    alpha=0.1, beta=0.01, sampler="dense",
                                    rng=_rng.seed_streams(3, PURPOSE, 1))
    lda.resume(70)
    model = fit.model_
    np.testing.assert_array_equal(model.z_, lda.z_)
    np.testing.assert_array_equal(model.rng_state_, lda.rng_state_)
    np.testing.assert_array_equal(model.alpha_, lda.alpha_)
    assert model.beta_ == lda.beta_
    assert np.all(model.alpha_ != 0.1) and model.beta_ != 0.01  # learned, not the starts
    assert model.alpha == "auto" and model.beta == "auto"
    assert model.loglik_["iteration"].tolist() == lda.loglik_["iteration"][1:].tolist()
    # the same sums in another order (users' terms from the partition): 1e-12 relative
    np.testing.assert_allclose(model.loglik_["loglik"], lda.loglik_["loglik"][1:],
                               rtol=1e-12)


def test_partitions_learn_what_lda_learns_on_the_gathered_chain(two_workers, planted):
    # 3 partitions on 2 workers (two share an actor), 3 sweeps a round: sweep 20 is due
    # (burn-in 20, every 10) in the round 18-21, so the priors are learned once, after
    # sweep 21, from the 0.1 / 0.01 they started at. LDA's learn_alpha / learn_beta on a
    # state rebuilt from the gathered topics with those priors give the same values, bit
    # for bit: every partition's users and the merged counts entered the sums.
    fit = DistributedLDA(5, n_iter=21, random_state=4, sampler="sparse", n_partitions=3,
                         sweeps_per_round=3, optimize_burn_in=20,
                         optimize_every=10).fit(planted.corpus, two_workers)
    model = fit.model_
    s = model.state_
    state = sampler.restore_state(s.indptr, s.words, s.z, 5, s.n_items, alpha=0.1,
                                  beta=0.01, rng=s.rng[:1].copy(), sampler="dense",
                                  n_shards=1)  # the priors read only z (and the items)
    priors.learn_alpha(state)
    priors.learn_beta(state)
    assert np.all(state.alpha != 0.1) and state.beta != 0.01
    np.testing.assert_array_equal(model.alpha_, state.alpha)
    assert model.beta_ == state.beta
    # the last round evaluated log p(w, z) under the learned priors
    assert model.loglik_["loglik"][-1] == pytest.approx(
        sampler.log_likelihood(model.state_), rel=1e-12)


def test_resume_keeps_the_learned_priors(two_workers, planted, tmp_path):
    # stopped at round 15 (priors learned at 10), resumed to 30 (learned at 20 and 30):
    # the chain that never stopped, priors included, bit for bit
    settings = dict(random_state=6, sampler="dense", n_partitions=2, n_iter=30,
                    optimize_burn_in=10)
    est = DistributedLDA(5, checkpoint=tmp_path / "run.npz", checkpoint_every=4, **settings)
    stopped = est.fit(planted.corpus, two_workers, callback=lambda info: info.round < 15)
    assert stopped.model_.n_iter_ == 15 and np.all(stopped.model_.alpha_ != 0.1)
    resumed = est.fit(planted.corpus, two_workers, resume=True)
    whole = DistributedLDA(5, **settings).fit(planted.corpus, two_workers)
    for name in ("z_", "rng_state_", "alpha_"):
        np.testing.assert_array_equal(getattr(resumed.model_, name),
                                      getattr(whole.model_, name))
    assert resumed.model_.beta_ == whole.model_.beta_
    np.testing.assert_array_equal(resumed.rounds_["loglik"], whole.rounds_["loglik"])
    # the checkpoint's setting is "auto", not the learned values: a number is refused
    with pytest.raises(ValueError, match="has alpha='auto', this model"):
        DistributedLDA(5, alpha=0.1, checkpoint=tmp_path / "run.npz",
                       **settings).fit(planted.corpus, two_workers, resume=True)
    # so is another learning schedule (the chain would learn at other sweeps)
    with pytest.raises(ValueError, match="has optimize_burn_in=10, this model 20"):
        DistributedLDA(5, checkpoint=tmp_path / "run.npz", **(settings | {
            "optimize_burn_in": 20})).fit(planted.corpus, two_workers, resume=True)
    # a checkpoint with fixed priors (every one before they were learned by default),
    # resumed with the new default: refused, saying which numbers to give
    fixed = dict(settings, n_iter=2, alpha=0.1, beta=0.01)
    DistributedLDA(5, checkpoint=tmp_path / "fixed.npz", **fixed).fit(planted.corpus,
                                                                      two_workers)
    with pytest.raises(ValueError, match=r"fixed priors .* --alpha 0.1 --beta 0.01\)$"):
        DistributedLDA(5, checkpoint=tmp_path / "fixed.npz", **settings).fit(
            planted.corpus, two_workers, resume=True)
    with np.load(tmp_path / "run.npz", allow_pickle=False) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["priors"]["alpha"] = meta["priors"]["alpha"][:4]
    np.savez(tmp_path / "cut.npz", **(arrays | {"meta": np.array(json.dumps(meta))}))
    with pytest.raises(ValueError, match="damaged: its priors do not fit"):
        DistributedLDA(5, checkpoint=tmp_path / "cut.npz", **settings).fit(
            planted.corpus, two_workers, resume=True)
    # the result keeps learning on one machine (at sweep 40)
    model = whole.model_
    before = model.alpha_.copy()
    model.resume(10)
    assert model.n_iter_ == 40 and not np.array_equal(model.alpha_, before)


@pytest.mark.parametrize("fixed", ["alpha", "beta"])
def test_numbers_fix_a_prior(two_workers, planted, fixed):
    values = {"alpha": 0.2, "beta": 0.05}
    fit = DistributedLDA(5, n_iter=10, random_state=2, sampler="dense",
                         optimize_burn_in=10, **{fixed: values[fixed]}
                         ).fit(planted.corpus, two_workers)
    model = fit.model_
    alpha, beta = model.alpha_, model.beta_
    if fixed == "alpha":
        assert np.all(alpha == 0.2) and beta != 0.01 and model.beta == "auto"
    else:
        assert beta == 0.05 and np.all(alpha != 0.1) and model.alpha == "auto"
