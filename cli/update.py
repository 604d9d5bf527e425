"""``gibbslda update``: new events into a trained model, without training again."""
from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import LABELS, Json, Model, output_option

EXAMPLE = ("Example: `gibbslda update model new-events.csv --prepared prepared --decay 30d`")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def update(
    model_path: Model,
    events: Annotated[Path, typer.Argument(
        metavar="EVENTS", help="New events: CSV/TSV, Parquet or NDJSON, read as `prepare` "
                               "reads them.")],
    output: Annotated[Optional[Path], output_option(
        "Write the updated model to this folder (default: replace MODEL).",
        file_okay=False)] = None,
    prepared: Annotated[Optional[Path], typer.Option(
        help="The prepared folder the model was trained from: the format, event weights, "
             "cap, dedupe, word and min-rating it recorded apply to the events "
             "(k-core filters and splits do not: they would judge the update alone), "
             "and the column names it was given, unless given here.")
    ] = None,
    format: Annotated[Optional[str], typer.Option(
        "--format", help="As `prepare --format` (default: the prepared folder's, else "
                         "generic).")] = None,
    user: Annotated[Optional[str], typer.Option(help="Generic: user id column.")] = None,
    item: Annotated[Optional[str], typer.Option(help="Generic: item id column.")] = None,
    event: Annotated[Optional[str], typer.Option(help="Generic: behaviour column.")] = None,
    timestamp: Annotated[Optional[str], typer.Option(help="Generic: time column.")] = None,
    quantity: Annotated[Optional[str], typer.Option(help="Generic: quantity column.")] = None,
    category: Annotated[Optional[str], typer.Option(help="Item category column.")] = None,
    iterations: Annotated[Optional[int], typer.Option(
        min=0, help="Sweeps over the users the events touch (default 20).")] = None,
    decay: Annotated[Optional[str], typer.Option(
        help="Fade old events: a factor in (0, 1] kept per update (0.9), or a half-life "
             "with a unit w/d/h/m/s (30d); needs event times. Old tokens are thinned: "
             "each is kept with that probability, the others are dropped.")] = None,
    refresh: Annotated[float, typer.Option(
        help="Share of the users the events do not touch whose tokens are resampled "
             "too.")] = 0.0,
    scope: Annotated[str, typer.Option(
        help="new: resample the new tokens only (the cost follows the events); users: all "
             "tokens of the users they touch.")
    ] = "new",
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
    as_json: Json = False,
) -> None:
    """Add new events to a trained model: known users' histories grow, new users and
    items join, the new tokens get interests by fold-in, then a few sweeps run over the
    users they touch, so the cost follows the new events, not the whole log. Prints what
    was added and how much each interest grew or shrank. The model folder is replaced
    atomically at the end: a failed or interrupted update leaves it as it was."""
    import json

    import polars as pl
    from rich.console import Console

    from gibbslda import io
    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table
    from gibbslda.cli.progress import TrainingDisplay, compile_kernels

    err = Console(stderr=True, highlight=False)
    show = err.is_terminal and not quiet
    fade = parse_decay(decay)
    if scope not in ("users", "new"):
        raise ValueError(f"--scope must be users or new, got {scope!r}")
    target = model_path if output is None else output
    model, _ = load_model(model_path)
    io.check_target(target)
    corpus, new_labels = _read_events(events, prepared, dict(
        format=format, user=user, item=item, event=event, timestamp=timestamp,
        quantity=quantity, category=category))
    compile_kernels(err, show)
    from gibbslda import update as _update

    _update.warm_up()  # its two small kernels: a fraction of a second after install
    with TrainingDisplay(err, show=show) as display:
        model.update(corpus, n_iter=iterations, decay=fade, refresh=refresh, scope=scope,
                     callback=display)
    extra = _labels(io.read_extra(model_path, LABELS), new_labels)
    io.save(model, target, extra=extra)
    report = model.last_update_
    before, after = report.topics_before, report.topics_after
    table = pl.DataFrame({
        "topic": pl.int_range(len(after), eager=True).cast(pl.Int32),
        "tokens_before": before, "tokens_after": after,
        "change": after - before,
        "change_pct": (after - before) / before.clip(min=1) * 100.0,
    })
    summary = {"model": str(target), "users_added": report.users_added,
               "items_added": report.items_added, "tokens_added": report.tokens_added,
               "tokens_faded": report.tokens_faded, "users_swept": report.users_swept,
               "tokens_swept": report.tokens_swept, "sweeps": report.sweeps,
               "seconds": round(report.seconds, 3)}
    if as_json:
        typer.echo(json.dumps({"summary": summary, "interests": table.to_dicts()}))
        return
    typer.echo(f"{target}: +{report.users_added:,} users, +{report.items_added:,} items, "
               f"+{report.tokens_added:,} tokens ({report.tokens_faded:,} faded); "
               f"{report.sweeps} sweeps over {report.users_swept:,} users in "
               f"{report.seconds:.1f} s")
    show_table(table.sort("change", descending=True), title="How each interest changed")


def parse_decay(text: str | None):
    """--decay: None, a factor (float) or a half-life (datetime.timedelta)."""
    if text is None:
        return None
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([wdhms])\s*", text)
    if found:
        return datetime.timedelta(**{_UNITS[found[2]]: float(found[1])})
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--decay takes a factor in (0, 1] such as 0.9 or a half-life such "
                         f"as 30d (units w, d, h, m, s), got {text!r}") from None


def _read_events(events: Path, prepared: Path | None, names: dict):
    """The events as a Corpus, read and weighed as the preparation that trained the model
    did, and the labels of their items (or None)."""
    from gibbslda import preprocess

    if not events.exists():
        raise FileNotFoundError(2, "no such file", str(events))
    options = {}
    if prepared is not None:
        recorded = preprocess.read_prepared(prepared).summary.get("options", {})
        options = {name: recorded[name] for name in ("format", "cap", "dedupe", "word",
                                                     "min_rating") if name in recorded}
        if recorded.get("weights") not in (None, dict(preprocess.DEFAULT_WEIGHTS)):
            options["weights"] = recorded["weights"]
        options |= recorded.get("columns", {})  # the column names prepare was given
    if names["format"] is not None:
        options["format"] = names["format"]
    given = {name: value for name, value in names.items()
             if value is not None and name != "format"}
    result = preprocess.prepare(events, **(options | given))
    words = result.words
    labels = None
    if words.get_column("label").null_count() < words.height:
        labels = words.select(item_id=words["word_id"].cast(str),
                              label=words["label"].fill_null(""))
    return result.corpus("train"), labels


def _labels(old, new):
    """The model's item labels with the update's new items' appended (labels.parquet)."""
    import polars as pl

    if new is None:
        return {} if old is None else {LABELS: old}
    if old is None:
        return {LABELS: new}
    added = new.join(old.select("item_id"), on="item_id", how="anti")
    return {LABELS: pl.concat([old, added.select(old.columns)])}
