"""Incremental updates: new events of known and new users and items into a fitted chain.

Collapsed Gibbs keeps every token's topic, so a fitted model can take new events without
training again (:meth:`gibbslda.LDA.update` calls :func:`update`):

1. *Decay* (optional) thins the old tokens: each is kept with a probability and the others
   are removed from the corpus (see below).
2. *Growth*: the update's users and items are matched to the model's by their original ids;
   unknown ones are appended (new rows of the user and item tables, new item x topic rows);
   events of known users join their histories. Tokens stay grouped by user and ordered by
   item within a user, as in a :class:`gibbslda.corpus.Corpus`.
3. *Fold-in*: each new token's topic is drawn from the collapsed conditional given every
   token placed so far, (n_dk + alpha_k)(n_wk + beta) / (n_k + V beta), counted at once
   (:func:`gibbslda._kernels.update.fold_in_tokens`).
4. *Sweeps*: ``n_iter`` Gibbs sweeps over the new tokens (``scope="new"``, the default:
   the touched users' old tokens keep their topics and count in n_dk as they are; or
   ``scope="users"``: every token of the users the update touches), and over every token
   of a ``refresh`` share of the other users, drawn at random, against the item and topic
   counts of the whole log, which stay exact: tokens outside the sweep keep their topics
   and their counts. Each sweep is a Gibbs scan over a subset of the tokens, so the chain
   keeps the posterior invariant; the cost grows with the new events (with the touched
   users' tokens for "users"), plus one O(N) copy of the token arrays to grow them.

Samplers: "dense", "sparse" and "mh" sweep the touched users with their own kernel on one
stream (the serial chain, whatever ``n_shards``). "warp" keeps no item x topic counts (each
item pass rebuilds them from every token), so a pass restricted to some users is not
defined for it: its updates sweep with the exact "sparse" kernel on counts built from z,
then the warp layout is rebuilt; the chain stays a warp chain. "vector" sweeps with the
"dense" kernel (the same conditional, in float64) and stays a vector chain.

Decay and the posterior: the kernels count whole tokens, so counts cannot be fractional.
``decay`` *thins* instead: an old token survives with probability p (a factor per update,
or 2**(-age / half_life) with age measured from the token's time, or from the last decay,
to the newest event of the update), and a removed token is gone for good. The model is
then the exact LDA posterior of the surviving tokens plus the new ones; in expectation
each old token weighs 2**(-age / half_life), as in OLDA's weighted counts (AlSumait et al.
2008) and streaming Gibbs (Gao et al. 2016), with binomial noise instead of fractions.
Consequences: faded tokens leave users' histories (their theta follows recent events, a
user whose tokens all fade gets the prior mean, and their faded items are no longer "seen"),
items and users stay in the tables even when no token of theirs is left, and p(w, z) is
that of the thinned corpus.

Randomness: every draw (thinning, refresh sample, fold-in, sweeps) comes from the chain's
first stream ``rng[0]``, which is saved with the model, so the same seed and the same
updates give the same model bit for bit, and save / load / update / resume compose.

References
----------
AlSumait, Barbara & Domeniconi (2008), "On-line LDA: adaptive topic models for mining text
streams with applications to topic detection and tracking", ICDM.
Gao, Song, Liu, Wen & Wang (2016), "Streaming Gibbs sampling for LDA model", arXiv
1601.01142.
"""
from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from gibbslda import _kernels, _validate, priors, sampler as _sampler
from gibbslda._kernels import update as _update_kernels
from gibbslda.corpus import Corpus, as_corpus
from gibbslda.errors import ModelFileError

DEFAULT_SWEEPS = 20  # sweeps over the touched users when LDA.update(n_iter=None)
_WORK = {"warp": "sparse", "vector": "dense"}  # the kernel sweeping a subset of users


@dataclass(frozen=True)
class UpdateReport:
    """What one update did (``LDA.last_update_``).

    ``topics_before`` and ``topics_after`` (int64, K) are the tokens of each interest
    before and after (``n_k``); their difference is how much each interest grew or shrank.
    """

    users_added: int
    items_added: int
    tokens_added: int
    tokens_faded: int
    users_swept: int
    tokens_swept: int
    sweeps: int
    seconds: float
    topics_before: np.ndarray
    topics_after: np.ndarray


