"""Building a Corpus from frames, CSR matrices and lists; the errors users will meet."""
import numpy as np
import pandas as pd
import polars as pl
import pytest

from gibbslda import Corpus
from gibbslda.corpus import as_corpus

EVENTS = pl.DataFrame({
    "customer": ["u2", "u1", "u2", "u1", "u3", "u2"],
    "sku": ["b", "a", "a", "c", "a", "b"],
    "qty": [2, 1, 1, 3, 0, 1],
})


def tokens_by_user(corpus):
    return {corpus.user_ids[d]: sorted(corpus.item_ids[corpus.words[a:b]].tolist())
            for d, (a, b) in enumerate(zip(corpus.indptr[:-1], corpus.indptr[1:]))}


def test_from_frame_weights_are_repeats_and_ids_sorted():
    corpus = Corpus.from_frame(EVENTS, user="customer", item="sku", weight="qty")
    assert corpus.user_ids.tolist() == ["u1", "u2"]  # u3 has only a zero weight
    assert corpus.n_dropped_users == 1
    assert corpus.item_ids.tolist() == ["a", "b", "c"]
    assert tokens_by_user(corpus) == {"u1": ["a", "c", "c", "c"], "u2": ["a", "b", "b", "b"]}
    assert corpus.indptr.dtype == np.int64 and corpus.words.dtype == np.int32
    assert corpus.n_tokens == 8 and corpus.lengths.tolist() == [4, 4]


def test_pandas_lazy_and_shuffled_frames_give_the_same_corpus():
    base = Corpus.from_frame(EVENTS, user="customer", item="sku", weight="qty")
    for frame in (EVENTS.to_pandas(), EVENTS.lazy(), EVENTS.sample(fraction=1.0, shuffle=True,
                                                                    seed=1)):
        other = Corpus.from_frame(frame, user="customer", item="sku", weight="qty")
        np.testing.assert_array_equal(other.indptr, base.indptr)
        np.testing.assert_array_equal(other.words, base.words)
        assert other.user_ids.tolist() == base.user_ids.tolist()


def test_without_weight_each_row_is_one_token():
    corpus = Corpus.from_frame(EVENTS, user="customer", item="sku")
    assert corpus.n_tokens == 6 and corpus.n_users == 3


def test_whole_float_weights_accepted():
    frame = EVENTS.with_columns(pl.col("qty").cast(pl.Float64))
    assert Corpus.from_frame(frame, user="customer", item="sku", weight="qty").n_tokens == 8


@pytest.mark.parametrize("frame,kwargs,error,match", [
    (EVENTS, {"user": "user_id", "item": "sku"}, ValueError,
     r"column 'user_id' not found; the frame has columns \['customer', 'sku', 'qty'\]"),
    (EVENTS, {"user": "customer", "item": "sku", "weight": "w"}, ValueError,
     "column 'w' not found"),
    (EVENTS.with_columns(pl.when(pl.col("qty") == 0).then(None).otherwise(pl.col("sku"))
                         .alias("sku")), {"user": "customer", "item": "sku"}, ValueError,
     "column 'sku' has 1 null ids"),
    (EVENTS.with_columns(pl.col("qty") - 2), {"weight": "qty"}, ValueError,
     r"column 'qty' has negative weights \(min -2\)"),
    (EVENTS.with_columns(pl.col("qty") * 0.5), {"weight": "qty"}, ValueError,
     "must hold whole repeat counts"),
    (EVENTS.with_columns(pl.col("qty").cast(pl.String)), {"weight": "qty"}, TypeError,
     "must be integer repeat counts, got String"),
    (EVENTS.with_columns(pl.lit(0).alias("qty")), {"weight": "qty"}, ValueError,
     "the corpus is empty"),
    (EVENTS.clear(), {}, ValueError, "the corpus is empty"),
])
def test_from_frame_errors(frame, kwargs, error, match):
    kwargs = {"user": "customer", "item": "sku"} | kwargs
    with pytest.raises(error, match=match):
        Corpus.from_frame(frame, **kwargs)


def test_from_frame_rejects_non_frames():
    with pytest.raises(TypeError, match="expected a polars or pandas DataFrame"):
        Corpus.from_frame({"a": [1]})


