"""Pseudonymised user ids: keyed, stable, and the key stored nowhere."""
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA
from gibbslda.cli.main import app
from gibbslda.privacy import pseudonymize
from tests.test_cli import ENV

KEY = "k3y-for-tests-0123456789abcdef"


def test_known_answer_and_properties():
    # RFC 4231 test case 1: key 0x0b * 20, data "Hi There"; we keep the first 128 bits.
    assert pseudonymize(["Hi There"], b"\x0b" * 20).tolist() == [
        "b0344c61d8db38535ca8afceaf0bf12b"]
    a = pseudonymize(["12347", 12347, "12348"], KEY.encode())
    assert a[0] == a[1] != a[2]  # an id is hashed as its text
    assert not np.array_equal(a, pseudonymize(["12347", 12347, "12348"], b"another-key-0123456"))
    with pytest.raises(ValueError, match="at least 16 bytes"):
        pseudonymize(["x"], b"short")


def test_prepare_train_with_pseudonyms(tmp_path):
    events = pl.DataFrame({"user_id": ["alice", "alice", "bob", "bob", "carol"],
                           "item_id": ["a", "b", "b", "c", "a"]})
    events.write_csv(tmp_path / "e.csv")
    runner = CliRunner(env={**ENV, "GIBBSLDA_PSEUDONYM_KEY": KEY})
    result = runner.invoke(app, ["prepare", str(tmp_path / "e.csv"), "--pseudonymize",
                                 "-o", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", str(tmp_path / "p"), "-o", str(tmp_path / "m"),
                                 "-k", "2", "-n", "5"])
    assert result.exit_code == 0, result.output
    model = LDA.load(tmp_path / "m")
    expected = pseudonymize(["alice", "bob", "carol"], KEY.encode())
    assert sorted(model.user_ids_.tolist()) == sorted(expected.tolist())
    for folder in (tmp_path / "p", tmp_path / "m"):
        for file in folder.iterdir():
            data = file.read_bytes()
            assert b"alice" not in data and KEY.encode() not in data, file
    no_key = CliRunner(env={**ENV, "GIBBSLDA_PSEUDONYM_KEY": None}).invoke(
        app, ["prepare", str(tmp_path / "e.csv"), "--pseudonymize", "-o", str(tmp_path / "q")])
    assert no_key.exit_code == 1 and not (tmp_path / "q").exists()
