"""``gibbslda info``: what a model folder holds: data, settings, priors, likelihoods."""
from __future__ import annotations

from typing import Annotated

import typer

from gibbslda.cli.common import Model, json_option

EXAMPLE = "Example: `gibbslda info model --json`"


def info(
    model_path: Model,
    as_json: Annotated[bool, json_option("JSON on stdout.")] = False,
) -> None:
    """What was trained, on what, for how long, with which priors, and how well."""
    import json

    import numpy as np

    from gibbslda import LDA

    model = LDA.load(model_path)
    meta = json.loads((model_path / "model.json").read_text())
    history = model.loglik_
    heldout = history["heldout"][np.isfinite(history["heldout"])]
    facts = {
        "model": str(model_path), "gibbslda_version": meta.get("gibbslda_version"),
        "users": int(model.corpus_.n_users), "items": int(model.corpus_.n_items),
        "tokens": int(model.corpus_.n_tokens), "topics": int(model.n_topics),
        "sweeps": int(model.n_iter_), "target_sweeps": int(model.n_iter),
        "seconds": round(float(model.seconds_), 3), "sampler": model.state_.sampler,
        "shards": int(model.n_shards), "seed": meta["fitted"]["seed_entropy"],
        "alpha": model.alpha if isinstance(model.alpha, str) else "fixed",
        "alpha_min": float(model.alpha_.min()), "alpha_max": float(model.alpha_.max()),
        "alpha_sum": float(model.alpha_.sum()), "beta": float(model.beta_),
        "loglik_per_token": float(history["loglik"][-1]),
        "heldout_per_token": float(heldout[-1]) if heldout.size else None,
    }
    if as_json:
        typer.echo(json.dumps(facts))
        return
    width = max(map(len, facts))
    for key, value in facts.items():
        typer.echo(f"{key:<{width}}  {value if value is not None else '-'}")