def update(model, new, *, n_iter: int | None = None, decay=None, refresh: float = 0.0,
           scope: str = "new", callback=None, info=None) -> UpdateReport:
    """Add the events ``new`` to the fitted ``model`` in place (see the module docstring).

    Parameters
    ----------
    model : gibbslda.LDA, fitted.
    new : Corpus, or a polars / pandas frame with columns ``user_id``, ``item_id`` and
        optionally ``weight`` (repeat counts) and ``time``; ids as the model's (original
        ids, the same type: integers or strings).
    n_iter : int >= 0, default ``DEFAULT_SWEEPS`` (20)
        Sweeps after fold-in (over what ``scope`` and ``refresh`` say).
    decay : None, float in (0, 1], or a half-life (``datetime.timedelta``,
        ``numpy.timedelta64``, ``pandas.Timedelta``)
        None keeps every old token; a factor keeps each with that probability; a half-life
        keeps each with probability 2**(-age / half_life) (needs the model's and the
        update's event times, ``Corpus.times``).
    refresh : float in [0, 1], default 0
        Share of the untouched users whose tokens the sweeps also resample.
    scope : {"new", "users"}, default "new"
        What the sweeps resample of a user the update touches: only the new tokens (the
        old ones keep their topics and still count in n_dk), so the cost follows the new
        events even where every user is active every day; or all their tokens.
    callback : callable(info) or None
        Called after each sweep with ``info(iteration, n_iter, seconds, tokens_per_second,
        None)`` (``LDA.update`` passes :class:`gibbslda.model.SweepInfo`: the estimator's
        one progress record, which this module cannot import without a circle); returning
        False stops the sweeps there (the model is consistent and updated).

    Returns
    -------
    UpdateReport (also set as ``model.last_update_``).

    Nothing of the model changes until every argument has been checked and the new chain
    is built: a bad update raises (ValueError / TypeError, one line) and leaves it as it was.
    """
    state = model._check_fitted()
    model._validate()
    model._check_settings()
    n_iter = DEFAULT_SWEEPS if n_iter is None else _validate.check_int("n_iter", n_iter,
                                                                       minimum=0)
    refresh = _share(refresh)
    _validate.check_choice("scope", scope, ("users", "new"))
    if callback is not None and info is None:
        raise TypeError("a callback needs info, the record class it receives (LDA.update "
                        "passes SweepInfo)")
    half_life, factor = _decay(decay)
    warm_up()
    started = time.perf_counter()
    old, batch = model.corpus_, _as_update(new)
    old_times, new_times = _times(old, batch, half_life)
    rng = state.rng.copy()
    keep, decayed_to = _thin(state, old_times, new_times, (half_life, factor),
                             model.__dict__.get("decayed_to_"), rng[0])
    grown = _grow(state, old, batch, keep, old_times, new_times)
    swept = _swept_users(grown, state.indptr.shape[0] - 1, refresh, rng[0])
    sub = _gather(grown, swept, scope)
    _fold_in(state, grown, sub, rng[0])
    work = _sampler.restore_state(
        grown["indptr"], grown["words"], grown["z"], state.n_topics, len(grown["items"]),
        alpha=state.alpha.copy(), beta=state.beta, rng=rng,
        sampler=_WORK.get(state.sampler, state.sampler), n_shards=state.n_shards,
        mh_steps=state.mh_steps)
    n_swept = int(np.sum(sub[2][:, 1] - sub[2][:, 0]))
    done = _sweeps(model, work, sub, n_iter, (callback, info, started, n_swept))
    final = work if work.sampler == state.sampler else _sampler.restore_state(
        work.indptr, work.words, work.z, work.n_topics, work.n_items, alpha=work.alpha,
        beta=work.beta, rng=work.rng, sampler=state.sampler, n_shards=state.n_shards,
        mh_steps=state.mh_steps)
    report = UpdateReport(
        users_added=len(grown["users"]) - old.n_users,
        items_added=len(grown["items"]) - old.n_items, tokens_added=batch.n_tokens,
        tokens_faded=0 if keep is None else int(keep.size - np.count_nonzero(keep)),
        users_swept=int(swept.shape[0]), tokens_swept=n_swept, sweeps=done,
        seconds=time.perf_counter() - started, topics_before=state.n_k.copy(),
        topics_after=final.n_k.copy())
    corpus = Corpus(grown["indptr"], final.words, grown["users"], grown["items"],
                    old.n_dropped_users, times=grown["times"])
    model.state_, model.corpus_, model._heldout = final, corpus, None
    for name in ("posterior_", "ranking_"):  # of the chain before: other users and items
        if name in model.__dict__:
            setattr(model, name, None)
    model.__dict__.pop("_ranking_parts", None)  # rankers' split of the old corpus
    model.n_updates_ = int(model.__dict__.get("n_updates_", 0)) + 1
    model.decayed_to_ = decayed_to
    model.last_update_ = report
    return report


