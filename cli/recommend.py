"""``gibbslda recommend``: ranked, explained recommendations for users of a model."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Json, Model, Output

EXAMPLE = "Example: `gibbslda recommend model --user 12347 -n 10 --explain`"


def recommend(
    model_path: Model,
    user: Annotated[Optional[list[str]], typer.Option(
        help="A training user id (repeat for several). Default: every user.")] = None,
    history: Annotated[Optional[list[str]], typer.Option(
        help="A new user's items, comma-separated (repeat for several users): folded in.")]
        = None,
    n: Annotated[int, typer.Option("-n", min=1, help="Items per user.")] = 20,
    include_seen: Annotated[bool, typer.Option(
        help="Also recommend items the user already has.")] = False,
    explain: Annotated[bool, typer.Option(
        help="Add the interest behind each recommendation.")] = False,
    output: Output = None,
    as_json: Json = False,
) -> None:
    """Top items by p(item | user) for training users, or new users by their items."""
    import polars as pl

    from gibbslda import recommend as rec
    from gibbslda.cli.common import load_model
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.profiles import name_topics

    model, labels = load_model(model_path)
    theta = ids = None
    if history:
        histories = [[item for item in h.split(",") if item] for h in history]
        ids = [f"new-{i}" for i in range(len(histories))]
        frame = rec.recommend_new(model, histories, n=n, user_ids=ids,
                                  exclude_seen=not include_seen)
        theta = model.transform(histories) if explain else None
    else:
        if not user and output is None:
            raise ValueError("recommendations for every user go to a file: pass -o "
                             "recs.parquet, or --user ID for some users")
        frame = rec.recommend(model, user or None, n=n, exclude_seen=not include_seen)
    if explain:
        frame = rec.explain(model, frame, name_topics(model, labels), theta=theta,
                            user_ids=ids)
    titles = pl.DataFrame({"item_id": model.item_ids_.tolist(), "title": labels.tolist()})
    frame = frame.join(titles.with_columns(pl.col("item_id").cast(frame["item_id"].dtype)),
                       on="item_id", how="left", maintain_order="left")
    if output is not None:
        write_table(frame, output)
        typer.echo(f"wrote {output} ({frame.height:,} recommendations)")
    else:
        shown = frame.drop("topic", "label", "user_share", "score_share", strict=False)
        show_table(shown, as_json=as_json, title=None if as_json else "Recommendations")
