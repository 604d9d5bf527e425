"""Training beyond one machine on Dask: approximate distributed LDA (AD-LDA).

The users are split into ``n_partitions`` contiguous blocks of about equal token counts (a
model setting, independent of the number of workers). Each partition lives in a Dask actor
pinned to one worker, with its tokens, its topics, its own random stream and its own copy
of the item x topic counts; tokens are sent once and never again. A round:

1. every partition runs ``sweeps_per_round`` local sweeps with the fast kernels against its
   copy of the counts (its own changes included, the other partitions' not: the
   approximation), and returns its change of the counts as sparse (item, topic, delta)
   entries, computed from the tokens whose topic changed;
2. the driver sums the changes in partition order, applies them to the global counts and
   checks them (no negative count, totals equal to the token count, item counts agreeing
   with the topic totals), and sends the summed change to every partition;
3. at the start of the next round each partition adds the others' changes to its copy,
   which then equals the global counts again.

With one partition the chain is the exact serial one. The result depends on the seed and
``n_partitions`` only, never on the worker count or placement: every partition draws from
its own stream and the merge order is fixed. A checkpoint (the topics of every token, the
streams and the round) can be written every ``checkpoint_every`` rounds; a lost worker
stops the fit with a RuntimeError that names it, and ``fit(X, client, resume=True)``
continues from the checkpoint, bit for bit the chain that never stopped.

References
----------
Newman, Asuncion, Smyth & Welling (2009), "Distributed algorithms for topic models", JMLR 10.
"""
from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from gibbslda import _files, _kernels, _rng, sampler as _sampler
from gibbslda.corpus import as_corpus
from gibbslda.errors import NotFittedError
from gibbslda.io import HISTORY_DTYPE
from gibbslda.model import CHECK_ENV, LDA, _check_int

PURPOSE = _rng.PARTITIONS  # the partitions' streams in _rng.seed_streams
CHECKPOINT_FORMAT, CHECKPOINT_SCHEMA = "gibbslda-distributed-checkpoint", 1
ROUND_DTYPE = np.dtype([
    ("round", np.int64), ("sweeps", np.int64), ("seconds", np.float64),
    ("step_s", np.float64), ("sample_s", np.float64), ("sync_s", np.float64),
    ("merge_s", np.float64), ("checkpoint_s", np.float64), ("bytes_up", np.int64),
    ("bytes_down", np.int64), ("bytes_snapshot", np.int64), ("loglik", np.float64)])
_ONE_KEY = 2**31  # below it, two sort keys share one int64 (a plain sort, no argsort)


@dataclass(frozen=True)
class RoundInfo:
    """What :meth:`DistributedLDA.fit` reports to ``callback`` after every round."""

    round: int
    sweeps: int
    n_iter: int
    seconds: float
    sample_seconds: float
    merge_seconds: float
    bytes_up: int
    bytes_down: int
    loglik: float | None


