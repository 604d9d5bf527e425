"""Tables out: a rich table or JSON on stdout, or a Parquet/CSV/JSON file by suffix."""
from __future__ import annotations

import json
from pathlib import Path

FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json"}
_UNLIMITED = 10 ** 9  # the width a piped table may take: as wide as its values


def write_table(frame, path: Path) -> Path:
    """Write a polars frame to ``path``: Parquet, CSV or JSON (records) by its suffix,
    atomically (:func:`gibbslda._files.write_file`: a folder there is refused)."""
    from gibbslda import _files

    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"cannot tell the format of {path} from its suffix: use .parquet, "
                         ".csv or .json")

    def write(tmp: Path) -> None:
        if kind == "parquet":
            frame.write_parquet(tmp)
        elif kind == "csv":
            frame.write_csv(tmp)
        else:
            tmp.write_text(json.dumps(frame.to_dicts(), default=str))

    return _files.write_file(path, write)


def show_table(frame, *, title: str | None = None, as_json: bool = False, console=None):
    """Print a polars frame on stdout: JSON records with ``as_json``, else a rich table.

    On a terminal the table fits its width and floats show 4 significant digits. Piped to
    a file or another program (``gibbslda evaluate ... | less``), nothing is cut: the
    table is as wide as its values, floats are in full (``repr``: they read back
    exactly) and lines carry no trailing blanks.
    """
    import typer

    if as_json:
        typer.echo(json.dumps(frame.to_dicts(), default=str))
        return
    from rich import box
    from rich.cells import cell_len
    from rich.console import Console
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    console = console or Console(highlight=False)
    full = not console.is_terminal
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, dtype in zip(frame.columns, frame.dtypes):
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*(escape(_cell(v, full=full)) for v in row))
    if not full:
        console.print(table)
        return
    width = Measurement.get(console, console.options.update_width(_UNLIMITED), table).maximum
    wide = Console(highlight=False, width=max(width, cell_len(title or "")), color_system=None)
    with wide.capture() as captured:
        wide.print(table)
    typer.echo("\n".join(line.rstrip() for line in captured.get().splitlines()),
               file=console.file)


def _cell(value, *, full: bool = False) -> str:
    """A value as table text: floats to 4 significant digits, or in full (repr)."""
    if isinstance(value, float):
        return repr(value) if full else f"{value:.4g}"
    return "" if value is None else str(value)
