"""Save/load: round trips, bit-exact continuation, and files that must be refused."""
import json

import numpy as np
import pytest

from gibbslda import LDA, Corpus, ModelFileError
from gibbslda.io import SCHEMA_VERSION


@pytest.fixture
def fitted():
    corpus = Corpus.from_lists([["a", "b", "a", "c"], ["b", "c"], ["d", "a"], ["c", "c", "d"]],
                               user_ids=["u1", "u2", "u3", "u4"])
    return LDA(3, alpha=[0.1, 0.2, 0.3], beta=0.05, n_iter=8, random_state=1).fit(corpus)


def test_round_trip_keeps_everything(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = LDA.load(tmp_path / "m")
    for name in ("z_", "n_dk_", "n_wk_", "n_k_", "rng_state_", "alpha_", "topic_word_",
                 "doc_topic_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name))
    assert loaded.loglik_.tobytes() == fitted.loglik_.tobytes()  # NaN held-out column too
    assert loaded.user_ids_.tolist() == ["u1", "u2", "u3", "u4"]
    assert loaded.item_ids_.tolist() == ["a", "b", "c", "d"]
    assert loaded.get_params() == fitted.get_params()
    assert loaded.n_iter_ == 8 and loaded.beta_ == 0.05
    np.testing.assert_array_equal(loaded.transform([["a", "d"]]), fitted.transform([["a", "d"]]))
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION


def test_load_and_continue_equals_uninterrupted(planted, tmp_path):
    whole = LDA(5, n_iter=25, eval_every=4, random_state=8).fit(planted.corpus)
    LDA(5, n_iter=25, eval_every=4, random_state=8).fit(
        planted.corpus, callback=lambda info: info.iteration < 10).save(tmp_path / "m")
    resumed = LDA.load(tmp_path / "m").resume()
    assert resumed.n_iter_ == 25
    for name in ("z_", "n_dk_", "n_wk_", "n_k_", "rng_state_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))
    assert (resumed.loglik_[["iteration", "loglik"]].tolist()
            == whole.loglik_[["iteration", "loglik"]].tolist())


def test_save_replaces_an_existing_model(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    fitted.resume(2).save(tmp_path / "m")
    assert LDA.load(tmp_path / "m").n_iter_ == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folders left


def test_save_unfitted_raises(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        LDA(2).save(tmp_path / "m")


def edit_json(folder, **changes):
    meta = json.loads((folder / "model.json").read_text())
    meta.update(changes)
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage,match", [
    (lambda f: (f / "model.json").unlink(), "not a gibbslda model folder"),
    (lambda f: (f / "model.json").write_text("{not json"), "not valid JSON"),
    (lambda f: edit_json(f, format="other"), "not a gibbslda model description"),
    (lambda f: edit_json(f, schema_version=SCHEMA_VERSION + 1), "uses model schema 2"),
    (lambda f: (f / "arrays.npz").write_bytes((f / "arrays.npz").read_bytes()[:200]),
     "missing or damaged"),
    (lambda f: (f / "users.parquet").write_bytes(b"PAR1garbage"), "id maps unreadable"),
    (lambda f: np.savez(f / "arrays.npz", z=np.zeros(3)), "lacks arrays"),
])
def test_damaged_folders_are_refused(fitted, tmp_path, damage, match):
    fitted.save(tmp_path / "m")
    damage(tmp_path / "m")
    with pytest.raises(ModelFileError, match=match):
        LDA.load(tmp_path / "m")


@pytest.mark.parametrize("name,value,match", [
    ("rng", np.zeros((0, 4), dtype=np.uint64), "random stream states do not match"),
    ("loglik", np.zeros(3), "array 'loglik'"),
])
def test_arrays_that_would_crash_a_kernel_are_refused(fitted, tmp_path, name, value, match):
    fitted.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays[name] = value
    np.savez(tmp_path / "m" / "arrays.npz", **arrays)
    with pytest.raises(ModelFileError, match=match):
        LDA.load(tmp_path / "m")


def test_inconsistent_arrays_are_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["z"] = arrays["z"] + 7  # topics out of range
    np.savez(tmp_path / "m" / "arrays.npz", **arrays)
    with pytest.raises(ModelFileError, match="token arrays are inconsistent"):
        LDA.load(tmp_path / "m")


class _Payload:
    """Unpickling this object would create the file named by ``target``."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_pickled_object_arrays_are_never_unpickled(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    target = tmp_path / "pwned"
    with np.load(tmp_path / "m" / "arrays.npz") as npz:
        arrays = dict(npz)
    arrays["alpha"] = np.array([_Payload(target)], dtype=object)
    np.savez(tmp_path / "m" / "arrays.npz", **arrays)  # numpy pickles object arrays
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=True) as npz:
        npz["alpha"]  # proves the file is live: unpickling it runs open(target, "w")
    assert target.exists()
    target.unlink()
    with pytest.raises(ModelFileError, match="never unpickles"):
        LDA.load(tmp_path / "m")
    assert not target.exists()


def test_numpy_scalar_parameters_save(planted, tmp_path):
    model = LDA(np.int64(3), beta=np.float32(0.05), n_iter=np.int64(3), n_jobs=np.int64(1),
                random_state=np.int64(2)).fit(planted.corpus)
    model.save(tmp_path / "m")
    loaded = LDA.load(tmp_path / "m")
    assert loaded.n_topics == 3 and loaded.n_iter == 3
    np.testing.assert_array_equal(loaded.z_, model.z_)
