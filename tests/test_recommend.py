"""Recommendations, explanations, labels, profiles and demand against slow references."""
import numpy as np
import polars as pl
import pytest

from gibbslda import LDA, Corpus, NotFittedError
from gibbslda.profiles import (demand, item_names, topic_labels, topic_summary,
                               user_profiles, user_topics)
from gibbslda.recommend import (explain, item_topics, recommend, recommend_new,
                                similar_items, top_n)
from tests import reference
from tests.reference import csr


def training_items(model):
    c = model.corpus_
    return [c.words[c.indptr[d]:c.indptr[d + 1]].tolist() for d in range(c.n_users)]


def frame_rows(frame, owner="user_id", item="item_id", score="score"):
    return list(zip(*(frame.get_column(c).to_list() for c in (owner, "rank", item, score))))


def expected_rows(owners, item_ids, items, scores):
    return [(owner, r + 1, item_ids[w], s) for owner, row, vals in zip(owners, items, scores)
            for r, (w, s) in enumerate(zip(row, vals)) if w >= 0]


@pytest.fixture(scope="module")
def model():
    """8 topics on 120 users x 60 items, two items (58, 59) nobody has."""
    rng = np.random.default_rng(11)
    lists = [rng.integers(0, 58, size=rng.integers(1, 25)).tolist() for _ in range(120)]
    indptr, indices = csr(lists)
    corpus = Corpus.from_csr(indptr, indices, n_items=60)
    return LDA(8, n_iter=30, random_state=5).fit(corpus)


@pytest.fixture(scope="module")
def named_model():
    """String ids: users u0.., items i00..i29 with titles and categories."""
    rng = np.random.default_rng(3)
    lists = [[f"i{w:02d}" for w in rng.integers(0, 30, size=rng.integers(2, 15))]
             for _ in range(50)]
    corpus = Corpus.from_lists(lists, user_ids=[f"u{d}" for d in range(50)])
    return LDA(4, n_iter=30, random_state=2).fit(corpus)


# -- top_n ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("excluded", [False, True])
def test_top_n_matches_reference(seed, excluded):
    rng = np.random.default_rng(seed)
    n_users, k, n_items = rng.integers(1, 40), rng.integers(1, 10), rng.integers(1, 600)
    theta = rng.dirichlet(np.full(k, 0.3), size=n_users)
    phi = rng.dirichlet(np.full(n_items, 0.1), size=k)
    if seed % 2:  # coarse values: many exact ties, broken by the lower item index
        theta, phi = np.round(theta * 4) / 4, np.round(phi, 2)
    seen = [rng.integers(0, n_items, size=rng.integers(0, n_items + 1)).tolist()
            for _ in range(n_users)]
    n = int(rng.integers(1, 30))
    want = reference.top_n(theta, phi, n, seen if excluded else None)
    for chunk in (1, 3, None):
        got = top_n(theta, phi, n, exclude=csr(seen) if excluded else None, chunk_size=chunk)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])  # bit for bit: same arithmetic


def test_top_n_scores_agree_with_a_matrix_product():
    rng = np.random.default_rng(0)
    theta, phi = rng.dirichlet(np.ones(6), size=30), rng.dirichlet(np.ones(400), size=6)
    items, scores = top_n(theta, phi, 15)
    blas = np.take_along_axis(theta @ phi, items, axis=1)
    np.testing.assert_allclose(scores, blas, rtol=1e-13)


def test_top_n_tiny_and_huge_values_take_the_float64_screen():
    """Values whose float32 products would overflow or underflow are screened in float64
    (and values below 2^-60 are flushed there); the result is still the exact top n."""
    rng = np.random.default_rng(4)
    theta, phi = rng.dirichlet(np.ones(5), size=20), rng.dirichlet(np.full(300, 0.05), size=5)
    for scale in (2.0 ** 120, 2.0 ** -80):
        got = top_n(theta * scale, phi, 10)
        want = reference.top_n(theta * scale, phi, 10)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    with pytest.raises(ValueError, match="too large to score"):
        top_n(theta * 1e300, phi * 1e10, 10)


