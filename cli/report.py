"""``gibbslda report``: one self-contained HTML page about a model."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gibbslda.cli.common import Model, output_option

EXAMPLE = "Example: `gibbslda report model -o report.html`"


def report(
    model_path: Model,
    output: Annotated[Path, output_option(
        "The HTML file to write.", dir_okay=False)] = Path("report.html"),
    items: Annotated[int, typer.Option(min=1, help="Top items per interest.")] = 10,
    users: Annotated[int, typer.Option(min=0, help="Users in the profile explorer.")] = 200,
) -> None:
    """Write an HTML report: convergence plots, interest sizes, each interest's top items
    and a user-profile explorer. One file, no network: open it in any browser."""
    from gibbslda.cli.common import load_model
    from gibbslda.report import write_report

    model, labels = load_model(model_path)
    write_report(model, output, item_labels=list(labels), n_items=items, n_users=users)
    typer.echo(f"wrote {output}")
