"""Coherence (UMass, NPMI) and diversity against hand-worked counts and a slow reference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gibbslda.coherence import coherence, diversity, top_items
from gibbslda.corpus import Corpus
from tests import reference
from tests.reference import csr

# hand-worked values are exact up to floating-point rounding of a few log calls
REL = 1e-12

# 5 users, 5 items. User 3 has item 3 twice: it counts once.
HAND_DOCS = [[0, 1, 2], [0, 1], [0, 2, 3], [1, 3, 3], [4]]
# D(0) = 3 (users 0, 1, 2)   D(1) = 3 (0, 1, 3)   D(2) = 2 (0, 2)   D(3) = 2 (2, 3)
# D(4) = 1 (4)
# D(0,1) = 2 (0, 1)  D(0,2) = 2 (0, 2)  D(1,2) = 1 (0)  D(0,3) = 1 (2)  D(1,3) = 1 (3)
# D(2,3) = 1 (2)     D(w,4) = 0 for every other w
HAND_PHI = np.array([[0.40, 0.30, 0.20, 0.05, 0.05],    # top 3: 0, 1, 2
                     [0.20, 0.05, 0.05, 0.45, 0.25]])   # top 3: 3, 4, 0


def hand_corpus():
    return Corpus.from_lists(HAND_DOCS, vocabulary=np.arange(5))


def test_top_items_hand():
    assert top_items(HAND_PHI, 3).tolist() == [[0, 1, 2], [3, 4, 0]]


def test_top_items_ties_go_to_the_lower_item():
    phi = np.array([[0.1, 0.3, 0.1, 0.3, 0.1, 0.1],
                    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    # the n-th place is a tie too: items 0, 2, 4, 5 share 0.1 and item 0 wins
    assert top_items(phi, 3).tolist() == [[1, 3, 0], [0, 1, 2]]


def test_top_items_matches_a_stable_sort_across_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    phi = rng.integers(0, 20, size=(37, 50)).astype(np.float32)  # many ties
    monkeypatch.setattr("gibbslda.coherence._BLOCK_ELEMENTS", 160)  # 3 rows a block
    expected = np.argsort(-phi.astype(np.float64), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(top_items(phi, 7), expected)
    np.testing.assert_array_equal(top_items(phi.astype(np.int64), 50),
                                  np.argsort(-phi, axis=1, kind="stable"))


def test_umass_hand():
    # topic 0, w = (0, 1, 2): (m, l) pairs
    #   (1 | 0): log((D(0,1) + 1) / D(0)) = log(3 / 3)
    #   (2 | 0): log((D(0,2) + 1) / D(0)) = log(3 / 3)
    #   (2 | 1): log((D(1,2) + 1) / D(1)) = log(2 / 3)
    # topic 1, w = (3, 4, 0):
    #   (4 | 3): log((0 + 1) / 2)   (0 | 3): log((1 + 1) / 2)   (0 | 4): log((0 + 1) / 1)
    scores = coherence(HAND_PHI, hand_corpus(), n=3, measure="umass")
    assert scores.dtype == np.float64 and scores.shape == (2,)
    assert scores[0] == pytest.approx(math.log(2 / 3) / 3, rel=REL)
    assert scores[1] == pytest.approx(math.log(1 / 2) / 3, rel=REL)


def test_npmi_hand():
    # N = 5; NPMI = log(D(i,j) N / (D(i) D(j))) / log(N / D(i,j))
    # topic 0: (0,1): log(2*5/9)/log(5/2)  (0,2): log(2*5/6)/log(5/2)  (1,2): log(5/6)/log(5)
    # topic 1: (3,4): never together: -1   (3,0): log(1*5/6)/log(5)   (4,0): -1
    scores = coherence(HAND_PHI, hand_corpus(), n=3, measure="npmi")
    topic0 = (math.log(10 / 9) / math.log(2.5) + math.log(10 / 6) / math.log(2.5)
              + math.log(5 / 6) / math.log(5)) / 3
    topic1 = (-1 + math.log(5 / 6) / math.log(5) - 1) / 3
    assert scores == pytest.approx([topic0, topic1], rel=REL)


def test_npmi_every_user_has_both_scores_one_and_independence_zero():
    # N = 4; items 0 and 1 in every user: D(0,1) = N, NPMI 1 (the limit; 0/0 as written).
    # item 2 in users 0, 1: D(0,2) = D(1,2) = 2, P = 2/4 = (4/4)(2/4), so NPMI = 0.
    docs = [[0, 1, 2], [0, 1, 2], [0, 1], [0, 1]]
    phi = np.array([[0.5, 0.3, 0.2]])
    assert coherence(phi, csr(docs, np.int32), n=3)[0] == pytest.approx(1 / 3, rel=REL)
    # UMass: (1|0) log(5/4), (2|0) log(3/4), (2|1) log(3/4)
    assert coherence(phi, csr(docs, np.int32), n=3, measure="umass")[0] == pytest.approx(
        (math.log(5 / 4) + 2 * math.log(3 / 4)) / 3, rel=REL)


def test_item_absent_from_the_reference():
    # item 5 has no user: NPMI -1 for its pairs; UMass undefined (NaN) when it conditions
    corpus = Corpus.from_lists(HAND_DOCS, vocabulary=np.arange(6))
    first = np.array([[0.0, 0.3, 0.0, 0.0, 0.0, 0.7],   # top 2: 5, 1
                      [0.7, 0.3, 0.0, 0.0, 0.0, 0.5]])  # top 2: 0, 5
    assert coherence(first, corpus, n=2).tolist() == [-1.0, -1.0]
    umass = coherence(first, corpus, n=2, measure="umass")
    assert math.isnan(umass[0])
    assert umass[1] == pytest.approx(math.log(1 / 3), rel=REL)  # (5 | 0): log((0 + 1) / 3)


def test_reference_forms_agree():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    indptr, words = csr(HAND_DOCS, np.int32)
    counts = scipy_sparse.csr_matrix((np.ones(words.size), words.copy(), indptr.copy()),
                                     shape=(5, 5))
    counts.sum_duplicates()  # in place: hence the copies above
    padded = scipy_sparse.csr_matrix(  # an explicitly stored zero: user 4 has no item 0
        (np.r_[counts.data, 0.0], np.r_[counts.indices, 0],
         np.r_[counts.indptr[:-1], counts.indptr[-1] + 1]), shape=(5, 5))
    for measure in ("npmi", "umass"):
        expected = coherence(HAND_PHI, hand_corpus(), n=3, measure=measure)
        for given in ((indptr, words), counts, padded):
            np.testing.assert_allclose(
                coherence(HAND_PHI, given, n=3, measure=measure), expected, rtol=REL)


@pytest.mark.parametrize("measure", ["npmi", "umass"])
def test_matches_slow_reference_on_a_random_corpus(measure):
    rng = np.random.default_rng(11)
    n_items = 30
    # skewed item popularity so that pairs range from never to often together
    popularity = rng.dirichlet(np.full(n_items, 0.3))
    docs = [list(rng.choice(n_items, size=rng.integers(1, 12), p=popularity))
            for _ in range(40)]
    phi = rng.dirichlet(np.full(n_items, 0.2), size=8)
    phi[3] = phi[2]  # two topics sharing their top items
    corpus = Corpus.from_lists(docs, vocabulary=np.arange(n_items))
    for n in (2, 5, 9):
        expected = reference.coherence(phi, docs, n, measure)
        got = coherence(phi, corpus, n=n, measure=measure)
        np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)


def test_diversity_hand():
    same = np.tile(HAND_PHI[:1], (4, 1))
    assert diversity(same, n=3) == pytest.approx(1 / 4, rel=REL)  # 3 unique of 4 x 3
    disjoint = np.eye(5)[[0, 1, 2]] + np.eye(5)[[3, 4, 0]] * 0.5  # top 2: {0,3} {1,4} {2,0}
    assert diversity(disjoint[:2], n=2) == 1.0
    assert diversity(disjoint, n=2) == pytest.approx(5 / 6, rel=REL)  # item 0 twice


@pytest.mark.parametrize("call, error, match", [
    (lambda: top_items(HAND_PHI, 6), ValueError, "n must be between 1 and .* 5, got 6"),
    (lambda: diversity(HAND_PHI, 0), ValueError, "n must be between 1 and .* 5, got 0"),
    (lambda: coherence(HAND_PHI, hand_corpus(), n=1), ValueError,
     "n must be between 2 and .* 5, got 1"),
    (lambda: top_items(HAND_PHI, 2.0), TypeError, "n must be an integer, got 2.0"),
    (lambda: top_items(HAND_PHI, True), TypeError, "n must be an integer, got True"),
    (lambda: top_items(HAND_PHI[0], 2), ValueError, r"2-D .* got shape \(5,\)"),
    (lambda: top_items(np.zeros((0, 5)), 2), ValueError, r"got shape \(0, 5\)"),
    (lambda: top_items(np.array([["a", "b"]]), 1), TypeError, "real-valued .* dtype <U1"),
    (lambda: top_items(np.array([[0.1, np.nan]]), 1), ValueError, "NaN or infinite"),
    (lambda: coherence(HAND_PHI, hand_corpus(), measure="cv"), ValueError,
     r"measure must be one of \('npmi', 'umass'\), got 'cv'"),
    (lambda: coherence(HAND_PHI[:, :4], hand_corpus(), n=3), ValueError,
     r"reference has 5 items but topic_word has 4: use reference.with_vocabulary"),
    (lambda: coherence(HAND_PHI, HAND_DOCS, n=3), TypeError,
     "reference must be a Corpus, a CSR matrix or an .* got list"),
    (lambda: coherence(HAND_PHI, (np.array([0]), np.array([], np.int32)), n=3), ValueError,
     "the reference corpus is empty"),
    (lambda: coherence(HAND_PHI, (np.array([0, 0, 0]), np.array([], np.int32)), n=3),
     ValueError, "the reference corpus is empty"),
    (lambda: coherence(HAND_PHI, (np.array([0, 2]), np.array([0, 5])), n=3), ValueError,
     r"reference indices must be item indices in \[0, 5\), got 0..5"),
    (lambda: coherence(HAND_PHI, (np.array([0, 3]), np.array([0, 1])), n=3), ValueError,
     "indptr must start at 0"),
    (lambda: coherence(HAND_PHI, (np.array([0, 2]), np.array([0.0, 1.0])), n=3), TypeError,
     "reference indices must hold integers"),
    (lambda: coherence(HAND_PHI, (np.zeros((1, 2), int), np.array([0, 1])), n=3), ValueError,
     "must be 1-D"),
])
def test_invalid_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_sparse_matrix_with_other_width_is_refused():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match="reference has 6 item columns but topic_word has 5"):
        coherence(HAND_PHI, scipy_sparse.csr_matrix(np.eye(6)), n=3)
