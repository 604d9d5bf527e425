"""Ranking metrics against a slow reference, and the popularity / item-kNN / EASE baselines."""
import math

import numpy as np
import pytest

from gibbslda import Corpus, topn
from gibbslda._kernels.neighbours import cooccurrence, cosine_neighbours, sparse_product
from gibbslda.baselines import EASE, ItemKNN, Popularity
from gibbslda.errors import NotFittedError
from gibbslda.ranking import evaluate_rankings, item_popularity, ranking_metrics, top_k
from tests import reference
from tests.reference import csr


def dense(lists, n_items):
    x = np.zeros((len(lists), n_items))
    for u, items in enumerate(lists):
        x[u, list(items)] = 1.0
    return x


def assert_matches_reference(result, scores, train, heldout, popularity):
    for k, metrics in result.items():
        expected, coverage = reference.ranking_metrics(scores, train, heldout, k,
                                                       popularity)
        for name, values in expected.items():
            np.testing.assert_allclose(getattr(metrics, name), values, rtol=1e-12,
                                       err_msg=f"{name}@{k}")
        assert metrics.coverage == pytest.approx(coverage)


# One user, 5 items, item 0 known. Ranking without item 0: 3 (0.9), 1 (0.5), 4 (0.4), 2 (0.1).
HAND_SCORES = np.array([[9.0, 0.5, 0.1, 0.9, 0.4]])
HAND_TRAIN, HAND_HELDOUT = [[0]], [[1, 2]]


def test_hand_worked_case():
    result = ranking_metrics(HAND_SCORES, csr(HAND_TRAIN), csr(HAND_HELDOUT), k=(1, 3, 10))
    # k = 3: list 3, 1, 4; hits 0, 1, 0; n = 2 held-out items, min(k, n) = 2.
    at3 = result[3]
    assert at3.recall[0] == pytest.approx(0.5)             # 1 / min(3, 2)
    assert at3.precision[0] == pytest.approx(1 / 3)        # 1 / 3
    # DCG = 1/log2(3) = 0.63093; IDCG = 1 + 1/log2(3) = 1.63093; NDCG = 0.38685
    assert at3.ndcg[0] == pytest.approx(0.386853, abs=1e-6)
    assert at3.average_precision[0] == pytest.approx(0.25)  # (1 x P@2 = 1/2) / 2
    assert at3.hit_rate[0] == 1.0
    assert at3.coverage == pytest.approx(3 / 5)
    # popularity of the single training user: only item 0 -> 1; the rest floor to 1/1 too
    assert at3.novelty[0] == pytest.approx(0.0)
    assert result[1].recall[0] == 0.0 and result[1].hit_rate[0] == 0.0
    # k = 10 > 4 candidates: list 3, 1, 4, 2, then padding; both held-out items found.
    at10 = result[10]
    assert at10.recall[0] == pytest.approx(1.0)             # 2 / min(10, 2)
    assert at10.precision[0] == pytest.approx(0.2)          # 2 / 10
    # DCG = 1/log2(3) + 1/log2(5) = 0.63093 + 0.43068; NDCG = 1.06161 / 1.63093 = 0.65092
    assert at10.ndcg[0] == pytest.approx(0.650920, abs=1e-6)
    assert at10.average_precision[0] == pytest.approx(0.5)  # (1/2 + 2/4) / 2
    assert at10.coverage == pytest.approx(4 / 5)


def test_items_outside_the_candidates_are_never_recommended_and_count_as_misses():
    # HAND_SCORES without item 0 (known) and items 2, 3 (not candidates): 1 (0.5), 4 (0.4),
    # then padding. Held out: 1 (hit at rank 1) and 2 (unscorable: always a miss).
    candidates = np.array([True, True, False, False, True])
    result = ranking_metrics(HAND_SCORES, csr(HAND_TRAIN), csr(HAND_HELDOUT), k=3,
                             candidates=candidates)[3]
    assert result.recall[0] == pytest.approx(0.5)          # 1 / min(3, 2)
    assert result.precision[0] == pytest.approx(1 / 3)
    # DCG = 1; IDCG = 1 + 1/log2(3) = 1.63093; NDCG = 0.613147
    assert result.ndcg[0] == pytest.approx(0.613147, abs=1e-6)
    assert result.coverage == pytest.approx(2 / 5)         # items 1 and 4
    assert result.n_unscorable == 1 and result.n_heldout[0] == 2
    assert ranking_metrics(HAND_SCORES, csr(HAND_TRAIN), csr(HAND_HELDOUT),
                           k=3)[3].n_unscorable == 0


