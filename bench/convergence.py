"""Held-out quality against tomotopy: completion log-likelihood per token vs training time.

Run from the repository root (``bench`` must be importable)::

    PYTHONPATH=. .venv/bin/python bench/convergence.py --size medium --topics 200 \\
        --iterations 200 --seconds 60 --out /tmp/convergence-medium-k200.csv

What is compared, and how:

- The corpus (``bench.conftest.corpus``) is split once with
  ``split_users(test_fraction=0.1, hidden_fraction=0.5, seed=0)``. Every system trains on
  ``split.train`` with the same priors: alpha 0.1 per topic, beta (tomotopy's eta) 0.01,
  no prior optimisation, one thread. Ours: ``LDA(sampler=..., n_shards=1, n_jobs=1)``;
  tomotopy: ``LDAModel(min_cf=0, rm_top=0)``, ``optim_interval = 0``,
  ``train(workers=1, parallel=ParallelScheme.NONE)``, each user a list of item ids as
  strings.
- Every ``--every`` sweeps (and at the last one) each system's topics phi (K x V, our item
  order) are scored the same way: :func:`gibbslda.sampler.fold_in` on the observed half of
  the held-out users with alpha 0.1 (50 sweeps, 10 burn-in, one fixed seed for everyone),
  then the mean of log(theta_d . phi[:, w]) over the hidden tokens:
  :func:`gibbslda.heldout.completion`, the function training and evaluation use. Hidden tokens of items never
  seen in training are kept; they score the smoothed beta / (n_k + V beta) everywhere.
- ``seconds`` is training time only: ours is the sweep time the estimator reports
  (``SweepInfo.seconds``); tomotopy's is the wall time of its ``train(1)`` calls. Scoring is
  never timed. The one-time setup before the first sweep (ours: ``fit`` up to the first
  sweep, which includes the initial log p(w, z); tomotopy: ``add_doc`` for every user and
  ``train(0)``) is reported separately and left out of the curve.
- tomotopy's vocabulary: it numbers words in its own order (``used_vocabs``, most frequent
  first) and knows only the items seen in training. Its unnormalised topic-word values are
  n_kw + eta, so the integer counts n_kw are recovered, placed at our item index
  (``int(word)``), checked against ``get_count_by_topics()``, and smoothed with our formula
  (n_kw + beta) / (n_k + V beta) over the full item count V. Both systems' phi are thus
  the same function of their counts.

Writes a CSV (system, seed, iteration, seconds, heldout_loglik), prints markdown tables
(medians over ``--seeds``), and a PNG next to the CSV when matplotlib is installed.
"""
from __future__ import annotations

import argparse
import csv
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.conftest import corpus
from gibbslda import LDA, heldout, sampler
from gibbslda.evaluate import split_users

ALPHA, BETA = 0.1, 0.01
FOLD_IN_ITER, FOLD_IN_BURN_IN, FOLD_IN_SEED = 50, 10, 20261128
SYSTEMS = ("sparse", "mh", "warp", "dense", "tomotopy")


@dataclass(frozen=True)
class Schedule:
    """When to score (every ``every`` sweeps) and when to stop (sweeps or seconds)."""

    every: int
    iterations: int | None
    seconds: float | None

    def check(self, iteration: int, seconds: float) -> tuple[bool, bool]:
        """(score now, stop now) after sweep ``iteration`` at ``seconds`` of training."""
        done = ((self.iterations is not None and iteration >= self.iterations)
                or (self.seconds is not None and seconds >= self.seconds))
        return done or iteration % self.every == 0, done

    @property
    def max_iterations(self) -> int:
        return self.iterations if self.iterations is not None else 10**7


@dataclass
class Run:
    """One system's chain: checkpoints (iteration, seconds, heldout) and its costs."""

    system: str
    seed: int
    n_tokens: int
    setup_seconds: float = 0.0
    rows: list = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        iteration, seconds, _ = self.rows[-1]
        return self.n_tokens * iteration / seconds


