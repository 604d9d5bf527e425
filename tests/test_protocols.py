"""Ranking protocols on a Corpus with times (gibbslda.evaluate.protocol_split, compare),
against hand-worked cases, and their invariants on a planted corpus."""
import numpy as np
import polars as pl
import pytest

from gibbslda import Corpus
from gibbslda.evaluate import (HeldOutUsers, LeaveLastN, TimeCutoff, compare, parse_protocol,
                               protocol_split)
from gibbslda.synthetic import planted_corpus

# (user, item, unix seconds). Pairs and their first events:
#   a: i0 10, i1 20, i2 40 (i0 again at 30)   b: i1 5, i3 50 (i1 again at 60)
#   c: i4 100                                  d: i2 1, i3 2, i0 3
#   e: i0 1, i5 200 (no other user has i5)
EVENTS = [("a", "i0", 10), ("a", "i1", 20), ("a", "i0", 30), ("a", "i2", 40),
          ("b", "i1", 5), ("b", "i3", 50), ("b", "i1", 60),
          ("c", "i4", 100),
          ("d", "i2", 1), ("d", "i3", 2), ("d", "i0", 3),
          ("e", "i0", 1), ("e", "i5", 200)]
US = 10 ** 6


def hand_corpus():
    frame = pl.DataFrame(EVENTS, schema=["user", "item", "t"], orient="row")
    return Corpus.from_frame(frame, user="user", item="item", time="t")


def rows(corpus):
    """{user id: [(item id, seconds), ...]} in corpus order."""
    out = {}
    for d, user in enumerate(corpus.user_ids.tolist()):
        span = slice(corpus.indptr[d], corpus.indptr[d + 1])
        out[user] = [(corpus.item_ids[w], t // US) for w, t in
                     zip(corpus.words[span].tolist(), corpus.times[span].tolist())]
    return out


def test_leave_last_one_by_hand():
    split = protocol_split(hand_corpus(), LeaveLastN(1))
    # each user's newest pair is the truth; their events from its first event on are
    # dropped (b's repeat of i1 at 60); c has one pair and stays whole
    assert rows(split.train) == {"a": [("i0", 10), ("i0", 30), ("i1", 20)],
                                 "b": [("i1", 5)], "c": [("i4", 100)],
                                 "d": [("i2", 1), ("i3", 2)], "e": [("i0", 1)]}
    assert rows(split.truth) == {"a": [("i2", 40)], "b": [("i3", 50)], "d": [("i0", 3)],
                                 "e": [("i5", 200)]}
    assert split.known.user_ids.tolist() == ["a", "b", "d", "e"]
    assert split.rows.tolist() == [0, 1, 3, 4]  # their rows in train
    assert rows(split.known) == {u: rows(split.train)[u] for u in "abde"}
    # only e's i5 has no training user
    assert split.candidates.tolist() == [True] * 5 + [False]
    assert split.n_unscorable == 1 and split.n_cold_users == 0


def test_time_cutoff_by_hand():
    split = protocol_split(hand_corpus(), TimeCutoff("1970-01-01T00:00:35"))
    # training: every event before 35 s; truth: each user's items first touched at or
    # after it (new items only); c has nothing before it: a cold user, left out
    assert rows(split.train) == {"a": [("i0", 10), ("i0", 30), ("i1", 20)],
                                 "b": [("i1", 5)], "d": [("i0", 3), ("i2", 1), ("i3", 2)],
                                 "e": [("i0", 1)]}
    assert rows(split.truth) == {"a": [("i2", 40)], "b": [("i3", 50)], "e": [("i5", 200)]}
    assert split.rows.tolist() == [0, 1, 3]
    # i4 (c's only) and i5 (e's new item) have no training event
    assert split.candidates.tolist() == [True, True, True, True, False, False]
    assert split.n_unscorable == 1 and split.n_cold_users == 1
    assert split.protocol == "TimeCutoff(at=1970-01-01T00:00:35)"


def test_time_cutoff_as_a_fraction_of_the_pairs():
    # 11 pairs first seen at 1, 1, 2, 3, 5, 10, 20, 40, 50, 100, 200 s; about 0.3 of them
    # at or after the cutoff: index round(0.7 x 11) = 8 of the sorted times, 50 s (as
    # prepare's TimeCutoff puts it)
    split = protocol_split(hand_corpus(), TimeCutoff(0.3))
    assert split.protocol == "TimeCutoff(at=1970-01-01T00:00:50)"
    assert rows(split.truth) == {"b": [("i3", 50)], "e": [("i5", 200)]}
    assert split.n_cold_users == 1  # c


def test_unscorable_items_count_as_misses():
    split = protocol_split(hand_corpus(), TimeCutoff("1970-01-01T00:00:35"))
    # users a, b, e; items i0..i5. Score by item index so the ranking is known:
    # a (knows i0, i1): i3, i2 (i4, i5 cannot be recommended) -> truth i2 at rank 2
    # b (knows i1): i3, i2, i0 -> truth i3 at rank 1;  e (knows i0): i3, i2, i1 -> i5 missed
    scores = np.tile([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], (3, 1))
    table = compare(split, {"by index": scores}, k=(1, 2))
    assert table["k"] == [1, 2] and table["n_users"] == [3, 3]
    assert table["recall"] == pytest.approx([1 / 3, 2 / 3])      # (0+1+0)/3, (1+1+0)/3
    assert table["hit_rate"] == pytest.approx([1 / 3, 2 / 3])
    # NDCG@2: a 1/log2(3) (IDCG 1), b 1, e 0
    assert table["ndcg"][1] == pytest.approx((1 / np.log2(3) + 1) / 3)
    assert table["coverage"] == pytest.approx([1 / 6, 2 / 6])    # {i3}, {i3, i2}
    assert table["n_unscorable"] == [1, 1] and table["n_cold_users"] == [1, 1]


def test_held_out_users_partition_the_pairs():
    corpus = planted_corpus(200, 40, 4, mean_length=15, seed=3).corpus  # no times
    split = protocol_split(corpus, HeldOutUsers(0.25, 0.5), seed=4)
    assert split.rows is None and corpus.times is None
    held = split.known.user_ids.tolist()
    assert held == split.truth.user_ids.tolist()
    assert not set(held) & set(split.train.user_ids.tolist())
    assert split.train.n_tokens + split.known.n_tokens + split.truth.n_tokens == corpus.n_tokens
    original = {u: corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]]
                for d, u in enumerate(corpus.user_ids.tolist())}
    eligible = sum(len(set(items.tolist())) >= 2 for items in original.values())
    assert len(held) == round(0.25 * eligible)  # of the users with two items or more
    for d, user in enumerate(held):  # a pair is on one side whole
        known = split.known.words[split.known.indptr[d]:split.known.indptr[d + 1]]
        truth = split.truth.words[split.truth.indptr[d]:split.truth.indptr[d + 1]]
        assert not set(known.tolist()) & set(truth.tolist())
        assert sorted(np.r_[known, truth].tolist()) == sorted(original[user].tolist())
    again = protocol_split(corpus, HeldOutUsers(0.25, 0.5), seed=4)
    assert again.truth.user_ids.tolist() == held  # seeded


