"""Save and load fitted models: npz (never pickled) + JSON + Parquet id maps.

A model folder holds:

- ``model.json``: schema version, gibbslda version, parameters, fitted scalars;
- ``arrays.npz``: the chain (offsets, token items, topics), the priors, the random stream
  states and the log-likelihood history; read with ``allow_pickle=False``;
- ``users.parquet`` and ``items.parquet``: the original user and item ids, in index order.

The counts are not stored: they are rebuilt from the topics on load (O(tokens)), so a
folder cannot hold counts that disagree with its assignments. Writing goes to a temporary
folder beside the target that is then renamed into place, so a reader never sees half a
model.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import polars as pl

from gibbslda import sampler as _sampler
from gibbslda.corpus import Corpus
from gibbslda.errors import ModelFileError
from gibbslda.model import HISTORY_DTYPE, LDA

SCHEMA_VERSION = 1
FORMAT = "gibbslda-model"
_ARRAYS = ("indptr", "words", "z", "alpha", "rng", "loglik")


def save(model, path, *, extra=None) -> Path:
    """Write ``model`` (fitted) to the folder ``path``, replacing what was there.

    ``extra`` maps file names to polars frames written as Parquet into the same folder
    (the CLI keeps item labels there, ``labels.parquet``); :func:`read_extra` reads one.
    """
    state = model._check_fitted()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "gibbslda_version": version("gibbslda"),
        "params": model.get_params() | {"random_state": _jsonable(model.random_state)},
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
        },
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    _chmod_default(tmp)
    try:
        np.savez(tmp / "arrays.npz", indptr=state.indptr, words=state.words, z=state.z,
                 alpha=state.alpha, rng=state.rng, loglik=model.loglik_)
        pl.DataFrame({"user_id": model.user_ids_}).write_parquet(tmp / "users.parquet")
        pl.DataFrame({"item_id": model.item_ids_}).write_parquet(tmp / "items.parquet")
        for name, frame in (extra or {}).items():
            if "/" in name or name in ("users.parquet", "items.parquet"):
                raise ValueError(f"extra file name {name!r} is taken or not a plain name")
            frame.write_parquet(tmp / name)
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, default=_plain))
        _replace_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load(path):
    """Read a model folder written by :func:`save`. Raises ModelFileError when it is
    missing, damaged, from an unknown schema, or holds anything that would need pickle."""
    path = Path(path)
    meta = _read_meta(path)
    arrays = _read_arrays(path / "arrays.npz")
    try:
        users = pl.read_parquet(path / "users.parquet").get_column("user_id").to_numpy()
        items = pl.read_parquet(path / "items.parquet").get_column("item_id").to_numpy()
    except Exception as exc:  # polars raises several types for a bad file
        raise ModelFileError(f"{path}: id maps unreadable ({exc}); the folder is damaged, "
                             "save the model again") from exc
    fitted = _check_fitted(path, meta)
    n_topics, n_items = fitted["n_topics"], fitted["n_items"]
    arrays["loglik"] = _upgrade_history(arrays["loglik"])
    _check_shapes(path, arrays, fitted, users, items)
    model = _model_from_params(path, meta.get("params"))
    for key, name in (("n_topics", "n_topics"), ("n_shards", "n_shards"),
                      ("mh_steps", "mh_steps")):
        if getattr(model, name) != fitted[key]:
            raise ModelFileError(f"{path}/model.json: parameter {name} "
                                 f"({getattr(model, name)!r}) disagrees with the fitted "
                                 f"{fitted[key]!r}; the folder is damaged")
    model.state_ = _sampler.restore_state(
        arrays["indptr"], arrays["words"], arrays["z"], n_topics, n_items,
        alpha=arrays["alpha"], beta=float(fitted["beta"]), rng=arrays["rng"],
        sampler=fitted["sampler"], n_shards=fitted["n_shards"], mh_steps=fitted["mh_steps"])
    model.corpus_ = Corpus(arrays["indptr"], arrays["words"], users, items,
                           n_dropped_users=fitted.get("n_dropped_users", 0))
    model.n_iter_ = int(fitted["n_iter"])
    model.seconds_ = float(fitted["seconds"])
    model.seed_entropy_ = int(fitted["seed_entropy"])
    model.loglik_ = arrays["loglik"]
    return model


def read_extra(path, name: str):
    """An extra Parquet file that :func:`save` wrote into a model folder, or None."""
    file = Path(path) / name
    if not file.is_file():
        return None
    try:
        return pl.read_parquet(file)
    except Exception as exc:  # polars raises several types for a bad file
        raise ModelFileError(f"{file} is unreadable ({exc}); the folder is damaged") from exc


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
            return {name: np.ascontiguousarray(npz[name]) for name in _ARRAYS}
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


def _model_from_params(path: Path, params) -> LDA:
    """The estimator with the saved parameters, validated as ``fit`` would."""
    try:
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise TypeError("parameters are not a mapping of names")
        model = LDA(**params)
        model._validate()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}/model.json: saved parameters are invalid ({exc}); "
                             "the folder is damaged, save the model again") from exc
    return model


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
    }
    for name, (shape, dtype) in expected.items():
        if (shape is not None and a[name].shape != shape) or a[name].dtype != dtype:
            raise ModelFileError(f"{path}: array {name!r} has shape {a[name].shape} and "
                                 f"dtype {a[name].dtype}, expected {shape} {np.dtype(dtype)}")
    n_shards = fitted.get("n_shards")
    if (a["rng"].dtype != np.uint64 or a["rng"].ndim != 2 or a["rng"].shape[1] != 4
            or not isinstance(n_shards, int) or n_shards < 1 or a["rng"].shape[0] != n_shards):
        raise ModelFileError(f"{path}: random stream states do not match the model's "
                             f"{n_shards!r} shards; the folder is damaged")
    if fitted.get("sampler") not in _sampler.SAMPLERS or not (
            isinstance(fitted.get("mh_steps"), int) and fitted["mh_steps"] >= 1):
        raise ModelFileError(f"{path}: unknown sampler settings {fitted.get('sampler')!r}, "
                             f"mh_steps {fitted.get('mh_steps')!r}")
    if not (np.all(np.isfinite(a["alpha"])) and np.all(a["alpha"] > 0)):
        raise ModelFileError(f"{path}: alpha is not finite and positive; the folder is "
                             "damaged, save the model again")
    n_tokens = fitted["n_tokens"]
    if (a["indptr"][0] != 0 or a["indptr"][-1] != n_tokens or np.any(np.diff(a["indptr"]) < 0)
            or (n_tokens and (a["words"].min() < 0 or a["words"].max() >= fitted["n_items"]
                              or a["z"].min() < 0 or a["z"].max() >= fitted["n_topics"]))):
        raise ModelFileError(f"{path}: token arrays are inconsistent; the folder is damaged")
    if len(users) != fitted["n_users"] or len(items) != fitted["n_items"]:
        raise ModelFileError(f"{path}: id maps do not match the model's users and items")


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()  # once, at import: changing it later races with other threads


def _chmod_default(folder: Path) -> None:
    """mkdtemp makes folders private (0700); give the model folder the usual mode."""
    os.chmod(folder, 0o777 & ~_UMASK)


def _replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``; an old model is removed only after."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
