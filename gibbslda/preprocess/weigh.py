"""Weighted tokens per (user, word): aggregation, weights, dedupe, cap, words, k-core.

:func:`_aggregate` answers, in one streaming scan of the canonical rows per bucket of
users (:func:`_bucket`; one bucket unless the log is big), how many rows each event has
(and why any are dropped), the net tokens per user-item and the item labels;
:func:`_capped` applies the dedupe policy and the cap and :func:`_to_words` turns items
into words (items or categories), bucket by bucket; :func:`_index_filter_split` filters by
k-core, indexes users and words in sorted id order (users by pseudonym when
pseudonymising), splits and assembles a :class:`Prepared`.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from gibbslda.preprocess.folder import Prepared
from gibbslda.preprocess.readers import _collect, _mapped
from gibbslda.preprocess.splits import _iso, _split
from gibbslda.privacy import pseudonymize


def _aggregate(lf: pl.LazyFrame, has: set, opts: dict, where: str, cats,
               n_buckets: int = 1):
    """Rows counted per event (with why any are dropped), words per user (capped) and item
    labels, from one streaming scan of the source per bucket of users.

    With ``n_buckets`` > 1 each pass reads the users whose id hashes to its bucket, so
    polars's group-by tables hold one bucket's pairs at a time (about 100 bytes a pair);
    a bucket's pairs are capped and turned into words before the next pass, and the
    buckets' answers are summed: the same result as one pass, whose pair order is not
    kept anyway (:func:`_codes` sorts). Returns the pairs (user, word, count[, first]),
    each item's label (or None) and the summary so far. Words that are items are labelled
    by their most frequent label, else by their category (the most frequent one, or from
    the category table ``cats``), so a log with categories and no labels names items by
    category.
    """
    keys = ["user", "item"] + (["category"] if opts["word"] == "category" and cats is None
                               else [])
    reasons = [(f"null_{c}", pl.col(c).is_null()) for c in keys + ["event", "timestamp",
                                                                 "quantity"] if c in has]
    if opts["min_rating"] is not None:
        reasons.append(("below_min_rating",
                        ~(pl.col("rating") >= opts["min_rating"]).fill_null(False)))
    names = [name for name, _ in reasons]
    found = {"acc": [], "n_read": [], "pairs": [], "labels": [], "categories": []}
    counted: list[dict] = []
    for b in range(n_buckets):
        bucket = lf if n_buckets == 1 else lf.filter(pl.col("user").hash() % n_buckets == b)
        results, tallies = _bucket(bucket, has, keys, reasons, opts, where, cats)
        for name, frame in results.items():
            found[name].append(frame)
        counted.append(tallies)
    acc = _sum_acc(found["acc"], names, "event" in has)
    summary = _account(acc, names, has, opts, where,
                       sum(f.item() for f in found["n_read"]) if found["n_read"] else None)
    summary["pairs"] = {k: sum(t[k] for t in counted) for k in counted[0]}
    schema = lf.collect_schema()
    maps = [(pl.concat(found[query]).group_by("item", column).agg(pl.col("len").sum())
             .drop_nulls().sort(["item", "len", column], descending=[False, True, False])
             .group_by("item", maintain_order=True).first()
             .select("item", pl.col(column).cast(pl.String).alias("label")))
            for query, column in (("labels", "label"), ("categories", "category"))
            if found[query]]  # the most frequent value per item
    if cats is not None and opts["word"] == "item":
        maps.append(cats.select(pl.col("key").cast(schema["item"], strict=False).alias("item"),
                                pl.col("value").cast(pl.String).alias("label")).drop_nulls())
    label_map = pl.concat(maps).unique("item", keep="first", maintain_order=True) if maps \
        else None  # the first map that has an item labels it
    pairs = pl.concat(found.pop("pairs"), rechunk=False)
    return pairs, label_map, summary


def _bucket(lf: pl.LazyFrame, has: set, keys: list, reasons: list, opts: dict, where: str,
            cats) -> tuple[dict, dict]:
    """One scan of ``lf`` (the rows of one bucket of users): its row counts, its words per
    user (capped) and its label counts; and the tallies of its pairs for the summary."""
    queries = {}
    if opts["dedupe"] == "exact":
        queries["n_read"] = lf.select(pl.len())
        lf = lf.unique()
    bad = pl.lit(False)
    flags = []
    for name, check in reasons:  # a dropped row is counted once, under its first reason
        flags.append((check & ~bad).sum().alias(name))
        bad = bad | check
    schema = lf.collect_schema()
    # integer ids: group by one Int64 key, user * 2**32 + item (measured ~25% faster); the
    # first pass says whether the ids fit, else the pairs are counted again without it
    packed = keys == ["user", "item"] and all(schema[k].is_integer() for k in keys)
    ranges = [getattr(pl.col(k), f)().alias(f"_{f}_{k}") for k in keys for f in ("min", "max")
              ] if packed else []
    counted = [pl.len().alias("rows"), *flags, *ranges]
    queries["acc"] = lf.group_by("event").agg(counted) if "event" in has else lf.select(counted)
    queries["pairs"] = _pairs_query(lf.filter(~bad), has, keys, packed, opts)
    if "label" in has and opts["word"] == "item":
        queries["labels"] = lf.group_by("item", "label").len()
    if "category" in has and opts["word"] == "item" and cats is None:
        queries["categories"] = lf.group_by("item", "category").len()
    results = dict(zip(queries, _collect(list(queries.values()), where)))
    acc = results["acc"]
    _check_events(acc, has, opts)
    if packed and not acc.select(
            (pl.col("_min_user").min() >= 0) & (pl.col("_max_user").max() < 2**31)
            & (pl.col("_min_item").min() >= 0) & (pl.col("_max_item").max() < 2**32)).item():
        results["pairs"] = _collect([_pairs_query(lf.filter(~bad), has, keys, False, opts)],
                                    where)[0]
        packed = False
    if packed:
        key_columns = [(pl.col("_key") // 2**32).alias("user"),
                       (pl.col("_key") % 2**32).alias("item")]
    else:
        key_columns = keys
    pairs, tallies = _capped(results.pop("pairs"), key_columns, "timestamp" in has, opts)
    results["pairs"], tallies = _to_words(pairs, cats, opts, tallies)
    return results, tallies


def _sum_acc(accs: list, names: list, by_event: bool) -> pl.DataFrame:
    """The buckets' row counts summed (per event), their id ranges widened."""
    if len(accs) == 1:
        return accs[0]
    acc = pl.concat(accs)
    aggs = [pl.col(c).cast(pl.Int64).sum() for c in ["rows", *names]] + [
        getattr(pl.col(c), c[1:4])() for c in acc.columns if c[:5] in ("_min_", "_max_")]
    return acc.group_by("event").agg(aggs) if by_event else acc.select(aggs)


