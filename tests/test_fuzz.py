"""Bad input, fuzzed (hypothesis, fixed derandomised profile in conftest.py): every case
gives a correct result or a one-line ValueError/TypeError, never NaN, never a traceback
from the command line."""
import contextlib
import io
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

from gibbslda import LDA, Corpus  # noqa: E402
from gibbslda import preprocess  # noqa: E402

IDS = st.one_of(
    st.text(min_size=0, max_size=300),  # empty, unicode, very long
    st.integers(min_value=-2**40, max_value=2**40),
    st.none(),
    st.sampled_from(["a", "b", "c", "日本", "\x00", " ", "nan"]),
)
WEIGHTS = st.one_of(st.integers(-5, 20), st.floats(-3, 30), st.just(float("nan")), st.none())
EVENTS = st.one_of(st.sampled_from(["view", "cart", "fav", "purchase", "return"]),
                  st.sampled_from(["view", "purchase"]), st.sampled_from(["click", "", None]))
COLUMN = st.sampled_from(["text", "int", "mixed"])


def _one_line(exc: Exception) -> None:
    message = str(exc)
    assert message and "\n" not in message, repr(message)
    hypothesis.event(f"refused: {type(exc).__name__}: {message[:60]}")


def _check_corpus(corpus: Corpus) -> None:
    assert corpus.indptr[0] == 0 and np.all(np.diff(corpus.indptr) >= 0)
    assert corpus.indptr[-1] == corpus.n_tokens == corpus.words.shape[0]
    if corpus.n_tokens:
        assert corpus.words.min() >= 0 and corpus.words.max() < corpus.n_items
    assert len(corpus.user_ids) == corpus.n_users


def _ids(kind):
    return {"text": st.one_of(st.text(max_size=300), st.sampled_from(["a", "日本", "\x00"])),
            "int": st.integers(min_value=-2**40, max_value=2**40), "mixed": IDS}[kind]


@given(data=st.data(), user_kind=COLUMN, item_kind=COLUMN, with_weight=st.booleans(),
       nulls=st.booleans())
def test_corpus_from_any_frame(data, user_kind, item_kind, with_weight, nulls):
    row = st.tuples(_ids(user_kind), _ids(item_kind), WEIGHTS if nulls else st.integers(-2, 9))
    rows = data.draw(st.lists(row, min_size=0, max_size=40))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "w"], dtype=object)
    for column, kind in (("user_id", user_kind), ("item_id", item_kind)):
        if kind != "mixed" and not nulls:
            frame[column] = frame[column].astype(str if kind == "text" else "int64")
    try:
        corpus = Corpus.from_frame(frame, weight="w" if with_weight else None)
    except (ValueError, TypeError) as exc:
        _one_line(exc)
        return
    _check_corpus(corpus)
    assert corpus.n_tokens > 0
    hypothesis.event("built")


@given(rows=st.lists(st.tuples(st.sampled_from(["u1", "u2", "ü3", "u4", "", "u" * 200]),
                               st.sampled_from(["i1", "i2", "i3", "日本", "", "x" * 300]),
                               EVENTS, st.integers(-10, 50), st.integers(0, 10**9)),
                     min_size=0, max_size=60),
       cap=st.one_of(st.none(), st.integers(1, 5)),
       dedupe=st.sampled_from(preprocess.DEDUPE),
       word=st.sampled_from(["item", "category"]),
       min_user_items=st.sampled_from([1, 1, 2, 3]), min_item_users=st.sampled_from([1, 1, 2]),
       split=st.sampled_from([None, "heldout", "last", "time"]),
       weights=st.sampled_from([None, {"click": 1, "": 0}, {"click": -1, "": 2, "view": 0}]))
