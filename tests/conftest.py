import os
import tracemalloc

# numba's OpenMP threads spin while waiting by default; on a shared 2-core machine that
# doubled the sharded tests' time (46 s against 24 s with two busy processes beside them).
# Set before the first parallel region starts the OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest

from gibbslda import sampler
from gibbslda.synthetic import planted_corpus


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels():
    """Compile (or load from cache) every kernel once, outside any test's own work."""
    sampler.warm_up()


@pytest.fixture(scope="session")
def planted():
    """300 users, 100 items, 5 disjoint planted topics (about 15k tokens)."""
    return planted_corpus(300, 100, 5, mean_length=50, alpha=0.1, seed=7)


@pytest.fixture
def tiny_docs():
    return [[0, 1, 0], [1, 2], [2, 2, 3, 0], [3]]


def traced_peak(call) -> int:
    """Bytes of the traced peak of ``call()`` above what was allocated before it (numpy
    reports its buffers to tracemalloc; numba kernels' own allocations are not seen)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def csr_from_docs(docs):
    indptr = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=indptr[1:])
    words = np.array([w for d in docs for w in d], dtype=np.int32)
    return indptr, words


# Hypothesis: a fixed, derandomised profile, so CI runs the same bounded set of cases.
try:
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci")
except ImportError:  # hypothesis is in the test extra; without it those tests skip
    pass
