"""Pseudonymised user ids: keyed, stable, and the key stored nowhere."""
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA, preprocess
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


# Row order must not re-identify users: with sequential customer numbers, users written in
# the order of their original ids would let row i be matched to the i-th smallest number.
N_USERS, FIRST_ID = 200, 1000


@pytest.fixture
def numbered_events():
    """200 users with sequential customer numbers 1000..1199, 4 to 8 of 40 items each."""
    rng = np.random.default_rng(12)
    rows = [(FIRST_ID + d, f"i{w}") for d in range(N_USERS)
            for w in rng.choice(40, size=rng.integers(4, 9), replace=False)]
    return pl.DataFrame(rows, schema=["user_id", "item_id"], orient="row")


def _customer_numbers(pseudonyms) -> list[int]:
    numbers = np.arange(FIRST_ID, FIRST_ID + N_USERS)
    back = dict(zip(pseudonymize(numbers, KEY.encode()).tolist(), numbers.tolist()))
    return [back[p] for p in pseudonyms]


def _assert_keyed_order(pseudonyms, n_users=N_USERS):
    """Users in the sorted order of their pseudonyms (exact), so not by customer number."""
    pseudonyms = [str(p) for p in pseudonyms]
    assert len(pseudonyms) == n_users
    assert pseudonyms == sorted(pseudonyms)
    if n_users == N_USERS:
        rank = np.argsort(np.argsort(_customer_numbers(pseudonyms)))
        rho = np.corrcoef(np.arange(n_users), rank)[0, 1]
        # under a keyed (random) permutation of 200 users rho ~ N(0, 1/sqrt(199) = 0.071):
        # |rho| >= 0.3 is 4.2 sd, probability < 1e-4; the customer-number order gives 1
        assert abs(rho) < 0.3, rho


def _first_seen(column) -> list:
    return pl.Series(column).unique(maintain_order=True).to_list()


def test_pseudonymized_prepare_orders_users_by_pseudonym(numbered_events):
    key = KEY.encode()
    split = preprocess.HeldOutUsers(0.3, 0.5)
    prepared = preprocess.prepare(numbered_events, pseudonym_key=key, split=split, seed=3)
    assert prepared.summary["pseudonymized"] is True
    _assert_keyed_order(prepared.users["user_id"])
    assert prepared.users["user"].to_list() == list(range(N_USERS))
    # the whole preparation, split draws included, is that of the ids renamed first: it
    # depends on the pseudonyms only, never on the order of the original ids
    renamed = numbered_events.with_columns(user_id=pl.Series(
        pseudonymize(numbered_events["user_id"].to_numpy(), key)))
    plain = preprocess.prepare(renamed, split=split, seed=3)
    assert prepared.tokens.equals(plain.tokens) and prepared.users.equals(plain.users)
    unkeyed = preprocess.prepare(numbered_events, split=split, seed=3)  # today's order
    assert unkeyed.users["user_id"].to_list() == list(range(FIRST_ID, FIRST_ID + N_USERS))
    with pytest.raises(ValueError, match="pseudonym_key must be at least 16 bytes"):
        preprocess.prepare(numbered_events, pseudonym_key=b"short")
    with pytest.raises(TypeError, match="pseudonym_key must be bytes"):
        preprocess.prepare(numbered_events, pseudonym_key=KEY)


def test_pseudonymized_order_everywhere_a_user_index_is_written(numbered_events, tmp_path):
    numbered_events.write_csv(tmp_path / "e.csv")
    runner = CliRunner(env={**ENV, "GIBBSLDA_PSEUDONYM_KEY": KEY})
    p, whole, m = tmp_path / "p", tmp_path / "whole", tmp_path / "m"
    for args in (["prepare", str(tmp_path / "e.csv"), "--pseudonymize", "--split", "heldout",
                  "--test-fraction", "0.3", "--hidden-fraction", "0.5", "-o", str(p)],
                 ["prepare", str(tmp_path / "e.csv"), "--pseudonymize", "-o", str(whole)],
                 ["train", str(whole), "-o", str(m), "-k", "2", "-n", "5"],
                 ["recommend", str(m), "-n", "2", "-o", str(tmp_path / "recs.parquet")],
                 ["users", str(m), "-o", str(tmp_path / "theta.parquet")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    users = pl.read_parquet(p / "users.parquet")
    assert users["user"].to_list() == list(range(N_USERS))
    _assert_keyed_order(users["user_id"])
    tokens = pl.read_parquet(p / "tokens.parquet")
    assert tokens["user"].is_sorted()
    # each user index still holds that customer's own items
    pairs = tokens.join(users, on="user").join(pl.read_parquet(p / "words.parquet"), on="word")
    got = pl.DataFrame({"user_id": _customer_numbers(pairs["user_id"]),
                        "item_id": pairs["word_id"]})
    assert got.sort("user_id", "item_id").equals(numbered_events.sort("user_id", "item_id"))
    prepared = preprocess.read_prepared(p)
    assert sorted(prepared.parts) == ["hidden", "observed", "train"]
    for part in prepared.parts:
        ids = prepared.corpus(part).user_ids
        _assert_keyed_order(ids, n_users=len(ids))
    _assert_keyed_order(pl.read_parquet(whole / "users.parquet")["user_id"])
    _assert_keyed_order(pl.read_parquet(m / "users.parquet")["user_id"])
    _assert_keyed_order(LDA.load(m).user_ids_)
    _assert_keyed_order(_first_seen(pl.read_parquet(tmp_path / "recs.parquet")["user_id"]))
    _assert_keyed_order(_first_seen(pl.read_parquet(tmp_path / "theta.parquet")["user_id"]))