def test_top_n_rows_of_the_identity_give_each_topics_top_items():
    rng = np.random.default_rng(1)
    phi = rng.dirichlet(np.ones(50), size=4)
    items, scores = top_n(np.eye(4), phi, 5)
    np.testing.assert_array_equal(items, np.argsort(-phi, axis=1, kind="stable")[:, :5])
    np.testing.assert_array_equal(scores, np.take_along_axis(phi, items, axis=1))


def test_top_n_pads_users_with_too_few_candidates_and_excludes_items():
    theta, phi = np.array([[1.0], [1.0]]), np.array([[0.5, 0.3, 0.2]])
    items, scores = top_n(theta, phi, 5, exclude=csr([[0, 0], []]), exclude_items=[2])
    np.testing.assert_array_equal(items, [[1, -1, -1], [0, 1, -1]])
    np.testing.assert_array_equal(scores, [[0.3, -np.inf, -np.inf], [0.5, 0.3, -np.inf]])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n": 0}, ValueError, "n must be >= 1, got 0"),
    ({"n": 2.5}, TypeError, "n must be an integer"),
    ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
    ({"exclude": "x"}, TypeError, "exclude must be a CSR pair"),
    ({"exclude": ([0, 1], [0])}, ValueError, "n_users \\+ 1 = 3"),
    ({"exclude": ([0, 1, 1], [5])}, ValueError, "indices in \\[0, 3\\)"),
    ({"exclude": ([0, 2, 1], [0])}, ValueError, "never decrease"),
    ({"exclude": ([0, 1, 1], [0.5])}, TypeError, "exclude: indices must hold integers"),
    ({"exclude_items": [-1]}, ValueError, "exclude_items must be item indices"),
    ({"exclude_items": ["a"]}, TypeError, "exclude_items must be item indices"),
    ({"theta": np.ones((2, 0)), "phi": np.ones((0, 3))}, ValueError, "at least one topic"),
    ({"theta": -np.ones((2, 1))}, ValueError, "theta must be finite and >= 0"),
    ({"theta": np.ones((2, 2))}, ValueError, "theta has 2 topics"),
    ({"phi": np.array([[np.nan, 1, 1]])}, ValueError, "phi must be finite"),
    ({"phi": np.ones(3)}, ValueError, "phi must be 2-D"),
    ({"theta": np.array([["a"], ["b"]])}, TypeError, "theta must hold numbers"),
])
def test_top_n_rejects_bad_arguments(kwargs, error, match):
    args = {"theta": np.ones((2, 1)), "phi": np.ones((1, 3)), "n": 2, **kwargs}
    with pytest.raises(error, match=match):
        top_n(args.pop("theta"), args.pop("phi"), args.pop("n"), **args)


# -- recommend ------------------------------------------------------------------------------
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_recommend_all_users_matches_reference(model, exclude_seen):
    frame = recommend(model, n=7, exclude_seen=exclude_seen, method="lda")
    assert frame.columns == ["user_id", "rank", "item_id", "score"]
    seen = training_items(model) if exclude_seen else None
    items, scores = reference.top_n(model.doc_topic_, model.topic_word_, 7, seen)
    assert frame_rows(frame) == expected_rows(model.user_ids_, model.item_ids_, items, scores)
    if exclude_seen:
        pairs = set(zip(frame.get_column("user_id"), frame.get_column("item_id")))
        assert not pairs & {(u, w) for u, ws in zip(model.user_ids_, seen) for w in ws}


def test_recommend_does_not_depend_on_the_chunk_size(model):
    frames = [recommend(model, n=10, chunk_size=c, method="lda") for c in (1, 7, 64, None)]
    for frame in frames[1:]:
        assert frame.equals(frames[0])


def test_recommend_some_users_in_the_order_given(model):
    full = recommend(model, n=5, method="lda")
    users = [model.user_ids_[9], model.user_ids_[2], model.user_ids_[9]]
    some = recommend(model, np.array(users), n=5, method="lda")
    want = pl.concat([full.filter(pl.col("user_id") == u) for u in users])
    assert some.equals(want)
    assert recommend(model, model.user_ids_[2], n=5, method="lda").equals(want.slice(5, 5))
    assert recommend(model, pl.Series(users), n=5, method="lda").equals(want)
    none = recommend(model, [], n=5, method="lda")
    assert none.height == 0 and none.schema == full.schema


