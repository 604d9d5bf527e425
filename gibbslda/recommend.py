"""Recommendations from a fitted LDA: p(item | user) = sum_k theta_uk phi_k,item, top N.

Conventions
-----------
- Score: p(item | user) in float64, the K products theta_uk * phi_k,item added in topic
  order. A score does not depend on the chunk size, on the other users scored with it or
  on the screening precision below.
- Order: highest score first, equal scores by lower item index (the rule of
  :func:`gibbslda.topn.top_k`), so every top-n list is a prefix of the top-N list.
- Excluded items (what a user already has, when ``exclude_seen``; ``exclude_items`` for
  everyone) are never returned. A user with fewer than ``n`` other items gets fewer rows.
- Tables are polars frames in long format, one row per (user, rank); ranks start at 1.
- Ids are the model's own (``user_ids_``, ``item_ids_``); unknown ids are a ValueError
  that says how many there are and shows one.
The top-N engine is :func:`gibbslda.topn.top_n`.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from gibbslda.corpus import Corpus
from gibbslda.ranking import _pairs
from gibbslda.topn import _as_weights, top_n


def recommend(model, users=None, *, n: int = 20, exclude_seen: bool = True,
              exclude_items=None, chunk_size: int | None = None) -> pl.DataFrame:
    """Top ``n`` items for training users of a fitted model, by p(item | user).

    Parameters
    ----------
    model : fitted :class:`gibbslda.LDA`.
    users : training user ids (one id or a sequence); None: every training user.
    n : items per user.
    exclude_seen : leave out the items each user has in the training corpus.
    exclude_items : item ids nobody gets (for example items no longer sold).
    chunk_size : users scored at a time (see :func:`top_n`).

    Returns
    -------
    polars.DataFrame with columns user_id, rank (1 = best), item_id, score; users in the
    order given (index order when None), ranks ascending.
    """
    _check_model(model)
    rows = np.arange(model.corpus_.n_users) if users is None else \
        _lookup(model.user_ids_, users, "user", hint="recommend_new folds in new users")
    corpus = model.corpus_
    exclude = None
    if exclude_seen:
        r, w = _pairs(corpus.indptr, corpus.words, rows)
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=rows.size), out=indptr[1:])
        exclude = (indptr, w)
    banned = None if exclude_items is None else _lookup(model.item_ids_, exclude_items, "item")
    items, scores = top_n(model.doc_topic_[rows], model.topic_word_, n, exclude=exclude,
                          chunk_size=chunk_size, exclude_items=banned)
    return _long_frame(model.user_ids_[rows], "user_id", model.item_ids_, items, scores,
                       "item_id", "score")


def recommend_new(model, histories, *, n: int = 20, user_ids=None,
                  exclude_seen: bool = True, exclude_items=None,
                  chunk_size: int | None = None) -> pl.DataFrame:
    """Top ``n`` items for new users, from their items by fold-in (:meth:`LDA.transform`).

    ``histories`` is one sequence of item ids per user (``user_ids`` names them; default
    0, 1, ...) or a :class:`~gibbslda.corpus.Corpus`. Items the model does not know are
    ignored; a user with no known item gets the prior mean mix. With ``exclude_seen`` a
    user's given items are left out. Returns the frame of :func:`recommend`. Fold-in is
    deterministic, but a user's mix can depend on the users before it in ``histories``
    (they share one random stream).
    """
    _check_model(model)
    if isinstance(histories, Corpus):
        corpus = histories.with_vocabulary(model.item_ids_)
        if user_ids is not None:
            if len(user_ids) != corpus.n_users:
                raise ValueError(f"user_ids has {len(user_ids)} ids for {corpus.n_users} "
                                 "users in the corpus")
            corpus = Corpus(corpus.indptr, corpus.words, np.asarray(user_ids),
                            corpus.item_ids)
    else:
        if isinstance(histories, (str, bytes)) or not hasattr(histories, "__iter__"):
            raise TypeError(f"histories must be one sequence of item ids per user or a "
                            f"Corpus, got {type(histories).__name__}")
        histories = list(histories)
        for h in histories:
            if isinstance(h, (str, bytes)) or not hasattr(h, "__iter__"):
                raise TypeError(f"each history must be a sequence of item ids, got "
                                f"{type(h).__name__} {h!r}")
        corpus = Corpus.from_lists([list(h) for h in histories], user_ids=user_ids,
                                   vocabulary=model.item_ids_, drop_empty=False)
    theta = model.transform(corpus)
    banned = None if exclude_items is None else _lookup(model.item_ids_, exclude_items, "item")
    items, scores = top_n(theta, model.topic_word_, n, chunk_size=chunk_size,
                          exclude=(corpus.indptr, corpus.words) if exclude_seen else None,
                          exclude_items=banned)
    return _long_frame(corpus.user_ids, "user_id", model.item_ids_, items, scores,
                       "item_id", "score")


def item_topics(model) -> np.ndarray:
    """p(topic | item) (K x V): phi_k,item n_k normalised over the topics (Bayes, with the
    topics' token counts as the prior); an item of no token gets
    n_k / (n_k + V beta), normalised, from the smoothing alone."""
    _check_model(model)
    joint = model.topic_word_ * model.n_k_[:, None].astype(np.float64)
    return joint / joint.sum(axis=0, keepdims=True)


def similar_items(model, item_ids, *, n: int = 10, metric: str = "hellinger",
                  chunk_size: int | None = None) -> pl.DataFrame:
    """The ``n`` items whose topic profiles p(topic | item) are closest to each item's.

    metric "hellinger" (default): the Bhattacharyya coefficient sum_k sqrt(p_k q_k) =
    1 - H(p, q)^2, with H the Hellinger distance; in [0, 1], 1 for equal profiles.
    "cosine": cosine similarity of the p(topic | item) vectors. Both are symmetric.

    Returns columns item_id, rank, similar_item_id, similarity; the item itself is left
    out; ties by lower item index.
    """
    _check_model(model)
    if metric not in ("hellinger", "cosine"):
        raise ValueError(f"metric must be 'hellinger' or 'cosine', got {metric!r}")
    query = _lookup(model.item_ids_, item_ids, "item")
    profile = item_topics(model)
    if metric == "hellinger":
        unit = np.sqrt(profile)
    else:
        unit = profile / np.linalg.norm(profile, axis=0, keepdims=True)
    self_pairs = (np.arange(query.size + 1, dtype=np.int64), query)
    items, scores = top_n(unit[:, query].T, unit, n, exclude=self_pairs,
                          chunk_size=chunk_size)
    return _long_frame(model.item_ids_[query], "item_id", model.item_ids_, items,
                       np.minimum(scores, 1.0), "similar_item_id", "similarity")


def explain(model, recommendations: pl.DataFrame, labels=None, *, theta=None,
            user_ids=None) -> pl.DataFrame:
    """Why each recommendation: the interest that contributes most to its score.

    For each row (user_id, item_id) of ``recommendations`` (from :func:`recommend`), the
    topic k maximising theta_uk phi_k,item (ties: lower k) and the columns topic, label
    (from ``labels``, K strings such as :func:`gibbslda.profiles.topic_labels` returns;
    null without),
    user_share (theta_uk, the user's share of that interest), score_share (its part of
    the score) and explanation ("interest 7: garden / outdoor, 41% of this user").
    For new users (:func:`recommend_new`) pass their ``theta`` (from ``model.transform``)
    and the ``user_ids`` of its rows.
    """
    _check_model(model)
    labels = _check_labels(labels, model.n_topics)
    for column in ("user_id", "item_id"):
        if column not in recommendations.columns:
            raise ValueError(f"recommendations needs a {column!r} column, got "
                             f"{recommendations.columns}")
    if theta is None:
        theta, known = model.doc_topic_, model.user_ids_
    else:
        theta = _as_weights(theta, "theta", ndim=2)
        known = np.asarray(user_ids) if user_ids is not None else np.arange(theta.shape[0])
        if known.shape[0] != theta.shape[0] or theta.shape[1] != model.n_topics:
            raise ValueError(f"theta must have shape ({known.shape[0]}, {model.n_topics}) "
                             f"(one row per user id, K columns), got {theta.shape}")
    d = _lookup(known, recommendations.get_column("user_id"), "user")
    w = _lookup(model.item_ids_, recommendations.get_column("item_id"), "item")
    phi_t = np.ascontiguousarray(model.topic_word_.T)
    topic = np.empty(d.size, dtype=np.int64)
    part = np.empty(d.size)
    step = max(1, 2 ** 20 // model.n_topics)  # rows x K products at a time
    for start in range(0, d.size, step):
        block = theta[d[start:start + step]] * phi_t[w[start:start + step]]
        best = block.argmax(axis=1)
        topic[start:start + step] = best
        total = block.sum(axis=1)
        part[start:start + step] = np.divide(block[np.arange(best.size), best], total,
                                             out=np.zeros(best.size), where=total > 0)
    share = theta[d, topic]
    label = None if labels is None else [labels[k] for k in topic]
    text = [f"interest {k}" + ("" if label is None else f": {label[i]}") +
            f", {share[i]:.0%} of this user" for i, k in enumerate(topic)]
    return recommendations.with_columns(
        pl.Series("topic", topic, dtype=pl.Int32),
        pl.Series("label", [None] * topic.size if label is None else label,
                  dtype=pl.String),
        pl.Series("user_share", share, dtype=pl.Float64),
        pl.Series("score_share", part, dtype=pl.Float64),
        pl.Series("explanation", text, dtype=pl.String))


# -- helpers ------------------------------------------------------------------------------
def _long_frame(owners, owner_name, item_ids, items, scores, item_name, score_name):
    """(owner, rank, item, score) rows of a (rows, n) top-n result, -1 slots dropped."""
    n_rows, width = items.shape
    keep = (items >= 0).ravel()
    flat = items.ravel()[keep]
    return pl.DataFrame([
        pl.Series(owner_name, np.repeat(np.asarray(owners), width)[keep]),
        pl.Series("rank", np.tile(np.arange(1, width + 1, dtype=np.int32), n_rows)[keep]),
        pl.Series(item_name, np.asarray(item_ids)[flat]),
        pl.Series(score_name, scores.ravel()[keep], dtype=pl.Float64),
    ])


def _lookup(ids: np.ndarray, query, what: str, hint: str | None = None) -> np.ndarray:
    """Indices (int64) of ``query`` ids in ``ids``; ValueError naming the unknown ones."""
    if isinstance(query, (str, bytes)) or np.ndim(query) == 0:
        query = [query]
    keys = pl.Series("key", ids)
    if isinstance(query, pl.Series):
        asked = query.alias("key")
    else:
        asked = pl.Series("key", np.asarray(query) if isinstance(query, np.ndarray)
                          else list(query), strict=False)
    asked = asked.cast(keys.dtype, strict=False) if asked.len() else \
        pl.Series("key", [], dtype=keys.dtype)
    index = pl.DataFrame({"key": keys, "index": np.arange(keys.len(), dtype=np.int64)})
    found = asked.to_frame().join(index, on="key", how="left",
                                  maintain_order="left").get_column("index")
    if found.null_count():
        asked_raw = query if isinstance(query, pl.Series) else pl.Series(
            "raw", np.asarray(query) if isinstance(query, np.ndarray) else list(query),
            strict=False)
        missing = asked_raw.filter(found.is_null()).unique(maintain_order=True)
        raise ValueError(f"{missing.len()} {what} ids are not in the model, for example "
                         f"{missing[0]!r}" + (f"; {hint}" if hint else ""))
    return found.to_numpy().astype(np.int64)


def _check_model(model) -> None:
    from gibbslda.model import LDA

    if not isinstance(model, LDA):
        raise TypeError(f"model must be a fitted gibbslda.LDA, got {type(model).__name__}")
    model._check_fitted()


def _check_labels(labels, n_topics: int):
    if labels is None:
        return None
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise TypeError(f"labels must be a sequence of {n_topics} strings, got "
                        f"{type(labels).__name__}")
    if len(labels) != n_topics:
        raise ValueError(f"labels must have one string per topic ({n_topics}), got "
                         f"{len(labels)}")
    return [str(x) for x in labels]