def test_novelty_uses_the_given_popularity():
    popularity = np.array([1.0, 0.5, 0.25, 0.125, 1.0])
    result = ranking_metrics(HAND_SCORES, csr(HAND_TRAIN), csr(HAND_HELDOUT), k=2,
                             item_popularity=popularity)
    # top 2: items 3 (-log2 0.125 = 3 bits) and 1 (1 bit) -> mean 2 bits
    assert result[2].novelty[0] == pytest.approx(2.0)


def test_default_popularity_is_share_of_training_users_with_a_floor():
    train = csr([[0, 1, 1], [1], [], [2]])
    # item 0: 1 of 4 users, item 1: 2 (repeats once), item 2: 1, item 3: none -> 1 user
    np.testing.assert_allclose(item_popularity(train, 4), [0.25, 0.5, 0.25, 0.25])


def test_ties_go_to_the_lower_item_index():
    scores = np.array([[0.0, 2.0, 1.0, 1.0, 1.0],
                       [1.0, 1.0, 1.0, 1.0, 1.0],
                       [3.0, 1.0, 1.0, 3.0, -np.inf],
                       [-np.inf, 5.0, -np.inf, -np.inf, -np.inf]])
    np.testing.assert_array_equal(top_k(scores, 2), [[1, 2], [0, 1], [0, 3], [1, -1]])
    np.testing.assert_array_equal(top_k(scores, 3)[:, 2], [3, 2, 1, -1])
    # k >= n_items takes the full-sort path; -inf items are never returned
    np.testing.assert_array_equal(top_k(scores, 7)[2], [0, 3, 1, 2, -1, -1, -1])
    # and the metrics see the same order: user 1 held out item 4 misses at k = 3
    result = ranking_metrics(scores[1:2], csr([[]]), csr([[4]]), k=(3, 5))
    assert result[3].recall[0] == 0.0 and result[5].recall[0] == 1.0
    assert result[5].ndcg[0] == pytest.approx(1 / math.log2(6))


