"""Per-call paths read the sparse counts, never the dense matrices (issue 14), and give the
dense results.

Every per-call function (recommend, recommend_new, explain, transform, the profiles, the
topic names, similar items, the fitted matrices) is compared with the dense computation
written out here (np.add.at counts, the phi and theta formulas, tests/reference.py's
top N) on small models of each sampler. Exact equality where the library promises the
dense arithmetic (scores, theta, phi, rankings); a stated tolerance where it sums in
another order. tracemalloc shows that the per-call paths allocate nothing of the size of
a dense users x topics or topics x items matrix (numpy's allocations are traced; numba's
inside the kernels are not, and none of them is K-sized times V or D).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from gibbslda import LDA, Corpus, sampler
from gibbslda import recommend as rec
from gibbslda._kernels import scores as score_kernels
from gibbslda._rng import FOLD_IN, seed_streams
from gibbslda.profiles import demand, name_topics, topic_summary, user_profiles
from gibbslda.scores import build_tables
from gibbslda.topn import top_n_sparse
from tests import reference
from tests.conftest import traced_peak
from tests.reference import csr

K, D, V = 9, 70, 48  # items 44..47 have no token: their scores tie, broken by index
SAMPLERS = [("dense", {}), ("sparse", {}), ("mh", {}), ("warp", {}), ("vector", {}),
            ("sparse", {"n_shards": 2}), ("dense", {"alpha": "auto", "beta": "auto",
                                                    "optimize_burn_in": 3,
                                                    "optimize_every": 3})]
IDS = ["dense", "sparse", "mh", "warp", "vector", "sharded", "auto_priors"]
# Sums in another order than the dense product (column sums, demand, the sparse phi's
# counts part plus smoothing) differ by a few ulps of values <= the number of users.
ORDER_TOL = 1e-12


def _lists(seed: int, n_users: int = D, n_items: int = V - 4):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_items, size=rng.integers(1, 16)).tolist()
            for _ in range(n_users)]


@pytest.fixture(scope="module", params=list(zip(IDS, SAMPLERS)), ids=IDS)
def fitted(request):
    _, (name, extra) = request.param
    indptr, words = csr(_lists(4))
    corpus = Corpus.from_csr(indptr, words, n_items=V)
    return LDA(K, sampler=name, n_iter=12, random_state=3, **extra).fit(corpus)


def dense(model):
    """(n_dk, n_wk, theta, phi) written out from the tokens and their topics."""
    s = model.state_
    n_users, n_items, k = s.indptr.shape[0] - 1, model.corpus_.n_items, model.n_topics
    users = np.repeat(np.arange(n_users), np.diff(s.indptr))
    n_dk = np.zeros((n_users, k), dtype=np.int64)
    n_wk = np.zeros((n_items, k), dtype=np.int64)
    np.add.at(n_dk, (users, s.z), 1)
    np.add.at(n_wk, (s.words, s.z), 1)
    n_k = n_wk.sum(axis=0)
    beta, alpha = model.beta_, model.alpha_
    phi = (n_wk.T + beta) / (n_k[:, None] + n_items * beta)
    theta = (n_dk + alpha) / (np.diff(s.indptr)[:, None] + alpha.sum())
    return n_dk, n_wk, theta, phi


def seen_lists(model):
    c = model.corpus_
    return [c.words[a:b].tolist() for a, b in zip(c.indptr[:-1], c.indptr[1:])]


# -- the sparse counts and the fitted matrices --------------------------------------------
def test_item_topic_csr_holds_the_counts(fitted):
    _, n_wk, _, _ = dense(fitted)
    indptr, topics, counts = sampler.item_topic_csr(fitted.state_)
    rows = np.repeat(np.arange(V), np.diff(indptr))
    assert np.all(counts > 0) and topics.dtype == np.int32 and counts.dtype == np.int32
    assert all(np.all(np.diff(topics[a:b]) > 0) for a, b in zip(indptr[:-1], indptr[1:]))
    rebuilt = np.zeros_like(n_wk)
    rebuilt[rows, topics] = counts
    np.testing.assert_array_equal(rebuilt, n_wk)


def test_fitted_matrices_are_the_formulas_built_once(fitted):
    n_dk, _, theta, phi = dense(fitted)
    assert np.array_equal(fitted.topic_word_, phi) and np.array_equal(fitted.doc_topic_, theta)
    assert fitted.topic_word_ is fitted.topic_word_ and fitted.doc_topic_ is fitted.doc_topic_
    assert np.array_equal(fitted.topic_word(dtype=np.float32), phi.astype(np.float32))
    assert np.array_equal(fitted.doc_topic(dtype=np.float32), theta.astype(np.float32))
    assert np.array_equal(fitted.doc_topic([5, 0, 5]), theta[[5, 0, 5]])
    assert np.array_equal(fitted.n_dk_, n_dk)
    with pytest.raises(ValueError, match="rows must be user indices in \\[0, n_users"):
        fitted.doc_topic([D])
    part = fitted.topic_word(sparse=True)
    rebuilt = np.repeat(part.smoothing[:, None], V, axis=1)
    rows = np.repeat(np.arange(K), np.diff(part.indptr))
    rebuilt[rows, part.indices] += part.data
    assert part.shape == (K, V) and np.all(part.data > 0)
    assert all(np.all(np.diff(part.indices[a:b]) > 0)
               for a, b in zip(part.indptr[:-1], part.indptr[1:]))
    np.testing.assert_allclose(rebuilt, phi, rtol=ORDER_TOL, atol=0)


def test_the_kept_values_follow_the_chain():
    """A sweep (resume), learned priors or a new fit changes what topic_word_, doc_topic_
    and the sparse tables hold; nothing stale is served."""
    indptr, words = csr(_lists(8))
    model = LDA(K, sampler="warp", n_iter=4, alpha="auto", optimize_burn_in=5,
                optimize_every=5, random_state=0).fit(Corpus.from_csr(indptr, words))
    phi, theta, tables = model.topic_word_, model.doc_topic_, model._tables()
    recs = rec.recommend(model, n=5, method="lda")
    model.resume(1)  # sweep 5 learns alpha too
    assert model._tables() is not tables
    _, _, theta_now, phi_now = dense(model)
    assert not np.array_equal(phi_now, phi) and not np.array_equal(theta_now, theta)
    assert np.array_equal(model.topic_word_, phi_now)
    assert np.array_equal(model.doc_topic_, theta_now)
    want = reference.top_n(theta_now, phi_now, 5, seen_lists(model))
    assert not rec.recommend(model, n=5, method="lda").equals(recs)
    got = rec.recommend(model, n=5, method="lda")
    assert got.get_column("score").to_list() == [s for row in want[1] for s in row if s > -1]


# -- recommendations ----------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 6, V + 3])
def test_recommend_equals_the_dense_top_n(fitted, n):
    _, _, theta, phi = dense(fitted)
    for exclude_seen in (True, False):
        banned = [3, 45] if exclude_seen else []
        frame = rec.recommend(fitted, n=n, exclude_seen=exclude_seen,
                              exclude_items=banned or None, chunk_size=16, method="lda")
        seen = seen_lists(fitted) if exclude_seen else None
        items, scores = reference.top_n(theta, phi, n, seen, banned=banned)
        want = [(fitted.user_ids_[d], r + 1, w, s) for d in range(D)
                for r, (w, s) in enumerate(zip(items[d], scores[d])) if w >= 0]
        got = list(zip(*(frame.get_column(c).to_list()
                         for c in ("user_id", "rank", "item_id", "score"))))
        assert got == want  # ranks, ties (items 44..47) and scores bit for bit


def test_recommend_new_equals_the_dense_fold_in_and_top_n(fitted):
    _, _, _, phi = dense(fitted)
    histories = [[1, 2, 2, 40], [], [45], [7] * 5 + [30, 31]]
    theta = fitted.transform(histories)
    corpus = Corpus.from_lists(histories, vocabulary=fitted.item_ids_, drop_empty=False)
    stream = seed_streams(fitted.seed_entropy_, FOLD_IN, 1)
    plain = sampler.fold_in(corpus.indptr, corpus.words, phi, fitted.alpha_,
                            n_iter=fitted.transform_iter, burn_in=fitted.transform_burn_in,
                            rng=stream)
    assert np.array_equal(theta, plain)  # phi for the given items only: the same draws
    frame = rec.recommend_new(fitted, histories, n=8, method="lda")
    items, scores = reference.top_n(theta, phi, 8, histories)
    want = [(u, r + 1, w, s) for u in range(4)
            for r, (w, s) in enumerate(zip(items[u], scores[u])) if w >= 0]
    assert list(frame.iter_rows()) == want


def test_explain_and_profiles_equal_the_dense_ones(fitted):
    _, _, theta, phi = dense(fitted)
    recs = rec.recommend(fitted, n=4, method="lda")
    frame = rec.explain(fitted, recs)
    d = np.searchsorted(fitted.user_ids_, frame.get_column("user_id").to_numpy())
    w = frame.get_column("item_id").to_numpy()
    parts = theta[d] * phi[:, w].T
    np.testing.assert_array_equal(frame.get_column("topic").to_numpy(), parts.argmax(axis=1))
    np.testing.assert_array_equal(frame.get_column("user_share").to_numpy(),
                                  theta[d, parts.argmax(axis=1)])
    users = [fitted.user_ids_[9], fitted.user_ids_[2]]
    profiles = user_profiles(fitted, n=3, users=users)
    want = [(fitted.user_ids_[r], rank + 1, k, None, theta[r, k]) for r in (9, 2)
            for rank, k in enumerate(sorted(range(K), key=lambda k: (-theta[r, k], k))[:3])]
    assert list(profiles.iter_rows()) == want


def test_summary_demand_and_names_equal_the_dense_ones(fitted):
    _, _, theta, phi = dense(fitted)
    summary = topic_summary(fitted, n_items=V + 1)  # every item: ties among the unused
    best = np.argsort(-phi, axis=1, kind="stable")
    assert summary.get_column("top_items").to_list() == best.tolist()
    assert summary.get_column("n_users_main").to_list() == \
        np.bincount(theta.argmax(axis=1), minlength=K).tolist()
    np.testing.assert_allclose(summary.get_column("expected_users").to_numpy(),
                               theta.sum(axis=0), rtol=ORDER_TOL)
    by_item = demand(fitted).sort("item_id")
    np.testing.assert_allclose(by_item.get_column("demand").to_numpy(),
                               theta.sum(axis=0) @ phi, rtol=ORDER_TOL)
    titles = [f"title {w}" if w % 7 else None for w in range(V)]
    shelves = [f"shelf {w % 5}" if w % 11 else "" for w in range(V)]
    for n in (1, 3, 8):
        assert name_topics(fitted, titles, n=n) == name_topics(phi, titles, n=n)
        assert name_topics(fitted, titles, n=n) == exact_names(fitted, titles, n)
        # shelves tie exactly in some topics, where phi's rounding alone picks one
        assert name_topics(fitted, shelves, n=n) == exact_names(fitted, shelves, n)


def exact_names(model, texts, n):
    """Texts by their exact mass sum_w (n_kw + beta) / (n_k + V beta) over their items, in
    rationals; ties to the text whose first item is lower."""
    _, n_wk, _, _ = dense(model)
    beta = Fraction(float(model.beta_))
    first = {}
    for w, t in enumerate(texts):
        if t:
            first.setdefault(t, w)
    names = []
    for k in range(model.n_topics):
        mass = {t: sum(n_wk[w, k] + beta for w in range(len(texts)) if texts[w] == t)
                for t in first}
        ranked = sorted(first, key=lambda t: (-mass[t], first[t]))[:n]
        names.append(" / ".join(ranked))
    return names


def test_similar_items_block_by_block_equal_the_whole_matrix(fitted, monkeypatch):
    _, _, _, phi = dense(fitted)
    joint = phi * fitted.n_k_[:, None]
    profile = joint / joint.sum(axis=0)
    unit = np.sqrt(profile)
    query = [3, 44, 20]
    want = reference.top_n(unit[:, query].T, unit, 7, seen=[[q] for q in query])
    whole = rec.similar_items(fitted, query, n=7)
    monkeypatch.setattr(rec, "ITEMS_PER_BLOCK", 5 * K)  # blocks of 5 items, merged
    blocks = rec.similar_items(fitted, query, n=7)
    assert blocks.equals(whole)
    assert whole.get_column("similar_item_id").to_list() == [w for row in want[0] for w in row]
    np.testing.assert_array_equal(whole.get_column("similarity").to_numpy(),
                                  np.minimum(want[1], 1.0).ravel())


def test_an_item_deep_in_both_orders_still_wins():
    """The threshold needs both parts. Item X (32) has the user's topic 0 once, as the 16
    items B (0..15) do (X comes after them by index), and topic 1 once less than the 16
    items A (16..31), so X is below the first 16 of topic 0's list and of the prior
    order; still X scores best: it beats the B by its prior part and the A by its count
    in the user's topic. The user (34) holds item Y (33) 20 times, in topic 0."""
    docs = [[b] for b in range(16)] + [[a, a] for a in range(16, 32)] + [[32, 32]] + \
        [[33] * 20]
    topics = [[0] for _ in range(16)] + [[1, 1] for _ in range(16)] + [[0, 1]] + [[0] * 20]
    indptr, words = csr(docs)
    z = np.concatenate([np.array(t) for t in topics])
    for name in ("dense", "sparse", "mh", "warp", "vector"):
        state = sampler.restore_state(indptr, words, z, 2, 34, alpha=0.1, beta=0.01,
                                      rng=np.ones((1, 4), dtype=np.uint64), sampler=name,
                                      n_shards=1)
        n_wk = np.zeros((34, 2))
        np.add.at(n_wk, (words, z), 1)
        phi = (n_wk.T + 0.01) / (n_wk.sum(axis=0)[:, None] + 34 * 0.01)
        theta = (np.array([[20, 0]]) + 0.1) / (20 + 0.2)
        want = reference.top_n(theta, phi, 3, [[33]])
        assert want[0][0][0] == 32
        got = top_n_sparse(build_tables(state), 3, users=(state, [33]), exclude_seen=True)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# -- a property over random corpora -------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402


