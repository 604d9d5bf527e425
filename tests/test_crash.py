"""Crash safety: kill -9 a real training at random moments; the model folder holds the
last complete checkpoint or nothing, and finishing the run gives the uninterrupted model."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gibbslda import LDA, ModelFileError
from tests.test_cli import ENV, _run_main
from tests.test_cli_train import _chain, _train, runner, slow_prepared  # noqa: F401 (fixtures)

TRIALS = 5


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="sends SIGKILL")
def test_kill_9_leaves_a_complete_checkpoint_or_nothing(slow_prepared, tmp_path):  # noqa: F811
    whole = tmp_path / "whole"
    assert _run_main(*_train(slow_prepared, whole)).returncode == 0
    env = {k: v for k, v in {**os.environ, **ENV}.items() if v is not None}
    delays = random.Random(20261128).sample(range(8, 32), TRIALS)  # tenths of a second
    seen = []
    for trial, delay in enumerate(delays):
        out = tmp_path / f"killed-{trial}"
        proc = subprocess.Popen([sys.executable, "-m", "gibbslda.cli.main",
                                 *_train(slow_prepared, out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay / 10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if out.exists():
            try:
                model = LDA.load(out)  # complete, or refused: never half a model
            except ModelFileError as exc:
                pytest.fail(f"trial {trial}: a half-written model folder: {exc}")
            seen.append(model.n_iter_)
            assert model.n_iter_ % 5 == 0 or model.n_iter_ == 300
            finish = _run_main("train", "-o", str(out), "--resume")
        else:
            seen.append(None)  # killed before the first checkpoint: start again
            finish = _run_main(*_train(slow_prepared, out))
        assert finish.returncode == 0, finish.stderr
        assert not list(tmp_path.glob(f".killed-{trial}.*"))  # no stray temporary folder
        for a, b in zip(_chain(out), _chain(whole)):
            np.testing.assert_array_equal(a, b)
    print("checkpoints found after kill -9:", seen)
    # the trials stopped at different points (the test would be weak otherwise)
    assert len(set(seen)) >= 2, seen