def _check_events(acc: pl.DataFrame, has: set, opts: dict) -> None:
    if "event" in has:
        unknown = sorted(set(acc["event"].drop_nulls()) - set(opts["weights"]))
        if unknown:
            raise ValueError(f"events {unknown} have no weight: pass weights={{{unknown[0]!r}: "
                             "<int>, ...}} (0 ignores an event)")


def _account(acc: pl.DataFrame, names: list, has: set, opts: dict, where: str,
             n_read: int | None) -> dict:
    """The summary of the rows read and dropped; raises on unknown events or no rows."""
    n_rows = int(acc["rows"].sum())  # after dropping duplicates, when asked to
    dropped = {name: int(acc[name].sum()) for name in names}
    used = n_rows - sum(dropped.values())
    if n_read is not None:
        dropped["duplicate"] = n_read - n_rows
    n_read = n_rows if n_read is None else n_read
    summary = {"source": where, "options": {k: v for k, v in opts.items() if k[0] != "_"},
               "rows": {"read": n_read, "used": used, "dropped": dropped}}
    if "event" in has:
        _check_events(acc, has, opts)
        acc = acc.select("event", (pl.col("rows") - pl.sum_horizontal(names)).alias("used"))
        summary["events"] = dict(acc.filter(pl.col("used") > 0).sort("event").iter_rows())
    if used == 0:
        reasons = {k: v for k, v in dropped.items() if v}
        raise ValueError(f"no usable rows in {where}: {n_read} read, dropped {reasons}; "
                         "check the column mapping and types")
    return summary


def _pairs_query(lf: pl.LazyFrame, has: set, keys: list, packed: bool,
                 opts: dict) -> pl.LazyFrame:
    """Net tokens per user-item over the usable rows (weighted, deduplicated, not capped).

    Every per-row quantity is a column before the group-by, so polars aggregates with its
    plain sum/min/max kernels. Unknown events weigh null here; :func:`_account` refuses them.
    """
    w = pl.col("_w")
    weights = {k: pl.lit(v, dtype=pl.Int64) for k, v in opts["weights"].items()}
    lf = lf.with_columns(_w=_mapped(pl.col("event"), weights, pl.lit(None, dtype=pl.Int64))
                         if "event" in has else pl.lit(1, dtype=pl.Int64))
    if opts["dedupe"] == "event":  # each (user, item, event) once: one unit of its weight
        lf = lf.group_by(*keys, "event").agg(w.first(), *(
            [pl.col("timestamp").min(), pl.col("timestamp").max().alias("_latest")]
            if "timestamp" in has else []))
        tokens = w
    elif "quantity" in has:  # a negative quantity subtracts: w q; a negative weight: -|w| |q|
        tokens = pl.when(w > 0).then(w * pl.col("quantity")).otherwise(
            w * pl.col("quantity").abs())
    else:
        tokens = w
    aggs = [pl.col("_t").sum().alias("net")]
    if opts["dedupe"] == "item":
        aggs.append(pl.when(w > 0).then(w).max().alias("best"))
    if "timestamp" in has:
        latest = "_latest" if opts["dedupe"] == "event" else "timestamp"
        aggs += [pl.col("timestamp").min().alias("first"), pl.col(latest).max().alias("last")]
    by = [(pl.col("user") * 2**32 + pl.col("item")).alias("_key")] if packed else keys
    return lf.with_columns(_t=tokens).group_by(by).agg(aggs)


