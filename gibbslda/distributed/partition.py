"""The partitions of an AD-LDA fit on one worker: one Dask actor (:class:`Partitions`)
holding their blocks of users (:class:`Partition`) and running them on the worker's threads.

Dask gives a worker's actors a single thread between them, so one actor per partition ran
one partition at a time per worker process. :class:`Partitions` takes a worker's
partitions in one actor and runs each call over them on a pool of the worker's threads
(its ``nthreads``): the sweeps are numba kernels that release the GIL, so a worker with T
threads sweeps up to T partitions at once. Every partition keeps its own tokens, copy of
the counts and random stream, and the driver merges in partition order, so the result is
the same for any number of threads (and workers). The driver sends each call once per
worker (the merged counts included), not once per partition.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from gibbslda import _kernels, priors, sampler as _sampler
from gibbslda.packed import apply_item_delta, combine, nonzero_entries, set_item_counts


class Partitions:
    """The partitions placed on one worker, as one Dask actor: each method runs the
    partitions' method of that name on a pool of ``n_threads`` threads and returns their
    answers in the order of ``blocks``.

    Parameters
    ----------
    blocks : list of (indptr, words, z or None)  each partition's tokens (and topics).
    rngs : list of uint64 (1, 4)  each partition's stream.
    n_threads : int  the worker's threads.
    """

    def __init__(self, blocks, n_topics, n_items, alpha, beta, sampler, rngs, n_threads):
        _sampler.warm_up()  # compile (or load) the kernels once, before the threads
        self.n_threads = max(1, min(n_threads, len(blocks)))
        self.pool = ThreadPoolExecutor(self.n_threads, thread_name_prefix="gibbslda-partition")
        self.parts = list(self.pool.map(
            lambda args: Partition(*args, n_topics, n_items, alpha, beta, sampler),
            zip(blocks, rngs)))

    def _each(self, method: str, *args) -> list:
        return list(self.pool.map(lambda part: getattr(part, method)(*args), self.parts))

    def counts(self) -> list:
        return self._each("counts")

    def load(self, counts) -> None:
        self._each("load", counts)

    def snapshot(self) -> list:
        return self._each("snapshot")

    def step(self, merged, n_sweeps: int, evaluate: bool, snapshot: bool, check: bool,
             base: int = 0) -> list:
        return self._each("step", merged, n_sweeps, evaluate, snapshot, check, base)

    def set_priors(self, alpha, beta, evaluate: bool) -> list:
        return self._each("set_priors", alpha, beta, evaluate)

    def threads(self) -> int:
        """The threads this worker's partitions run on (at most one per partition)."""
        return self.n_threads


class Partition:
    """One block of users: its tokens, topics and random stream, and its own copy of the
    item x topic counts (a GibbsState)."""

    def __init__(self, tokens, rng, n_topics, n_items, alpha, beta, sampler):
        indptr, words, z = tokens
        kwargs = {"alpha": alpha, "beta": beta, "rng": rng, "sampler": sampler,
                  "n_shards": 1}
        if z is None:
            self.state = _sampler.init_state(indptr, words, n_topics, n_items, **kwargs)
        else:
            self.state = _sampler.restore_state(indptr, words, z, n_topics, n_items,
                                                **kwargs)
        self.z0 = np.empty_like(self.state.z)
        self.own = None  # this partition's change of the counts in the last round

    def counts(self):
        """The item x topic counts of this partition's own tokens, as sparse entries."""
        s = self.state
        return combine([s.words.astype(np.int64) * s.n_topics + s.z], [1])

    def load(self, counts) -> None:
        set_item_counts(self.state, *counts)

    def snapshot(self):
        """This partition's topics and random stream (copies)."""
        return self.state.z.copy(), self.state.rng.copy()

    def set_priors(self, alpha, beta, evaluate: bool):
        """Sample with the priors the driver learned from now on; with ``evaluate``,
        return the users' terms of log p(w, z) under them (else None)."""
        self.state.alpha, self.state.beta = np.array(alpha, dtype=np.float64), float(beta)
        return self._users_loglik() if evaluate else None

    def _users_loglik(self) -> float:
        s = self.state  # the users' terms of log p(w, z); the driver adds the others
        return float(_kernels.log_joint(
            s.indptr, s.z, np.zeros(1, np.int32), np.int64(0), np.int64(s.n_items),
            np.zeros(s.n_topics, np.int64), s.alpha, s.beta))

    def step(self, merged, n_sweeps: int, evaluate: bool, snapshot: bool, check: bool,
             base: int = 0) -> dict:
        """Take the others' changes of the last round (``merged``: everyone's summed
        change and the new topic totals), run the sweeps, return this partition's change
        (and with ``base`` > 0 its users' histograms for learning alpha, keyed by
        ``base``: :func:`gibbslda.priors.user_histograms`)."""
        s, out = self.state, {}
        started = time.perf_counter()
        if merged is not None:
            keys, values, n_k = merged
            net = combine([keys, self.own[0]], [values, -self.own[1]])
            apply_item_delta(self.state, *net)
            s.n_k[:] = n_k
        sampling = time.perf_counter()
        if check:
            out["counts"] = nonzero_entries(s.item_topic_counts())
        np.copyto(self.z0, s.z)
        n_k0 = s.n_k.copy()
        for _ in range(n_sweeps):
            _sampler.sweep(s)
        done = time.perf_counter()
        changed = np.flatnonzero(s.z != self.z0)
        w = s.words[changed].astype(np.int64) * s.n_topics
        self.own = combine([w + self.z0[changed], w + s.z[changed]], [-1, 1])
        del changed, w
        out.update(sync_s=sampling - started + time.perf_counter() - done,
                   sample_s=done - sampling, delta=(*self.own, s.n_k - n_k0))
        if evaluate:
            out["loglik"] = self._users_loglik()
        if base:
            out["hist"] = priors.user_histograms(s.indptr, s.z, s.n_topics, base)
        if snapshot:
            out["z"], out["rng"] = s.z.copy(), s.rng.copy()
        out["bytes"] = sum(a.nbytes for a in (*out["delta"], *out.get("hist", ())))
        extra = [*out.get("counts", ()), out.get("z"), out.get("rng")]
        out["bytes_snapshot"] = sum(a.nbytes for a in extra if a is not None)
        out["step_s"] = time.perf_counter() - started
        return out
