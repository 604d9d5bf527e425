"""Recommendation variants of a fitted LDA, and the honest choice of the default.

Every variant scores p(item | user) from the users' histories (a
:class:`~gibbslda.corpus.Corpus` of their items, by default the training corpus):

- ``"lda"``: theta . phi of the chain's last state (training users: ``doc_topic_``; other
  users: ``model.transform``), what ``recommend`` did before issue 15.
- ``"lda_avg"``: phi averaged over thinned posterior samples (:mod:`gibbslda.posterior`),
  theta folded in against it by weighted EM (:mod:`gibbslda._kernels.foldin_em`, 30 steps).
- ``"lda_recency"``: ``lda_avg`` with each token weighted 0.5 ** (age / half-life), age
  from the user's latest event (needs ``Corpus.times``; the half-life is learned).
- ``"lda+pop"``: (1 - lam_u) theta . phi + lam_u p_pop(item), a background component
  (Wilhelm's LDA4Rec); p_pop(item) the training users who have the item, normalised to
  sum to 1. lam_u is each user's own propensity to follow popularity, fitted by EM on the
  user's own (recency-weighted) tokens jointly with a topic mix under the model
  p(w | u) = (1 - lam_u) sum_k theta_uk phi_kw + lam_u p_pop(w), with a Beta prior of
  mean lam (one share, learned) and strength s (pseudo-tokens, learned from
  ``STRENGTHS`` and infinity: lam_u = lam for every user, the variant before per-user
  shares, so the choice can only keep or raise its validation recall).
  :func:`shares` fits them (:func:`gibbslda._kernels.foldin_em.em_theta_share`).
  LDA4Rec puts a per-user conformity (log-normal) times a learned item popularity into the
  logits of p(item | topic) and learns both with the topics by variational inference; here
  the topics are the fitted chain's, the item popularity is counted, the mixture is linear,
  and only lam_u is learned per user, at fold-in. What differs on purpose: the scores use
  the theta folded in without the background (as with one share), not the joint fit's:
  the joint theta moves a popularity follower's mass onto their own interests, and on a
  planted corpus (tests/test_recommend_quality.py, followers and non-followers) that cost
  the followers 0.12 of Recall@20 while the lam_u alone gained 0.05 over one share.
- ``"lda+knn"``, ``"lda+ease"``: the ``lda+pop`` scores (each user's row divided by its
  maximum) blended with item-kNN or EASE (:mod:`gibbslda.baselines`, rows divided by their
  maximum) as (1 - b) lda + b partner, b learned. EASE inverts an m x m matrix, m =
  min(V, ``EASE_ITEMS``): O(m^3) time, 8 m^2 bytes (5000 items: 200 MB, seconds), or, with
  fewer training users n than m, an n x n one (:class:`~gibbslda.baselines.EASE`'s
  Woodbury form: O(n^2 m), 8 n m + 8 n^2 bytes); items beyond the m most popular get no
  EASE part (they rank by the LDA part only).
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
never sees test data: it carves a validation split from the training corpus only
(:mod:`gibbslda.validation`: up to 2000 users hide their latest 30% of tokens). No second
chain is fitted: every LDA variant is
validated on phi of the last state's counts minus the hidden tokens' topics (exact: the
other tokens' counts, one dense K x V phi); the averaged counts cannot be used, as they
hold the hidden tokens' topics of earlier samples. So ``"lda_avg"`` validates as ``"lda"``
(and loses the tie) and the settings of the averaged variants are learned on the last
state's phi; the rest of the chain was fitted with the hidden tokens (each is one of the
counts the other tokens' topics were drawn against), a small leak that kNN and EASE,
fitted on the training corpus minus the hidden tokens (as is popularity), do not get.
The settings are then picked by Recall@20 on the hidden items: the
half-life on ``lda_avg``, lam on the best of those, the propensity strength around that
lam (kept only if its ``lda+pop`` beats the one share's), b for each partner on the one
share's ``lda+pop`` and on the per-user one's (b = 1 is the partner alone: if it wins,
the default is honest about it); the per-user shares are kept when their best variant
validates above the one share's best (or ties it with a better ``lda+pop``), so they
never lower the default's validation recall; "chosen" is the best of all, ties to the
simpler variant (earlier in ``NAMES``). Its cost: one fit of each partner without the
hidden tokens (EASE's O(min(n, m)^3) dominates on small corpora), one leave-out phi, 6
fold-ins (one per half-life) and 4 EM fits of the shares, 17 score blocks of the
validation users, and 24 (48 with per-user shares) blends judged on the fly from an LDA
block and each partner's block, never built (bench/README.md, against the fit), on the
model's ``n_jobs`` threads.

The fitted partner is not saved (EASE's B is 4 m^2 bytes even in float32: 100 MB at
m = 5000, more than most model folders): when the chosen variant is ``"lda+knn"``,
``"lda+ease"`` or ``"lda+iknn"``, the first blended scoring in a process refits it on the
training corpus (EASE: O(min(n, m)^3), seconds at n, m >= 5000; kNN: O(co-occurrences)),
then keeps it on the model.

Usage: ``variants(model, history)[name]`` is a callable ``users -> (len(users), V)`` float
scores (rows of ``history``) that :func:`gibbslda.ranking.evaluate_rankings` takes as its
scorer, with ``history`` as its ``train`` argument.

References
----------
Wilhelm (2021), "Matrix factorization for collaborative filtering is just solving an
adjoint latent Dirichlet allocation model after all", RecSys (LDA4Rec: the popularity
component and per-user conformity; code: github.com/FlorianWilhelm/lda4rec, lda.py).
Steck (2019), "Embarrassingly shallow autoencoders for sparse data", WWW.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from gibbslda import posterior
from gibbslda.posterior import NAMES, Choice  # NAMES: the variants, checked on load
from gibbslda._kernels.foldin_em import em_theta, em_theta_share
from gibbslda._kernels.neighbours import interest_agreement
from gibbslda.baselines import EASE, ItemKNN
from gibbslda.corpus import Corpus, as_corpus
from gibbslda.model import _threads
from gibbslda.ranking import _as_csr
from gibbslda.validation import Judge, new_items, split, subset_tokens

EM_ITER = 30
EASE_ITEMS, EASE_L2, KNN_NEIGHBOURS = 5000, 500.0, 100
DENSE_VALUES = 2 ** 26  # largest K x V for the dense variants (a 512 MB phi); past it: "lda"
HALF_LIVES = (None, 365.0, 90.0, 30.0, 7.0, 1.0)  # days; None: every event weighs 1
POPULARITY = (0.0, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)  # the background share lam
STRENGTHS = (100.0, 20.0, 5.0, 1.0)  # per-user shares' Beta prior strengths (pseudo-tokens)
BLENDS = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)  # 1: the partner alone
_DAY = 86_400 * 10 ** 6  # microseconds


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
    asked only (each user's fold-in is its own, so chunking never changes a score).
    ``strength``: the Beta prior strength of per-user background shares around
    ``popularity`` (None: one share for all); ``share``: those shares of all rows (D,),
    given with an all-rows ``theta``."""

    def __init__(self, parts: _Parts, history: Corpus, *, averaged=True, half_life=None,
                 popularity=0.0, strength=None, partner=None, blend=0.0, theta=None,
                 share=None):
        self.parts, self.history, self.averaged = parts, history, averaged
        self.half_life, self.theta, self.share = half_life, theta, share
        self.popularity, self.partner, self.blend = popularity, partner, blend
        self.strength = strength if popularity > 0 else None
        self._pair = None  # the history's CSR pair, built on the first blended call

    def mix(self, users: np.ndarray) -> tuple:
        """(theta (len(users) x K), the users' own background shares (len(users),) or
        None: the one share ``popularity``) of the history's rows ``users``."""
        if isinstance(self.theta, np.ndarray):
            return self.theta[users], None if self.share is None else self.share[users]
        if self.theta is not None:
            return self.theta(users), None
        return fold_in(self.parts, subset_tokens(self.history, None, users), self.averaged,
                       self.half_life, self.popularity, self.strength)

    def __call__(self, users) -> np.ndarray:
        with _threads(self.parts.model.n_jobs):  # the kernels run on the model's threads
            return self._scores(np.asarray(users, dtype=np.int64))

    def _scores(self, users: np.ndarray) -> np.ndarray:
        theta, share = self.mix(users)
        scores = theta @ self.parts.phi(self.averaged)
        lam = self.popularity if share is None else share[:, None]  # one share, or each's
        if share is not None or self.popularity > 0:
            scores *= 1.0 - lam
            scores += lam * self.parts.popularity()
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
    agreement = np.empty(sims.size)
    interest_agreement(indptr, cols, np.ascontiguousarray(q), agreement)
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


