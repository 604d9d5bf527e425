"""Tables out: a rich table or JSON on stdout, or a Parquet/CSV/JSON file by suffix."""
from __future__ import annotations

import json
from pathlib import Path

FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json"}


def write_table(frame, path: Path) -> Path:
    """Write a polars frame to ``path``: Parquet, CSV or JSON (records) by its suffix,
    atomically (a temporary file, then a rename)."""
    import os
    import tempfile

    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"cannot tell the format of {path} from its suffix: use .parquet, "
                         ".csv or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        if kind == "parquet":
            frame.write_parquet(tmp)
        elif kind == "csv":
            frame.write_csv(tmp)
        else:
            Path(tmp).write_text(json.dumps(frame.to_dicts(), default=str))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def show_table(frame, *, title: str | None = None, as_json: bool = False, console=None):
    """Print a polars frame on stdout: JSON records with ``as_json``, else a rich table."""
    import typer

    if as_json:
        typer.echo(json.dumps(frame.to_dicts(), default=str))
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(highlight=False)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, dtype in zip(frame.columns, frame.dtypes):
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*(escape(_cell(v)) for v in row))
    console.print(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
