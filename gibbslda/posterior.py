"""Counts averaged over thinned posterior samples of the chain, for better p(item | user).

The last state of a Gibbs chain is one draw of z; the topics it gives are noisy for rare
items. :class:`gibbslda.LDA` calls :func:`collect` after every sweep; from the sweep
``burn_in(n_iter)`` on (half of ``n_iter``), every ``thin(n_iter)``-th sweep (about
``SAMPLES`` samples, the last sweep always one) the item x topic counts n_wk are added to
running sums. Only the non-zero cells are kept (sorted keys ``w * K + k`` and float64
sums), never a K x V matrix per sample: 16 bytes per distinct non-zero cell over all
samples (at most ``SAMPLES`` x 16 bytes a token, in practice a few times less, as the
samples share most cells), plus transient arrays of the sample's non-zero cells while it
is merged: O(N + nnz log nnz) once per sample, from the item rows of the state (no sort of
the tokens). The samples are a function of the sweep count only, so
a resumed run collects the same ones. :func:`averaged_phi` builds the dense K x V phi
(8 K V bytes) when asked: phi = (mean n_wk + beta) / (mean n_k + V beta), with beta as
it is at the end. (The users' n_dk are not averaged: every variant folds theta in
against phi.)

Glossary: w item, k topic, z a token's topic, n_wk / n_k the counts.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from gibbslda import sampler as _sampler
from gibbslda.errors import ModelFileError

SAMPLES = 10  # samples collected over the second half of n_iter
NAMES = ("lda", "lda_avg", "lda_recency", "lda+pop", "lda+knn", "lda+ease", "lda+iknn",
         "chosen")
_DAMAGED = "the folder is damaged, save the model again"


@dataclass
class Average:
    """Running sums of the item x topic counts over ``n_samples`` samples (sorted
    non-zero keys)."""

    n_samples: int
    word_keys: np.ndarray   # int64 (nnz,)  w * K + k
    word_sums: np.ndarray   # float64 (nnz,)

    def arrays(self) -> dict:
        """The arrays saved with a model (``posterior_`` prefixed names)."""
        return {"posterior_n": np.array([self.n_samples], dtype=np.int64),
                "posterior_word_keys": self.word_keys, "posterior_word_sums": self.word_sums}

    @classmethod
    def from_arrays(cls, arrays: dict, n_cells: int) -> "Average | None":
        """The saved sums (None without them: a folder from before issue 15); a missing
        array, a wrong dtype or shape, or keys not sorted in ``[0, n_cells)`` raise
        ModelFileError. Arrays of older versions (the users' sums) are ignored."""
        if not arrays:
            return None
        names = ("posterior_n", "posterior_word_keys", "posterior_word_sums")
        missing = [name for name in names if name not in arrays]
        if missing:
            raise ModelFileError(f"ranking.npz lacks {missing[0]}; {_DAMAGED}")
        n, keys, sums = (arrays[name] for name in names)
        if n.shape != (1,) or n.dtype.kind != "i" or n[0] < 1:
            raise ModelFileError(f"ranking.npz: posterior_n must be one integer >= 1, got "
                                 f"{n.dtype} {n.shape}; {_DAMAGED}")
        if (keys.dtype != np.int64 or sums.dtype != np.float64 or keys.ndim != 1
                or keys.shape != sums.shape):
            raise ModelFileError("ranking.npz: posterior_word_keys / _sums must be int64 / "
                                 f"float64 of one shape, got {keys.dtype} {keys.shape} / "
                                 f"{sums.dtype} {sums.shape}; {_DAMAGED}")
        if keys.size and (keys[0] < 0 or keys[-1] >= n_cells or np.any(np.diff(keys) <= 0)):
            raise ModelFileError("ranking.npz: posterior_word_keys are not sorted cells of "
                                 f"the {n_cells} item x topic counts; {_DAMAGED}")
        return cls(int(n[0]), keys, sums)


@dataclass(frozen=True)
class Choice:
    """What :func:`gibbslda.rankers.choose` learned: the settings of every variant and the
    default.

    half_life_days : float or None (no recency weighting); popularity : lam;
    knn_blend, ease_blend : b of each partner; chosen : the default's variant name;
    recall : Recall@20 of each variant on the validation split; seconds : tuning time;
    n_users : validation users; iknn_blend : b of the interest-weighted item-kNN
    (``"lda+iknn"``; 0.0 when absent from a saved choice, which is from before it);
    propensity_strength : the Beta prior's strength (pseudo-tokens) of each user's own
    background share around ``popularity`` (``"lda+pop"`` and the blends built on it), None
    for infinite: one share ``popularity`` for every user (also when absent from a saved
    choice, which is from before per-user shares).
    """

    half_life_days: float | None
    popularity: float
    knn_blend: float
    ease_blend: float
    chosen: str
    recall: dict
    seconds: float
    n_users: int
    iknn_blend: float = 0.0
    propensity_strength: float | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> "Choice":
        """The saved choice; a missing, unknown or mistyped field raises ModelFileError."""
        if not isinstance(data, dict):
            raise ModelFileError(f"ranking.json must hold an object, got "
                                 f"{type(data).__name__}; {_DAMAGED}")
        names = [f.name for f in fields(cls)]
        for name in names:
            if name not in data and name not in _LATER:  # older folders lack these
                raise ModelFileError(f"ranking.json lacks the field {name}; {_DAMAGED}")
            if name in data and not _valid(name, data[name]):
                raise ModelFileError(f"ranking.json: field {name} has the invalid value "
                                     f"{data[name]!r}; {_DAMAGED}")
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ModelFileError(f"ranking.json has the unknown field {unknown[0]}; "
                                 f"{_DAMAGED}")
        return cls(**data)


_LATER = ("iknn_blend", "propensity_strength")  # Choice fields added after its first save


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _valid(name: str, value) -> bool:
    """Whether ``value`` can be the Choice field ``name`` (as :func:`choose` writes it)."""
    if name in ("half_life_days", "propensity_strength"):
        return value is None or (_number(value) and value > 0)
    if name in ("popularity", "knn_blend", "ease_blend", "iknn_blend"):
        return _number(value) and 0 <= value <= 1
    if name == "chosen":
        return value in NAMES[:-1]
    if name == "recall":
        return isinstance(value, dict) and all(_number(v) for v in value.values())
    if name == "seconds":
        return _number(value) and value >= 0
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def restore(model, arrays: dict | None, choice: dict | None) -> None:
    """Put saved samples and choice back on a loaded model (absent in older folders);
    damaged ones raise ModelFileError."""
    state = model.state_
    model.posterior_ = None if arrays is None else Average.from_arrays(
        arrays, state.n_items * state.n_topics)
    model.ranking_ = None if choice is None else Choice.from_json(choice)


def saved(model) -> tuple[dict, dict | None]:
    """(arrays, choice as JSON) to save with a model: empty / None when it has none."""
    average, choice = model.__dict__.get("posterior_"), model.__dict__.get("ranking_")
    return ({} if average is None else average.arrays(),
            None if choice is None else choice.to_json())


def burn_in(n_iter: int) -> int:
    return n_iter // 2


def thin(n_iter: int) -> int:
    return max(1, (n_iter - burn_in(n_iter)) // SAMPLES)


def collect(model) -> None:
    """Add the chain's item x topic counts to ``model.posterior_`` when this sweep is a
    sample."""
    i, n_iter = model.n_iter_, max(model.n_iter, 1)
    if i < max(burn_in(n_iter), 1) or (n_iter - i) % thin(n_iter) != 0:
        return
    word = _counts(model.state_)
    old = model.__dict__.get("posterior_")
    if old is None:
        model.posterior_ = Average(1, *word)
        return
    model.posterior_ = Average(old.n_samples + 1,
                               *_merge(old.word_keys, old.word_sums, *word))


def averaged_phi(model, *, leave_out=None, last: bool = False) -> np.ndarray:
    """phi (K x V, float64) from the averaged counts (the last state's with ``last`` or
    when no sample was collected). ``leave_out``: token indices (a validation split's
    hidden tokens) taken out of the counts, exactly: the last state's counts minus those
    tokens' topics, whatever ``last`` says (the averaged counts also hold their topics of
    earlier samples, which the last z does not tell)."""
    state = model.state_
    k, v = state.n_topics, state.n_items
    exact = leave_out is not None and len(leave_out) > 0
    average = None if last or exact else model.__dict__.get("posterior_")
    if average is None:
        keep = np.ones(state.z.shape[0], dtype=bool)
        if exact:
            keep[leave_out] = False
        n_wk = np.bincount(state.words[keep].astype(np.int64) * k + state.z[keep],
                           minlength=v * k).astype(np.float64)
    else:
        n_wk = np.zeros(v * k)
        n_wk[average.word_keys] = average.word_sums / average.n_samples
    n_wk = n_wk.reshape(v, k)
    n_k = n_wk.sum(axis=0)
    return ((n_wk + state.beta) / (n_k + v * state.beta)).T.copy()


def _counts(state) -> tuple[np.ndarray, np.ndarray]:
    """The state's non-zero item x topic counts as sorted keys ``w K + k`` and float64
    counts, from the item rows (O(N + nnz), no sort of the tokens)."""
    indptr, topics, counts = _sampler.item_topic_csr(state)
    rows = np.arange(state.n_items, dtype=np.int64) * np.int64(state.n_topics)
    return np.repeat(rows, np.diff(indptr)) + topics, counts.astype(np.float64)


def _merge(keys_a, sums_a, keys_b, sums_b) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted unique key sets and their sums merged: O(b log a + a + b)."""
    at = np.searchsorted(keys_a, keys_b)
    found = at < keys_a.size
    found[found] = keys_a[at[found]] == keys_b[found]
    sums = sums_a.copy()
    sums[at[found]] += sums_b[found]
    new = ~found
    return np.insert(keys_a, at[new], keys_b[new]), np.insert(sums, at[new], sums_b[new])
