"""prepare -> train -> topics / users / info / report through the command line; Ctrl-C,
checkpoints, resume and the training lock with real processes."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA
from gibbslda.cli import train as train_command
from gibbslda.cli.main import app
from gibbslda.synthetic import planted_corpus
from tests.test_cli import ENV, _run_main

N_TOPICS = 4


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env=ENV)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A CSV event log drawn from 4 planted interests, with item titles in a table."""
    folder = tmp_path_factory.mktemp("events")
    corpus = planted_corpus(400, 80, N_TOPICS, mean_length=25, seed=3).corpus
    users = np.repeat(corpus.user_ids, corpus.lengths)
    frame = pl.DataFrame({"user_id": [f"u{u}" for u in users],
                          "item_id": [f"i{w}" for w in corpus.words],
                          "event": "purchase"})
    frame.write_csv(folder / "events.csv")
    pl.DataFrame({"item_id": [f"i{w}" for w in range(80)],
                  "title": [f"<b>item {w}</b>" for w in range(80)]}).write_parquet(
        folder / "titles.parquet")
    return folder


@pytest.fixture(scope="module")
def prepared(runner, events):
    out = events / "prepared"
    result = runner.invoke(app, ["prepare", str(events / "events.csv"), "--event", "event",
                                 "--labels", str(events / "titles.parquet"), "--split",
                                 "heldout", "--weight", "purchase=1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "parts train, observed, hidden" in result.stdout
    return out


@pytest.fixture(scope="module")
def model(runner, prepared):
    out = prepared.parent / "model"
    result = runner.invoke(app, ["train", str(prepared), "-o", str(out), "-k",
                                 str(N_TOPICS), "--iterations", "30", "--seed", "1",
                                 "--alpha", "auto", "--beta", "0.01",
                                 "--optimize-burn-in", "10"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no terminal: no progress
    assert "4 interests, 30 sweeps" in result.stdout
    return out


def test_trained_model_loads_with_labels_and_heldout_record(model):
    loaded = LDA.load(model)
    assert loaded.n_iter_ == 30 and loaded.n_topics == N_TOPICS
    assert np.isfinite(loaded.loglik_["heldout"]).all()  # the prepared held-out parts
    labels = pl.read_parquet(model / "labels.parquet")
    assert labels.columns == ["item_id", "label"] and labels.height == 80
    assert loaded.alpha == "auto" and len(set(loaded.alpha_.tolist())) == N_TOPICS
    assert oct(os.stat(model).st_mode & 0o777) != oct(0o700)  # not private like mkdtemp


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_topics_file_parses_in_every_format(runner, model, tmp_path, suffix):
    out = tmp_path / f"topics{suffix}"
    result = runner.invoke(app, ["topics", str(model), "-n", "5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = {".parquet": pl.read_parquet, ".csv": pl.read_csv,
             ".json": lambda p: pl.DataFrame(json.loads(p.read_text()))}[suffix](out)
    assert frame.columns == ["topic", "share", "rank", "item_id", "label", "weight"]
    assert frame.height == N_TOPICS * 5
    assert frame["label"].str.starts_with("<b>item ").all()


def test_topics_json_and_table(runner, model):
    result = runner.invoke(app, ["topics", str(model), "--json"])
    records = json.loads(result.stdout)
    assert len(records) == N_TOPICS * 10
    phi = LDA.load(model).topic_word_
    first = records[0]
    assert first["weight"] == pytest.approx(phi[first["topic"]].max())
    table = runner.invoke(app, ["topics", str(model)])
    assert table.exit_code == 0 and "interests, top 10 items" in table.stdout


def test_users_theta_long_wide_and_profile(runner, model, tmp_path):
    loaded = LDA.load(model)
    assert runner.invoke(app, ["users", str(model), "-o", str(tmp_path / "t.parquet")]
                         ).exit_code == 0
    long = pl.read_parquet(tmp_path / "t.parquet")
    assert long.height == loaded.corpus_.n_users * N_TOPICS
    assert runner.invoke(app, ["users", str(model), "--wide", "-o",
                               str(tmp_path / "w.csv")]).exit_code == 0
    wide = pl.read_csv(tmp_path / "w.csv")
    np.testing.assert_allclose(wide.drop("user_id").to_numpy(), loaded.doc_topic_, atol=1e-9)
    user = str(loaded.user_ids_[3])
    result = runner.invoke(app, ["users", str(model), "--user", user, "--json"])
    profile = json.loads(result.stdout)
    assert [r["rank"] for r in profile] == [1, 2, 3]
    assert profile[0]["weight"] == pytest.approx(loaded.doc_topic_[3].max())
    missing = runner.invoke(app, ["users", str(model), "--user", "nobody"])
    assert missing.exit_code == 1


def test_info_json(runner, model):
    facts = json.loads(runner.invoke(app, ["info", str(model), "--json"]).stdout)
    assert facts["topics"] == N_TOPICS and facts["sweeps"] == 30
    assert facts["alpha"] == "auto" and facts["heldout_per_token"] < 0


def test_report_is_written(runner, model, tmp_path):
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.count("<svg") == 3 and "&lt;b&gt;item" in html and "<b>item" not in html


def test_bad_input_is_one_line(tmp_path, events):
    proc = _run_main("train", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "m"))
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert "missing.csv" in proc.stderr
    proc = _run_main("train", str(events / "events.csv"), "-o", str(tmp_path / "m"),
                     "--user", "customer")
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "customer" in proc.stderr
    proc = _run_main("train", "-o", str(tmp_path / "m"))
    assert proc.returncode == 1 and "give a prepared folder" in proc.stderr
    proc = _run_main("topics", str(tmp_path / "nothing"))
    assert proc.returncode == 1 and "not a gibbslda model folder" in proc.stderr


@pytest.fixture(scope="module")
def slow_prepared(runner, tmp_path_factory):
    """Big enough that 300 sweeps take a few seconds, so Ctrl-C lands mid-training."""
    folder = tmp_path_factory.mktemp("slow")
    corpus = planted_corpus(3000, 400, 10, mean_length=40, seed=5).corpus
    frame = pl.DataFrame({"user_id": np.repeat(corpus.user_ids, corpus.lengths).astype(str),
                          "item_id": corpus.words.astype(str)})
    frame.write_parquet(folder / "events.parquet")
    result = runner.invoke(app, ["prepare", str(folder / "events.parquet"), "--cap", "0",
                                 "-o", str(folder / "prepared")])
    assert result.exit_code == 0, result.output
    return folder / "prepared"


def _train(prepared, out, *extra):
    return ["train", str(prepared), "-o", str(out), "-k", "12", "--iterations", "300",
            "--checkpoint-every", "5", "--seed", "4", *extra]


def _chain(folder):
    with np.load(folder / "arrays.npz") as arrays:
        return arrays["z"].copy(), arrays["rng"].copy()


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_checkpoints_and_resume_equals_an_uninterrupted_run(slow_prepared, tmp_path):
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "gibbslda.cli.main", *_train(slow_prepared,
                                                                               out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (out / "model.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the first checkpoint (sweep 5) is written: mid-training
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted after sweep" in stderr and "--resume" in stderr
    stopped = LDA.load(out)
    assert 5 <= stopped.n_iter_ < 300
    assert _lock_is_free(out.with_name(out.name + ".lock"))
    resumed = _run_main("train", "-o", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    whole = _run_main(*_train(slow_prepared, tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    for a, b in zip(_chain(out), _chain(tmp_path / "whole")):
        np.testing.assert_array_equal(a, b)
    assert LDA.load(out).loglik_["iteration"].tolist() == \
        LDA.load(tmp_path / "whole").loglik_["iteration"].tolist()


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_a_second_ctrl_c_stops_at_once_mid_sweep(slow_prepared, tmp_path):
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    out = tmp_path / "model"
    # 5000 dense topics: a sweep takes seconds, so the second Ctrl-C comes inside one
    argv = ["train", str(slow_prepared), "-o", str(out), "-k", "5000", "--sampler", "dense",
            "--iterations", "3", "--checkpoint-every", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "gibbslda.cli.main", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (out / "model.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # sweep 1 is written: sweep 2 runs
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == (
        f"gibbslda: stopped at once; {out} holds the last checkpoint (sweep 1), intact; "
        f"resume with: gibbslda train -o {out} --resume")
    checkpoint = LDA.load(out)
    assert checkpoint.n_iter_ == 1
    # it did not wait for the running sweep to end (one sweep took checkpoint.seconds_)
    assert took < checkpoint.seconds_ / 2, (took, checkpoint.seconds_)
    assert _lock_is_free(out.with_name("model.lock"))


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_stops_a_dask_training_after_its_round(prepared, tmp_path):
    pytest.importorskip("distributed")
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    out = tmp_path / "model"
    argv = ["train", str(prepared), "-o", str(out), "-k", str(N_TOPICS), "--seed", "2",
            "--dask", "local:2", "--checkpoint-every", "1", "--threads", "2"]
    # a new session: Ctrl-C in a terminal reaches the whole process group, workers too
    proc = subprocess.Popen([sys.executable, "-m", "gibbslda.cli.main", *argv,
                             "--iterations", "100000"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "model.rounds.npz").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # a round checkpoint is written: rounds run
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert stderr.startswith("gibbslda: --threads 2 has no effect with --dask")
    assert "Traceback" not in stderr  # the workers ignored Ctrl-C: the driver stopped them
    assert re.search(r"interrupted after sweep \d+ of 100000; round checkpoint written "
                     r".*run the same command again with --resume", stderr), stderr
    stopped = LDA.load(out)
    assert 1 <= stopped.n_iter_ < 100000
    assert _lock_is_free(tmp_path / "model.lock")
    more = stopped.n_iter_ + 2
    resumed = _run_main(*argv, "--iterations", str(more), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert LDA.load(out).n_iter_ == more


def _lock_is_free(lock) -> bool:
    """Whether no process holds the OS lock on the file ``lock`` (which stays)."""
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _refused(out) -> str:
    """The one-line refusal of a training into ``out`` while another holds the lock."""
    return (rf"gibbslda: error: another training( \(pid \d+\))? is writing "
            rf"{re.escape(str(out))}: it holds the lock "
            rf"{re.escape(str(out.with_name(out.name + '.lock')))}; wait for it to finish\n")


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_the_lock_is_the_os_lock_not_the_pid_in_its_file(slow_prepared, tmp_path):
    import fcntl

    out = tmp_path / "model"
    lock = out.with_name("model.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, before its pid is written
    try:
        proc = _run_main(*_train(slow_prepared, out))
        assert proc.returncode == 1 and re.fullmatch(_refused(out), proc.stderr), proc.stderr
        assert "(pid" not in proc.stderr and not out.exists()
        os.write(fd, str(os.getpid()).encode())
        proc = _run_main(*_train(slow_prepared, out))
        assert proc.stderr.startswith(f"gibbslda: error: another training (pid {os.getpid()})")
    finally:
        os.close(fd)  # released
    # a lock file left by a run that is gone is taken over, whether its pid is dead or
    # reused by a live process (this one); it stays, emptied
    for owner in ("999999999", str(os.getpid())):
        lock.write_text(owner)
        proc = _run_main(*_train(slow_prepared, out)[:-4], "--iterations", "3")
        assert proc.returncode == 0, proc.stderr
        assert lock.read_text() == "" and _lock_is_free(lock)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_two_trainings_started_together_into_one_folder(slow_prepared, tmp_path):
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    out = tmp_path / "model"
    argv = [sys.executable, "-m", "gibbslda.cli.main", *_train(slow_prepared, out)]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        ends = [(proc.pid, *proc.communicate(timeout=300), proc.returncode)
                for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert sorted(end[3] for end in ends) == [0, 1], ends
    (winner, *_), = [end for end in ends if end[3] == 0]
    (_, _, stderr, _), = [end for end in ends if end[3] == 1]
    assert re.fullmatch(_refused(out), stderr), stderr
    assert f"(pid {winner})" in stderr or "(pid" not in stderr
    assert LDA.load(out).n_iter_ == 300


def test_select_k_table(runner, prepared):
    result = runner.invoke(app, ["select-k", str(prepared), "--ks", "2,4", "-n", "20",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["k"] for r in rows] == [2, 4]
    assert all(r["perplexity"] > 1 and -1 <= r["npmi"] <= 1 for r in rows)
    bad = runner.invoke(app, ["select-k", str(prepared), "--ks", "2,x"])
    assert bad.exit_code == 1


def test_recommend_users_new_users_and_all(runner, model, tmp_path):
    loaded = LDA.load(model)
    user = str(loaded.user_ids_[0])
    result = runner.invoke(app, ["recommend", str(model), "--user", user, "-n", "5",
                                 "--explain", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert all(r["title"].startswith("<b>item") and "interest" in r["explanation"]
               for r in rows)
    seen = set(loaded.item_ids_[loaded.corpus_.words[:loaded.corpus_.indptr[1]]])
    assert not seen & {r["item_id"] for r in rows}
    unknown = runner.invoke(app, ["recommend", str(model), "--history", "zz,yy", "--json"])
    assert unknown.exit_code == 0 and len(json.loads(unknown.stdout)) == 20  # the prior mean
    new = json.loads(runner.invoke(app, ["recommend", str(model), "--history", "i1,i2",
                                         "-n", "3", "--json"]).stdout)
    assert [r["user_id"] for r in new] == ["new-0"] * 3
    assert not {"i1", "i2"} & {r["item_id"] for r in new}
    out = tmp_path / "all.parquet"
    assert runner.invoke(app, ["recommend", str(model), "-n", "4", "-o", str(out)]
                         ).exit_code == 0
    assert pl.read_parquet(out).height == 4 * loaded.corpus_.n_users
    assert runner.invoke(app, ["recommend", str(model)]).exit_code == 1  # all users: a file


def test_evaluate_beside_baselines(runner, model, prepared):
    result = runner.invoke(app, ["evaluate", str(model), str(prepared), "--k", "5,10",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = list(dict.fromkeys(r["model"] for r in rows))  # every variant, the baselines
    assert names[:7] == ["lda", "lda_avg", "lda_recency", "lda+pop", "lda+knn", "lda+ease",
                         "lda+iknn"]
    assert names[7].startswith("chosen = ") and names[8:] == ["popularity", "item-kNN", "EASE"]
    assert [(r["model"], r["k"]) for r in rows] == [(m, k) for m in names for k in (5, 10)]
    lda = {r["k"]: r for r in rows if r["model"] == "lda"}
    pop = {r["k"]: r for r in rows if r["model"] == "popularity"}
    # the corpus has 4 planted interests: LDA ranks far better than popularity
    assert lda[10]["recall"] > pop[10]["recall"] and 0 < lda[10]["ndcg"] <= 1


def test_evaluate_leave_last_n(runner, tmp_path):
    corpus = planted_corpus(300, 60, 3, mean_length=20, seed=8).corpus
    users = np.repeat(corpus.user_ids, corpus.lengths)
    frame = pl.DataFrame({"user_id": users.astype(str), "item_id": corpus.words.astype(str),
                          "ts": np.arange(corpus.n_tokens) * 60})
    frame.write_parquet(tmp_path / "e.parquet")
    assert runner.invoke(app, ["prepare", str(tmp_path / "e.parquet"), "--timestamp", "ts",
                               "--split", "last", "--last", "2", "-o", str(tmp_path / "p")]
                         ).exit_code == 0
    assert runner.invoke(app, ["train", str(tmp_path / "p"), "-o", str(tmp_path / "m"),
                               "-k", "3", "-n", "30"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "m"), str(tmp_path / "p"),
                                 "--k", "5", "--no-baselines", "--no-variants", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["model"].startswith("chosen = ") and row["n_users"] > 250 and 0 < row["recall"] <= 1


def test_a_save_killed_between_its_renames_is_recovered(slow_prepared, tmp_path):
    out = tmp_path / "model"
    assert _run_main(*_train(slow_prepared, out)[:-4], "--iterations", "5").returncode == 0
    aside = out.with_name(".model.old-12345")
    out.rename(aside)  # what a kill between the two renames of a save leaves
    (tmp_path / ".model.tmp-abc").mkdir()  # and a half-written temporary folder
    (tmp_path / ".model.big.tmp-xyz").mkdir()  # another model's (model.big) save: kept
    proc = _run_main("train", "-o", str(out), "--resume", "--iterations", "8")
    assert proc.returncode == 0, proc.stderr
    assert LDA.load(out).n_iter_ == 8
    assert not aside.exists() and not (tmp_path / ".model.tmp-abc").exists()
    assert (tmp_path / ".model.big.tmp-xyz").exists()


@pytest.mark.slow
def test_train_on_a_local_dask_cluster(prepared, tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "dask-model"
    proc = _run_main("train", str(prepared), "-o", str(out), "-k", str(N_TOPICS),
                     "--iterations", "10", "--dask", "local:2", "--seed", "2",
                     "--optimize-burn-in", "10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "on 2 Dask workers" in proc.stdout
    model = LDA.load(out)
    assert model.n_iter_ == 10 and model.n_shards == 2  # two partitions, one per worker
    # the priors are learned by default, as without --dask (at sweep 10), and stay "auto"
    assert model.alpha == "auto" and model.beta == "auto"
    assert np.all(model.alpha_ != 0.1) and model.beta_ != 0.01
    assert (out.parent / "dask-model.rounds.npz").exists()
    assert (out / "labels.parquet").exists()


def test_threads_without_shards_say_they_do_nothing(runner, prepared, tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", str(prepared), "-o", str(out), "-k", "3", "-n", "2",
                                 "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ("gibbslda: --threads 2 has no effect with one shard: add "
                             "--shards 2 (or more) to sample in parallel; shards change the "
                             "model, threads never do\n")
    resumed = runner.invoke(app, ["train", "-o", str(out), "--resume", "-n", "3",
                                  "--threads", "4"])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stderr == (f"gibbslda: --threads 4 has no effect with one shard: {out} "
                              "was trained with one, and shards are fixed when a training "
                              "starts; shards change the model, threads never do\n")
    sharded = runner.invoke(app, ["train", str(prepared), "-o", str(tmp_path / "sharded"),
                                  "-k", "3", "-n", "2", "--shards", "2", "--threads", "2"])
    assert sharded.exit_code == 0 and sharded.stderr == ""
    assert LDA.load(tmp_path / "sharded").n_shards == 2
    warp = runner.invoke(app, ["train", str(prepared), "-o", str(tmp_path / "warp"), "-k",
                               "3", "-n", "2", "--sampler", "warp", "--threads", "2"])
    assert warp.exit_code == 0 and warp.stderr == ""  # warp runs on every thread it gets


def test_docs_say_which_samplers_use_threads():
    """--threads alone speeds up warp (auto's pick on all but small corpora) and nothing
    else: the help and the README say so, and every documented command with --threads
    either has --shards or uses the default sampler."""
    from pathlib import Path

    help_text = " ".join(CliRunner(env=ENV).invoke(app, ["train", "--help"]).stdout.split())
    assert "warp uses them all; dense, sparse and mh only with --shards 2 or more" in help_text
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "runs on every core by itself" in readme
    commands = [line for line in [*readme.split("`"), train_command.EXAMPLE]
                if "gibbslda train" in line and "--threads" in line]
    assert commands and all("--shards" in line or "--sampler" not in line
                            for line in commands), commands


# the options that fix the chain, a value other than the saved model's, and the saved one
CHANGED_OPTIONS = [("-k", "--topics", "5", "4"), ("--sampler", "--sampler", "dense", "auto"),
                   ("--shards", "--shards", "2", "1"), ("--seed", "--seed", "2", "1"),
                   ("--alpha", "--alpha", "0.1", "auto"), ("--beta", "--beta", "0.5", "0.01"),
                   ("--optimize-burn-in", "--optimize-burn-in", "20", "10")]


@pytest.mark.parametrize("option, name, value, saved", CHANGED_OPTIONS)
def test_resume_refuses_an_option_that_changes_the_chain(runner, model, tmp_path, option,
                                                         name, value, saved):
    out = tmp_path / "model"
    shutil.copytree(model, out)
    result = runner.invoke(app, ["train", "-o", str(out), "--resume", "-n", "32", option,
                                 value])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert str(result.exception) == (
        f"{name} {value} differs from the {saved} that {out} was trained with, and --resume "
        f"continues that training: drop {name}, or train a new model into another folder")
    assert LDA.load(out).n_iter_ == 30  # untouched


def test_resume_takes_the_saved_settings_given_again(model, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(model, out)
    same = [arg for option, name, value, saved in CHANGED_OPTIONS for arg in (name, saved)]
    proc = _run_main("train", "-o", str(out), "--resume", "-n", "31", *same)
    assert proc.returncode == 0, proc.stderr
    assert LDA.load(out).n_iter_ == 31
    proc = _run_main("train", "-o", str(out), "--resume", "--shards", "3")
    assert proc.returncode == 1 and proc.stderr == (
        f"gibbslda: error: --shards 3 differs from the 1 that {out} was trained with, and "
        "--resume continues that training: drop --shards, or train a new model into "
        "another folder\n")


def test_eval_every_heldout_users_and_no_heldout(runner, prepared, tmp_path):
    """--eval-every and --heldout-users reach the estimator (the same history as the
    library with those settings); --no-heldout records none; --resume takes new ones."""
    from gibbslda.preprocess import read_prepared

    common = ["-k", str(N_TOPICS), "-n", "6", "--seed", "1", "--eval-every", "3"]
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", str(prepared), "-o", str(out), *common,
                                 "--heldout-users", "5"])
    assert result.exit_code == 0, result.output
    trained = LDA.load(out)
    folder = read_prepared(prepared)
    library = LDA(N_TOPICS, n_iter=6, random_state=1, eval_every=3, heldout_users=5).fit(
        folder.corpus("train"), heldout=(folder.corpus("observed"), folder.corpus("hidden")))
    fields = ["iteration", "loglik", "heldout"]
    assert trained.loglik_[fields].tolist() == library.loglik_[fields].tolist()
    assert trained.loglik_["iteration"].tolist() == [0, 3, 6]
    assert np.isfinite(trained.loglik_["heldout"]).all() and trained.heldout_users == 5
    result = runner.invoke(app, ["train", "-o", str(out), "--resume", "-n", "8",
                                 "--eval-every", "2"])
    assert result.exit_code == 0, result.output
    assert LDA.load(out).loglik_["iteration"].tolist() == [0, 3, 6, 8]
    bare = tmp_path / "bare"
    result = runner.invoke(app, ["train", str(prepared), "-o", str(bare), *common,
                                 "--no-heldout"])
    assert result.exit_code == 0, result.output
    assert np.isnan(LDA.load(bare).loglik_["heldout"]).all()
