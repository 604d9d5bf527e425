"""Held-out estimators against exact and slow references; the convergence record; select_k."""
import itertools
import json
from math import lgamma, log

import numpy as np
import polars as pl
import pytest

from gibbslda import LDA, _rng, heldout, preprocess, sampler
from gibbslda.evaluate import (completion_log_likelihood, heldout_parts,
                               left_to_right_log_likelihood, perplexity, split_users)
from gibbslda.select import select_k
from tests import reference


def exact_marginal(doc, phi, alpha):
    """p(w | phi, alpha) = sum_z prod_n phi[z_n, w_n] p(z | alpha), p(z | alpha) the
    Dirichlet-multinomial, by enumerating all K^N assignments."""
    n_topics = len(alpha)
    a_sum = sum(alpha)
    total = 0.0
    for z in itertools.product(range(n_topics), repeat=len(doc)):
        counts = np.bincount(z, minlength=n_topics)
        log_pz = lgamma(a_sum) - lgamma(len(doc) + a_sum) + sum(
            lgamma(counts[k] + alpha[k]) - lgamma(alpha[k]) for k in range(n_topics))
        total += np.exp(log_pz + sum(log(phi[k][w]) for k, w in zip(z, doc)))
    return total


def test_left_to_right_is_unbiased_for_the_exact_marginal():
    """Mean particle weight within 4 standard errors of the enumerated p(w_d) for each of
    five users (a two-sided normal test at p = 6e-5 each; 20,000 particles, so the CLT
    holds; the seed is fixed, so the test is deterministic). Replacing alpha_k by 0.5 or the
    normaliser n + sum(alpha) by n + 1 + sum(alpha) moved it by 800-1,300 standard errors."""
    docs = [[0, 1, 0], [2, 2, 3, 0], [3], [1, 1, 1, 1, 1], [0, 3, 2, 1, 0]]
    rng = np.random.default_rng(3)
    phi = rng.dirichlet(np.full(4, 0.5), size=3)  # K=3 topics over 4 items
    alpha = np.array([0.2, 0.7, 1.5])
    indptr = np.cumsum([0] + [len(d) for d in docs])
    words = np.concatenate(docs)
    log_w = sampler.left_to_right(indptr, words, phi, alpha, n_particles=20_000, seed=11)
    weights = np.exp(log_w)
    for d, doc in enumerate(docs):
        exact = exact_marginal(doc, phi, alpha)
        mean = weights[d].mean()
        stderr = weights[d].std(ddof=1) / np.sqrt(weights.shape[1])
        assert abs(mean - exact) < 4 * stderr + 1e-15, (d, mean, exact, stderr)
    # a one-token user's weight is exact whatever the draws: sum_k phi_kw alpha_k / sum alpha
    np.testing.assert_allclose(weights[2], phi[:, 3] @ alpha / alpha.sum(), rtol=1e-12)


def test_left_to_right_per_token_and_unknown_items(planted):
    model = LDA(5, n_iter=30, random_state=0).fit(planted.corpus)
    ids = model.item_ids_
    users = [[ids[0], ids[3], "never-seen"], [ids[7]]]
    per_user = left_to_right_log_likelihood(model, users, per_user=True, n_particles=50)
    assert per_user.shape == (2,) and np.all(per_user < 0)
    value = left_to_right_log_likelihood(model, users, n_particles=50)
    assert value == pytest.approx(per_user.sum() / 3)  # the unknown item is left out
    assert perplexity(value) == pytest.approx(np.exp(-value))
    with pytest.raises(ValueError, match="no token of these users"):
        left_to_right_log_likelihood(model, [["never-seen"]])


