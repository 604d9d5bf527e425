"""The command line: help and version, the demo end to end, error mapping, light imports."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points, version

import numpy as np
import polars as pl
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from gibbslda import LDA, ModelFileError, NotFittedError
from gibbslda.cli.main import _exit, app
from gibbslda.data import online_retail_dir

# Rich treats FORCE_COLOR / TTY_* as "stderr is a terminal" and would draw progress bars;
# a wide COLUMNS keeps help lines from wrapping.
ENV = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None, "TTY_INTERACTIVE": None,
       "COLUMNS": "200", "GIBBSLDA_DEBUG": None}
DEMO_TOPICS, DEMO_ITERATIONS, N_RECS = 5, 20, 20


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env=ENV)


def _run_main(*args, env=None, **kwargs):
    """Run the console entry point ``gibbslda.cli.main:run`` in a fresh interpreter."""
    env = {k: v for k, v in {**os.environ, **ENV, **(env or {})}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "gibbslda.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def _example(help_text: str) -> list[str]:
    """The runnable example a help text ends with, as argv (without the program name)."""
    last = [line.strip() for line in help_text.splitlines() if line.strip()][-1]
    match = re.fullmatch(r"Example: (gibbslda .+)", last)
    assert match, f"help does not end with an example: {last!r}"
    argv = shlex.split(match.group(1))
    return argv[1:]


def _parses(argv: list[str]) -> None:
    """Parse ``COMMAND [OPTIONS]`` with the app's click command, without running it."""
    commands = get_command(app).commands
    assert argv[0] in commands, f"unknown command {argv[0]!r}"
    commands[argv[0]].make_context(argv[0], argv[1:])  # raises on bad usage


# -- help, version ------------------------------------------------------------------------
COMMANDS = ["prepare", "train", "topics", "users", "info", "report", "recommend", "evaluate",
            "select-k", "demo", "trends", "forecast", "forecast-eval", "update"]