def test_top_k_lists_are_prefixes_and_shuffle_invariant():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(30, 40)).astype(float)  # many ties
    full = top_k(scores, 40)
    perm = rng.permutation(40)
    for k in (1, 5, 39):
        np.testing.assert_array_equal(top_k(scores, k), full[:, :k])
    ref = [sorted(range(40), key=lambda i: (-row[i], i)) for row in scores]
    np.testing.assert_array_equal(full, ref)
    # the same scores under relabelled items give the relabelled ranking's scores
    np.testing.assert_array_equal(np.take_along_axis(scores[:, perm], top_k(scores[:, perm], 40),
                                                     axis=1), -np.sort(-scores, axis=1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_topn_top_k_matches_the_argsort_reference(dtype):
    """gibbslda.topn.top_k, the one top-k, on many ties, -inf entries and every k."""
    rng = np.random.default_rng(11)
    scores = rng.integers(-2, 3, size=(25, 12)).astype(dtype)  # 5 values: ties everywhere
    if dtype != np.int64:
        scores[rng.random(scores.shape) < 0.2] = -np.inf  # never returned
        scores[0] = -np.inf  # a row with nothing to return
    for k in (1, 2, 5, 11, 12, 15):
        np.testing.assert_array_equal(topn.top_k(scores, k), reference.top_k(scores, k))


def test_users_without_heldout_items_are_nan_and_left_out():
    scores = np.array([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1], [0.1, 0.2, 0.3]])
    # user 1 has nothing held out; user 2's only held-out item is also known: dropped
    result = ranking_metrics(scores, csr([[], [0], [2]]), csr([[1], [], [2]]), k=1)[1]
    assert result.n_users == 1
    np.testing.assert_array_equal(result.n_heldout, [1, 0, 0])
    assert np.isnan(result.recall[1:]).all() and np.isnan(result.novelty[1:]).all()
    assert result.recall[0] == 0.0 and result.means()["recall"] == 0.0
    assert result.coverage == pytest.approx(1 / 3)  # only user 0's list (item 0) counts


def test_known_items_are_excluded_from_the_ranking():
    # every user's training items score highest; the held-out item is next best
    train = [[0, 1], [2], [3, 4, 0]]
    heldout = [[2], [0], [1]]
    scores = np.zeros((3, 5))
    for u, items in enumerate(train):
        scores[u, items] = 10.0
        scores[u, heldout[u]] = 5.0
    result = ranking_metrics(scores, csr(train), csr(heldout), k=1)[1]
    np.testing.assert_array_equal(result.recall, [1.0, 1.0, 1.0])
    # without the training matrix the known items would take the first place
    result = ranking_metrics(scores, csr([[], [], []]), csr(heldout), k=1)[1]
    np.testing.assert_array_equal(result.recall, [0.0, 0.0, 0.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_cases_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 23, 12
    scores = rng.integers(0, 5, size=(n_users, n_items)).astype(float)  # ties everywhere
    scores[rng.random(scores.shape) < 0.1] = -np.inf
    train = [sorted(rng.choice(n_items, rng.integers(0, 6), replace=False).tolist())
             for _ in range(n_users)]
    heldout = [rng.choice(n_items, rng.integers(0, 8)).tolist() for _ in range(n_users)]
    popularity = reference.item_popularity(train, n_items)
    ks = (1, 3, 5, 20)
    expected_args = (scores, train, heldout, popularity)
    for scorer in (scores, lambda users: scores[users]):
        result = ranking_metrics(scorer, csr(train), csr(heldout), ks, chunk_size=4)
        assert sorted(result) == list(ks)
        assert_matches_reference(result, *expected_args)
    whole = ranking_metrics(scores, csr(train), csr(heldout), ks, chunk_size=1000)
    for k in ks:
        np.testing.assert_array_equal(whole[k].ndcg, result[k].ndcg)


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(4)
    scores = rng.random((150, 9))
    train = csr([[i % 9] for i in range(150)])
    heldout = csr([[(i * 7) % 9, (i + 1) % 9] for i in range(150)])
    calls = []

    def scorer(users):  # width unknown until the first block: 64 users, then 2**22 // 9
        calls.append(users.size)
        return scores[users]

    expected = ranking_metrics(scores, train, heldout, k=(2, 4))
    for result in (ranking_metrics(scorer, train, heldout, k=(2, 4)),
                   ranking_metrics(scores, train, heldout, k=(2, 4), chunk_size=7)):
        for k in (2, 4):
            for name in ("recall", "ndcg", "average_precision", "novelty"):
                np.testing.assert_array_equal(getattr(result[k], name),
                                              getattr(expected[k], name))
            assert result[k].coverage == expected[k].coverage
    assert calls == [64, 86]


def test_evaluate_rankings_table():
    rng = np.random.default_rng(5)
    scores = rng.random((10, 8))
    train, heldout = csr([[i % 8] for i in range(10)]), csr([[(i + 3) % 8] for i in range(10)])
    table = evaluate_rankings(scores, train, heldout, k=[5, 2])
    assert list(table) == ["k", "n_users", "recall", "ndcg", "precision", "hit_rate", "map",
                           "coverage", "novelty"]
    assert table["k"] == [2, 5] and table["n_users"] == [10, 10]
    metrics = ranking_metrics(scores, train, heldout, k=(2, 5))
    for row, k in enumerate((2, 5)):
        assert table["recall"][row] == pytest.approx(np.mean(metrics[k].recall))
        assert table["map"][row] == pytest.approx(np.mean(metrics[k].average_precision))
        assert table["coverage"][row] == metrics[k].coverage


# Baselines on a tiny matrix: 4 users x 4 items.
#   u0: {0, 1}   u1: {0, 1, 2}   u2: {1, 2}   u3: {3}
# users per item n = [2, 3, 2, 1]; co-occurrence 0-1: 2, 0-2: 1, 1-2: 2, item 3: none.
# cosine 0-1 = 2 / sqrt(2 x 3) = 0.8165, 0-2 = 1 / sqrt(2 x 2) = 0.5, 1-2 = 0.8165.
TINY = [[0, 1], [0, 1, 2], [1, 2], [3]]
C01 = 2 / math.sqrt(6)


def test_popularity_orders_by_training_users():
    model = Popularity().fit(csr(TINY + [[1, 1]]))  # repeats count once
    np.testing.assert_array_equal(model.item_counts_, [2, 4, 2, 1])
    scores = model.scores(np.arange(2))
    np.testing.assert_array_equal(top_k(scores, 4), [[1, 0, 2, 3]] * 2)  # 0 before 2: tie


def test_item_knn_cosine_and_neighbour_cut():
    full = ItemKNN(n_neighbors=10).fit(csr(TINY))
    indptr, indices, data = full.similarity_
    rows = [list(zip(indices[a:b].tolist(), data[a:b].round(4).tolist()))
            for a, b in zip(indptr[:-1], indptr[1:])]
    assert rows == [[(1, 0.8165), (2, 0.5)], [(0, 0.8165), (2, 0.8165)],
                    [(1, 0.8165), (0, 0.5)], []]
    one = ItemKNN(n_neighbors=1).fit(csr(TINY))
    indptr, indices, data = one.similarity_
    assert indices.tolist() == [1, 0, 1]  # item 1: 0 and 2 tie at 0.8165, 0 kept
    np.testing.assert_allclose(data, [C01] * 3)
    # u0 = {0, 1}: item 0's neighbour 1 and item 1's neighbour 0 -> [C01, C01, 0, 0]
    np.testing.assert_allclose(one.scores(np.array([0])), [[C01, C01, 0, 0]])


def test_item_knn_matches_dense_cosine():
    rng = np.random.default_rng(1)
    x = (rng.random((40, 15)) < 0.3).astype(float)
    lists = [np.flatnonzero(row).tolist() for row in x]
    model = ItemKNN(n_neighbors=15).fit(csr(lists), n_items=15)
    norms = np.sqrt(x.sum(axis=0))
    cosine = x.T @ x / np.maximum(np.outer(norms, norms), 1e-300)
    np.fill_diagonal(cosine, 0.0)
    indptr, indices, data = model.similarity_
    sim = np.zeros((15, 15))
    sim[np.repeat(np.arange(15), np.diff(indptr)), indices] = data
    np.testing.assert_allclose(sim, cosine, rtol=1e-12)
    np.testing.assert_allclose(model.scores(np.arange(40)), x @ cosine, rtol=1e-12)


def test_ease_matches_the_closed_form():
    rng = np.random.default_rng(2)
    x = (rng.random((30, 8)) < 0.4).astype(float)
    lists = [np.flatnonzero(row).tolist() for row in x]
    model = EASE(l2=3.0).fit(csr(lists), n_items=8)
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(8))
    b = np.eye(8) - p @ np.diag(1 / np.diag(p))
    np.fill_diagonal(b, 0.0)  # already zero up to rounding
    np.testing.assert_allclose(model.weights_, b, atol=1e-12)
    np.testing.assert_allclose(model.scores(np.arange(30)), x @ b, atol=1e-12)
    assert model.n_dropped_items_ == 0 and model.items_.tolist() == list(range(8))


@pytest.mark.parametrize("max_items", [40, 25])
def test_ease_with_fewer_users_than_items_matches_the_closed_form(max_items):
    """6 users (one with no kept item) and 40 items: the fit takes the n x n form; its
    weights and scores are the m x m closed form's (plain numpy inverse, here) to 1e-12."""
    rng = np.random.default_rng(5)
    x = (rng.random((7, 40)) < 0.3).astype(float)
    x[:, 10] = 1.0  # one item everyone has
    x[:, 39] = 0.0
    x[3] = 0.0
    x[3, 39] = 1.0  # user 3 only has an item the cap of 25 drops (it has 1 user)
    lists = [np.flatnonzero(row).tolist() for row in x]
    model = EASE(l2=2.0, max_items=max_items).fit(csr(lists), n_items=40)
    kept = model.items_
    assert kept.size == max_items and (max_items == 40 or 39 not in kept)
    sub = x[:, kept]
    assert np.count_nonzero(sub.any(axis=1)) < kept.size  # the n x n form was taken
    p = np.linalg.inv(sub.T @ sub + 2.0 * np.eye(kept.size))
    b = np.eye(kept.size) - p @ np.diag(1 / np.diag(p))
    np.fill_diagonal(b, 0.0)
    scores = model.scores(np.arange(7))
    np.testing.assert_allclose(scores[:, kept], sub @ b, atol=1e-12)
    assert np.isneginf(np.delete(scores, kept, axis=1)).all()
    np.testing.assert_allclose(model.weights_, b, atol=1e-12)
    new = model.scores(np.array([0]), history=csr([[10, 11, 12]]))
    row = np.zeros(kept.size)
    row[np.isin(kept, [10, 11, 12])] = 1.0
    np.testing.assert_allclose(new[0, kept], row @ b, atol=1e-12)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        EASE().weights_


def test_ease_keeps_only_the_most_popular_items():
    # users per item [2, 3, 2, 1]: keep 1, then 0 and 2 tie -> 0 (lower index)
    model = EASE(l2=1.0, max_items=2).fit(csr(TINY))
    assert model.items_.tolist() == [0, 1] and model.n_dropped_items_ == 2
    sub = dense(TINY, 4)[:, [0, 1]]
    p = np.linalg.inv(sub.T @ sub + np.eye(2))
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    scores = model.scores(np.arange(4))
    np.testing.assert_allclose(scores[:, [0, 1]], sub @ b, atol=1e-12)
    assert np.isneginf(scores[:, [2, 3]]).all()  # never recommended
    # G + I = [[3, 2], [2, 4]], P = [[4, -2], [-2, 3]] / 8, B01 = 2/3, B10 = 1/2:
    # u0 = {0, 1} scores item 0 with B10 = 0.5 and item 1 with B01 = 0.667
    np.testing.assert_allclose(scores[0, :2], [0.5, 2 / 3])
    assert top_k(scores, 3)[0].tolist() == [1, 0, -1]


@pytest.mark.parametrize("model", [Popularity(), ItemKNN(n_neighbors=3), EASE(l2=2.0)],
                         ids=["popularity", "item_knn", "ease"])
def test_baselines_score_new_users_from_their_history(model):
    model.fit(csr(TINY), n_items=4)
    history = csr([[2, 2, 0], [3]])  # two new users; the repeat of item 2 counts once
    new = model.scores(np.array([1, 0]), history=history)
    np.testing.assert_array_equal(new, model.scores(np.array([1, 0]),
                                                    history=csr([[0, 2], [3]])))
    if not isinstance(model, Popularity):
        assert not np.array_equal(new[0], new[1])
    # as a scorer, the baseline is called with history = train: the same as its matrix
    heldout = csr([[1], [0]])
    by_model = ranking_metrics(model, history, heldout, k=(1, 2))
    by_array = ranking_metrics(model.scores(np.arange(2), history=history), history,
                               heldout, k=(1, 2))
    for k in (1, 2):
        np.testing.assert_array_equal(by_model[k].ndcg, by_array[k].ndcg)


def test_inputs_as_corpus_and_scipy_give_the_same_results():
    sparse = pytest.importorskip("scipy.sparse")
    corpus = Corpus.from_lists([[0, 1, 1], [0, 1, 2], [1, 2], [3]])
    matrix = sparse.csr_matrix(dense(TINY, 4))
    expected = ItemKNN(3).fit(csr(TINY)).similarity_
    for train in (corpus, matrix):
        got = ItemKNN(3).fit(train).similarity_
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="must be a CSR matrix"):
        Popularity().fit(matrix.tocsc())


def test_kernels_compile_once_on_odd_dtypes():
    lists = [[0, 1], [1, 2], [2, 0]]
    for indptr_dtype, indices_dtype in ((np.int32, np.uint16), (np.uint64, np.int8)):
        indptr, indices = csr(lists)
        train = (indptr.astype(indptr_dtype), indices.astype(indices_dtype))
        ItemKNN(2).fit(train).scores(np.array([0, 2], dtype=np.int32))
        EASE(l2=1.0).fit(train).scores(np.arange(3, dtype=np.uint8))
    for kernel in (cosine_neighbours, sparse_product, cooccurrence):
        assert len(kernel.signatures) == 1, kernel


def test_unfitted_baseline_raises():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ItemKNN().scores(np.arange(2))


GOOD = (np.ones((2, 3)), csr([[0], []]), csr([[1], [2]]))


@pytest.mark.parametrize("args,kwargs,error,match", [
    (GOOD, {"k": 0}, ValueError, r"k must be an integer >= 1"),
    (GOOD, {"k": (5, "10")}, ValueError, r"k must be an integer >= 1"),
    (GOOD, {"chunk_size": 0}, ValueError, r"chunk_size must be an integer >= 1, got 0"),
    (GOOD, {"chunk_size": "8"}, ValueError, r"chunk_size must be an integer >= 1"),
    (GOOD, {"n_items": 4}, ValueError, r"the score matrix has 3 items but n_items is 4"),
    ((lambda u: np.ones((len(u), 4)),) + GOOD[1:], {"n_items": 3}, ValueError,
     r"the scorer returned 4 items per user, expected n_items = 3"),
    ((np.ones((3, 3)),) + GOOD[1:], {}, ValueError, r"must have shape \(n_users=2"),
    ((np.full((2, 3), np.nan),) + GOOD[1:], {}, ValueError, r"scores contain NaN"),
    ((lambda u: np.ones((len(u), 2, 1)),) + GOOD[1:], {}, ValueError,
     r"the scorer returned shape \(2, 2, 1\) for 2 users"),
    (("scores",) + GOOD[1:], {}, TypeError, r"scorer must be a score matrix"),
    ((GOOD[0], csr([[0]]), GOOD[2]), {}, ValueError, r"train has 1 users but heldout has 2"),
    ((GOOD[0], GOOD[1], csr([[5], []])), {}, ValueError,
     r"heldout has item index 5 but there are only 3 items"),
    ((GOOD[0], GOOD[1], csr([[], []])), {}, ValueError, r"nothing to evaluate"),
    ((GOOD[0], (np.array([0, 2, 1]), np.array([0])), GOOD[2]), {}, ValueError,
     r"train: indptr must start at 0, never decrease"),
    ((GOOD[0], GOOD[1], (np.array([0, 1, 2]), np.array([0.5, 1.0]))), {}, TypeError,
     r"heldout: indices must hold integers"),
    ((GOOD[0], GOOD[1], (np.array([0, 1, 2]), np.array([-1, 1]))), {}, ValueError,
     r"heldout: indices must be >= 0"),
    ((GOOD[0], {"indptr": 1}, GOOD[2]), {}, TypeError, r"train must be a CSR pair"),
    (GOOD, {"item_popularity": np.zeros(3)}, ValueError, r"item_popularity must be shares"),
    (GOOD, {"item_popularity": np.ones(2)}, ValueError,
     r"item_popularity must have shape \(3,\)"),
    (GOOD, {"candidates": np.ones(2, dtype=bool)}, ValueError,
     r"candidates must be a bool array of shape \(3,\)"),
    (GOOD, {"candidates": np.ones(3)}, ValueError, r"candidates must be a bool array"),
])
def test_invalid_ranking_inputs(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ranking_metrics(*args, **kwargs)


@pytest.mark.parametrize("model,match", [
    (ItemKNN(n_neighbors=0), r"n_neighbors must be an integer >= 1, got 0"),
    (ItemKNN(n_neighbors=2.5), r"n_neighbors must be an integer >= 1, got 2.5"),
    (EASE(l2=-1.0), r"l2 must be a finite number > 0, got -1.0"),
    (EASE(l2=float("nan")), r"l2 must be a finite number > 0"),
    (EASE(max_items=0), r"max_items must be an integer >= 1, got 0"),
])
def test_invalid_baseline_parameters(model, match):
    with pytest.raises(ValueError, match=match):
        model.fit(csr(TINY))


@pytest.mark.parametrize("call,error,match", [
    (lambda m: m.fit(csr(TINY), n_items=3), ValueError,
     r"train has item index 3 but there are only 3 items"),
    (lambda m: m.scores(np.array([4])), ValueError, r"users must be row numbers in \[0, 4\)"),
    (lambda m: m.scores(np.array([0.5])), TypeError, r"users must be a 1-D array"),
    (lambda m: m.scores(np.array([0]), history=csr([[7]])), ValueError,
     r"history has item indices outside \[0, 4\)"),
])
def test_invalid_baseline_calls(call, error, match):
    model = ItemKNN(2).fit(csr(TINY))
    with pytest.raises(error, match=match):
        call(model)
