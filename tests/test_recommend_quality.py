"""Issue 15 part 1: averaged posterior samples, recency, blends and the honest choice
(gibbslda.posterior, gibbslda.rankers, recommend's default)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from gibbslda import LDA, posterior, rankers, validation
from gibbslda._kernels.foldin_em import em_theta, em_theta_share
from gibbslda.corpus import Corpus
from gibbslda.ranking import evaluate_rankings
from gibbslda.recommend import explain, recommend, recommend_new
from tests import reference

DAY = 86_400 * 10 ** 6


def _drifting(n_users, seed, *, topics=4, block=30, old=20, new=16, future=6):
    """Users whose interest moved: ``old`` events of topic a (days 0..), then ``new`` of
    topic b (days 100..), and ``future`` unseen items of b (returned apart). Validation
    hides the newest 30% (11 of 36, all of b), so the observed 5 newest b events must
    outweigh the 20 old a events for the hidden ones to be found."""
    rng = np.random.default_rng(seed)
    rows, later = [], []
    for d in range(n_users):
        a, b = rng.choice(topics, size=2, replace=False)
        old_items = rng.choice(block, size=old) + a * block
        fresh = rng.permutation(block)[:new + future] + b * block
        for day, w in enumerate(old_items):
            rows.append((d, int(w), day * DAY))
        for day, w in enumerate(fresh[:new]):
            rows.append((d, int(w), (100 + day) * DAY))
        later.append(fresh[new:])
    frame = pl.DataFrame(rows, schema=["user", "item", "t"], orient="row").with_columns(
        pl.from_epoch("t", time_unit="us"))
    items = np.arange(topics * block)
    corpus = Corpus.from_frame(frame, user="user", item="item", time="t", vocabulary=items)
    hidden = Corpus.from_lists([list(x) for x in later], vocabulary=items)
    return corpus, hidden


@pytest.fixture(scope="module")
def drifting_model():
    corpus, _ = _drifting(300, seed=1)
    return LDA(4, n_iter=60, random_state=0).fit(corpus)


def test_samples_follow_the_schedule_and_sum_to_the_counts():
    corpus = Corpus.from_lists([[0, 1, 2, 2], [2, 3, 4], [0, 4, 4, 1]] * 5)
    seen = []
    model = LDA(3, n_iter=40, random_state=0)

    def keep(info):  # the chain after every sweep, to average independently
        seen.append((info.iteration, model.state_.z.copy()))

    model.fit(corpus, callback=keep)
    # n_iter 40: burn-in 20, thin (40 - 20) // 10 = 2 -> sweeps 20, 22, ..., 40
    picked = [z for i, z in seen if i >= 20 and i % 2 == 0]
    average = model.posterior_
    assert average.n_samples == len(picked) == 11
    n_wk = np.zeros((corpus.n_items, 3))
    for z in picked:
        for w, k in zip(corpus.words, z):
            n_wk[w, k] += 1
    got = np.zeros(corpus.n_items * 3)
    got[average.word_keys] = average.word_sums
    np.testing.assert_array_equal(got.reshape(-1, 3), n_wk)
    assert average.word_sums.sum() == 11 * corpus.n_tokens
    phi = posterior.averaged_phi(model)
    np.testing.assert_allclose(phi.sum(axis=1), 1.0, rtol=1e-12)
    beta = model.beta_
    want = (n_wk / 11 + beta) / (n_wk.sum(axis=0) / 11 + corpus.n_items * beta)
    np.testing.assert_allclose(phi, want.T, rtol=1e-12)


def test_one_sample_is_the_last_state():
    model = LDA(3, n_iter=1, random_state=0).fit([[0, 1, 2], [2, 3]])
    assert model.posterior_.n_samples == 1
    np.testing.assert_allclose(posterior.averaged_phi(model), model.topic_word_,
                               rtol=1e-12)


def test_em_fold_in_matches_the_reference():
    rng = np.random.default_rng(3)
    phi = rng.dirichlet(np.ones(7), size=3)
    docs = [[0, 3, 3, 6], [], [1], [2, 5, 4, 4, 0]]
    weights = [list(rng.uniform(0.1, 2.0, size=len(d))) for d in docs]
    alpha = np.array([0.1, 0.3, 0.2])
    indptr = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    out = np.empty((len(docs), 3))
    em_theta(indptr, np.array(sum(docs, []), dtype=np.int32),
             np.array(sum(weights, []), dtype=np.float64), np.ascontiguousarray(phi.T),
             alpha, np.int64(12), out)
    want = reference.em_theta(docs, weights, phi.tolist(), alpha.tolist(), 12)
    np.testing.assert_allclose(out, want, rtol=1e-12)


def test_recency_weights_halve_per_half_life():
    corpus = Corpus(np.array([0, 3, 4]), np.array([0, 1, 2, 1], dtype=np.int32),
                    np.array([7, 8]), np.arange(3), times=np.array([0, DAY, 2 * DAY, 5]))
    got = rankers.recency_weights(corpus, 1.0)
    # raw 1/4, 1/2, 1 (ages 2, 1, 0 days), scaled to sum to 3 tokens; one token: 1
    np.testing.assert_allclose(got, [3 / 7, 6 / 7, 12 / 7, 1.0], rtol=1e-12)
    np.testing.assert_array_equal(rankers.recency_weights(corpus, None), np.ones(4))


def test_validation_hides_each_users_latest_events(drifting_model):
    parts, observed, hidden = rankers.validation_split(drifting_model)
    assert observed.n_users == hidden.n_users == 150  # half the 300 users, seeded
    for d in range(observed.n_users):
        seen = observed.times[observed.indptr[d]:observed.indptr[d + 1]]
        later = hidden.times[hidden.indptr[d]:hidden.indptr[d + 1]]
        assert later.size == round(0.3 * 36) and later.min() >= seen.max()
    # the held-out tokens are out of phi's counts: their items lose those counts
    full = posterior.averaged_phi(drifting_model)
    left = parts.phi(True)
    assert left.shape == full.shape and not np.allclose(left, full)


def test_choice_learns_recency_on_drifting_users(drifting_model):
    choice = rankers.choose(drifting_model)
    assert choice.half_life_days is not None and choice.chosen != "lda"
    assert rankers.choose(drifting_model) is choice  # cached, not redone
    new, future = _drifting(200, seed=2)
    scorers = rankers.variants(drifting_model, new)
    assert set(scorers) == set(rankers.NAMES)
    recall = {name: evaluate_rankings(scorers[name], new, future, k=10)["recall"][0]
              for name in ("lda_avg", "lda_recency")}
    # planted: the future is the newest interest; the old one has 20 of 36 events, so
    # unweighted theta puts most weight on the wrong topic. 0.2 is far above seed noise
    # (200 users x 6 items)
    assert recall["lda_recency"] > recall["lda_avg"] + 0.2


def test_recommend_default_is_the_chosen_variant(drifting_model):
    choice = rankers.choose(drifting_model)
    frame = recommend(drifting_model, n=5)
    scores = rankers.variants(drifting_model)[choice.chosen](np.arange(300))
    corpus = drifting_model.corpus_
    for d in (0, 17, 299):
        row = scores[d].copy()
        row[corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]]] = -np.inf
        want = sorted(range(row.size), key=lambda w: (-row[w], w))[:5]
        got = frame.filter(pl.col("user_id") == corpus.user_ids[d]).get_column("item_id")
        assert got.to_list() == corpus.item_ids[want].tolist()
    explained = explain(drifting_model, frame)
    assert explained.get_column("topic").is_between(0, 3).all()


def test_save_load_keeps_samples_and_choice(drifting_model, tmp_path):
    rankers.choose(drifting_model)
    drifting_model.save(tmp_path / "m")
    loaded = LDA.load(tmp_path / "m")
    assert loaded.ranking_ == drifting_model.ranking_
    np.testing.assert_array_equal(loaded.posterior_.word_sums,
                                  drifting_model.posterior_.word_sums)
    assert recommend(loaded, n=5).equals(recommend(drifting_model, n=5))
    with np.load(tmp_path / "m" / "ranking.npz") as npz:  # item x topic sums only
        assert sorted(npz.files) == ["posterior_n", "posterior_word_keys",
                                     "posterior_word_sums"]
    for name in ("ranking.npz", "ranking.json"):  # a folder from before issue 15
        (tmp_path / "m" / name).unlink()
    older = LDA.load(tmp_path / "m")
    assert older.posterior_ is None and older.ranking_ is None
    assert recommend(older, n=5).height == 5 * 300


def test_tiny_corpus_falls_back_to_the_chain():
    model = LDA(2, n_iter=5, random_state=0).fit([[0, 1], [1, 2]])
    assert rankers.choose(model).chosen == "lda"
    assert recommend(model, n=1).equals(recommend(model, n=1, method="lda"))


def test_unknown_method_is_refused(drifting_model):
    with pytest.raises(ValueError, match="method must be one of"):
        recommend(drifting_model, method="best")


def test_recommend_new_follows_the_latest_interest(drifting_model):
    assert rankers.choose(drifting_model).half_life_days is not None
    new, future = _drifting(50, seed=3)
    frame = recommend_new(drifting_model, new, n=6)
    old = recommend_new(drifting_model, new, n=6, method="lda")
    block = 30  # items per planted topic: the future items' block is the newest interest

    def share(recs):
        recs = recs.with_columns((pl.col("item_id") // block).alias("topic"))
        want = {str(u): int(f[0]) // block for u, f in zip(
            new.user_ids, np.split(future.words, future.indptr[1:-1]))}
        hits = [want[str(u)] == t for u, t in zip(recs.get_column("user_id"),
                                                    recs.get_column("topic"))]
        return float(np.mean(hits))

    # the chosen variant weighs the 16 newest events above the 20 old ones; theta . phi
    # of the plain fold-in follows the majority. 0.3 apart: planted, far above seed noise
    assert share(frame) > share(old) + 0.3


def test_the_fold_in_kernel_compiles_once(drifting_model):
    odd = Corpus.from_lists([[np.int16(1), np.int16(2)], [3]],
                            vocabulary=drifting_model.item_ids_)
    rankers.variants(drifting_model, odd)["lda_recency"](np.arange(2))
    rankers.variants(drifting_model)["lda_avg"](np.arange(3))
    rankers.fold_in(rankers.validation_split(drifting_model)[0], odd, True, 30.0, 0.2, 5.0)
    assert len(em_theta.signatures) == 1 and len(em_theta_share.signatures) == 1
    from gibbslda._kernels.judge import top_hits
    rankers.choose(drifting_model, refresh=True)  # every block and partner judged
    assert len(top_hits.signatures) == 1


def test_big_models_keep_the_sparse_path(monkeypatch):
    model = LDA(3, n_iter=5, random_state=0).fit([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]] * 10)
    monkeypatch.setattr(rankers, "DENSE_VALUES", 3 * 6 - 1)  # K x V = 18 is now "big"
    choice = rankers.choose(model)
    assert choice.chosen == "lda" and choice.recall == {} and model.posterior_ is not None


def test_leave_out_phi_drops_the_hidden_tokens_counts():
    corpus = Corpus.from_lists([[0, 1, 2, 2, 5], [2, 3, 4, 4], [0, 4, 5, 1, 1]] * 4)
    model = LDA(3, n_iter=1, random_state=0).fit(corpus)  # one sample: the last state
    hidden = np.array([0, 3, 7, 20, 21])
    phi = posterior.averaged_phi(model, leave_out=hidden)
    n_wk = np.zeros((corpus.n_items, 3))
    for t, (w, k) in enumerate(zip(corpus.words, model.z_)):
        if t not in hidden:
            n_wk[w, k] += 1
    beta = model.beta_
    want = (n_wk + beta) / (n_wk.sum(axis=0) + corpus.n_items * beta)
    np.testing.assert_allclose(phi, want.T, rtol=1e-12)


def test_variants_follow_a_resumed_chain(drifting_model):
    model = LDA(4, n_iter=10, random_state=0).fit(drifting_model.corpus_)
    before = rankers.variants(model)["lda"](np.arange(3))
    np.testing.assert_allclose(before, model.doc_topic_[:3] @ model.topic_word_)
    model.resume(5)
    after = rankers.variants(model)["lda"](np.arange(3))
    np.testing.assert_allclose(after, model.doc_topic_[:3] @ model.topic_word_)
    assert not np.allclose(before, after)


def test_validation_recall_is_the_ranking_metric(drifting_model):
    _, observed, hidden = rankers.validation_split(drifting_model)
    scores = np.random.default_rng(5).random((observed.n_users, observed.n_items))
    want = evaluate_rankings(scores, observed, hidden, k=20)["recall"][0]
    judge = validation.Judge(observed, hidden)
    got = judge(scores)  # no ties: the same top 20
    assert got == pytest.approx(want, rel=1e-12)
    # a blend judged on the fly is the blend's block judged (b = 1: the other alone)
    other = np.random.default_rng(6).random(scores.shape)
    for b in (0.3, 1.0):
        want = evaluate_rankings((1 - b) * scores + b * other, observed, hidden,
                                 k=20)["recall"][0]
        assert judge(scores, other, b) == pytest.approx(want, rel=1e-12)
    # ties across the 20th place (5 score levels): taken in column order, as
    # evaluate_rankings takes them
    tied = np.floor(scores * 5) / 5
    want = evaluate_rankings(tied, observed, hidden, k=20)["recall"][0]
    assert judge(tied) == pytest.approx(want, rel=1e-12)


# -- review of issue 15 (helper E) ------------------------------------------------------

def test_validation_leave_out_is_exact_with_many_samples():
    """Every LDA variant is validated on phi of the last state's counts minus the hidden
    tokens' topics, computed here from z of the other tokens (plain loops)."""
    corpus, _ = _drifting(120, seed=4)
    model = LDA(4, n_iter=40, random_state=0).fit(corpus)  # 11 samples
    assert model.posterior_.n_samples == 11
    parts, observed, hidden = rankers.validation_split(model)
    hide = set(parts.leave_out.tolist())
    assert len(hide) == hidden.n_tokens > 0
    n_wk = np.zeros((corpus.n_items, 4))
    for t, (w, k) in enumerate(zip(corpus.words, model.z_)):
        if t not in hide:
            n_wk[w, k] += 1
    beta = model.beta_
    want = ((n_wk + beta) / (n_wk.sum(axis=0) + corpus.n_items * beta)).T
    for averaged in (True, False):
        np.testing.assert_allclose(parts.phi(averaged), want, rtol=1e-12)


