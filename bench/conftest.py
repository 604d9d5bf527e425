"""Shared fixtures for the benchmarks: seeded synthetic corpora in named sizes."""
from __future__ import annotations

import functools

import pytest

from gibbslda import sampler
from gibbslda.synthetic import planted_corpus

# name: (users, items, planted topics, mean tokens per user)
SIZES = {
    "small": (20_000, 5_000, 50, 25),     # ~0.5M tokens
    "medium": (50_000, 20_000, 100, 50),  # ~2.5M tokens
}


def proc_status(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM...), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


@functools.lru_cache(maxsize=None)
def corpus(size: str):
    users, items, topics, length = SIZES[size]
    return planted_corpus(users, items, topics, mean_length=length, sigma=1.0, zipf=1.1,
                          overlap=0.2, seed=20261128).corpus


@pytest.fixture(scope="session", autouse=True)
def _compiled():
    sampler.warm_up()
