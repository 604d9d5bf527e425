"""``gibbslda report``: one self-contained HTML page about a model."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import Model, output_option
from gibbslda.cli.trends import Format, Freq

EXAMPLE = "Example: `gibbslda report model -o report.html`"


def report(
    model_path: Model,
    output: Annotated[Path, output_option(
        "The HTML file to write.", dir_okay=False)] = Path("report.html"),
    items: Annotated[int, typer.Option(min=1, help="Top items per interest.")] = 10,
    users: Annotated[int, typer.Option(min=0, help="Users in the profile explorer.")] = 200,
    events: Annotated[Optional[Path], typer.Option(
        help="Events file: interest trends from it and a demand forecast section.")] = None,
    freq: Freq = "1w",
    horizon: Annotated[int, typer.Option(min=1, help="Periods forecast.")] = 8,
    format: Format = "generic",
) -> None:
    """Write an HTML report: convergence plots, interest sizes, each interest's top items
    a user-profile explorer, interest trends (when the model has times or --events is
    given) and, with --events, a demand forecast. One file, no network: open it in any
    browser."""
    from gibbslda.cli.common import load_model
    from gibbslda.report import write_report

    model, labels = load_model(model_path)
    frame = None
    if events is not None:
        from gibbslda.cli.trends import read_log

        frame = read_log(model, events, format, None, None, None)["events"]
    write_report(model, output, item_labels=list(labels), n_items=items, n_users=users,
                 events=frame, freq=freq, horizon=horizon,
                 columns={"user": "user", "item": "item", "time": "timestamp"})
    typer.echo(f"wrote {output}")