def _small_choice(model, chosen, **settings):
    """A choice set by hand (every variant's settings), as ``choose`` would record it."""
    fields = dict(half_life_days=None, popularity=0.3, knn_blend=0.4, ease_blend=0.6,
                  chosen=chosen, recall={}, seconds=0.0, n_users=0, iknn_blend=0.5)
    fields.update(settings)
    model.ranking_ = posterior.Choice(**fields)
    return model.ranking_


def test_new_users_leave_no_cache_behind():
    model = LDA(3, n_iter=6, random_state=0).fit([[0, 1, 2, 3], [2, 3, 4, 5]] * 10)
    _small_choice(model, "lda+ease")
    recommend_new(model, [[0, 1], [4]], n=2, method="lda_avg")
    parts = model._ranking_parts
    assert "ease" not in parts._cache and "knn" not in parts._cache  # not asked: not fitted
    for _ in range(3):
        recommend_new(model, [[0, 1], [4]], n=2)  # the chosen lda+ease
    # kept for the model's life: averaged phi, popularity, the EASE fit; nothing per call
    assert set(parts._cache) == {("phi_wk", True), "pop", "ease"}


def test_resume_drops_the_earlier_choice():
    model = LDA(3, n_iter=6, random_state=0).fit([[0, 1, 2, 3], [2, 3, 4, 5]] * 10)
    first = _small_choice(model, "lda+pop")
    model.resume(3)
    assert model.ranking_ is None and rankers.choose(model) is not first