def test_leave_last_n_on_a_planted_corpus():
    corpus = planted_corpus(150, 40, 4, mean_length=15, seed=5).corpus
    rng = np.random.default_rng(0)
    timed = Corpus(corpus.indptr, corpus.words, corpus.user_ids, corpus.item_ids,
                   times=rng.integers(0, 10 ** 9, corpus.n_tokens) * US)
    split = protocol_split(timed, LeaveLastN(3), seed=1)
    for d, user in enumerate(split.truth.user_ids.tolist()):
        u = user
        span = slice(timed.indptr[u], timed.indptr[u + 1])
        words, times = timed.words[span], timed.times[span]
        first = {w: times[words == w].min() for w in set(words.tolist())}
        newest = sorted(first, key=first.get)[-3:]  # distinct random times: no ties
        truth = split.truth.words[split.truth.indptr[d]:split.truth.indptr[d + 1]]
        assert sorted(set(truth.tolist())) == sorted(newest)
        known = split.known.words[split.known.indptr[d]:split.known.indptr[d + 1]]
        limit = min(first[w] for w in newest)
        assert sorted(known.tolist()) == sorted(words[(times < limit)
                                                      & ~np.isin(words, newest)].tolist())


@pytest.mark.parametrize("text, expected", [
    ("heldout", HeldOutUsers(0.2, 0.5)), ("heldout:0.3", HeldOutUsers(0.3, 0.5)),
    ("last", LeaveLastN(1)), ("last:5", LeaveLastN(5)), ("time", TimeCutoff(0.2)),
    ("time:0.75", TimeCutoff(0.75)), ("time:2011-10-01", TimeCutoff("2011-10-01"))])
def test_parse_protocol(text, expected):
    assert parse_protocol(text) == expected


@pytest.mark.parametrize("call, error, match", [
    (lambda c: protocol_split(c, "last"), TypeError, "protocol must be HeldOutUsers"),
    (lambda c: protocol_split(c, LeaveLastN(0)), ValueError, r"LeaveLastN\(n\) needs"),
    (lambda c: protocol_split(c, TimeCutoff(1.5)), ValueError, r"must be in \(0, 1\)"),
    (lambda c: protocol_split(c, TimeCutoff("1970-01-01T00:10:00")), ValueError,
     "puts every pair on one side"),
    (lambda c: protocol_split(Corpus(c.indptr, c.words, c.user_ids, c.item_ids),
                              LeaveLastN(1)), ValueError, "LeaveLastN needs event times"),
    (lambda c: parse_protocol("last:x"), ValueError, r"heldout\[:FRACTION\], last\[:N\]"),
    (lambda c: parse_protocol("users"), ValueError, "a protocol is"),
])
def test_invalid_protocols(call, error, match):
    with pytest.raises(error, match=match):
        call(hand_corpus())
