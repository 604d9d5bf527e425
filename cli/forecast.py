"""``gibbslda forecast`` and ``gibbslda forecast-eval``: demand per item (or category,
or interest) for the coming periods, top-down from the interests, and its held-out
evaluation against naive forecasts."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Json, Model, output_option
from gibbslda.cli.trends import (CategoryColumn, EventColumn, Format, Freq, ItemColumn,
                                 TimeColumn, UserColumn)

EXAMPLE = ("Example: `gibbslda forecast model events.csv --freq 1w --horizon 8 "
           "-o forecast.parquet`")
EVAL_EXAMPLE = "Example: `gibbslda forecast-eval model events.csv --freq 1w --horizon 8`"

Events = Annotated[Path, typer.Argument(
    metavar="EVENTS", help="Events file (CSV/TSV, Parquet, NDJSON; the layouts prepare "
         "reads). Returns are left out; each other row is one unit of demand.")]
Horizon = Annotated[int, typer.Option(min=1, help="Periods to forecast (to hold out).")]
Coverage = Annotated[float, typer.Option(min=0.01, max=0.99,
                                         help="Prediction intervals' coverage.")]
Categories = Annotated[Optional[Path], typer.Option(
    help="Parquet/CSV table item -> category (default: the events' category column, "
         "when the layout has one).")]


def forecast(
    model_path: Model,
    events: Events,
    freq: Freq = "1w",
    horizon: Horizon = 8,
    level: Annotated[str, typer.Option(help="item, category or interest.")] = "item",
    coverage: Coverage = 0.8,
    format: Format = "generic",
    user: UserColumn = None,
    item: ItemColumn = None,
    timestamp: TimeColumn = None,
    event: EventColumn = None,
    category: CategoryColumn = None,
    categories: Categories = None,
    output: Annotated[Optional[Path], output_option(
        "Write the forecast (.parquet, .csv or .json).")] = None,
    as_json: Json = False,
) -> None:
    """Forecast demand for the `--horizon` periods after the events: each interest's
    activity by exponential smoothing, passed down to items by their shares, blended
    with each item's own recent level as the history validates; intervals from the
    errors on the history's last periods. Only complete periods are used."""
    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.demand import forecast as run

    model, _ = load_model(model_path)
    log = read_log_with(model, events, format, user, item, timestamp, categories,
                        event, category)
    table = run(model, log["events"], freq=freq, horizon=horizon, level=level,
                user="user", item="item", time="timestamp", coverage=coverage,
                categories=log["categories"])
    if output is not None:
        write_table(table, output)
        typer.echo(f"wrote {output}: {table.height:,} rows")
    elif as_json:
        show_table(table, as_json=True)
    else:
        import polars as pl

        top = (table.group_by(table.columns[0]).agg(pl.col("forecast").sum())
               .sort("forecast", descending=True).head(20).get_column(table.columns[0]))
        show_table(table.filter(pl.col(table.columns[0]).is_in(top.implode())),
                   title=f"forecast of the 20 largest ({level}s); -o for all")


def forecast_eval(
    model_path: Model,
    events: Events,
    freq: Freq = "1w",
    horizon: Horizon = 8,
    coverage: Coverage = 0.8,
    format: Format = "generic",
    user: UserColumn = None,
    item: ItemColumn = None,
    timestamp: TimeColumn = None,
    event: EventColumn = None,
    category: CategoryColumn = None,
    categories: Categories = None,
    output: Annotated[Optional[Path], output_option(
        "Write the scores (.parquet, .csv or .json).")] = None,
    as_json: Json = False,
) -> None:
    """Hold out the last `--horizon` complete periods, forecast them from the events
    before, and print WAPE, MAE, bias and interval coverage per level (items, and
    categories when known), overall and for the long tail (outside the top 10% by
    history demand), beside naive forecasts (last period, mean of the last 4 and 8,
    seasonal when a whole season exists).

    Interest activity, item levels and every choice see only the events before the
    cutoff; the model's topics see what it was trained on. When the model was trained on
    events at or after the cutoff this warns (the item-topic shares leak the held-out
    periods): train on the events before it for a clean figure."""
    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.demand_eval import evaluate_forecast

    model, _ = load_model(model_path)
    log = read_log_with(model, events, format, user, item, timestamp, categories,
                        event, category)
    result = evaluate_forecast(model, log["events"], freq=freq, horizon=horizon,
                               user="user", item="item", time="timestamp",
                               coverage=coverage, categories=log["categories"])
    if result.leak is None:
        typer.echo("gibbslda: the model has no times, so whether it saw the held-out "
                   f"periods (from {result.cutoff}) cannot be checked", err=True)
    elif result.leak:
        typer.echo(f"gibbslda: warning: the model was trained on events from {result.cutoff} "
                   "on, the held-out periods: its item-topic shares leak them; train on the "
                   "events before it for a clean evaluation", err=True)
    if output is not None:
        write_table(result.table, output)
        typer.echo(f"wrote {output}")
    elif as_json:
        show_table(result.table, as_json=True)
    else:
        show_table(result.table, title=f"{result.horizon} periods of {freq} held out from "
                   f"{result.cutoff}, {result.history_periods} periods of history")


def read_log_with(model, events: Path, fmt, user, item, timestamp, categories,
                  event=None, category=None) -> dict:
    """:func:`gibbslda.cli.trends.read_log`, with a category table when given."""
    from gibbslda.cli.trends import read_log

    log = read_log(model, events, fmt, user, item, timestamp, events=event,
                   category=category)
    if categories is not None:
        from gibbslda.preprocess.readers import _open, _table

        table = _table(_open(categories, "generic")[0].collect(), "category")
        log["categories"] = table.rename({"key": "item", "value": "category"})
    return log
