"""gibbslda.preprocess: readers, weights, k-core, splits, category words, prepared folders."""
from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from gibbslda import preprocess as pp
from gibbslda.data import online_retail_dir
from gibbslda.preprocess import HeldOutUsers, LeaveLastN, TimeCutoff, prepare

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def counts(prepared, part=None) -> dict:
    """{(user_id, word_id): tokens} of one part (or all parts)."""
    t = prepared.tokens if part is None else prepared.tokens.filter(pl.col("part") == part)
    t = t.join(prepared.users, on="user").join(prepared.words, on="word")
    return {(r["user_id"], r["word_id"]): r["count"] for r in t.iter_rows(named=True)}


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def random_log(seed: int, n_rows: int = 800, n_users: int = 40, n_items: int = 30):
    """A random event log: skewed users and items, four behaviours, distinct times."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "user_id": rng.zipf(1.6, n_rows) % n_users,
        "item_id": [f"i{k}" for k in rng.zipf(1.4, n_rows) % n_items],
        "event": rng.choice(["view", "cart", "fav", "purchase"], n_rows, p=[.7, .1, .1, .1]),
        "ts": 1_600_000_000 + rng.permutation(n_rows) * 60,
    })


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


# -- readers ------------------------------------------------------------------------------

RETAILROCKET = """\
1433221332117,257597,view,355908,
1433224214164,992329,view,248676,
1433221999827,111016,view,318965,
1433221955914,257597,addtocart,355908,
1433222147345,257597,transaction,355908,4000
1433223236124,992329,view,248676,
"""


@pytest.mark.parametrize("header", [True, False])
def test_retailrocket_events(tmp_path, header):
    text = ("timestamp,visitorid,event,itemid,transactionid\n" if header else "") + RETAILROCKET
    p = prepare(write(tmp_path, "events.csv", text), format="retailrocket", cap=None)
    # view 1 + addtocart 2 + transaction 3; two views; one view
    assert counts(p) == {(257597, 355908): 6, (992329, 248676): 2, (111016, 318965): 1}
    assert p.summary["events"] == {"cart": 1, "purchase": 1, "view": 4}
    first = p.tokens.join(p.users, on="user").filter(pl.col("user_id") == 257597)["first_seen"]
    assert first.item() == datetime(2015, 6, 2, 5, 2, 12, 117000)  # 1433221332117 ms


TAOBAO = """\
1,2268318,2520377,pv,1511544070
1,2333346,2520771,pv,1511561733
1,2268318,2520377,buy,1511572885
2,2576651,149192,cart,1511572886
2,3830808,4181361,fav,1511593493
2,2576651,149192,pv
"""


@pytest.mark.parametrize("header", ["", "user_id,item_id,category_id,behavior_type,timestamp\n"])
def test_taobao_user_behavior(tmp_path, header):
    path = write(tmp_path, "UserBehavior.csv", header + TAOBAO)  # last line cut short
    items = prepare(path, format="taobao", cap=None)
    assert counts(items) == {(1, 2268318): 4, (1, 2333346): 1, (2, 2576651): 2, (2, 3830808): 2}
    assert items.summary["rows"]["dropped"]["null_timestamp"] == 1
    assert items.summary["rows"]["read"] == 6 and items.summary["rows"]["used"] == 5
    cats = prepare(path, format="taobao", word="category", cap=None)
    assert counts(cats) == {(1, 2520377): 4, (1, 2520771): 1, (2, 149192): 2, (2, 4181361): 2}


def test_taobao_frame_with_raw_names():
    frame = pl.read_csv(TAOBAO.encode(), has_header=False, truncate_ragged_lines=True,
                        new_columns=["user_id", "item_id", "category_id", "behavior_type",
                                     "timestamp"])
    p = prepare(frame, format="taobao", cap=None)
    assert counts(p)[(1, 2268318)] == 4


ONLINE_RETAIL = (
    b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    b"536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
    b"536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,"
    b"United Kingdom\n"
    b"536366,22633,HAND WARMER UNION JACK,1,12/1/2010 8:28,1.85,17850,United Kingdom\n"
    b"C536379,22633,HAND WARMER UNION JACK,-1,12/1/2010 9:41,1.85,17850,United Kingdom\n"
    b"536367,84879,ASSORTED COLOUR BIRD ORNAMENT \xa3,2,12/1/2010 8:34,1.69,13047,"
    b"United Kingdom\n"
    b"536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,12/1/2010 8:34,2.55,13047,"
    b"United Kingdom\n"
    b"536369,85123A,CREAM HANGING HEART T-LIGHT HOLDER,1,12/1/2010 8:35,2.55,,United Kingdom\n"
)


def test_online_retail_csv(tmp_path):
    p = prepare(write(tmp_path, "Online Retail.csv", ONLINE_RETAIL), format="online_retail",
                cap=None)
    # purchase 3 tokens a unit; the "C" invoice returns the one hand warmer: nothing left
    assert counts(p) == {(17850, "71053"): 18, (17850, "85123A"): 18, (13047, "84879"): 6,
                         (13047, "85123A"): 3}
    assert p.summary["rows"]["dropped"]["null_user"] == 1  # no CustomerID
    assert p.summary["pairs"]["not_positive"] == 1
    assert p.summary["events"] == {"purchase": 5, "return": 1}
    labels = dict(p.words.select("word_id", "label").iter_rows())
    assert labels["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER"  # most frequent of two
    assert labels["84879"].startswith("ASSORTED COLOUR BIRD ORNAMENT")  # latin-1 byte read
    capped = prepare(write(tmp_path, "r.csv", ONLINE_RETAIL), format="online_retail", cap=5)
    assert counts(capped)[(17850, "85123A")] == 5 and counts(capped)[(13047, "85123A")] == 3


def test_online_retail_ii_column_names(tmp_path):
    text = ("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
            "489434,85048,15CM CHRISTMAS GLASS BALL,12,2009-12-01 07:45:00,6.95,13085.0,UK\n"
            "C489449,85048,15CM CHRISTMAS GLASS BALL,-2,2009-12-01 10:33:00,6.95,13085.0,UK\n")
    p = prepare(write(tmp_path, "online_retail_II.csv", text), format="online_retail", cap=None)
    assert counts(p) == {(13085, "85048"): 30}  # 3 * 12 - 3 * 2
    assert p.tokens["first_seen"].item() == datetime(2009, 12, 1, 7, 45)


def test_movielens_ratings_csv_and_u_data(tmp_path):
    ratings = write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n"
                    "1,1,4.0,964982703\n1,3,4.0,964981247\n1,6,2.0,964982224\n"
                    "2,1,5.0,964982931\n")
    assert counts(prepare(ratings, format="movielens")) == {(1, 1): 1, (1, 3): 1, (1, 6): 1,
                                                            (2, 1): 1}
    liked = prepare(ratings, format="movielens", min_rating=4)
    assert counts(liked) == {(1, 1): 1, (1, 3): 1, (2, 1): 1}
    assert liked.summary["rows"]["dropped"]["below_min_rating"] == 1
    u_data = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"
                   "196\t302\t1\t878887116\n")
    p = prepare(u_data, format="movielens", min_rating=2)
    assert counts(p) == {(196, 242): 1, (186, 302): 1}
    assert p.tokens.filter(pl.col("user") == 1)["first_seen"].item() == datetime(
        1997, 12, 4, 15, 55, 49)  # user 196 (index 1), 881250949 s


def test_generic_sources_agree(tmp_path):
    log = random_log(0)
    expected = counts(prepare(log, event="event", timestamp="ts"))
    log.write_csv(tmp_path / "log.csv")
    log.write_csv(tmp_path / "log.tsv", separator="\t")
    log.write_parquet(tmp_path / "log.parquet")
    log.write_ndjson(tmp_path / "log.ndjson")
    for source in ["log.csv", "log.tsv", "log.parquet", "log.ndjson"]:
        assert counts(prepare(tmp_path / source, event="event", timestamp="ts")) == expected
    for frame in (log.lazy(), log.to_pandas()):
        assert counts(prepare(frame, event="event", timestamp="ts")) == expected


@pytest.mark.parametrize("values, expected", [
    (["2021-03-04T05:06:07", "2021-03-04 05:06:08"], datetime(2021, 3, 4, 5, 6, 7)),
    (["2021-03-04T05:06:07+01:00", "2021-03-04T05:06:08+01:00"], datetime(2021, 3, 4, 4, 6, 7)),
    ([1614834367, 1614834368], datetime(2021, 3, 4, 5, 6, 7)),
    ([1614834367000, 1614834368000], datetime(2021, 3, 4, 5, 6, 7)),
    ([1614834367.5, 1614834368.0], datetime(2021, 3, 4, 5, 6, 7, 500000)),
])
def test_generic_times(values, expected):
    p = prepare(pl.DataFrame({"user_id": [1, 1], "item_id": [1, 1], "t": values}),
                timestamp="t")
    assert p.tokens["first_seen"].item() == expected


# -- bad input ----------------------------------------------------------------------------

def test_missing_column_names_it_and_lists_the_columns(tmp_path):
    path = write(tmp_path, "log.csv", "visitor,product\n1,2\n")
    with pytest.raises(ValueError, match=r"column 'user_id' not found in log\.csv") as exc:
        prepare(path)
    assert "['visitor', 'product']" in one_line(exc)
    with pytest.raises(ValueError, match="column 'timestamp' not found") as exc:
        prepare(pl.DataFrame({"visitorid": [1], "event": ["view"], "itemid": [2]}),
                format="retailrocket")
    one_line(exc)


@pytest.mark.parametrize("frame, kwargs, match", [
    ({"user_id": [1.5], "item_id": [1]}, {}, r"column 'user_id' \(user\) has type Float64"),
    ({"user_id": [1], "item_id": [1], "e": [3]}, {"event": "e"}, r"'e' \(event\) has type Int64"),
    ({"user_id": [1], "item_id": [1], "q": ["2"]}, {"quantity": "q"}, r"'q' \(quantity\)"),
    ({"user_id": [1], "item_id": [1], "t": [True]}, {"timestamp": "t"}, r"'t' \(timestamp\)"),
])
def test_mistyped_column(frame, kwargs, match):
    with pytest.raises(TypeError, match=match) as exc:
        prepare(pl.DataFrame(frame), **kwargs)
    assert "columns:" in one_line(exc)


@pytest.mark.parametrize("name, text, fmt, match", [
    ("UserBehavior.csv", "user_id,item_id,category_id,behavior_type,timestamp\n1,2,3,pv,4\n",
     "retailrocket", "does not look like a format='retailrocket' file"),
    ("events.csv", "timestamp,visitorid,event,itemid,transactionid\n1,x9,view,2,\n",
     "retailrocket", "could not read events.csv"),
    ("events.csv", "", "retailrocket", "events.csv is empty"),
    ("Online Retail.xlsx", "PK", "online_retail", r"suffix '\.xlsx' is not one of"),
    ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,4.0,5,6\n", "movielens",
     "could not read ratings.csv"),
])
def test_bad_files(tmp_path, name, text, fmt, match):
    with pytest.raises(ValueError, match=match) as exc:
        prepare(write(tmp_path, name, text), format=fmt)
    one_line(exc)


def test_missing_file_and_bad_source(tmp_path):
    with pytest.raises(ValueError, match="no file at"):
        prepare(tmp_path / "nope.csv")
    with pytest.raises(TypeError, match="source must be a file path or a polars/pandas frame"):
        prepare([1, 2, 3])


def test_unparseable_times_leave_no_rows(tmp_path):
    path = write(tmp_path, "r.csv", ONLINE_RETAIL.replace(b"12/1/2010", b"sometime"))
    with pytest.raises(ValueError, match=r"no usable rows .* 'null_timestamp': 6") as exc:
        prepare(path, format="online_retail")
    one_line(exc)


def test_unknown_event_needs_a_weight():
    frame = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "e": ["view", "click"]})
    with pytest.raises(ValueError, match=r"events \['click'\] have no weight") as exc:
        prepare(frame, event="e")
    one_line(exc)
    assert counts(prepare(frame, event="e", weights={"click": 4})) == {(1, 1): 1, (1, 2): 4}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"format": "csv"}, ValueError, "format must be one of"),
    ({"cap": 0}, ValueError, "cap must be >= 1, got 0"),
    ({"cap": 2.5}, TypeError, "cap must be an integer"),
    ({"dedupe": "all"}, ValueError, "dedupe must be one of"),
    ({"word": "brand"}, ValueError, "word must be 'item' or 'category'"),
    ({"min_user_items": 0}, ValueError, "min_user_items must be >= 1"),
    ({"min_item_users": True}, TypeError, "min_item_users must be an integer"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"weights": {"view": 1.5}}, TypeError, r"weights\['view'\] must be an integer"),
    ({"weights": [("view", 1)]}, TypeError, "weights must be a dict"),
    ({"min_rating": "4"}, TypeError, "min_rating must be a number"),
    ({"split": "last"}, TypeError, "split must be LeaveLastN"),
    ({"split": LeaveLastN(0)}, ValueError, r"LeaveLastN\(n\) needs an integer n >= 1"),
    ({"split": HeldOutUsers(1.5)}, ValueError, r"HeldOutUsers\(fraction\) must be in \(0, 1\)"),
    ({"split": HeldOutUsers(0.2, 0.0)}, ValueError, "hidden_fraction"),
    ({"split": TimeCutoff("soon")}, ValueError, "is not an ISO-8601 time"),
    ({"split": TimeCutoff(1.5)}, ValueError, r"as a fraction must be in \(0, 1\)"),
    ({"split": TimeCutoff(3)}, TypeError, "TimeCutoff"),
    ({"format": "taobao", "user": "u"}, ValueError, "user= names a column"),
    ({"word": "category"}, ValueError, "word='category' needs categories"),
    ({"min_rating": 4}, ValueError, "min_rating needs ratings"),
    ({"weights": {"view": 1}}, ValueError, "weights= needs an event column"),
    ({"split": LeaveLastN(1)}, ValueError, "LeaveLastN needs times"),
    ({"category": 3, "word": "category"}, TypeError, "category= must be a column name or a table"),
    ({"category": pl.DataFrame({"a": [1]}), "word": "category"}, ValueError, "needs two columns"),
])
def test_invalid_options(kwargs, error, match):
    frame = pl.DataFrame({"user_id": [1, 2], "item_id": [1, 1]})
    with pytest.raises(error, match=match) as exc:
        prepare(frame, **kwargs)
    one_line(exc)


# -- weights, returns, cap, dedupe --------------------------------------------------------

EVENTS = pl.DataFrame({
    "user_id": ["u1"] * 22 + ["u2"] * 2,
    "item_id": ["A", "A", "A", "A", "B", "B"] + ["C"] * 16 + ["A", "A"],
    "event": ["view", "view", "view", "cart", "purchase", "return"] + ["view"] * 16
             + ["fav", "purchase"],
    "ts": [1, 1, 2, 3, 4, 5] + list(range(6, 22)) + [30, 31],
})


@pytest.mark.parametrize("dedupe, cap, expected", [
    # A: 3 views + cart = 5; B: purchase - return = 0 (dropped); C: 16 views
    ("none", None, {("u1", "A"): 5, ("u1", "C"): 16, ("u2", "A"): 5}),
    ("none", 10, {("u1", "A"): 5, ("u1", "C"): 10, ("u2", "A"): 5}),
    ("exact", None, {("u1", "A"): 4, ("u1", "C"): 16, ("u2", "A"): 5}),  # one view repeated
    ("event", None, {("u1", "A"): 3, ("u1", "C"): 1, ("u2", "A"): 5}),   # view once + cart
    ("item", None, {("u1", "A"): 2, ("u1", "C"): 1, ("u2", "A"): 3}),    # strongest event
    ("item", 2, {("u1", "A"): 2, ("u1", "C"): 1, ("u2", "A"): 2}),
])
@pytest.mark.parametrize("bucket_rows", [10**9, 2])  # one pass; 12 buckets, some empty
def test_weights_returns_cap_dedupe(dedupe, cap, expected, bucket_rows, monkeypatch):
    monkeypatch.setattr(pp, "BUCKET_ROWS", bucket_rows)
    p = prepare(EVENTS, event="event", timestamp="ts", dedupe=dedupe, cap=cap)
    assert counts(p) == expected
    assert p.summary["pairs"]["not_positive"] == 1
    removed = {None: 0, 10: 6, 2: 1}[cap]
    assert p.summary["pairs"]["tokens_removed_by_cap"] == removed
    if dedupe == "exact":
        assert p.summary["rows"]["dropped"]["duplicate"] == 1


def test_custom_weights_merge_over_defaults():
    p = prepare(EVENTS, event="event", weights={"view": 0, "cart": 5}, cap=None)
    assert counts(p) == {("u1", "A"): 5, ("u2", "A"): 5}  # views ignored, C has nothing left
    assert p.summary["options"]["weights"]["purchase"] == 3


def test_quantities_and_returns():
    frame = pl.DataFrame({
        "user_id": [1, 1, 1, 2, 2, 2, 3],
        "item_id": ["A", "A", "B", "A", "B", "B", "A"],
        "event": ["purchase", "return", "purchase", "purchase", "return", "purchase", "purchase"],
        "q": [2, -1, 5, -2, 1, 2, None],
    })
    p = prepare(frame, event="event", quantity="q", cap=None)
    # 1A: 3*2 - 3*1; 1B: 3*5; 2A: a negative quantity subtracts; 2B: -3*|1| + 3*2; 3A: null q
    assert counts(p) == {(1, "A"): 3, (1, "B"): 15, (2, "B"): 3}
    assert p.summary["rows"]["dropped"]["null_quantity"] == 1
    assert counts(prepare(frame, event="event", quantity="q", cap=4))[(1, "B")] == 4


@pytest.mark.parametrize("offset", [2**40, -(2**20)])
def test_integer_ids_out_of_packing_range_give_the_same_counts(offset):
    log = random_log(10).with_columns(item_id=pl.col("user_id") * 7 % 23)  # integer items
    packed = counts(prepare(log, event="event", timestamp="ts"))
    shifted = log.with_columns(pl.col("user_id") + offset, pl.col("item_id") + offset)
    got = counts(prepare(shifted, event="event", timestamp="ts"))
    assert got == {(u + offset, i + offset): c for (u, i), c in packed.items()}


def test_no_event_column_counts_rows():
    frame = pl.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [7, 7, 8, 7]})
    assert counts(prepare(frame, cap=None)) == {(1, 7): 2, (1, 8): 1, (2, 7): 1}


# -- k-core -------------------------------------------------------------------------------

def slow_kcore(pairs: set, min_user_items: int, min_item_users: int) -> set:
    """Remove one offending user or item at a time until none is left."""
    pairs = set(pairs)
    while True:
        users = Counter(u for u, _ in pairs)
        items = Counter(i for _, i in pairs)
        low_user = next((u for u, n in sorted(users.items()) if n < min_user_items), None)
        if low_user is not None:
            pairs = {p for p in pairs if p[0] != low_user}
            continue
        low_item = next((i for i, n in sorted(items.items()) if n < min_item_users), None)
        if low_item is None:
            return pairs
        pairs = {p for p in pairs if p[1] != low_item}


@pytest.mark.parametrize("seed, min_user_items, min_item_users",
                         [(0, 3, 3), (1, 5, 2), (2, 2, 6), (3, 4, 4)])
def test_kcore_matches_slow_reference(seed, min_user_items, min_item_users):
    log = random_log(seed, n_rows=1500, n_users=120, n_items=80)
    full = counts(prepare(log, event="event"))
    p = prepare(log, event="event", min_user_items=min_user_items, min_item_users=min_item_users)
    expected = slow_kcore(set(full), min_user_items, min_item_users)
    assert expected and len(expected) < len(full)  # the case filters something, not all
    assert set(counts(p)) == expected
    assert all(counts(p)[k] == full[k] for k in expected)
    kcore = p.summary["kcore"]
    assert kcore["dropped_pairs"] == len(full) - len(expected)
    assert kcore["dropped_tokens"] == sum(full.values()) - sum(counts(p).values())
    assert kcore["dropped_users"] == len({u for u, _ in full}) - len({u for u, _ in expected})
    assert kcore["rounds"] >= 1


def test_kcore_that_removes_everything():
    with pytest.raises(ValueError, match="left no pairs: lower them"):
        prepare(random_log(0), min_user_items=1000)


# -- splits -------------------------------------------------------------------------------

SPLITS = [LeaveLastN(2), TimeCutoff(0.25), TimeCutoff("2020-09-13T13:40"), HeldOutUsers(0.3, 0.4)]


@pytest.mark.parametrize("split", SPLITS, ids=repr)
def test_split_is_deterministic_disjoint_and_complete(split):
    log = random_log(5)
    whole = counts(prepare(log, event="event", timestamp="ts"))
    p = prepare(log, event="event", timestamp="ts", split=split, seed=3)
    again = prepare(log, event="event", timestamp="ts", split=split, seed=3)
    assert p.tokens.equals(again.tokens)
    parts = [counts(p, part) for part in p.parts]
    assert all(parts)
    assert sum(len(c) for c in parts) == len(whole)                  # disjoint
    assert {k: v for c in parts for k, v in c.items()} == whole      # complete
    assert p.summary["parts"] == {
        part: {"users": len({u for u, _ in c}), "words": len({w for _, w in c}),
               "pairs": len(c), "tokens": sum(c.values())} for part, c in zip(p.parts, parts)}


def test_held_out_users_depend_on_the_seed():
    log = random_log(5)
    a, b = (prepare(log, event="event", split=HeldOutUsers(0.3, 0.4), seed=s) for s in (0, 1))
    assert not a.tokens.equals(b.tokens)


@pytest.mark.parametrize("n", [2, pp.splits._FEW_LAST + 2])  # linear passes; one sort
def test_leave_last_n_holds_out_each_users_latest_items(n):
    log = random_log(6)
    p = prepare(log, event="event", timestamp="ts", split=LeaveLastN(n))
    first = (log.group_by("user_id", "item_id").agg(pl.col("ts").min())
             .sort("ts").group_by("user_id", maintain_order=True).agg(pl.col("item_id")))
    expected = {(u, i) for u, items in first.iter_rows() if len(items) > n for i in items[-n:]}
    assert set(counts(p, "test")) == expected
    assert p.summary["split_detail"]["users_held_out"] == len({u for u, _ in expected})


@pytest.mark.parametrize("n", [1, 3])
def test_leave_last_n_sort_and_linear_passes_agree_on_ties(monkeypatch, n):
    # hours, not seconds: many ties in time, broken by the seeded draws
    log = random_log(12).with_columns(pl.col("ts") // 3600 * 3600)
    linear = prepare(log, event="event", timestamp="ts", split=LeaveLastN(n), seed=5)
    monkeypatch.setattr(pp.splits, "_FEW_LAST", 0)
    sorted_ = prepare(log, event="event", timestamp="ts", split=LeaveLastN(n), seed=5)
    assert linear.tokens.equals(sorted_.tokens)
    assert linear.summary["parts"]["test"]["pairs"] > 0


def test_leave_last_n_breaks_ties_by_seed():
    frame = pl.DataFrame({"user_id": [1] * 6, "item_id": list("abcdef"), "ts": [5] * 6})
    held = {next(iter(counts(prepare(frame, timestamp="ts", split=LeaveLastN(1), seed=s),
                             "test"))) for s in range(12)}
    assert len(held) > 1


def test_time_cutoff_splits_by_first_seen():
    frame = pl.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": ["a", "b", "a", "a", "c"],
                          "t": ["2020-01-01", "2020-02-01", "2020-03-01", "2020-02-15",
                                "2020-01-10"]})
    p = prepare(frame, timestamp="t", split=TimeCutoff("2020-02-01"))
    assert counts(p, "train") == {(1, "a"): 2, (2, "c"): 1}  # a seen again later: still train
    assert counts(p, "test") == {(1, "b"): 1, (2, "a"): 1}
    assert p.summary["split_detail"]["cutoff"].startswith("2020-02-01T00:00:00")
    with pytest.raises(ValueError, match="puts every pair on one side"):
        prepare(frame, timestamp="t", split=TimeCutoff(datetime(2030, 1, 1)))


def test_held_out_users_observed_and_hidden():
    log = random_log(7, n_rows=2000, n_users=100)
    p = prepare(log, event="event", split=HeldOutUsers(0.25, 0.3), seed=11)
    train, observed, hidden = (counts(p, part) for part in ("train", "observed", "hidden"))
    held = {u for u, _ in observed}
    assert held == {u for u, _ in hidden} and not held & {u for u, _ in train}
    eligible = sum(1 for n in Counter(u for u, _ in counts(p)).values() if n >= 2)
    assert len(held) == round(0.25 * eligible)
    for user in held:
        n_obs = sum(1 for u, _ in observed if u == user)
        n_hid = sum(1 for u, _ in hidden if u == user)
        assert n_hid == min(max(round(0.3 * (n_obs + n_hid)), 1), n_obs + n_hid - 1)
    corpora = p.corpora()
    assert list(corpora["observed"].user_ids) == list(corpora["hidden"].user_ids)
    assert corpora["train"].n_items == corpora["hidden"].n_items == p.words.height


def test_held_out_users_needs_users_on_both_sides():
    with pytest.raises(ValueError, match=r"holds out 0 of"):
        prepare(pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2]}), split=HeldOutUsers(0.2))


# -- category words and labels ------------------------------------------------------------

def test_category_words_from_a_table_cap_per_item():
    frame = pl.DataFrame({"user_id": [1] * 14 + [2], "item_id": [10] * 12 + [11, 12, 12]})
    table = pd.DataFrame({"item": [10, 11, 13], "cat": ["toys", "toys", "food"]})
    p = prepare(frame, category=table, word="category", cap=10)
    assert counts(p) == {(1, "toys"): 11}  # item 10 capped at 10, then item 11 adds one
    assert p.summary["pairs"]["without_category"] == 2  # item 12 has no category
    assert p.summary["pairs"]["tokens_without_category"] == 2
    with pytest.raises(ValueError, match="lists id 10 more than once"):
        prepare(frame, category=pl.DataFrame({"i": [10, 10], "c": [1, 2]}), word="category")


def test_category_words_from_a_column():
    frame = pl.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [1, 2, 3, 3],
                          "cat": [7, 7, None, 8]})
    p = prepare(frame, category="cat", word="category")
    assert counts(p) == {(1, 7): 2, (2, 8): 1}
    assert p.summary["rows"]["dropped"]["null_category"] == 1
    assert counts(prepare(frame, category="cat")) == {(1, 1): 1, (1, 2): 1, (1, 3): 1, (2, 3): 1}


def test_labels_from_a_column_and_a_table():
    frame = pl.DataFrame({"user_id": [1, 2, 3, 1], "item_id": ["a", "a", "a", "b"],
                          "title": ["Mug", "Mug", "mug!", None]})
    p = prepare(frame, labels="title")
    assert dict(p.words.select("word_id", "label").iter_rows()) == {"a": "Mug", "b": None}
    exact = prepare(frame.vstack(frame), labels="title", dedupe="exact")  # every row twice
    assert exact.summary["rows"]["dropped"]["duplicate"] == 4
    assert exact.words.equals(p.words) and exact.tokens.equals(p.tokens)
    table = pl.DataFrame({"id": ["b", "z"], "name": ["Bowl", "Zebra"]})
    p = prepare(frame, labels=table)
    assert dict(p.words.select("word_id", "label").iter_rows()) == {"a": None, "b": "Bowl"}


def test_categories_label_items_that_have_no_label():
    frame = pl.DataFrame({"user_id": [1, 2, 3, 1, 2], "item_id": ["a", "a", "a", "b", "c"],
                          "cat": [7, 7, 8, 9, None], "title": [None, None, None, None, "Cup"]})
    p = prepare(frame, category="cat")  # words are items: the most frequent category
    assert dict(p.words.select("word_id", "label").iter_rows()) == {"a": "7", "b": "9",
                                                                     "c": None}
    p = prepare(frame, category="cat", labels="title")  # a label comes first
    assert dict(p.words.select("word_id", "label").iter_rows())["c"] == "Cup"
    table = pd.DataFrame({"item": ["a", "c"], "category": ["mugs", "cups"]})
    p = prepare(frame, category=table, labels=pl.DataFrame({"id": ["a"], "name": ["Mug"]}))
    assert dict(p.words.select("word_id", "label").iter_rows()) == {"a": "Mug", "b": None,
                                                                     "c": "cups"}
    words = prepare(frame, category="cat", word="category").words  # categories: no labels
    assert words.get_column("label").null_count() == words.height


# -- big logs: passes over buckets of users -----------------------------------------------

def nulled_log(seed: int) -> pl.DataFrame:
    """random_log with labels, categories, quantities, a duplicated row and nulls."""
    log = random_log(seed, n_rows=600, n_users=60, n_items=40)
    rng = np.random.default_rng(seed)
    log = log.with_columns(
        label=pl.format("item {} v{}", "item_id",  # the most frequent label per item wins
                        pl.Series(rng.choice(3, log.height, p=[0.45, 0.35, 0.2]))),
        cat=pl.col("item_id").str.slice(0, 2),
        q=pl.Series(rng.integers(-1, 4, log.height)))
    log = pl.concat([log, log.head(3)])  # exact duplicates
    for column, rows in (("user_id", [5, 77]), ("item_id", [9]), ("event", [13, 200]),
                         ("ts", [21]), ("q", [33])):
        log = log.with_columns(pl.when(pl.int_range(pl.len()).is_in(rows)).then(None)
                               .otherwise(pl.col(column)).alias(column))
    return log


BUCKETED = [
    {"split": LeaveLastN(2), "min_user_items": 3, "min_item_users": 2},
    {"dedupe": "exact", "labels": "label", "category": "cat", "split": TimeCutoff(0.3)},
    {"dedupe": "item", "category": "cat", "word": "category", "split": LeaveLastN(1)},
    {"dedupe": "event", "quantity": "q", "cap": None, "split": HeldOutUsers(0.3, 0.4)},
    {"quantity": "q", "pseudonym_key": b"0123456789abcdef", "split": HeldOutUsers(0.3, 0.4)},
]


@pytest.mark.parametrize("source", ["frame", "csv", "parquet"])
@pytest.mark.parametrize("options", BUCKETED, ids=lambda o: "-".join(map(str, o.values())))
def test_buckets_give_the_prepared_data_of_one_pass(tmp_path, monkeypatch, source, options):
    # A big log is read in passes over buckets of users (a CSV first copied to Parquet):
    # bucketed or not, every file and the summary must be the same, nulls and duplicates
    # counted once, the split drawn alike.
    log = nulled_log(1)
    src = {"frame": log, "csv": tmp_path / "log.csv", "parquet": tmp_path / "log.parquet"}
    log.write_csv(src["csv"])
    log.write_parquet(src["parquet"])
    kwargs = dict(event="event", timestamp="ts", **options)
    whole = prepare(src[source], **kwargs)
    passes = []

    def counted(*args):  # the real pass, counted
        passes.append(args[0])
        return bucket(*args)

    bucket = pp.weigh._bucket
    monkeypatch.setattr(pp.weigh, "_bucket", counted)
    monkeypatch.setattr(pp, "BUCKET_ROWS", 70)  # 603 rows: 9 buckets (estimated for CSV)
    bucketed = prepare(src[source], **kwargs)
    assert len(passes) >= 8
    if source == "csv":  # the passes read the temporary Parquet copy, never the text
        assert all("Csv SCAN" not in lf.explain() for lf in passes)
    for name in ("tokens", "users", "words"):
        assert getattr(bucketed, name).equals(getattr(whole, name)), name
    assert bucketed.summary == whole.summary
    assert whole.summary["rows"]["dropped"]["null_user"] == 2


def test_buckets_refuse_what_one_pass_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(pp, "BUCKET_ROWS", 1)
    frame = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1],
                          "e": ["view", "click", "view"]})
    with pytest.raises(ValueError, match=r"events \['click'\] have no weight") as exc:
        prepare(frame, event="e")
    one_line(exc)
    # a bad value far into a big CSV: the copy to Parquet says which file, in one line
    text = "timestamp,visitorid,event,itemid,transactionid\n" + "1,2,view,3,\n" * 50
    with pytest.raises(ValueError, match="could not read events.csv") as exc:
        prepare(write(tmp_path, "events.csv", text + "1,x9,view,2,\n"), format="retailrocket")
    one_line(exc)


def test_prepare_command_reports_its_peak_memory(tmp_path):
    from typer.testing import CliRunner

    from gibbslda.cli.main import app

    random_log(2).write_csv(tmp_path / "log.csv")
    runner = CliRunner(env={"COLUMNS": "200", "GIBBSLDA_DEBUG": None})
    args = ["prepare", str(tmp_path / "log.csv"), "--event", "event", "-o"]
    result = runner.invoke(app, [*args, str(tmp_path / "p"), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    peak = printed.pop("peak_rss_bytes")
    assert isinstance(peak, int) and peak > 2**20  # this process's: at least a MiB
    assert printed == json.loads((tmp_path / "p" / "prepared.json").read_text())["summary"]
    text = runner.invoke(app, [*args, str(tmp_path / "q")])
    train = printed["parts"]["train"]
    assert re.search(rf"{train['users']} users, {printed['result']['words']} items, "
                     rf"{train['tokens']:,} training tokens; parts train; peak memory "
                     r"\d+\.\d\d GiB", text.stdout), text.stdout


# -- prepared folders and corpora ---------------------------------------------------------

def test_write_read_round_trip(tmp_path):
    p = prepare(random_log(8), event="event", timestamp="ts", labels=None,
                split=HeldOutUsers(0.3, 0.3), min_user_items=2)
    folder = pp.write_prepared(p, tmp_path / "prep")
    assert sorted(f.name for f in folder.iterdir()) == sorted(pp.folder._FILES)
    back = pp.read_prepared(folder)
    assert back.tokens.equals(p.tokens) and back.users.equals(p.users)
    assert back.words.equals(p.words) and back.summary == p.summary
    meta = json.loads((folder / "prepared.json").read_text())
    assert meta["schema_version"] == pp.SCHEMA_VERSION and meta["summary"]["parts"]
    for part, corpus in back.corpora().items():
        assert np.array_equal(corpus.words, p.corpus(part).words)
        assert corpus.n_tokens == p.summary["parts"][part]["tokens"]
    assert not list(tmp_path.glob(".prep.*"))  # no temporary folder left behind


def test_corpus_tokens_match_counts():
    p = prepare(random_log(9), event="event")
    corpus = p.corpus()
    expected = counts(p)
    got = Counter()
    for d in range(corpus.n_users):
        for w in corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]]:
            got[(corpus.user_ids[d], corpus.item_ids[w])] += 1
    assert dict(got) == expected
    assert corpus.words.dtype == np.int32 and corpus.indptr.dtype == np.int64
    with pytest.raises(ValueError, match=r"no part 'test': this preparation has parts \['train'\]"):
        p.corpus("test")


def test_write_replaces_a_prepared_folder_only(tmp_path):
    first = prepare(random_log(1), event="event")
    second = prepare(random_log(2), event="event")
    pp.write_prepared(first, tmp_path / "prep")
    pp.write_prepared(second, tmp_path / "prep")
    assert pp.read_prepared(tmp_path / "prep").tokens.equals(second.tokens)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a prepared folder"):
        pp.write_prepared(first, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(TypeError, match="expected a Prepared"):
        pp.write_prepared({}, tmp_path / "x")


@pytest.mark.parametrize("damage, match", [
    (lambda f: (f / "prepared.json").unlink(), "not a prepared folder"),
    (lambda f: (f / "prepared.json").write_text("{"), "is not valid JSON"),
    (lambda f: (f / "prepared.json").write_text(json.dumps(
        {"format": pp.FOLDER_FORMAT, "schema_version": 99})), "schema version 99"),
    (lambda f: (f / "prepared.json").write_text('{"format": "other"}'), "not a gibbslda"),
    (lambda f: (f / "words.parquet").write_bytes(b"junk"), r"words\.parquet cannot be read"),
    (lambda f: pl.DataFrame({"user": [0]}).write_parquet(f / "users.parquet"), "disagree"),
])
def test_read_refuses_damaged_folders(tmp_path, damage, match):
    folder = pp.write_prepared(prepare(random_log(3), event="event"), tmp_path / "prep")
    damage(folder)
    with pytest.raises(ValueError, match=match) as exc:
        pp.read_prepared(folder)
    one_line(exc)


def test_prepared_corpus_fits_and_scores():
    from gibbslda import LDA
    from gibbslda.evaluate import completion_log_likelihood

    p = prepare(random_log(4, n_rows=3000, n_users=150), event="event",
                split=HeldOutUsers(0.2, 0.3))
    model = LDA(n_topics=3, n_iter=5, random_state=0).fit(p.corpus("train"))
    assert model.topic_word_.shape == (3, p.words.height)
    assert np.isfinite(completion_log_likelihood(model, p.corpus("observed"),
                                                 p.corpus("hidden")))


# -- real data: the shipped sample always, the shared folder when present ------------------

def test_bundled_online_retail():
    """prepare on the Online Retail sample shipped as gibbslda.data: every figure it reports
    equals one counted here straight from the parquet with polars.

    Default weights: a purchase is 3 tokens a unit, a return -3 a unit (|quantity|); the
    cap is 10 tokens a pair. The file has no nulls, so no row is dropped.
    """
    path = online_retail_dir() / "interactions.parquet"
    raw = pl.read_parquet(path)
    assert raw.null_count().row(0) == (0,) * raw.width
    events = dict(raw.group_by("event").len().iter_rows())
    assert events == {"purchase": 396_370, "return": 8_539}  # as data/README.md states
    assert raw.filter(pl.col("event") == "purchase")["user_id"].n_unique() == 4_335
    p = prepare(path, event="event", quantity="quantity", timestamp="timestamp",
                split=LeaveLastN(1))
    assert p.summary["rows"]["read"] == raw.height == sum(events.values())
    assert p.summary["events"] == events
    units = pl.col("quantity").cast(pl.Int64)
    net = raw.group_by("user_id", "item_id").agg(pl.when(pl.col("event") == "purchase")
                                                  .then(3 * units).otherwise(-3 * units.abs())
                                                  .sum().alias("net"))
    kept = net.filter(pl.col("net") > 0)
    assert p.summary["pairs"]["read"] == net.height
    assert p.summary["pairs"]["not_positive"] == net.height - kept.height > 0
    result = p.summary["result"]
    assert {k: result[k] for k in ("users", "words", "pairs", "tokens")} == {
        "users": kept["user_id"].n_unique(), "words": kept["item_id"].n_unique(),
        "pairs": kept.height, "tokens": kept["net"].clip(upper_bound=10).sum()}
    assert p.summary["result"]["users"] <= 4_335  # a user needs a purchase to keep a token
    # LeaveLastN(1): each user's last pair is held out (users with one pair keep it)
    parts = p.summary["parts"]
    assert sum(part["pairs"] for part in parts.values()) == kept.height


def _shared(name: str) -> Path:
    folder = SHARED / name
    if not (folder / "interactions.parquet").is_file():
        pytest.skip(f"{folder} is not present (shared data outside the repository)")
    return folder


def test_taobao_head_categories():
    folder = _shared("taobao_userbehavior_head")
    stats = json.loads((folder / "stats.json").read_text())
    p = prepare(folder / "interactions.parquet", event="event", timestamp="timestamp",
                category="category_id", word="category", min_user_items=5, min_item_users=5)
    assert p.summary["rows"]["read"] == stats["rows"]
    assert p.summary["events"] == stats["events"]
    assert p.words.height < stats["categories"]
    items = prepare(folder / "interactions.parquet", event="event")
    assert items.words.height == stats["items"]


def test_shared_online_retail_returns():
    """The unfiltered shared copy (postage and fee codes included): 8,905 returns."""
    folder = _shared("online_retail")
    p = prepare(folder / "interactions.parquet", event="event", quantity="quantity",
                timestamp="timestamp", split=LeaveLastN(1))
    assert p.summary["events"]["return"] == 8905
    assert p.summary["pairs"]["not_positive"] > 0
    assert p.summary["result"]["users"] <= 4339  # users with a purchase