def fold_in(parts: _Parts, history: Corpus, averaged: bool, half_life=None,
            popularity=0.0, strength=None) -> tuple:
    """(theta (D x K), shares (D,) or None) of the history's users by weighted EM against
    the parts' phi; with a ``strength``, also each user's own background share (see
    :func:`shares`)."""
    weight = recency_weights(history, half_life)
    theta = np.empty((history.n_users, parts.alpha.shape[0]))
    em_theta(history.indptr, history.words.astype(np.int32), weight,
             parts.phi_wk(averaged), parts.alpha, np.int64(EM_ITER), theta)
    if strength is None:
        return theta, None
    return theta, shares(parts, history, averaged, half_life, popularity, strength, weight)


def shares(parts: _Parts, history: Corpus, averaged: bool, half_life, popularity: float,
           strength: float, weight=None) -> np.ndarray:
    """float64 (D,): each user's background share lam_u, fitted by EM jointly with a topic
    mix (which is then dropped) under a Beta prior of mean ``popularity`` and ``strength``
    pseudo-tokens (:func:`gibbslda._kernels.foldin_em.em_theta_share`)."""
    if weight is None:
        weight = recency_weights(history, half_life)
    joint = np.empty((history.n_users, parts.alpha.shape[0]))
    out = np.empty(history.n_users)
    em_theta_share(history.indptr, history.words.astype(np.int32), weight,
                   parts.phi_wk(averaged), parts.alpha, parts.popularity(),
                   np.array([popularity, strength], dtype=np.float64), np.int64(EM_ITER),
                   joint, out)
    return out


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
    pop = dict(half_life=choice.half_life_days, popularity=choice.popularity,
               strength=choice.propensity_strength)
    out = {"lda": Scorer(parts, history, averaged=False, theta=last),
           "lda_avg": Scorer(parts, history),
           "lda_recency": Scorer(parts, history, half_life=choice.half_life_days),
           "lda+pop": Scorer(parts, history, **pop),
           "lda+knn": Scorer(parts, history, partner="knn", blend=choice.knn_blend, **pop),
           "lda+ease": Scorer(parts, history, partner="ease", blend=choice.ease_blend,
                              **pop),
           "lda+iknn": Scorer(parts, history, partner="iknn", blend=choice.iknn_blend,
                              **pop)}
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
    training corpus (see the module docstring), on the model's ``n_jobs`` threads (the
    choice is the same on any number); cached as ``model.ranking_``."""
    cached = model.__dict__.get("ranking_")
    if cached is not None and not refresh:
        return cached
    with _threads(model.n_jobs):
        return _choose(model)


def _choose(model) -> Choice:
    started = time.perf_counter()
    if model.n_topics * model.corpus_.n_items > DENSE_VALUES:
        # the variants read a dense K x V phi and score users x V rows: past this size the
        # exact sparse theta . phi top N is the one that scales (recorded as such)
        model.ranking_ = Choice(None, 0.0, 0.0, 0.0, "lda", {}, 0.0, 0)
        return model.ranking_
    parts, observed, hidden = validation_split(model)
    if hidden.n_tokens == 0 or not np.any(new_items(observed, hidden)):
        # too small to validate anything: the plain chain (recorded as such)
        model.ranking_ = Choice(None, 0.0, 0.0, 0.0, "lda", {}, 0.0, 0)
        return model.ranking_
    recall, judge = {}, Judge(observed, hidden)
    everyone = np.arange(observed.n_users)

    def score(name, **settings):
        scorer = Scorer(parts, observed, **settings)
        if scorer.theta is None:
            scorer.theta, scorer.share = scorer.mix(everyone)
        block = scorer(everyone)
        recall[name] = judge(block)
        return recall[name], dict(theta=scorer.theta, share=scorer.share), block

    score("lda", averaged=False)
    best_h, best, mix = None, -1.0, None
    for h in HALF_LIVES if observed.times is not None else (None,):
        value, m, block = score(f"lda_avg h={h}", half_life=h)
        if value > best + 1e-12:
            best_h, best, mix, top = h, value, m, block
    recall["lda_avg"] = recall["lda_avg h=None"]
    recall["lda_recency"] = best
    best_lam = 0.0
    for lam in POPULARITY[1:]:
        value, _, block = score(f"lda+pop lam={lam}", popularity=lam, **mix)
        if value > best + 1e-12:
            best_lam, best, top = lam, value, block
    bases = [(None, best, top)]  # one share for all; per-user shares around best_lam:
    for strength in STRENGTHS if best_lam > 0 else ():
        share = shares(parts, observed, True, best_h, best_lam, strength)
        value, _, block = score(f"lda+pop lam={best_lam} s={strength}",
                                popularity=best_lam, theta=mix["theta"], share=share)
        if value > max(best, bases[-1][1]) + 1e-12:
            bases[1:] = [(strength, value, block)]
        block = None  # a losing block is freed before the next is scored
    del block, top
    # the blends on each base (one share; the best per-user shares): the base whose best
    # variant validates higher is kept (on a tie, as when a partner alone wins, the one
    # whose lda+pop does), so per-user shares never lower the default's recall
    pair, outcome = parts.pair(observed), []
    for strength, value, block in bases:
        block /= np.maximum(block.max(axis=1, keepdims=True), 1e-300)  # as blend() does
        tag = "" if strength is None else f" s={strength}"
        found = {"lda+pop": value}
        for partner in ("knn", "ease", "iknn"):
            other = parts.partner_scores(partner, everyone, pair)
            found[f"lda+{partner}"], found[partner] = value, 0.0  # b = 0: lda+pop itself
            for b in BLENDS[1:]:
                got = recall[f"lda+{partner} b={b}{tag}"] = judge(block, other, b)
                if got > found[f"lda+{partner}"] + 1e-12:
                    found[f"lda+{partner}"], found[partner] = got, b
        outcome.append((max(v for k, v in found.items() if k.startswith("lda")), value,
                        strength, found))
        del block
    *_, best_s, found = max(outcome, key=lambda o: (round(o[0], 12), o[1]))
    recall.update({k: v for k, v in found.items() if k.startswith("lda")})
    blends = {p: found[p] for p in ("knn", "ease", "iknn")}
    named = {n: recall[n] for n in NAMES[:-1]}
    chosen = max(named, key=lambda n: (named[n], -NAMES.index(n)))
    choice = Choice(best_h, best_lam, blends["knn"], blends["ease"], chosen,
                    {k: float(v) for k, v in recall.items()},
                    time.perf_counter() - started, observed.n_users, blends["iknn"], best_s)
    model.ranking_ = choice
    return choice


def validation_split(model):
    """(parts fitted without the hidden tokens, observed, hidden) of the validation
    users (:func:`gibbslda.validation.split`), seeded by the model's seed."""
    leave_out, keep_train, observed, hidden = split(model.corpus_, model.seed_entropy_)
    return _Parts(model, leave_out, keep_train), observed, hidden
