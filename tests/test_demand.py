"""Demand forecasts (gibbslda.demand): exponential smoothing of interest activity, the
top-down pass to items, the held-out evaluation against naive forecasts, the commands."""
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA, Corpus
from gibbslda import demand, demand_eval
from gibbslda.cli.main import app
from tests import reference

DAY = 86_400_000_000
MONDAY = int(np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64))
N_TOPICS, ITEMS_PER_TOPIC, N_DAYS = 3, 20, 56
# each interest's activity by weekday: two with a strong weekly season, one flat
SEASON = np.array([[1, 1, 1, 1, 1, 3, 3], [2, 2, 1, 1, 1, 0.5, 0.5], [1] * 7], dtype=float)


def seasonal_events(seed: int, base: float = 60.0) -> pl.DataFrame:
    """Daily events for 8 weeks: interest k has Poisson(base x SEASON[k, weekday]) events a
    day, each by one of its 40 users on one of its 20 items (Zipf popularity)."""
    rng = np.random.default_rng(seed)
    pop = 1 / np.arange(1, ITEMS_PER_TOPIC + 1)
    rows = []
    for day in range(N_DAYS):
        for k in range(N_TOPICS):
            n = rng.poisson(base * SEASON[k, day % 7])
            items = k * ITEMS_PER_TOPIC + rng.choice(ITEMS_PER_TOPIC, n, p=pop / pop.sum())
            users = k * 40 + rng.integers(0, 40, n)
            times = MONDAY + day * DAY + rng.integers(0, DAY, n)
            rows.append(np.stack([users, items, times]))
    u, i, t = np.concatenate(rows, axis=1)
    return pl.DataFrame({"user_id": u.astype(str), "item_id": i.astype(str),
                         "timestamp": pl.Series(t).cast(pl.Datetime("us"))})


@pytest.fixture(scope="module")
def seasonal():
    events = seasonal_events(0)
    cutoff = pl.lit(MONDAY + (N_DAYS - 7) * DAY).cast(pl.Datetime("us"))
    train = events.filter(pl.col("timestamp") < cutoff)
    model = LDA(N_TOPICS, n_iter=40, random_state=0).fit(
        Corpus.from_frame(train, time="timestamp"))
    return events, model


# -- exponential smoothing -----------------------------------------------------------------
def test_smoothing_a_constant_series_forecasts_the_constant():
    series = np.full((2, 20), 7.0)
    ahead, sd, _ = demand._ets(series, 5, None)
    np.testing.assert_allclose(ahead, 7.0, rtol=1e-12)
    np.testing.assert_allclose(sd, 0.0, atol=1e-12)


def test_smoothing_continues_a_trend_and_repeats_a_season():
    trend = 10 + 2.0 * np.arange(30)
    ahead = demand._ets(trend[None, :], 3, None)[0][0]
    # a damped trend (phi <= 0.98) goes on rising but no faster than the line: within
    # the line's next values and the last one
    assert np.all(np.diff(ahead) > 0) and ahead[0] > trend[-1]
    assert np.all(ahead <= 10 + 2.0 * np.arange(30, 33) + 1e-9)
    pattern = np.tile([5, 5, 5, 5, 5, 15, 15], 4).astype(float)
    ahead = demand._ets(pattern[None, :], 7, 7)[0][0]
    # four exact seasons: the weekday pattern comes back within 1 of 15 and 5
    np.testing.assert_allclose(ahead, [5, 5, 5, 5, 5, 15, 15], atol=1.0)


def test_the_season_follows_a_pattern_that_changed():
    """Four weeks with the peak on weekends, then four with it on Mondays and Tuesdays:
    the forecast's weekly pattern is nearer the new one than the old one."""
    old = np.array([5, 5, 5, 5, 5, 15, 15], dtype=float)
    new = np.array([15, 15, 5, 5, 5, 5, 5], dtype=float)
    ahead = demand._ets(np.concatenate([np.tile(old, 4), np.tile(new, 4)])[None, :], 7, 7)[0][0]
    assert np.abs(ahead - new).sum() < np.abs(ahead - old).sum()


