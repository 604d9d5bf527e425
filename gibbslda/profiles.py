"""Who the users are and what they will want, as tables from a fitted LDA.

- :func:`user_profiles`: each user's top interests (topics) and their weights theta_uk;
  :func:`user_topics`: every user's whole mix, long or wide.
- :func:`topic_summary`: per interest, how many users have it as their main one, its
  share of the tokens, its expected number of users and its top items.
- :func:`demand`: expected demand per item, sum over users of p(item | user), and per
  category: a static share, with no time in it (forecasts over time:
  :mod:`gibbslda.demand`).
- :func:`topic_labels`: a short name per interest from its items' titles or categories;
  :func:`name_topics` does the naming from texts aligned with the items, and is the one
  way gibbslda names topics (the report and the command line call it too);
  :func:`item_names`: one text per item, its label or else its id.

Conventions as in :mod:`gibbslda.recommend`: polars frames in long format, ranks from 1,
ties to the lower topic or item index, the model's own user and item ids. ``labels`` is
one string per topic (for example from :func:`topic_labels`); without it the label column
is null.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from gibbslda._kernels import scores as _kernels
from gibbslda.recommend import _check_labels, _check_model, _lookup
from gibbslda.scores import theta_range, theta_rows
from gibbslda.topn import _check_count, top_k

_ROWS_PER_CHUNK = 2 ** 20  # users x topics values ranked at a time


def user_profiles(model, *, n: int = 3, labels=None, users=None) -> pl.DataFrame:
    """Each user's ``n`` strongest interests.

    Parameters
    ----------
    model : fitted :class:`gibbslda.LDA`.
    n : interests per user (at most K).
    labels : optional K strings, one per topic.
    users : training user ids (one or a sequence); None: every user, in index order.

    Returns
    -------
    polars.DataFrame with columns user_id, rank (1 = strongest), topic, label, weight
    (theta_uk: the user's share of the interest). A user's weights are decreasing and sum
    to at most 1.
    """
    _check_model(model)
    _check_count("n", n)
    labels = _check_labels(labels, model.n_topics)
    rows = np.arange(model.corpus_.n_users) if users is None else \
        _lookup((model, "user"), users, "user")
    width = min(int(n), model.n_topics)
    step = max(1, _ROWS_PER_CHUNK // model.n_topics)
    topics = np.empty((rows.size, width), dtype=np.int64)
    weights = np.empty((rows.size, width))
    for start in range(0, rows.size, step):
        theta = theta_rows(model.state_, rows[start:start + step])  # their own tokens
        topics[start:start + step] = top_k(theta, width)
        weights[start:start + step] = np.take_along_axis(theta, topics[start:start + step],
                                                         axis=1)
    flat = topics.ravel()
    return pl.DataFrame([
        pl.Series("user_id", np.repeat(model.user_ids_[rows], width)),
        pl.Series("rank", np.tile(np.arange(1, width + 1, dtype=np.int32), rows.size)),
        pl.Series("topic", flat, dtype=pl.Int32),
        pl.Series("label", [None] * flat.size if labels is None else
                  [labels[k] for k in flat], dtype=pl.String),
        pl.Series("weight", weights.ravel(), dtype=pl.Float64),
    ])


def user_topics(model, *, wide: bool = False) -> pl.DataFrame:
    """Every training user's whole mix of interests, theta (D x K), as a table.

    Returns
    -------
    polars.DataFrame: long (the default), D x K rows user_id, topic (Int32), weight
    (theta_uk), users in index order and topics in order within a user; or ``wide``, D
    rows user_id, topic_0 .. topic_{K-1}. user_id is the model's id as text (String). A
    user's weights sum to 1. Builds theta (8 D K bytes) for the table, without keeping it.
    """
    _check_model(model)
    theta = model.doc_topic()
    ids = pl.Series("user_id", model.user_ids_).cast(pl.String)
    if wide:
        frame = pl.DataFrame(theta, schema=[f"topic_{k}" for k in range(theta.shape[1])])
        return frame.insert_column(0, ids)
    n_users, k = theta.shape
    return pl.DataFrame({"user_id": np.repeat(ids.to_numpy(), k),
                         "topic": np.tile(np.arange(k, dtype=np.int32), n_users),
                         "weight": theta.ravel()})


def topic_summary(model, *, labels=None, n_items: int = 5) -> pl.DataFrame:
    """One row per interest: its size among users and tokens, and its top items.

    Returns
    -------
    polars.DataFrame with columns topic, label, n_users_main (users whose largest
    theta_uk is this topic, ties to the lower topic), share_users_main,
    expected_users (sum over users of theta_uk), share_tokens (n_k over all tokens) and
    top_items (the ``n_items`` item ids of highest phi_k,item, best first); by topic.
    """
    _check_model(model)
    _check_count("n_items", n_items)
    labels = _check_labels(labels, model.n_topics)
    n_topics, n_users = model.n_topics, model.corpus_.n_users
    main, expected = _theta_totals(model)
    n_k = model.n_k_.astype(np.float64)
    best = _top_items(model._tables(), n_items)
    return pl.DataFrame([
        pl.Series("topic", np.arange(n_topics), dtype=pl.Int32),
        pl.Series("label", labels or [None] * n_topics, dtype=pl.String),
        pl.Series("n_users_main", main, dtype=pl.Int64),
        pl.Series("share_users_main", main / max(n_users, 1), dtype=pl.Float64),
        pl.Series("expected_users", expected, dtype=pl.Float64),
        pl.Series("share_tokens", n_k / max(n_k.sum(), 1.0), dtype=pl.Float64),
        pl.Series("top_items", [model.item_ids_[row].tolist() for row in best]),
    ])


def _theta_totals(model) -> tuple[np.ndarray, np.ndarray]:
    """(users whose largest theta_uk is k, ties to the lower k; sum over users of
    theta_uk), from the users' tokens a block at a time: never D x K at once."""
    state, n_topics = model.state_, model.n_topics
    n_users = state.indptr.shape[0] - 1
    main = np.zeros(n_topics, dtype=np.int64)
    total = np.zeros(n_topics)
    step = max(1, _ROWS_PER_CHUNK // n_topics)
    for start in range(0, n_users, step):
        theta = theta_range(state, start, min(start + step, n_users))
        main += np.bincount(theta.argmax(axis=1), minlength=n_topics)
        total += theta.sum(axis=0)
    return main, total


def _top_items(tables, n: int) -> np.ndarray:
    """Each topic's ``n`` items of highest phi_kw, best first, ties to the lower item
    (K, min(n, V)): the head of its list by count (phi_kw rises strictly with n_kw), then
    items of no count in the topic by index."""
    width = min(int(n), tables.n_items)
    best = np.empty((tables.n_topics, width), dtype=np.int64)
    for k in range(tables.n_topics):
        a, b = tables.topic_ptr[k], tables.topic_ptr[k + 1]
        head = tables.topic_item[a:min(b, a + width)]
        rest = np.setdiff1d(np.arange(min(tables.n_items, width + (b - a))),
                            tables.topic_item[a:b])[:width - head.size]
        best[k] = np.concatenate([head, rest])
    return best


def demand(model, item_categories=None, *, item: str = "item_id",
           category: str = "category") -> pl.DataFrame:
    """Expected demand: sum over the training users of p(item | user), per item or category.

    Computed as (sum_u theta_u) . phi from the sparse counts (the smoothing part of phi is
    one number per topic), never as a users x items or topics x items matrix. The demands of all
    items add up to the number of users (each p(. | user) sums to 1), so ``share`` is the
    expected share of the users' next picks.

    Parameters
    ----------
    item_categories : optional dict item id -> category, or a polars/pandas frame with
        columns ``item`` and ``category``. Given, the table is per category (items
        without one are grouped under a null category).

    Returns
    -------
    Per item: columns item_id, demand, share, n_tokens (the item's training tokens, for
    comparison). Per category: category, n_items, demand, share, n_tokens. Rows by
    decreasing demand, ties in item index (or category) order.
    """
    _check_model(model)
    n_users = model.corpus_.n_users
    totals = _theta_totals(model)[1]
    t = model._tables()
    per_entry = totals[t.item_topic] * t.item_count / t.denom[t.item_topic]
    expected = np.bincount(np.repeat(np.arange(t.n_items), np.diff(t.item_ptr)),
                           weights=per_entry, minlength=t.n_items)
    expected += t.beta * (totals / t.denom).sum()
    table = pl.DataFrame([
        pl.Series("item_id", model.item_ids_),
        pl.Series("demand", expected, dtype=pl.Float64),
        pl.Series("share", expected / max(n_users, 1), dtype=pl.Float64),
        pl.Series("n_tokens", np.bincount(model.corpus_.words, minlength=expected.size),
                  dtype=pl.Int64),
    ])
    if item_categories is None:
        return table.sort("demand", descending=True, maintain_order=True)
    categories = _label_per_item(model, item_categories, item=item, value=category)
    known = np.array([c is not None for c in categories], dtype=bool)
    names, codes = np.unique(categories[known].astype(str), return_inverse=True)
    code = np.full(categories.size, names.size, dtype=np.int64)  # the last: no category
    code[known] = codes
    sums = {name: np.bincount(code, weights=table.get_column(name).to_numpy(),
                              minlength=names.size + 1) for name in ("demand", "n_tokens")}
    counts = np.bincount(code, minlength=names.size + 1)
    present = counts > 0
    order = np.lexsort((np.arange(present.sum()), -sums["demand"][present]))
    return pl.DataFrame([
        pl.Series("category", np.append(names, None).tolist(), dtype=pl.String),
        pl.Series("n_items", counts, dtype=pl.Int64),
        pl.Series("demand", sums["demand"], dtype=pl.Float64),
        pl.Series("share", sums["demand"] / max(n_users, 1), dtype=pl.Float64),
        pl.Series("n_tokens", sums["n_tokens"].round(), dtype=pl.Int64),
    ]).filter(pl.Series(present))[order]


def topic_labels(model, item_labels, *, n: int = 3, item: str = "item_id",
                 label: str = "title", sep: str = " / ") -> list[str]:
    """A short name per topic: its ``n`` heaviest labels (titles or categories).

    ``item_labels`` maps item ids to text: a dict, or a polars/pandas frame with columns
    ``item`` and ``label``. Each distinct text weighs the topic's probability of all
    items that carry it, so categories shared by many items rank by their total mass and
    titles by their item's. Texts are stripped; items without one (or with an empty one)
    are ignored; a topic with no labelled item is "interest k".
    """
    _check_model(model)
    return name_topics(model, _label_per_item(model, item_labels, item=item, value=label),
                       n=n, sep=sep)


def item_names(model, item_labels=None, *, item: str = "item_id",
               label: str = "label") -> np.ndarray:
    """One text per model item, aligned with ``item_ids_``: its label, else its id.

    ``item_labels`` maps item ids to labels as in :func:`topic_labels` (a dict, or a
    polars/pandas frame with columns ``item`` and ``label``, such as the
    ``labels.parquet`` the command line keeps in a model folder); None: every item is
    named by its id. An item without a label, or with an empty one, is named by its id
    as text; labels are kept as given (not stripped).

    Returns
    -------
    numpy object array (V,) of str.
    """
    _check_model(model)
    ids = pl.Series(model.item_ids_).cast(pl.String).to_numpy()
    if item_labels is None:
        return ids
    texts = _label_per_item(model, item_labels, item=item, value=label)
    named = np.array([t is not None and t != "" for t in texts], dtype=bool)
    return np.where(named, texts, ids)


def name_topics(topic_word, item_texts, *, n: int = 3, sep: str = " / ") -> list[str]:
    """A short name per topic: the ``n`` heaviest of the texts aligned with its items.

    Each distinct text weighs the topic's probability of all items that carry it, so
    categories shared by many items rank by their total mass and titles by their item's;
    equal weights go to the text whose first item has the lower index (with one text per
    item: the topic's top ``n`` items' texts, ties to the lower item index). Texts are
    stripped; items without one (None or blank) are ignored; a topic with no item with a
    text is "interest k".

    Parameters
    ----------
    topic_word : (K, V) a fitted model's ``topic_word_``, or the fitted model itself: its
        sparse counts are read (never the K x V phi), and texts are weighed by their items'
        summed counts plus beta each, exactly (the same order as the masses of phi, but
        for masses that phi's rounding alone would tell apart).
    item_texts : (V,) a text (or None) per item, in the order of ``item_ids_``.
    n : texts per name.
    sep : what joins them.

    Returns
    -------
    list of K strings.
    """
    _check_count("n", n)
    fitted = hasattr(topic_word, "_tables")
    if fitted:
        _check_model(topic_word)
        shape = (topic_word.n_topics, topic_word.corpus_.n_items)
    else:
        phi = np.asarray(topic_word)
        shape = phi.shape
    texts = np.array([None if v is None else str(v).strip() for v in item_texts],
                     dtype=object)
    if texts.shape != (shape[1],):
        raise ValueError(f"item_texts must have one text per item ({shape[1]}), got "
                         f"{texts.shape[0]}")
    has = texts.astype(bool)  # None and "" are no text
    if not has.any():
        return [f"interest {k}" for k in range(shape[0])]
    names, first, codes = np.unique(texts[has].astype(str), return_index=True,
                                    return_inverse=True)
    by_first = np.argsort(first)  # number texts by their first item: ties to the lower one
    names, codes = names[by_first], np.argsort(by_first)[codes]
    width = min(int(n), names.size)
    if fitted:
        return _names_from_counts(topic_word._tables(), has, codes, names, width, sep)
    out = []
    for k in range(phi.shape[0]):
        mass = np.bincount(codes, weights=phi[k, has], minlength=names.size)
        out.append(sep.join(str(names[c]) for c in top_k(mass[None, :], width)[0]))
    return out


def _names_from_counts(tables, has, codes, names, width: int, sep: str) -> list[str]:
    """:func:`name_topics` from the sparse counts: text t of m_t items weighs
    (C_kt + m_t beta) / (n_k + V beta) in topic k, C_kt its items' summed counts, so per
    topic the texts rank by C_kt + m_t beta; the texts of no count rank by m_t alone."""
    code_of = np.full(tables.n_items, -1, dtype=np.int64)
    code_of[has] = codes
    t_ptr, t_code, t_sum = _kernels.text_sums(tables.topic_ptr, tables.topic_item,
                                              tables.topic_count, code_of,
                                              np.int64(names.size))
    m = np.bincount(codes, minlength=names.size)
    idle = np.lexsort((np.arange(names.size), -m))  # by m_t, ties to the lower text
    out = []
    for k in range(tables.n_topics):
        own = t_code[t_ptr[k]:t_ptr[k + 1]]
        extra = idle[:width + own.size]
        extra = extra[~np.isin(extra, own)][:width]
        cand = np.concatenate([own, extra])
        key = np.concatenate([t_sum[t_ptr[k]:t_ptr[k + 1]] + m[own] * tables.beta,
                              m[extra] * tables.beta])
        by_text = np.argsort(cand)  # top_k's ties go to the lower column: the lower text
        best = top_k(key[by_text][None, :], width)[0]
        out.append(sep.join(str(names[c]) for c in cand[by_text][best]))
    return out


def _label_per_item(model, mapping, *, item: str = "item_id", value: str = "title"
                   ) -> np.ndarray:
    """The text (or None) of every model item, object (V,), from a dict or a frame."""
    ids = model.item_ids_
    if isinstance(mapping, Mapping):
        return np.array([mapping.get(i) for i in ids.tolist()] or [], dtype=object)
    if hasattr(mapping, "columns") and not isinstance(mapping, pl.DataFrame):
        mapping = pl.from_pandas(mapping)
    if not isinstance(mapping, pl.DataFrame):
        raise TypeError(f"item labels must be a dict or a data frame, got "
                        f"{type(mapping).__name__}")
    for column in (item, value):
        if column not in mapping.columns:
            raise ValueError(f"column {column!r} not found in the item table (columns "
                             f"{mapping.columns}): name yours with item= and label= "
                             "(category= for demand)")
    keys = pl.Series("key", ids)
    table = mapping.select(pl.col(item).cast(keys.dtype, strict=False).alias("key"),
                           pl.col(value).cast(pl.String).alias("value")).drop_nulls("key")
    duplicated = table.filter(pl.col("key").is_duplicated())
    if duplicated.height:
        raise ValueError(f"the item table has {duplicated.get_column('key').n_unique()} "
                         f"item ids on more than one row, for example "
                         f"{duplicated.get_column('key')[0]!r}")
    joined = keys.to_frame().join(table, on="key", how="left", maintain_order="left")
    return np.array(joined.get_column("value").to_list(), dtype=object)