def test_recommend_exclude_items_never_returns_them(named_model):
    banned = ["i03", "i07"]
    frame = recommend(named_model, n=30, exclude_items=banned, method="lda")
    assert not frame.get_column("item_id").is_in(banned).any()
    index = [list(named_model.item_ids_).index(b) for b in banned]
    items, scores = reference.top_n(named_model.doc_topic_, named_model.topic_word_, 30,
                                  training_items(named_model), banned=index)
    assert frame_rows(frame) == expected_rows(named_model.user_ids_, named_model.item_ids_,
                                              items, scores)


def test_recommend_names_unknown_users(named_model):
    with pytest.raises(ValueError, match="2 user ids are not in the model, for example "
                                         "'nobody'; recommend_new folds in new users"):
        recommend(named_model, ["u1", "nobody", "ghost"], method="lda")
    with pytest.raises(ValueError, match="1 item ids are not in the model"):
        recommend(named_model, exclude_items=["zzz"], method="lda")


def test_recommend_needs_a_fitted_model():
    with pytest.raises(NotFittedError):
        recommend(LDA(3), method="lda")
    with pytest.raises(TypeError, match="model must be a fitted gibbslda.LDA"):
        recommend(object(), method="lda")


def test_recommend_new_scores_the_fold_in_theta(named_model):
    histories = [["i01", "i02", "zzz"], [], ["i05"] * 3 + ["i06"]]
    frame = recommend_new(named_model, histories, n=6, user_ids=["a", "b", "c"],
                          method="lda")
    corpus = Corpus.from_lists(histories, vocabulary=named_model.item_ids_, drop_empty=False)
    theta = named_model.transform(corpus)
    np.testing.assert_allclose(theta[1], named_model.alpha_ / named_model.alpha_.sum())
    seen = [[list(named_model.item_ids_).index(w) for w in h if w != "zzz"]
            for h in histories]
    items, scores = reference.top_n(theta, named_model.topic_word_, 6, seen)
    assert frame_rows(frame) == expected_rows(["a", "b", "c"], named_model.item_ids_,
                                              items, scores)
    assert not frame.filter(pl.col("user_id") == "a").get_column("item_id").is_in(
        ["i01", "i02"]).any()
    # a Corpus gives the same; without exclusion the given items can come back
    assert recommend_new(named_model, corpus, n=6, user_ids=["a", "b", "c"],
                         method="lda").equals(frame)
    kept = recommend_new(named_model, histories, n=30, exclude_seen=False, method="lda")
    assert kept.filter(pl.col("user_id") == 2).get_column("item_id").is_in(["i05"]).any()
    assert kept.get_column("user_id").unique().sort().to_list() == [0, 1, 2]


@pytest.mark.parametrize("histories, error, match", [
    ("i01", TypeError, "histories must be one sequence"),
    (["i01", "i02"], TypeError, "each history must be a sequence of item ids"),
])
def test_recommend_new_rejects_flat_histories(named_model, histories, error, match):
    with pytest.raises(error, match=match):
        recommend_new(named_model, histories, method="lda")


def test_recommend_new_user_ids_must_match(named_model):
    with pytest.raises(ValueError, match="user_ids has 1 ids for 2"):
        recommend_new(named_model, [["i01"], ["i02"]], user_ids=["a"], method="lda")
    with pytest.raises(ValueError, match="user_ids has 1 ids for 2"):
        recommend_new(named_model, Corpus.from_lists([["i01"], ["i02"]]), user_ids=["a"],
                      method="lda")


