"""What several commands share: loading a model folder with its item labels."""
from __future__ import annotations

from pathlib import Path

LABELS = "labels.parquet"


def load_model(path: Path):
    """The model in ``path`` and its items' labels (an array aligned with ``item_ids_``;
    the item ids themselves when the folder has no labels)."""
    import numpy as np
    import polars as pl

    from gibbslda import LDA, io

    model = LDA.load(path)
    ids = pl.Series("item_id", model.item_ids_).cast(pl.String)
    labels = io.read_extra(path, LABELS)
    if labels is None:
        return model, ids.to_numpy()
    joined = (pl.DataFrame(ids).join(labels.with_columns(pl.col("item_id").cast(pl.String)),
                                     on="item_id", how="left", maintain_order="left"))
    text = joined.get_column("label").fill_null("")
    return model, np.where(text.to_numpy() == "", ids.to_numpy(), text.to_numpy())
