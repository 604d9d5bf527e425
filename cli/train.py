"""``gibbslda train``: fit a model with live progress, checkpoints, Ctrl-C and resume."""
from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from gibbslda.cli.common import LABELS

EXAMPLE = "Example: `gibbslda train prepared -o model -k 50 --iterations 300 --threads 2`"


def train(
    source: Annotated[Optional[Path], typer.Argument(
        help="A prepared folder (`gibbslda prepare`) or an event file (Parquet/CSV with "
             "user and item columns). Not needed with --resume.")] = None,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Model folder, written at every checkpoint.",
        file_okay=False)] = Path("model"),
    topics: Annotated[int, typer.Option("--topics", "-k", help="Interests (topics).")] = 20,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", "-n", help="Total Gibbs sweeps (default 200; with --resume, the "
                                   "saved total).")] = None,
    sampler: Annotated[str, typer.Option(help="auto, dense, sparse or mh.")] = "auto",
    threads: Annotated[Optional[int], typer.Option(
        help="Threads (default: all cores). Never changes the result.")] = None,
    shards: Annotated[int, typer.Option(
        help="Parallel shards: a model setting; more lets more threads work.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same model.")] = 0,
    alpha: Annotated[str, typer.Option(help="User prior: a number or 'auto' (learned).")] = "0.1",
    beta: Annotated[str, typer.Option(help="Item prior: a number or 'auto' (learned).")] = "0.01",
    optimize_burn_in: Annotated[int, typer.Option(
        min=0, help="With 'auto' priors: sweeps before they are first learned.")] = 50,
    checkpoint_every: Annotated[int, typer.Option(
        min=1, help="Write the model folder every this many sweeps (and at the end).")] = 20,
    resume: Annotated[bool, typer.Option(
        help="Continue the model in --output bit-exactly where it stopped.")] = False,
    dask: Annotated[Optional[str], typer.Option(
        help="Train on a Dask cluster: a scheduler address (tcp://host:8786) or local:N "
             "(starts N local worker processes). Needs the 'distributed' extra.")] = None,
    partitions: Annotated[Optional[int], typer.Option(
        min=1, help="With --dask: user blocks, one stream each (default: the workers). "
                    "The result depends on the seed and this, not on the workers.")] = None,
    sweeps_per_round: Annotated[int, typer.Option(
        min=1, help="With --dask: local sweeps between merges (staleness).")] = 1,
    user: Annotated[str, typer.Option(help="Event file: user id column.")] = "user_id",
    item: Annotated[str, typer.Option(help="Event file: item id column.")] = "item_id",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress.")] = False,
) -> None:
    """Fit LDA to users x items and write the model folder, with progress on stderr.

    Ctrl-C stops after the current sweep, writes a checkpoint and says how to resume
    (exit 130); `--resume` continues to the same model an uninterrupted run gives. A
    second training into the same folder is refused while the first runs (a lock file).
    """
    from rich.console import Console

    from gibbslda import LDA
    from gibbslda.cli.progress import TrainingDisplay, compile_kernels

    err = Console(stderr=True, highlight=False)
    show = err.is_terminal and not quiet
    if dask is not None:
        with _lock(output):
            _train_on_dask(source, output, dask, partitions, sweeps_per_round, resume, err,
                           show, dict(topics=topics, alpha=_prior(alpha), beta=_prior(beta),
                                      iterations=iterations, sampler=sampler, seed=seed,
                                      user=user, item=item,
                                      checkpoint_every=checkpoint_every))
        return
    with _lock(output), _graceful_interrupt() as stopped:
        data = _read_source(source, user, item) if source is not None else None
        if resume:
            model = LDA.load(output)
            if iterations is not None:
                model.n_iter = iterations
        else:
            if data is None:
                raise ValueError("give a prepared folder or an event file to train on (or "
                                 "--resume to continue the model in --output)")
            model = LDA(topics, alpha=_prior(alpha), beta=_prior(beta),
                        n_iter=200 if iterations is None else iterations, random_state=seed,
                        sampler=sampler, n_shards=shards, n_jobs=threads,
                        optimize_burn_in=optimize_burn_in)
        extra = {LABELS: data["labels"]} if data and data["labels"] is not None else {}
        if resume and not extra:
            from gibbslda import io

            old = io.read_extra(output, LABELS)
            extra = {LABELS: old} if old is not None else {}
        compile_kernels(err, show)

        def checkpoint(info) -> None:
            if info.iteration % checkpoint_every == 0 and info.iteration < info.n_iter:
                _save(model, output, extra)

        heldout = data["heldout"] if data else None
        with TrainingDisplay(err, show=show, stop_requested=stopped,
                             on_sweep=checkpoint) as display:
            if resume:
                model.resume(callback=display, heldout=heldout)
            else:
                _say(err, show, f"Training {model.n_topics} interests on "
                     f"{data['corpus'].n_tokens:,} tokens of {data['corpus'].n_users:,} users")
                model.fit(data["corpus"], callback=display, heldout=heldout)
        _save(model, output, extra)
    if stopped():
        typer.echo(f"gibbslda: interrupted after sweep {model.n_iter_} of {model.n_iter}; "
                   f"checkpoint written to {output}. Resume with: gibbslda train -o {output} "
                   "--resume", err=True)
        raise typer.Exit(130)
    loglik = model.loglik_["loglik"][-1]
    typer.echo(f"{output}: {model.n_topics} interests, {model.n_iter_} sweeps in "
               f"{model.seconds_:.1f} s, log-likelihood per token {loglik:.4f}")


