"""What several commands share: their common options (declared once, as hf's
``_cli_utils.py`` does), loading a model folder with its item labels, reading a training
source, parsing a prior.

Only typer is imported at import time: the command modules import this one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

LABELS = "labels.parquet"


def output_option(help: str = "Write the table (.parquet, .csv or .json).", **kwargs):
    """The ``--output``/``-o`` option; ``help`` and click's path checks (``file_okay``,
    ``dir_okay``) are the command's own."""
    return typer.Option("--output", "-o", help=help, **kwargs)


def json_option(help: str = "JSON records on stdout."):
    """The ``--json`` flag; ``help`` says what the command prints as JSON."""
    return typer.Option("--json", help=help)


Model = Annotated[Path, typer.Argument(metavar="MODEL", help="Model folder.")]
Json = Annotated[bool, json_option()]
Output = Annotated[Optional[Path], output_option()]


def load_model(path: Path):
    """The model in ``path`` and its items' names (an array aligned with ``item_ids_``:
    each item's label from the folder's labels, else its id)."""
    from gibbslda import LDA, io
    from gibbslda.profiles import item_names

    model = LDA.load(path)
    return model, item_names(model, io.read_extra(path, LABELS))


def prior(text: str):
    """A prior option: a number, or 'auto' (learned)."""
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"a prior must be a number or 'auto', got {text!r}") from None


def read_source(source: Path, user: str, item: str) -> dict:
    """The training corpus, item labels and held-out parts of a prepared folder, or the
    corpus of an event file (one token per row)."""
    from gibbslda import preprocess

    if source.is_dir():
        prepared = preprocess.read_prepared(source)
        words = prepared.words
        labels = None
        if words.get_column("label").null_count() < words.height:
            labels = words.select(item_id=words["word_id"].cast(str),
                                  label=words["label"].fill_null(""))
        heldout = None
        if {"observed", "hidden"} <= set(prepared.parts):
            heldout = (prepared.corpus("observed"), prepared.corpus("hidden"))
        return {"corpus": prepared.corpus("train"), "labels": labels, "heldout": heldout}
    if not source.exists():
        raise FileNotFoundError(2, "no such file or folder", str(source))
    prepared = preprocess.prepare(source, user=user, item=item)
    return {"corpus": prepared.corpus("train"), "labels": None, "heldout": None}
