"""``gibbslda topics``: each interest's top items with labels and weights."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Json, Model, output_option

EXAMPLE = "Example: `gibbslda topics model -n 10 -o topics.parquet`"


def topics(
    model_path: Model,
    n: Annotated[int, typer.Option("-n", "--items", min=1, help="Items per interest.")] = 10,
    output: Annotated[Optional[Path], output_option(
        "Write the long table (.parquet, .csv or .json).")] = None,
    as_json: Json = False,
) -> None:
    """Top items of every interest: topic, share of tokens, rank, item, label, weight."""
    import numpy as np
    import polars as pl

    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.evaluate import top_items

    model, labels = load_model(model_path)
    phi = model.topic_word_
    n = min(n, phi.shape[1])
    best = top_items(phi, n)
    k = phi.shape[0]
    share = model.n_k_ / model.n_k_.sum()
    frame = pl.DataFrame({
        "topic": np.repeat(np.arange(k, dtype=np.int32), n),
        "share": np.repeat(share, n),
        "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), k),
        "item_id": pl.Series(model.item_ids_[best.ravel()]).cast(pl.String),
        "label": pl.Series(labels[best.ravel()]).cast(pl.String),
        "weight": np.take_along_axis(phi, best, axis=1).ravel(),
    })
    if output is not None:
        write_table(frame, output)
        typer.echo(f"wrote {output}")
    elif as_json:
        show_table(frame, as_json=True)
    else:
        summary = (frame.group_by("topic", maintain_order=True)
                   .agg(pl.col("share").first(), pl.col("label").str.join(" | ").alias("top items"))
                   .sort("share", descending=True))
        show_table(summary, title=f"{k} interests, top {n} items each")
