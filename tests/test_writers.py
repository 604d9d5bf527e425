"""Every writer: a folder that is not ours is refused and kept; an empty or own one is
replaced; modes follow the umask; files and folders are fsync'd; a save killed between its
two renames is undone by the next load."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from gibbslda import LDA
from gibbslda import preprocess as pp
from gibbslda.cli.main import app
from gibbslda.cli.output import write_table
from gibbslda.report import write_report
from gibbslda.synthetic import planted_corpus
from tests.test_cli import ENV, _run_main


class Killed(BaseException):
    """What a kill -9 does to a writer: nothing after it runs (not even a rollback)."""


@pytest.fixture(scope="module")
def runner():
    return CliRunner(env=ENV)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    corpus = planted_corpus(60, 20, 3, mean_length=10, seed=2).corpus
    frame = pl.DataFrame({"user_id": np.repeat(corpus.user_ids, corpus.lengths).astype(str),
                          "item_id": corpus.words.astype(str)})
    path = tmp_path_factory.mktemp("events") / "events.parquet"
    frame.write_parquet(path)
    return path


@pytest.fixture(scope="module")
def fitted(events):
    return LDA(3, n_iter=4, random_state=1).fit(pp.prepare(events).corpus("train"))


@pytest.fixture(scope="module")
def prepared(events):
    return pp.prepare(events)


def _foreign(folder: Path, lookalike: str | None = None) -> Path:
    """A user's folder: thesis.txt, and a metadata file of our name but not our format."""
    folder.mkdir()
    (folder / "thesis.txt").write_text("four years of work")
    if lookalike:
        (folder / lookalike).write_text('{"format": "someone-else"}')
    return folder


def _intact(folder: Path) -> bool:
    return (folder / "thesis.txt").read_text() == "four years of work"


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# -- folders: refused unless absent, empty or ours ------------------------------------------
FOLDER_WRITERS = {
    "LDA.save": ("model.json", lambda target, fitted, prepared: fitted.save(target),
                 lambda target: LDA.load(target).n_iter_ == 4),
    "write_prepared": ("prepared.json",
                       lambda target, fitted, prepared: pp.write_prepared(prepared, target),
                       lambda target: pp.read_prepared(target).tokens.height > 0),
}


@pytest.mark.parametrize("writer", FOLDER_WRITERS)
def test_folder_writer_refuses_a_foreign_folder_and_replaces_an_empty_or_own_one(
        writer, fitted, prepared, tmp_path):
    lookalike, write, readable = FOLDER_WRITERS[writer]
    for target in (_foreign(tmp_path / "thesis"), _foreign(tmp_path / "like", lookalike)):
        with pytest.raises(ValueError, match=r"exists and is not a .*folder \(it holds "
                                             r".*thesis\.txt.*\): choose another output path"):
            write(target, fitted, prepared)
        assert _intact(target)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="it is a file"):
        write(tmp_path / "a-file", fitted, prepared)
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "empty", tmp_path / "new" / "deeper"):
        write(target, fitted, prepared)  # empty, then our own, then absent
        assert readable(target)
    assert _leftovers(tmp_path) == []


def test_train_refuses_a_foreign_folder_and_replaces_an_empty_or_own_one(
        runner, events, tmp_path):
    thesis = _foreign(tmp_path / "thesis", "model.json")
    args = ["train", str(events), "-k", "3", "-n", "3"]
    result = runner.invoke(app, [*args, "-o", str(thesis)])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "is not a gibbslda model folder" in str(result.exception) and _intact(thesis)
    (tmp_path / "empty").mkdir()
    for seed in ("1", "2"):  # an empty folder, then our own model
        result = runner.invoke(app, [*args, "-o", str(tmp_path / "empty"), "--seed", seed])
        assert result.exit_code == 0, result.output
        assert LDA.load(tmp_path / "empty").random_state == int(seed)


def test_train_into_its_own_prepared_input_is_one_line_and_exit_1(prepared, tmp_path):
    folder = pp.write_prepared(prepared, tmp_path / "prepared")
    proc = _run_main("train", str(folder), "-o", str(folder), "-k", "3", "-n", "3")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"gibbslda: error: {folder} exists and is not a gibbslda "
                                  "model folder (it holds prepared.json, tokens.parquet, "
                                  "users.parquet, ...): choose another output path")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert pp.read_prepared(folder).tokens.equals(prepared.tokens)


