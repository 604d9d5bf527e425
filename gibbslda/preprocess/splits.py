"""How prepared (user, word) pairs are split into parts, seeded.

The split specs :class:`LeaveLastN`, :class:`TimeCutoff` and :class:`HeldOutUsers`, their
validation (:func:`_split_options`) and :func:`_split`, which gives every pair (sorted by
user, word) the code of its part. A pair's time is the first time its user touched it.

References
----------
Liang, Krishnan, Hoffman & Jebara (2018), "Variational autoencoders for collaborative
filtering", WWW (held-out users with an observed and a hidden part: strong generalisation).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
import polars as pl

_FEW_LAST = 4  # LeaveLastN up to this n: linear passes; above: one sort


@dataclass(frozen=True)
class LeaveLastN:
    """Hold out each user's ``n`` most recently first-seen words (ties broken by the seed).

    Users with at most ``n`` words stay whole in ``"train"``. Parts: train, test.
    """

    n: int = 1


@dataclass(frozen=True)
class TimeCutoff:
    """Hold out every pair first seen at or after a time. Parts: train, test.

    ``at`` is a datetime, a date or an ISO-8601 string (naive times are UTC), or a float in
    (0, 1): the time before which ``1 - at`` of the pairs were first seen.
    """

    at: datetime | date | str | float


@dataclass(frozen=True)
class HeldOutUsers:
    """Hold out a seeded ``fraction`` of the users with at least two words (strong
    generalisation, Liang et al. 2018); ``hidden_fraction`` of each one's words (at least
    one, at most all but one, seeded) are hidden. Parts: train, observed, hidden.
    """

    fraction: float = 0.2
    hidden_fraction: float = 0.2



def _split_options(split) -> dict | None:
    """Validate a split spec; describe it for the summary."""
    if split is None:
        return None
    if isinstance(split, LeaveLastN):
        if isinstance(split.n, bool) or not isinstance(split.n, (int, np.integer)) or split.n < 1:
            raise ValueError(f"LeaveLastN(n) needs an integer n >= 1, got {split.n!r}")
        return {"kind": "leave_last_n", "n": int(split.n)}
    if isinstance(split, TimeCutoff):
        at = split.at
        if isinstance(at, float):
            if not 0 < at < 1:
                raise ValueError(f"TimeCutoff(at) as a fraction must be in (0, 1), got {at}")
            return {"kind": "time_cutoff", "fraction": at}
        return {"kind": "time_cutoff", "at": _iso(_micros(at))}
    if isinstance(split, HeldOutUsers):
        for name in ("fraction", "hidden_fraction"):
            value = getattr(split, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
                raise ValueError(f"HeldOutUsers({name}) must be in (0, 1), got {value!r}")
        return {"kind": "held_out_users", "fraction": float(split.fraction),
                "hidden_fraction": float(split.hidden_fraction)}
    raise TypeError("split must be LeaveLastN(n), TimeCutoff(at), HeldOutUsers(fraction, "
                    f"hidden_fraction) or None, got {type(split).__name__}")


def _micros(at) -> int:
    """A datetime, date or ISO string (naive = UTC) as microseconds since the epoch."""
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"TimeCutoff(at={at!r}) is not an ISO-8601 time: use for "
                             "example '2017-12-01' or '2017-12-01T12:00'") from None
    if isinstance(at, date) and not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day)
    if not isinstance(at, datetime):
        raise TypeError("TimeCutoff(at) must be a datetime, a date, an ISO string or a "
                        f"fraction in (0, 1), got {type(at).__name__}")
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    delta = at - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _iso(micros: int) -> str:
    return pl.Series([micros], dtype=pl.Int64).cast(pl.Datetime("us")).dt.to_string(
        "%Y-%m-%dT%H:%M:%S%.f").item()


def _rank_in_user(u: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Position of each pair within its user (``u`` sorted) when ordered by ``keys``."""
    frame = pl.DataFrame({"u": u} | {f"k{i}": k for i, k in enumerate(keys)})
    order = frame.select(pl.arg_sort_by(frame.columns)).to_series().to_numpy()
    counts = np.bincount(u)
    rank = np.empty(u.shape[0], dtype=np.int64)
    rank[order] = np.arange(u.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank


def _latest(u, first, tie, counts, n: int) -> np.ndarray:
    """Each user's ``n`` latest pairs by (first, tie), one linear pass per pick."""
    starts = np.cumsum(counts) - counts
    taken = np.zeros(u.shape[0], dtype=bool)
    for _ in range(n):
        times = np.where(taken, np.iinfo(np.int64).min, first)
        candidate = ~taken & (times == np.maximum.reduceat(times, starts)[u])
        ties = np.where(candidate, tie, -1.0)
        taken |= candidate & (ties == np.maximum.reduceat(ties, starts)[u])
    return taken


def _split(u: np.ndarray, first, spec, seed: int) -> tuple[np.ndarray, list, dict]:
    """Part code of every pair (pairs sorted by user, word), the part names and details."""
    n_pairs = u.shape[0]
    if spec is None:
        return np.zeros(n_pairs, dtype=np.int8), ["train"], {}
    rng = np.random.default_rng(seed)
    counts = np.bincount(u)
    if isinstance(spec, TimeCutoff):
        if isinstance(spec.at, float):
            k = min(max(int(round((1 - spec.at) * n_pairs)), 0), n_pairs - 1)
            cutoff = int(np.partition(first, k)[k])
        else:
            cutoff = _micros(spec.at)
        test = first >= cutoff
        if test.all() or not test.any():
            raise ValueError(f"TimeCutoff at {_iso(cutoff)} puts every pair on one side (pairs "
                             f"first seen {_iso(int(first.min()))} to {_iso(int(first.max()))}): "
                             "choose a time inside that range")
        return test.astype(np.int8), ["train", "test"], {"cutoff": _iso(cutoff)}
    if isinstance(spec, LeaveLastN):  # the latest by time; among equal times, random
        tie = rng.random(n_pairs)
        if spec.n <= _FEW_LAST:
            test = _latest(u, first, tie, counts, spec.n)
        else:
            rank = _rank_in_user(u, first, tie)
            test = rank >= counts[u] - spec.n
        test &= counts[u] > spec.n
        return test.astype(np.int8), ["train", "test"], {
            "users_held_out": int((counts > spec.n).sum())}
    eligible = np.flatnonzero(counts >= 2)
    n_test = int(round(spec.fraction * eligible.shape[0]))
    if n_test == 0 or n_test == counts.shape[0]:
        raise ValueError(f"HeldOutUsers(fraction={spec.fraction}) holds out {n_test} of "
                         f"{counts.shape[0]} users ({eligible.shape[0]} with two words or "
                         "more): need at least one on each side")
    is_test = np.zeros(counts.shape[0], dtype=bool)
    is_test[rng.choice(eligible, size=n_test, replace=False)] = True
    held = np.flatnonzero(is_test[u])  # rank only the held-out users' pairs, at random
    n_hidden = np.maximum(np.minimum(np.round(spec.hidden_fraction * counts), counts - 1), 1)
    part = np.zeros(n_pairs, dtype=np.int8)
    hidden = _rank_in_user(u[held], rng.random(held.shape[0])) < n_hidden[u[held]]
    part[held] = np.where(hidden, 2, 1)
    return part, ["train", "observed", "hidden"], {"users_held_out": n_test}
