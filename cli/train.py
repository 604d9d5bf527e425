"""``gibbslda train``: fit a model with live progress, checkpoints, Ctrl-C and resume."""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

# prior and read_source keep their old private names here while the Dask path is being
# reworked; select-k uses them from gibbslda.cli.common
from gibbslda.cli.common import (LABELS, output_option, prior as _prior,
                                 read_source as _read_source)

EXAMPLE = "Example: `gibbslda train prepared -o model -k 50 --iterations 300 --threads 2`"
# options that fix the chain, as (LDA parameter, default): with --resume, one given must
# agree with the saved model (the run continues that chain)
_CHAIN_OPTIONS = {"--topics": ("n_topics", 20), "--sampler": ("sampler", "auto"),
                  "--shards": ("n_shards", 1), "--seed": ("random_state", 0),
                  "--alpha": ("alpha", "auto"), "--beta": ("beta", "auto"),
                  "--optimize-burn-in": ("optimize_burn_in", 50)}


def train(
    source: Annotated[Optional[Path], typer.Argument(
        help="A prepared folder (`gibbslda prepare`) or an event file (Parquet/CSV with "
             "user and item columns). Not needed with --resume.")] = None,
    output: Annotated[Path, output_option(
        "Model folder, written at every checkpoint.", file_okay=False)] = Path("model"),
    topics: Annotated[Optional[int], typer.Option(
        "--topics", "-k", help="Interests (topics); default 20.")] = None,
    iterations: Annotated[Optional[int], typer.Option(
        "--iterations", "-n", help="Total Gibbs sweeps (default 200; with --resume, the "
                                   "saved total).")] = None,
    sampler: Annotated[Optional[str], typer.Option(
        help="auto (the default: warp from 20 topics on 50,000 tokens or more with one "
             "shard, else the exact dense or sparse chain), dense, sparse, mh, warp or vector "
             "(dense in float32 vectors, K <= 64).")
    ] = None,
    threads: Annotated[Optional[int], typer.Option(
        help="Threads (default: all cores). warp uses them all; dense, sparse and mh only "
             "with --shards 2 or more (one shard is the serial chain). Never changes the "
             "result.")] = None,
    shards: Annotated[Optional[int], typer.Option(
        help="Blocks sampled in parallel, up to one thread each (default 1: the exact "
             "serial chain, one thread). A model setting: shards change the model, like "
             "the seed; threads never do.")] = None,
    seed: Annotated[Optional[int], typer.Option(
        help="Random seed (default 0): same seed, same model.")] = None,
    alpha: Annotated[Optional[str], typer.Option(
        help="User prior: 'auto' (the default: learned, with --dask too) or a number "
             "(0.1 was the default before).")] = None,
    beta: Annotated[Optional[str], typer.Option(
        help="Item prior: 'auto' (the default: learned, with --dask too) or a number "
             "(0.01 was the default before).")] = None,
    optimize_burn_in: Annotated[Optional[int], typer.Option(
        min=0, help="With 'auto' priors: sweeps before they are first learned (default "
                    "50).")] = None,
    checkpoint_every: Annotated[int, typer.Option(
        min=1, help="Write the model folder every this many sweeps (and at the end).")] = 20,
    eval_every: Annotated[Optional[int], typer.Option(
        min=1, help="Log-likelihood (and held-out likelihood) every this many sweeps, "
                    "and at the first and last (default 10; with --resume, the saved "
                    "setting).")] = None,
    heldout: Annotated[bool, typer.Option(
        "--heldout/--no-heldout",
        help="Score the prepared folder's held-out users at each evaluation (when it has "
             "them); --no-heldout skips it.")] = True,
    heldout_users: Annotated[Optional[int], typer.Option(
        min=1, help="Held-out users scored at each evaluation: a seeded subsample of this "
                    "many (default 1000; with --resume, the saved setting). More users, "
                    "a steadier figure and a slower evaluation.")] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue the model in --output bit-exactly where it stopped, with its "
             "settings (-k, --sampler, --shards, --seed, the priors and "
             "--optimize-burn-in given again must agree with them).")] = False,
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

    Every --eval-every sweeps the log-likelihood is computed and, when the prepared folder
    holds held-out users (`prepare --split heldout`), the held-out likelihood of a seeded
    subsample of them (--heldout-users, default 1000; --no-heldout skips it).

    Ctrl-C stops after the current sweep (with --dask, round), writes a checkpoint and
    says how to resume (exit 130); a second Ctrl-C stops at once, leaving the last
    checkpoint intact (exit 130). `--resume` continues to the same model an uninterrupted
    run gives. A second training into the same folder is refused while the first runs
    (an OS lock on `<output>.lock`).
    """
    from rich.console import Console

    from gibbslda import LDA, io

    err = Console(stderr=True, highlight=False)
    show = err.is_terminal and not quiet
    io.check_target(output)  # not a model folder: refused before any work
    given = {"--topics": topics, "--sampler": sampler, "--shards": shards, "--seed": seed,
             "--alpha": None if alpha is None else _prior(alpha),
             "--beta": None if beta is None else _prior(beta),
             "--optimize-burn-in": optimize_burn_in}
    chosen = {option: _CHAIN_OPTIONS[option][1] if value is None else value
              for option, value in given.items()}
    if dask is not None:
        rounds = output.with_name(output.name + ".rounds.npz")
        with _lock(output), _graceful_interrupt(rounds, "round", "run the same command "
                                                "again with --resume") as stopped:
            _train_on_dask(source, output, dask, partitions, sweeps_per_round, resume, err,
                           show, stopped, dict(
                               topics=chosen["--topics"], alpha=chosen["--alpha"],
                               beta=chosen["--beta"],
                               optimize_burn_in=chosen["--optimize-burn-in"],
                               iterations=iterations,
                               sampler=chosen["--sampler"], seed=chosen["--seed"],
                               user=user, item=item, checkpoint_every=checkpoint_every,
                               threads=threads))
        return
    with _lock(output), _graceful_interrupt(output, "sweep", "resume with: gibbslda train "
                                            f"-o {output} --resume") as stopped:
        data = _read_source(source, user, item) if source is not None else None
        if resume:
            model = LDA.load(output)
            _check_resume_options(model, output, given)
            stopped.last = f"sweep {model.n_iter_}"
            model.n_jobs = threads
            if iterations is not None:
                model.n_iter = iterations
            for name, value in (("eval_every", eval_every),
                                ("heldout_users", heldout_users)):
                if value is not None:
                    setattr(model, name, value)
        else:
            if data is None:
                raise ValueError("give a prepared folder or an event file to train on (or "
                                 "--resume to continue the model in --output)")
            model = LDA(chosen["--topics"], alpha=chosen["--alpha"], beta=chosen["--beta"],
                        n_iter=200 if iterations is None else iterations,
                        random_state=chosen["--seed"], sampler=chosen["--sampler"],
                        n_shards=chosen["--shards"], n_jobs=threads,
                        optimize_burn_in=chosen["--optimize-burn-in"],
                        **{name: value for name, value in (
                            ("eval_every", eval_every), ("heldout_users", heldout_users))
                           if value is not None})
        runs = (model.state_.sampler if resume
                else model.sampler_for(data["corpus"].n_tokens))
        if threads is not None and threads > 1 and model.n_shards == 1 and runs != "warp":
            fix = (f"{output} was trained with one, and shards are fixed when a training "
                   "starts" if resume else
                   f"add --shards {threads} (or more) to sample in parallel")
            typer.echo(f"gibbslda: --threads {threads} has no effect with one shard: {fix}; "
                       "shards change the model, threads never do", err=True)
        if data is not None and not heldout:
            data = data | {"heldout": None}
        _train_here(model, data, output, resume, checkpoint_every, stopped, err, show)
    if stopped():
        typer.echo(f"gibbslda: interrupted after sweep {model.n_iter_} of {model.n_iter}; "
                   f"checkpoint written to {output}. Resume with: gibbslda train -o {output} "
                   "--resume", err=True)
        raise typer.Exit(130)
    loglik = model.loglik_["loglik"][-1]
    typer.echo(f"{output}: {model.n_topics} interests, {model.n_iter_} sweeps in "
               f"{model.seconds_:.1f} s, log-likelihood per token {loglik:.4f}")


def _train_here(model, data, output: Path, resume: bool, checkpoint_every: int, stopped,
                err, show: bool) -> None:
    """Fit (or resume) on this machine, writing the model folder every
    ``checkpoint_every`` sweeps and at the end, each inside ``stopped.writing``."""
    from gibbslda.cli.progress import TrainingDisplay, compile_kernels

    extra = {LABELS: data["labels"]} if data and data["labels"] is not None else {}
    if resume and not extra:
        from gibbslda import io

        old = io.read_extra(output, LABELS)
        extra = {LABELS: old} if old is not None else {}
    compile_kernels(err, show)

    def save() -> None:
        with stopped.writing(f"sweep {model.n_iter_}"):
            _save(model, output, extra)

    def checkpoint(info) -> None:
        if info.iteration % checkpoint_every == 0 and info.iteration < info.n_iter:
            save()

    heldout = data["heldout"] if data else None
    with TrainingDisplay(err, show=show, stop_requested=stopped,
                         on_sweep=checkpoint) as display:
        if resume:
            model.resume(callback=display, heldout=heldout)
        else:
            _say(err, show, f"Training {model.n_topics} interests on "
                 f"{data['corpus'].n_tokens:,} tokens of {data['corpus'].n_users:,} users")
            model.fit(data["corpus"], callback=display, heldout=heldout)
    from gibbslda import rankers  # the recommend default, saved with the model

    _say(err, show, "Choosing the recommendation method on a validation split of the "
         "training users")
    rankers.choose(model, refresh=True)
    save()


def _check_resume_options(model, output: Path, given: dict) -> None:
    """Refuse an option given with --resume that differs from the saved model's setting:
    the run continues the saved chain, which keeps the settings it started with."""
    saved = model.get_params()
    for option, value in given.items():
        name = _CHAIN_OPTIONS[option][0]
        if value is not None and value != saved[name]:
            raise ValueError(f"{option} {value} differs from the {saved[name]} that {output} "
                             f"was trained with, and --resume continues that training: "
                             f"drop {option}, or train a new model into another folder")


def _train_on_dask(source, output: Path, address: str, partitions, sweeps_per_round: int,
                   resume: bool, err, show: bool, stopped, settings: dict) -> None:
    """AD-LDA on a Dask cluster (:mod:`gibbslda.distributed`); the round checkpoint is
    ``<output>.rounds.npz``; the model folder is written at the end, or when Ctrl-C
    (``stopped``) stops the rounds (exit 130)."""
    from gibbslda.cli.progress import TrainingDisplay, compile_kernels
    from gibbslda.distributed import DistributedLDA

    if source is None:
        raise ValueError("with --dask, give the prepared folder or event file again (the "
                         "round checkpoint holds the chain, not the data)")
    if resume and settings["iterations"] is None:
        raise ValueError("with --dask --resume, give the total sweeps again (-n): the round "
                         "checkpoint does not record it")
    if settings["threads"] is not None:
        typer.echo(f"gibbslda: --threads {settings['threads']} has no effect with --dask: "
                   "each partition samples on one thread; more --partitions use more "
                   "workers", err=True)
    data = _read_source(source, settings["user"], settings["item"])
    compile_kernels(err, show)
    if resume:
        stopped.last = "where --resume started"
    client, cluster = _dask_client(address)
    try:
        workers = len(client.scheduler_info()["workers"])
        every = max(1, -(-settings["checkpoint_every"] // sweeps_per_round))  # rounds
        estimator = DistributedLDA(
            settings["topics"], alpha=settings["alpha"], beta=settings["beta"],
            n_iter=200 if settings["iterations"] is None else settings["iterations"],
            random_state=settings["seed"], sampler=settings["sampler"],
            n_partitions=partitions or max(workers, 1), sweeps_per_round=sweeps_per_round,
            checkpoint=stopped.place, checkpoint_every=every,
            optimize_burn_in=settings["optimize_burn_in"])

        def checkpointed(info) -> None:  # info: the round's SweepInfo
            if info.round % every == 0:  # its checkpoint is written
                stopped.last = f"sweep {info.iteration}"

        with TrainingDisplay(err, show=show, stop_requested=stopped,
                             on_sweep=checkpointed) as display:
            estimator.fit(data["corpus"], client, resume=resume, callback=display)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    extra = {LABELS: data["labels"]} if data["labels"] is not None else {}
    model = estimator.model_
    with stopped.writing(f"sweep {model.n_iter_}"):
        _save(model, output, extra)
    if stopped():
        typer.echo(f"gibbslda: interrupted after sweep {model.n_iter_} of {model.n_iter}; "
                   f"round checkpoint written to {stopped.place} and the model so far to "
                   f"{output}. Resume: run the same command again with --resume", err=True)
        raise typer.Exit(130)
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
        # Ctrl-C in a terminal reaches the whole process group: worker processes started
        # while SIGINT is ignored keep ignoring it, so the driver alone decides to stop.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
        finally:
            signal.signal(signal.SIGINT, previous)
        return Client(cluster), cluster
    return Client(address, timeout=30), None


def _save(model, output: Path, extra: dict) -> None:
    from gibbslda import io

    io.save(model, output, extra=extra)


def _say(err, show: bool, text: str) -> None:
    if show:
        from rich.markup import escape

        err.print(escape(text))


class _Interrupt:
    """What Ctrl-C asked of a training (see :func:`_graceful_interrupt`); calling it says
    whether a stop was asked. Checkpoints are written inside :meth:`writing`, so a
    second Ctrl-C lets one being written finish and names the last one."""

    def __init__(self, place: Path, unit: str, hint: str):
        self.place, self.unit, self.hint = place, unit, hint
        self.asked = 0
        self.last: str | None = None  # the last checkpoint in ``place``, as "sweep N"
        self._writing = threading.Lock()

    def __call__(self) -> bool:
        return self.asked > 0

    @contextmanager
    def writing(self, last: str):
        with self._writing:
            yield
            self.last = last

    def signalled(self) -> None:
        """A Ctrl-C (on the watcher thread): the first asks for a stop after this sweep
        (or round), the second exits 130 at once."""
        self.asked += 1
        if self.asked == 1:
            _stderr(f"gibbslda: stopping after this {self.unit}; Ctrl-C again stops at "
                    "once (the last checkpoint stays intact)")
            return
        with self._writing:  # a checkpoint being written is finished first
            where = (f"{self.place} holds the last checkpoint ({self.last}), intact; "
                     f"{self.hint}" if self.last else "no checkpoint was written yet")
            _stderr(f"gibbslda: stopped at once; {where}", restore_cursor=True)
            os._exit(130)


@contextmanager
def _graceful_interrupt(place: Path, unit: str, hint: str):
    """Ctrl-C during training: the first asks it to stop after the current sweep (or
    round); the second exits 130 at once. Yields the :class:`_Interrupt`.

    A running numba sweep cannot be interrupted, and Python runs signal handlers only
    between bytecodes of the main thread, after the sweep. So a watcher thread counts
    the Ctrl-Cs instead: ``signal.set_wakeup_fd`` writes a byte to a pipe for each at
    once, and the watcher runs while the sweep (nogil) works. Exiting at once is safe:
    a local checkpoint being written is finished first, and every checkpoint replaces the
    last by renames (``io.recover`` puts back what a kill between them leaves). A Dask
    round checkpoint is one file renamed into place: an exit while it is written leaves
    the previous one (the message may then name the one before the newest).
    """
    interrupt = _Interrupt(place, unit, hint)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)  # the watcher's
    wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_fd, interrupt), daemon=True,
                               name="gibbslda-ctrl-c")
    watcher.start()
    try:
        yield interrupt
    finally:
        signal.set_wakeup_fd(wakeup)
        signal.signal(signal.SIGINT, previous)
        os.close(write_fd)  # the watcher reads the end of the pipe and returns
        watcher.join()
        os.close(read_fd)


def _watch(read_fd: int, interrupt: _Interrupt) -> None:
    """Pass each SIGINT byte that ``set_wakeup_fd`` writes to ``interrupt``."""
    while data := os.read(read_fd, 64):
        for _ in range(data.count(int(signal.SIGINT))):
            interrupt.signalled()


def _stderr(line: str, *, restore_cursor: bool = False) -> None:
    """One line straight to file descriptor 2: safe from the watcher thread beside the
    live display, and written before ``os._exit``, which flushes nothing."""
    if restore_cursor and os.isatty(2):
        line = "\x1b[?25h\n" + line  # the live display hides the cursor
    os.write(2, (line + "\n").encode())


@contextmanager
def _lock(output: Path):
    """Hold an OS lock (``flock``) on ``<output>.lock`` for the whole run: a second
    training into the same folder is refused while it is held.

    The system drops the lock when its holder exits, however it exits, so a lock file
    left by a killed run is simply taken over. The file holds the holder's pid, for the
    message only (emptied at the end). It is never removed: a process that opened it just
    before a removal would lock the removed file while another created and locked a new
    one, and both would train into ``output``."""
    import fcntl

    lock = output.with_name(output.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 20, 0).decode(errors="replace").strip()
            who = f" (pid {owner})" if owner.isdigit() else ""
            raise ValueError(f"another training{who} is writing {output}: it holds the "
                             f"lock {lock}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        # what a killed run left beside ``output`` is put right by the next load or save
        # (io.read and the writer both call io.recover), under this lock
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # no owner to name any more
    finally:
        os.close(fd)  # releases the lock