@pytest.mark.parametrize("beta,n_iter", [(0.01, 20), (3.0, 1)])  # 3.0 after 1 sweep:
def test_completion_matches_slow_reference(planted, beta, n_iter):  # every bucket drawn
    """Document completion equals a plain-Python fold-in by the same sparse buckets (same
    stream) and scoring, from the model's counts."""
    split = split_users(planted.corpus, test_fraction=0.1, hidden_fraction=0.5, seed=2)
    model = LDA(5, alpha=[0.1, 0.2, 0.3, 0.4, 0.5], beta=beta, n_iter=n_iter,
                random_state=4, transform_iter=12, transform_burn_in=3).fit(split.train)
    fast = completion_log_likelihood(model, split.observed, split.hidden)
    obs, hid = split.observed, split.hidden
    log_p, n = reference.completion(
        [obs.words[a:b].tolist() for a, b in zip(obs.indptr[:-1], obs.indptr[1:])],
        [hid.words[a:b].tolist() for a, b in zip(hid.indptr[:-1], hid.indptr[1:])],
        model.n_wk_.tolist(), model.n_k_.tolist(), model.alpha_.tolist(), model.beta_, 12,
        3, _rng.seed_streams(model.seed_entropy_, 1, 1)[0])
    assert n == hid.n_tokens
    assert fast == pytest.approx(log_p / n, rel=1e-12)  # sums in another order


def test_dense_completion_matches_slow_reference(planted):
    """heldout.completion (any dense phi, as the benchmarks score peers) equals a
    plain-Python O(K) fold-in (same stream) and scoring."""
    split = split_users(planted.corpus, test_fraction=0.1, hidden_fraction=0.5, seed=2)
    model = LDA(5, alpha=[0.1, 0.2, 0.3, 0.4, 0.5], n_iter=20, random_state=4).fit(
        split.train)
    obs, hid = split.observed, split.hidden
    fast = heldout.completion(model.topic_word_, model.alpha_, (obs.indptr, obs.words),
                              (hid.indptr, hid.words), n_iter=12, burn_in=3, seed=7)
    docs = [obs.words[a:b].tolist() for a, b in zip(obs.indptr[:-1], obs.indptr[1:])]
    phi = model.topic_word_.tolist()
    thetas = reference.fold_in(docs, phi, model.alpha_.tolist(), 12, 3,
                               _rng.seed_streams(7, 1, 1)[0])
    total = 0.0
    for d, theta in enumerate(thetas):
        for w in hid.words[hid.indptr[d]:hid.indptr[d + 1]]:
            total += log(sum(theta[k] * phi[k][w] for k in range(5)))
    assert fast == pytest.approx(total / hid.n_tokens, rel=1e-12)


def test_heldout_is_recorded_while_training(planted):
    split = split_users(planted.corpus, test_fraction=0.1, seed=1)
    seen = []
    model = LDA(5, n_iter=20, eval_every=5, random_state=0).fit(
        split.train, callback=seen.append, heldout=(split.observed, split.hidden))
    history = model.loglik_
    assert history["iteration"].tolist() == [0, 5, 10, 15, 20]
    assert np.all(np.isfinite(history["heldout"]))
    assert history["heldout"][-1] == completion_log_likelihood(model, split.observed,
                                                              split.hidden)
    assert history["heldout"][-1] > history["heldout"][0]  # better than the random start
    assert [i.heldout is not None for i in seen] == [i.iteration % 5 == 0 for i in seen]
    plain = LDA(5, n_iter=5, random_state=0).fit(split.train)
    assert np.all(np.isnan(plain.loglik_["heldout"]))


def test_select_k_fixes_the_split_and_tabulates(planted):
    trained = []
    table = select_k(planted.corpus, [2, 5, 8], n_iter=40, seed=3,
                     callback=lambda k, m: trained.append(m.corpus_))
    assert table["k"].to_list() == [2, 5, 8]
    assert set(table.columns) >= {"heldout_loglik", "perplexity", "npmi", "umass",
                                  "diversity", "train_loglik", "seconds"}
    for column in ("heldout_loglik", "npmi", "diversity"):
        assert table[column].is_finite().all()
    # every K trained on the same users and tokens
    assert all(np.array_equal(c.words, trained[0].words) and
               np.array_equal(c.user_ids, trained[0].user_ids) for c in trained)
    # the planted corpus has 5 topics: K=5 beats K=2 held out
    heldout = dict(zip(table["k"], table["heldout_loglik"]))
    assert heldout[5] > heldout[2]
    assert table["perplexity"].to_list() == pytest.approx(
        np.exp(-table["heldout_loglik"].to_numpy()).tolist())


