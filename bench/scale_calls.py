"""The documented calls on a 20M-token log, K = 500: peak RSS, one user's top 20, 20,000
users' top 20, save + load (issue 14, first goal). A script, not a pytest-benchmark suite
(one run takes minutes and several GB):

    PYTHONPATH=. .venv/bin/python bench/scale_calls.py                 # 1M x 500k, 20M tokens
    PYTHONPATH=. .venv/bin/python bench/scale_calls.py --users 100000 --items 50000

The log is :func:`bench.bench_scale.scale_log` (seeded: log-normal lengths, Zipf items, 100
planted interests) with ``--users`` users, ``--items`` items and mean length ``--length``
(20). It is generated in a child process and saved under the temporary folder, so this
process's peak resident set (VmHWM) is that of the calls alone: ``Corpus.from_csr`` (the
token arrays are dropped after it), ``LDA(K, n_iter=--sweeps).fit`` (5 sweeps by default:
the run measures memory, not quality; sampler "auto"), ``recommend`` for one user (the
first call builds the model's cached sparse tables and is reported apart; then
``--singles`` other users one call each, median and max), ``recommend`` for ``--batch``
users in one call (users/s), ``save`` and ``LDA.load``. Prints one JSON line per step and
a summary line; the goals are those of issue 14: peak <= 2.5 GB, one user <= 1 s (target
10 ms), >= 5,000 users/s, save + load <= 30 s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __name__ != "__main__":
    raise ImportError("bench/scale_calls.py is a script: run it with python")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conftest import proc_status  # noqa: E402


def _generate(folder: Path, n_users: int, n_items: int, length: int) -> None:
    """scale_log in a child process (its peak is not ours), saved as .npy files."""
    code = (f"import sys, numpy as np; sys.path.insert(0, {str(ROOT)!r}); "
            f"from bench.bench_scale import scale_log; "
            f"i, w = scale_log({n_users}, {n_items}, mean_length={length}); "
            f"np.save({str(folder / 'indptr.npy')!r}, i); "
            f"np.save({str(folder / 'words.npy')!r}, w)")
    subprocess.run([sys.executable, "-c", code], check=True)


def _step(name: str, started: float, **extra) -> float:
    seconds = time.perf_counter() - started
    print(json.dumps({"step": name, "seconds": round(seconds, 4),
                      "peak_rss_gib": round(proc_status("VmHWM") / 2**30, 3),
                      "rss_gib": round(proc_status("VmRSS") / 2**30, 3), **extra}),
          flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--topics", type=int, default=500)
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--singles", type=int, default=20)
    args = parser.parse_args()

    from gibbslda import LDA, sampler
    from gibbslda.corpus import Corpus
    from gibbslda.recommend import recommend

    sampler.warm_up()
    recommend(LDA(2, n_iter=1, random_state=0).fit([[0, 1], [1]]), 0, n=1)  # compiled
    tmp = Path(tempfile.mkdtemp(prefix="scale_calls_"))
    try:
        _generate(tmp, args.users, args.items, args.length)
        baseline = proc_status("VmRSS")
        print(json.dumps({"step": "baseline", "rss_gib": round(baseline / 2**30, 3)}),
              flush=True)
        indptr, words = np.load(tmp / "indptr.npy"), np.load(tmp / "words.npy")
        started = time.perf_counter()
        corpus = Corpus.from_csr(indptr, words, n_items=args.items)
        del indptr, words
        _step("Corpus.from_csr", started, n_tokens=corpus.n_tokens, n_users=corpus.n_users,
              n_items=corpus.n_items)

        started = time.perf_counter()
        model = LDA(args.topics, n_iter=args.sweeps, random_state=0).fit(corpus)
        _step("LDA.fit", started, sampler=model.state_.sampler, sweeps=args.sweeps)

        rng = np.random.default_rng(0)
        ids = model.user_ids_
        picks = rng.choice(ids.size, size=args.singles + 1, replace=False)
        started = time.perf_counter()
        recommend(model, ids[picks[0]], n=20)
        _step("recommend 1 user, first call (builds the cached tables)", started)
        times = []
        for d in picks[1:]:
            started = time.perf_counter()
            recommend(model, ids[d], n=20)
            times.append(time.perf_counter() - started)
        one_ms = 1e3 * float(np.median(times))
        print(json.dumps({"step": "recommend 1 user", "median_ms": round(one_ms, 3),
                          "max_ms": round(1e3 * max(times), 3), "calls": len(times),
                          "peak_rss_gib": round(proc_status("VmHWM") / 2**30, 3)}),
              flush=True)

        batch = ids[rng.choice(ids.size, size=min(args.batch, ids.size), replace=False)]
        started = time.perf_counter()
        frame = recommend(model, batch, n=20)
        seconds = _step("recommend batch", started, users=batch.size, rows=frame.height)
        per_second = batch.size / seconds
        del frame

        started = time.perf_counter()
        model.save(tmp / "model")
        save_s = _step("save", started)
        started = time.perf_counter()
        loaded = LDA.load(tmp / "model")
        load_s = _step("LDA.load", started, sampler=loaded.state_.sampler)
        del loaded

        peak = proc_status("VmHWM") / 2**30
        print(json.dumps({
            "summary": True, "n_tokens": corpus.n_tokens, "n_users": corpus.n_users,
            "n_items": corpus.n_items, "n_topics": args.topics, "sweeps": args.sweeps,
            "peak_rss_gib": round(peak, 3), "baseline_rss_gib": round(baseline / 2**30, 3),
            "one_user_ms": round(one_ms, 3), "batch_users_per_s": round(per_second),
            "save_plus_load_s": round(save_s + load_s, 2),
            "goals": {"peak <= 2.5 GB": peak * 2**30 <= 2.5e9,
                      "one user <= 1 s": one_ms <= 1000,
                      "batch >= 5,000 users/s": per_second >= 5000,
                      "save + load <= 30 s": save_s + load_s <= 30}}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()
