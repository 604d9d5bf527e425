"""The estimator: validation, orchestration of the sweeps, fitted attributes."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from gibbslda import (_rng, heldout as _heldout, io, posterior, priors,
                      sampler as _sampler, scores as _scores, update as _update)
from gibbslda._validate import check_int as _check_int, check_priors as _check_priors
from gibbslda.corpus import as_corpus
from gibbslda.errors import ModelFileError, NotFittedError
from gibbslda.io import HISTORY_DTYPE
from gibbslda.fitted import FittedAttributes

AUTO_START = {"alpha": 0.1, "beta": 0.01}  # where learned priors start
HELDOUT_USERS = 1000  # held-out users scored during training (LDA(heldout_users=...))
CHECK_ENV = "GIBBSLDA_CHECK"  # "1": verify every count against z after each sweep


@dataclass(frozen=True)
class SweepInfo:
    """What the estimator reports to ``callback`` after every sweep (and DistributedLDA
    after every round: its sweeps so far, the round's rate, ``round`` its number).

    ``loglik`` is log p(w, z) per token when it was evaluated at this iteration, else None;
    ``heldout`` the held-out log-likelihood per token when ``fit`` was given held-out parts.
    """

    iteration: int
    n_iter: int
    seconds: float
    tokens_per_second: float
    loglik: float | None
    heldout: float | None = None
    round: int | None = None


class LDA(FittedAttributes):
    """Latent Dirichlet allocation of users x items, fitted by collapsed Gibbs sampling.

    Parameters
    ----------
    n_topics : int
        Number of interests (topics) K.
    alpha : "auto", float or array-like of shape (K,), default "auto"
        Dirichlet prior on each user's topic mix. "auto" learns an asymmetric alpha
        (starting from 0.1 per topic) by Minka's fixed point (:mod:`gibbslda.priors`); a
        number or an array (asymmetric) fixes it (0.1 was the default before learning
        was: it and 0.01 give the earlier models).
    beta : "auto" or float, default "auto"
        Symmetric Dirichlet prior on each topic's distribution over items; "auto" learns it
        (starting from 0.01), a number fixes it. Learned priors are the default because
        they gave a better held-out likelihood on each shared log and K measured, with a
        Recall@20 within 0.005 (bench/README.md, "Learned priors as the default").
    optimize_every, optimize_burn_in : int, default 10, 50
        With "auto" priors: learn them every ``optimize_every`` sweeps once
        ``optimize_burn_in`` sweeps have run. The learned values are ``alpha_``, ``beta_``.
    n_iter : int, default 200
        Gibbs sweeps that ``fit`` runs (and the total that ``resume()`` runs up to).
    random_state : int, numpy Generator or None
        Seed of every random stream; the same seed gives the same model bit for bit.
    sampler : {"auto", "dense", "sparse", "mh", "warp", "vector"}, default "auto"
        The sweep kernel (see :mod:`gibbslda.sampler`). "auto" picks "warp" (WarpLDA, O(1)
        a token, parallel, the same held-out likelihood at equal sweeps) for
        ``AUTO_WARP_TOPICS`` (20) topics or more on ``AUTO_WARP_TOKENS`` (50,000) tokens or
        more with ``n_shards=1``; otherwise the exact chain: "dense" below
        ``AUTO_SPARSE_TOPICS`` (32) topics, "sparse" from there on. The choice depends on
        K, the corpus size and ``n_shards`` only, never on the thread count (figures:
        bench/README.md, "What auto picks"). "warp" runs on ``n_jobs`` threads, same
        result for any number. "vector" (K <= 64) is "dense" in float32 vectors.
    n_shards : int, default 1
        Blocks the users and items are split into for the parallel sweep; a model
        setting, not the thread count. 1 is the exact serial chain; more shards let more
        threads work, with the topic totals stale within each of the sweep's rounds.
    n_jobs : int or None, default None
        Threads for the sweep (None: all numba threads, one per core unless
        ``NUMBA_NUM_THREADS`` says otherwise). "warp" uses all of them; the exact samplers
        use at most one per shard (with ``n_shards=1``, one). Never changes the result.
    mh_steps : int, default 2
        Metropolis-Hastings cycles (item + user proposal) per token for samplers "mh" and
        "warp".
    eval_every : int, default 10
        Evaluate log p(w, z) per token every this many sweeps (and at the first and last).
    transform_iter, transform_burn_in : int, default 50, 10
        Fold-in sweeps for :meth:`transform` and held-out scoring, and how many of them
        to discard.
    heldout_users : int or None, default 1000
        With ``fit(X, heldout=...)``: score this many of the held-out users at each
        evaluation (a seeded random subsample, the same at every evaluation; None: all of
        them), so evaluation stays a small part of training. Its cost grows with the
        users' observed tokens times ``transform_iter``; at K = 1000 on 1.3M training
        tokens it is 5% of the sweeps' time with sampler "sparse" and about 30% with the
        4x faster "warp" (bench/README.md; ``eval_every=30`` or ``heldout_users=300``
        brings warp near 10%). The figure's standard error grows as
        1 / sqrt(users scored); comparisons between evaluations share the users.

    References
    ----------
    Blei, Ng & Jordan (2003), "Latent Dirichlet allocation", JMLR 3.
    Griffiths & Steyvers (2004), "Finding scientific topics", PNAS 101.
    """

    def __init__(self, n_topics: int = 10, *, alpha="auto", beta="auto", n_iter: int = 200,
                 random_state=None, sampler: str = "auto", n_shards: int = 1,
                 n_jobs: int | None = None, mh_steps: int = 2, eval_every: int = 10,
                 transform_iter: int = 50, transform_burn_in: int = 10,
                 optimize_every: int = 10, optimize_burn_in: int = 50,
                 heldout_users: int | None = HELDOUT_USERS):
        self.n_topics = n_topics
        self.alpha = alpha
        self.beta = beta
        self.optimize_every = optimize_every
        self.optimize_burn_in = optimize_burn_in
        self.n_iter = n_iter
        self.random_state = random_state
        self.sampler = sampler
        self.n_shards = n_shards
        self.n_jobs = n_jobs
        self.mh_steps = mh_steps
        self.eval_every = eval_every
        self.transform_iter = transform_iter
        self.transform_burn_in = transform_burn_in
        self.heldout_users = heldout_users

    def get_params(self) -> dict:
        alpha = self.alpha
        if isinstance(alpha, np.ndarray):
            alpha = alpha.tolist()
        return {"n_topics": self.n_topics, "alpha": alpha, "beta": self.beta,
                "n_iter": self.n_iter, "random_state": self.random_state,
                "sampler": self.sampler, "n_shards": self.n_shards, "n_jobs": self.n_jobs,
                "mh_steps": self.mh_steps, "eval_every": self.eval_every,
                "transform_iter": self.transform_iter,
                "transform_burn_in": self.transform_burn_in,
                "optimize_every": self.optimize_every,
                "optimize_burn_in": self.optimize_burn_in,
                "heldout_users": self.heldout_users}

    def check_params(self) -> "LDA":
        """Check the settings as :meth:`fit` does, without fitting (nor drawing from a
        Generator ``random_state``): ValueError or TypeError naming the bad one, so a
        caller can fail before costly work. Returns ``self``."""
        self._validate()
        if not isinstance(self.random_state, np.random.Generator):
            _rng.resolve_entropy(self.random_state)
        return self

    def __repr__(self) -> str:
        return f"LDA(n_topics={self.n_topics}, sampler={self.sampler!r}, n_iter={self.n_iter})"

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X, callback=None, *, heldout=None) -> "LDA":
        """Fit to ``X`` (a Corpus, a CSR matrix or lists of item ids) from a fresh start.

        ``callback(info: SweepInfo)`` is called after every sweep; returning False stops
        after that sweep, leaving a consistent model that :meth:`resume` continues.
        ``heldout=(observed, hidden)`` (the two parts of held-out users, as from
        :func:`gibbslda.evaluate.split_users`) adds the document-completion log-likelihood
        per hidden token to ``loglik_["heldout"]`` at every evaluation (NaN without it),
        on ``heldout_users`` of them (a subsample seeded by ``random_state``, the same at
        every evaluation; :func:`gibbslda.evaluate.completion_log_likelihood` on the same
        users gives the same figure).
        """
        self._validate()
        corpus = as_corpus(X)
        if corpus.n_tokens == 0:
            raise ValueError("cannot fit an empty corpus")
        _sampler.warm_up()
        entropy = _rng.resolve_entropy(self.random_state)
        parts = self._heldout_parts(heldout, items=corpus.item_ids, entropy=entropy)
        self.seed_entropy_, self.corpus_ = entropy, corpus  # nothing set until all is checked
        self.heldout_, self._heldout = heldout, parts
        if parts is not None:
            _heldout.warm_up()  # compiled here, not inside the first sweep's evaluation
        self.state_ = _sampler.init_state(
            corpus.indptr, corpus.words, self.n_topics, corpus.n_items, alpha=self._alpha,
            beta=self._beta,
            rng=_rng.seed_streams(self.seed_entropy_, _rng.TRAIN, self.n_shards),
            sampler=self._sampler_for(self.n_topics, corpus.n_tokens), n_shards=self.n_shards,
            mh_steps=self.mh_steps)
        self._fitted_settings = self._settings()
        self.n_iter_ = 0
        self.seconds_ = 0.0
        self.loglik_ = np.zeros(0, dtype=HISTORY_DTYPE)
        self.posterior_ = self.ranking_ = None  # sample averages; recommend's choice
        self._record(0.0)
        return self._run(self.n_iter, callback)

    def resume(self, n_iter: int | None = None, callback=None, *, heldout=None) -> "LDA":
        """Continue the chain exactly where it stopped: ``n_iter`` more sweeps (default:
        the sweeps left to reach ``self.n_iter``).

        The chain (topics, counts, random streams) equals, bit for bit, a run that never
        stopped. ``loglik_`` records every ``eval_every``-th sweep and the last sweep of
        each call, so a run stopped by ``callback`` and resumed with ``resume()`` has the
        same history too; ``fit`` then ``resume(n)`` adds a point where the first call
        ended. ``heldout`` as in :meth:`fit` (default: the parts ``fit`` was given, which
        a loaded model does not have), subsampled anew if ``heldout_users`` changed.

        ``n_iter``, ``n_jobs``, ``eval_every`` and the other run settings may change; the
        settings the chain was built with (``n_topics``, ``sampler``, ``n_shards``,
        ``mh_steps``, ``alpha``, ``beta``, ``random_state``) may not: a changed one
        raises ValueError naming it, before any sweep."""
        self._check_fitted()
        self._validate()
        self._check_settings()
        if heldout is not None:
            self.heldout_ = heldout
        self._heldout = self._heldout_parts(self.__dict__.get("heldout_"))
        if n_iter is None:
            n_iter = max(self.n_iter - self.n_iter_, 0)
        _check_int("n_iter", n_iter, minimum=0)
        return self._run(int(n_iter), callback)

    def fit_transform(self, X, callback=None) -> np.ndarray:
        """Fit, then return the training users' topic mix ``doc_topic_`` (D x K)."""
        return self.fit(X, callback=callback).doc_topic_

    def update(self, new, n_iter: int | None = None, decay=None, *, refresh: float = 0.0,
               scope: str = "new", callback=None) -> "LDA":
        """Add new events (a Corpus or frame keyed by the original ids) in place: new users
        and items join the tables, the new tokens are folded in, then ``n_iter`` sweeps
        resample them (``scope="users"``: all tokens of their users) and a ``refresh`` share
        of the other users; ``decay`` thins old tokens. See :func:`gibbslda.update.update`
        for the arguments and what decay does to the posterior; ``last_update_`` holds the
        report."""
        _update.update(self, new, n_iter=n_iter, decay=decay, refresh=refresh, scope=scope,
                       callback=callback, info=SweepInfo)
        return self

    def _run(self, n_iter: int, callback) -> "LDA":
        state, self.ranking_ = self.state_, None  # recommend's choice: of the chain before
        last = self.n_iter_ + n_iter
        for _ in range(n_iter):
            started = time.perf_counter()
            with _threads(self.n_jobs):
                _sampler.sweep(state)
            elapsed = time.perf_counter() - started
            self.n_iter_ += 1
            self.seconds_ += elapsed
            priors.learn_on_schedule(self)
            posterior.collect(self)  # thinned samples for averaged scores
            if os.environ.get(CHECK_ENV) == "1":
                _sampler.check_state(state)
            evaluate = self.n_iter_ % self.eval_every == 0 or self.n_iter_ == last
            loglik = self._record(self.seconds_) if evaluate else None
            if callback is not None:
                heldout = self.loglik_["heldout"][-1] if evaluate else np.nan
                info = SweepInfo(self.n_iter_, last, self.seconds_,
                                 state.n_tokens / max(elapsed, 1e-12), loglik,
                                 None if np.isnan(heldout) else float(heldout))
                if callback(info) is False:
                    break
        return self

    def _record(self, seconds: float) -> float:
        if self.loglik_.size and self.loglik_["iteration"][-1] == self.n_iter_:
            return float(self.loglik_["loglik"][-1])
        value = _sampler.log_likelihood(self.state_)
        heldout = np.nan
        if getattr(self, "_heldout", None) is not None:
            heldout = self._score_heldout(self._heldout)
        row = np.array([(self.n_iter_, seconds, value, heldout)], dtype=HISTORY_DTYPE)
        self.loglik_ = np.concatenate([self.loglik_, row])
        return value

    # -- inference for new users -----------------------------------------------------
    def transform(self, X) -> np.ndarray:
        """Topic mix (theta, n_users x K) of new users by fold-in with the topics fixed.

        Items are matched to the training vocabulary by id; unknown items are ignored, and
        a user with no known item gets the prior mean. Deterministic for a fitted model:
        the fold-in stream is seeded from the model's seed, not from the training chain.
        Reads phi for the items in ``X`` only (never the K x V ``topic_word_``).
        """
        return self._fold_in(X)

    def _fold_in(self, X, topic_word=None) -> np.ndarray:
        """:meth:`transform`, against ``topic_word`` (K x V) when a caller has built it,
        else against the phi columns of the items in ``X`` only (the same values)."""
        self._check_fitted()
        self._check_fold_in()
        corpus = as_corpus(X, vocabulary=self.item_ids_, drop_empty=False)
        rng = _rng.seed_streams(self.seed_entropy_, _rng.FOLD_IN, 1)
        words = corpus.words
        if topic_word is None:  # the draws do not depend on item ids: renumber the items
            items, words = np.unique(corpus.words, return_inverse=True)
            topic_word = _scores.phi_columns(self._tables(), items)
        return _sampler.fold_in(corpus.indptr, words.reshape(-1), topic_word,
                                self.state_.alpha, n_iter=self.transform_iter,
                                burn_in=self.transform_burn_in, rng=rng)

    def _check_fold_in(self) -> None:
        """The fold-in settings (transform and held-out scoring)."""
        _check_int("transform_iter", self.transform_iter, minimum=1)
        _check_int("transform_burn_in", self.transform_burn_in, minimum=0)
        if self.transform_burn_in >= self.transform_iter:
            raise ValueError(f"transform_burn_in must be < transform_iter "
                             f"({self.transform_iter}), got {self.transform_burn_in}")

    def _completion(self, observed, hidden) -> float:
        """Document completion per hidden token of two parts of held-out users (every
        user; :func:`gibbslda.heldout.completion_from_state`)."""
        self._check_fitted()
        return self._score_heldout(self._heldout_parts((observed, hidden), every=True))

    def _heldout_parts(self, heldout, every: bool = False, *, items=None, entropy=None):
        """``heldout`` (observed, hidden) matched to the model's items once, as a
        :class:`gibbslda.heldout.HeldOut` of ``heldout_users`` of its users (``every``:
        all of them); None for None."""
        if heldout is None:
            return None
        if not (isinstance(heldout, (tuple, list)) and len(heldout) == 2):
            raise TypeError("heldout must be the pair (observed, hidden) of the held-out "
                            "users' two parts, as split_users gives them")
        items = self.corpus_.item_ids if items is None else items
        entropy = self.seed_entropy_ if entropy is None else entropy
        observed, hidden = (as_corpus(part, vocabulary=items, drop_empty=False)
                            for part in heldout)
        users = None if every else _heldout.subsample(observed.n_users, self.heldout_users,
                                                      entropy)
        return _heldout.prepare((observed.indptr, observed.words),
                                (hidden.indptr, hidden.words), len(items), users)

    def _score_heldout(self, parts) -> float:
        """Mean log p(hidden token | observed) of prepared held-out parts under the chain
        as it is, theta folded in on the model's fold-in stream (``transform_iter``
        sweeps, ``transform_burn_in`` discarded): deterministic for a given chain."""
        self._check_fold_in()
        rng = _rng.seed_streams(self.seed_entropy_, _rng.FOLD_IN, 1)
        with _threads(self.n_jobs):  # on the sweep's threads; never changes the figure
            return _heldout.completion_from_state(
                self.state_, parts, n_iter=self.transform_iter,
                burn_in=self.transform_burn_in, rng=rng)

    def save(self, path) -> None:
        """Write the fitted model to the folder ``path`` (see :mod:`gibbslda.io`)."""
        io.save(self, path)

    @classmethod
    def load(cls, path) -> "LDA":
        """Read a model folder written by :meth:`save`; never unpickles anything.
        Raises ModelFileError when it is missing, damaged or from an unknown schema."""
        saved = io.read(path)
        try:
            params = saved.params
            if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
                raise TypeError("parameters are not a mapping of names")
            model = cls(**params)
            model._validate()
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{saved.path}/model.json: saved parameters are invalid "
                                 f"({exc}); the folder is damaged, save the model again"
                                 ) from exc
        for name in ("n_topics", "n_shards", "mh_steps"):
            if getattr(model, name) != saved.fitted[name]:
                raise ModelFileError(f"{saved.path}/model.json: parameter {name} "
                                     f"({getattr(model, name)!r}) disagrees with the fitted "
                                     f"{saved.fitted[name]!r}; the folder is damaged")
        model._fitted_from(saved.state, saved.corpus, n_iter=saved.n_iter,
                           seconds=saved.seconds, seed_entropy=saved.seed_entropy,
                           history=saved.history)
        _update.restore_fields(model, saved.fitted, saved.path)
        posterior.restore(model, *saved.ranking)  # recommend's samples and choice
        return model

    def _fitted_from(self, state, corpus, *, n_iter: int, seconds: float,
                     seed_entropy: int, history) -> "LDA":
        """Make this (validated) estimator the fitted model of a chain ``state`` over
        ``corpus``: the one way a fitted model is built other than by :meth:`fit`
        (:meth:`load`, the Dask trainer)."""
        self.state_, self.corpus_, self.heldout_ = state, corpus, None
        self.n_iter_, self.seconds_ = int(n_iter), float(seconds)
        self.seed_entropy_ = int(seed_entropy)
        self.loglik_ = history
        self._fitted_settings = self._settings()
        return self

    def __getattr__(self, name: str):
        # Only reached for attributes that do not exist: fitted ones before fit.
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(f"this LDA model is not fitted yet (no {name}): call fit(X) "
                                 "first")
        raise AttributeError(f"'LDA' object has no attribute {name!r}")

    # -- validation --------------------------------------------------------------------
    def sampler_for(self, n_tokens: int) -> str:
        """The sampler ``fit`` runs on a corpus of ``n_tokens`` tokens with the settings as
        they are ("auto" resolved: by K, the corpus size and ``n_shards``)."""
        return self._sampler_for(self.n_topics, n_tokens)

    def _sampler_for(self, n_topics: int, n_tokens: int = 0) -> str:
        """The sampler a chain of ``n_topics`` on ``n_tokens`` tokens runs ("auto": by K,
        the corpus size and ``n_shards``; never by the thread count)."""
        if self.sampler != "auto":
            return self.sampler
        if (self.n_shards == 1 and AUTO_WARP_TOPICS <= n_topics <= _sampler.MAX_WARP_TOPICS
                and AUTO_WARP_TOKENS <= n_tokens < 2**31):
            return "warp"
        return "sparse" if n_topics >= AUTO_SPARSE_TOPICS else "dense"

    def _settings(self) -> dict:
        """The settings a chain is built with, as set now: priors as floats per topic (or
        "auto"), the others as given. Call after :meth:`_validate`."""
        alpha = "auto" if isinstance(self.alpha, str) else tuple(self._alpha.tolist())
        return {"n_topics": self.n_topics, "sampler": self.sampler,
                "n_shards": self.n_shards, "mh_steps": self.mh_steps, "alpha": alpha,
                "beta": "auto" if isinstance(self.beta, str) else self._beta,
                "random_state": self.random_state}

    def _check_settings(self) -> None:
        """Refuse a fixed setting changed since the chain was built (``fit`` or ``load``
        records them): continuing or saving would silently keep the old one."""
        now = self._settings()
        same_chain = (self._sampler_for(self.n_topics, self.state_.z.shape[0])
                      == self.state_.sampler)
        for name, fitted in self._fitted_settings.items():
            new = now[name]
            if name == "sampler" and same_chain:
                continue  # "auto" and the sampler it picks are the same chain
            if new is fitted or new == fitted:
                continue
            raise ValueError(f"{name} is {_show(new)} but this model was fitted with "
                             f"{_show(fitted)}; a fitted chain keeps the settings it was "
                             f"built with: refit with fit(), or set {name} back to "
                             f"{_show(fitted)}")

    def _check_fitted(self) -> "_sampler.GibbsState":
        state = getattr(self, "state_", None)
        if state is None:
            raise NotFittedError("this LDA model is not fitted yet: call fit(X) first")
        return state

    def _validate(self) -> None:
        _check_int("n_topics", self.n_topics, minimum=1)
        _check_int("n_iter", self.n_iter, minimum=0)
        _check_int("eval_every", self.eval_every, minimum=1)
        if self.heldout_users is not None:
            _check_int("heldout_users", self.heldout_users, minimum=1)
        _check_int("n_shards", self.n_shards, minimum=1)
        _check_int("mh_steps", self.mh_steps, minimum=1)
        if self.n_jobs is not None:
            _check_int("n_jobs", self.n_jobs, minimum=1)
        _check_int("optimize_every", self.optimize_every, minimum=1)
        _check_int("optimize_burn_in", self.optimize_burn_in, minimum=0)
        if self.sampler not in ("auto", *_sampler.SAMPLERS):
            raise ValueError(f"sampler must be one of {['auto', *_sampler.SAMPLERS]}, "
                             f"got {self.sampler!r}")
        self._alpha, self._beta = _check_priors(self.alpha, self.beta, self.n_topics,
                                                AUTO_START)


