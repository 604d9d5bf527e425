"""prepare -> train -> update through the command line: the summary, the grown model, the
prepared folder's weights reused, labels kept, and bad input leaving the model as it was."""
import hashlib
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA
from gibbslda.cli.main import app
from gibbslda.cli.update import parse_decay
from tests.test_cli import ENV, _run_main

N_TOPICS = 3


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env=ENV)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Two CSV logs: the training days and a later day with known and new users and items;
    'view' rows weigh 2 tokens by the preparation's --weight (the default would be 1)."""
    folder = tmp_path_factory.mktemp("logs")
    rng = np.random.default_rng(4)
    rows = [(f"u{u}", f"i{rng.integers(30)}", "view", f"2024-01-0{1 + j % 5}T10:00:00")
            for u in range(60) for j in range(rng.integers(3, 9))]
    pl.DataFrame(rows, schema=["user_id", "item_id", "event", "timestamp"],
                 orient="row").write_csv(folder / "events.csv")
    new = [("u1", "i3", "view"), ("u1", "i40", "view"), ("u70", "i41", "view"),
           ("u70", "i3", "view"), ("u71", "i5", "view")]
    pl.DataFrame(new, schema=["user_id", "item_id", "event"], orient="row").with_columns(
        timestamp=pl.lit("2024-01-07T10:00:00")).write_csv(folder / "new.csv")
    pl.DataFrame({"user_id": ["u1"], "item_id": [None], "event": ["view"],
                  "timestamp": ["2024-01-08T10:00:00"]}).write_csv(folder / "null.csv")
    return folder


@pytest.fixture(scope="module")
def model(runner, logs):
    prepared = logs / "prepared"
    result = runner.invoke(app, ["prepare", str(logs / "events.csv"), "--event", "event",
                                 "--timestamp", "timestamp", "--weight", "view=2",
                                 "-o", str(prepared)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", str(prepared), "-o", str(logs / "model"), "-k",
                                 str(N_TOPICS), "--iterations", "15", "--seed", "1"])
    assert result.exit_code == 0, result.output
    return logs / "model"


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def test_update_adds_what_the_events_hold(runner, logs, model, tmp_path):
    out = tmp_path / "updated"
    result = runner.invoke(app, ["update", str(model), str(logs / "new.csv"), "--prepared",
                                 str(logs / "prepared"), "--event", "event", "--timestamp",
                                 "timestamp", "-o", str(out), "--iterations", "4", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert (summary["users_added"], summary["items_added"]) == (2, 2)  # u70 u71; i40 i41
    assert summary["tokens_added"] == 2 * 5  # view=2 from the preparation, 5 rows
    assert summary["sweeps"] == 4
    before = LDA.load(model)
    after = LDA.load(out)
    assert {"u70", "u71"} <= set(after.user_ids_) and {"i40", "i41"} <= set(after.item_ids_)
    assert after.corpus_.n_tokens == before.corpus_.n_tokens + 10 and after.n_updates_ == 1
    rows = report["interests"]
    assert [r["tokens_after"] - r["tokens_before"] for r in rows] == \
        [r["change"] for r in rows]
    assert sum(r["tokens_after"] for r in rows) == after.corpus_.n_tokens
    assert after.corpus_.times is not None and after.corpus_.times.max() > \
        before.corpus_.times.max()


def test_update_in_place_with_a_half_life_and_the_table(runner, logs, model, tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(model, folder)
    result = runner.invoke(app, ["update", str(folder), str(logs / "new.csv"), "--prepared",
                                 str(logs / "prepared"), "--event", "event", "--timestamp",
                                 "timestamp", "--decay", "2d"])
    assert result.exit_code == 0, result.output
    assert "+2 users, +2 items, +10 tokens" in result.stdout
    assert "How each interest changed" in result.stdout
    loaded = LDA.load(folder)
    assert loaded.n_updates_ == 1 and loaded.decayed_to_ is not None
    faded = int(result.stdout.split("(")[1].split(" faded")[0].replace(",", ""))
    assert faded > 0 and loaded.corpus_.n_tokens == LDA.load(model).corpus_.n_tokens + 10 \
        - faded


@pytest.mark.parametrize("args,message", [
    (["new.csv", "--decay", "2"], "decay must be a factor"),
    (["null.csv"], "null"),
    (["missing.csv"], "missing.csv"),
    (["new.csv", "--user", "customer"], "customer"),
])
def test_bad_update_is_one_line_and_leaves_the_model(logs, model, args, message):
    before = _digest(model)
    args = [str(logs / args[0]), *args[1:]]
    proc = _run_main("update", str(model), *args, "--prepared", str(logs / "prepared"),
                     "--event", "event", "--timestamp", "timestamp")
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert message in proc.stderr
    assert _digest(model) == before


def test_parse_decay():
    import datetime

    assert parse_decay(None) is None and parse_decay("0.5") == 0.5
    assert parse_decay("30d") == datetime.timedelta(days=30)
    assert parse_decay("1.5h") == datetime.timedelta(hours=1.5)
    with pytest.raises(ValueError, match="--decay takes a factor"):
        parse_decay("30x")


def test_update_reads_the_events_with_the_columns_prepare_was_given(runner, logs, model,
                                                                     tmp_path):
    """prepare records --event and --timestamp; update --prepared reuses them, so the
    same update without them gives the same model (times included)."""
    runs = {}
    for name, columns in (("given", ["--event", "event", "--timestamp", "timestamp"]),
                          ("recorded", [])):
        out = tmp_path / name
        result = runner.invoke(app, ["update", str(model), str(logs / "new.csv"),
                                     "--prepared", str(logs / "prepared"), *columns, "-o",
                                     str(out), "--iterations", "3", "--quiet"])
        assert result.exit_code == 0, result.output
        runs[name] = LDA.load(out)
    assert np.array_equal(runs["given"].state_.z, runs["recorded"].state_.z)
    assert np.array_equal(runs["given"].corpus_.times, runs["recorded"].corpus_.times)
    assert runs["recorded"].corpus_.n_tokens == LDA.load(model).corpus_.n_tokens + 10