def warm_up() -> None:
    """Compile (or load from numba's cache) this module's kernels on a tiny input; the
    sweeps' kernels are :func:`gibbslda.sampler.warm_up`'s. :func:`update` calls it."""
    rng = np.array([1, 2, 3, 4], dtype=np.uint64)
    _update_kernels.uniforms(rng, np.int64(1))
    _update_kernels.fold_in_tokens(
        np.array([0, 1], dtype=np.int64), np.zeros(1, dtype=np.int32),
        np.zeros(1, dtype=np.int32), np.zeros((1, 2), dtype=np.int32),
        np.zeros(2, dtype=np.int64), np.full(2, 0.5), 0.1, 0.1, rng)


# -- saved with the model ------------------------------------------------------------
def fitted_fields(model) -> dict:
    """What a model folder keeps of the updates (model.json, ``fitted``): their number
    and the time the last half-life decay thinned to (microseconds), when there are any."""
    fields = {}
    if model.__dict__.get("n_updates_"):
        fields["n_updates"] = int(model.n_updates_)
    if model.__dict__.get("decayed_to_") is not None:
        fields["decayed_to"] = int(model.decayed_to_)
    return fields


def restore_fields(model, fitted: dict, path) -> None:
    """Set ``n_updates_`` and ``decayed_to_`` of a model loaded from the folder ``path``
    from its ``fitted`` (ModelFileError when they are not integers)."""
    n_updates, decayed_to = fitted.get("n_updates", 0), fitted.get("decayed_to")
    for name, value in (("n_updates", n_updates), ("decayed_to", decayed_to)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ModelFileError(f"{path}/model.json: fitted {name} is {value!r}, not an "
                                 "integer; the folder is damaged, save the model again")
    model.n_updates_, model.decayed_to_ = n_updates, decayed_to


# -- checks ---------------------------------------------------------------------------
def _share(refresh) -> float:
    if isinstance(refresh, bool) or not isinstance(refresh, (int, float, np.floating,
                                                              np.integer)):
        raise TypeError(f"refresh must be a number in [0, 1], got {type(refresh).__name__}")
    if not 0.0 <= float(refresh) <= 1.0:
        raise ValueError(f"refresh must be in [0, 1] (the share of untouched users to "
                         f"sweep too), got {refresh}")
    return float(refresh)


def _decay(decay):
    """``(half_life_micros, factor)``: at most one of them not None."""
    if decay is None:
        return None, None
    if isinstance(decay, (datetime.timedelta, np.timedelta64)):
        micros = int(pd.Timedelta(decay) // pd.Timedelta(microseconds=1))
        if micros <= 0:
            raise ValueError(f"decay as a half-life must be positive, got {decay}")
        return micros, None
    if isinstance(decay, bool) or not isinstance(decay, (int, float, np.integer,
                                                         np.floating)):
        raise TypeError(f"decay must be None, a factor in (0, 1] or a half-life "
                        f"(datetime.timedelta), got {type(decay).__name__}")
    if not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"decay must be a factor in (0, 1] (the share of old tokens an "
                         f"update keeps) or a half-life (datetime.timedelta), got {decay}")
    return None, float(decay)


def _as_update(new) -> Corpus:
    """The update's events as a Corpus keyed by original ids."""
    if isinstance(new, (pl.DataFrame, pl.LazyFrame, pd.DataFrame)):
        columns = new.collect_schema().names() if isinstance(new, pl.LazyFrame) \
            else list(new.columns)
        missing = [name for name in ("user_id", "item_id") if name not in columns]
        if missing:
            raise ValueError(f"an update frame needs columns user_id and item_id (weight "
                             f"and time optional); it lacks {missing} and has {columns}: "
                             "rename yours, or build a Corpus with Corpus.from_frame")
        extra = {name: name for name in ("weight", "time") if name in columns}
        corpus = Corpus.from_frame(new, user="user_id", item="item_id", **extra)
    else:
        corpus = as_corpus(new)
    if corpus.n_tokens == 0:
        raise ValueError("the update holds no events (no tokens after dropping empty "
                         "users): give at least one (user, item) event")
    return corpus


def _times(old: Corpus, batch: Corpus, half_life):
    """The old and new tokens' times (int64 microseconds), or None for both when the
    model has none (an update's times are then dropped: the old tokens have none to
    compare with); a model with times needs them in its updates."""
    old_times, new_times = old.times, batch.times
    if old_times is not None and new_times is None:
        raise ValueError("the model's events have times but the update's have none: give "
                         "them (a 'time' column, Corpus.from_frame(..., time=...))")
    if half_life is not None and old_times is None:
        raise ValueError("decay as a half-life needs event times, and this model's corpus "
                         "has none: train on events with times, or give decay as a factor")
    return (None, None) if old_times is None else (old_times, new_times)


def _kind(ids: np.ndarray) -> str:
    if ids.dtype.kind in "iu":
        return "integers"
    if ids.dtype.kind in "OUS" and all(isinstance(v, str) for v in ids[:1000]):
        return "strings"
    return str(ids.dtype)


def _index(known: np.ndarray, ids: np.ndarray, what: str, start: int):
    """``(index, added)``: the position of each of ``ids`` among ``known``, unknown ones
    numbered from ``start`` in their order; ``added`` the unknown ids."""
    if len(ids) and len(known) and _kind(known) != _kind(ids):
        raise TypeError(f"the update's {what} ids are {_kind(ids)} but the model's are "
                        f"{_kind(known)}: read the ids with the type they had in training")
    index = pd.Index(known).get_indexer(ids).astype(np.int64)
    unknown = index < 0
    index[unknown] = start + np.arange(np.count_nonzero(unknown))
    return index, ids[unknown]


# -- the steps ------------------------------------------------------------------------
def _thin(state, old_times, new_times, decay, decayed_to, rng):
    """``(keep, decayed_to)``: which old tokens survive the decay (None: all) and the time
    the half-life has now thinned to."""
    half_life, factor = decay
    if half_life is None and factor is None:
        return None, decayed_to
    u = _update_kernels.uniforms(rng, np.int64(state.n_tokens))
    if factor is not None:
        return u < factor, decayed_to
    now = int(new_times.max())
    since = old_times if decayed_to is None else np.maximum(old_times, decayed_to)
    age = np.maximum(now - since, 0).astype(np.float64)
    return u < np.exp2(-age / half_life), now if decayed_to is None else max(now, decayed_to)


def _grow(state, old: Corpus, batch: Corpus, keep, old_times, new_times) -> dict:
    """The merged token arrays: old tokens (those kept) and the update's, grouped by user
    (old users first, new ones after) and by item within a user, old before new."""
    n_users, n_items = old.n_users, old.n_items
    user_index, new_users = _index(old.user_ids, batch.user_ids, "user", n_users)
    item_index, new_items = _index(old.item_ids, batch.item_ids, "item", n_items)
    users = np.concatenate([old.user_ids, new_users])
    items = np.concatenate([old.item_ids, new_items])
    words_o, z_o = state.words, state.z
    users_o = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(state.indptr))
    if keep is not None:
        words_o, z_o, users_o = words_o[keep], z_o[keep], users_o[keep]
        old_times = None if old_times is None else old_times[keep]
    users_n = user_index[np.repeat(np.arange(batch.n_users), batch.lengths)]
    words_n = item_index[batch.words].astype(np.int32)
    n_all = max(len(items), 1)
    key_o = users_o * n_all + words_o
    if key_o.size > 1 and not np.all(key_o[1:] >= key_o[:-1]):
        raise RuntimeError("the model's tokens are not grouped by user and ordered by item "
                           "within a user; save and load the model, then update it")
    key_n = users_n * n_all + words_n
    order = np.argsort(key_n, kind="stable")
    at = np.searchsorted(key_o, key_n[order], side="right") + np.arange(order.shape[0])
    n_tokens = key_o.shape[0] + order.shape[0]
    is_new = np.zeros(n_tokens, dtype=bool)
    is_new[at] = True
    words = np.empty(n_tokens, dtype=np.int32)
    words[at], words[~is_new] = words_n[order], words_o
    z = np.zeros(n_tokens, dtype=np.int32)
    z[~is_new] = z_o
    times = None
    if old_times is not None:
        times = np.empty(n_tokens, dtype=np.int64)
        times[at], times[~is_new] = new_times[order], old_times
    lengths = (np.bincount(users_o, minlength=len(users))
               + np.bincount(users_n, minlength=len(users)))
    indptr = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return {"indptr": indptr, "words": words, "z": z, "times": times, "is_new": is_new,
            "users": users, "items": items, "touched": np.unique(users_n),
            "new_words": words_n, "old": (words_o, z_o)}


