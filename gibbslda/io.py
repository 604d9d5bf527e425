"""Save and load fitted models: npz (never pickled) + JSON + Parquet id maps.

A model folder holds:

- ``model.json``: schema version, gibbslda version, parameters, fitted scalars;
- ``arrays.npz``: the chain (offsets, token items, topics), the priors, the random stream
  states and the log-likelihood history; read with ``allow_pickle=False``;
- ``users.parquet`` and ``items.parquet``: the original user and item ids, in index order.

The counts are not stored: they are rebuilt from the topics on load (O(tokens)), so a
folder cannot hold counts that disagree with its assignments. Writing goes through
:mod:`gibbslda._files`: a temporary folder beside the target, fsync'd, then renamed into
place, so a reader never sees half a model; :func:`recover` (called by :func:`read`) puts
the previous model back when a save was killed between its renames. A folder that is not
empty and not a gibbslda model folder is never replaced.

The Dask trainer's round checkpoint (:mod:`gibbslda.distributed`) is one npz file, also
never pickled: the topics of every token, the partitions' stream states, the rounds so far
and a JSON description (:func:`write_checkpoint`, :func:`read_checkpoint`).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import polars as pl

from gibbslda import _files
from gibbslda import _validate, posterior, sampler as _sampler, update as _update
from gibbslda.corpus import Corpus
from gibbslda.errors import ModelFileError

SCHEMA_VERSION = 1
# estimator parameters added after schema 1: written only when they differ from their
# default, so a folder saved with the defaults still loads in a gibbslda that predates
# them (a folder without one loads with its default)
_LATER_PARAMS = ("heldout_users",)
FORMAT = "gibbslda-model"
_ARRAYS = ("indptr", "words", "z", "alpha", "rng", "loglik")
_OPTIONAL = ("times",)  # event times of the tokens, when the corpus had them
_KIND = "a gibbslda model folder"
# the training history (``LDA.loglik_``): one row per evaluated sweep
HISTORY_DTYPE = np.dtype([("iteration", np.int64), ("seconds", np.float64),
                          ("loglik", np.float64), ("heldout", np.float64)])
CHECKPOINT_FORMAT, CHECKPOINT_SCHEMA = "gibbslda-distributed-checkpoint", 1
# the Dask trainer's rounds (``DistributedLDA.rounds_``), as its checkpoint holds them
ROUND_DTYPE = np.dtype([
    ("round", np.int64), ("sweeps", np.int64), ("seconds", np.float64),
    ("step_s", np.float64), ("sample_s", np.float64), ("sync_s", np.float64),
    ("merge_s", np.float64), ("checkpoint_s", np.float64), ("bytes_up", np.int64),
    ("bytes_down", np.int64), ("bytes_snapshot", np.int64), ("loglik", np.float64)])


@dataclass(frozen=True)
class Saved:
    """What a model folder holds, checked: the estimator's saved parameters (``params``,
    validated by the estimator), the fitted scalars, the chain state and its corpus."""

    path: Path
    params: object
    fitted: dict
    state: object  # gibbslda.sampler.GibbsState
    corpus: Corpus
    n_iter: int
    seconds: float
    seed_entropy: int
    history: np.ndarray
    ranking: tuple = (None, None)  # (ranking.npz arrays, ranking.json), when saved


def save(model, path, *, extra=None) -> Path:
    """Write ``model`` (fitted) to the folder ``path``, replacing the model there.

    ``path`` must be absent, an empty folder or a gibbslda model folder (else ValueError,
    before anything is written). ``extra`` maps file names to polars frames written as
    Parquet into the same folder (the CLI keeps item labels there, ``labels.parquet``);
    :func:`read_extra` reads one.
    """
    state = model._check_fitted()
    model._validate()
    model._check_settings()  # a setting changed since fit would save a damaged folder
    path = Path(path)
    extra = extra or {}
    for name in extra:
        if "/" in name or name in ("users.parquet", "items.parquet"):
            raise ValueError(f"extra file name {name!r} is taken or not a plain name")
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "gibbslda_version": version("gibbslda"),
        "params": _params(model),
        "fitted": {
            "n_topics": int(state.n_k.shape[0]),
            "n_users": int(state.indptr.shape[0] - 1),
            "n_items": state.n_items,
            "n_tokens": state.n_tokens,
            "n_iter": int(model.n_iter_),
            "seconds": float(model.seconds_),
            "beta": float(state.beta),
            "sampler": state.sampler,
            "n_shards": state.n_shards,
            "mh_steps": state.mh_steps,
            "seed_entropy": str(model.seed_entropy_),
            "n_dropped_users": int(model.corpus_.n_dropped_users),
            **_update.fitted_fields(model),  # updates: their number, the decay's time
        },
    }

    def write(tmp: Path) -> None:
        times = model.corpus_.times
        np.savez(tmp / "arrays.npz", indptr=state.indptr, words=state.words, z=state.z,
                 alpha=state.alpha, rng=state.rng, loglik=model.loglik_,
                 **({"times": times} if times is not None else {}))
        ranking, choice = posterior.saved(model)  # recommend's samples and choice
        if ranking:
            np.savez(tmp / "ranking.npz", **ranking)
        if choice is not None:
            (tmp / "ranking.json").write_text(json.dumps(choice, default=_plain))
        pl.DataFrame({"user_id": model.user_ids_}).write_parquet(tmp / "users.parquet")
        pl.DataFrame({"item_id": model.item_ids_}).write_parquet(tmp / "items.parquet")
        for name, frame in extra.items():
            frame.write_parquet(tmp / name)
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, default=_plain))

    return _files.write_folder(path, write, is_ours=_is_model_folder, kind=_KIND)


def check_target(path) -> None:
    """Raise ValueError unless :func:`save` may write ``path``: it is absent, an empty
    folder, or a gibbslda model folder. Call it before work whose result goes there."""
    _files.check_folder(path, is_ours=_is_model_folder, kind=_KIND)


def recover(path) -> None:
    """Put back the model a save killed between its two renames left beside ``path``,
    when ``path`` is missing, and remove what killed saves left half-written (see
    :func:`gibbslda._files.recover`). :func:`read` and :func:`save` call it first."""
    _files.recover(path, is_ours=_is_model_folder)


def read(path) -> Saved:
    """Read a model folder written by :func:`save` (``LDA.load`` builds the estimator from
    it). Raises ModelFileError when it is missing, damaged, from an unknown schema, or
    holds anything that would need pickle."""
    path = Path(path)
    try:
        recover(path)
    except OSError:  # a reader without write access reads what is there
        pass
    meta = _read_meta(path)
    arrays = _read_arrays(path / "arrays.npz")
    try:
        users = pl.read_parquet(path / "users.parquet").get_column("user_id").to_numpy()
        items = pl.read_parquet(path / "items.parquet").get_column("item_id").to_numpy()
    except Exception as exc:  # polars raises several types for a bad file
        raise ModelFileError(f"{path}: id maps unreadable ({exc}); the folder is damaged, "
                             "save the model again") from exc
    fitted = _check_fitted(path, meta)
    arrays["loglik"] = _upgrade_history(arrays["loglik"])
    _check_shapes(path, arrays, fitted, users, items)
    state = _sampler.restore_state(
        arrays["indptr"], arrays["words"], arrays["z"], fitted["n_topics"],
        fitted["n_items"], alpha=arrays["alpha"], beta=float(fitted["beta"]),
        rng=arrays["rng"], sampler=fitted["sampler"], n_shards=fitted["n_shards"],
        mh_steps=fitted["mh_steps"])
    corpus = Corpus(arrays["indptr"], arrays["words"], users, items,
                    n_dropped_users=fitted.get("n_dropped_users", 0),
                    times=arrays.get("times"))
    return Saved(path, meta.get("params"), fitted, state, corpus, int(fitted["n_iter"]),
                 float(fitted["seconds"]), int(fitted["seed_entropy"]), arrays["loglik"],
                 _read_ranking(path))


def _read_ranking(path: Path) -> tuple:
    """recommend's saved samples and choice (:mod:`gibbslda.posterior`); (None, None) in
    folders without them (older ones)."""
    arrays = choice = None
    try:
        if (path / "ranking.npz").is_file():
            with np.load(path / "ranking.npz", allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        if (path / "ranking.json").is_file():
            choice = json.loads((path / "ranking.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: ranking.npz / ranking.json unreadable ({exc}); the "
                             "folder is damaged, save the model again") from exc
    return arrays, choice


def read_extra(path, name: str):
    """An extra Parquet file that :func:`save` wrote into a model folder, or None."""
    file = Path(path) / name
    if not file.is_file():
        return None
    try:
        return pl.read_parquet(file)
    except Exception as exc:  # polars raises several types for a bad file
        raise ModelFileError(f"{file} is unreadable ({exc}); the folder is damaged") from exc


def write_checkpoint(path, *, z, rng, rounds, meta: dict) -> Path:
    """Write a round checkpoint to the file ``path``, atomically (beside, then renamed:
    never half a checkpoint): the topics ``z``, the stream states ``rng``, the ``rounds``
    (ROUND_DTYPE) and ``meta`` (JSON, after the format, schema and gibbslda version)."""
    meta = {"format": CHECKPOINT_FORMAT, "schema_version": CHECKPOINT_SCHEMA,
            "gibbslda_version": version("gibbslda"), **meta}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, z=z, rng=rng, rounds=rounds, meta=np.array(json.dumps(meta)))

    return _files.write_file(path, write)


def read_checkpoint(path) -> tuple[dict, dict]:
    """The arrays (``z``, ``rng``, ``rounds``) and the meta of a round checkpoint. Raises
    ValueError when it is missing, damaged, or not a checkpoint of this schema; whether it
    fits a corpus and settings is the caller's to check."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in ("z", "rng", "rounds", "meta")}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"checkpoint {path} is missing or damaged ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or (
            meta.get("schema_version") != CHECKPOINT_SCHEMA):
        raise ValueError(f"{path} is not a checkpoint this gibbslda can read")
    return arrays, meta