def test_select_k_fits_what_lda_fits_by_default(planted):
    """Its defaults are LDA()'s (priors learned past the burn-in, at sweep 50): each row is
    the model a plain LDA(k) would give on the same split, so K is chosen for it."""
    models = []
    table = select_k(planted.corpus, [4], n_iter=60, seed=2,
                     callback=lambda k, m: models.append(m))
    split = split_users(planted.corpus, test_fraction=0.1, hidden_fraction=0.5, seed=2)
    plain = LDA(4, n_iter=60, random_state=2).fit(split.train)
    assert not np.allclose(plain.alpha_, 0.1)  # learned, not the start
    np.testing.assert_array_equal(models[0].alpha_, plain.alpha_)
    assert models[0].beta_ == plain.beta_
    assert table["heldout_loglik"][0] == completion_log_likelihood(plain, split.observed,
                                                                   split.hidden)


def test_left_to_right_refuses_a_bad_stream():
    with pytest.raises(ValueError, match="C-contiguous uint64"):
        sampler.left_to_right([0, 1], [0], np.ones((1, 1)), 0.1, rng=np.zeros(4))


@pytest.mark.parametrize("ks,error", [([2, 2.5], TypeError), ([2, 0], ValueError)])
def test_select_k_checks_every_k_before_fitting(planted, ks, error):
    with pytest.raises(error, match=r"ks\[1\] must be"):
        select_k(planted.corpus, ks, n_iter=1)


def _prepared_events(split):
    """40 users of 15 items; the last six arrive late, so a time cutoff holds them out
    whole (test users the model never trains on)."""
    rng = np.random.default_rng(8)
    rows = [(f"u{u}", f"i{int(rng.integers(0, 15))}", (1000 if u >= 34 else 0) + u + t)
            for u in range(40) for t in range(int(rng.integers(3, 10)))]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row")
    return preprocess.prepare(frame, timestamp="timestamp", split=split, seed=3)


@pytest.mark.parametrize("split", [preprocess.HeldOutUsers(0.3, 0.4),
                                   preprocess.TimeCutoff(0.3)])
def test_heldout_parts_match_a_slow_reference(split):
    prepared = _prepared_events(split)
    model = LDA(3, n_iter=5, random_state=1).fit(prepared.corpus("train"))
    known, truth, theta = heldout_parts(model, prepared)
    t = prepared.tokens
    want = reference.heldout_parts(
        zip(*(t.get_column(c).to_list() for c in ("user", "word", "count", "part"))),
        prepared.users.get_column("user_id").to_list(), model.user_ids_.tolist())
    assert len(want) >= 5
    assert known.user_ids.tolist() == truth.user_ids.tolist() == [u for u, *_ in want]
    for d, (_, known_words, truth_words, _) in enumerate(want):
        assert known.words[known.indptr[d]:known.indptr[d + 1]].tolist() == known_words
        assert truth.words[truth.indptr[d]:truth.indptr[d + 1]].tolist() == truth_words
    if isinstance(split, preprocess.HeldOutUsers):  # folded in from the observed items
        items = prepared.words.get_column("word_id").to_numpy()
        np.testing.assert_array_equal(theta, model.transform([items[w].tolist()
                                                              for _, w, *_ in want]))
    else:  # the fitted mixes; late users, unseen in training, are left out
        np.testing.assert_array_equal(theta, model.doc_topic_[[row for *_, row in want]])
        late = set(prepared.corpus("test").user_ids.tolist()) - set(model.user_ids_.tolist())
        assert late and not late & set(known.user_ids.tolist())


def test_heldout_parts_needs_a_heldout_part():
    prepared = _prepared_events(None)
    model = LDA(3, n_iter=2, random_state=1).fit(prepared.corpus("train"))
    with pytest.raises(ValueError, match="this prepared folder has no held-out part"):
        heldout_parts(model, prepared)