def _capped(p: pl.DataFrame, key_columns: list, timed: bool, opts: dict):
    """Tokens per pair after the dedupe policy and the cap, pairs left with none dropped;
    and the tallies of the pairs read, not positive and of the tokens the cap removed."""
    raw = pl.when(pl.col("net") > 0).then(
        pl.col("best") if opts["dedupe"] == "item" else pl.col("net")).otherwise(0)
    count = raw if opts["cap"] is None else raw.clip(upper_bound=opts["cap"])
    tallies = {"read": p.height, **{k: int(v) for k, v in p.select(
        (pl.col("net") <= 0).sum().alias("not_positive"),
        (raw - count).sum().alias("tokens_removed_by_cap")).row(0, named=True).items()}}
    return p.lazy().select(*key_columns, count.alias("count"),
                           *(["first", "last"] if timed else [])
                           ).filter(pl.col("count") > 0).collect(), tallies


def _to_words(p: pl.DataFrame, cats, opts: dict, tallies: dict):
    """Rename items to words, or sum pairs into (user, category) words; the tallies with
    the pairs and tokens lost for want of a category."""
    if opts["word"] == "item":
        return p.drop("category", strict=False).rename({"item": "word"}), tallies
    if cats is not None:
        cats = cats.with_columns(pl.col("key").cast(p.schema["item"], strict=False))
        p = p.drop("category", strict=False).join(
            cats.rename({"key": "item", "value": "category"}), on="item", how="left")
    lost = p.filter(pl.col("category").is_null())
    tallies |= {"without_category": lost.height,
                "tokens_without_category": int(lost["count"].sum())}
    aggs = [pl.col("count").sum()] + ([pl.col("first").min(), pl.col("last").max()]
                                      if "first" in p.columns else [])
    return (p.filter(pl.col("category").is_not_null()).group_by("user", "category").agg(aggs)
            .rename({"category": "word"})), tallies


def _kcore(u: np.ndarray, w: np.ndarray, n_users: int, n_words: int, min_user_items: int,
           min_item_users: int) -> tuple[np.ndarray, int]:
    """Pairs kept by iterative k-core filtering (each pair is distinct), and the rounds."""
    keep = np.ones(u.shape[0], dtype=bool)
    by_user, by_word = np.bincount(u, minlength=n_users), np.bincount(w, minlength=n_words)
    rounds = 0
    while min_user_items > 1 or min_item_users > 1:  # degrees fall as pairs are dropped
        drop = keep & ((by_user < min_user_items)[u] | (by_word < min_item_users)[w])
        if not drop.any():
            break
        keep &= ~drop
        by_user -= np.bincount(u[drop], minlength=n_users)
        by_word -= np.bincount(w[drop], minlength=n_words)
        rounds += 1
    return keep, rounds