class DistributedLDA:
    """LDA trained on a Dask cluster by AD-LDA; produces a regular fitted :class:`LDA`.

    Parameters
    ----------
    n_topics, alpha, beta, n_iter, random_state, eval_every
        As for :class:`gibbslda.LDA` (numbers only: "auto" priors are not learned here).
        ``eval_every`` counts rounds.
    sampler : {"auto", "dense", "sparse"}
        The local sweep kernel ("mh" is refused: its item proposal reads the partition's
        own tokens only, so its acceptance ratio would not match the global counts).
    n_partitions : int, default 2
        Contiguous blocks of users, each with its own random stream; the result depends on
        the seed and this, not on the number of workers.
    sweeps_per_round : int, default 1
        Local sweeps between merges (the staleness of the other partitions' counts).
    checkpoint : path or None
        File (npz, never pickled) written every ``checkpoint_every`` rounds and after the
        last; what ``fit(..., resume=True)`` continues from.

    Attributes
    ----------
    model_ : LDA  the fitted model (save, load, transform, topics as usual); it continues
        on one machine with ``n_shards = n_partitions``, the same user blocks and streams.
    rounds_ : structured array (ROUND_DTYPE), one row per round: cumulative sweeps and
        seconds; seconds of the slowest partition's whole step (the rest of a round is the
        driver's and the network's), of sampling and of keeping its copy of the counts
        (adding the others' changes, finding its own; each the max over partitions), of
        merging (driver) and checkpointing; bytes up (count changes, partitions to
        driver), down (the summed change, to every partition) and of the topics gathered
        for a checkpoint; log p(w, z) per token when evaluated (else NaN).
    setup_ : dict  seconds and bytes of partitioning and the first count exchange.
    """

    def __init__(self, n_topics: int = 10, *, alpha=0.1, beta=0.01, n_iter: int = 200,
                 random_state=None, sampler: str = "auto", n_partitions: int = 2,
                 sweeps_per_round: int = 1, checkpoint=None, checkpoint_every: int = 1,
                 eval_every: int = 10):
        self.n_topics = n_topics
        self.alpha = alpha
        self.beta = beta
        self.n_iter = n_iter
        self.random_state = random_state
        self.sampler = sampler
        self.n_partitions = n_partitions
        self.sweeps_per_round = sweeps_per_round
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.eval_every = eval_every

    def fit(self, X, client, *, resume: bool = False, callback=None) -> "DistributedLDA":
        """Fit to ``X`` (anything :class:`LDA` takes) on the workers of ``client``.

        ``resume=True`` continues from ``checkpoint`` (same corpus and settings; the seed
        and streams come from the file, ``random_state`` is not used) up to ``n_iter``
        sweeps in all. ``callback(info: RoundInfo)`` is called after every round;
        returning False stops after that round: the chain is gathered into ``model_``
        and checkpointed (with ``checkpoint``), and ``resume=True`` continues it.
        """
        model = self._validate()
        distributed = _import_distributed()
        if not isinstance(client, distributed.Client):
            raise TypeError("client must be a distributed.Client, got "
                            f"{type(client).__name__}")
        corpus = as_corpus(X)
        if corpus.n_tokens == 0:
            raise ValueError("cannot fit an empty corpus")
        if self.checkpoint is not None:
            _files.check_file(self.checkpoint)  # a folder there: refused before any work
        if self.n_partitions > corpus.n_users:
            raise ValueError(f"n_partitions must be <= the number of users ({corpus.n_users}),"
                             f" got {self.n_partitions}")
        bounds = _sampler.shard_layout(corpus.indptr, corpus.words, corpus.n_items,
                                       self.n_partitions)[1]
        run = _Run(self, model, corpus, bounds, client)
        if resume:
            run.load_checkpoint()
        else:
            self.seed_entropy_ = _rng.resolve_entropy(self.random_state)
            run.rng = _rng.seed_streams(self.seed_entropy_, PURPOSE, self.n_partitions)
        try:
            run.start()
            run.rounds(callback)
        finally:
            run.close()
        self.model_, self.rounds_, self.setup_ = run.result(), run.history, run.setup
        self.partition_bounds_ = bounds
        return self

    def __getattr__(self, name: str):
        # Only reached for attributes that do not exist: fitted ones before fit.
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(f"this DistributedLDA is not fitted yet (no {name}): call "
                                 "fit(X, client) first")
        raise AttributeError(f"'DistributedLDA' object has no attribute {name!r}")

    def _validate(self) -> LDA:
        """Check every setting; return the LDA that will hold the fitted chain."""
        for name in ("n_iter", "n_partitions", "sweeps_per_round", "checkpoint_every"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("alpha", "beta"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a number for DistributedLDA, got "
                                 f"{getattr(self, name)!r}: learned priors need every "
                                 "user's counts in one place (fit LDA for 'auto')")
        if self.sampler == "mh":
            raise ValueError("sampler must be 'auto', 'dense' or 'sparse' for DistributedLDA,"
                             " got 'mh': its item proposal reads one partition's tokens")
        model = LDA(self.n_topics, alpha=self.alpha, beta=self.beta, n_iter=self.n_iter,
                    random_state=self.random_state, sampler=self.sampler,
                    n_shards=self.n_partitions, eval_every=self.eval_every)
        model._validate()
        model.sampler = model._sampler_for(self.n_topics)
        return model


class _Run:
    """One call of fit: the driver's side of the rounds (global counts, actors, history)."""

    def __init__(self, est, model, corpus, bounds, client):
        self.est, self.model, self.corpus, self.bounds = est, model, corpus, bounds
        self.client, self.actors, self.futures, self.merged = client, [], [], None
        self.round = self.sweeps = 0
        self.seconds = 0.0
        self.history = np.zeros(0, dtype=ROUND_DTYPE)
        self.z = self.rng = self.saved = None
        self.check = os.environ.get(CHECK_ENV) == "1"

    # -- setup -------------------------------------------------------------------------
    def start(self) -> None:
        """Create one actor per partition on its worker, then give each the global counts."""
        started = time.perf_counter()
        workers = sorted(self.client.nthreads())
        if not workers:
            raise ValueError("the Dask cluster has no workers: start some, then call fit")
        c, m = self.corpus, self.model
        sent = 0
        self.workers = [workers[p % len(workers)] for p in range(self.est.n_partitions)]
        for p, worker in enumerate(self.workers):
            lo, hi = c.indptr[self.bounds[p]], c.indptr[self.bounds[p + 1]]
            tokens = (c.indptr[self.bounds[p]:self.bounds[p + 1] + 1] - lo, c.words[lo:hi],
                      None if self.z is None else self.z[lo:hi])
            sent += sum(a.nbytes for a in tokens if a is not None)
            data = self.client.scatter([tokens], workers=[worker], hash=False)[0]
            self.futures.append(self.client.submit(
                _Partition, data, m.n_topics, c.n_items, m._alpha, m._beta, m.sampler,
                self.rng[p:p + 1].copy(), actor=True, workers=[worker],
                allow_other_workers=False, pure=False))
        self.actors = self._gather(0, self.futures)
        own = self._call(0, "counts")
        self.g_keys, self.g_values = _combine([o[0] for o in own], [o[1] for o in own])
        self.n_k = np.bincount(self.g_keys % m.n_topics, weights=self.g_values,
                               minlength=m.n_topics).astype(np.int64)
        self._check_global()
        self._call(0, "load", (self.g_keys, self.g_values, self.n_k))
        self.setup = {"seconds": time.perf_counter() - started, "bytes_tokens": sent,
                      "bytes_up": sum(o[0].nbytes + o[1].nbytes for o in own),
                      "bytes_down": self._down_bytes((self.g_keys, self.g_values, self.n_k))}

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
            row = np.zeros(1, dtype=ROUND_DTYPE)
            started = time.perf_counter()
            outs = self._call(self.round, "step", self.merged, n, evaluate, snapshot,
                              self.check)
            sampled = time.perf_counter()
            self._merge(outs)
            merged = time.perf_counter()
            if last:
                self.merged = None
            row["bytes_down"] = self._down_bytes(self.merged)
            self.sweeps += n
            if snapshot:
                self.z = np.concatenate([o["z"] for o in outs])
                self.rng = np.concatenate([o["rng"] for o in outs])
            self.seconds += time.perf_counter() - started
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
                row = self.history[-1]
                info = RoundInfo(self.round, self.sweeps, est.n_iter, self.seconds,
                                 float(row["sample_s"]), float(row["merge_s"]),
                                 int(row["bytes_up"]), int(row["bytes_down"]),
                                 None if np.isnan(row["loglik"]) else float(row["loglik"]))
                if callback(info) is False:
                    self.stop(snapshot, save)
                    return

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
        keys, values = _combine([o["delta"][0] for o in outs], [o["delta"][1] for o in outs])
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
        self.g_keys, self.g_values = _add_sparse(self.g_keys, self.g_values, keys, values)
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
        """Bytes of ``payload`` as sent to every partition (None: nothing to send)."""
        return 0 if payload is None else sum(a.nbytes for a in payload) * len(self.actors)

    def _call(self, round_, method, *args):
        try:
            calls = [getattr(actor, method)(*args) for actor in self.actors]
        except Exception as exc:
            raise self._lost(exc, round_) from exc
        return self._gather(round_, calls)

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
        return [p for p, f in enumerate(self.futures) if f.status not in ("finished",
                                                                          "pending")]

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
        names = ", ".join(f"{self.workers[p]} (partition {p})" for p in lost)
        return RuntimeError(f"worker {names} lost {where}; {then}")

    def close(self) -> None:
        self.actors, self.futures, self.merged = [], [], None

    # -- checkpoints and the result ----------------------------------------------------
    def save_checkpoint(self) -> float:
        started = time.perf_counter()
        path = Path(self.est.checkpoint)
        meta = {"format": CHECKPOINT_FORMAT, "schema_version": CHECKPOINT_SCHEMA,
                "gibbslda_version": version("gibbslda"), "round": self.round,
                "sweeps": self.sweeps, "seconds": self.seconds,
                "seed_entropy": str(self.est.seed_entropy_), "settings": self._settings(),
                "corpus": _fingerprint(self.corpus)}

        def write(tmp: Path) -> None:  # beside, then renamed: never half a checkpoint
            with open(tmp, "wb") as f:
                np.savez(f, z=self.z, rng=self.rng, rounds=self.history,
                         meta=np.array(json.dumps(meta)))

        _files.write_file(path, write)
        self.saved = (self.round, self.sweeps)
        return time.perf_counter() - started

    def load_checkpoint(self) -> None:
        if self.est.checkpoint is None:
            raise ValueError("resume=True needs checkpoint=path, the file to continue from")
        path = Path(self.est.checkpoint)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in ("z", "rng", "rounds", "meta")}
            meta = json.loads(str(arrays["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"checkpoint {path} is missing or damaged ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or (
                meta.get("schema_version") != CHECKPOINT_SCHEMA):
            raise ValueError(f"{path} is not a checkpoint this gibbslda can read")
        if meta.get("corpus") != _fingerprint(self.corpus):
            raise ValueError(f"checkpoint {path} was written for another corpus "
                             f"({meta.get('corpus')}); pass the corpus it was trained on")
        saved = meta.get("settings") or {}
        for name, value in self._settings().items():
            if saved.get(name) != value:
                raise ValueError(f"checkpoint {path} has {name}={saved.get(name)!r}, this "
                                 f"model {value!r}: they must agree to resume")
        n, p, k = self.corpus.n_tokens, self.est.n_partitions, self.model.n_topics
        z, rng = arrays["z"], arrays["rng"]
        if (z.shape != (n,) or z.dtype != np.int32 or rng.shape != (p, 4)
                or rng.dtype != np.uint64 or arrays["rounds"].dtype != ROUND_DTYPE
                or (n and not 0 <= z.min() <= z.max() < k)):
            raise ValueError(f"checkpoint {path} is damaged: its arrays do not fit the "
                             "corpus and settings")
        self.z, self.rng, self.history = arrays["z"], arrays["rng"], arrays["rounds"]
        self.round, self.sweeps, self.seconds = meta["round"], meta["sweeps"], meta["seconds"]
        self.est.seed_entropy_ = int(meta["seed_entropy"])
        self.saved = (self.round, self.sweeps)

    def _settings(self) -> dict:
        m = self.model
        return {"n_topics": m.n_topics, "n_partitions": self.est.n_partitions,
                "sampler": m.sampler, "alpha": m._alpha.tolist(), "beta": m._beta}

    def result(self) -> LDA:
        c, m = self.corpus, self.model
        state = _sampler.restore_state(
            c.indptr, c.words, self.z, m.n_topics, c.n_items, alpha=m._alpha, beta=m._beta,
            rng=np.ascontiguousarray(self.rng), sampler=m.sampler,
            n_shards=self.est.n_partitions)
        rows = self.history[~np.isnan(self.history["loglik"])]
        history = np.zeros(rows.shape[0], dtype=HISTORY_DTYPE)
        history["iteration"], history["seconds"] = rows["sweeps"], rows["seconds"]
        history["loglik"], history["heldout"] = rows["loglik"], np.nan
        return m._fitted_from(state, c, n_iter=self.sweeps, seconds=self.seconds,
                              seed_entropy=self.est.seed_entropy_, history=history)


class _Partition:
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
        return _combine([s.words.astype(np.int64) * s.n_topics + s.z], [1])

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
            net = _combine([keys, self.own[0]], [values, -self.own[1]])
            apply_item_delta(self.state, *net)
            s.n_k[:] = n_k
        sampling = time.perf_counter()
        if check:
            out["counts"] = _nonzero(s.item_topic_counts())
        np.copyto(self.z0, s.z)
        n_k0 = s.n_k.copy()
        for _ in range(n_sweeps):
            _sampler.sweep(s)
        done = time.perf_counter()
        changed = np.flatnonzero(s.z != self.z0)
        w = s.words[changed].astype(np.int64) * s.n_topics
        self.own = _combine([w + self.z0[changed], w + s.z[changed]], [-1, 1])
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


# -- sparse counts: entries key = item * K + topic, sorted by key, non-zero ---------------
def _combine(keys_list, values_list):
    """Sum the entries of several sparse count arrays: (sorted keys, int32 sums != 0).

    ``values_list`` holds arrays or scalars. Keys below ``_ONE_KEY`` (V K < 2**31) share
    one int64 with their value, so a plain in-place sort orders them: numpy's vectorised
    sort, about 15x faster than an argsort, and no index array."""
    n = sum(keys.size for keys in keys_list)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    if max(int(keys.max()) for keys in keys_list if keys.size) < _ONE_KEY:
        keys, at = np.empty(n, dtype=np.int64), 0
        for part_keys, part_values in zip(keys_list, values_list):
            part = keys[at:at + part_keys.size]
            part[:] = part_keys
            part <<= 32
            part += part_values  # |value| < 2**31: the low 32 bits hold value + 2**31
            part += 2**31
            at += part_keys.size
        keys.sort()
        values = (keys & 0xFFFFFFFF) - 2**31
        keys >>= 32
    else:
        keys = np.concatenate(keys_list).astype(np.int64, copy=False)
        values = np.concatenate([np.broadcast_to(v, k.shape) for k, v in
                                 zip(keys_list, values_list)]).astype(np.int64)
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    sums = np.add.reduceat(values, starts)
    keep = sums != 0
    return keys[starts[keep]], sums[keep].astype(np.int32)


def _add_sparse(keys, values, d_keys, d_values):
    """``(keys, values) + (d_keys, d_values)``, O(nnz + d log nnz); zeros are dropped."""
    values = values.copy()
    at = np.searchsorted(keys, d_keys)
    hit = at < keys.size
    hit[hit] = keys[at[hit]] == d_keys[hit]
    values[at[hit]] += d_values[hit]
    new = ~hit
    if new.any():
        keys = np.insert(keys, at[new], d_keys[new])
        values = np.insert(values, at[new], d_values[new])
    keep = values != 0
    return (keys, values) if keep.all() else (keys[keep], values[keep])


def _nonzero(n_wk):
    flat = n_wk.reshape(-1)
    keys = np.flatnonzero(flat)
    return keys, flat[keys]


def set_item_counts(state, keys, values, n_k) -> None:
    """Make ``state``'s item x topic counts the given ones (sparse entries ``item * K +
    topic`` with counts, and the topic totals ``n_k``), whatever its tokens are.

    The dense sampler's matrix is overwritten; the sparse sampler's packed rows are built
    anew, with the capacity each item's total count needs (as :func:`sampler.packed_counts`
    builds them from a corpus's tokens), so its tokens may be a part of that corpus.
    """
    k, v = state.n_topics, state.n_items
    state.n_k[:] = n_k
    if state.sampler != "sparse":
        state.n_wk[:] = 0
        state.n_wk.reshape(-1)[keys] = values
        return
    freq = np.bincount(keys // k, weights=values, minlength=v).astype(np.int64)
    bits = _sampler.topic_bits(k)
    dtype = np.int32 if (freq.max() if v else 0) < 2 ** (31 - bits) else np.int64
    wc_ptr = np.zeros(v + 1, dtype=np.int64)
    np.cumsum(np.minimum(freq, k), out=wc_ptr[1:])
    state.layout["wc"] = (wc_ptr, np.zeros(max(int(wc_ptr[-1]), 1), dtype=dtype),
                          np.zeros(v, dtype=np.int32))
    _write_rows(state, np.arange(v), keys, values)


def apply_item_delta(state, keys, values) -> None:
    """Add sparse entries (``item * K + topic``, change) to ``state``'s item counts."""
    if state.sampler != "sparse":
        flat = state.n_wk.reshape(-1)
        flat[keys] += values
        if keys.size and flat[keys].min() < 0:
            raise RuntimeError("an item x topic count fell below zero")
        return
    if keys.size == 0:
        return
    k = state.n_topics
    rows = keys // k
    touched = rows[np.concatenate([[True], rows[1:] != rows[:-1]])]
    wc_ptr, wc_val, wc_len = state.layout["wc"]
    lens = wc_len[touched].astype(np.int64)
    starts = np.cumsum(lens) - lens
    pos = np.repeat(wc_ptr[touched] - starts, lens) + np.arange(int(lens.sum()))
    packed = wc_val[pos].astype(np.int64)
    bits = _sampler.topic_bits(k)
    old = np.repeat(touched, lens) * k + (packed & ((1 << bits) - 1))
    new_keys, new_values = _combine([old, keys], [packed >> bits, values])
    if new_values.size and new_values.min() < 0:
        raise RuntimeError("an item x topic count fell below zero")
    _write_rows(state, touched, new_keys, new_values)


def _write_rows(state, touched, keys, values) -> None:
    """Rewrite the packed rows ``touched`` to hold exactly the entries (keys, values)."""
    wc_ptr, wc_val, wc_len = state.layout["wc"]
    k, bits = state.n_topics, _sampler.topic_bits(state.n_topics)
    rows = keys // k
    packed = (values.astype(np.int64) << bits) | (keys - rows * k)
    if packed.size and packed.max() < _ONE_KEY:  # rows up, entries down: one int64 sort
        both = np.sort((rows << 31) | (2**31 - 1 - packed))
        rows, packed = both >> 31, 2**31 - 1 - (both & (2**31 - 1))
    else:
        order = np.lexsort((-packed, rows))
        rows, packed = rows[order], packed[order]
    lengths = np.bincount(rows, minlength=state.n_items)
    if np.any(lengths > np.diff(wc_ptr)):
        raise RuntimeError("an item has more topics than tokens: the counts are corrupt")
    wc_len[touched] = lengths[touched]
    # clear the touched rows first: every slot past a row's length must read count 0
    span = np.diff(wc_ptr)[touched]
    slots = np.repeat(wc_ptr[:-1][touched], span) + (
        np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    wc_val[slots] = 0
    within = np.arange(rows.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    wc_val[wc_ptr[rows] + within] = packed


def _fingerprint(corpus) -> dict:
    return {"n_users": corpus.n_users, "n_items": corpus.n_items,
            "n_tokens": corpus.n_tokens,
            "crc32": zlib.crc32(corpus.words.tobytes(), zlib.crc32(corpus.indptr.tobytes()))}


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("DistributedLDA needs dask and distributed: pip install "
                          "'gibbslda[distributed]'") from exc
    return distributed
