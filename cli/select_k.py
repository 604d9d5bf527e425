"""``gibbslda select-k``: fit several K on one held-out split and compare them."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gibbslda.cli.common import Json, Output, prior, read_source

EXAMPLE = "Example: `gibbslda select-k prepared --ks 10,25,50 --iterations 200`"


def select_k(
    source: Annotated[Path, typer.Argument(help="A prepared folder or an event file.")],
    ks: Annotated[str, typer.Option(help="Numbers of interests to try, comma-separated.")]
        = "10,25,50",
    iterations: Annotated[int, typer.Option("--iterations", "-n", min=1)] = 200,
    alpha: Annotated[str, typer.Option(
        help="A number, or 'auto' (learned, as train does).")] = "auto",
    beta: Annotated[str, typer.Option(
        help="A number, or 'auto' (learned, as train does).")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the split and of every fit.")] = 0,
    test_fraction: Annotated[float, typer.Option(help="Users held out.")] = 0.1,
    output: Output = None,
    as_json: Json = False,
) -> None:
    """Held-out perplexity (document completion), NPMI, UMass and diversity for each K,
    all on the same held-out users and with the same seed."""
    from gibbslda.cli.output import show_table, write_table
    from gibbslda.select import select_k as run

    try:
        values = [int(k) for k in ks.split(",")]
    except ValueError:
        raise ValueError(f"--ks takes comma-separated integers, got {ks!r}") from None
    corpus = read_source(source, "user_id", "item_id")["corpus"]
    table = run(corpus, values, alpha=prior(alpha), beta=prior(beta), n_iter=iterations,
                seed=seed, test_fraction=test_fraction)
    if output is not None:
        write_table(table, output)
        typer.echo(f"wrote {output}")
    else:
        show_table(table, as_json=as_json, title="Choosing the number of interests")
