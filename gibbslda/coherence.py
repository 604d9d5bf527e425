"""Topic coherence (UMass, NPMI) and topic diversity over each topic's top-n items.

Coherence scores a topic by how often its top items occur together in the users of a
reference corpus: the training corpus (UMass as Mimno et al. proposed it) or a held-out
one (NPMI, as Lau et al. and Roeder et al. evaluate it). Co-occurrence is counted at the
document level: a user either has an item (at least one token of it) or not.

Glossary: d a user (document), w an item (word), k a topic, n the number of top items per
topic, D(w) the number of users having item w, D(w_i, w_j) the number having both,
N the number of users in the reference.

Only the pairs that are scored are counted: the reference is restricted to the union of
all topics' top items (at most K n columns), turned into per-item sorted user lists, and
each topic's n x n co-document counts come from one small product over the users having
any of its items. Memory is O(tokens) for the restriction plus O(users of one topic x n);
there is never a V x V matrix.

References
----------
Mimno, Wallach, Talley, Leenders & McCallum (2011), "Optimizing semantic coherence in
topic models", EMNLP.
Bouma (2009), "Normalized (pointwise) mutual information in collocation extraction",
GSCL.
Lau, Newman & Baldwin (2014), "Machine reading tea leaves: automatically evaluating topic
coherence and topic model quality", EACL.
Roeder, Both & Hinneburg (2015), "Exploring the space of topic coherence measures", WSDM.
Dieng, Ruiz & Blei (2020), "Topic modeling in embedding spaces", TACL.
"""
from __future__ import annotations

import numpy as np

from gibbslda import _validate
from gibbslda.corpus import Corpus
from gibbslda.topn import top_k

MEASURES = ("npmi", "umass")

# topic_word entries handled per block by top_items (bounds its temporaries to ~50 MB)
_BLOCK_ELEMENTS = 1 << 21