def _swept_users(grown: dict, n_old_users: int, refresh: float, rng) -> np.ndarray:
    """The users the sweeps resample: those the update touches, and with ``refresh`` > 0
    each other old user with that probability (one draw per old user)."""
    touched = grown["touched"]
    if refresh <= 0.0:
        return touched
    picked = _update_kernels.uniforms(rng, np.int64(n_old_users)) < refresh
    picked[touched[touched < n_old_users]] = False
    return np.union1d(touched, np.flatnonzero(picked))


def _gather(grown: dict, users: np.ndarray, scope: str):
    """``(sub_indptr, tokens, cell_ptr)``: the tokens of ``users`` (sorted) gathered user
    by user, each user's old tokens before their new ones; the sweeps resample tokens
    ``cell_ptr[d, 0]:cell_ptr[d, 1]`` of sub-user d (all of them, or with scope "new" the
    new ones of a user the update touches) and count all of them in n_dk."""
    indptr, is_new = grown["indptr"], grown["is_new"]
    lengths = indptr[users + 1] - indptr[users]
    sub_indptr = np.zeros(users.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=sub_indptr[1:])
    tokens = (np.repeat(indptr[users] - sub_indptr[:-1], lengths)
              + np.arange(sub_indptr[-1], dtype=np.int64))
    owner = np.repeat(np.arange(users.shape[0]), lengths)
    tokens = tokens[np.lexsort((is_new[tokens], owner))]  # stable: old, then new
    cell_ptr = np.stack([sub_indptr[:-1], sub_indptr[1:]], axis=1)
    if scope == "new":
        n_new = np.bincount(owner, weights=is_new[tokens], minlength=users.shape[0])
        touched = n_new > 0
        cell_ptr[touched, 0] = sub_indptr[1:][touched] - n_new[touched].astype(np.int64)
    return sub_indptr, tokens, np.ascontiguousarray(cell_ptr)