def heldout_loglik(phi, observed, hidden, *, alpha=ALPHA, seed=FOLD_IN_SEED) -> float:
    """Document completion with topics ``phi`` (K x V): mean log p(hidden token).

    :func:`gibbslda.heldout.completion` with this benchmark's fold-in settings;
    ``observed`` and ``hidden`` are the two halves of one
    :class:`~gibbslda.evaluate.UserSplit`.
    """
    return heldout.completion(phi, alpha, (observed.indptr, observed.words),
                              (hidden.indptr, hidden.words), n_iter=FOLD_IN_ITER,
                              burn_in=FOLD_IN_BURN_IN, seed=seed)


def train_ours(name, train, n_topics, schedule, score, seed) -> Run:
    """Fit ``LDA(sampler=name)`` on one thread, scoring its phi at the checkpoints."""
    run = Run(name, seed, train.n_tokens)
    model = LDA(n_topics, alpha=ALPHA, beta=BETA, n_iter=schedule.max_iterations,
                random_state=seed, sampler=name, n_shards=1, n_jobs=1,
                eval_every=schedule.max_iterations)
    started = time.perf_counter()

    def on_sweep(info):
        if info.iteration == 1:
            run.setup_seconds = time.perf_counter() - started - info.seconds
        due, done = schedule.check(info.iteration, info.seconds)
        if due:
            run.rows.append((info.iteration, info.seconds, score(model.topic_word_)))
        return not done

    model.fit(train, callback=on_sweep)
    return run


def tomotopy_phi(mdl, n_items: int, beta: float = BETA) -> np.ndarray:
    """tomotopy's topics as phi (K x n_items) in our item order, smoothed like ours."""
    items = np.array([int(word) for word in mdl.used_vocabs], dtype=np.int64)
    raw = np.array([mdl.get_topic_word_dist(k, normalize=False) for k in range(mdl.k)],
                   dtype=np.float64)  # n_kw + eta, stored as float32 by tomotopy
    n_kw = np.zeros((mdl.k, n_items))
    n_kw[:, items] = np.rint(raw - mdl.eta)
    n_k = n_kw.sum(axis=1)
    if not np.array_equal(n_k, np.asarray(mdl.get_count_by_topics(), dtype=np.float64)):
        raise RuntimeError("tomotopy's topic-word counts do not add up to its topic totals")
    return (n_kw + beta) / (n_k[:, None] + n_items * beta)


def train_tomotopy(train, n_topics, schedule, score, seed) -> Run:
    """Train tomotopy's LDAModel one sweep per call on one thread, scoring at checkpoints."""
    import tomotopy as tp

    run = Run("tomotopy", seed, train.n_tokens)
    started = time.perf_counter()
    mdl = tp.LDAModel(k=n_topics, alpha=ALPHA, eta=BETA, seed=seed, min_cf=0, min_df=0,
                      rm_top=0)
    mdl.optim_interval = 0
    words = train.words.astype(str)
    for d in range(train.n_users):
        mdl.add_doc(words[train.indptr[d]:train.indptr[d + 1]].tolist())
    options = {"workers": 1, "parallel": tp.ParallelScheme.NONE}
    mdl.train(0, **options)  # tomotopy's prepare(): vocabulary and random topics
    run.setup_seconds = time.perf_counter() - started
    seconds, iteration, done = 0.0, 0, False
    while not done:
        tick = time.perf_counter()
        mdl.train(1, **options)
        seconds += time.perf_counter() - tick
        iteration += 1
        due, done = schedule.check(iteration, seconds)
        if due:
            run.rows.append((iteration, seconds, score(tomotopy_phi(mdl, train.n_items))))
    return run


def value_at_iteration(run: Run, iteration: int) -> float:
    for it, _, value in run.rows:
        if it == iteration:
            return value
    return np.nan


def value_by_seconds(run: Run, seconds: float) -> float:
    """The last checkpoint reached within ``seconds`` of training (NaN if none)."""
    values = [value for _, s, value in run.rows if s <= seconds]
    return values[-1] if values else np.nan


def _median(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.median(values)) if np.all(np.isfinite(values)) else np.nan


def _cell(value: float, reference: float) -> str:
    if not np.isfinite(value):
        return "-"
    if np.isfinite(reference) and reference != 0:
        return f"{value:.4f} ({100 * (value - reference) / abs(reference):+.2f}%)"
    return f"{value:.4f}"