@pytest.mark.parametrize("damage, what", [
    (lambda c: c.pop("chosen"), "chosen"),
    (lambda c: c.update(popularity="high"), "popularity"),
    (lambda c: c.update(chosen="best"), "chosen"),
    (lambda c: c.update(recall=[1.0]), "recall"),
    (lambda c: c.update(iknn_blend=1.5), "iknn_blend"),
])
def test_damaged_choice_is_a_model_file_error(tmp_path, damage, what):
    import json
    from gibbslda.errors import ModelFileError
    model = LDA(3, n_iter=6, random_state=0).fit([[0, 1, 2, 3], [2, 3, 4, 5]] * 10)
    _small_choice(model, "lda+pop")
    model.save(tmp_path / "m")
    data = json.loads((tmp_path / "m" / "ranking.json").read_text())
    damage(data)
    (tmp_path / "m" / "ranking.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=f"{what}.*save the model again") as info:
        LDA.load(tmp_path / "m")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("drop", ["posterior_n", "posterior_word_sums"])
def test_damaged_samples_are_a_model_file_error(tmp_path, drop):
    from gibbslda.errors import ModelFileError
    model = LDA(3, n_iter=6, random_state=0).fit([[0, 1, 2, 3], [2, 3, 4, 5]] * 10)
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "ranking.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != drop}
    np.savez(tmp_path / "m" / "ranking.npz", **arrays)
    with pytest.raises(ModelFileError, match="ranking.npz.*save the model again") as info:
        LDA.load(tmp_path / "m")
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def sampled_model():
    """A small drifting model and phi averaged here from the z of its sample sweeps."""
    corpus, _ = _drifting(30, seed=5)
    model = LDA(4, n_iter=20, random_state=0)
    picked = []

    def keep(info):  # n_iter 20: burn-in 10, thin 1 -> sweeps 10, 11, ..., 20
        if info.iteration >= 10:
            picked.append(model.state_.z.copy())

    model.fit(corpus, callback=keep)
    n_wk = np.zeros((corpus.n_items, 4))
    for z in picked:
        for w, k in zip(corpus.words, z):
            n_wk[w, k] += 1 / len(picked)
    beta = model.beta_
    phi = (n_wk + beta) / (n_wk.sum(axis=0) + corpus.n_items * beta)
    return model, phi.T


@pytest.mark.parametrize("chosen, strength", [
    ("lda_avg", None), ("lda_recency", None), ("lda+pop", None), ("lda+knn", None),
    ("lda+ease", None), ("lda+iknn", None), ("lda+pop", 5.0), ("lda+ease", 5.0)])
def test_default_recommend_matches_the_reference(sampled_model, chosen, strength):
    from gibbslda.baselines import EASE, ItemKNN
    model, phi = sampled_model
    corpus = model.corpus_
    _small_choice(model, chosen, half_life_days=30.0, propensity_strength=strength)
    docs = [corpus.words[a:b].tolist() for a, b in zip(corpus.indptr, corpus.indptr[1:])]
    times = [corpus.times[a:b].tolist() for a, b in zip(corpus.indptr, corpus.indptr[1:])]
    partner = {"lda+knn": ItemKNN(rankers.KNN_NEIGHBOURS), "lda+ease": EASE(
        rankers.EASE_L2, rankers.EASE_ITEMS)}.get(chosen)
    other = None if partner is None else partner.fit(corpus, corpus.n_items).scores(
        np.arange(corpus.n_users), history=corpus)
    if chosen == "lda+iknn":  # the partner from plain loops, not from the library's kNN
        other = reference.interest_knn_scores(docs, docs, phi.tolist(),
                                              rankers.KNN_NEIGHBOURS)
    scores = reference.variant_scores(
        docs, times, phi.tolist(), model.alpha_.tolist(), rankers.EM_ITER,
        None if chosen == "lda_avg" else 30.0, 0.0 if chosen in ("lda_avg", "lda_recency")
        else 0.3, docs, other, {"lda+knn": 0.4, "lda+ease": 0.6, "lda+iknn": 0.5}.get(
            chosen, 0.0), strength)
    users = [17, 3, 29, 0]  # in this order, not index order
    banned = [5, 64]
    n = corpus.n_items  # more than any user's unseen items
    frame = recommend(model, corpus.user_ids[users], n=n, exclude_items=corpus.item_ids[banned])
    assert frame.get_column("user_id").unique(maintain_order=True).to_list() == \
        corpus.user_ids[users].tolist()
    for d in users:
        skip = set(docs[d]) | set(banned)
        want = sorted((w for w in range(corpus.n_items) if w not in skip),
                      key=lambda w: (-scores[d, w], w))
        got = frame.filter(pl.col("user_id") == corpus.user_ids[d])
        assert got.get_column("rank").to_list() == list(range(1, len(want) + 1))
        assert got.get_column("item_id").to_list() == corpus.item_ids[want].tolist()
        # float64 sums in another order: 1e-9 relative is far above rounding, far below
        # any score gap that decides the order here
        np.testing.assert_allclose(got.get_column("score").to_numpy(), scores[d, want],
                                   rtol=1e-9)


# -- item-item similarity within interests ("lda+iknn", helper F) --------------------------

def test_interest_knn_matches_the_reference():
    """Few neighbours (2 of 7 items), so the top-k cut and its ties are exercised."""
    from gibbslda.baselines import ItemKNN
    docs = [[0, 1, 2], [0, 1], [1, 2, 3], [3, 4, 5], [4, 5, 6, 6], [0, 6], [2, 5]]
    phi = np.random.default_rng(3).dirichlet(np.ones(7), size=3)  # K x V
    knn = ItemKNN(2).fit(Corpus.from_lists(docs, vocabulary=np.arange(7)), 7)
    got = rankers.within_interests(knn, np.ascontiguousarray(phi.T)).scores(
        np.arange(len(docs)))
    want = reference.interest_knn_scores(docs, docs, phi.tolist(), 2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert not np.allclose(got, knn.scores(np.arange(len(docs))))  # a did change s


def _within_interest_pairs(seed, *, topics=4, pairs=40, n=600, per=8, decoy=60,
                           teachers=2000, repeats=10):
    """A corpus where item-item co-occurrence within an interest is the signal and
    co-occurrence across interests misleads. Interest t is items [80 t, 80 t + 80),
    bought in fixed pairs (2p, 2p + 1). ``n`` users hold ``per`` whole pairs of interest t
    and of t + 1 (so both sides of every cross link below are in their interests);
    each item w also has one decoy in interest t + 1, co-held by ``decoy`` two-item users
    (as often as w's partner: item-kNN cannot tell them apart, and as they are short they
    are never validation users); ``teachers`` users buy 3 items of one interest
    ``repeats`` times each, which fixes the topics (the decoys' tokens are few beside
    them) while adding little to the binary co-occurrence kNN and EASE read."""
    rng = np.random.default_rng(seed)
    block = 2 * pairs
    docs = []
    for _ in range(n):
        a = int(rng.integers(topics))
        docs.append([t * block + 2 * p + side for t in (a, (a + 1) % topics)
                     for p in rng.choice(pairs, size=per, replace=False) for side in (0, 1)])
    for w in range(topics * block):
        docs += [[w, ((w // block + 1) % topics) * block + (7 * w + 3) % block]] * decoy
    for _ in range(teachers):
        t = int(rng.integers(topics))
        docs.append(np.repeat(t * block + rng.choice(block, 3, replace=False),
                              repeats).tolist())
    order = rng.permutation(len(docs))
    return Corpus.from_lists([docs[i] for i in order], vocabulary=np.arange(topics * block))


def test_choice_picks_within_interest_knn_when_it_validates_best():
    corpus = _within_interest_pairs(0)
    model = LDA(4, alpha=1.0, n_iter=100, random_state=0).fit(corpus)
    choice = rankers.choose(model)
    others = {n: choice.recall[n] for n in rankers.NAMES[:-2]}
    # ~600 judged users: the standard error of a Recall@20 is about 0.015; over 5 corpus
    # and chain seeds lda+iknn led the best other variant (lda+ease) by 0.08 to 0.13, so
    # 0.04 is a margin no seed came near while still far above noise
    assert choice.chosen == "lda+iknn", (choice.chosen, choice.recall)
    assert choice.recall["lda+iknn"] > max(others.values()) + 0.04, choice.recall
    assert choice.iknn_blend > 0
    # the default is that variant; explanations still name an interest behind each item:
    # the topic of the item's planted interest or of one of the user's
    rows = np.flatnonzero(np.diff(corpus.indptr) == 32)[:40]  # users with two interests
    frame = recommend(model, corpus.user_ids[rows], n=5)
    default = rankers.variants(model)["lda+iknn"](rows)
    for r, d in enumerate(rows):
        default[r, corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]]] = -np.inf
    first = frame.filter(pl.col("rank") == 1).get_column("item_id").to_numpy()
    np.testing.assert_array_equal(first, corpus.item_ids[default.argmax(axis=1)])
    why = explain(model, frame)
    planted = model.topic_word_.reshape(4, 4, -1).sum(axis=2).argmax(axis=0)  # block->k
    assert why.get_column("explanation").null_count() == 0
    rows = np.searchsorted(corpus.user_ids, why.get_column("user_id").to_numpy())
    items = np.searchsorted(corpus.item_ids, why.get_column("item_id").to_numpy())
    for d, w, topic in zip(rows, items, why.get_column("topic").to_list()):
        blocks = np.unique(corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]] // 80)
        assert topic in set(planted[blocks]) | {planted[w // 80]}, (d, w, topic)


def test_choice_saved_before_lda_iknn_loads_with_no_blend(tmp_path):
    import json
    model = LDA(3, n_iter=6, random_state=0).fit([[0, 1, 2, 3], [2, 3, 4, 5]] * 10)
    _small_choice(model, "lda+knn")
    model.save(tmp_path / "m")
    data = json.loads((tmp_path / "m" / "ranking.json").read_text())
    assert data.pop("iknn_blend") == 0.5
    (tmp_path / "m" / "ranking.json").write_text(json.dumps(data))  # an older folder
    loaded = LDA.load(tmp_path / "m").ranking_
    assert loaded.iknn_blend == 0.0 and loaded.knn_blend == 0.4 and loaded.chosen == "lda+knn"


# -- per-user popularity propensity (issue 15 item 1, session 4) --------------------------

def test_em_share_fold_in_matches_the_reference():
    rng = np.random.default_rng(4)
    phi = rng.dirichlet(np.ones(7), size=3)
    pop = rng.dirichlet(np.ones(7))
    docs = [[0, 3, 3, 6], [], [1], [2, 5, 4, 4, 0], [6, 6, 6, 1, 2, 3]]
    weights = [list(rng.uniform(0.1, 2.0, size=len(d))) for d in docs]
    alpha = np.array([0.1, 0.3, 0.2])
    indptr = np.cumsum([0] + [len(d) for d in docs]).astype(np.int64)
    theta, share = np.empty((len(docs), 3)), np.empty(len(docs))
    em_theta_share(indptr, np.array(sum(docs, []), dtype=np.int32),
                   np.array(sum(weights, []), dtype=np.float64),
                   np.ascontiguousarray(phi.T), alpha, pop, np.array([0.3, 2.0]),
                   np.int64(12), theta, share)
    want_theta, want_share = reference.em_theta_share(
        docs, weights, phi.tolist(), pop.tolist(), alpha.tolist(), 0.3, 2.0, 12)
    np.testing.assert_allclose(theta, want_theta, rtol=1e-12)
    np.testing.assert_allclose(share, want_share, rtol=1e-12)
    assert share[1] == 0.3 and not np.allclose(share, 0.3)  # no tokens: the prior mean


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2,
                    reason="needs 2 numba threads")
def test_em_fold_ins_are_the_same_on_one_and_two_threads():
    """The fold-ins run users in chunks over the threads; every sum keeps index order, so
    the result is bit for bit the same on 1 and 2 threads. An alpha whose sum depends on
    the order of addition (1 + six times 1e-16) and 700 users (44 chunks)."""
    import numba

    rng = np.random.default_rng(8)
    k, v = 7, 40
    phi_wk = np.ascontiguousarray(rng.dirichlet(np.ones(v), size=k).T)
    lengths = rng.integers(0, 12, size=700)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    words = rng.integers(v, size=indptr[-1]).astype(np.int32)
    weight = rng.uniform(0.1, 2.0, size=indptr[-1])
    pop = rng.dirichlet(np.ones(v))
    before = numba.get_num_threads()
    for alpha in (np.array([1.0] + [1e-16] * 6), rng.uniform(0.01, 0.5, size=k)):
        runs = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            try:
                out, theta, share = np.empty((700, k)), np.empty((700, k)), np.empty(700)
                em_theta(indptr, words, weight, phi_wk, alpha, np.int64(10), out)
                em_theta_share(indptr, words, weight, phi_wk, alpha, pop,
                               np.array([0.3, 5.0]), np.int64(10), theta, share)
            finally:
                numba.set_num_threads(before)
            runs.append((out, theta, share))
        for one, two in zip(*runs):
            np.testing.assert_array_equal(one, two)


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2,
                    reason="needs 2 numba threads")
def test_the_choice_is_the_same_on_one_and_two_threads(drifting_model):
    """choose() runs its kernels on the model's n_jobs threads: the same validation
    figures, settings and choice, bit for bit, on 1 and 2."""
    import copy

    choices = []
    for n_jobs in (1, 2):
        model = copy.deepcopy(drifting_model)
        model.n_jobs = n_jobs
        choices.append(rankers.choose(model, refresh=True))
    one, two = choices
    assert one.recall == two.recall and one.chosen == two.chosen
    assert (one.half_life_days, one.popularity, one.knn_blend, one.ease_blend) == \
        (two.half_life_days, two.popularity, two.knn_blend, two.ease_blend)


def _followers(seed, *, topics=8, block=60, hits=40, n=600, length=30, teachers=1000):
    """Half the users follow popularity: half their ``length`` events among ``hits``
    bestsellers that belong to no interest, half in one interest (``block`` items each);
    the other half keep to one interest. ``teachers`` buy 3 items of one interest 50 times
    each, which fixes the topics (the bestsellers' tokens are few beside them) while
    adding little to the popularity (users holding each item). Bestsellers then hold
    ~10x an interest item's popularity share; ranking them first needs a background
    share near 0.8 for a follower, and costs the others most of their Recall@20."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        own = int(rng.integers(topics)) * block + rng.integers(block, size=length)
        if rng.random() < 0.5:
            own[:length // 2] = topics * block + rng.integers(hits, size=length // 2)
        docs.append(rng.permutation(own).tolist())
    for _ in range(teachers):
        t = int(rng.integers(topics))
        docs.append(np.repeat(t * block + rng.choice(block, 3, replace=False), 50).tolist())
    order = rng.permutation(len(docs))
    return Corpus.from_lists([docs[i] for i in order],
                             vocabulary=np.arange(topics * block + hits))


def test_per_user_propensity_beats_one_share_when_users_differ():
    model = LDA(8, n_iter=60, random_state=0).fit(_followers(0))
    choice = rankers.choose(model)
    lam = choice.popularity
    one = max(v for k, v in choice.recall.items() if k.startswith("lda+pop lam=") and
              " s=" not in k)
    assert choice.propensity_strength is not None, choice.recall
    own = choice.recall[f"lda+pop lam={lam} s={choice.propensity_strength}"]
    # ~300 judged users (the teachers' hidden items are all repeats); over corpus and
    # chain seeds 0-3 the per-user shares led the best single share by 0.021 to 0.057
    # (Recall@20 of 0.21-0.30): 0.01 is below that and above the paired noise. They were
    # kept in seeds 0-2; in seed 3 the one share's blends validated higher (so kept it)
    assert own > one + 0.01 and choice.recall["lda+pop"] == own, choice.recall
    # every variant built on lda+pop uses the users' own shares
    scorers = rankers.variants(model)
    parts = scorers["lda+pop"].parts
    share = rankers.shares(parts, model.corpus_, True, choice.half_life_days, lam,
                           choice.propensity_strength)
    assert share.std() > 0.1  # planted: followers near 0.8, the others far below
    corpus = model.corpus_
    docs = [corpus.words[a:b].tolist() for a, b in zip(corpus.indptr, corpus.indptr[1:])]
    times = ([[0] * len(doc) for doc in docs] if corpus.times is None else
             [corpus.times[a:b].tolist() for a, b in zip(corpus.indptr, corpus.indptr[1:])])
    want = reference.variant_scores(  # plain loops: theta, each user's share, the mixture
        docs[:5], times[:5], parts.phi(True).tolist(), model.alpha_.tolist(),
        rankers.EM_ITER, choice.half_life_days, lam, docs, None, 0.0,
        choice.propensity_strength)
    np.testing.assert_allclose(scorers["lda+pop"](np.arange(5)), want, rtol=1e-9)
    for name in ("lda+knn", "lda+ease", "lda+iknn"):
        assert scorers[name].strength == choice.propensity_strength


def test_propensity_round_trips_and_older_choices_load_as_one_share(tmp_path):
    import json
    model = LDA(3, n_iter=6, random_state=0).fit([[0, 1, 2, 3], [2, 3, 4, 5]] * 10)
    _small_choice(model, "lda+pop", propensity_strength=5.0)
    own = recommend(model, n=3)
    model.save(tmp_path / "m")
    loaded = LDA.load(tmp_path / "m")
    assert loaded.ranking_ == model.ranking_ and loaded.ranking_.propensity_strength == 5.0
    assert recommend(loaded, n=3).equals(own)
    data = json.loads((tmp_path / "m" / "ranking.json").read_text())
    del data["propensity_strength"]  # a folder from before per-user shares
    (tmp_path / "m" / "ranking.json").write_text(json.dumps(data))
    older = LDA.load(tmp_path / "m")
    assert older.ranking_.propensity_strength is None and older.ranking_.popularity == 0.3
    _small_choice(model, "lda+pop")  # one share for all: what the older folder means
    assert recommend(older, n=3).equals(recommend(model, n=3))
    data["propensity_strength"] = -1.0
    (tmp_path / "m" / "ranking.json").write_text(json.dumps(data))
    from gibbslda.errors import ModelFileError
    with pytest.raises(ModelFileError, match="propensity_strength"):
        LDA.load(tmp_path / "m")
