"""Interest trends (gibbslda.trends): the period grid, events split over interests by
p(k | user, item), the trends table from the chain's topics and times, and the command."""
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA, Corpus
from gibbslda.cli.main import app
from gibbslda.trends import interest_trends, pair_posteriors, period_grid, read_events
from tests import reference

N_TOPICS = 3
DAY = 86_400_000_000
MONDAY = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))  # a Monday


def us(text: str) -> int:
    return int(np.datetime64(text, "us").astype(np.int64))


@pytest.fixture(scope="module")
def timed():
    """Events of 90 users over 6 weeks: users of topic k use items 10k..10k+9."""
    rng = np.random.default_rng(5)
    users = np.repeat(np.arange(90), 12)
    items = 10 * (users % N_TOPICS) + rng.integers(0, 10, users.size)
    times = MONDAY + rng.integers(0, 42 * DAY, users.size)
    events = pl.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str),
                           "timestamp": pl.Series(times).cast(pl.Datetime("us"))})
    corpus = Corpus.from_frame(events, time="timestamp")
    model = LDA(N_TOPICS, n_iter=30, random_state=0).fit(corpus)
    return events, model


def test_weekly_grid_starts_on_mondays_and_keeps_empty_weeks():
    times = np.array([us("2024-01-03T10:00"), us("2024-01-29T12:00")])
    grid = period_grid(times, "1w")
    assert grid.datetimes().dt.strftime("%Y-%m-%d").to_list() == [
        "2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"]
    # 2 days in of 7 (> 1/7 missing) and 12 hours of the last week: both partial
    assert grid.complete.tolist() == [False, True, True, True, False]


def test_edges_within_a_seventh_are_complete_and_months_are_calendar_months():
    times = np.array([us("2024-01-01T05:00"), us("2024-03-31T20:00")])
    grid = period_grid(times, "1mo")
    assert grid.datetimes().dt.strftime("%m-%d").to_list() == ["01-01", "02-01", "03-01"]
    assert grid.complete.all()
    assert (grid.ends - grid.starts).tolist() == [31 * DAY, 29 * DAY, 31 * DAY]


def test_stray_events_far_before_the_log_do_not_stretch_the_grid():
    dense = MONDAY + np.arange(0, 10 * DAY, DAY // 50)  # 50 events a day for 10 days
    times = np.append(dense, MONDAY - 60 * DAY)
    grid = period_grid(times, "1d")
    assert grid.n == 10 and grid.starts[0] == MONDAY


@pytest.mark.parametrize("freq", ["", "week", "1x", 7])
def test_bad_freq_is_one_line(freq):
    with pytest.raises(ValueError, match="freq must be a duration"):
        period_grid(np.array([MONDAY]), freq)


def test_pair_posteriors_are_theta_times_phi_normalised(timed):
    _, model = timed
    theta, phi = model.doc_topic_, model.topic_word_
    users, items = np.array([0, 5, -1]), np.array([3, 17, 22])
    got = pair_posteriors(model, users, items)
    for row, (d, w) in enumerate(zip(users, items)):
        weight = theta[d] if d >= 0 else model.n_k_ + model.alpha_
        want = weight * phi[:, w]
        np.testing.assert_allclose(got[row], want / want.sum(), rtol=1e-12)


def test_trends_from_the_chain_count_each_tokens_topic_in_its_period(timed):
    _, model = timed
    table = interest_trends(model, freq="1w")
    times, z = model.corpus_.times, model.state_.z
    starts = np.unique(table.get_column("period").cast(pl.Int64).to_numpy())
    periods = np.searchsorted(starts, times, side="right") - 1
    want = reference.period_topic_counts(periods, z, starts.size, N_TOPICS)
    got = table.get_column("tokens").to_numpy().reshape(starts.size, N_TOPICS)
    np.testing.assert_array_equal(got, np.array(want))
    shares = table.get_column("share").to_numpy().reshape(starts.size, N_TOPICS)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    # every user active in a week has exactly one main interest in it
    active = [np.unique(np.repeat(np.arange(model.corpus_.n_users),
                                  model.corpus_.lengths)[periods == t]).size
              for t in range(starts.size)]
    main = table.get_column("users_main").to_numpy().reshape(starts.size, N_TOPICS)
    assert main.sum(axis=1).tolist() == active


def test_trends_from_events_split_each_event_over_interests(timed):
    events, model = timed
    table = interest_trends(model, events, freq="1w")
    per_week = (events.group_by(pl.col("timestamp").dt.truncate("1w")).len()
                .sort("timestamp").get_column("len").to_numpy())
    totals = table.group_by("period", maintain_order=True).agg(pl.col("tokens").sum())
    np.testing.assert_allclose(totals.get_column("tokens").to_numpy(), per_week, rtol=1e-9)
    # users of topic k (user % 3 == k) only use topic k's items: their main interest in
    # a week is the topic the model found for those items
    found = model.topic_word_[:, :30].reshape(N_TOPICS, N_TOPICS, 10).sum(axis=2).argmax(0)
    assert sorted(found.tolist()) == [0, 1, 2]


def test_trends_need_times_or_events():
    model = LDA(2, n_iter=3, random_state=0).fit(Corpus.from_lists([["a", "b"], ["b"]]))
    with pytest.raises(ValueError, match="no times: pass the events"):
        interest_trends(model)


def test_events_of_unknown_items_are_dropped_and_counted(timed):
    events, model = timed
    extra = pl.DataFrame({"user_id": ["0"], "item_id": ["nope"],
                          "timestamp": events.get_column("timestamp")[:1]})
    ev = read_events(model, pl.concat([events, extra]))
    assert ev.n_unknown_rows == 1 and ev.item.size == events.height
    with pytest.raises(ValueError, match="column 'when' .*time"):
        read_events(model, events, time="when")


def test_trends_command_json_and_file(timed, tmp_path):
    events, model = timed
    model.save(tmp_path / "model")
    events.write_csv(tmp_path / "events.csv")
    runner = CliRunner()
    result = runner.invoke(app, ["trends", str(tmp_path / "model"), "--freq", "1w",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 6 * N_TOPICS and {"period", "topic", "tokens"} <= set(rows[0])
    out = tmp_path / "trends.parquet"
    result = runner.invoke(app, ["trends", str(tmp_path / "model"),
                                 str(tmp_path / "events.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).get_column("tokens").sum() == pytest.approx(events.height)


def test_trends_leave_a_stray_event_out_instead_of_failing(timed):
    """One event two months before the log: the grid trims it (above), and both ways of
    building the table leave it out; the counts are those without it, counted here from
    the chain's topics and times directly."""
    events, model = timed
    stray = events.head(1).with_columns(
        pl.lit(MONDAY - 60 * DAY).cast(pl.Datetime("us")).alias("timestamp"))
    with_stray = pl.concat([events, stray])
    corpus = Corpus.from_frame(with_stray, time="timestamp")
    fitted = LDA(N_TOPICS, n_iter=5, random_state=0).fit(corpus)
    table = interest_trends(fitted, freq="1w")
    times, z = fitted.corpus_.times, fitted.state_.z
    kept = times >= MONDAY
    assert table["tokens"].sum() == kept.sum()  # every token but the stray one
    week = (times[kept] - MONDAY) // (7 * DAY)
    expected = np.zeros((table["period"].n_unique(), N_TOPICS))
    for w, k in zip(week, z[kept]):
        expected[w, k] += 1
    got = table.sort("period", "topic")["tokens"].to_numpy().reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    from_events = interest_trends(fitted, with_stray, freq="1w")
    assert from_events["tokens"].sum() == pytest.approx(events.height)  # split, summed
