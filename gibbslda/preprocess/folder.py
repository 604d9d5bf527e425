"""Prepared data and its folder: :class:`Prepared`, :func:`write_prepared`, :func:`read_prepared`.

A prepared folder holds ``tokens.parquet``, ``users.parquet``, ``words.parquet`` and
``prepared.json`` (format, schema version, gibbslda version, summary); it is written
atomically and refused on read when its schema version is unknown or its files disagree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from gibbslda import _files
from gibbslda.corpus import Corpus
from gibbslda.preprocess.readers import _one_line

SCHEMA_VERSION = 1
FOLDER_FORMAT = "gibbslda-prepared"
_FILES = ("prepared.json", "tokens.parquet", "users.parquet", "words.parquet")


@dataclass(frozen=True, eq=False)
class Prepared:
    """Weighted (user, word) token counts, their id maps and split parts.

    Attributes
    ----------
    tokens : polars.DataFrame (n_pairs rows)  ``user`` and ``word`` indices (Int32),
        ``count`` tokens (Int64, > 0), ``first_seen`` and ``last_seen`` (Datetime[us], the
        pair's first and latest event, null without timestamps; folders written before
        ``last_seen`` existed have ``first_seen`` only) and ``part`` (the name of its
        part); sorted by user, word.
    users : polars.DataFrame (n_users rows)  ``user`` index and original ``user_id``
        (its pseudonym when prepared with ``pseudonym_key``; users then in pseudonym order).
    words : polars.DataFrame (n_words rows)  ``word`` index, original ``word_id`` (an item
        or a category), ``label`` (null when unknown), ``n_users`` and ``n_tokens``.
    summary : dict  what was read, dropped and kept (the JSON summary of the folder).
    """

    tokens: pl.DataFrame
    users: pl.DataFrame
    words: pl.DataFrame
    summary: dict

    @property
    def parts(self) -> tuple[str, ...]:
        """Names of the parts, training part first."""
        return tuple(self.summary["parts"])

    def corpus(self, part: str = "train") -> Corpus:
        """The tokens of one part as a Corpus indexed by the full word vocabulary.

        Users are those with tokens in the part, in index order (so ``"observed"`` and
        ``"hidden"`` list the same users); ``item_ids`` are all words, so every part
        shares the training corpus's vocabulary. When the log had times, each token's
        time (``Corpus.times``) is its pair's ``last_seen`` (``first_seen`` in older
        folders): times per (user, word) pair, not per event.

        Parameters
        ----------
        part : str
            One of :attr:`parts`.

        Returns
        -------
        Corpus
            ``indptr`` int64 (n_users_in_part + 1,), ``words`` int32 (tokens in the part,),
            grouped by user and ordered by word index within a user; ``times`` int64
            microseconds or None.
        """
        if part not in self.parts:
            raise ValueError(f"no part {part!r}: this preparation has parts {list(self.parts)}")
        t = self.tokens.filter(pl.col("part") == part)
        users, inverse = np.unique(t.get_column("user").to_numpy(), return_inverse=True)
        counts = t.get_column("count").to_numpy()
        indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(inverse, weights=counts, minlength=users.shape[0]).astype(np.int64),
                  out=indptr[1:])
        words = np.repeat(t.get_column("word").to_numpy().astype(np.int32), counts)
        seen = t.get_column("last_seen" if "last_seen" in t.columns else "first_seen")
        times = (None if seen.null_count() or t.height == 0 else
                 np.repeat(seen.cast(pl.Int64).to_numpy(), counts))
        return Corpus(indptr, np.ascontiguousarray(words),
                      self.users.get_column("user_id").to_numpy()[users],
                      self.words.get_column("word_id").to_numpy(), times=times)

    def corpora(self) -> dict[str, Corpus]:
        """Every part as a Corpus, keyed by part name (see :meth:`corpus`)."""
        return {part: self.corpus(part) for part in self.parts}


def check_target(folder) -> None:
    """Raise ValueError unless :func:`write_prepared` may write ``folder`` (absent, empty
    or a prepared folder): call it before the work whose result goes there."""
    _files.check_folder(folder, is_ours=_is_prepared, kind=_KIND)


def write_prepared(prepared: Prepared, folder) -> Path:
    """Write ``prepared`` to the folder ``folder`` atomically and return its path.

    Files: ``tokens.parquet``, ``users.parquet``, ``words.parquet`` (see
    :class:`Prepared`) and ``prepared.json`` (format, schema version, gibbslda version,
    summary). Everything is written to a temporary folder beside ``folder``, fsync'd and
    renamed into place (:mod:`gibbslda._files`), so a reader never sees half a folder. An
    existing prepared folder (or an empty one) is replaced; any other existing path is
    refused with ValueError before anything is written.

    Parameters
    ----------
    prepared : Prepared
    folder : str | os.PathLike

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(prepared, Prepared):
        raise TypeError(f"expected a Prepared (from prepare), got {type(prepared).__name__}")
    meta = {"format": FOLDER_FORMAT, "schema_version": SCHEMA_VERSION,
            "gibbslda_version": _version(), "summary": prepared.summary}

    def write(tmp: Path) -> None:
        for name in ("tokens", "users", "words"):
            getattr(prepared, name).write_parquet(tmp / f"{name}.parquet", compression="zstd",
                                                  compression_level=1)
        (tmp / _FILES[0]).write_text(json.dumps(meta, indent=1) + "\n")

    return _files.write_folder(folder, write, is_ours=_is_prepared, kind=_KIND)