@pytest.mark.parametrize("args", [["--help"], *([c, "--help"] for c in COMMANDS)])
def test_help_ends_with_a_runnable_example(runner, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage: gibbslda" in result.stdout
    argv = _example(result.stdout)
    assert argv[0] == (args[0] if len(args) == 2 else "demo")
    _parses(argv)


def test_every_command_is_listed(runner):
    assert sorted(get_command(app).commands) == sorted(COMMANDS)


def test_no_arguments_shows_help(runner):
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "Usage: gibbslda" in result.output and "demo" in result.output


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"gibbslda {version('gibbslda')}\n"


def test_console_script_is_run():
    (script,) = entry_points(group="console_scripts", name="gibbslda")
    assert script.value == "gibbslda.cli.main:run"


def test_help_and_version_do_not_import_the_heavy_modules():
    heavy = ["numba", "polars", "pandas", "gibbslda.model", "gibbslda.sampler",
             "gibbslda.corpus"]
    code = (
        "import sys\n"
        "import gibbslda.cli.main as m\n"
        "loaded = {}\n"
        "loaded['import'] = [n for n in HEAVY if n in sys.modules]\n"
        "for args in (['--help'], ['demo', '--help'], ['--version']):\n"
        "    sys.argv = ['gibbslda', *args]\n"
        "    try:\n"
        "        m.run()\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        "    loaded[' '.join(args)] = [n for n in HEAVY if n in sys.modules]\n"
        "print('LOADED=' + json.dumps(loaded))\n"
    )
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    proc = subprocess.run([sys.executable, "-c", f"import json\nHEAVY = {heavy!r}\n{code}"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.rsplit("LOADED=", 1)[1])
    assert loaded == {"import": [], "--help": [], "demo --help": [], "--version": []}


# -- the demo end to end --------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_run(runner, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = runner.invoke(app, ["demo", "--topics", str(DEMO_TOPICS), "--iterations",
                                 str(DEMO_ITERATIONS), "--users-shown", "2",
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    return result, out


@pytest.fixture(scope="module")
def purchases():
    events = pl.read_parquet(online_retail_dir() / "interactions.parquet")
    return events.filter(pl.col("event") == "purchase").select("user_id", "item_id")


def test_demo_prints_results_to_stdout_and_nothing_to_stderr_without_a_terminal(demo_run):
    result, out = demo_run
    assert result.stderr == ""
    assert result.stdout.count("Interest #") == DEMO_TOPICS
    assert result.stdout.count("Customer ") == 2
    assert "recommended:" in result.stdout
    for name in ("prepared", "topics.parquet", "user_topics.parquet",
                 "recommendations.parquet", "model", "report.html"):
        assert str(out / name) in result.stdout


def test_demo_model_folder_loads_and_matches_the_files(demo_run, purchases):
    _, out = demo_run
    model = LDA.load(out / "model")
    assert model.n_topics == DEMO_TOPICS and model.n_iter_ == DEMO_ITERATIONS
    assert model.corpus_.n_tokens == purchases.height  # one token per purchase row
    user_topics = pl.read_parquet(out / "user_topics.parquet").sort("user_id", "topic")
    theta = user_topics.get_column("weight").to_numpy().reshape(-1, DEMO_TOPICS)
    order = np.argsort(model.user_ids_)
    np.testing.assert_allclose(theta, model.doc_topic_[order], rtol=0, atol=1e-12)


def test_demo_topics_file(demo_run):
    _, out = demo_run
    topics = pl.read_parquet(out / "topics.parquet")
    assert topics.columns == ["topic", "rank", "item_id", "title", "weight"]
    assert topics.height == DEMO_TOPICS * N_RECS
    items = pl.read_parquet(online_retail_dir() / "items.parquet")
    joined = topics.join(items, on="item_id", how="left", suffix="_items")
    assert joined.get_column("title").to_list() == joined.get_column("title_items").to_list()
    for _, group in topics.group_by("topic"):
        assert group.get_column("rank").to_list() == list(range(1, N_RECS + 1))
        assert (np.diff(group.get_column("weight").to_numpy()) <= 0).all()
        assert group.get_column("item_id").n_unique() == N_RECS


def test_demo_user_topics_sum_to_one(demo_run, purchases):
    _, out = demo_run
    user_topics = pl.read_parquet(out / "user_topics.parquet")
    assert user_topics.columns == ["user_id", "topic", "weight"]
    per_user = user_topics.group_by("user_id").agg(pl.col("weight").sum(), pl.len())
    assert per_user.height == purchases.get_column("user_id").n_unique()
    assert (per_user.get_column("len") == DEMO_TOPICS).all()
    np.testing.assert_allclose(per_user.get_column("weight").to_numpy(), 1.0, atol=1e-9)


def test_demo_recommendations_are_new_ranked_and_scored(demo_run, purchases):
    _, out = demo_run
    recs = pl.read_parquet(out / "recommendations.parquet")
    assert recs.columns == ["user_id", "rank", "item_id", "title", "score"]
    per_user = recs.group_by("user_id", maintain_order=True).agg(
        pl.col("rank"), pl.col("score"), pl.col("item_id").n_unique().alias("distinct"))
    assert per_user.height == purchases.get_column("user_id").n_unique()
    assert (per_user.get_column("distinct") == N_RECS).all()
    for ranks, scores in zip(per_user.get_column("rank"), per_user.get_column("score")):
        assert ranks.to_list() == list(range(1, N_RECS + 1))
        assert (np.diff(scores.to_numpy()) <= 0).all()
    already_bought = recs.join(purchases, on=["user_id", "item_id"], how="semi")
    assert already_bought.height == 0
    # each score is p(item | user) = theta_u . phi_item of the saved model
    model = LDA.load(out / "model")
    users = {u: d for d, u in enumerate(model.user_ids_)}
    items = {w: i for i, w in enumerate(model.item_ids_)}
    sample = recs.filter(pl.col("rank").is_in([1, N_RECS])).head(200)
    d = np.array([users[u] for u in sample.get_column("user_id")])
    w = np.array([items[i] for i in sample.get_column("item_id")])
    expected = np.einsum("nk,kn->n", model.doc_topic_[d], model.topic_word_[:, w])
    np.testing.assert_allclose(sample.get_column("score").to_numpy(), expected, rtol=1e-12)


def test_shipped_data_holds_products_only():
    items = pl.read_parquet(online_retail_dir() / "items.parquet")
    events = pl.read_parquet(online_retail_dir() / "interactions.parquet")
    assert items.get_column("is_product").all()
    assert not items.get_column("item_id").is_in(["POST", "DOT", "M", "BANK CHARGES"]).any()
    assert events.join(items, on="item_id", how="anti").height == 0
    assert (online_retail_dir() / "PROVENANCE.md").read_text().count("CC BY 4.0") >= 1


# -- errors ----------------------------------------------------------------------------------
def test_library_value_error_is_one_line_and_exit_1(tmp_path):
    proc = _run_main("demo", "--topics", "0", "--output", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["gibbslda: error: n_topics must be >= 1, got 0"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("exc, code, message", [
    (ValueError("alpha must be > 0, got -1.0"), 1,
     "gibbslda: error: alpha must be > 0, got -1.0"),
    (TypeError("n_topics must be an integer, got 'a'"), 1,
     "gibbslda: error: n_topics must be an integer, got 'a'"),
    (ModelFileError("m/model.json: unknown schema 9"), 1,
     "gibbslda: model file error: m/model.json: unknown schema 9"),
    (NotFittedError("call fit(X) first"), 1, "gibbslda: model not fitted: call fit(X) first"),
    (FileNotFoundError(2, "No such file or directory", "x.parquet"), 1,
     "gibbslda: file not found: x.parquet"),
    (pl.exceptions.ComputeError("bad parquet\n\nResolved plan: ..."), 1,
     "gibbslda: data error: bad parquet"),
    (KeyboardInterrupt(), 130, "gibbslda: interrupted"),
])
def test_error_table_gives_one_line_and_the_exit_code(exc, code, message, capsys,
                                                      monkeypatch):
    monkeypatch.delenv("GIBBSLDA_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        _exit(exc)
    assert exit_info.value.code == code
    captured = capsys.readouterr()
    assert captured.err == message + "\n" and captured.out == ""


def test_unmapped_exceptions_are_not_swallowed():
    with pytest.raises(RuntimeError, match="a bug"):
        _exit(RuntimeError("a bug"))


def test_debug_env_shows_the_traceback(tmp_path):
    proc = _run_main("demo", "--topics", "0", "--output", str(tmp_path / "out"),
                     env={"GIBBSLDA_DEBUG": "1"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().endswith("ValueError: n_topics must be >= 1, got 0")


def test_usage_error_is_typer_exit_2(runner, tmp_path):
    result = runner.invoke(app, ["demo", "--users-shown", "-1", "--output", str(tmp_path)])
    assert result.exit_code == 2
    assert "--users-shown" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_ctrl_c_exits_130_with_a_message(tmp_path):
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gibbslda.cli.main", "demo", "--iterations", "1000000",
         "--output", str(tmp_path / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell may start us with SIGINT ignored, which the child would inherit
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(4)  # well past interpreter start-up: inside the command
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines() == ["gibbslda: interrupted"]


# What numba's first compile does when Ctrl-C lands while it writes its cache: the
# KeyboardInterrupt is raised inside a ctypes callback (llvmlite's object-cache notify),
# where Python swallows it, and numba then fails with "no compiled object yet" (seen in CI).
_CTRL_C_IN_A_CALLBACK = """
import ctypes, os, signal, sys, time
from gibbslda.cli import main

def command(prog_name):
    def callback():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100000):  # the handler raises in here, inside the callback
            pass
    ctypes.CFUNCTYPE(None)(callback)()
    if sys.argv[1] == "goes on":
        time.sleep(30)  # the command goes on: the interruption must still reach it
    end = time.perf_counter() + float(sys.argv[1])
    while time.perf_counter() < end:  # Python runs: a re-delivered Ctrl-C lands here
        pass
    raise RuntimeError("no compiled object yet for <Library 'count_histogram'>")

main.app = command
main.run()
"""


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
@pytest.mark.parametrize("after", ["0", "goes on", *(f"{0.046 + 0.002 * i:.3f}"
                                                     for i in range(8))])
def test_ctrl_c_swallowed_inside_a_c_callback_still_exits_130(after):
    """Numba's failure at once ("0"), or none ("goes on"), or the failure about when the
    Ctrl-C is delivered again (after 50 ms: 46-60 ms; before the re-delivery was stopped
    when the failure is reported, 19 of 32 such runs printed a traceback)."""
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    proc = subprocess.run([sys.executable, "-c", _CTRL_C_IN_A_CALLBACK, after], env=env,
                          capture_output=True, text=True, timeout=20,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.splitlines() == ["gibbslda: interrupted"]
