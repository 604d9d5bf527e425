"""Small real data shipped with gibbslda (see README.md in this folder for schemas and licences).

``online_retail``: the UCI "Online Retail" log (UK gift-ware web shop, 2010-12 .. 2011-12),
product items only, CC BY 4.0 (Chen, Sain & Guo 2012). Read it with polars::

    import polars as pl
    from gibbslda.data import online_retail_dir

    events = pl.read_parquet(online_retail_dir() / "interactions.parquet")
    items = pl.read_parquet(online_retail_dir() / "items.parquet")
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["online_retail_dir"]


def online_retail_dir() -> Path:
    """The folder holding ``interactions.parquet``, ``items.parquet`` and ``PROVENANCE.md``."""
    return Path(__file__).parent / "online_retail"
