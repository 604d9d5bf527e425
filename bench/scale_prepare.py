"""``gibbslda prepare`` on a generated Taobao-like log of 100M events: peak RSS and time.

    PYTHONPATH=. .venv/bin/python bench/scale_prepare.py                  # 100M events
    PYTHONPATH=. .venv/bin/python bench/scale_prepare.py --events 20000000 50000000

The log (:func:`generate`, seeded) has the layout of Taobao's UserBehavior.csv (user_id,
item_id, category_id, behavior_type in pv/cart/fav/buy, timestamp in seconds; no header),
sorted by user: 5M users with log-normal activity (mean 20 events), 1M items with Zipf
popularity (exponent 1.0, ids shuffled), 9,439 categories; 40% of a user's events revisit
one of the items they touched before (so a pair has 1.6 events on average, as views turn
into carts and purchases); behaviours 89.5% pv, 5.5% cart, 2.9% fav, 2.1% buy over nine
days. It is written in chunks of users (about 4 GB at 100M events) under the temporary
folder and deleted afterwards (``--keep`` keeps it and the prepared folder).

The command runs in a child process (``python -m gibbslda.cli.main prepare --format
taobao --split heldout --json``, the other options at their defaults); its peak resident
set is the child's VmHWM (``ru_maxrss`` from ``wait4``), compared with the peak the command
reports itself. Prints one JSON line per size: events, pairs, tokens, seconds, peak.
Goal (issue 14): peak <= 8 GB at 100M events.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

N_EVENTS, N_USERS, N_ITEMS, N_CATEGORIES = 100_000_000, 5_000_000, 1_000_000, 9_439
REVISIT = 0.4  # share of a user's events (but the first) on an item they touched before
BEHAVIOURS = ("pv", "cart", "fav", "buy")
SHARES = (0.895, 0.055, 0.029, 0.021)
START, DAYS = 1_511_539_200, 9  # 2017-11-25, as in UserBehavior.csv
SEED = 20261214
CHUNK_USERS = 250_000


def _lengths(rng, n_events: int, n_users: int) -> np.ndarray:
    """Events per user: log-normal (sigma 1), at least 1, summing to exactly n_events."""
    mean = n_events / n_users
    raw = rng.lognormal(np.log(mean) - 0.5, 1.0, n_users) if mean > 1 else np.ones(n_users)
    lengths = np.maximum(1, np.round(raw * n_events / raw.sum())).astype(np.int64)
    diff = n_events - int(lengths.sum())
    while diff:  # spread the rounding error one event at a time over random users
        pick = rng.choice(n_users, size=min(abs(diff), n_users), replace=False)
        if diff < 0:
            pick = pick[lengths[pick] > 1]
        lengths[pick] += np.sign(diff)
        diff = n_events - int(lengths.sum())
    return lengths


def _chunk(rng, users: np.ndarray, lengths: np.ndarray, items) -> pl.DataFrame:
    """The events of ``users`` (ids) with ``lengths`` events each, as a frame."""
    cdf, item_ids, item_cats = items
    n = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    j = np.arange(n)
    new = (rng.random(n) >= REVISIT) | (j == starts)
    # a revisit copies the item of a random earlier event of the user; pointer jumping
    # follows chains of revisits back to a new item
    source = np.where(new, j, starts + (rng.random(n) * (j - starts)).astype(np.int64))
    while True:
        jumped = source[source]
        if np.array_equal(jumped, source):
            break
        source = jumped
    drawn = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    item = drawn[source]
    return pl.DataFrame({
        "user_id": np.repeat(users, lengths),
        "item_id": item_ids[item],
        "category_id": item_cats[item],
        "behavior_type": pl.Series(BEHAVIOURS).gather(
            np.searchsorted(np.cumsum(SHARES), rng.random(n) * sum(SHARES), side="right")),
        "timestamp": START + rng.integers(0, DAYS * 86_400, n)})


def generate(path: Path, n_events: int = N_EVENTS, n_users: int = N_USERS,
             n_items: int = N_ITEMS, seed: int = SEED) -> Path:
    """Write the seeded log to ``path`` (CSV, no header) chunk by chunk; return ``path``."""
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, n_items + 1, dtype=np.float64) ** -1.0
    cdf = np.cumsum(popularity[rng.permutation(n_items)])
    item_ids = rng.choice(5 * n_items, n_items, replace=False) + 1
    cat_pop = np.arange(1, N_CATEGORIES + 1, dtype=np.float64) ** -0.8
    item_cats = np.searchsorted(np.cumsum(cat_pop), rng.random(n_items) * cat_pop.sum(),
                                side="right") * 7 + 1000
    lengths = _lengths(rng, n_events, n_users)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        for lo in range(0, n_users, CHUNK_USERS):
            hi = min(lo + CHUNK_USERS, n_users)
            _chunk(rng, np.arange(lo, hi) + 1, lengths[lo:hi], (cdf, item_ids, item_cats)
                   ).write_csv(f, include_header=False)
    os.replace(tmp, path)
    return path


def run_prepare(csv: Path, out: Path, extra: list[str]) -> dict:
    """``gibbslda prepare`` in a child process: its JSON summary, seconds and peak RSS."""
    cmd = [sys.executable, "-m", "gibbslda.cli.main", "prepare", str(csv), "--format",
           "taobao", "--split", "heldout", "-o", str(out), "--json", *extra]
    started = time.perf_counter()
    with open(out.with_suffix(".stdout"), "wb") as stdout:
        child = subprocess.Popen(cmd, stdout=stdout)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    text = out.with_suffix(".stdout").read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"prepare failed ({status}): {text[-2000:]}")
    summary = json.loads(text)
    return {"seconds": round(seconds, 1), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3),
            "reported_peak_rss_gib": round(summary.get("peak_rss_bytes", 0) / 2**30, 3),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "result": summary["result"], "parts": summary["parts"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[N_EVENTS])
    parser.add_argument("--users", type=int, default=None,
                        help="users (default: events / 20, as 5M users at 100M events)")
    parser.add_argument("--items", type=int, default=None,
                        help="items (default: events / 100, as 1M items at 100M events)")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the CSV and the output")
    parser.add_argument("prepare_args", nargs="*", help="more options for prepare (after --)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gibbslda-scale-prepare-", dir=args.folder))
    try:
        for n_events in args.events:
            n_users = args.users or n_events // 20
            n_items = args.items or n_events // 100
            csv = work / f"events-{n_events}.csv"
            started = time.perf_counter()
            generate(csv, n_events, n_users, n_items)
            generated = time.perf_counter() - started
            row = {"events": n_events, "users": n_users, "items": n_items,
                   "csv_gib": round(csv.stat().st_size / 2**30, 2),
                   "generate_seconds": round(generated, 1),
                   "polars": pl.__version__, "cores": os.cpu_count()}
            row |= run_prepare(csv, work / f"prepared-{n_events}", args.prepare_args)
            print(json.dumps(row), flush=True)
            if not args.keep:
                csv.unlink()
                shutil.rmtree(work / f"prepared-{n_events}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
