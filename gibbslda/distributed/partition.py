"""A partition of an AD-LDA fit: a Dask actor holding one block of users on a worker."""
from __future__ import annotations

import time

import numpy as np

from gibbslda import _kernels, sampler as _sampler
from gibbslda.packed import apply_item_delta, combine, nonzero_entries, set_item_counts


class Partition:
    """One block of users, resident on a worker as a Dask actor: its tokens, topics and
    random stream, and its own copy of the item x topic counts (a GibbsState)."""

    def __init__(self, tokens, n_topics, n_items, alpha, beta, sampler, rng):
        _sampler.warm_up()
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

    def step(self, merged, n_sweeps: int, evaluate: bool, snapshot: bool, check: bool) -> dict:
        """Take the others' changes of the last round (``merged``: everyone's summed
        change and the new topic totals), run the sweeps, return this partition's change."""
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
        if evaluate:  # the users' terms of log p(w, z); the driver adds the others
            out["loglik"] = float(_kernels.log_joint(
                s.indptr, s.z, np.zeros(1, np.int32), np.int64(0), np.int64(s.n_items),
                np.zeros(s.n_topics, np.int64), s.alpha, s.beta))
        if snapshot:
            out["z"], out["rng"] = s.z.copy(), s.rng.copy()
        out["bytes"] = sum(a.nbytes for a in out["delta"])
        extra = [*out.get("counts", ()), out.get("z"), out.get("rng")]
        out["bytes_snapshot"] = sum(a.nbytes for a in extra if a is not None)
        out["step_s"] = time.perf_counter() - started
        return out