def _read_meta(path: Path) -> dict:
    if not (path / "model.json").is_file():
        raise ModelFileError(f"{path} is not a gibbslda model folder (no model.json); "
                             "pass the folder that LDA.save wrote")
    try:
        meta = json.loads((path / "model.json").read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}/model.json is not valid JSON ({exc}); the folder is "
                             "damaged, save the model again") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}/model.json is not a gibbslda model description")
    schema = meta.get("schema_version")
    if schema != SCHEMA_VERSION:
        raise ModelFileError(
            f"{path} uses model schema {schema!r}; this gibbslda ({version('gibbslda')}) "
            f"reads schema {SCHEMA_VERSION}: use the gibbslda version that wrote it "
            f"({meta.get('gibbslda_version', 'unknown')}) or retrain")
    return meta


def _read_arrays(file: Path) -> dict:
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [name for name in _ARRAYS if name not in npz.files]
            if missing:
                raise ModelFileError(f"{file} lacks arrays {missing}; the folder is damaged")
            return {name: np.ascontiguousarray(npz[name]) for name in _ARRAYS + _OPTIONAL
                    if name in npz.files}
    except ModelFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise ModelFileError(f"{file} holds object arrays, which only pickle can read; "
                                 "gibbslda never unpickles model files") from exc
        raise ModelFileError(f"{file} is damaged ({exc}); save the model again") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{file} is missing or damaged ({exc}); save the model "
                             "again") from exc


