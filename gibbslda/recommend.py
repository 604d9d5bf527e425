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
The top-N engine is :func:`gibbslda.topn.top_n_sparse`: it reads the model's sparse tables
(:mod:`gibbslda.scores`), never the users x topics or topics x items matrices.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from gibbslda.corpus import Corpus
from gibbslda.scores import phi_columns, theta_rows
from gibbslda import rankers
from gibbslda.ranking import _pairs
from gibbslda.topn import _as_weights, _check_count, top_k, top_n, top_n_sparse


def recommend(model, users=None, *, n: int = 20, exclude_seen: bool = True,
              exclude_items=None, chunk_size: int | None = None,
              method: str = "chosen") -> pl.DataFrame:
    """Top ``n`` items for training users of a fitted model, by p(item | user).

    ``method`` "chosen" (default) scores with the variant that
    :func:`gibbslda.rankers.choose` picked on a validation split of the training data
    (the first call runs the choice, then it is cached and saved with the model); "lda"
    is the exact theta . phi of the chain's last state through the sparse tables (never a
    dense matrix), as before issue 15; any other name of :data:`gibbslda.rankers.NAMES`
    scores with that variant (dense rows of ``chunk_size`` users x V at a time). A variant
    blended with kNN or EASE refits that partner on the first call in a process (it is
    not saved; EASE: O(m^3), seconds at m = 5000 items).

    Parameters
    ----------
    model : fitted :class:`gibbslda.LDA`.
    users : training user ids (one id or a sequence); None: every training user.
    n : items per user.
    exclude_seen : leave out the items each user has in the training corpus.
    exclude_items : item ids nobody gets (for example items no longer sold).
    chunk_size : users scored per kernel call (see :func:`top_n_sparse`).

    Returns
    -------
    polars.DataFrame with columns user_id, rank (1 = best), item_id, score; users in the
    order given (index order when None), ranks ascending.
    """
    _check_model(model)
    rows = np.arange(model.corpus_.n_users) if users is None else \
        _lookup((model, "user"), users, "user", hint="recommend_new folds in new users")
    banned = None if exclude_items is None else _lookup((model, "item"), exclude_items, "item")
    if _method(model, n, method) == "lda":
        items, scores = top_n_sparse(model._tables(), n, users=(model.state_, rows),
                                     exclude_seen=exclude_seen, exclude_items=banned,
                                     chunk_size=chunk_size)
    else:
        items, scores = _dense_top_n(rankers.variants(model)[method], model.corpus_, rows,
                                     n, exclude_seen, banned, chunk_size)
    return _long_frame(model.user_ids_[rows], "user_id", model.item_ids_, items, scores,
                       "item_id", "score")


def _method(model, n, method: str) -> str:
    """``method`` checked, "chosen" resolved to "lda" when the choice is the plain chain
    (its exact sparse top N); ``n`` checked before any choosing."""
    _check_count("n", n)
    if method not in rankers.NAMES:
        raise ValueError(f"method must be one of {list(rankers.NAMES)}, got {method!r}")
    if method == "chosen" and rankers.choose(model).chosen == "lda":
        return "lda"
    return method


