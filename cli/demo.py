"""``gibbslda demo``: interests of the bundled Online Retail customers, end to end.

Prepares the shipped purchases (one token per invoice line, returns ignored) with the
polars pipeline, fits the estimator with live progress on stderr, prints the interests,
a few customers' profiles and recommendations on stdout, and writes the prepared folder,
Parquet tables, the model folder and an HTML report.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from gibbslda.cli.common import output_option

EXAMPLE = "Example: `gibbslda demo --topics 15 --iterations 200 --output demo-output`"
TOP_ITEMS = 20        # items per interest in topics.parquet, recommendations per customer
SHOWN_ITEMS = 8       # items per interest in the printed tables
SHOWN_RECS = 5        # recommendations per printed profile
MIN_SHOWN_HISTORY = 20  # printed profiles are of customers with at least this many purchases


@dataclass(frozen=True)
class _Ranked:
    """What the demo shows and saves, in the model's user and item indices."""

    titles: Any    # (V,) product title of each item index
    names: Any     # (K,) each interest's name: its heaviest title
    best: Any      # (K, TOP_ITEMS) item indices of each interest, best first
    weights: Any   # (K, TOP_ITEMS) phi of those items
    recs: Any      # (D, TOP_ITEMS) recommended item indices per user, best first
    scores: Any    # (D, TOP_ITEMS) p(item | user) of those items


def demo(
    output: Annotated[Path, output_option(
        "Folder for the Parquet files and the model.", file_okay=False)] = Path("demo-output"),
    topics: Annotated[int, typer.Option(
        "--topics", "-k", help="Number of interests (topics) to find.")] = 15,
    iterations: Annotated[int, typer.Option(
        "--iterations", "-n", help="Gibbs sweeps over all purchases.")] = 200,
    seed: Annotated[int, typer.Option(
        help="Random seed: the same seed gives the same model.")] = 0,
    users_shown: Annotated[int, typer.Option(
        min=0, help="Customers whose profile and recommendations are printed.")] = 3,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No status or progress on stderr.")] = False,
) -> None:
    """Find interests in the bundled UCI Online Retail purchases, print and save them.

    Prepares the purchases, fits LDA with customers as documents and products as words,
    prints each interest's top products, a few customers' interests and recommendations
    (products they have not bought yet), and writes the prepared folder, `topics.parquet`,
    `user_topics.parquet`, `recommendations.parquet`, the fitted model (load it with
    `gibbslda.LDA.load`) and `report.html` into the output folder.
    """
    import polars as pl
    from rich.console import Console

    from gibbslda import LDA, _files, io, preprocess
    from gibbslda.data import online_retail_dir

    out, err = Console(highlight=False), Console(stderr=True, highlight=False)
    show = err.is_terminal and not quiet
    # a bad setting fails before anything is written
    model = LDA(topics, n_iter=iterations, random_state=seed).check_params()
    # what is not ours is refused before any work: the folder, then the two inside it
    _files.check_folder(output, is_ours=_is_demo_output, kind="a gibbslda demo folder")
    preprocess.check_target(output / "prepared")
    io.check_target(output / "model")
    data = online_retail_dir()
    items = pl.read_parquet(data / "items.parquet")
    prepared = preprocess.prepare(data / "interactions.parquet", event="event",
                                  timestamp="timestamp",
                                  weights={"purchase": 1, "return": 0}, cap=None,
                                  labels=items.select("item_id", "title"))
    output.mkdir(parents=True, exist_ok=True)
    preprocess.write_prepared(prepared, output / "prepared")
    model = _fit(model, prepared.corpus("train"), err, show=show)
    ranked = _rank(model, items)
    paths = [output / "prepared", *_write(output, model, ranked)]

    _print_summary(out, model)
    _print_topics(out, model, ranked)
    _print_profiles(out, model, ranked, users_shown)
    out.print("\n[bold]Wrote[/bold]")
    for path in paths:
        out.print(f"  {_escape(str(path))}", soft_wrap=True)


def _rank(model, items) -> _Ranked:
    """Top products of every interest and top new products of every customer."""
    import numpy as np
    import polars as pl

    from gibbslda.profiles import name_topics
    from gibbslda.topn import top_n

    titles = (pl.DataFrame({"item_id": pl.Series(model.item_ids_, dtype=pl.String)})
              .join(items.select("item_id", "title"), on="item_id", how="left",
                    maintain_order="left")
              .get_column("title").fill_null("").to_numpy())
    best, weights = top_n(np.eye(model.n_topics), model.topic_word_, TOP_ITEMS)
    bought = (model.corpus_.indptr, model.corpus_.words)  # repeats are harmless
    recs, scores = top_n(model.doc_topic_, model.topic_word_, TOP_ITEMS, exclude=bought)
    return _Ranked(titles, name_topics(model.topic_word_, titles, n=1), best, weights, recs,
                   scores)


_OUTPUTS = {"prepared", "model", "topics.parquet", "user_topics.parquet",
            "recommendations.parquet", "report.html"}


def _is_demo_output(folder: Path) -> bool:
    """A folder holding only what the demo writes (an earlier demo's output)."""
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")} <= _OUTPUTS