# -- similar items --------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["hellinger", "cosine"])
def test_similar_items_match_the_formula(model, metric):
    profile = item_topics(model)
    np.testing.assert_allclose(profile.sum(axis=0), 1.0)
    joint = model.topic_word_ * model.n_k_[:, None]
    np.testing.assert_allclose(profile, joint / joint.sum(axis=0), rtol=1e-12)
    unit = np.sqrt(profile) if metric == "hellinger" else profile / np.linalg.norm(
        profile, axis=0)
    query = [3, 17, 40]
    frame = similar_items(model, query, n=8, metric=metric)
    assert frame.columns == ["item_id", "rank", "similar_item_id", "similarity"]
    items, scores = reference.top_n(unit[:, query].T, unit, 8, seen=[[q] for q in query])
    assert frame_rows(frame, "item_id", "similar_item_id", "similarity") == \
        expected_rows(query, model.item_ids_, items, np.minimum(scores, 1.0))
    # symmetric: the similarity of (a, b) is that of (b, a) up to rounding
    full = unit.T @ unit
    for a, b, s in zip(frame.get_column("item_id"), frame.get_column("similar_item_id"),
                       frame.get_column("similarity")):
        assert s == pytest.approx(full[b, a], rel=1e-12)
        assert 0 <= s <= 1


def test_similar_items_hand_case(model):
    """Items 58 and 59 have no token: equal phi columns beta / (n_k + V beta), so equal
    profiles, and each is the other's most similar item, at similarity 1."""
    frame = similar_items(model, [58, 59], n=1)
    assert frame.get_column("similar_item_id").to_list() == [59, 58]
    np.testing.assert_allclose(frame.get_column("similarity").to_numpy(), 1.0, rtol=1e-12)
    prior = model.n_k_ / (model.n_k_ + 60 * model.beta_)
    np.testing.assert_allclose(item_topics(model)[:, 58], prior / prior.sum(), rtol=1e-12)


def test_similar_items_rejects_unknown_items_and_metrics(model):
    with pytest.raises(ValueError, match="1 item ids are not in the model, for example 99"):
        similar_items(model, [1, 99])
    with pytest.raises(ValueError, match="metric must be 'hellinger' or 'cosine'"):
        similar_items(model, [1], metric="jaccard")


# -- explanations and labels ----------------------------------------------------------------
def test_explain_picks_the_largest_contribution(named_model):
    labels = [f"label {k}" for k in range(4)]
    recs = recommend(named_model, n=5, method="lda")
    frame = explain(named_model, recs, labels)
    assert frame.columns == recs.columns + ["topic", "label", "user_share", "score_share",
                                            "explanation"]
    users = {u: d for d, u in enumerate(named_model.user_ids_)}
    items = {w: i for i, w in enumerate(named_model.item_ids_)}
    theta, phi = named_model.doc_topic_, named_model.topic_word_
    for row in frame.iter_rows(named=True):
        d, w = users[row["user_id"]], items[row["item_id"]]
        parts = theta[d] * phi[:, w]
        k = int(np.argmax(parts))
        assert row["topic"] == k and row["label"] == labels[k]
        assert row["user_share"] == theta[d, k]
        assert row["score_share"] == pytest.approx(parts[k] / row["score"], rel=1e-12)
        assert row["explanation"] == f"interest {k}: label {k}, {theta[d, k]:.0%} of this user"


def test_explain_new_users_and_no_labels(named_model):
    histories = [["i01", "i04"], ["i10"]]
    recs = recommend_new(named_model, histories, n=3, user_ids=["x", "y"], method="lda")
    theta = named_model.transform(histories)
    frame = explain(named_model, recs, theta=theta, user_ids=["x", "y"])
    d = np.array([["x", "y"].index(u) for u in frame.get_column("user_id")])
    w = np.array([list(named_model.item_ids_).index(i) for i in frame.get_column("item_id")])
    topic = np.argmax(theta[d] * named_model.topic_word_[:, w].T, axis=1)
    np.testing.assert_array_equal(frame.get_column("topic").to_numpy(), topic)
    assert frame.get_column("label").null_count() == frame.height
    assert frame.get_column("explanation")[0] == \
        f"interest {topic[0]}, {theta[d[0], topic[0]]:.0%} of this user"
    with pytest.raises(ValueError, match="2 user ids are not in the model, for example 'x'"):
        explain(named_model, recs)  # x and y are not training users
    with pytest.raises(ValueError, match="theta must have shape \\(1, 4\\)"):
        explain(named_model, recs, theta=theta, user_ids=["x"])
    with pytest.raises(ValueError, match="labels must have one string per topic \\(4\\)"):
        explain(named_model, recs, ["a"], theta=theta, user_ids=["x", "y"])
    with pytest.raises(ValueError, match="needs a 'item_id' column"):
        explain(named_model, recs.drop("item_id"), theta=theta, user_ids=["x", "y"])


