"""``gibbslda users``: users' interest mixes (theta), as a table or one user's profile."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EXAMPLE = "Example: `gibbslda users model --user 12347 --top 5`"


def users(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder.")],
    user: Annotated[Optional[str], typer.Option(help="Show one user's profile.")] = None,
    top: Annotated[int, typer.Option(min=1, help="Interests per user in profiles.")] = 3,
    wide: Annotated[bool, typer.Option(help="One column per topic (with -o).")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Write every user's theta (.parquet, .csv or .json): long "
                               "(user_id, topic, weight) or --wide.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Users shown on stdout.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON records on stdout.")] = False,
) -> None:
    """Each user's mix of interests: the whole theta to a file, or profiles on stdout."""
    import numpy as np
    import polars as pl

    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.profiles import name_topics
    from gibbslda.topn import top_k

    model, labels = load_model(model_path)
    theta = model.doc_topic_
    ids = pl.Series("user_id", model.user_ids_).cast(pl.String)
    if output is not None:
        if wide:
            frame = pl.DataFrame(theta, schema=[f"topic_{k}" for k in range(theta.shape[1])])
            frame = frame.insert_column(0, ids)
        else:
            n_users, k = theta.shape
            frame = pl.DataFrame({"user_id": np.repeat(ids.to_numpy(), k),
                                  "topic": np.tile(np.arange(k, dtype=np.int32), n_users),
                                  "weight": theta.ravel()})
        write_table(frame, output)
        typer.echo(f"wrote {output}")
        return
    rows = np.arange(min(limit, theta.shape[0]))
    if user is not None:
        rows = np.flatnonzero(ids.to_numpy() == user)
        if rows.size == 0:
            raise ValueError(f"no user {user!r} in this model ({theta.shape[0]:,} users, for "
                             f"example {ids[0]!r})")
    names = name_topics(model.topic_word_, labels)
    top = min(top, theta.shape[1])
    best = top_k(theta[rows], top)
    frame = pl.DataFrame({
        "user_id": np.repeat(ids.to_numpy()[rows], top),
        "rank": np.tile(np.arange(1, top + 1, dtype=np.int32), rows.size),
        "topic": best.ravel().astype(np.int32),
        "weight": np.take_along_axis(theta[rows], best, axis=1).ravel(),
        "interest": [names[k] for k in best.ravel()],
    })
    show_table(frame, as_json=as_json, title=None if as_json else "User interests")
