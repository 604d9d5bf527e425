"""Event times carried from a log into the Corpus, a prepared folder and a saved model.

Expected values are computed here from the input rows with plain Python / polars
expressions (each row repeated ``weight`` times, grouped by user and item, sorted), not by
the corpus code under test.
"""
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from gibbslda import LDA, Corpus
from gibbslda.corpus import to_micros
from gibbslda.preprocess import LeaveLastN, prepare, read_prepared, write_prepared

EPOCH_2020 = 1_577_836_800  # 2020-01-01T00:00:00Z in seconds


def _log(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"user_id": rng.integers(0, 120, n), "item_id": rng.integers(0, 40, n),
                         "ts": EPOCH_2020 + rng.integers(0, 86_400 * 90, n),
                         "wt": rng.integers(0, 3, n)})


def _expected_tokens(df: pl.DataFrame):
    """(user id, item id, time us) of every token, by plain repetition of the rows."""
    rows = sorted((u, i, t * 1_000_000) for u, i, t, w in df.iter_rows() for _ in range(w))
    return rows


def test_from_frame_carries_each_rows_time_to_its_tokens():
    df = _log()
    corpus = Corpus.from_frame(df, weight="wt", time="ts")
    untimed = Corpus.from_frame(df, weight="wt")
    assert np.array_equal(corpus.words, untimed.words)  # times do not change the tokens
    assert np.array_equal(corpus.indptr, untimed.indptr)
    users = np.repeat(corpus.user_ids, corpus.lengths)
    got = list(zip(users.tolist(), corpus.item_ids[corpus.words].tolist(),
                   corpus.times.tolist()))
    assert got == _expected_tokens(df)  # sorted by user, item, time, as the corpus is
    assert corpus.times.dtype == np.int64 and "timed" in repr(corpus)


def test_a_vocabulary_keeps_the_times_of_the_kept_tokens():
    df = _log(seed=1)
    corpus = Corpus.from_frame(df, weight="wt", time="ts")
    kept_items = corpus.item_ids[::3]
    narrowed = corpus.with_vocabulary(kept_items)
    expected = [t for t in _expected_tokens(df) if t[1] in set(kept_items.tolist())]
    users = np.repeat(narrowed.user_ids, narrowed.lengths)
    assert list(zip(users.tolist(), narrowed.item_ids[narrowed.words].tolist(),
                    narrowed.times.tolist())) == expected
    direct = Corpus.from_frame(df, weight="wt", time="ts", vocabulary=kept_items,
                               drop_empty=False)
    assert np.array_equal(direct.times, narrowed.times)


@pytest.mark.parametrize("column", [
    pl.Series([EPOCH_2020, EPOCH_2020 + 61]),                     # seconds
    pl.Series([EPOCH_2020 * 1000, (EPOCH_2020 + 61) * 1000]),     # milliseconds
    pl.Series([EPOCH_2020 * 10**6, (EPOCH_2020 + 61) * 10**6]),   # microseconds
    pl.Series([float(EPOCH_2020), EPOCH_2020 + 61.0]),            # float seconds
    pl.Series(["2020-01-01T00:00:00", "2020-01-01T00:01:01"]),    # ISO strings
    pl.Series([datetime(2020, 1, 1), datetime(2020, 1, 1, 0, 1, 1)]),
    pl.Series([datetime(2020, 1, 1, 1, tzinfo=timezone.utc), datetime(2020, 1, 1, 1, 1, 1, tzinfo=timezone.utc)]).dt.convert_time_zone("Europe/Paris"),
])
def test_every_kind_of_time_column_means_the_same_instant(column):
    assert to_micros(column).tolist()[1] - to_micros(column).tolist()[0] == 61_000_000
    start = to_micros(column)[0]
    assert start in (EPOCH_2020 * 10**6, (EPOCH_2020 + 3600) * 10**6)


def test_pandas_and_numpy_times_work():
    stamps = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-02"]))
    assert to_micros(stamps).tolist() == [EPOCH_2020 * 10**6, (EPOCH_2020 + 86_400) * 10**6]
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 6], "when": stamps})
    assert Corpus.from_frame(frame, time="when").times.tolist() == to_micros(stamps).tolist()


@pytest.mark.parametrize("values, error, words", [
    ([EPOCH_2020, None], ValueError, "null times"),
    (["2020-01-01", "not a time"], ValueError, "do not parse"),
    ([True, False], TypeError, "must hold datetimes"),
])
def test_bad_time_columns_get_one_line_errors(values, error, words):
    df = pl.DataFrame({"user_id": [1, 2], "item_id": [3, 4], "ts": values})
    with pytest.raises(error, match=words) as caught:
        Corpus.from_frame(df, time="ts")
    assert "\n" not in str(caught.value) and "'ts'" in str(caught.value)


def test_times_must_match_the_tokens():
    with pytest.raises(ValueError, match="one time a token"):
        Corpus(np.array([0, 2]), np.array([0, 1], dtype=np.int32), np.array([0]),
               np.array([0, 1]), times=np.array([1], dtype=np.int64))


def test_a_saved_model_keeps_its_times_and_an_untimed_one_has_none(tmp_path):
    corpus = Corpus.from_frame(_log(seed=2), weight="wt", time="ts")
    for name, data in (("timed", corpus), ("untimed", Corpus(corpus.indptr, corpus.words,
                                                              corpus.user_ids, corpus.item_ids))):
        model = LDA(4, n_iter=2, random_state=0).fit(data)
        model.save(tmp_path / name)
        loaded = LDA.load(tmp_path / name).corpus_.times
        if data.times is None:
            assert loaded is None
        else:
            assert np.array_equal(loaded, data.times)


def test_prepare_keeps_first_and_last_seen_and_the_corpus_gets_last_seen(tmp_path):
    df = pl.DataFrame({"user_id": [1, 1, 1, 2, 2, 3], "item_id": [10, 10, 11, 10, 12, 12],
                       "event": ["view", "purchase", "view", "view", "view", "cart"],
                       "ts": ["2020-01-01", "2020-01-05", "2020-01-02", "2020-01-03",
                              "2020-01-04", "2020-01-06"]})
    day = 86_400 * 10**6
    start = EPOCH_2020 * 10**6
    for dedupe in ("none", "event", "item"):
        prepared = prepare(df, event="event", timestamp="ts", dedupe=dedupe)
        pair = prepared.tokens.filter((pl.col("user") == 0) & (pl.col("word") == 0))
        assert pair["first_seen"].cast(pl.Int64).item() == start
        assert pair["last_seen"].cast(pl.Int64).item() == start + 4 * day
        corpus = prepared.corpus()
        # user 1's item 10 pair: its tokens all at the pair's last event, 2020-01-05
        n_first = int(pair["count"].item())
        assert corpus.times[:n_first].tolist() == [start + 4 * day] * n_first
    split = prepare(df, event="event", timestamp="ts", split=LeaveLastN(1))
    write_prepared(split, tmp_path / "p")
    test = read_prepared(tmp_path / "p").corpus("test")
    assert test.times is not None and test.times.shape == test.words.shape
    tokens = read_prepared(tmp_path / "p").tokens.drop("last_seen")  # a folder from before
    tokens.write_parquet(tmp_path / "p" / "tokens.parquet")
    older = read_prepared(tmp_path / "p").corpus()
    assert older.times.tolist() == np.repeat(
        tokens.filter(pl.col("part") == "train")["first_seen"].cast(pl.Int64).to_numpy(),
        tokens.filter(pl.col("part") == "train")["count"].to_numpy()).tolist()
    assert prepare(df.drop("ts"), event="event").corpus().times is None