def item_table(model):
    ids = list(model.item_ids_)
    return pl.DataFrame({"item_id": ids, "title": [f" title {w} " for w in ids],
                         "category": ["even" if int(w[1:]) % 2 == 0 else "odd" for w in ids]})


def test_topic_labels_from_titles_and_categories(named_model):
    table = item_table(named_model)
    phi = named_model.topic_word_
    titles = topic_labels(named_model, table, n=2)
    for k, label in enumerate(titles):
        top = np.argsort(-phi[k], kind="stable")[:2]
        assert label == " / ".join(f"title {named_model.item_ids_[w]}" for w in top)
    cats = topic_labels(named_model, table, n=5, label="category", sep=" & ")
    even = np.array([int(w[1:]) % 2 == 0 for w in named_model.item_ids_])
    for k, label in enumerate(cats):
        mass_even, mass_odd = phi[k, even].sum(), phi[k, ~even].sum()
        assert label == ("even & odd" if mass_even >= mass_odd else "odd & even")
    as_dict = dict(zip(table.get_column("item_id"), table.get_column("title")))
    assert topic_labels(named_model, as_dict, n=2) == titles
    assert topic_labels(named_model, table.to_pandas(), n=2) == titles


def test_topic_labels_without_labelled_items_and_bad_tables(named_model):
    assert topic_labels(named_model, {"nope": "x"}) == [f"interest {k}" for k in range(4)]
    table = item_table(named_model)
    with pytest.raises(ValueError, match="1 item ids on more than one row, for example 'i00'"):
        topic_labels(named_model, pl.concat([table, table.head(1)]))
    with pytest.raises(ValueError, match="column 'name' not found"):
        topic_labels(named_model, table, label="name")
    with pytest.raises(TypeError, match="item labels must be a dict or a data frame"):
        topic_labels(named_model, ["a"])


# -- profiles, topic sizes, demand ----------------------------------------------------------
def test_user_profiles_are_sorted_weights_of_theta(named_model):
    labels = [f"L{k}" for k in range(4)]
    frame = user_profiles(named_model, n=3, labels=labels)
    assert frame.columns == ["user_id", "rank", "topic", "label", "weight"]
    theta = named_model.doc_topic_
    want = [(u, r + 1, k, labels[k], theta[d, k]) for d, u in enumerate(named_model.user_ids_)
            for r, k in enumerate(sorted(range(4), key=lambda k: (-theta[d, k], k))[:3])]
    assert list(frame.iter_rows()) == want
    sums = frame.group_by("user_id").agg(pl.col("weight").sum()).get_column("weight")
    assert (sums <= 1 + 1e-12).all()
    some = user_profiles(named_model, n=10, users=["u3"])
    assert some.get_column("rank").to_list() == [1, 2, 3, 4]  # n is capped at K
    assert some.get_column("label").null_count() == 4
    assert some.get_column("weight").sum() == pytest.approx(1.0)


@pytest.mark.parametrize("which", ["model", "named_model"])  # integer and string ids
def test_user_topics_long_and_wide_hold_all_of_theta(which, request):
    model = request.getfixturevalue(which)
    theta = model.doc_topic_
    long = user_topics(model)
    assert long.schema == {"user_id": pl.String, "topic": pl.Int32, "weight": pl.Float64}
    assert list(long.iter_rows()) == reference.user_topic_rows(theta, model.user_ids_)
    wide = user_topics(model, wide=True)
    assert wide.columns == ["user_id", *(f"topic_{k}" for k in range(model.n_topics))]
    assert wide.get_column("user_id").to_list() == [str(u) for u in model.user_ids_]
    np.testing.assert_array_equal(wide.drop("user_id").to_numpy(), theta)


