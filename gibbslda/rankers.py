"""Recommendation variants of a fitted LDA, and the honest choice of the default.

Every variant scores p(item | user) from the users' histories (a
:class:`~gibbslda.corpus.Corpus` of their items, by default the training corpus):

- ``"lda"``: theta . phi of the chain's last state (training users: ``doc_topic_``; other
  users: ``model.transform``), what ``recommend`` did before issue 15.
- ``"lda_avg"``: phi averaged over thinned posterior samples (:mod:`gibbslda.posterior`),
  theta folded in against it by weighted EM (:mod:`gibbslda._kernels.foldin_em`, 30 steps).
- ``"lda_recency"``: ``lda_avg`` with each token weighted 0.5 ** (age / half-life), age
  from the user's latest event (needs ``Corpus.times``; the half-life is learned).
- ``"lda+pop"``: (1 - lam) theta . phi + lam p_pop(item), a background component
  (Wilhelm's LDA4Rec) with one lam for all users, learned; p_pop(item) the training
  users who have the item, normalised to sum to 1.
- ``"lda+knn"``, ``"lda+ease"``: the ``lda+pop`` scores (each user's row divided by its
  maximum) blended with item-kNN or EASE (:mod:`gibbslda.baselines`, rows divided by their
  maximum) as (1 - b) lda + b partner, b learned. EASE inverts an m x m matrix, m =
  min(V, ``EASE_ITEMS``): O(m^3) time, 8 m^2 bytes (5000 items: 200 MB, seconds); items
  beyond the m most popular get no EASE part (they rank by the LDA part only).
- ``"lda+iknn"``: item-item similarity within interests, blended the same way, b learned:
  the partner scores item i for a user with items H as sum over distinct j in H of
  s(j, i) a(i, j), s the item-kNN cosine similarity (j's ``KNN_NEIGHBOURS`` kept
  neighbours, as ``"lda+knn"``), a(i, j) = sum_k p(k|i) p(k|j) / sqrt(sum_k p(k|i)^2
  sum_k p(k|j)^2) the agreement of the items' interests, p(k|i) = phi[k, i] / sum_k
  phi[k, i] from the averaged phi. Not weighted by the user's theta (the user's own
  interests enter through the blend's LDA part), so a is computed once per kept
  neighbour pair: the kNN's sparse matrix reweighted, O(V n_neighbours K), no V x V.
- ``"chosen"``: the variant and settings best on the validation split; ``recommend()``'s
  default. Models with K x V above ``DENSE_VALUES`` (2^26: K = 1000 on 67k items) choose
  ``"lda"`` without validating: the other variants read a dense K x V phi (8 K V bytes)
  and score users x V rows, where the exact sparse top N of
  :func:`gibbslda.topn.top_n_sparse` scales to millions of users.

The choice (:func:`choose`, run once, cached as ``model.ranking_``, saved with the model)
never sees test data: it carves a validation split from the training corpus only.
Validation users: a seeded ``VALIDATION_SHARE`` of the training users with at least 4
tokens (at least 1 user), capped at ``VALIDATION_USERS`` and at max(100,
``VALIDATION_VALUES`` // V); each hides their last ``HIDDEN_SHARE`` tokens by time (a
seeded random part without times). No second chain is fitted: every LDA variant is
validated on phi of the last state's counts minus the hidden tokens' topics (exact: the
other tokens' counts, one dense K x V phi); the averaged counts cannot be used, as they
hold the hidden tokens' topics of earlier samples. So ``"lda_avg"`` validates as ``"lda"``
(and loses the tie) and the settings of the averaged variants are learned on the last
state's phi; the rest of the chain was fitted with the hidden tokens (each is one of the
counts the other tokens' topics were drawn against), a small leak that kNN and EASE,
fitted on the training corpus minus the hidden tokens (as is popularity), do not get.
The settings are then picked by Recall@``K_VALIDATION`` on the hidden items: the
half-life on ``lda_avg``, lam on the best of those, b for each partner on the best of
those (b = 1 is the partner alone: if it wins, the default is honest about it); "chosen"
is the best of all, ties to the simpler variant (earlier in ``NAMES``). Its cost: one fit
of each partner without the hidden tokens (EASE's O(m^3) dominates on small corpora), one
leave-out phi and ~30 fold-ins and rankings of the validation users (bench/README.md,
against the fit).

The fitted partner is not saved (EASE's B is 4 m^2 bytes even in float32: 100 MB at
m = 5000, more than most model folders): when the chosen variant is ``"lda+knn"``,
``"lda+ease"`` or ``"lda+iknn"``, the first blended scoring in a process refits it on the
training corpus (EASE: O(m^3), seconds at m = 5000; kNN: O(co-occurrences)), then keeps it
on the model.

Usage: ``variants(model, history)[name]`` is a callable ``users -> (len(users), V)`` float
scores (rows of ``history``) that :func:`gibbslda.ranking.evaluate_rankings` takes as its
scorer, with ``history`` as its ``train`` argument.

References
----------
Wilhelm (2021), "LDA4Rec: a topic model for recommendation", RecSys (background component).
Steck (2019), "Embarrassingly shallow autoencoders for sparse data", WWW.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from gibbslda import posterior
from gibbslda.posterior import NAMES, Choice  # NAMES: the variants, checked on load
from gibbslda._kernels.foldin_em import em_theta
from gibbslda.baselines import EASE, ItemKNN
from gibbslda.corpus import Corpus, as_corpus
from gibbslda.ranking import _as_csr

EM_ITER = 30
EASE_ITEMS, EASE_L2, KNN_NEIGHBOURS = 5000, 500.0, 100
VALIDATION_USERS, VALIDATION_SHARE, HIDDEN_SHARE, K_VALIDATION = 2000, 0.5, 0.3, 20
VALIDATION_VALUES = 2 ** 25  # validation users x items scored at once (256 MB float64)
DENSE_VALUES = 2 ** 26  # largest K x V for the dense variants (a 512 MB phi); past it: "lda"
HALF_LIVES = (None, 365.0, 90.0, 30.0, 7.0, 1.0)  # days; None: every event weighs 1
POPULARITY = (0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)  # the background share lam
BLENDS = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)  # 1: the partner alone
_DAY = 86_400 * 10 ** 6  # microseconds
_VALIDATION_SEED = 15  # spawn key of the validation split's stream


class _Parts:
    """What the scorers of one training set read: phi (last and averaged, one dense copy
    each), popularity, the partners (fitted on first use). A validation split's parts
    (``leave_out`` set) have one phi, the last state's exact leave-out, for both."""

    def __init__(self, model, leave_out=None, train=None):
        self.model, self.leave_out = model, leave_out
        self.chain = (model.state_, model.n_iter_, model.beta_)  # what the caches are of
        self.train = model.corpus_ if train is None else train
        self.alpha = np.asarray(model.alpha_, dtype=np.float64)
        self._cache = {}

    def phi(self, averaged: bool) -> np.ndarray:
        """K x V (a view of :meth:`phi_wk`, or the model's own ``topic_word_``)."""
        if not averaged and self.leave_out is None and ("phi_wk", False) not in self._cache:
            return self.model.topic_word_
        return self.phi_wk(averaged).T

    def phi_wk(self, averaged: bool) -> np.ndarray:
        """V x K, C order (what the fold-in kernel reads), the one dense copy kept."""
        key = ("phi_wk", averaged and self.leave_out is None)
        if key not in self._cache:
            self._cache[key] = np.ascontiguousarray(posterior.averaged_phi(
                self.model, leave_out=self.leave_out, last=not key[1]).T)
        return self._cache[key]

    def popularity(self) -> np.ndarray:
        if "pop" not in self._cache:
            indptr, items, _ = _as_csr(self.train, "train")
            counts = np.bincount(items, minlength=self.train.n_items).astype(np.float64)
            self._cache["pop"] = counts / max(counts.sum(), 1.0)
        return self._cache["pop"]

    def pair(self, history: Corpus) -> tuple:
        """The history as the clean CSR pair the baselines read; kept only for the
        corpus the parts were built for (the training corpus, or the validation split's
        observed part), never for other histories (a caller's new users)."""
        if history is not self.train and self.leave_out is None:
            return _as_csr(history, "history")[:2]
        key = ("pair", id(history))
        if key not in self._cache:
            self._cache[key] = (history, _as_csr(history, "history")[:2])
        return self._cache[key][1]

    def partner_scores(self, name: str, users, pair) -> np.ndarray:
        """The partner's :func:`scaled` scores of ``users`` (rows of ``pair``), kept when
        the parts are a validation split's (its grid scores the same users again and
        again; never written to)."""
        if self.leave_out is None:
            return scaled(self.partner(name).scores(users, history=pair))
        key = (name, id(pair[0]), users.tobytes())
        if key not in self._cache:
            self._cache[key] = scaled(self.partner(name).scores(users, history=pair))
        return self._cache[key]

    def partner(self, name: str):
        if name == "iknn" and name not in self._cache:
            self._cache[name] = within_interests(self.partner("knn"), self.phi_wk(True))
        if name not in self._cache:
            model = EASE(EASE_L2, EASE_ITEMS) if name == "ease" else ItemKNN(KNN_NEIGHBOURS)
            self._cache[name] = model.fit(self.train, self.train.n_items)
        return self._cache[name]


