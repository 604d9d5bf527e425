"""``gibbslda trends``: each interest's activity per period (day, week, month), from the
model's own token times or from an events file. Also home of :func:`read_log`, the events
file reader ``forecast`` and ``forecast-eval`` share."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Json, Model, output_option

EXAMPLE = "Example: `gibbslda trends model events.csv --freq 1w -o trends.parquet`"

Freq = Annotated[str, typer.Option(
    help="Period: a polars duration, 1d, 1w (weeks from Monday, UTC) or 1mo.")]
Format = Annotated[str, typer.Option(
    "--format", help="Events file layout, as for prepare: generic, retailrocket, taobao, "
                     "online_retail or movielens.")]
Column = Optional[str]
UserColumn = Annotated[Column, typer.Option(help="Generic: user id column.")]
ItemColumn = Annotated[Column, typer.Option(help="Generic: item id column.")]
TimeColumn = Annotated[Column, typer.Option(help="Generic: time column.")]
EventColumn = Annotated[Column, typer.Option(
    help="Generic: behaviour column (its 'return' rows are left out).")]
CategoryColumn = Annotated[Column, typer.Option(
    help="Generic: item category column (for a model trained on categories, or for "
         "category-level forecasts).")]


def trends(
    model_path: Model,
    events: Annotated[Optional[Path], typer.Argument(
        metavar="[EVENTS]", help="Events file (CSV/TSV, Parquet, NDJSON; the layouts "
             "prepare reads). Without it: the model's own token times (a prepared corpus "
             "has one time per user-item pair, its last event).")] = None,
    freq: Freq = "1w",
    format: Format = "generic",
    user: UserColumn = None,
    item: ItemColumn = None,
    timestamp: TimeColumn = None,
    event: EventColumn = None,
    category: CategoryColumn = None,
    output: Annotated[Optional[Path], output_option(
        "Write the long table (.parquet, .csv or .json).")] = None,
    as_json: Json = False,
) -> None:
    """Per period and interest: tokens (events) it explains, its share, and how many of
    the period's active users have it as their main interest. An event is split over
    interests by p(interest | user, item)."""
    import polars as pl

    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.profiles import name_topics
    from gibbslda.trends import interest_trends

    model, names = load_model(model_path)
    labels = name_topics(model, names, n=2)
    frame = None if events is None else read_log(model, events, format, user, item,
                                                  timestamp, events=event,
                                                  category=category)["events"]
    table = interest_trends(model, frame, freq=freq, labels=labels, user="user",
                            item="item", time="timestamp")
    if output is not None:
        write_table(table, output)
        typer.echo(f"wrote {output}")
    elif as_json:
        show_table(table, as_json=True)
    else:
        wide = (table.with_columns(pl.col("period").dt.date().cast(pl.String))
                .pivot("period", index=["topic", "label"], values="share")
                .sort("topic"))
        show_table(wide, title=f"share of tokens per interest and {freq} period")


def read_log(model, path: Path, fmt: str, user, item, timestamp, *, events=None,
             category=None) -> dict:
    """An events file as canonical columns (user, item, timestamp, category when the
    layout has one), returns dropped; its item column is the one whose ids the model
    knows: the item, or the category for a model trained on categories
    (``prepare --word category``). Says on stderr when no event's user is a training
    user (then p(interest | item) splits the events). Returns {"events": frame,
    "categories": frame or None (item, category), "word": "item" or "category"}."""
    import polars as pl

    from gibbslda.preprocess.readers import _canonical, _collect, _open

    raw, where = _open(path, fmt)
    if fmt == "generic":
        timestamp = timestamp or "timestamp"
    names = {"user": user, "item": item, "timestamp": timestamp, "event": events,
             "category": category}
    lf = _canonical(raw, fmt, names, where)
    schema = lf.collect_schema()
    if "timestamp" not in schema:
        raise ValueError(f"{where} has no time column: name it with --timestamp (format "
                         "generic)")
    if "event" in schema:  # returns and cancellations are not demand
        lf = lf.filter(pl.col("event").is_null() | (pl.col("event") != "return"))
    keep = [c for c in ("user", "item", "timestamp", "category") if c in schema]
    frame = _collect([lf.select(keep).drop_nulls(["user", "item", "timestamp"])], where)[0]
    ids = pl.Series(model.item_ids_).cast(pl.String)
    hits = frame.get_column("item").cast(pl.String).is_in(ids.implode()).sum()
    word, categories = "item", None
    if "category" in frame.columns:
        by_category = frame.get_column("category").cast(pl.String).is_in(ids.implode()).sum()
        if by_category > hits:
            word, hits = "category", by_category
            frame = frame.with_columns(pl.col("category").alias("item"))
        else:
            categories = (frame.select("item", "category").drop_nulls()
                          .unique("item", keep="first", maintain_order=True))
    if hits == 0:
        raise ValueError(f"no event of {where} names an item of the model: check --format "
                         "and --item, or --category for a model of categories (ids must "
                         "be those the model was trained on)")
    users = pl.Series(model.user_ids_).cast(pl.String).implode()
    if not frame.get_column("user").cast(pl.String).is_in(users).any():
        typer.echo("gibbslda: no user of the events is a training user of the model (a "
                   "pseudonymised preparation?): events are split over interests by "
                   "p(interest | item) alone", err=True)
    return {"events": frame, "categories": categories, "word": word}