def tables(runs, at_iterations, at_seconds) -> str:
    """Markdown: medians over seeds at equal sweeps and by equal seconds, vs tomotopy."""
    systems = list(dict.fromkeys(run.system for run in runs))
    by_system = {s: [run for run in runs if run.system == s] for s in systems}
    ref = by_system.get("tomotopy", [])
    head = ["system", "tokens/s", "setup s", "sweeps", "train s"]
    lines = ["Held-out log-likelihood per token (median over seeds); in brackets the relative "
             "difference to tomotopy, + = higher (better).", ""]
    for kind, marks, pick in (("sweeps", at_iterations, value_at_iteration),
                              ("s", at_seconds, value_by_seconds)):
        cols = head + [f"@{m:g} {kind}" for m in marks]
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for system in systems:
            chain = by_system[system]
            cells = [system, f"{_median([r.tokens_per_second for r in chain]):,.0f}",
                     f"{_median([r.setup_seconds for r in chain]):.1f}",
                     f"{_median([r.rows[-1][0] for r in chain]):.0f}",
                     f"{_median([r.rows[-1][1] for r in chain]):.1f}"]
            for mark in marks:
                value = _median([pick(r, mark) for r in chain])
                reference = _median([pick(r, mark) for r in ref]) if ref else np.nan
                cells.append(_cell(value, reference if system != "tomotopy" else np.nan))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_csv(path: Path, runs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["system", "seed", "iteration", "seconds", "heldout_loglik"])
        for run in runs:
            for iteration, seconds, value in run.rows:
                out.writerow([run.system, run.seed, iteration, f"{seconds:.4f}",
                              f"{value:.6f}"])


def plot(path: Path, runs, title: str) -> bool:
    """Held-out log-likelihood vs seconds as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = {}
    for run in runs:
        colour = colours.setdefault(run.system, f"C{len(colours)}")
        _, seconds, values = zip(*run.rows)
        label = run.system if run.seed == min(r.seed for r in runs) else None
        ax.plot(seconds, values, color=colour, marker=".", label=label)
    ax.set(xlabel="training seconds (1 thread)", ylabel="held-out log-likelihood / token",
           title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("small", "medium"), default="small")
    parser.add_argument("--topics", type=int, default=200, help="K (default 200)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="stop each system after this many sweeps")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop each system once its training time reaches this")
    parser.add_argument("--every", type=int, default=5, help="score every this many sweeps")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated, from {','.join(SYSTEMS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--at-iterations", default="50,100,200")
    parser.add_argument("--at-seconds", default="5,10,20,40,60")
    parser.add_argument("--out", type=Path, default=None, help="CSV path (and PNG beside)")
    args = parser.parse_args(argv)
    if args.iterations is None and args.seconds is None:
        parser.error("give --iterations, --seconds or both")
    unknown = set(args.systems.split(",")) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    sampler.warm_up()
    data = corpus(args.size)
    split = split_users(data, test_fraction=0.1, hidden_fraction=0.5, seed=0)
    train = split.train
    unseen = int(np.sum(np.bincount(train.words, minlength=train.n_items) == 0))
    print(f"{args.size}: train {train.n_users} users, {train.n_tokens} tokens, "
          f"{train.n_items} items ({unseen} unseen in training); held out "
          f"{split.observed.n_users} users, {split.observed.n_tokens} observed / "
          f"{split.hidden.n_tokens} hidden tokens; K={args.topics}; {platform.platform()}")
    schedule = Schedule(args.every, args.iterations, args.seconds)

    def score(phi):
        return heldout_loglik(phi, split.observed, split.hidden)

    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for system in args.systems.split(","):
            if system == "tomotopy":
                run = train_tomotopy(train, args.topics, schedule, score, seed)
            else:
                run = train_ours(system, train, args.topics, schedule, score, seed)
            iteration, seconds, value = run.rows[-1]
            print(f"  {system} seed {seed}: {iteration} sweeps in {seconds:.1f} s "
                  f"({run.tokens_per_second:,.0f} tokens/s), held-out {value:.4f}",
                  flush=True)
            runs.append(run)
    at_iterations = [int(m) for m in args.at_iterations.split(",")]
    at_seconds = [float(m) for m in args.at_seconds.split(",")]
    print()
    print(tables(runs, at_iterations, at_seconds))
    if args.out is not None:
        write_csv(args.out, runs)
        plot(args.out.with_suffix(".png"), runs, f"{args.size}, K={args.topics}")


if __name__ == "__main__":
    main()
