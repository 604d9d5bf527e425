"""The driver's side of an AD-LDA fit: the actors, the rounds, the merged counts, lost
workers and checkpoints (see the package docstring)."""
from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import numpy as np

from gibbslda import _kernels, io, priors, sampler as _sampler
from gibbslda.distributed.partition import Partitions
from gibbslda.model import CHECK_ENV, LDA, SweepInfo
from gibbslda.packed import add_entries, combine


class Run:
    """One call of fit: the driver's side of the rounds (global counts, actors, history)."""

    def __init__(self, est, model, corpus, bounds, client):
        self.est, self.model, self.corpus, self.bounds = est, model, corpus, bounds
        self.client, self.actors, self.futures, self.merged = client, [], [], None
        self.groups = []  # the partitions of each actor (one per worker), in actor order
        self.round = self.sweeps = 0
        self.seconds = 0.0
        self.history = np.zeros(0, dtype=io.ROUND_DTYPE)
        self.z = self.rng = self.saved = None
        self.check = os.environ.get(CHECK_ENV) == "1"

    # -- setup -------------------------------------------------------------------------
    def start(self) -> None:
        """Place the partitions on the workers in turn, create one actor per worker for
        its partitions (run on its threads), then give each the global counts."""
        started = time.perf_counter()
        threads = self.client.nthreads()
        workers = sorted(threads)
        if not workers:
            raise ValueError("the Dask cluster has no workers: start some, then call fit")
        c, m = self.corpus, self.model
        self.base = int(priors.histogram_base(c.indptr))  # keys of the user histograms
        sent = 0
        self.workers = [workers[p % len(workers)] for p in range(self.est.n_partitions)]
        self.groups = [[p for p, w in enumerate(self.workers) if w == worker]
                       for worker in workers[:self.est.n_partitions]]
        for group in self.groups:
            worker, blocks = self.workers[group[0]], []
            for p in group:
                lo, hi = c.indptr[self.bounds[p]], c.indptr[self.bounds[p + 1]]
                blocks.append((c.indptr[self.bounds[p]:self.bounds[p + 1] + 1] - lo,
                               c.words[lo:hi], None if self.z is None else self.z[lo:hi]))
            sent += sum(a.nbytes for b in blocks for a in b if a is not None)
            data = self.client.scatter(blocks, workers=[worker], hash=False)
            self.futures.append(self.client.submit(
                Partitions, data, m.n_topics, c.n_items, m._alpha, m._beta, m.sampler,
                [self.rng[p:p + 1].copy() for p in group], threads[worker], actor=True,
                workers=[worker], allow_other_workers=False, pure=False))
        self.actors = self._gather(0, self.futures)
        used = self._gather(0, [actor.threads() for actor in self.actors])
        own = self._call(0, "counts")
        self.g_keys, self.g_values = combine([o[0] for o in own], [o[1] for o in own])
        self.n_k = np.bincount(self.g_keys % m.n_topics, weights=self.g_values,
                               minlength=m.n_topics).astype(np.int64)
        self._check_global()
        self._call(0, "load", (self.g_keys, self.g_values, self.n_k))
        self.setup = {"seconds": time.perf_counter() - started, "bytes_tokens": sent,
                      "bytes_up": sum(o[0].nbytes + o[1].nbytes for o in own),
                      "bytes_down": self._down_bytes((self.g_keys, self.g_values, self.n_k)),
                      "workers": {self.workers[g[0]]: {"partitions": g, "threads": t}
                                  for g, t in zip(self.groups, used)}}

    # -- the rounds --------------------------------------------------------------------
    def rounds(self, callback) -> None:
        est = self.est
        while self.sweeps < est.n_iter:
            self.round += 1
            n = min(est.sweeps_per_round, est.n_iter - self.sweeps)
            last = self.sweeps + n >= est.n_iter
            evaluate = self.round % est.eval_every == 0 or last
            save = est.checkpoint is not None and (self.round % est.checkpoint_every == 0
                                                    or last)
            snapshot = save or last or self.check
            learn = self._learning_due(self.sweeps, self.sweeps + n)
            base = self.base if learn and isinstance(self.model.alpha, str) else 0
            row = np.zeros(1, dtype=io.ROUND_DTYPE)
            started = time.perf_counter()
            outs = self._call(self.round, "step", self.merged, n, evaluate and not learn,
                              snapshot, self.check, base)
            sampled = time.perf_counter()
            self._merge(outs)
            if learn:
                self._learn(outs, evaluate)
            merged = time.perf_counter()
            if last:
                self.merged = None
            row["bytes_down"] = self._down_bytes(self.merged)
            if learn:  # the learned priors, sent at once
                row["bytes_down"] += self._down_bytes((self.model._alpha, np.zeros(1)))
            self.sweeps += n
            if snapshot:
                self.z = np.concatenate([o["z"] for o in outs])
                self.rng = np.concatenate([o["rng"] for o in outs])
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            row["round"], row["sweeps"], row["seconds"] = self.round, self.sweeps, self.seconds
            row["sample_s"] = max(o["sample_s"] for o in outs)
            row["sync_s"] = max(o["sync_s"] for o in outs)
            row["step_s"] = max(o["step_s"] for o in outs)
            row["merge_s"] = merged - sampled
            row["bytes_up"] = sum(o["bytes"] for o in outs)
            row["bytes_snapshot"] = sum(o["bytes_snapshot"] for o in outs)
            row["loglik"] = self._loglik(outs) if evaluate else np.nan
            self.history = np.concatenate([self.history, row])
            if save:
                self.history["checkpoint_s"][-1] = self.save_checkpoint()
            if callback is not None:
                loglik = self.history["loglik"][-1]
                info = SweepInfo(self.sweeps, est.n_iter, self.seconds,
                                 self.corpus.n_tokens * n / max(elapsed, 1e-12),
                                 None if np.isnan(loglik) else float(loglik),
                                 round=self.round)
                if callback(info) is False:
                    self.stop(snapshot, save)
                    return

    def _learning_due(self, before: int, after: int) -> bool:
        """Whether the "auto" priors are learned after a round that took the sweep count
        from ``before`` to ``after``: LDA's schedule (a due count: ``optimize_burn_in`` or
        more, a multiple of ``optimize_every``) reached during the round."""
        m = self.model
        if not (isinstance(m.alpha, str) or isinstance(m.beta, str)):
            return False
        every = m.optimize_every
        due = -(-max(m.optimize_burn_in, before + 1) // every) * every  # the first one
        return due <= after

    def _learn(self, outs, evaluate: bool) -> None:
        """Learn the "auto" priors from the merged counts (beta) and the partitions' user
        histograms summed in partition order (alpha), as LDA's learn_alpha / learn_beta
        on the gathered chain; send them to every partition (which then evaluate their
        users' terms of log p(w, z) under them, when ``evaluate``)."""
        m = self.model
        if isinstance(m.alpha, str):
            hist = priors.sum_histograms([o["hist"] for o in outs])
            m._alpha = priors.fit_alpha(m._alpha, hist, self.base)[0]
        if isinstance(m.beta, str):
            count_hist = _kernels.count_histogram(self.g_values, np.int64(0))
            m._beta = priors.fit_beta(m._beta, count_hist, self.n_k, self.corpus.n_items)[0]
        answers = self._call(self.round, "set_priors", m._alpha, m._beta, evaluate)
        for o, loglik in zip(outs, answers):
            if evaluate:
                o["loglik"] = loglik

    def stop(self, snapshot: bool, saved: bool) -> None:
        """End the rounds early: gather the chain unless this round did, checkpoint it
        unless this round did."""
        if not snapshot:
            outs = self._call(self.round, "snapshot")
            self.z = np.concatenate([o[0] for o in outs])
            self.rng = np.concatenate([o[1] for o in outs])
        if self.est.checkpoint is not None and not saved:
            self.history["checkpoint_s"][-1] = self.save_checkpoint()

    def _merge(self, outs) -> None:
        """Sum the partitions' changes in partition order, apply and check them."""
        k = self.model.n_topics
        keys, values = combine([o["delta"][0] for o in outs], [o["delta"][1] for o in outs])
        nk_delta = np.sum([o["delta"][2] for o in outs], axis=0)
        by_topic = np.bincount(keys % k, weights=values, minlength=k)
        if not np.array_equal(by_topic.astype(np.int64), nk_delta):
            raise RuntimeError(f"round {self.round}: the item count changes disagree with "
                               "the topic total changes")
        if self.check:
            for p, o in enumerate(outs):
                if not (np.array_equal(o["counts"][0], self.g_keys)
                        and np.array_equal(o["counts"][1], self.g_values)):
                    raise RuntimeError(f"round {self.round}: partition {p}'s copy of the "
                                       "counts differs from the global counts")
        self.g_keys, self.g_values = add_entries(self.g_keys, self.g_values, keys, values)
        self.n_k = self.n_k + nk_delta
        self.merged = (keys, values, self.n_k)  # sent with the next round's step
        self._check_global()
        if self.check:
            z = np.concatenate([o["z"] for o in outs])
            _, n_wk, n_k = _sampler.counts_from_z(self.corpus.indptr, self.corpus.words, z,
                                                  k, self.corpus.n_items)
            flat = n_wk.reshape(-1)
            if not (np.array_equal(n_k, self.n_k) and np.array_equal(
                    np.flatnonzero(flat), self.g_keys) and np.array_equal(
                    flat[self.g_keys], self.g_values)):
                raise RuntimeError(f"round {self.round}: the merged counts disagree with "
                                   "the topics of the tokens")

    def _check_global(self) -> None:
        n = self.corpus.n_tokens
        if (self.g_values.size and self.g_values.min() < 0) or self.n_k.min() < 0:
            raise RuntimeError(f"round {self.round}: a merged count is negative")
        if int(self.g_values.sum()) != n or int(self.n_k.sum()) != n:
            raise RuntimeError(f"round {self.round}: merged counts sum to "
                               f"{int(self.g_values.sum())} and {int(self.n_k.sum())}, "
                               f"not to the {n} tokens")

    def _loglik(self, outs) -> float:
        """log p(w, z) per token: the users' terms from the partitions, the rest here."""
        m = self.model
        items = _kernels.log_joint(np.zeros(1, np.int64), np.zeros(0, np.int32),
                                   self.g_values, np.int64(0), np.int64(self.corpus.n_items),
                                   self.n_k, m._alpha, m._beta)
        return (items + sum(o["loglik"] for o in outs)) / self.corpus.n_tokens

    # -- communication and faults ------------------------------------------------------
    def _down_bytes(self, payload) -> int:
        """Bytes of ``payload`` as sent to every worker, once for all its partitions
        (None: nothing to send)."""
        return 0 if payload is None else sum(a.nbytes for a in payload) * len(self.actors)

    def _call(self, round_, method, *args) -> list:
        """Call ``method`` once per worker (each runs it for its partitions); the answers
        in partition order."""
        try:
            calls = [getattr(actor, method)(*args) for actor in self.actors]
        except Exception as exc:
            raise self._lost(exc, round_) from exc
        answers = [None] * len(self.workers)
        for group, answer in zip(self.groups, self._gather(round_, calls)):
            for p, one in zip(group, answer or [None] * len(group)):
                answers[p] = one
        return answers

    def _gather(self, round_, calls):
        """Wait for every call. A lost worker is noticed as soon as the scheduler knows,
        not when a call to it gives up (a refused connection is retried for 30 s)."""
        try:
            pause = 0.001
            while not all(call.done() for call in calls):
                if self._lost_partitions():
                    raise OSError("a worker holding a partition was lost")
                time.sleep(pause)
                pause = min(2 * pause, 0.01)
            return [call.result() for call in calls]
        except Exception as exc:
            raise self._lost(exc, round_) from exc

    def _lost_partitions(self) -> list:
        return sorted(p for group, f in zip(self.groups, self.futures)
                      if f.status not in ("finished", "pending") for p in group)

    def _lost(self, exc, round_: int):
        """The RuntimeError that names a lost worker, or ``exc`` when none was lost."""
        if not isinstance(exc, (OSError, RuntimeError)):
            return exc
        deadline = time.monotonic() + 10.0  # the scheduler may notice a death a bit later
        while True:
            lost = self._lost_partitions()
            if lost or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not lost:
            return exc
        where = f"at round {round_}" if round_ else "during setup"
        if self.saved is not None:
            then = (f"the last checkpoint is at {self.est.checkpoint} (round {self.saved[0]},"
                    f" {self.saved[1]} sweeps); call fit(X, client, resume=True) on a "
                    "healthy cluster to continue from it")
        else:
            then = ("no checkpoint was written, so training must start again: pass "
                    "checkpoint=path to make a lost worker recoverable")
        names = ", ".join(f"{self.workers[g[0]]} (partition{'s' if len(g) > 1 else ''} "
                          f"{', '.join(map(str, g))})" for g in self.groups if g[0] in lost)
        return RuntimeError(f"worker {names} lost {where}; {then}")

    def close(self) -> None:
        self.actors, self.futures, self.merged = [], [], None

    # -- checkpoints and the result ----------------------------------------------------
    def save_checkpoint(self) -> float:
        started = time.perf_counter()
        io.write_checkpoint(self.est.checkpoint, z=self.z, rng=self.rng, rounds=self.history,
                            meta={"round": self.round, "sweeps": self.sweeps,
                                  "seconds": self.seconds,
                                  "seed_entropy": str(self.est.seed_entropy_),
                                  "settings": self._settings(),
                                  "priors": {"alpha": self.model._alpha.tolist(),
                                             "beta": float(self.model._beta)},
                                  "corpus": _fingerprint(self.corpus)})
        self.saved = (self.round, self.sweeps)
        return time.perf_counter() - started

    def load_checkpoint(self) -> None:
        if self.est.checkpoint is None:
            raise ValueError("resume=True needs checkpoint=path, the file to continue from")
        path = Path(self.est.checkpoint)
        arrays, meta = io.read_checkpoint(path)
        if meta.get("corpus") != _fingerprint(self.corpus):
            raise ValueError(f"checkpoint {path} was written for another corpus "
                             f"({meta.get('corpus')}); pass the corpus it was trained on")
        saved = meta.get("settings") or {}
        for name, value in self._settings().items():
            if saved.get(name) != value:
                fixed = (name in ("alpha", "beta") and value == "auto"
                         and saved.get(name) is not None)
                hint = ("; it has fixed priors (0.1 and 0.01 were the defaults before "
                        "priors were learned): give them to resume it (train --dask: "
                        "--alpha 0.1 --beta 0.01)") if fixed else ""
                raise ValueError(f"checkpoint {path} has {name}={saved.get(name)!r}, this "
                                 f"model {value!r}: they must agree to resume{hint}")
        n, p, k = self.corpus.n_tokens, self.est.n_partitions, self.model.n_topics
        z, rng = arrays["z"], arrays["rng"]
        if (z.shape != (n,) or z.dtype != np.int32 or rng.shape != (p, 4)
                or rng.dtype != np.uint64 or arrays["rounds"].dtype != io.ROUND_DTYPE
                or (n and not 0 <= z.min() <= z.max() < k)):
            raise ValueError(f"checkpoint {path} is damaged: its arrays do not fit the "
                             "corpus and settings")
        self.z, self.rng, self.history = arrays["z"], arrays["rng"], arrays["rounds"]
        self.round, self.sweeps, self.seconds = meta["round"], meta["sweeps"], meta["seconds"]
        self.est.seed_entropy_ = int(meta["seed_entropy"])
        self.saved = (self.round, self.sweeps)
        learned = meta.get("priors")  # the chain's priors then (learned or fixed)
        if learned is not None:
            try:
                alpha = np.asarray(learned["alpha"], dtype=np.float64)
                beta = float(learned["beta"])
            except (TypeError, KeyError, ValueError):
                alpha, beta = np.zeros(0), 0.0
            if alpha.shape != (k,) or not (np.all(alpha > 0) and beta > 0):
                raise ValueError(f"checkpoint {path} is damaged: its priors do not fit "
                                 "the settings")
            self.model._alpha, self.model._beta = alpha, beta

    def _settings(self) -> dict:
        """The settings a checkpoint must agree with: the priors as set ("auto" or the
        values), not as learned."""
        m = self.model
        settings = {"n_topics": m.n_topics, "n_partitions": self.est.n_partitions,
                    "sampler": m.sampler,
                    "alpha": "auto" if isinstance(m.alpha, str) else m._alpha.tolist(),
                    "beta": "auto" if isinstance(m.beta, str) else m._beta}
        if isinstance(m.alpha, str) or isinstance(m.beta, str):  # when they are learned
            settings |= {"optimize_every": m.optimize_every,
                         "optimize_burn_in": m.optimize_burn_in}
        return settings

    def result(self) -> LDA:
        c, m = self.corpus, self.model
        state = _sampler.restore_state(
            c.indptr, c.words, self.z, m.n_topics, c.n_items, alpha=m._alpha, beta=m._beta,
            rng=np.ascontiguousarray(self.rng), sampler=m.sampler,
            n_shards=self.est.n_partitions)
        rows = self.history[~np.isnan(self.history["loglik"])]
        history = np.zeros(rows.shape[0], dtype=io.HISTORY_DTYPE)
        history["iteration"], history["seconds"] = rows["sweeps"], rows["seconds"]
        history["loglik"], history["heldout"] = rows["loglik"], np.nan
        return m._fitted_from(state, c, n_iter=self.sweeps, seconds=self.seconds,
                              seed_entropy=self.est.seed_entropy_, history=history)


def _fingerprint(corpus) -> dict:
    return {"n_users": corpus.n_users, "n_items": corpus.n_items,
            "n_tokens": corpus.n_tokens,
            "crc32": zlib.crc32(corpus.words.tobytes(), zlib.crc32(corpus.indptr.tobytes()))}
