"""``gibbslda prepare``: an event log to a prepared folder (weighted tokens, id maps,
labels, split parts, a JSON summary) that ``gibbslda train`` reads."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import json_option, output_option

EXAMPLE = ("Example: `gibbslda prepare UserBehavior.csv --format taobao --min-user-items 5 "
           "--split heldout -o prepared`")


def prepare(
    source: Annotated[Path, typer.Argument(help="CSV/TSV, Parquet or NDJSON event file.")],
    output: Annotated[Path, output_option("The prepared folder to write.",
                                          file_okay=False)] = Path("prepared"),
    format: Annotated[str, typer.Option(
        "--format", help="generic, retailrocket, taobao, online_retail or movielens.")] = "generic",
    user: Annotated[Optional[str], typer.Option(help="Generic: user id column.")] = None,
    item: Annotated[Optional[str], typer.Option(help="Generic: item id column.")] = None,
    event: Annotated[Optional[str], typer.Option(help="Generic: behaviour column.")] = None,
    timestamp: Annotated[Optional[str], typer.Option(help="Generic: time column.")] = None,
    quantity: Annotated[Optional[str], typer.Option(help="Generic: quantity column.")] = None,
    category: Annotated[Optional[str], typer.Option(
        help="Item category column (or a Parquet/CSV item -> category table); it also "
             "labels items that have no label.")] = None,
    labels: Annotated[Optional[str], typer.Option(
        help="Item label column (or a Parquet/CSV item -> label table).")] = None,
    word: Annotated[str, typer.Option(help="What a token is: item or category.")] = "item",
    weight: Annotated[Optional[list[str]], typer.Option(
        help="Tokens per event, e.g. --weight view=1 --weight purchase=4.")] = None,
    cap: Annotated[int, typer.Option(help="Most tokens per user and item (0: none).")] = 10,
    dedupe: Annotated[str, typer.Option(help="none, exact, event or item.")] = "none",
    min_user_items: Annotated[int, typer.Option(help="k-core: items per user.")] = 1,
    min_item_users: Annotated[int, typer.Option(help="k-core: users per item.")] = 1,
    split: Annotated[str, typer.Option(
        help="none, heldout (held-out users), last (leave-last-n) or time (cutoff).")] = "none",
    test_fraction: Annotated[float, typer.Option(help="heldout: users held out.")] = 0.2,
    hidden_fraction: Annotated[float, typer.Option(
        help="heldout: share of a held-out user's items hidden.")] = 0.2,
    last: Annotated[int, typer.Option(help="last: items held out per user.")] = 1,
    cutoff: Annotated[str, typer.Option(
        help="time: ISO time, or a fraction of the pairs to hold out, e.g. 0.2.")] = "0.2",
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    pseudonymize: Annotated[bool, typer.Option(
        help="Replace user ids by keyed hashes (HMAC-SHA256, key in the environment "
             "variable GIBBSLDA_PSEUDONYM_KEY, never stored); users are then ordered by "
             "pseudonym.")] = False,
    as_json: Annotated[bool, json_option("The summary as JSON on stdout.")] = False,
) -> None:
    """Read an event log with polars, weigh behaviours, filter and split it, and write a
    prepared folder; prints what was read, dropped and kept, and the peak memory (with
    --json: the summary and ``peak_rss_bytes``). A log of more than 10M rows is read in
    passes over buckets of users (a big CSV is first copied to a temporary Parquet file
    under TMPDIR), so memory follows the user-item pairs kept, not the rows."""
    import json

    from gibbslda import preprocess
    from gibbslda.privacy import key_from_env

    key = key_from_env() if pseudonymize else None
    preprocess.check_target(output)  # refuse a folder that is not ours before the work
    prepared = preprocess.prepare(
        source, format=format, user=user, item=item, event=event, timestamp=timestamp,
        quantity=quantity, category=_table_or_column(category),
        labels=_table_or_column(labels), weights=_weights(weight), cap=cap or None,
        dedupe=dedupe, word=word, min_user_items=min_user_items,
        min_item_users=min_item_users,
        split=_split(split, test_fraction, hidden_fraction, last, cutoff), seed=seed,
        pseudonym_key=key)
    preprocess.write_prepared(prepared, output)
    peak = _peak_rss_bytes()
    if as_json:
        typer.echo(json.dumps(prepared.summary | {"peak_rss_bytes": peak}, default=str))
        return
    train = prepared.summary["parts"][prepared.parts[0]]
    words = "categories" if word == "category" else f"{word}s"
    typer.echo(f"{output}: {train['users']:,} users, {prepared.words.height:,} "
               f"{words}, {train['tokens']:,} training tokens; parts "
               f"{', '.join(prepared.parts)}"
               + ("" if peak is None else f"; peak memory {peak / 2**30:.2f} GiB"))


def _peak_rss_bytes() -> int | None:
    """This process's peak resident set so far (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes; Linux: KiB


def _table_or_column(value: str | None):
    """A path to an existing table file is read as a table; anything else is a column."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        import polars as pl

        return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    return value


def _weights(pairs: list[str] | None) -> dict | None:
    if not pairs:
        return None
    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            weights[name] = int(value)
        except ValueError:
            raise ValueError(f"--weight takes event=integer, got {pair!r}") from None
    return weights


def _split(kind: str, test_fraction: float, hidden_fraction: float, last: int, cutoff: str):
    from gibbslda import preprocess

    if kind == "none":
        return None
    if kind == "heldout":
        return preprocess.HeldOutUsers(test_fraction, hidden_fraction)
    if kind == "last":
        return preprocess.LeaveLastN(last)
    if kind == "time":
        try:
            at = float(cutoff)
        except ValueError:
            at = cutoff
        return preprocess.TimeCutoff(at)
    raise ValueError(f"--split must be none, heldout, last or time, got {kind!r}")
