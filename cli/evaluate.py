"""``gibbslda evaluate``: ranking metrics of a model beside strong baselines."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gibbslda.cli.common import Json, Model, Output

EXAMPLE = "Example: `gibbslda evaluate model prepared --k 10,20 --json`"


def evaluate(
    model_path: Model,
    prepared: Annotated[Path, typer.Argument(
        help="The prepared folder the model was trained on, with a split.")],
    k: Annotated[str, typer.Option(help="Cutoffs, comma-separated.")] = "10,20",
    baselines: Annotated[bool, typer.Option(
        help="Also popularity, item-kNN and EASE, fitted on the same training part.")] = True,
    output: Output = None,
    as_json: Json = False,
) -> None:
    """Recall, NDCG, precision, hit rate and MAP at k, coverage and novelty, on the
    prepared split's held-out part: held-out users (observed -> hidden) or each user's
    held-out items (train -> test)."""
    import time

    import polars as pl

    from gibbslda import LDA, preprocess
    from gibbslda.baselines import EASE, ItemKNN, Popularity
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.evaluate import evaluate_rankings, heldout_parts, item_popularity

    cutoffs = _cutoffs(k)
    model = LDA.load(model_path)
    data = preprocess.read_prepared(prepared)
    train = data.corpus("train")
    if list(train.item_ids) != [str(i) for i in model.item_ids_] and \
            list(train.item_ids) != list(model.item_ids_):
        raise ValueError(f"{model_path} was not trained on {prepared} (different items): "
                         "evaluate on the prepared folder it was trained on")
    known, truth, theta = heldout_parts(model, data)
    popularity = item_popularity(train, train.n_items)
    phi = model.topic_word_
    systems = [(f"LDA K={model.n_topics}", lambda users: theta[users] @ phi, 0.0)]
    if baselines:
        for name, baseline in (("popularity", Popularity()), ("item-kNN", ItemKNN()),
                               ("EASE", EASE())):
            started = time.perf_counter()
            baseline.fit(train, train.n_items)
            systems.append((name, baseline, time.perf_counter() - started))
    rows = []
    for name, scorer, fit_seconds in systems:
        started = time.perf_counter()
        table = evaluate_rankings(scorer, known, truth, k=cutoffs, item_popularity=popularity)
        seconds = time.perf_counter() - started
        rows.append(pl.DataFrame(table).with_columns(
            model=pl.lit(name), fit_seconds=pl.lit(fit_seconds), eval_seconds=pl.lit(seconds)))
    frame = pl.concat(rows).select("model", pl.exclude("model"))
    if output is not None:
        write_table(frame, output)
        typer.echo(f"wrote {output}")
    else:
        show_table(frame, as_json=as_json, title=None if as_json else "Ranking quality")


def _cutoffs(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--k takes comma-separated integers, got {text!r}") from None