def read_prepared(folder) -> Prepared:
    """Read a folder written by :func:`write_prepared`.

    Parameters
    ----------
    folder : str | os.PathLike

    Returns
    -------
    Prepared
        Use ``.corpus("train")`` (and the other :attr:`Prepared.parts`) for corpora.

    Raises
    ------
    ValueError
        The folder is missing, is not a prepared folder, comes from an unknown schema
        version, or its files are damaged or disagree with each other.
    """
    folder = Path(folder)
    try:
        _files.recover(folder, is_ours=_is_prepared)
    except OSError:  # a reader without write access reads what is there
        pass
    meta_file = folder / _FILES[0]
    if not meta_file.is_file():
        raise ValueError(f"{folder} is not a prepared folder (no {_FILES[0]}): write one "
                         "with write_prepared")
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_file} is not valid JSON ({exc}); prepare the data again") from exc
    if not isinstance(meta, dict) or meta.get("format") != FOLDER_FORMAT:
        raise ValueError(f"{meta_file} is not a gibbslda prepared-data file")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{folder} has schema version {meta.get('schema_version')!r}; this "
                         f"gibbslda reads version {SCHEMA_VERSION}: prepare the data again")
    frames = {}
    for name in ("tokens", "users", "words"):
        try:
            frames[name] = pl.read_parquet(folder / f"{name}.parquet")
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise ValueError(f"{folder / (name + '.parquet')} cannot be read "
                             f"({_one_line(exc)}); prepare the data again") from exc
    tokens, users, words = frames["tokens"], frames["users"], frames["words"]
    summary = meta.get("summary") or {}
    parts = set(tokens.get_column("part").unique()) if "part" in tokens.columns else None
    if (not {"user", "word", "count", "first_seen", "part"} <= set(tokens.columns)
            or "user_id" not in users.columns or "word_id" not in words.columns
            or not isinstance(summary.get("parts"), dict) or not parts <= set(summary["parts"])
            or (tokens.height and (tokens["user"].max() >= users.height
                                   or tokens["word"].max() >= words.height))):
        raise ValueError(f"{folder}: tokens, id maps and summary disagree; the folder is "
                         "damaged: prepare the data again")
    return Prepared(tokens, users, words, summary)


_KIND = "a prepared folder"


def _is_prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a prepared.json that gibbslda wrote (any schema version)."""
    try:
        meta = json.loads((folder / _FILES[0]).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FOLDER_FORMAT


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("gibbslda")
    except PackageNotFoundError:
        return "0+unknown"