def _write(output: Path, model, ranked: _Ranked) -> list[Path]:
    """Write the three Parquet files, the model folder and the report; return their
    paths."""
    import polars as pl

    from gibbslda import io
    from gibbslda.cli.output import write_table
    from gibbslda.profiles import user_topics
    from gibbslda.report import write_report

    frames = {
        "topics.parquet": _topic_frame(model, ranked),
        "user_topics.parquet": user_topics(model),
        "recommendations.parquet": _recommendation_frame(model, ranked),
    }
    for name, frame in frames.items():
        write_table(frame, output / name)
    labels = pl.DataFrame({"item_id": pl.Series(model.item_ids_, dtype=pl.String),
                           "label": pl.Series(ranked.titles, dtype=pl.String)})
    io.save(model, output / "model", extra={"labels.parquet": labels})
    write_report(model, output / "report.html", item_labels=list(ranked.titles),
                 title="Online Retail demo")
    return [*(output / name for name in frames), output / "model", output / "report.html"]


def _fit(model, corpus, err, *, show: bool):
    """Fit with a kernel-compiling status and the live training line on stderr."""
    from gibbslda.cli.progress import TrainingDisplay, compile_kernels

    compile_kernels(err, show)
    if show:
        err.print(f"Fitting {model.n_topics} interests to {corpus.n_tokens:,} purchases by "
                  f"{corpus.n_users:,} customers")
    with TrainingDisplay(err, show=show) as display:
        return model.fit(corpus, callback=display)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _label(ranked: _Ranked, k: int) -> str:
    """An interest's name for people: its number and its heaviest title."""
    return f"#{k} {ranked.names[k].capitalize()}"


def _print_summary(out, model) -> None:
    corpus, loglik = model.corpus_, model.loglik_["loglik"][-1]
    out.print(f"[bold]{model.n_topics} interests[/bold] in {corpus.n_tokens:,} purchases "
              f"by {corpus.n_users:,} customers of {corpus.n_items:,} products "
              f"({model.n_iter_} sweeps, {model.seconds_:.1f} s; "
              f"log-likelihood per purchase {loglik:.3f})", soft_wrap=True)


def _print_topics(out, model, ranked: _Ranked) -> None:
    from rich import box
    from rich.table import Table

    shares = model.n_k_ / model.n_k_.sum()
    for k in sorted(range(model.n_topics), key=lambda k: -shares[k]):
        table = Table(title=f"Interest #{k}: {shares[k]:.1%} of purchases",
                      title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("rank", justify="right")
        table.add_column("item")
        table.add_column("title")
        table.add_column("weight", justify="right")
        for rank in range(min(SHOWN_ITEMS, ranked.best.shape[1])):
            w = ranked.best[k, rank]
            table.add_row(str(rank + 1), _escape(str(model.item_ids_[w])),
                          _escape(ranked.titles[w]), f"{ranked.weights[k, rank]:.2%}")
        out.print(table)


def _print_profiles(out, model, ranked: _Ranked, n_users: int) -> None:
    import numpy as np

    from gibbslda.topn import top_k

    lengths, titles = model.corpus_.lengths, ranked.titles
    shown = np.flatnonzero(lengths >= MIN_SHOWN_HISTORY)[:n_users]
    theta, (indptr, indices, counts) = model.doc_topic_, model.corpus_.counts()
    for d in shown:
        lines = [f"\n[bold]Customer {_escape(str(model.user_ids_[d]))}[/bold]: "
                 f"{lengths[d]:,} purchases of {indptr[d + 1] - indptr[d]:,} products"]
        top = top_k(theta[d:d + 1], min(3, model.n_topics))[0]
        lines.append("  interests: " + ", ".join(
            f"{_percent(theta[d, k])} {_escape(_label(ranked, k))}" for k in top))
        row = slice(indptr[d], indptr[d + 1])
        often = top_k(counts[row][None, :], 3)[0]
        often = indices[row][often[often >= 0]]  # -1 pads a customer with fewer products
        lines.append("  buys most: " + ", ".join(_escape(titles[w].strip()) for w in often))
        lines.append("  recommended:")
        recs = [(w, s) for w, s in zip(ranked.recs[d], ranked.scores[d]) if w >= 0]
        for rank, (w, score) in enumerate(recs[:SHOWN_RECS], start=1):
            lines.append(f"    {rank}. {_escape(titles[w].strip())} "
                         f"({_escape(str(model.item_ids_[w]))}, score {score:.4f})")
        out.print("\n".join(lines), soft_wrap=True)


def _percent(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 else "<1%"


def _topic_frame(model, ranked: _Ranked):
    import numpy as np
    import polars as pl

    k, n = ranked.best.shape
    best = ranked.best.ravel()
    return pl.DataFrame({
        "topic": np.repeat(np.arange(k, dtype=np.int32), n),
        "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), k),
        "item_id": pl.Series(model.item_ids_[best], dtype=pl.String),
        "title": pl.Series(ranked.titles[best], dtype=pl.String),
        "weight": ranked.weights.ravel(),
    })


def _recommendation_frame(model, ranked: _Ranked):
    import numpy as np
    import polars as pl

    n_users, n = ranked.recs.shape
    keep = (ranked.recs >= 0).ravel()  # -1 marks a customer with fewer candidates than n
    items = ranked.recs.ravel()[keep]
    return pl.DataFrame({
        "user_id": pl.Series(np.repeat(model.user_ids_, n)[keep], dtype=pl.String),
        "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), n_users)[keep],
        "item_id": pl.Series(model.item_ids_[items], dtype=pl.String),
        "title": pl.Series(ranked.titles[items], dtype=pl.String),
        "score": ranked.scores.ravel()[keep],
    })