def test_from_csr_triplet_and_duck_typed_matrix():
    indptr, indices, data = [0, 2, 2, 3], [0, 2, 1], [2, 1, 3]

    class Matrix:
        pass

    m = Matrix()
    m.indptr, m.indices, m.data, m.shape = (np.array(indptr), np.array(indices),
                                            np.array(data), (3, 5))
    for corpus in (Corpus.from_csr(indptr, indices, data, n_items=5), Corpus.from_csr(m)):
        assert corpus.user_ids.tolist() == [0, 2]  # row 1 is empty
        assert corpus.n_dropped_users == 1
        assert corpus.n_items == 5
        assert corpus.words.tolist() == [0, 0, 2, 1, 1, 1]
        np.testing.assert_array_equal(corpus.counts()[2], [2, 1, 3])


def test_scipy_sparse_matrix_if_available():
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.csr_matrix(np.array([[1, 0, 2], [0, 0, 0], [0, 3, 0]]))
    corpus = as_corpus(matrix)
    assert corpus.n_users == 2 and corpus.n_tokens == 6 and corpus.n_items == 3


@pytest.mark.parametrize("args,match", [
    (([0, 2, 1], [0, 1], [1, 1]), "never decrease"),
    (([0, 1], [-1], [1]), "indices must be >= 0"),
    (([0, 1], [0], [-2]), "negative weights"),
    (([0, 1], [0], [0.5]), "whole repeat counts"),
])
def test_from_csr_errors(args, match):
    with pytest.raises(ValueError, match=match):
        Corpus.from_csr(*args)


def test_from_lists_with_ids_and_empty_users():
    corpus = Corpus.from_lists([["x", "y", "x"], [], ["z"]], user_ids=["ann", "bob", "cy"])
    assert corpus.user_ids.tolist() == ["ann", "cy"] and corpus.n_dropped_users == 1
    assert tokens_by_user(corpus) == {"ann": ["x", "x", "y"], "cy": ["z"]}
    with pytest.raises(ValueError, match="user_ids has 1 ids for 3 lists"):
        Corpus.from_lists([["x"], ["y"], ["z"]], user_ids=["a"])
    with pytest.raises(ValueError, match="the corpus is empty"):
        Corpus.from_lists([[], []])


def test_with_vocabulary_drops_and_counts_unknown_items():
    corpus = Corpus.from_lists([["x", "y", "q"], ["q"]])
    mapped = corpus.with_vocabulary(np.array(["y", "x", "z"], dtype=object))
    assert mapped.item_ids.tolist() == ["y", "x", "z"]
    assert mapped.n_dropped_tokens == 2
    assert mapped.n_users == 2 and mapped.lengths.tolist() == [2, 0]
    assert sorted(mapped.words[:2].tolist()) == [0, 1]


def test_as_corpus_rejects_frames_and_other_types():
    with pytest.raises(TypeError, match="Corpus.from_frame"):
        as_corpus(pd.DataFrame({"user_id": [1], "item_id": [2]}))
    with pytest.raises(TypeError, match="got int"):
        as_corpus(3)


def test_object_id_arrays_join(tmp_path):
    """Ids read back from Parquet are numpy object arrays; polars cannot join its Object
    type, so they must go in as strings (a CLI recommend of unknown items once failed)."""
    items = np.array(["a", "b", "c"], dtype=object)
    corpus = Corpus(np.array([0, 2]), np.array([0, 2], dtype=np.int32),
                    np.array(["u"], dtype=object), items)
    moved = corpus.with_vocabulary(np.array(["c", "x", "a"], dtype=object))
    assert moved.item_ids.tolist() == ["c", "x", "a"]
    assert sorted(moved.words.tolist()) == [0, 2]
    unknown = Corpus.from_lists([["zzz"]], vocabulary=items, drop_empty=False)
    assert unknown.n_tokens == 0  # an empty object array of ids is what broke the join
    assert unknown.with_vocabulary(items).n_users == 1


def test_counts_are_each_users_distinct_items_and_repeats():
    """Against np.unique per user (a different method than the one-pass run lengths),
    on random corpora with empty users kept, one-item users and repeats."""
    rng = np.random.default_rng(3)
    for trial in range(40):
        lists = [list(rng.integers(0, rng.integers(1, 9), rng.integers(0, 6)))
                 for _ in range(rng.integers(1, 30))]
        lists[0] = lists[0] or [1]
        corpus = Corpus.from_lists(lists, drop_empty=bool(trial % 2))
        indptr, indices, data = corpus.counts()
        assert indptr.shape == (corpus.n_users + 1,) and indptr[-1] == indices.shape[0]
        for u in range(corpus.n_users):
            items, repeats = np.unique(corpus.words[corpus.indptr[u]:corpus.indptr[u + 1]],
                                       return_counts=True)
            np.testing.assert_array_equal(indices[indptr[u]:indptr[u + 1]], items)
            np.testing.assert_array_equal(data[indptr[u]:indptr[u + 1]], repeats)