# fitted scalars: (type, smallest value); a damaged or edited model.json fails here
_FITTED = {"n_topics": (int, 1), "n_users": (int, 0), "n_items": (int, 1),
           "n_tokens": (int, 0), "n_iter": (int, 0), "seconds": (float, 0.0),
           "beta": (float, 1e-300), "n_shards": (int, 1), "mh_steps": (int, 1),
           "sampler": (str, None), "seed_entropy": (str, None)}


def _check_fitted(path: Path, meta: dict) -> dict:
    fitted = meta.get("fitted")
    if not isinstance(fitted, dict):
        raise ModelFileError(f"{path}/model.json has no fitted section; the folder is "
                             "damaged, save the model again")
    for key, (kind, low) in _FITTED.items():
        value = fitted.get(key)
        ok = (isinstance(value, str) if kind is str else
              isinstance(value, (int, float)) and not isinstance(value, bool)
              and (kind is float or isinstance(value, int)) and np.isfinite(value)
              and value >= low)
        if key == "seed_entropy":
            ok = ok and value.isdigit()
        if not ok:
            raise ModelFileError(f"{path}/model.json: fitted {key} is {value!r}, not a "
                                 "valid value; the folder is damaged, save the model again")
    return fitted


def _upgrade_history(history: np.ndarray) -> np.ndarray:
    """Histories saved before the held-out column existed get it, filled with NaN."""
    if history.dtype.names != ("iteration", "seconds", "loglik"):
        return history  # current, or damaged: _check_shapes decides
    upgraded = np.zeros(history.shape, dtype=HISTORY_DTYPE)
    for name in history.dtype.names:
        upgraded[name] = history[name]
    upgraded["heldout"] = np.nan
    return upgraded