def _timed_folder(tmp_path, timestamps: bool = True):
    """A prepared folder of a planted log (4 interests, users' events a minute apart) and a
    model trained on it."""
    from typer.testing import CliRunner

    from gibbslda.cli.main import app
    from gibbslda.synthetic import planted_corpus
    from tests.test_cli import ENV

    corpus = planted_corpus(300, 60, 4, mean_length=20, seed=8).corpus
    users = np.repeat(corpus.user_ids, corpus.lengths)
    pl.DataFrame({"user_id": users.astype(str), "item_id": corpus.words.astype(str),
                  "ts": np.arange(corpus.n_tokens) * 60}).write_parquet(tmp_path / "e.parquet")
    runner = CliRunner(env=ENV)
    stamp = ["--timestamp", "ts"] if timestamps else []
    assert runner.invoke(app, ["prepare", str(tmp_path / "e.parquet"), *stamp, "-o",
                               str(tmp_path / "p")]).exit_code == 0
    assert runner.invoke(app, ["train", str(tmp_path / "p"), "-o", str(tmp_path / "m"),
                               "-k", "4", "-n", "30"]).exit_code == 0
    return runner, app, str(tmp_path / "m"), str(tmp_path / "p")


def test_evaluate_refits_per_protocol(tmp_path):
    runner, app, model, prepared = _timed_folder(tmp_path)
    result = runner.invoke(app, ["evaluate", model, prepared, "--k", "10", "--json",
                                 "--protocol", "heldout:0.3", "--protocol", "last:3",
                                 "--protocol", "time:0.3"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    assert protocols[:2] == ["HeldOutUsers(fraction=0.3, hidden_fraction=0.5)",
                             "LeaveLastN(n=3)"] and protocols[2].startswith("TimeCutoff(at=")
    for protocol in protocols:
        models = [r["model"] for r in rows if r["protocol"] == protocol]
        assert models[:7] == ["lda", "lda_avg", "lda_recency", "lda+pop", "lda+knn",
                              "lda+ease", "lda+iknn"]
        assert models[7].startswith("chosen = ")
        assert models[8:] == ["popularity", "item-kNN", "EASE"]
    held = {r["model"]: r for r in rows if r["protocol"] == protocols[0]}
    # 4 planted interests, 90 held-out users with about 10 hidden items each: LDA's
    # Recall@10 is about 0.5 against popularity's 0.2 (a margin of many standard errors)
    assert held["lda"]["recall"] > held["popularity"]["recall"] + 0.1
    assert all(r["fit_seconds"] >= 0 and r["n_users"] > 0 for r in rows)


def test_evaluate_protocol_errors(tmp_path):
    runner, app, model, prepared = _timed_folder(tmp_path, timestamps=False)
    for protocol, message in (("users", "a protocol is heldout[:FRACTION], last[:N]"),
                              ("last:2", "LeaveLastN(n=2) needs event times: prepare the "
                                         "log with --timestamp")):
        result = runner.invoke(app, ["evaluate", model, prepared, "--protocol", protocol])
        # a ValueError: `gibbslda` prints it as one line and exits 1 (cli.main.ERRORS)
        assert isinstance(result.exception, ValueError) and result.exit_code == 1
        assert message in str(result.exception) and "\n" not in str(result.exception)


def test_split_users_keeps_each_tokens_time():
    corpus = planted_corpus_with_times()
    split = split_users(corpus, test_fraction=0.3, seed=2)
    tokens = {}  # user id -> sorted (item, time) of every token
    for part in (split.train, split.observed, split.hidden):
        for d, user in enumerate(part.user_ids.tolist()):
            span = slice(part.indptr[d], part.indptr[d + 1])
            tokens.setdefault(user, []).extend(zip(part.words[span].tolist(),
                                                   part.times[span].tolist()))
    for d, user in enumerate(corpus.user_ids.tolist()):
        span = slice(corpus.indptr[d], corpus.indptr[d + 1])
        assert sorted(tokens[user]) == sorted(zip(corpus.words[span].tolist(),
                                                  corpus.times[span].tolist()))


def planted_corpus_with_times():
    from gibbslda import Corpus
    from gibbslda.synthetic import planted_corpus

    corpus = planted_corpus(60, 30, 3, mean_length=10, seed=1).corpus
    times = np.random.default_rng(3).integers(0, 10 ** 12, corpus.n_tokens)
    return Corpus(corpus.indptr, corpus.words, corpus.user_ids, corpus.item_ids, times=times)