def _index_filter_split(p: pl.DataFrame, label_map, table_labels, opts: dict,
                        summary: dict) -> Prepared:
    """k-core filter, index users and words in sorted id order, split, assemble.

    ``p`` (user, word, count[, first]) is consumed (see :func:`_codes`)."""
    user_ids, word_ids, u, w, count, first, last = _codes(p, opts["_pseudonym_key"])
    keep, rounds = _kcore(u, w, user_ids.len(), word_ids.len(), opts["min_user_items"],
                          opts["min_item_users"])
    kept_users = np.bincount(u[keep], minlength=user_ids.len()) > 0
    kept_words = np.bincount(w[keep], minlength=word_ids.len()) > 0
    summary["kcore"] = {"rounds": rounds, "dropped_users": int((~kept_users).sum()),
                        "dropped_words": int((~kept_words).sum()),
                        "dropped_pairs": int((~keep).sum()),
                        "dropped_tokens": int(count[~keep].sum())}
    if not keep.any():
        raise ValueError(f"k-core filtering (min_user_items={opts['min_user_items']}, "
                         f"min_item_users={opts['min_item_users']}) left no pairs: lower them")
    user_ids = user_ids.filter(pl.Series(kept_users))
    word_ids = word_ids.filter(pl.Series(kept_words))
    if not keep.all():
        u = (np.cumsum(kept_users) - 1).astype(np.int32)[u[keep]]
        w = (np.cumsum(kept_words) - 1).astype(np.int32)[w[keep]]
        count = count[keep]
        first, last = (None, None) if first is None else (first[keep], last[keep])
    part, names, detail = _split(u, first, opts["_split"], opts["seed"])
    tokens = pl.DataFrame({
        "user": u, "word": w, "count": count,
        "first_seen": (pl.Series(first) if first is not None else
                       pl.repeat(None, u.shape[0], dtype=pl.Int64, eager=True)
                       ).cast(pl.Datetime("us")),
        "last_seen": (pl.Series(last) if last is not None else
                      pl.repeat(None, u.shape[0], dtype=pl.Int64, eager=True)
                      ).cast(pl.Datetime("us")),
        "part": pl.Series(names, dtype=pl.String).gather(part)})
    words = pl.DataFrame({"word": np.arange(word_ids.len(), dtype=np.int32),
                          "word_id": word_ids,
                          "label": pl.repeat(None, word_ids.len(), dtype=pl.String, eager=True),
                          "n_users": np.bincount(w, minlength=word_ids.len()),
                          "n_tokens": np.bincount(w, weights=count,
                                                  minlength=word_ids.len()).astype(np.int64)})
    words = _label(words, label_map, table_labels)
    users = pl.DataFrame({"user": np.arange(user_ids.len(), dtype=np.int32), "user_id": user_ids})
    summary["result"] = {"users": users.height, "words": words.height,
                         "pairs": int(count.shape[0]), "tokens": int(count.sum())}
    if first is not None:
        summary["result"] |= {"first_seen_min": _iso(int(first.min())),
                              "first_seen_max": _iso(int(first.max()))}
    summary["split_detail"] = detail
    if opts["_pseudonym_key"] is not None:
        summary["pseudonymized"] = True
    summary["parts"] = {name: _part_summary(u, w, count, part == i)
                        for i, name in enumerate(names)}
    return Prepared(tokens, users, words, summary)


def _codes(p: pl.DataFrame, key: bytes | None):
    """Sorted user and word ids, and the pairs as arrays (user and word indices int32,
    counts int64, first- and last-seen microseconds or None) sorted by user, word.

    ``p`` is consumed: each column is dropped from it once read, so the pairs are never
    held twice (the frame and the arrays). With a ``key`` the user ids are the users'
    pseudonyms, sorted: never the order of the original ids, which (sequential customer
    numbers) would re-identify row i.
    """
    users, word_ids = p["user"].unique().sort(), p["word"].unique().sort()
    n_words, user_ids = word_ids.len(), users
    # one int64 key per pair, u * n_words + w, built in place; u and w are read back from
    # it once sorted (at 58M pairs the sort's temporaries are the peak of this step)
    pair = users.search_sorted(p.drop_in_place("user")).to_numpy().astype(np.int64)
    if key is not None:
        user_ids = pl.Series(pseudonymize(users.to_numpy(), key), dtype=pl.String)
        order = user_ids.arg_sort()
        user_ids = user_ids.gather(order)
        rank = np.empty(users.len(), dtype=np.int64)
        rank[order.to_numpy()] = np.arange(users.len())
        pair = rank[pair]
    pair *= n_words
    pair += word_ids.search_sorted(p.drop_in_place("word")).to_numpy()
    # group_by's row order varies between runs: fix the order before any random draw
    order = pl.Series(pair).arg_sort().to_numpy()  # keys are distinct: any sort will do
    pair = pair[order]
    u, w = (pair // n_words).astype(np.int32), (pair % n_words).astype(np.int32)
    del pair
    count = p.drop_in_place("count").to_numpy().astype(np.int64, copy=False)[order]
    first, last = ((p.drop_in_place(c).cast(pl.Int64).to_numpy()[order]
                    for c in ("first", "last")) if "first" in p.columns else (None, None))
    return user_ids, word_ids, u, w, count, first, last


def _part_summary(u, w, count, mask) -> dict:
    return {"users": int(np.count_nonzero(np.bincount(u[mask]))),
            "words": int(np.count_nonzero(np.bincount(w[mask]))),
            "pairs": int(mask.sum()), "tokens": int(count[mask].sum())}


def _label(words: pl.DataFrame, label_map, table_labels) -> pl.DataFrame:
    """Fill ``label`` from a labels table (first) or an item label column."""
    for table in (table_labels, label_map):
        if table is None:
            continue
        table = table.rename({table.columns[0]: "word_id", table.columns[1]: "_label"})
        table = table.with_columns(pl.col("word_id").cast(words.schema["word_id"], strict=False))
        words = (words.join(table.drop_nulls("word_id"), on="word_id", how="left",
                            maintain_order="left")
                 .with_columns(pl.coalesce("label", pl.col("_label").cast(pl.String)))
                 .drop("_label"))
    return words