# "auto": warp (O(1) a token, items then users in parallel) from AUTO_WARP_TOPICS topics on
# corpora of AUTO_WARP_TOKENS tokens or more: at K = 20 it ties dense on one thread and
# leads on two, at K >= 50 it leads everything, and its held-out likelihood at equal sweeps
# is within 1% of the exact chain's. Below that size a sweep costs milliseconds and the
# exact chain is kept (warp's delayed counts matter most where counts are small). The exact
# chain: dense (V x K counts, O(K) a token) below AUTO_SPARSE_TOPICS, sparse (packed
# counts, O(K_d + K_w)) from there on. mh is never picked: it needs more sweeps for the same
# held-out likelihood; ask for it by name. The figures: bench/README.md, sections "What
# auto picks", "Dense or sparse counts: the crossover", "The warp sampler" and "Issue 13:
# the exact chain's samplers on a quiet machine" (dense to K = 24, sparse from 32; vector
# never the fastest there).
AUTO_SPARSE_TOPICS = 32
AUTO_WARP_TOPICS = 20
AUTO_WARP_TOKENS = 50_000


@contextmanager
def _threads(n_jobs: int | None):
    """Run the sweep on ``n_jobs`` numba threads (capped at what numba started)."""
    if n_jobs is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(n_jobs, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _show(setting) -> str:
    """A setting for a message: a per-topic prior with one value as that value."""
    if isinstance(setting, tuple):
        return repr(setting[0]) if len(set(setting)) == 1 else \
            f"an array of {len(setting)} values"
    return repr(setting)
