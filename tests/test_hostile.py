"""Hostile and damaged model folders: any damage is refused with ModelFileError (a one-line
message), or the folder still loads as a consistent model; nothing else escapes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from gibbslda import LDA, ModelFileError  # noqa: E402

FILES = ["model.json", "arrays.npz", "users.parquet", "items.parquet"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "m"
    LDA(3, alpha=[0.1, 0.2, 0.3], n_iter=6, random_state=1, sampler="sparse",
        n_shards=2).fit([["a", "b", "c"], ["b", "c"], ["d", "a"], ["c"]]).save(folder)
    return folder


def _load_or_refuse(folder):
    try:
        model = LDA.load(folder)
    except ModelFileError as exc:
        assert "\n" not in str(exc)
        hypothesis.event("refused")
        return
    hypothesis.event("loaded")
    assert np.all(np.isfinite(model.topic_word_)) and np.all(model.n_k_ >= 0)
    model.resume(1)


@given(name=st.sampled_from(FILES), data=st.data())
def test_flipped_bytes(saved, tmp_path_factory, name, data):
    folder = tmp_path_factory.mktemp("flip") / "m"
    shutil.copytree(saved, folder)
    raw = bytearray((folder / name).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    (folder / name).write_bytes(bytes(raw))
    _load_or_refuse(folder)


@given(name=st.sampled_from(FILES), keep=st.floats(0, 0.99))
def test_truncated(saved, tmp_path_factory, name, keep):
    folder = tmp_path_factory.mktemp("cut") / "m"
    shutil.copytree(saved, folder)
    raw = (folder / name).read_bytes()
    (folder / name).write_bytes(raw[:int(len(raw) * keep)])
    _load_or_refuse(folder)


JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                                     st.floats(allow_nan=True), st.text(max_size=8)),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=6)


def edited(meta: dict, section, key: str, value, drop: bool, pick: int) -> dict:
    """``meta`` with one key of a section dropped (the ``pick``-th, modulo their number, in
    sorted order) or set to ``value``: a function of its arguments only, so every case is
    the same in every process (no ``hash()``, whose str values change per process)."""
    meta = json.loads(json.dumps(meta))
    target = meta if section is None else meta[section]
    keys = sorted(target)
    if drop and keys:
        target.pop(keys[pick % len(keys)])
    else:
        target[key if key or not keys else keys[0]] = value
    return meta


@given(section=st.sampled_from([None, "params", "fitted"]), key=st.text(max_size=20),
       value=JSON_VALUES, drop=st.booleans(), pick=st.integers(0, 2**16))
def test_edited_description(saved, tmp_path_factory, section, key, value, drop, pick):
    folder = tmp_path_factory.mktemp("json") / "m"
    shutil.copytree(saved, folder)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(edited(meta, section, key, value, drop,
                                                         pick)))
    _load_or_refuse(folder)


_EDITS = """
import json
from tests.test_hostile import edited
meta = {"a": 1, "b": {"x": 2, "y": 3}, "params": {"p": 1, "q": 2, "r": 3},
        "fitted": {"f": [1], "g": None, "h": "s"}}
keys = ("", "k", "zz", "\u00e9t\u00e9")
print(json.dumps([edited(meta, section, key, None, drop, pick)
                  for section in (None, "params", "fitted") for key in keys
                  for drop in (True, False) for pick in (0, 1, 7, 40000)]))
"""


def test_edited_description_cases_do_not_depend_on_the_process():
    """The edits (so the derandomised cases) are the same under two hash seeds."""
    runs = [subprocess.run([sys.executable, "-c", _EDITS], capture_output=True, text=True,
                           check=True, cwd=Path(__file__).resolve().parents[1],
                           env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout
            for seed in (1, 2)]
    assert runs[0] == runs[1] and len(json.loads(runs[0])) == 96