def top_items(topic_word, n: int = 10) -> np.ndarray:
    """The ``n`` highest-weighted items of every topic, best first.

    Parameters
    ----------
    topic_word : (K, V) real array, for example a fitted model's ``topic_word_``.
    n : items per topic, 1 <= n <= V.

    Returns
    -------
    int64 (K, n) item indices in decreasing weight; equal weights are ordered by item
    index (lowest first), also at the n-th place, so the result is deterministic.
    """
    phi = _check_topic_word(topic_word)
    n = _check_n(n, phi.shape[1], minimum=1)
    n_topics, n_items = phi.shape
    out = np.empty((n_topics, n), dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // n_items)
    for start in range(0, n_topics, step):
        block = phi[start:start + step]
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            raise ValueError("topic_word has NaN or infinite entries; pass finite weights")
        out[start:start + block.shape[0]] = top_k(block, n)
    return out


def coherence(topic_word, reference, *, n: int = 10, measure: str = "npmi") -> np.ndarray:
    """Coherence of every topic's top-n items, counted in the users of ``reference``.

    Parameters
    ----------
    topic_word : (K, V) real array; its columns index the reference's items.
    reference : a :class:`~gibbslda.corpus.Corpus` with ``n_items == V`` (the training
        corpus, or another one put on the model's items with ``with_vocabulary``), a
        users x items scipy.sparse CSR matrix/array (stored entries with a non-zero value
        count), or a pair ``(indptr, indices)`` of CSR arrays with item indices < V.
        Repeated tokens of an item count once per user.
    n : top items per topic, 2 <= n <= V (10 is the usual choice).
    measure : ``"npmi"`` or ``"umass"``.

    Returns
    -------
    float64 (K,) one score per topic, each the mean over its n (n - 1) / 2 pairs. The
    model's score is the mean over topics (``np.nanmean`` for UMass, see below).

    Notes
    -----
    Top items w_1..w_n are ordered by decreasing weight (:func:`top_items`).

    ``"umass"`` (Mimno et al. 2011) averages, over 1 <= l < m <= n,
    log((D(w_m, w_l) + 1) / D(w_l)). Mimno et al. sum instead: multiply by
    n (n - 1) / 2 to get their figure. Values are <= log 2 and higher is better. A pair
    whose conditioning item w_l is in no reference user is undefined, and so is its
    topic's score: NaN (it cannot happen for items with tokens in the training corpus).

    ``"npmi"`` (Bouma 2009; document-level probabilities as in Lau et al. 2014 and
    Roeder et al. 2015) averages, over i < j, with P(w) = D(w) / N and
    P(w_i, w_j) = D(w_i, w_j) / N,
    log(P(w_i, w_j) / (P(w_i) P(w_j))) / -log P(w_i, w_j), in [-1, 1]. No epsilon is
    added: a pair that never co-occurs (including an item absent from the reference)
    scores -1, the limit as P(w_i, w_j) -> 0, and a pair that every user has scores 1,
    the limit as P -> 1. Palmetto and gensim add epsilon = 1e-12 to P(w_i, w_j) inside
    the logarithms instead: that scores a never co-occurring pair above -1 (near -0.8 for
    items in 10% of users) and changes the others by about epsilon / P(w_i, w_j). N counts
    every user row of the reference, those without tokens included.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    return coherence_scores(topic_word, reference, n=n, measures=(measure,))[measure]


def coherence_scores(topic_word, reference, *, n: int = 10, measures=MEASURES) -> dict:
    """Several measures of :func:`coherence` from one co-occurrence count:
    ``{measure: float64 (K,)}``."""
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"measure must be one of {MEASURES}, got {unknown[0]!r}")
    phi = _check_topic_word(topic_word)
    n = _check_n(n, phi.shape[1], minimum=2)
    indptr, indices = _reference_arrays(reference, phi.shape[1])
    top = top_items(phi, n)
    df, co = _co_document_counts(indptr, indices, top)
    score = {"umass": lambda: _umass(df, co), "npmi": lambda: _npmi(df, co, indptr.shape[0] - 1)}
    return {m: score[m]() for m in measures}


def diversity(topic_word, n: int = 25) -> float:
    """Share of unique items among all topics' top-n items (Dieng et al. 2020).

    Unique items among the K top-n lists divided by K n: 1.0 when no two topics share a
    top item, 1 / K when every topic has the same top items.

    Parameters
    ----------
    topic_word : (K, V) real array.
    n : top items per topic, 1 <= n <= V (Dieng et al. use 25).
    """
    top = top_items(topic_word, n)
    return float(np.unique(top).shape[0] / top.size)


def _check_topic_word(topic_word) -> np.ndarray:
    phi = np.asarray(topic_word)
    if phi.dtype.kind not in "fiu":
        raise TypeError(f"topic_word must be a real-valued array, got dtype {phi.dtype}")
    if phi.ndim != 2 or phi.shape[0] == 0 or phi.shape[1] == 0:
        raise ValueError(f"topic_word must be a non-empty 2-D (topics, items) array, got "
                         f"shape {phi.shape}")
    return phi


def _check_n(n, n_items: int, minimum: int) -> int:
    return _validate.check_int("n", n, minimum=minimum, maximum=n_items,
                               bound="the number of items")


def _reference_arrays(reference, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, indices) of a users x items reference, checked against V."""
    if isinstance(reference, Corpus):
        if reference.n_items != n_items:
            raise ValueError(f"reference has {reference.n_items} items but topic_word has "
                             f"{n_items}: use reference.with_vocabulary(model.item_ids_)")
        indptr, indices = reference.indptr, reference.words
    elif hasattr(reference, "indptr") and hasattr(reference, "indices"):
        shape = getattr(reference, "shape", None)
        if shape is not None and shape[1] != n_items:
            raise ValueError(f"reference has {shape[1]} item columns but topic_word has "
                             f"{n_items}")
        indptr, indices = _nonzero_entries(reference)
    elif isinstance(reference, tuple) and len(reference) == 2:
        indptr, indices = np.asarray(reference[0]), np.asarray(reference[1])
    else:
        raise TypeError(f"reference must be a Corpus, a CSR matrix or an (indptr, indices) "
                        f"pair, got {type(reference).__name__}")
    indptr, indices = _validate.as_csr(indptr, indices, n_items=n_items, prefix="reference ")
    if indptr.shape[0] < 2 or indices.shape[0] == 0:
        raise ValueError("the reference corpus is empty: it needs users with items")
    return indptr, indices


def _nonzero_entries(matrix) -> tuple[np.ndarray, np.ndarray]:
    """CSR arrays of a sparse matrix without its explicitly stored zeros."""
    indptr, indices = np.asarray(matrix.indptr), np.asarray(matrix.indices)
    data = getattr(matrix, "data", None)
    if data is None:
        return indptr, indices
    keep = np.asarray(data) != 0
    if keep.all():
        return indptr, indices
    kept_before = np.concatenate(([0], np.cumsum(keep)))
    return kept_before[indptr], indices[keep]


def _co_document_counts(indptr: np.ndarray, indices: np.ndarray, top: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """D(w) of every top item, int64 (K, n), and D(w_i, w_j) of every pair, int64 (K, n, n).

    ``co[k, i, j]`` counts the users having both top items i and j of topic k; its
    diagonal is D(w).
    """
    n_topics, n = top.shape
    n_users = indptr.shape[0] - 1
    needed, slot_item = np.unique(top, return_inverse=True)
    slot_item = slot_item.reshape(n_topics, n)
    local = np.full(int(top.max()) + 1, -1, dtype=np.int64)
    local[needed] = np.arange(needed.shape[0])
    # keep the tokens of needed items; one (item, user) key per user having the item
    tokens = np.flatnonzero(indices <= top.max())
    tokens = tokens[local[indices[tokens]] >= 0]
    users = np.searchsorted(indptr, tokens, side="right") - 1
    keys = np.unique(local[indices[tokens]] * n_users + users)
    # per needed item, its sorted users: keys[item_ptr[u]:item_ptr[u + 1]] % n_users
    item_ptr = np.zeros(needed.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_users, minlength=needed.shape[0]), out=item_ptr[1:])
    key_users = keys % n_users
    df = np.diff(item_ptr)[slot_item]
    co = np.zeros((n_topics, n, n), dtype=np.int64)
    for k in range(n_topics):
        co[k] = _topic_counts(item_ptr, key_users, slot_item[k])
    return df, co


def _topic_counts(item_ptr: np.ndarray, key_users: np.ndarray, slots: np.ndarray
                  ) -> np.ndarray:
    """n x n co-document counts of one topic's items: X^T X, X its users x items incidence."""
    n = slots.shape[0]
    lengths = item_ptr[slots + 1] - item_ptr[slots]
    total = int(lengths.sum())
    if total == 0:
        return np.zeros((n, n), dtype=np.int64)
    ends = np.cumsum(lengths)
    gather = np.arange(total) + np.repeat(item_ptr[slots] - (ends - lengths), lengths)
    users, row = np.unique(key_users[gather], return_inverse=True)
    incidence = np.zeros((users.shape[0], n))
    incidence[row.reshape(-1), np.repeat(np.arange(n), lengths)] = 1.0
    # float64 products of 0/1 entries are exact integers up to 2**53 users
    return np.rint(incidence.T @ incidence).astype(np.int64)


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, l) positions of every pair with l < m, row-major by m."""
    return np.tril_indices(n, -1)


def _umass(df: np.ndarray, co: np.ndarray) -> np.ndarray:
    m, l = _pairs(df.shape[1])
    joint = co[:, m, l].astype(np.float64)
    given = df[:, l].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.log((joint + 1.0) / given)
    scores[given == 0] = np.nan
    return scores.mean(axis=1)


def _npmi(df: np.ndarray, co: np.ndarray, n_users: int) -> np.ndarray:
    i, j = _pairs(df.shape[1])
    joint = co[:, i, j].astype(np.float64)
    margins = df[:, i].astype(np.float64) * df[:, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.log(joint * n_users / margins) / np.log(n_users / joint)
    scores[joint == 0] = -1.0
    scores[joint == n_users] = 1.0
    return scores.mean(axis=1)