class Scorer:
    """``scorer(users) -> float64 (len(users), V)``: one variant's scores for rows of its
    history (see the module docstring). ``theta``: the users' topic mixes, all rows
    (D x K) or a function rows -> their rows; default: folded in per call for the rows
    asked only (each user's fold-in is its own, so chunking never changes a score)."""

    def __init__(self, parts: _Parts, history: Corpus, *, averaged=True, half_life=None,
                 popularity=0.0, partner=None, blend=0.0, theta=None):
        self.parts, self.history, self.averaged = parts, history, averaged
        self.half_life, self.theta = half_life, theta
        self.popularity, self.partner, self.blend = popularity, partner, blend
        self._pair = None  # the history's CSR pair, built on the first blended call

    def mix(self, users: np.ndarray) -> np.ndarray:
        """theta (len(users) x K) of the history's rows ``users``."""
        if isinstance(self.theta, np.ndarray):
            return self.theta[users]
        if self.theta is not None:
            return self.theta(users)
        return fold_in(self.parts, _subset_tokens(self.history, None, users), self.averaged,
                       self.half_life)

    def __call__(self, users) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        scores = self.mix(users) @ self.parts.phi(self.averaged)
        if self.popularity > 0:
            scores *= 1.0 - self.popularity
            scores += self.popularity * self.parts.popularity()
        if self.partner is None or self.blend <= 0:
            return scores
        if self._pair is None:
            self._pair = self.parts.pair(self.history)
        return blend(scores, self.parts.partner_scores(self.partner, users, self._pair),
                     self.blend)


