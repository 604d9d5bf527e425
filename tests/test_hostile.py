"""Hostile and damaged model folders: any damage is refused with ModelFileError (a one-line
message), or the folder still loads as a consistent model; nothing else escapes."""
import json
import shutil

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


@given(section=st.sampled_from([None, "params", "fitted"]), key=st.text(max_size=20),
       value=JSON_VALUES, drop=st.booleans())
def test_edited_description(saved, tmp_path_factory, section, key, value, drop):
    folder = tmp_path_factory.mktemp("json") / "m"
    shutil.copytree(saved, folder)
    meta = json.loads((folder / "model.json").read_text())
    target = meta if section is None else meta[section]
    keys = sorted(target)
    if drop and keys:
        target.pop(keys[hash(key) % len(keys)])
    else:
        target[key if key or not keys else keys[0]] = value
    (folder / "model.json").write_text(json.dumps(meta))
    _load_or_refuse(folder)