@pytest.mark.parametrize("command", ["prepare", "recommend"])
def test_cli_writers_refuse_a_foreign_target(command, runner, events, fitted, tmp_path):
    if command == "prepare":
        target = _foreign(tmp_path / "out", "prepared.json")
        args = ["prepare", str(events), "-o", str(target)]
    else:
        target = _foreign(tmp_path / "recs.csv")
        fitted.save(tmp_path / "model")
        args = ["recommend", str(tmp_path / "model"), "-o", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "choose another output path or remove it" in str(result.exception)
    assert _intact(target)


def test_prepare_refuses_a_foreign_target_before_reading(runner, tmp_path):
    # the event file does not exist: only a check made before any work can answer first
    target = _foreign(tmp_path / "out", "prepared.json")
    result = runner.invoke(app, ["prepare", str(tmp_path / "missing.csv"), "-o", str(target)])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "choose another output path or remove it" in str(result.exception)
    assert _intact(target)


@pytest.mark.parametrize("inside", ["prepared", "model"])
def test_demo_refuses_a_foreign_folder_before_any_work(runner, tmp_path, inside):
    (tmp_path / "out").mkdir()
    target = _foreign(tmp_path / "out" / inside, "model.json")
    result = runner.invoke(app, ["demo", "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert _intact(target)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [inside]  # nothing written


def test_demo_refuses_a_folder_of_other_files(runner, tmp_path):
    target = _foreign(tmp_path / "documents")
    (target / "topics.parquet").write_text("a user's own file of that name")
    result = runner.invoke(app, ["demo", "-o", str(target), "-q"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert _intact(target) and (target / "topics.parquet").read_text().startswith("a user")


# -- single files: a regular file is replaced, anything else refused ------------------------
FILE_WRITERS = {
    "write_report": lambda target, fitted: write_report(fitted, target),
    "write_table": lambda target, fitted: write_table(pl.DataFrame({"a": [1, 2]}), target),
}


@pytest.mark.parametrize("writer", FILE_WRITERS)
def test_file_writer_refuses_a_folder_and_replaces_a_file(writer, fitted, tmp_path):
    target = _foreign(tmp_path / "out.csv")
    with pytest.raises(ValueError, match="out.csv exists and is a folder"):
        FILE_WRITERS[writer](target, fitted)
    assert _intact(target)
    file = tmp_path / "file.csv"
    file.write_text("old")
    FILE_WRITERS[writer](file, fitted)
    assert file.read_text() != "old"
    assert _leftovers(tmp_path) == []


# -- one mode policy -------------------------------------------------------------------------
UMASK = 0o027  # not the usual 022, so a hard-coded 0o644/0o755 shows


def _modes(path: Path) -> set[tuple[str, int]]:
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    return {("dir" if p.is_dir() else "file", stat.S_IMODE(p.stat().st_mode)) for p in paths}


@pytest.mark.parametrize("writer", [*FOLDER_WRITERS, *FILE_WRITERS])
def test_modes_follow_the_umask(writer, fitted, prepared, tmp_path):
    target = tmp_path / "new" / "out.csv"
    previous = os.umask(UMASK)
    try:
        if writer in FOLDER_WRITERS:
            FOLDER_WRITERS[writer][1](target, fitted, prepared)
        else:
            FILE_WRITERS[writer](target, fitted)
    finally:
        os.umask(previous)
    expected = {("file", 0o666 & ~UMASK)} | ({("dir", 0o777 & ~UMASK)}
                                            if writer in FOLDER_WRITERS else set())
    assert _modes(target) == expected
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o777 & ~UMASK  # made for it


# -- durability --------------------------------------------------------------------------------
def _count_fsyncs(monkeypatch) -> set[int]:
    """Inodes that os.fsync was called on (a syscall: counted, not the code under test)."""
    synced = set()
    real = os.fsync

    def fsync(fd):
        synced.add(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr("os.fsync", fsync)
    return synced


def test_save_fsyncs_every_file_and_both_folders(fitted, tmp_path, monkeypatch):
    synced = _count_fsyncs(monkeypatch)
    fitted.save(tmp_path / "model")
    written = [tmp_path / "model", *(tmp_path / "model").iterdir()]
    assert len(written) == 6  # + ranking.npz, the posterior sample averages
    assert {p.stat().st_ino for p in written} | {tmp_path.stat().st_ino} <= synced


def test_file_writer_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = _count_fsyncs(monkeypatch)
    write_table(pl.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    assert {(tmp_path / "t.parquet").stat().st_ino, tmp_path.stat().st_ino} <= synced


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


RECOVERED = {  # write the n-th version to a path; read which version is there
    "model": (lambda path, events, n: LDA(3, n_iter=n, random_state=1)
              .fit(pp.prepare(events).corpus("train")).save(path),
              lambda path: LDA.load(path).n_iter_),
    "prepared": (lambda path, events, n: pp.write_prepared(
        pp.prepare(pl.read_parquet(events).head(40 * n)), path),
                 lambda path: pp.read_prepared(path).summary["rows"]["read"]),
}


@pytest.mark.parametrize("kind", RECOVERED)
def test_a_write_killed_between_its_renames_is_undone_by_the_next_read(
        kind, events, tmp_path, monkeypatch):
    write, read = RECOVERED[kind]
    path = tmp_path / "out"
    write(path, events, 5)
    first = read(path)
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((src, dst))
        if len(calls) > 1:
            raise Killed  # killed after the old folder was set aside
        real(src, dst)

    monkeypatch.setattr("os.replace", replace)
    with pytest.raises(Killed):
        write(path, events, 3)
    monkeypatch.undo()
    assert not path.exists()  # the window this test is about
    (aside,) = tmp_path.glob(".out.old-*")
    # while its writer runs, a reader leaves the folder set aside alone (the writer is
    # between its renames and finishes the swap itself): this process is that writer
    with pytest.raises(Exception):
        read(path)
    assert aside.is_dir()
    # killed, the writer's pid is gone: the next read puts the previous folder back
    aside.rename(aside.with_name(f".out.old-{_dead_pid()}-{aside.name.rsplit('-', 1)[1]}"))
    assert read(path) == first
    assert _leftovers(tmp_path) == []


def test_load_restores_the_previous_model_and_clears_dead_leftovers_only(fitted, tmp_path):
    fitted.save(tmp_path / "model")
    dead, alive = _dead_pid(), os.getpid()
    os.rename(tmp_path / "model", tmp_path / f".model.old-{dead}-1a2b")
    LDA(3, n_iter=2, random_state=1).fit(fitted.corpus_).save(tmp_path / "new")
    os.rename(tmp_path / "new", tmp_path / f".model.tmp-{dead}-3c4d")  # the killed save's
    (tmp_path / f".model.tmp-{alive}-5e6f").mkdir()  # a save running in this process
    (tmp_path / ".model.old-7").mkdir()  # set aside but not ours: kept
    (tmp_path / ".model.old-7" / "thesis.txt").write_text("four years of work")
    assert LDA.load(tmp_path / "model").n_iter_ == fitted.n_iter_
    assert _leftovers(tmp_path) == [".model.old-7", f".model.tmp-{alive}-5e6f"]
    assert _intact(tmp_path / ".model.old-7")


def test_a_set_aside_folder_half_removed_by_a_killed_writer_is_cleared(fitted, tmp_path):
    # killed inside _swap's final rmtree: the new model is in place, the old one set aside
    # lost its model.json first; by its name it is ours, so the next read clears it
    fitted.save(tmp_path / "model")
    aside = tmp_path / f".model.old-{_dead_pid()}-0a1b2c3d"
    aside.mkdir()
    (aside / "arrays.npz").write_bytes(b"half removed")
    LDA.load(tmp_path / "model")
    assert _leftovers(tmp_path) == []


# -- the Dask round checkpoint ---------------------------------------------------------------
def test_dask_checkpoint_refuses_a_folder_and_replaces_a_file(tmp_path):
    distributed = pytest.importorskip("distributed")
    from gibbslda.distributed import DistributedLDA

    corpus = planted_corpus(30, 20, 2, mean_length=10, seed=1).corpus
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=None) as client:
        folder = _foreign(tmp_path / "run.npz")
        with pytest.raises(ValueError, match="run.npz exists and is a folder"):
            DistributedLDA(2, n_iter=2, n_partitions=1, checkpoint=folder).fit(corpus, client)
        assert _intact(folder)
        file = tmp_path / "other.npz"
        file.write_text("old")
        previous = os.umask(UMASK)
        try:
            DistributedLDA(2, n_iter=2, n_partitions=1, checkpoint=file).fit(corpus, client)
        finally:
            os.umask(previous)
    with np.load(file, allow_pickle=False) as npz:
        assert npz["z"].shape == (corpus.n_tokens,)
    assert _modes(file) == {("file", 0o666 & ~UMASK)}
    assert _leftovers(tmp_path) == []
