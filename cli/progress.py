"""The training display on stderr: a compile status, then one live line per sweep.

Shows the sweep, tokens/s, log-likelihood per token with a sparkline of its history,
elapsed time and the time left. Silent when stderr is not a terminal or with ``--quiet``.
"""
from __future__ import annotations

import time

SPARK = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 24


def sparkline(values) -> str:
    """The last SPARK_POINTS values as block characters, lowest to highest."""
    values = list(values)[-SPARK_POINTS:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(int((v - low) / span * len(SPARK)), len(SPARK) - 1)]
                   for v in values)


def compile_kernels(err, show: bool) -> None:
    """Compile or load the numba kernels, with a status line while it runs."""
    from gibbslda import heldout, sampler

    if not show:
        sampler.warm_up()
        heldout.warm_up()
        return
    with err.status("Compiling kernels (first run after install only; cached afterwards)"):
        sampler.warm_up()
        heldout.warm_up()


class TrainingDisplay:
    """A callback for ``LDA.fit``/``resume`` that renders progress with rich.Live.

    ``stop_requested`` (a callable) is polled after each sweep: when it returns True the
    callback returns False, so training stops after the current sweep. ``on_sweep(info)``
    runs after each sweep (the CLI writes checkpoints there).
    """

    def __init__(self, err, *, show: bool, stop_requested=lambda: False, on_sweep=None):
        self.err, self.show = err, show
        self.stop_requested, self.on_sweep = stop_requested, on_sweep
        self.history: list[float] = []
        self.started = time.perf_counter()
        self.first_iteration = None
        self.live = None

    def __enter__(self):
        if self.show:
            from rich.live import Live

            self.live = Live("", console=self.err, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.__exit__(*exc)
        return False

    def __call__(self, info) -> bool:
        if self.first_iteration is None:
            self.first_iteration = info.iteration - 1
        if info.loglik is not None:
            self.history.append(info.loglik)
        if self.on_sweep is not None:
            self.on_sweep(info)
        if self.live is not None:
            self.live.update(self.line(info))
        return not self.stop_requested()

    def line(self, info) -> str:
        from rich.markup import escape

        elapsed = time.perf_counter() - self.started
        done = info.iteration - self.first_iteration
        left = (info.n_iter - info.iteration) * elapsed / max(done, 1)
        loglik = f"log-lik/token {self.history[-1]:.4f} {sparkline(self.history)}" \
            if self.history else ""
        heldout = f"  held-out {info.heldout:.4f}" if info.heldout is not None else ""
        return escape(f"sweep {info.iteration}/{info.n_iter}  "
                      f"{info.tokens_per_second / 1e6:.2f}M tokens/s  {loglik}{heldout}  "
                      f"elapsed {_clock(elapsed)}  left {_clock(left)}")


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
