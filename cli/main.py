"""The ``gibbslda`` app: builds the typer app, registers the commands, maps errors to exits.

Only typer is imported here and in the command modules at import time; numba, polars and
the estimator are imported inside the command functions, so ``--help`` and ``--version``
do not pay for them.
"""
from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from typing import Annotated, NoReturn, Optional

import typer

from gibbslda.cli import (demo, evaluate, forecast, info, prepare, recommend, report,
                          select_k, topics, train, trends, update, users)

DEBUG_ENV = "GIBBSLDA_DEBUG"

app = typer.Typer(
    name="gibbslda",
    epilog="Example: `gibbslda demo --output demo-output`",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (module, exception class name, exit code, message prefix); the first match wins, so a
# subclass comes before its base (ModelFileError and NotFittedError are ValueErrors). A
# class whose module was never imported cannot have been raised, so it is not imported.
ERRORS: tuple[tuple[str, str, int, str], ...] = (
    ("gibbslda.errors", "ModelFileError", 1, "model file error"),
    ("gibbslda.errors", "NotFittedError", 1, "model not fitted"),
    ("polars.exceptions", "ComputeError", 1, "data error"),
    ("builtins", "FileNotFoundError", 1, "file not found"),
    ("builtins", "ValueError", 1, "error"),
    ("builtins", "TypeError", 1, "error"),
    ("builtins", "KeyboardInterrupt", 130, "interrupted"),
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gibbslda {version('gibbslda')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the installed version and exit.")] = None,
) -> None:
    """Collapsed Gibbs LDA for users x items logs: interests, user profiles and
    recommendations."""


for _module, _name in ((prepare, "prepare"), (train, "train"), (topics, "topics"),
                       (users, "users"), (info, "info"), (report, "report"),
                       (recommend, "recommend"), (evaluate, "evaluate"),
                       (select_k, "select_k"), (demo, "demo"), (trends, "trends"),
                       (forecast, "forecast"), (update, "update")):
    app.command(_name.replace("_", "-"), epilog=_module.EXAMPLE)(getattr(_module, _name))
app.command("forecast-eval", epilog=forecast.EVAL_EXAMPLE)(forecast.forecast_eval)


def run() -> None:
    """Console entry point: run the app; a library error becomes one line and exit 1."""
    with _SwallowedCtrlC() as ctrl_c:
        try:
            app(prog_name="gibbslda")
        except SystemExit as exc:
            ctrl_c.settle()
            # typer turns Ctrl-C into a silent exit 130; report it through the table.
            interrupt = _interrupt_in_chain(exc)
            if interrupt is None:
                raise
            _exit(interrupt)
        except BaseException as exc:  # noqa: BLE001 - mapped by ERRORS, else re-raised
            ctrl_c.settle()
            if ctrl_c.caught and _interrupt_in_chain(exc) is None:
                exc = ctrl_c.caught[0]
            _exit(exc)


class _SwallowedCtrlC:
    """A Ctrl-C that lands inside a C callback (numba's first compile calls back into
    Python through ctypes to write its cache) is swallowed there, printed as "Exception
    ignored", and numba may then fail with an unrelated error. While the command runs,
    such an interrupt is kept quiet (``caught``: a failure that follows is reported as
    the interruption it is) and delivered again 50 ms later from a timer (a signal raised
    in the hook would be swallowed with it), so it is never lost. :meth:`settle`, once the
    command has ended, stops the re-delivery, and one already on its way is ignored
    rather than breaking the report."""

    def __init__(self):
        self.caught: list[KeyboardInterrupt] = []
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._settled = False
        self._previous = sys.unraisablehook

    def __enter__(self) -> "_SwallowedCtrlC":
        sys.unraisablehook = self._hook
        return self

    def __exit__(self, *exc_info) -> None:
        self.settle()
        sys.unraisablehook = self._previous

    def _hook(self, unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._previous(unraisable)
            return
        self.caught.append(unraisable.exc_value)
        timer = threading.Timer(0.05, self._again, args=(threading.get_ident(),))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _again(self, thread: int) -> None:
        with self._lock:
            if not self._settled:
                _ctrl_c_again(thread)

    def settle(self) -> None:
        with self._lock:
            if self._settled:
                return
            self._settled = True
        for timer in self._timers:
            timer.cancel()
        if self._timers and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # one sent before: not raised


def _ctrl_c_again(thread: int) -> None:
    """SIGINT to ``thread`` itself where that exists, so a sleep or a wait there ends too."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(thread, signal.SIGINT)
    else:
        _thread.interrupt_main()


def _exit(exc: BaseException) -> NoReturn:
    """Exit with the one-line message of a mapped exception; re-raise anything else."""
    for module, name, code, prefix in ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            break
    else:
        raise exc
    if os.environ.get(DEBUG_ENV) == "1":
        raise exc
    detail = _one_line(exc)
    typer.echo(f"gibbslda: {prefix}" + (f": {detail}" if detail else ""), err=True)
    sys.exit(code)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return str(exc.filename)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


if __name__ == "__main__":
    run()