def _fold_in(state, grown: dict, sub, rng) -> None:
    """First topics of the new tokens (in ``grown["z"]``), drawn against the counts of the
    old tokens kept and the new tokens drawn before them."""
    sub_indptr, tokens, _ = sub
    k = state.n_topics
    words_o, z_o = grown["old"]
    used = np.unique(grown["new_words"])
    row_of = np.full(len(grown["items"]), -1, dtype=np.int32)
    row_of[used] = np.arange(used.shape[0], dtype=np.int32)
    rows_o = row_of[words_o]
    mine = rows_o >= 0
    n_wk_rows = np.bincount(rows_o[mine].astype(np.int64) * k + z_o[mine],
                            minlength=used.shape[0] * k).astype(np.int32).reshape(-1, k)
    n_k = np.bincount(z_o, minlength=k).astype(np.int64)
    rows = np.where(grown["is_new"][tokens], row_of[grown["words"][tokens]],
                    np.int32(-1)).astype(np.int32)
    z = grown["z"][tokens]
    _update_kernels.fold_in_tokens(sub_indptr, rows, z, n_wk_rows, n_k, state.alpha,
                                   float(state.beta), len(grown["items"]) * float(state.beta),
                                   rng)
    grown["z"][tokens] = z


def _sweep_subset(state, sub) -> None:
    """One sweep of the state's (exact) kernel over the gathered users only; the item
    and topic counts are the whole log's and stay consistent with every token's z."""
    sub_indptr, tokens, cell_ptr = sub
    layout = state.layout
    z = state.z[tokens]
    tok = (sub_indptr, cell_ptr, state.words[tokens], z)
    wi = layout["wi"]
    if state.sampler == "mh":
        wi = (wi[0], wi[1], np.ascontiguousarray(wi[2][tokens]))
    prior = (state.alpha, np.cumsum(state.alpha), float(state.beta))
    _kernels.sweep_serial(_sampler._KIND[state.sampler], tok, layout["wc"], wi, state.n_wk,
                          state.n_k, prior, state.rng, np.int64(state.mh_steps))
    state.z[tokens] = z


def _sweeps(model, work, sub, n_iter: int, progress) -> int:
    """Run up to ``n_iter`` sweeps over ``sub``, learning "auto" priors every
    ``optimize_every`` and after the last; returns how many ran (a callback may stop)."""
    callback, info, started, n_swept = progress
    done = 0
    for done in range(1, n_iter + 1):
        sweep_started = time.perf_counter()
        _sweep_subset(work, sub)
        if done % model.optimize_every == 0 or done == n_iter:
            _learn_priors(model, work)
        if callback is not None:
            elapsed = time.perf_counter() - sweep_started
            record = info(done, n_iter, time.perf_counter() - started,
                          n_swept / max(elapsed, 1e-12), None)
            if callback(record) is False:
                break
    return done


def _learn_priors(model, state) -> None:
    """Keep learning the "auto" priors during updates once training is past burn-in."""
    if model.n_iter_ < model.optimize_burn_in:
        return
    if isinstance(model.alpha, str):
        priors.learn_alpha(state)
    if isinstance(model.beta, str):
        priors.learn_beta(state)