# -- top-down ------------------------------------------------------------------------------
def test_top_down_spreads_each_interests_forecast_over_its_items(seasonal):
    _, model = seasonal
    ahead = np.array([[10.0, 20.0], [0.0, 5.0], [1.0, 1.0]])
    got = demand._topdown(model, ahead)
    np.testing.assert_allclose(got, model.topic_word_.T @ ahead, rtol=1e-10)
    np.testing.assert_allclose(got.sum(axis=0), ahead.sum(axis=0), rtol=1e-10)


def test_forecast_table_shape_periods_and_intervals(seasonal):
    events, model = seasonal
    table = demand.forecast(model, events, freq="1d", horizon=7, coverage=0.8)
    assert table.columns == ["item_id", "period", "forecast", "lower", "upper"]
    assert table.height == model.corpus_.n_items * 7
    first = table.filter(pl.col("item_id") == table.item(0, "item_id"))
    expected = pl.datetime_range(pl.datetime(2024, 2, 26), pl.datetime(2024, 3, 3), "1d",
                                 eager=True)
    assert first.get_column("period").to_list() == expected.to_list()
    f, lo, hi = (table.get_column(c).to_numpy() for c in ("forecast", "lower", "upper"))
    assert np.all(lo >= 0) and np.all(lo <= hi) and np.all(f >= 0)


def test_category_forecast_is_the_sum_of_its_items(seasonal):
    events, model = seasonal
    cats = {str(w): f"c{w // 10}" for w in range(N_TOPICS * ITEMS_PER_TOPIC)}
    items = demand.forecast(model, events, freq="1d", horizon=3)
    by_cat = demand.forecast(model, events, freq="1d", horizon=3, level="category",
                             categories=cats)
    summed = (items.with_columns(pl.col("item_id").replace_strict(cats).alias("category"))
              .group_by("category", "period").agg(pl.col("forecast").sum())
              .sort("category", "period"))
    np.testing.assert_allclose(by_cat.sort("category", "period").get_column("forecast"),
                               summed.get_column("forecast"), rtol=1e-10)


def test_events_after_the_history_change_nothing(seasonal):
    """The forecast from a history reads no event outside its periods."""
    events, model = seasonal
    from gibbslda.trends import period_grid, read_events

    ev = read_events(model, events)
    grid = demand._complete(period_grid(ev.time, "1d"))
    past = demand.Periods(grid.starts[:40], grid.ends[:40], grid.complete[:40], "1d")
    a = demand.fit_forecast(model, ev, past, horizon=4)
    b = demand.fit_forecast(model, ev.select(ev.time < grid.starts[40]), past, horizon=4)
    np.testing.assert_array_equal(a.item_forecast, b.item_forecast)
    np.testing.assert_array_equal(a.item_upper, b.item_upper)


# -- evaluation ----------------------------------------------------------------------------
def test_interest_forecasts_beat_naive_ones_on_seasonal_demand(seasonal):
    """Two interests have a strong weekly season (3x): the top-down forecast carries it to
    every item; last period and means cannot, and the seasonal naive repeats each item's
    Poisson noise. Tolerance: 0.9 x the best naive WAPE; at these volumes (a few events
    per item and day) its expected ratio is about 0.75, and the held-out week has
    2,800 events, so 0.9 is several standard errors away."""
    events, model = seasonal
    result = demand_eval.evaluate_forecast(model, events, freq="1d", horizon=7)
    assert result.leak is False and result.history_periods == N_DAYS - 7
    table = result.table.filter(pl.col("level") == "item")
    for segment in ("all", "tail"):
        rows = table.filter(pl.col("segment") == segment)
        assert set(rows.get_column("method")) == {"forecast", "last", "mean_4", "mean_8",
                                                  "seasonal"}
        ratio = rows.filter(pl.col("method") == "forecast").item(0, "vs_best_naive")
        assert ratio < 0.9, rows


