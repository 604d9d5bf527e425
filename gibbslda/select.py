"""Choosing the number of interests K: one held-out split, one model per K.

Above the estimator (it fits models) and beside :mod:`gibbslda.evaluate`, whose scores it
tabulates.
"""
from __future__ import annotations

import time

import numpy as np

from gibbslda import _validate
from gibbslda.coherence import coherence_scores, diversity
from gibbslda.corpus import as_corpus
from gibbslda.evaluate import completion_log_likelihood, perplexity, split_users
from gibbslda.model import LDA


def select_k(corpus, ks, *, alpha="auto", beta="auto", n_iter: int = 200, seed: int = 0,
             test_fraction: float = 0.1, hidden_fraction: float = 0.5, top_n: int = 10,
             reference=None, sampler: str = "auto", callback=None):
    """Fit one model per K on one fixed held-out split and tabulate how each does.

    The users are split once (:func:`split_users` with ``seed``); every K trains on the
    same training users with the same seed and is scored on the same held-out users.
    Columns: ``k``, ``heldout_loglik`` (document completion, per hidden token),
    ``perplexity``, ``npmi`` and ``umass`` (mean over topics of the top ``top_n`` items'
    coherence against ``reference``, default the training users), ``diversity``,
    ``train_loglik`` (log p(w, z) per token) and ``seconds`` (training). ``callback(k,
    model)`` is called after each fit. Returns a polars DataFrame, one row per K.

    ``alpha`` and ``beta`` are :class:`~gibbslda.model.LDA`'s: by default both are learned,
    as ``LDA()`` and ``gibbslda train`` learn them, so K is chosen for the model that will
    be fitted; numbers fix them.
    """
    import polars as pl

    ks = [_validate.check_int(f"ks[{i}]", k, minimum=1) for i, k in enumerate(ks)]
    split = split_users(as_corpus(corpus), test_fraction=test_fraction,
                        hidden_fraction=hidden_fraction, seed=seed)
    reference = split.train if reference is None else reference
    rows = []
    for k in ks:
        model = LDA(k, alpha=alpha, beta=beta, n_iter=n_iter, random_state=seed,
                    sampler=sampler)
        started = time.perf_counter()
        model.fit(split.train)
        seconds = time.perf_counter() - started
        heldout = completion_log_likelihood(model, split.observed, split.hidden)
        phi = model.topic_word_
        scores = coherence_scores(phi, reference, n=top_n)
        rows.append({
            "k": k, "heldout_loglik": heldout, "perplexity": perplexity(heldout),
            "npmi": float(np.mean(scores["npmi"])),
            "umass": float(np.nanmean(scores["umass"])),
            "diversity": diversity(phi, n=top_n),
            "train_loglik": float(model.loglik_["loglik"][-1]), "seconds": seconds})
        if callback is not None:
            callback(k, model)
    return pl.DataFrame(rows)