def _check_shapes(path: Path, a: dict, fitted: dict, users, items) -> None:
    expected = {
        "indptr": ((fitted["n_users"] + 1,), np.int64),
        "words": ((fitted["n_tokens"],), np.int32),
        "z": ((fitted["n_tokens"],), np.int32),
        "alpha": ((fitted["n_topics"],), np.float64),
        "loglik": (None, HISTORY_DTYPE),
        "times": ((fitted["n_tokens"],), np.int64),
    }
    for name, (shape, dtype) in expected.items():
        if name not in a:  # an optional array this folder does not hold
            continue
        if (shape is not None and a[name].shape != shape) or a[name].dtype != dtype:
            raise ModelFileError(f"{path}: array {name!r} has shape {a[name].shape} and "
                                 f"dtype {a[name].dtype}, expected {shape} {np.dtype(dtype)}")
    n_shards = fitted.get("n_shards")
    try:
        _validate.as_streams(a["rng"], n_streams=_validate.check_int("n_shards", n_shards,
                                                                     minimum=1))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: random stream states do not match the model's "
                             f"{n_shards!r} shards ({exc}); the folder is damaged") from exc
    if fitted.get("sampler") not in _sampler.SAMPLERS or not (
            isinstance(fitted.get("mh_steps"), int) and fitted["mh_steps"] >= 1):
        raise ModelFileError(f"{path}: unknown sampler settings {fitted.get('sampler')!r}, "
                             f"mh_steps {fitted.get('mh_steps')!r}")
    if not (np.all(np.isfinite(a["alpha"])) and np.all(a["alpha"] > 0)):
        raise ModelFileError(f"{path}: alpha is not finite and positive; the folder is "
                             "damaged, save the model again")
    try:
        _validate.as_csr(a["indptr"], a["words"], n_items=fitted["n_items"],
                         names=("indptr", "words"))
        _validate.as_ids(a["z"], "z", upper=fitted["n_topics"], what="topics")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: token arrays are inconsistent ({exc}); the folder is "
                             "damaged") from exc
    if len(users) != fitted["n_users"] or len(items) != fitted["n_items"]:
        raise ModelFileError(f"{path}: id maps do not match the model's users and items")


def _is_model_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a model.json that gibbslda wrote (any schema version)."""
    try:
        meta = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def _plain(value):
    """numpy scalars (for example LDA(np.int64(20))) as Python numbers in model.json."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} into model.json")


def _jsonable(value):
    if value is None or isinstance(value, (int, float, str)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    return None  # a Generator is not saved: the resolved seed entropy is


def _params(model) -> dict:
    """The estimator's parameters as model.json holds them (see ``_LATER_PARAMS``)."""
    params = model.get_params() | {"random_state": _jsonable(model.random_state)}
    defaults = type(model)().get_params()
    return {name: value for name, value in params.items()
            if name not in _LATER_PARAMS or value != defaults.get(name)}
