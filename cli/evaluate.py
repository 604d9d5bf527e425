"""``gibbslda evaluate``: ranking metrics of a model beside strong baselines."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Json, Model, Output

EXAMPLE = ("Example: `gibbslda evaluate model prepared --k 10,20 --protocol last:5 "
           "--protocol time:0.2 --json`")


def evaluate(
    model_path: Model,
    prepared: Annotated[Path, typer.Argument(
        help="The prepared folder the model was trained on: with a split, or split "
             "here by --protocol.")],
    k: Annotated[str, typer.Option(help="Cutoffs, comma-separated.")] = "10,20",
    baselines: Annotated[bool, typer.Option(
        help="Also popularity, item-kNN and EASE, fitted on the same training part.")] = True,
    variants: Annotated[bool, typer.Option(
        help="Every recommendation variant (lda, lda_avg, lda_recency, lda+pop, lda+knn, "
             "lda+ease, lda+iknn) beside the default; --no-variants: the default "
             "alone.")] = True,
    protocol: Annotated[Optional[list[str]], typer.Option(
        help="Split the prepared folder's training part (prepare it without --split) by "
             "a protocol, refit the model's settings and the baselines on its training "
             "part and rank its held-out items; repeat for several. heldout[:FRACTION] "
             "holds users out (half of each one's items hidden); last[:N] holds out each "
             "user's N newest items; time[:AT] trains before AT (a date, or the share of "
             "the pairs first seen after it, default 0.2) and ranks each user's new items "
             "after it. Last and time need a folder prepared with --timestamp.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the protocols' random choices.")] = 0,
    output: Output = None,
    as_json: Json = False,
) -> None:
    """Recall, NDCG, precision, hit rate and MAP at k, coverage and novelty, on the
    prepared split's held-out part: held-out users (observed -> hidden) or each user's
    held-out items (train -> test); or, with --protocol, per protocol after refitting."""
    import polars as pl

    from gibbslda import LDA, preprocess
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.evaluate import parse_protocol

    cutoffs = _cutoffs(k)
    specs = [parse_protocol(text) for text in protocol or []]
    model = LDA.load(model_path)
    data = preprocess.read_prepared(prepared)
    train = data.corpus("train")
    if list(train.item_ids) != [str(i) for i in model.item_ids_] and \
            list(train.item_ids) != list(model.item_ids_):
        raise ValueError(f"{model_path} was not trained on {prepared} (different items): "
                         "evaluate on the prepared folder it was trained on")
    if specs:
        frame = pl.concat([_refit(model, train, spec, cutoffs, baselines, variants, seed)
                           for spec in specs])
    else:
        frame = _as_trained(model, data, cutoffs, baselines, variants)
    if output is not None:
        write_table(frame, output)
        typer.echo(f"wrote {output}")
    else:
        show_table(frame, as_json=as_json, title=None if as_json else "Ranking quality")


def _as_trained(model, data, cutoffs, baselines, variants):
    """The saved model on the prepared folder's own split, beside baselines fitted on its
    training part."""
    from gibbslda.evaluate import prepared_split

    return _rank(model, prepared_split(model, data), cutoffs, baselines, variants, 0.0)


def _refit(model, corpus, spec, cutoffs, baselines, variants, seed):
    """One protocol: split, fit the model's settings and the baselines, rank."""
    import time

    from gibbslda import LDA
    from gibbslda.evaluate import HeldOutUsers, protocol_split

    if corpus.times is None and not isinstance(spec, HeldOutUsers):
        raise ValueError(f"{spec} needs event times: prepare the log with --timestamp")
    split = protocol_split(corpus, spec, seed=seed)
    started = time.perf_counter()
    fitted = LDA(**model.get_params()).fit(split.train)
    return _rank(fitted, split, cutoffs, baselines, variants,
                 time.perf_counter() - started)


def _rank(model, split, cutoffs, baselines, variants, fit_seconds):
    """Every recommendation variant of ``model`` (gibbslda.rankers) beside the baselines
    on one split; the variants' tuning (run once, cached with the model) is timed apart."""
    import time

    import polars as pl

    from gibbslda import rankers
    from gibbslda.evaluate import compare

    started = time.perf_counter()
    chosen = rankers.choose(model).chosen
    tune = time.perf_counter() - started
    scorers = _variants(rankers.variants(model, split.known), chosen, variants)
    seconds = {name: fit_seconds for name in scorers}
    tuning = {name: tune for name in scorers}
    for name, baseline, fit in _baselines(split.train) if baselines else ():
        scorers[name], seconds[name], tuning[name] = baseline, fit, 0.0
    frame = pl.DataFrame(compare(split, scorers, k=cutoffs))
    return frame.select(pl.lit(split.protocol).alias("protocol"), pl.all()).with_columns(
        fit_seconds=pl.col("model").replace_strict(seconds, return_dtype=pl.Float64),
        tune_seconds=pl.col("model").replace_strict(tuning, return_dtype=pl.Float64))


def _variants(scorers: dict, chosen: str, every: bool) -> dict:
    """The variants by name, the default shown as 'chosen = <its variant>'; without
    ``every``, the default alone."""
    out = {f"chosen = {chosen}" if name == "chosen" else name: scorer
           for name, scorer in scorers.items() if every or name == "chosen"}
    return out


def _baselines(train):
    """(name, fitted baseline, fit seconds) of popularity, item-kNN and EASE."""
    import time

    from gibbslda.baselines import EASE, ItemKNN, Popularity

    out = []
    for name, baseline in (("popularity", Popularity()), ("item-kNN", ItemKNN()),
                           ("EASE", EASE())):
        started = time.perf_counter()
        baseline.fit(train, train.n_items)
        out.append((name, baseline, time.perf_counter() - started))
    return out


def _cutoffs(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--k takes comma-separated integers, got {text!r}") from None