def _train_on_dask(source, output: Path, address: str, partitions, sweeps_per_round: int,
                   resume: bool, err, show: bool, settings: dict) -> None:
    """AD-LDA on a Dask cluster (:mod:`gibbslda.distributed`); the round checkpoint is
    ``<output>.rounds.npz``; the model folder is written at the end."""
    from types import SimpleNamespace

    from gibbslda.cli.progress import TrainingDisplay, compile_kernels
    from gibbslda.distributed import DistributedLDA

    if source is None:
        raise ValueError("with --dask, give the prepared folder or event file again (the "
                         "round checkpoint holds the chain, not the data)")
    if resume and settings["iterations"] is None:
        raise ValueError("with --dask --resume, give the total sweeps again (-n): the round "
                         "checkpoint does not record it")
    data = _read_source(source, settings["user"], settings["item"])
    compile_kernels(err, show)
    client, cluster = _dask_client(address)
    try:
        workers = len(client.scheduler_info()["workers"])
        estimator = DistributedLDA(
            settings["topics"], alpha=settings["alpha"], beta=settings["beta"],
            n_iter=200 if settings["iterations"] is None else settings["iterations"],
            random_state=settings["seed"], sampler=settings["sampler"],
            n_partitions=partitions or max(workers, 1), sweeps_per_round=sweeps_per_round,
            checkpoint=output.with_name(output.name + ".rounds.npz"),
            checkpoint_every=max(1, -(-settings["checkpoint_every"] // sweeps_per_round)))
        tokens = data["corpus"].n_tokens
        last = {"seconds": 0.0, "sweeps": 0}

        def as_sweep(info):  # a round, in the words of the training display
            seconds = max(info.seconds - last["seconds"], 1e-12)
            rate = tokens * (info.sweeps - last["sweeps"]) / seconds
            last.update(seconds=info.seconds, sweeps=info.sweeps)
            return SimpleNamespace(iteration=info.sweeps, n_iter=info.n_iter,
                                   tokens_per_second=rate, loglik=info.loglik, heldout=None)

        with TrainingDisplay(err, show=show) as display:
            estimator.fit(data["corpus"], client, resume=resume,
                          callback=lambda info: display(as_sweep(info)))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    extra = {LABELS: data["labels"]} if data["labels"] is not None else {}
    model = estimator.model_
    _save(model, output, extra)
    typer.echo(f"{output}: {model.n_topics} interests, {model.n_iter_} sweeps on "
               f"{workers} Dask workers, log-likelihood per token "
               f"{model.loglik_['loglik'][-1]:.4f}")


def _dask_client(address: str):
    """A client for ``local:N`` (a new LocalCluster of N processes) or an address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs dask and distributed: pip install "
                         "'gibbslda[distributed]'") from None
    if address.startswith("local:"):
        try:
            n_workers = int(address.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"--dask local:N takes a number of workers, got {address!r}") \
                from None
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    return Client(address, timeout=30), None


def _save(model, output: Path, extra: dict) -> None:
    from gibbslda import io

    io.save(model, output, extra=extra)


def _say(err, show: bool, text: str) -> None:
    if show:
        from rich.markup import escape

        err.print(escape(text))


def _prior(text: str):
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"a prior must be a number or 'auto', got {text!r}") from None


def _read_source(source: Path, user: str, item: str) -> dict:
    """The training corpus, item labels and held-out parts of a prepared folder, or the
    corpus of an event file (one token per row)."""
    from gibbslda import preprocess

    if source.is_dir():
        prepared = preprocess.read_prepared(source)
        words = prepared.words
        labels = None
        if words.get_column("label").null_count() < words.height:
            labels = words.select(item_id=words["word_id"].cast(str),
                                  label=words["label"].fill_null(""))
        heldout = None
        if {"observed", "hidden"} <= set(prepared.parts):
            heldout = (prepared.corpus("observed"), prepared.corpus("hidden"))
        return {"corpus": prepared.corpus("train"), "labels": labels, "heldout": heldout}
    if not source.exists():
        raise FileNotFoundError(2, "no such file or folder", str(source))
    prepared = preprocess.prepare(source, user=user, item=item)
    return {"corpus": prepared.corpus("train"), "labels": None, "heldout": None}


@contextmanager
def _graceful_interrupt():
    """The first Ctrl-C asks training to stop after the current sweep; a second one
    interrupts at once. Yields a callable that says whether a stop was asked."""
    asked = []

    def handler(signum, frame):
        if asked:
            raise KeyboardInterrupt
        asked.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _lock(output: Path):
    """Hold ``<output>.lock`` (created exclusively, holding our pid) while training; a
    lock left by a process that no longer exists is taken over."""
    lock = output.with_name(output.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            pid = _lock_owner(lock)
            if pid is not None and _alive(pid):
                raise ValueError(f"another training (pid {pid}) is writing {output}; wait "
                                 f"for it, or remove {lock} if it is gone") from None
            lock.unlink(missing_ok=True)
    else:
        raise ValueError(f"could not take the lock {lock}; remove it and try again")
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    _remove_half_written(output)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _remove_half_written(output: Path) -> None:
    """Clear what a killed run left beside ``output``; safe because we hold the lock.

    A save renames the old model aside (``.<name>.old-<pid>``) and then the new one into
    place: killed between the two renames, the old one is put back. Other temporary
    folders are half-written and removed."""
    import shutil

    for stale in sorted(output.parent.glob(f".{output.name}.old-*")):
        if stale.is_dir() and not output.exists() and (stale / "model.json").is_file():
            os.replace(stale, output)
    for stale in output.parent.glob(f".{output.name}.*"):
        name = stale.name[len(output.name) + 2:]
        if stale.is_dir() and name.startswith(("tmp-", "old-")):
            shutil.rmtree(stale, ignore_errors=True)


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