def test_item_names_are_labels_else_ids(model):
    """The labels file of a model folder: ids as text, one empty label, one missing, one
    blank (kept as given), one for an item the model does not have."""
    ids = model.item_ids_.tolist()
    labels = {"3": "three", "5": "  ", "7": "", "11": "eleven", "999": "not in the model"}
    table = pl.DataFrame({"item_id": [*labels, "20"], "label": [*labels.values(), None]})
    names = item_names(model, table)
    assert names.shape == (len(ids),) and names.dtype == object
    assert names.tolist() == reference.item_names(ids, labels)
    assert names[[3, 5, 7, 20]].tolist() == ["three", "  ", "7", "20"]
    assert item_names(model, {3: "three"}).tolist() == reference.item_names(ids, {"3": "three"})
    assert item_names(model).tolist() == [str(i) for i in ids]
    with pytest.raises(ValueError, match="on more than one row"):
        item_names(model, pl.DataFrame({"item_id": ["3", "3"], "label": ["a", "b"]}))


def test_topic_summary_counts_main_interests(named_model):
    frame = topic_summary(named_model, n_items=3)
    theta = named_model.doc_topic_
    main = np.bincount(theta.argmax(axis=1), minlength=4)
    assert frame.get_column("n_users_main").to_list() == main.tolist()
    assert frame.get_column("n_users_main").sum() == theta.shape[0]
    np.testing.assert_allclose(frame.get_column("expected_users").to_numpy(), theta.sum(0))
    assert frame.get_column("share_tokens").sum() == pytest.approx(1.0)
    np.testing.assert_allclose(frame.get_column("share_tokens").to_numpy(),
                               named_model.n_k_ / named_model.n_k_.sum())
    phi = named_model.topic_word_
    for k, top in enumerate(frame.get_column("top_items").to_list()):
        assert top == [named_model.item_ids_[w] for w in np.argsort(-phi[k], kind="stable")[:3]]


def test_demand_is_the_sum_over_users_of_item_probabilities(named_model):
    theta, phi = named_model.doc_topic_, named_model.topic_word_
    brute = sum(theta[d] @ phi for d in range(theta.shape[0]))
    frame = demand(named_model)
    assert frame.columns == ["item_id", "demand", "share", "n_tokens"]
    by_item = dict(zip(frame.get_column("item_id"), frame.get_column("demand")))
    np.testing.assert_allclose([by_item[w] for w in named_model.item_ids_], brute, rtol=1e-12)
    assert frame.get_column("demand").sum() == pytest.approx(theta.shape[0])
    assert (np.diff(frame.get_column("demand").to_numpy()) <= 0).all()
    assert frame.get_column("n_tokens").sum() == named_model.corpus_.n_tokens


def test_demand_per_category(named_model):
    table = item_table(named_model).filter(pl.col("item_id") != "i00")  # i00: no category
    frame = demand(named_model, table)
    assert frame.columns == ["category", "n_items", "demand", "share", "n_tokens"]
    items = demand(named_model)
    joined = items.join(table, on="item_id", how="left")
    for row in frame.iter_rows(named=True):
        group = joined.filter(pl.col("category").eq_missing(row["category"]))
        assert row["n_items"] == group.height
        assert row["demand"] == pytest.approx(group.get_column("demand").sum(), rel=1e-12)
        assert row["n_tokens"] == group.get_column("n_tokens").sum()
    assert frame.get_column("category").to_list()[-1] is None  # the smallest here
    assert frame.get_column("share").sum() == pytest.approx(1.0)
    as_dict = dict(zip(table.get_column("item_id"), table.get_column("category")))
    assert demand(named_model, as_dict, category="ignored").equals(frame)


def test_top_n_many_ties_at_the_cut(monkeypatch):
    """Items with equal scores at the n-th place are all candidates; they are rescored in
    bounded slices and the lowest indices win."""
    import gibbslda.topn as recommend_module

    monkeypatch.setattr(recommend_module, "_RESCORE_VALUES", 7)
    phi = np.full((2, 500), 1 / 500)
    phi[0, [450, 3]] = [0.3, 0.2]
    phi[0] /= phi[0].sum()
    items, scores = top_n(np.array([[0.5, 0.5], [0.0, 1.0]]), phi, 4)
    np.testing.assert_array_equal(items, [[450, 3, 0, 1], [0, 1, 2, 3]])
    want = reference.top_n(np.array([[0.5, 0.5], [0.0, 1.0]]), phi, 4)
    np.testing.assert_array_equal(scores, want[1])