def _dense_top_n(scorer, corpus, rows, n, exclude_seen, banned, chunk_size):
    """Top ``n`` of a dense scorer's rows ``rows`` of ``corpus``, a chunk at a time."""
    step = chunk_size or max(1, 2 ** 22 // max(corpus.n_items, 1))
    items = np.full((rows.size, int(n)), -1, dtype=np.int64)
    scores = np.full((rows.size, int(n)), -np.inf)
    for at in range(0, rows.size, step):
        chunk = rows[at:at + step]
        block = scorer(chunk)
        if exclude_seen:
            block[_pairs(corpus.indptr, corpus.words, chunk)] = -np.inf
        if banned is not None:
            block[:, banned] = -np.inf
        top = top_k(block, n)
        items[at:at + chunk.size] = top
        scores[at:at + chunk.size] = np.where(
            top >= 0, np.take_along_axis(block, np.maximum(top, 0), axis=1), -np.inf)
    return items, scores


def recommend_new(model, histories, *, n: int = 20, user_ids=None,
                  exclude_seen: bool = True, exclude_items=None,
                  chunk_size: int | None = None, method: str = "chosen") -> pl.DataFrame:
    """Top ``n`` items for new users, from their items by fold-in.

    ``method`` as in :func:`recommend`: "lda" folds in with :meth:`LDA.transform` and
    ranks theta . phi exactly; the other variants fold in by weighted EM
    (:mod:`gibbslda.rankers`), with recent events weighing more when the chosen
    half-life is set and ``histories`` is a Corpus with ``times``.

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
                            corpus.item_ids, times=corpus.times)
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
    banned = None if exclude_items is None else _lookup((model, "item"), exclude_items, "item")
    if _method(model, n, method) == "lda":
        theta = model.transform(corpus)
        items, scores = top_n_sparse(model._tables(), n, theta=theta, chunk_size=chunk_size,
                                     exclude=(corpus.indptr, corpus.words) if exclude_seen
                                     else None, exclude_items=banned)
    else:
        items, scores = _dense_top_n(rankers.variants(model, corpus)[method], corpus,
                                     np.arange(corpus.n_users), n, exclude_seen, banned,
                                     chunk_size)
    return _long_frame(corpus.user_ids, "user_id", model.item_ids_, items, scores,
                       "item_id", "score")


def item_topics(model) -> np.ndarray:
    """p(topic | item) (K x V): phi_k,item n_k normalised over the topics (Bayes, with the
    topics' token counts as the prior); an item of no token gets
    n_k / (n_k + V beta), normalised, from the smoothing alone. Built now (8 K V bytes),
    from the sparse counts; :func:`similar_items` reads it a block of items at a time."""
    _check_model(model)
    return _item_profiles(model._tables(), model.n_k_, np.arange(model.corpus_.n_items))


def _item_profiles(tables, n_k, items) -> np.ndarray:
    """The columns ``items`` of :func:`item_topics`, (K, len(items)); each column's values
    do not depend on the other columns (sums over the topics in topic order)."""
    joint = phi_columns(tables, items)  # topic-minor, as topic_word_
    joint *= n_k[:, None].astype(np.float64)
    joint /= _topic_sum(joint)
    return joint


def _topic_sum(block: np.ndarray) -> np.ndarray:
    """Column sums of a (K, m) block, each one numpy's pairwise sum of its K values in
    topic order, whatever m and the layout: as the sums over axis 0 of ``topic_word_``
    (topic-minor in memory) always were."""
    return np.ascontiguousarray(block.T).sum(axis=1)


def similar_items(model, item_ids, *, n: int = 10, metric: str = "hellinger",
                  chunk_size: int | None = None) -> pl.DataFrame:
    """The ``n`` items whose topic profiles p(topic | item) are closest to each item's.

    metric "hellinger" (default): the Bhattacharyya coefficient sum_k sqrt(p_k q_k) =
    1 - H(p, q)^2, with H the Hellinger distance; in [0, 1], 1 for equal profiles.
    "cosine": cosine similarity of the p(topic | item) vectors. Both are symmetric.

    Returns columns item_id, rank, similar_item_id, similarity; the item itself is left
    out; ties by lower item index. Every item is scored (O(K V) a query item), a block of
    ``ITEMS_PER_BLOCK`` items at a time: never the K x V profiles.
    """
    _check_model(model)
    if metric not in ("hellinger", "cosine"):
        raise ValueError(f"metric must be 'hellinger' or 'cosine', got {metric!r}")
    query = _lookup((model, "item"), item_ids, "item")
    tables, n_k, n_items = model._tables(), model.n_k_, model.corpus_.n_items

    def unit(items):
        profile = _item_profiles(tables, n_k, items)
        if metric == "hellinger":
            return np.sqrt(profile)
        return profile / np.sqrt(_topic_sum(profile * profile))

    _check_count("n", n)
    asked = np.ascontiguousarray(unit(query).T)
    width = min(int(n), n_items)
    items = np.full((query.size, 0), -1, dtype=np.int64)
    scores = np.full((query.size, 0), -np.inf)
    step = max(1, ITEMS_PER_BLOCK // model.n_topics)
    for start in range(0, n_items, step):
        stop = min(start + step, n_items)
        inside = (query >= start) & (query < stop)
        own = (np.concatenate([[0], np.cumsum(inside)]), query[inside] - start)
        got, values = top_n(asked, unit(np.arange(start, stop)), width, exclude=own,
                            chunk_size=chunk_size)
        items = np.concatenate([items, np.where(got >= 0, got + start, -1)], axis=1)
        scores = np.concatenate([scores, values], axis=1)
        keep = np.lexsort((np.where(items >= 0, items, n_items), -scores), axis=-1)
        items = np.take_along_axis(items, keep, axis=1)[:, :width]
        scores = np.take_along_axis(scores, keep, axis=1)[:, :width]
    return _long_frame(model.item_ids_[query], "item_id", model.item_ids_, items,
                       np.minimum(scores, 1.0), "similar_item_id", "similarity")


ITEMS_PER_BLOCK = 2 ** 20  # topic x item values of the profiles built at a time (8 MB)


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
        known = model.user_ids_
    else:
        theta = _as_weights(theta, "theta", ndim=2)
        known = np.asarray(user_ids) if user_ids is not None else np.arange(theta.shape[0])
        if known.shape[0] != theta.shape[0] or theta.shape[1] != model.n_topics:
            raise ValueError(f"theta must have shape ({known.shape[0]}, {model.n_topics}) "
                             f"(one row per user id, K columns), got {theta.shape}")
    d = _lookup((model, "user") if theta is None else known,
                recommendations.get_column("user_id"), "user")
    w = _lookup((model, "item"), recommendations.get_column("item_id"), "item")
    tables = model._tables()
    topic = np.empty(d.size, dtype=np.int64)
    part, share = np.empty(d.size), np.empty(d.size)
    step = max(1, 2 ** 20 // model.n_topics)  # rows x K products at a time
    for start in range(0, d.size, step):
        rows = d[start:start + step]
        mix = theta[rows] if theta is not None else theta_rows(model.state_, rows)
        block = mix * phi_columns(tables, w[start:start + step]).T
        best = block.argmax(axis=1)
        topic[start:start + step] = best
        total = block.sum(axis=1)
        part[start:start + step] = np.divide(block[np.arange(best.size), best], total,
                                             out=np.zeros(best.size), where=total > 0)
        share[start:start + step] = mix[np.arange(best.size), best]
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


def _lookup(ids, query, what: str, hint: str | None = None) -> np.ndarray:
    """Indices (int64) of ``query`` ids in ``ids`` (an id array, or a fitted model's
    "user" / "item" ids when ``ids`` is the model: its sorted index is kept, so a lookup
    costs O(len(query) log len(ids))); ValueError naming the unknown ones."""
    if isinstance(query, (str, bytes)) or np.ndim(query) == 0:
        query = [query]
    if isinstance(ids, tuple):
        model, which = ids
        keys, order = model._per_state(f"{which}_index", lambda s: _sorted_ids(
            model.user_ids_ if which == "user" else model.item_ids_))
    else:
        keys, order = _sorted_ids(ids)
    if isinstance(query, pl.Series):
        asked = query.alias("key")
    else:
        asked = pl.Series("key", np.asarray(query) if isinstance(query, np.ndarray)
                          else list(query), strict=False)
    asked = asked.cast(keys.dtype, strict=False) if asked.len() else \
        pl.Series("key", [], dtype=keys.dtype)
    found = np.zeros(asked.len(), dtype=bool)
    at = np.zeros(asked.len(), dtype=np.int64)
    if asked.len() and keys.len():
        at = np.minimum(keys.search_sorted(asked, side="left").to_numpy().astype(np.int64),
                        keys.len() - 1)
        found = (keys.gather(at) == asked).fill_null(False).to_numpy()
    if not found.all():
        asked_raw = query if isinstance(query, pl.Series) else pl.Series(
            "raw", np.asarray(query) if isinstance(query, np.ndarray) else list(query),
            strict=False)
        missing = asked_raw.filter(pl.Series(~found)).unique(maintain_order=True)
        raise ValueError(f"{missing.len()} {what} ids are not in the model, for example "
                         f"{missing[0]!r}" + (f"; {hint}" if hint else ""))
    return order[at]


def _sorted_ids(ids) -> tuple[pl.Series, np.ndarray]:
    """(the ids sorted, as a polars Series; their indices in that order), for lookups."""
    keys = pl.Series("key", ids)
    order = keys.arg_sort()
    return keys.gather(order), order.to_numpy().astype(np.int64)


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
