"""Preparing an event log: gibbslda.preprocess (polars, lazy) against the same steps in pandas.

The log is a seeded CSV (user_id, item_id, event, timestamp: Zipf-ish items, heavy-tailed
users, five behaviours), generated once per size and seed and cached under the temporary
folder, so a second run starts at once. Both sides do the same steps: read, weight the
events (returns subtract), cap each user-item at 10 tokens, 5-core filtering, hold out
each user's last item (LeaveLastN(1)), write Parquet tokens, id maps and a JSON summary.
Each side runs ROUNDS times (the machine is shared and noisy: the fastest round counts);
``extra_info`` records seconds and CPU seconds (user + system, all threads; less
sensitive to busy neighbours), events/s, tokens/s, the peak RSS of the step (VmHWM reset
before each round, the largest kept) and, on the pandas row, the ratios pandas / polars of
the same run.

    PYTHONPATH=. .venv/bin/python -m pytest bench/bench_preprocess.py --benchmark-only \\
        -p no:cacheprovider --benchmark-columns=min,max,rounds
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from gibbslda import preprocess as pp

SIZES = {"1m": 1_000_000, "10m": 10_000_000}
SEED = 20261201
WEIGHTS = {"view": 1, "cart": 2, "fav": 2, "purchase": 3, "return": -3}
CAP, MIN_ITEMS, MIN_USERS = 10, 5, 5
ROUNDS = 2
_RESULTS: dict = {}  # (size, tool) -> seconds and output counts, to compare within a run


def events_csv(n_rows: int, seed: int = SEED) -> Path:
    """The seeded log as a CSV, cached under the temporary folder by size and seed."""
    path = Path(tempfile.gettempdir()) / "gibbslda-bench-preprocess" / f"events-{n_rows}-{seed}.csv"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_users, n_items = n_rows // 20, max(n_rows // 40, 1000)
    activity = rng.lognormal(0.0, 1.2, n_users)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.05
    item_ids = rng.permutation(n_items) + 1_000_000
    frame = pl.DataFrame({
        "user_id": rng.choice(n_users, n_rows, p=activity / activity.sum()),
        "item_id": item_ids[rng.choice(n_items, n_rows, p=popularity / popularity.sum())],
        "event": rng.choice(list(WEIGHTS), n_rows, p=[0.86, 0.06, 0.04, 0.035, 0.005]),
        "timestamp": 1_500_000_000 + rng.integers(0, 30 * 86_400, n_rows),
    })
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    frame.write_csv(tmp)
    os.replace(tmp, path)  # a run stopped half-way never leaves a partial file behind
    return path


def with_polars(path: Path, out: Path) -> dict:
    prepared = pp.prepare(path, event="event", timestamp="timestamp", weights=WEIGHTS, cap=CAP,
                          min_user_items=MIN_ITEMS, min_item_users=MIN_USERS,
                          split=pp.LeaveLastN(1), seed=0)
    pp.write_prepared(prepared, out)
    s = prepared.summary
    return {"users": s["result"]["users"], "words": s["result"]["words"],
            "tokens": s["result"]["tokens"],
            "parts": {k: v["pairs"] for k, v in s["parts"].items()}}


def with_pandas(path: Path, out: Path) -> dict:
    """The same steps in pandas: what one would write without gibbslda.preprocess."""
    df = pd.read_csv(path, dtype={"user_id": "int64", "item_id": "int64", "event": "category",
                                  "timestamp": "int64"})
    df["tokens"] = df["event"].map(WEIGHTS).astype("int64")
    pairs = (df.groupby(["user_id", "item_id"], sort=False)
             .agg(net=("tokens", "sum"), first=("timestamp", "min")).reset_index())
    pairs["count"] = pairs["net"].clip(upper=CAP)
    pairs = pairs[pairs["count"] > 0]
    while True:  # k-core
        n_items = pairs.groupby("user_id")["item_id"].transform("size")
        n_users = pairs.groupby("item_id")["user_id"].transform("size")
        keep = (n_items >= MIN_ITEMS) & (n_users >= MIN_USERS)
        if keep.all():
            break
        pairs = pairs[keep]
    pairs = pairs.assign(user=pd.factorize(pairs["user_id"], sort=True)[0],
                         word=pd.factorize(pairs["item_id"], sort=True)[0])
    rng = np.random.default_rng(0)
    pairs = pairs.assign(tie=rng.random(len(pairs))).sort_values(["user", "first", "tie"])
    position = pairs.groupby("user").cumcount(ascending=False)
    size = pairs.groupby("user")["word"].transform("size")
    pairs["part"] = np.where((position == 0) & (size > 1), "test", "train")
    pairs["first_seen"] = pd.to_datetime(pairs["first"], unit="s")
    pairs = pairs.sort_values(["user", "word"])
    out.mkdir(parents=True, exist_ok=True)
    pairs[["user", "word", "count", "first_seen", "part"]].to_parquet(out / "tokens.parquet",
                                                                       index=False)
    users = pairs.drop_duplicates("user").sort_values("user")[["user", "user_id"]]
    users.to_parquet(out / "users.parquet", index=False)
    words = pairs.groupby(["word", "item_id"]).agg(n_users=("user", "size"),
                                                   n_tokens=("count", "sum")).reset_index()
    words.to_parquet(out / "words.parquet", index=False)
    result = {"users": len(users), "words": len(words), "tokens": int(pairs["count"].sum()),
              "parts": pairs["part"].value_counts().to_dict()}
    (out / "prepared.json").write_text(json.dumps(result))
    return result


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak resident set (Linux >= 4.0)


def _peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


@pytest.mark.parametrize("size, tool", [("1m", "polars"), ("1m", "pandas"),
                                        ("10m", "polars"), ("10m", "pandas")])
def test_prepare(benchmark, tmp_path, size, tool):
    path = events_csv(SIZES[size])
    run = {"polars": with_polars, "pandas": with_pandas}[tool]
    seen: dict = {}

    def step():
        out = tmp_path / f"prepared-{len(seen.setdefault('seconds', []))}"
        _reset_peak_rss()
        start, cpu = time.perf_counter(), time.process_time()
        seen["result"] = run(path, out)
        seen["seconds"].append(time.perf_counter() - start)
        seen.setdefault("cpu", []).append(time.process_time() - cpu)
        seen["peak"] = max(seen.get("peak", 0), _peak_rss_bytes())

    benchmark.pedantic(step, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    seconds = min(seen["seconds"])
    result = seen["result"]
    _RESULTS[size, tool] = {"seconds": seconds, "cpu": min(seen["cpu"]), "result": result}
    info = benchmark.extra_info
    cpu = min(seen["cpu"])
    info.update({"tool": tool, "events": SIZES[size], "seconds": round(seconds, 3),
                 "cpu_seconds": round(cpu, 3),
                 "events_per_s": round(SIZES[size] / seconds),
                 "tokens_per_s": round(result["tokens"] / seconds),
                 "tokens": result["tokens"], "users": result["users"], "words": result["words"],
                 "peak_rss_gib": round(seen["peak"] / 2**30, 3),
                 "polars_threads": pl.thread_pool_size()})
    other = _RESULTS.get((size, "polars"))
    if tool == "pandas" and other is not None:
        # same output from both sides (ties in time may pick another test item: pairs only)
        assert {k: result[k] for k in ("users", "words", "tokens")} == {
            k: other["result"][k] for k in ("users", "words", "tokens")}
        assert result["parts"] == other["result"]["parts"]
        info["pandas_over_polars"] = round(seconds / other["seconds"], 2)
        info["pandas_over_polars_cpu"] = round(min(seen["cpu"]) / other["cpu"], 2)