def test_prepare_any_event_log(rows, cap, dedupe, word, min_user_items, min_item_users,
                               split, weights):
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String,
                                       "event": pl.String, "quantity": pl.Int64,
                                       "ts": pl.Int64}, orient="row")
    frame = frame.with_columns(category=pl.col("item_id").str.slice(0, 1))
    spec = {None: None, "heldout": preprocess.HeldOutUsers(0.5, 0.5),
            "last": preprocess.LeaveLastN(1), "time": preprocess.TimeCutoff(0.5)}[split]
    try:
        prepared = preprocess.prepare(
            frame, event="event", quantity="quantity", timestamp="ts", category="category",
            weights=weights, cap=cap, dedupe=dedupe, word=word, min_user_items=min_user_items,
            min_item_users=min_item_users, split=spec, seed=0)
    except (ValueError, TypeError) as exc:
        _one_line(exc)
        return
    tokens = prepared.tokens
    assert (tokens["count"] > 0).all()
    if cap is not None and tokens.height:
        assert tokens["count"].max() <= cap
    for part in prepared.parts:
        _check_corpus(prepared.corpus(part))
    hypothesis.event(f"prepared, {tokens.height and 'some' or 'no'} tokens")


@given(docs=st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=6),
                     min_size=1, max_size=6),
       n_topics=st.integers(1, 30),
       alpha=st.one_of(st.floats(1e-6, 1e3), st.just("auto")),
       beta=st.one_of(st.floats(1e-6, 1e3), st.just("auto")),
       name=st.sampled_from(["auto", "dense", "sparse", "mh", "vector"]),
       n_shards=st.integers(1, 3))
def test_fit_any_small_corpus(docs, n_topics, alpha, beta, name, n_shards):
    model = LDA(n_topics, alpha=alpha, beta=beta, sampler=name, n_shards=n_shards,
                n_iter=4, optimize_burn_in=1, optimize_every=1, random_state=0)
    try:
        model.fit(docs)
    except ValueError as exc:  # only an empty corpus may be refused
        _one_line(exc)
        assert not any(docs)
        return
    for value in (model.topic_word_, model.doc_topic_, model.loglik_["loglik"],
                  model.transform([["a", "zzz"], []])):
        assert np.all(np.isfinite(value))


@given(kwargs=st.fixed_dictionaries({}, optional={
    "n_topics": st.one_of(st.integers(-3, 3), st.floats(-1, 3), st.text(max_size=3)),
    "alpha": st.one_of(st.floats(allow_nan=True), st.text(max_size=4),
                       st.lists(st.floats(-1, 2), max_size=4)),
    "beta": st.one_of(st.floats(allow_nan=True), st.text(max_size=4)),
    "n_iter": st.one_of(st.integers(-3, 3), st.floats(-1, 3)),
    "n_shards": st.integers(-2, 3), "mh_steps": st.integers(-2, 3),
    "sampler": st.text(max_size=6), "random_state": st.one_of(st.integers(-5, 5),
                                                               st.text(max_size=3)),
}))
def test_any_parameters(kwargs):
    params = {"n_topics": 2, "n_iter": 2} | kwargs
    try:
        model = LDA(**params).fit([["a", "b"], ["b"]])
    except (ValueError, TypeError) as exc:
        _one_line(exc)
        return
    assert np.all(np.isfinite(model.topic_word_))


def _cli(*args) -> tuple[int, str]:
    """Run the console entry point in-process: (exit code, stderr). An exception that is
    not mapped to a message escapes and fails the test (that would be a traceback)."""
    from gibbslda.cli.main import run

    err = io.StringIO()
    argv = sys.argv
    sys.argv = ["gibbslda", *args]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            run()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = argv
    return code, err.getvalue()


@hypothesis.settings(max_examples=25)
@given(text=st.one_of(
    st.text(max_size=200),
    st.lists(st.tuples(IDS, IDS), max_size=10).map(
        lambda rows: "user_id,item_id\n" + "".join(f"{u},{i}\n" for u, i in rows))))
def test_cli_prepare_and_train_any_csv(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("csv")
    (folder / "e.csv").write_text(text)
    code, err = _cli("prepare", str(folder / "e.csv"), "-o", str(folder / "p"))
    assert code in (0, 1), err
    if code == 1:
        assert err.count("\n") == 1 and err.startswith("gibbslda: "), err
        return
    code, err = _cli("train", str(folder / "p"), "-o", str(folder / "m"), "-k", "3",
                     "-n", "2", "-q")
    assert code in (0, 1) and (code == 0 or err.count("\n") == 1), err
    hypothesis.event(f"prepared, train exit {code}")
