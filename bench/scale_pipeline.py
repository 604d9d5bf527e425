"""The whole command-line path on a generated 100M-event log: ``prepare``, ``train`` (20
sweeps, K = 1000), ``recommend -o`` for every user; each step's peak RSS and time.

    PYTHONPATH=. .venv/bin/python bench/scale_pipeline.py                 # 100M events
    PYTHONPATH=. .venv/bin/python bench/scale_pipeline.py --events 10000000

The log is :func:`bench.scale_prepare.generate`'s (Taobao layout; 5M users and 1M items at
100M events). Each command runs in a child process; its peak resident set is the child's
``ru_maxrss`` from ``wait4``. Prints one JSON line per step. Goal (issue 14): every step's
peak <= 8 GB on this 24 GB machine. The CSV, prepared folder, model and recommendations go
under a temporary folder, deleted afterwards unless ``--keep``.
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

if __name__ != "__main__":
    raise ImportError("bench/scale_pipeline.py is a script: run it with python")
from bench.scale_prepare import N_EVENTS, generate  # noqa: E402


def run(step: str, args: list[str], log: Path) -> dict:
    """``gibbslda ARGS`` in a child process: seconds, CPU seconds and peak RSS."""
    cmd = [sys.executable, "-m", "gibbslda.cli.main", *args]
    started = time.perf_counter()
    with open(log, "wb") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{step} failed ({status}): {log.read_text()[-2000:]}")
    return {"step": step, "seconds": round(seconds, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3),
            "load1": round(os.getloadavg()[0], 2)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=N_EVENTS)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--sweeps", type=int, default=20)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="gibbslda-scale-pipeline-", dir=args.folder))
    try:
        csv, prepared, model = work / "events.csv", work / "prepared", work / "model"
        started = time.perf_counter()
        generate(csv, args.events, args.events // 20, args.events // 100)
        print(json.dumps({"step": "generate", "events": args.events,
                          "seconds": round(time.perf_counter() - started, 1),
                          "csv_gib": round(csv.stat().st_size / 2**30, 2),
                          "cores": os.cpu_count()}), flush=True)
        steps = [
            ("prepare", ["prepare", str(csv), "--format", "taobao", "-o", str(prepared)]),
            ("train", ["train", str(prepared), "-o", str(model), "-k", str(args.topics),
                       "-n", str(args.sweeps), "--eval-every", str(args.sweeps)]),
            ("recommend", ["recommend", str(model), "-n", "20", "-o",
                           str(work / "recommendations.parquet")]),
        ]
        for step, command in steps:
            row = run(step, command, work / f"{step}.log")
            if step == "recommend":
                import polars as pl
                out = pl.scan_parquet(work / "recommendations.parquet")
                row["rows"] = out.select(pl.len()).collect().item()
            print(json.dumps(row), flush=True)
        csv.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
