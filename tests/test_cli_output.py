"""What the command line shows: full values when piped, item categories as labels."""
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA
from gibbslda.cli.main import app
from gibbslda.synthetic import planted_corpus
from tests.test_cli import ENV

N_TOPICS, N_ITEMS = 3, 30
# longer than any terminal (and than the COLUMNS=200 the runner sets): a cut one shows
TITLE_WORDS = " ".join(["ceramic"] * 40)


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env=ENV)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A CSV log from 3 planted interests over 30 items; each item's category is its
    planted block (cat-0 .. cat-2); long titles in a table."""
    folder = tmp_path_factory.mktemp("events")
    corpus = planted_corpus(240, N_ITEMS, N_TOPICS, mean_length=20, seed=5).corpus
    pl.DataFrame({"user_id": [f"u{u}" for u in np.repeat(corpus.user_ids, corpus.lengths)],
                  "item_id": [f"i{w}" for w in corpus.words],
                  "cat": [f"cat-{w // (N_ITEMS // N_TOPICS)}" for w in corpus.words]}
                 ).write_csv(folder / "events.csv")
    pl.DataFrame({"item_id": [f"i{w}" for w in range(N_ITEMS)],
                  "title": [f"item {w} {TITLE_WORDS}" for w in range(N_ITEMS)]}
                 ).write_parquet(folder / "titles.parquet")
    return folder


def _model(runner, events, name, *prepare_args):
    prepared, model = events / f"{name}-prepared", events / f"{name}-model"
    for args in (["prepare", str(events / "events.csv"), *prepare_args, "-o", str(prepared)],
                 ["train", str(prepared), "-o", str(model), "-k", str(N_TOPICS), "-n", "15",
                  "--seed", "2"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return prepared, model


def test_piped_tables_show_full_values(runner, events):
    prepared, model = _model(runner, events, "titled", "--labels",
                             str(events / "titles.parquet"), "--split", "heldout")
    topics = runner.invoke(app, ["topics", str(model), "-n", "2"])  # stdout is not a TTY
    assert topics.exit_code == 0, topics.output
    loaded = LDA.load(model)
    for share in loaded.n_k_ / loaded.n_k_.sum():
        assert repr(float(share)) in topics.stdout  # every digit, not 4 significant ones
    shown = [w for w in range(N_ITEMS) if f"item {w} {TITLE_WORDS}" in topics.stdout]
    assert len(shown) >= N_TOPICS  # whole titles, not cut at the line's width
    assert "\u2026" not in topics.stdout
    args = ["evaluate", str(model), str(prepared), "--k", "5", "--no-baselines", "--no-variants"]
    table = runner.invoke(app, args)
    (row,) = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    for name in ("recall", "ndcg", "precision", "map", "novelty"):
        assert repr(row[name]) in table.stdout, name


def test_categories_label_items_without_labels(runner, events, tmp_path):
    _, model = _model(runner, events, "categorised", "--category", "cat")
    categories = {f"cat-{k}" for k in range(N_TOPICS)}
    records = json.loads(runner.invoke(app, ["topics", str(model), "-n", "3", "--json"]).stdout)
    assert {r["label"] for r in records} <= categories
    assert {r["label"] for r in records if r["rank"] == 1} == categories  # one per interest
    user = str(LDA.load(model).user_ids_[0])
    rows = json.loads(runner.invoke(app, ["recommend", str(model), "--user", user, "-n", "3",
                                          "--explain", "--json"]).stdout)
    assert rows and all(r["title"] in categories for r in rows)
    # an interest's name: its categories by mass, the planted block's first
    assert all(r["explanation"].split(": ")[1].split(" / ")[0] in categories for r in rows)
    out = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(model), "-o", str(out)]).exit_code == 0
    html = out.read_text()
    assert all(f'<td>{c}</td><td class="id">' in html for c in categories)  # item rows
    assert '<td>i0</td><td class="id">' not in html  # not the bare item id