def within_interests(knn: ItemKNN, phi_wk: np.ndarray) -> ItemKNN:
    """A copy of the fitted ``knn`` whose kept similarities s(j, i) are multiplied by the
    interest agreement a(i, j) of the module docstring (phi_wk: V x K)."""
    q = phi_wk / np.maximum(phi_wk.sum(axis=1, keepdims=True), 1e-300)  # p(k | i)
    q /= np.maximum(np.sqrt(np.einsum("ik,ik->i", q, q))[:, None], 1e-300)
    indptr, cols, sims = knn.similarity_
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    agreement = np.empty(sims.size)
    step = max(1, 2 ** 22 // max(q.shape[1], 1))  # pairs a chunk: 32 MB of K-rows each
    for at in range(0, sims.size, step):
        end = min(at + step, sims.size)
        agreement[at:end] = np.einsum("ik,ik->i", q[rows[at:end]], q[cols[at:end]])
    out = copy.copy(knn)
    out.similarity_ = (indptr, cols, sims * agreement)
    return out


def blend(lda: np.ndarray, other: np.ndarray, b: float) -> np.ndarray:
    """(1 - b) lda / rowmax(lda) + b other / rowmax(other), in place of ``lda``; -inf in
    ``other`` counts 0 (``other`` as :func:`scaled` gives it)."""
    lda /= np.maximum(lda.max(axis=1, keepdims=True), 1e-300)
    lda *= 1.0 - b
    lda += b * other
    return lda


def scaled(other: np.ndarray) -> np.ndarray:
    """A partner's score rows divided by their maximum (when positive), -inf as 0."""
    other[~np.isfinite(other)] = 0.0
    top = other.max(axis=1, keepdims=True)
    other /= np.where(top > 0, top, 1.0)
    return other


def fold_in(parts: _Parts, history: Corpus, averaged: bool, half_life=None) -> np.ndarray:
    """theta (D x K) of the history's users by weighted EM against the parts' phi."""
    weight = recency_weights(history, half_life)
    theta = np.empty((history.n_users, parts.alpha.shape[0]))
    em_theta(history.indptr, history.words.astype(np.int32), weight,
             parts.phi_wk(averaged), parts.alpha, np.int64(EM_ITER), theta)
    return theta


def recency_weights(history: Corpus, half_life_days) -> np.ndarray:
    """float64 (n_tokens,): 0.5 ** (age / half-life), age from each user's latest event,
    scaled so a user's weights sum to their token count; ones without times or half-life."""
    n = history.n_tokens
    if half_life_days is None or history.times is None:
        return np.ones(n)
    lengths = np.diff(history.indptr)
    owner = np.repeat(np.arange(history.n_users), lengths)
    latest = np.full(history.n_users, np.iinfo(np.int64).min)
    np.maximum.at(latest, owner, history.times)
    age = (latest[owner] - history.times) / (half_life_days * _DAY)
    weight = np.exp2(-age)
    sums = np.bincount(owner, weights=weight, minlength=history.n_users)
    return weight * (lengths / np.where(sums > 0, sums, 1.0))[owner]


def variants(model, history=None) -> dict:
    """Every variant of ``NAMES`` as a scorer of ``history``'s users (a Corpus or what
    :func:`gibbslda.corpus.as_corpus` takes; None: the training corpus), settings from
    :func:`choose` (run now if the model has no choice yet). Each value is a callable
    ``users -> float64 (len(users), n_items)`` over row numbers of ``history``, which
    :func:`gibbslda.ranking.evaluate_rankings` takes with ``train=history``."""
    choice = choose(model)
    parts = model.__dict__.get("_ranking_parts")
    if parts is None or parts.model is not model or parts.chain != (
            model.state_, model.n_iter_, model.beta_):  # a resumed chain: build anew
        parts = model._ranking_parts = _Parts(model)
    history = model.corpus_ if history is None else as_corpus(
        history, vocabulary=model.item_ids_, drop_empty=False)
    return _scorers(parts, history, choice, training=history is model.corpus_)


def _scorers(parts, history, choice: Choice, training=False) -> dict:
    model = parts.model
    if parts.leave_out is not None:
        last = None  # folded in against the leave-out phi of the last state
    elif training:
        last = model.doc_topic  # the chain's own theta, bit for bit doc_topic_'s rows
    else:
        last = _Once(lambda: model.transform(history))
    h, lam = choice.half_life_days, choice.popularity
    out = {"lda": Scorer(parts, history, averaged=False, theta=last),
           "lda_avg": Scorer(parts, history),
           "lda_recency": Scorer(parts, history, half_life=h),
           "lda+pop": Scorer(parts, history, half_life=h, popularity=lam),
           "lda+knn": Scorer(parts, history, half_life=h, popularity=lam, partner="knn",
                             blend=choice.knn_blend),
           "lda+ease": Scorer(parts, history, half_life=h, popularity=lam, partner="ease",
                              blend=choice.ease_blend),
           "lda+iknn": Scorer(parts, history, half_life=h, popularity=lam, partner="iknn",
                              blend=choice.iknn_blend)}
    out["chosen"] = out[choice.chosen]
    return out


class _Once:
    """rows -> rows of a D x K matrix built on the first call (``model.transform`` shares
    one random stream over its users, so it folds in every user once)."""

    def __init__(self, build):
        self.build, self.value = build, None

    def __call__(self, rows):
        if self.value is None:
            self.value = self.build()
        return self.value[rows]


def choose(model, *, refresh: bool = False) -> Choice:
    """Learn every variant's settings and the default on a validation split of the
    training corpus (see the module docstring); cached as ``model.ranking_``."""
    cached = model.__dict__.get("ranking_")
    if cached is not None and not refresh:
        return cached
    started = time.perf_counter()
    if model.n_topics * model.corpus_.n_items > DENSE_VALUES:
        # the variants read a dense K x V phi and score users x V rows: past this size the
        # exact sparse theta . phi top N is the one that scales (recorded as such)
        model.ranking_ = Choice(None, 0.0, 0.0, 0.0, "lda", {}, 0.0, 0)
        return model.ranking_
    parts, observed, hidden = validation_split(model)
    if hidden.n_tokens == 0 or not np.any(_new_items(observed, hidden)):
        # too small to validate anything: the plain chain (recorded as such)
        model.ranking_ = Choice(None, 0.0, 0.0, 0.0, "lda", {}, 0.0, 0)
        return model.ranking_
    recall, judge = {}, _Judge(observed, hidden)
    everyone = np.arange(observed.n_users)

    def score(name, **settings):
        scorer = Scorer(parts, observed, **settings)
        if scorer.theta is None:
            scorer.theta = scorer.mix(everyone)
        recall[name] = judge(scorer(everyone))
        return recall[name], scorer.theta

    score("lda", averaged=False)
    best_h, best, theta = None, -1.0, None
    for h in HALF_LIVES if observed.times is not None else (None,):
        value, t = score(f"lda_avg h={h}", half_life=h)
        if value > best + 1e-12:
            best_h, best, theta = h, value, t
    recall["lda_avg"] = recall["lda_avg h=None"]
    recall["lda_recency"] = best
    best_lam = 0.0
    for lam in POPULARITY[1:]:
        value, _ = score(f"lda+pop lam={lam}", popularity=lam, theta=theta)
        if value > best + 1e-12:
            best_lam, best = lam, value
    recall["lda+pop"] = best
    blends = {}
    for partner in ("knn", "ease", "iknn"):
        top, blends[partner] = -1.0, 0.0
        for b in BLENDS:
            value, _ = score(f"lda+{partner} b={b}", popularity=best_lam, partner=partner,
                             blend=b, theta=theta)
            if value > top + 1e-12:
                top, blends[partner] = value, b
        recall[f"lda+{partner}"] = top
    named = {n: recall[n] for n in NAMES[:-1]}
    chosen = max(named, key=lambda n: (named[n], -NAMES.index(n)))
    choice = Choice(best_h, best_lam, blends["knn"], blends["ease"], chosen,
                    {k: float(v) for k, v in recall.items()},
                    time.perf_counter() - started, observed.n_users, blends["iknn"])
    model.ranking_ = choice
    return choice


class _Judge:
    """Recall@``K_VALIDATION`` of a dense (validation users x V) score block, as
    :func:`gibbslda.ranking.ranking_metrics` defines it (observed items excluded, hidden
    items the user had observed dropped from the truth), without its per-call set-up;
    items tied with the K-th score are taken in any order (a choice between settings
    never hangs on such ties)."""

    def __init__(self, observed: Corpus, hidden: Corpus):
        rows = np.repeat(np.arange(observed.n_users), np.diff(observed.indptr))
        self.seen = (rows, observed.words)
        shape = (observed.n_users, observed.n_items)
        truth = np.zeros(shape, dtype=bool)
        truth[np.repeat(np.arange(hidden.n_users), np.diff(hidden.indptr)),
              hidden.words] = True
        truth[self.seen] = False
        self.truth = truth
        self.n_truth = truth.sum(axis=1)

    def __call__(self, block: np.ndarray) -> float:
        block[self.seen] = -np.inf
        width = min(K_VALIDATION, block.shape[1])
        top = np.argpartition(-block, width - 1, axis=1)[:, :width]  # ties: any order
        hits = (np.take_along_axis(self.truth, top, axis=1)
                & np.isfinite(np.take_along_axis(block, top, axis=1))).sum(axis=1)
        judged = self.n_truth > 0
        return float(np.mean(hits[judged] / np.minimum(K_VALIDATION,
                                                       self.n_truth[judged])))


def _new_items(observed: Corpus, hidden: Corpus) -> np.ndarray:
    """Per hidden token: whether its user's observed part lacks its item."""
    width = np.int64(observed.n_items)
    keys = np.repeat(np.arange(observed.n_users, dtype=np.int64),
                     np.diff(observed.indptr)) * width + observed.words
    hid = np.repeat(np.arange(hidden.n_users, dtype=np.int64),
                    np.diff(hidden.indptr)) * width + hidden.words
    return ~np.isin(hid, keys)


def validation_split(model):
    """(parts fitted without the hidden tokens, observed, hidden) of the validation
    users (see the module docstring), seeded by the model's seed."""
    corpus = model.corpus_
    rng = np.random.default_rng([_VALIDATION_SEED, model.seed_entropy_])
    lengths = np.diff(corpus.indptr)
    eligible = np.flatnonzero(lengths >= 4)
    n_val = min(VALIDATION_USERS, max(1, int(VALIDATION_SHARE * eligible.size)),
                max(100, VALIDATION_VALUES // corpus.n_items))
    users = np.sort(rng.choice(eligible, size=min(n_val, eligible.size), replace=False))
    hide = np.zeros(corpus.n_tokens, dtype=bool)
    for d in users:
        start, stop = corpus.indptr[d], corpus.indptr[d + 1]
        n_hidden = max(1, int(round(HIDDEN_SHARE * (stop - start))))
        if corpus.times is not None:
            order = np.argsort(corpus.times[start:stop], kind="stable")
        else:
            order = rng.permutation(stop - start)
        hide[start + order[-n_hidden:]] = True
    keep_train = _subset_tokens(corpus, ~hide, np.arange(corpus.n_users))
    observed = _subset_tokens(corpus, ~hide, users)
    hidden = _subset_tokens(corpus, hide, users)
    return _Parts(model, np.flatnonzero(hide), keep_train), observed, hidden


def _subset_tokens(corpus: Corpus, keep: np.ndarray, users: np.ndarray) -> Corpus:
    """The users' tokens where ``keep`` (None: all), as a Corpus over the same items
    (times kept)."""
    starts = corpus.indptr[users]
    lengths = corpus.indptr[users + 1] - starts
    first = np.cumsum(lengths) - lengths
    take = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - first, lengths)
    owner = np.repeat(np.arange(users.size), lengths)
    if keep is not None:
        take, owner = take[keep[take]], owner[keep[take]]
    indptr = np.zeros(users.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=users.size), out=indptr[1:])
    times = None if corpus.times is None else corpus.times[take]
    return Corpus(indptr, corpus.words[take], corpus.user_ids[users], corpus.item_ids,
                  times=times)