@given(seed=st.integers(0, 10**6), n_topics=st.integers(1, 40),
       name=st.sampled_from(["dense", "sparse", "mh", "warp", "vector"]),
       n=st.integers(1, 60),
       alpha=st.sampled_from([0.01, 0.1, 1.0, 3.0]), exclude_seen=st.booleans())
def test_top_n_property_on_random_models(seed, n_topics, name, n, alpha, exclude_seen):
    """Any corpus (up to 400 items, so the lists are read to a depth below V), K, alpha,
    sampler and n: recommend for every user is the dense top n, bit for bit."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 400))
    popular = rng.zipf(1.5, size=4000) % n_items  # a few items in many users
    lists = [rng.choice(popular, size=rng.integers(1, 12)).tolist()
             for _ in range(int(rng.integers(1, 25)))]
    indptr, words = csr(lists)
    model = LDA(n_topics, sampler=name, n_iter=3, random_state=seed, alpha=alpha).fit(
        Corpus.from_csr(indptr, words, n_items=n_items + 2))
    _, _, theta, phi = dense(model)
    frame = rec.recommend(model, n=n, exclude_seen=exclude_seen, method="lda")
    items, scores = reference.top_n(theta, phi, n, seen_lists(model) if exclude_seen
                                    else None)
    assert frame.get_column("item_id").to_list() == [w for row in items for w in row if w >= 0]
    assert frame.get_column("score").to_list() == [s for row in scores for s in row
                                                   if s > -np.inf]


# -- memory and compilation ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["warp", "sparse"])
def test_per_call_paths_allocate_no_dense_matrix(name, monkeypatch):
    """6,000 users x 6,000 items, K = 200: theta and phi are 9.6 MB each, the V x K
    counts 4.8 MB. Each per-call function, on a model whose sparse tables are built,
    allocates less than a third of the smallest of them, and keeps neither matrix
    (similar_items scores every item, ITEMS_PER_BLOCK topic x item values at a time, with
    about four times that in transient copies: set here to 200 x 200)."""
    monkeypatch.setattr(rec, "ITEMS_PER_BLOCK", 200 * 200)
    n_users = n_items = 6000
    rng = np.random.default_rng(1)
    lists = [rng.integers(0, n_items, size=3).tolist() for _ in range(n_users)]
    indptr, words = csr(lists)
    model = LDA(200, sampler=name, n_iter=2, random_state=0).fit(
        Corpus.from_csr(indptr, words, n_items=n_items))
    tables = model._tables()
    limit = n_items * 200 * 4 // 3
    users = model.user_ids_[[5, 17, 4000]]
    texts = [f"shelf {w % 40}" for w in range(n_items)]
    calls = {
        "recommend 1": lambda: rec.recommend(model, users[0], n=20, method="lda"),
        "recommend 3": lambda: rec.recommend(model, users, n=20, exclude_items=[1, 2],
                                             method="lda"),
        "recommend_new": lambda: rec.recommend_new(model, [[1, 2, 3], [9]], n=20,
                                                   method="lda"),
        "transform": lambda: model.transform([[1, 2, 3], [4000]]),
        "explain": lambda: rec.explain(model, rec.recommend(model, users, n=5,
                                                            method="lda")),
        "user_profiles": lambda: user_profiles(model, users=users),
        "name_topics": lambda: name_topics(model, texts),
        "similar_items": lambda: rec.similar_items(model, [1, 2], n=5),
    }
    for what, call in calls.items():
        call()  # compiled, and the sorted id indexes kept
        peak = traced_peak(call)
        assert peak < limit, (what, peak, limit)
    assert model._tables() is tables
    assert not {"topic_word", "doc_topic"} & set(model._state_cache), model._state_cache.keys()


def test_score_kernels_compile_once(tmp_path):
    """Odd id dtypes, every sampler, learned priors, new users, exclusions and names: one
    signature per per-call kernel."""
    for name in ("dense", "sparse", "mh", "warp", "vector"):
        model = LDA(3, sampler=name, n_iter=2, random_state=np.uint8(1), alpha="auto",
                    optimize_burn_in=1, optimize_every=1).fit(
            [["x", "y"], ["y", "z", "z"]] * 3)
        rec.recommend(model, n=2, exclude_items=["x"], method="lda")
        rec.recommend_new(model, [["y"], []], n=2, method="lda")
        name_topics(model, ["a", "b", None])
        model.topic_word(sparse=True)
    for kernel in (score_kernels.item_rows_from_tokens, score_kernels.item_rows_from_packed,
                   score_kernels.topic_lists, score_kernels.prior_scores,
                   score_kernels.top_n_theta, score_kernels.top_n_rows,
                   score_kernels.text_sums):
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)


def test_recommend_users_by_id_of_any_type():
    """The kept sorted index finds string ids, repeated ids, and names unknown ones."""
    model = LDA(3, n_iter=2, random_state=0).fit(
        Corpus.from_lists([["a", "b"], ["b"], ["c", "a"]], user_ids=["u2", "u10", "u1"]))
    frame = rec.recommend(model, ["u1", "u2", "u1"], n=1, exclude_seen=False, method="lda")
    assert frame.get_column("user_id").to_list() == ["u1", "u2", "u1"]
    with pytest.raises(ValueError, match="1 user ids are not in the model, for example 'u3'"):
        rec.recommend(model, pl.Series(["u3", "u1"]), n=1, method="lda")