def test_intervals_cover_about_their_nominal_share(seasonal):
    """Nominal 80%: on stationary seasonal Poisson demand the held-out coverage of 420
    item-days lies within 0.65-0.95 (conformal from one validation week: its quantiles
    are estimated from about 400 residuals, and the days are not independent)."""
    events, model = seasonal
    result = demand_eval.evaluate_forecast(model, events, freq="1d", horizon=7, coverage=0.8)
    cover = result.table.filter((pl.col("method") == "forecast")
                                & (pl.col("segment") == "all")).item(0, "coverage")
    assert 0.65 <= cover <= 0.95


def test_naive_scores_match_a_hand_computation():
    """Two items over 10 weeks with known counts: the naive rows of the evaluation equal
    the WAPE computed by hand on the last 2 weeks."""
    counts = {"a": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3], "b": [0, 2, 0, 1, 0, 0, 3, 0, 1, 2]}
    # a week's events spread from Monday 00:00 to Sunday 23:00: all 10 weeks complete
    rows = [(f"u{item}{n}", item, MONDAY + week * 7 * DAY
             + n * (7 * DAY - 3_600_000_000) // max(c - 1, 1))
            for item, series in counts.items() for week, c in enumerate(series)
            for n in range(c)]
    events = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row")
    events = events.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    model = LDA(2, n_iter=5, random_state=0).fit(Corpus.from_frame(events))
    result = demand_eval.evaluate_forecast(model, events, freq="1w", horizon=2)
    table = result.table.filter((pl.col("level") == "item") & (pl.col("segment") == "all"))
    actual = [counts[i][8:] for i in ("a", "b")]
    for method in ("last", "mean_4", "mean_8"):
        want = reference.wape(actual, [reference.naive_forecast(counts[i][:8], 2, method)
                                       for i in ("a", "b")])
        got = table.filter(pl.col("method") == method).item(0, "wape")
        assert got == pytest.approx(want, rel=1e-12), method


def test_a_model_trained_on_the_held_out_periods_is_flagged(seasonal):
    events, _ = seasonal
    leaky = LDA(N_TOPICS, n_iter=5, random_state=0).fit(
        Corpus.from_frame(events, time="timestamp"))
    assert demand_eval.evaluate_forecast(leaky, events, freq="1d", horizon=7).leak is True
    untimed = LDA(N_TOPICS, n_iter=5, random_state=0).fit(Corpus.from_frame(events))
    assert demand_eval.evaluate_forecast(untimed, events, freq="1d", horizon=7).leak is None


@pytest.mark.parametrize("kwargs, match", [
    ({"horizon": 0}, "horizon"),
    ({"level": "shop"}, "level must be one of"),
    ({"coverage": 1.5}, "coverage must be between 0 and 1"),
    ({"level": "category"}, "needs categories="),
    ({"freq": "1y", "horizon": 1}, "complete period"),
    ({"time": "when"}, "column 'when'"),
])
def test_bad_arguments_are_one_line(seasonal, kwargs, match):
    events, model = seasonal
    with pytest.raises(ValueError, match=match):
        demand.forecast(model, events, **{"freq": "1d", **kwargs})


# -- the commands --------------------------------------------------------------------------
def test_forecast_and_forecast_eval_commands(seasonal, tmp_path):
    events, model = seasonal
    model.save(tmp_path / "model")
    events.write_parquet(tmp_path / "events.parquet")
    runner = CliRunner()
    out = tmp_path / "forecast.parquet"
    result = runner.invoke(app, ["forecast", str(tmp_path / "model"),
                                 str(tmp_path / "events.parquet"), "--freq", "1d",
                                 "--horizon", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).height == model.corpus_.n_items * 3
    result = runner.invoke(app, ["forecast-eval", str(tmp_path / "model"),
                                 str(tmp_path / "events.parquet"), "--freq", "1d",
                                 "--horizon", "7", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["method"] for r in rows} >= {"forecast", "last", "mean_4"}
    assert "warning" not in result.stderr  # trained before the cutoff


def test_commands_read_named_event_and_category_columns(seasonal, tmp_path):
    """A generic log whose columns have other names: --event drops its returns, and
    --category finds the words of a model trained on categories (prepare --word category);
    without --category no event names a word of that model: a one-line error."""
    events, _ = seasonal
    log = events.with_columns(cat_id=("c" + (pl.col("item_id").cast(pl.Int64) // 5)
                                      .cast(pl.String)), kind=pl.lit("purchase"))
    returns = log.head(50).with_columns(kind=pl.lit("return"))
    pl.concat([log, returns]).rename({"timestamp": "when"}).write_csv(tmp_path / "log.csv")
    runner = CliRunner()
    for argv in (["prepare", str(tmp_path / "log.csv"), "--event", "kind", "--timestamp",
                  "when", "--category", "cat_id", "--word", "category", "-o",
                  str(tmp_path / "prepared")],
                 ["train", str(tmp_path / "prepared"), "-o", str(tmp_path / "model"), "-k",
                  str(N_TOPICS), "--iterations", "20"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
    common = [str(tmp_path / "model"), str(tmp_path / "log.csv"), "--timestamp", "when",
              "--freq", "1d"]
    result = runner.invoke(app, ["trends", *common, "--event", "kind", "--category",
                                 "cat_id", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sum(r["tokens"] for r in rows) == pytest.approx(log.height)  # returns left out
    result = runner.invoke(app, ["forecast-eval", *common, "--horizon", "7", "--category",
                                 "cat_id", "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["forecast-eval", *common, "--horizon", "7"])
    assert "names an item of the model" in str(result.exception)
    assert "--category" in str(result.exception)


def test_report_draws_trends_and_forecasts(seasonal):
    from gibbslda.report import FORECAST_SERIES, render_report

    events, model = seasonal
    text = render_report(model, n_users=0, events=events, freq="1d", horizon=7)
    assert "<h2>Interest trends</h2>" in text and "<h2>Demand forecast</h2>" in text
    # convergence x2, sizes, trends, then history + forecast of interests and of items
    assert text.count("<svg") == 4 + 2 * FORECAST_SERIES
    assert text.count('class="series forecast"') == 2 * FORECAST_SERIES
    untimed = LDA(N_TOPICS, n_iter=3, random_state=0).fit(Corpus.from_frame(events))
    plain = render_report(untimed, n_users=0)
    assert "Interest trends" not in plain and plain.count("<svg") == 3


def test_each_demand_kernel_compiled_one_signature(seasonal):
    """After forecasts on items and categories, weighted and not, from frames of string
    and integer ids: every kernel of gibbslda._kernels.demand has one signature."""
    from gibbslda._kernels import demand as kernels

    events, model = seasonal
    demand.forecast(model, events.with_columns(pl.lit(2).alias("qty")), freq="1d",
                    horizon=2, weight="qty")
    demand.forecast(model, events.with_columns(pl.col("item_id").cast(pl.Int64)), freq="1w",
                    horizon=1, level="interest")
    for name in ("interest_series", "scaled_levels", "blend_errors"):
        assert len(getattr(kernels, name).signatures) == 1, name


def test_report_command_with_events(seasonal, tmp_path):
    events, model = seasonal
    model.save(tmp_path / "model")
    events.with_columns(pl.col("user_id") + "x").write_csv(tmp_path / "events.csv")
    result = CliRunner().invoke(app, ["report", str(tmp_path / "model"), "-o",
                                      str(tmp_path / "r.html"), "--events",
                                      str(tmp_path / "events.csv"), "--freq", "1d",
                                      "--horizon", "3", "--users", "0"])
    assert result.exit_code == 0, result.output
    assert "no user of the events is a training user" in result.stderr
    text = (tmp_path / "r.html").read_text()
    assert "<h2>Interest trends</h2>" in text and "<h2>Demand forecast</h2>" in text
