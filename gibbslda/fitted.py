"""The fitted attributes of :class:`gibbslda.LDA` (sklearn-style, trailing underscore):
read from the chain state, the dense ones built on request and kept per chain state."""
from __future__ import annotations

import numpy as np

from gibbslda import _validate, scores as _scores


class FittedAttributes:
    """What a fitted model exposes; the estimator provides ``_check_fitted()`` (its chain
    state, or NotFittedError), ``corpus_`` and ``n_iter_``."""

    # -- fitted attributes -----------------------------------------------------------
    # topic_word_ and doc_topic_ are built on first access and kept until the chain
    # changes (a sweep, learned priors, a new fit or load): see _per_state. Per-call paths
    # (recommend, transform, profiles) read the sparse _tables() instead.
    @property
    def topic_word_(self) -> np.ndarray:
        """phi (K x V, float64): each topic's distribution over items, (n_wk + beta) /
        (n_k + V beta).

        Built on first access from the sparse counts and kept until the chain changes (the
        same array each time: copy it before writing into it): 8 K V bytes (2 GB at
        K = 500, V = 500k). For big models :meth:`topic_word` gives it as float32 (half
        that) or sparse (about 12 bytes a non-zero count), built anew each call and not
        kept."""
        return self._per_state("topic_word", lambda s: _scores.topic_word(self._tables()))

    @property
    def doc_topic_(self) -> np.ndarray:
        """theta (D x K, float64): each training user's topic mix, (n_dk + alpha) /
        (n_d + sum alpha).

        Built on first access and kept until the chain changes (the same array each time):
        8 D K bytes (4 GB at D = 1M, K = 500). :meth:`doc_topic` gives some users' rows, or
        float32, without keeping them."""
        return self._per_state("doc_topic", _scores.doc_topic)

    components_ = topic_word_

    def topic_word(self, *, dtype=np.float64, sparse: bool = False):
        """phi built now (not kept): dense K x V as ``dtype`` (float32: 4 K V bytes, each
        value ``topic_word_``'s rounded once), or with ``sparse=True`` a
        :class:`gibbslda.scores.SparseTopicWord`: the counts part n_kw / (n_k + V beta) as
        CSR arrays (indptr, indices, data; no scipy) plus the smoothing beta / (n_k +
        V beta) per topic, about 12 bytes a non-zero count."""
        tables = self._tables()
        if sparse:
            return _scores.sparse_topic_word(tables, dtype=dtype)
        return _scores.topic_word(tables, dtype=dtype)

    def doc_topic(self, rows=None, *, dtype=np.float64) -> np.ndarray:
        """theta of the training users ``rows`` (indices into ``user_ids_``; None: all,
        D x K) built now from their own tokens (not kept), as ``dtype``: bit for bit the
        rows of ``doc_topic_`` (rounded once for float32)."""
        state = self._check_fitted()
        if rows is not None:
            rows = _validate.as_ids(np.asarray(rows).reshape(-1), "rows",
                                    upper=state.indptr.shape[0] - 1,
                                    bound=f"n_users = {state.indptr.shape[0] - 1}",
                                    what="user indices", dtype=np.int64)
        return _scores.doc_topic(state, rows, dtype=dtype)

    @property
    def n_dk_(self) -> np.ndarray:
        """Per-user topic counts (D x K int32: 4 D K bytes, built anew on each access),
        derived from z_ (the sampler never stores them)."""
        return self._check_fitted().n_dk()

    @property
    def n_wk_(self) -> np.ndarray:
        """Item x topic counts (V x K int32: 4 V K bytes); derived for samplers "sparse" and
        "warp" on each access. :func:`gibbslda.sampler.item_topic_csr` gives the
        non-zero ones only."""
        return self._check_fitted().item_topic_counts()

    def _tables(self) -> "_scores.Tables":
        """The sparse item x topic counts and per-topic normalisers of the chain as it is
        (:class:`gibbslda.scores.Tables`), built once per chain state."""
        return self._per_state("tables", _scores.build_tables)

    def _per_state(self, name: str, build):
        """``build(state)``, kept until the chain changes: the key is the state object,
        the sweep count, the priors and the topic totals (any sweep, prior update, fit,
        resume or load changes one of them)."""
        state = self._check_fitted()
        key = (self.__dict__.get("n_iter_"), float(state.beta), state.alpha.tobytes(),
               state.n_k.tobytes())
        cache = self.__dict__.get("_state_cache")
        if cache is None or cache["state"] is not state or cache["key"] != key:
            cache = self._state_cache = {"state": state, "key": key}
        if name not in cache:
            cache[name] = build(state)
        return cache[name]

    @property
    def n_k_(self) -> np.ndarray:
        return self._check_fitted().n_k

    @property
    def z_(self) -> np.ndarray:
        return self._check_fitted().z

    @property
    def alpha_(self) -> np.ndarray:
        return self._check_fitted().alpha

    @property
    def beta_(self) -> float:
        return self._check_fitted().beta

    @property
    def rng_state_(self) -> np.ndarray:
        return self._check_fitted().rng

    @property
    def user_ids_(self) -> np.ndarray:
        self._check_fitted()
        return self.corpus_.user_ids

    @property
    def item_ids_(self) -> np.ndarray:
        self._check_fitted()
        return self.corpus_.item_ids
