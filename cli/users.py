"""``gibbslda users``: users' interest mixes (theta), as a table or one user's profile."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Json, Model, output_option

EXAMPLE = "Example: `gibbslda users model --user 12347 --top 5`"


def users(
    model_path: Model,
    user: Annotated[Optional[str], typer.Option(help="Show one user's profile.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Interests per user in profiles.")] = 3,
    wide: Annotated[bool, typer.Option(help="One column per topic (with -o).")] = False,
    output: Annotated[Optional[Path], output_option(
        "Write every user's theta (.parquet, .csv or .json): long (user_id, topic, weight) "
        "or --wide.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Users shown on stdout.")] = 20,
    as_json: Json = False,
) -> None:
    """Each user's mix of interests: the whole theta to a file, or profiles on stdout."""
    import polars as pl

    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.profiles import name_topics, user_profiles, user_topics

    model, labels = load_model(model_path)
    if output is not None:
        write_table(user_topics(model, wide=wide), output)
        typer.echo(f"wrote {output}")
        return
    ids = model.user_ids_
    shown = ids[:limit]
    if user is not None:
        shown = ids[pl.Series(ids).cast(pl.String).to_numpy() == user]
        if shown.size == 0:
            raise ValueError(f"no user {user!r} in this model ({ids.size:,} users, for "
                             f"example {str(ids[0])!r})")
    frame = user_profiles(model, n=top, labels=name_topics(model, labels), users=shown)
    frame = frame.select(pl.col("user_id").cast(pl.String), "rank", "topic", "weight",
                         interest="label")
    show_table(frame, as_json=as_json, title=None if as_json else "User interests")
