"""Memory of building a corpus and starting a chain, measured with tracemalloc.

numpy reports its array buffers to tracemalloc, and these paths allocate nothing else of
size (no polars), so the traced peak is the peak of the arrays they build, deterministic
for a given input. The goal (issue 14): at most 24 bytes a token above what the caller
holds, on a corpus large enough that per-user and per-item arrays do not decide it.
"""

import numpy as np
import pytest

from gibbslda import sampler
from gibbslda.corpus import Corpus
from tests.conftest import traced_peak

LIMIT = 24  # bytes a token at peak (issue 14)
N_USERS, N_ITEMS, MEAN_LENGTH = 4_000, 2_000, 50  # about 200k tokens


def _csr(seed: int, *, shuffled: bool):
    """A users x items count matrix as a CSR triplet: each user's items drawn with Zipf
    popularity and counted, columns ascending (or shuffled within each row)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 2 * MEAN_LENGTH, N_USERS)
    pop = 1.0 / np.arange(1, N_ITEMS + 1)
    items = rng.choice(N_ITEMS, size=int(lengths.sum()), p=pop / pop.sum())
    users = np.repeat(np.arange(N_USERS), lengths)
    keys, counts = np.unique(users * N_ITEMS + items, return_counts=True)
    rows, cols = keys // N_ITEMS, keys % N_ITEMS
    if shuffled:
        order = np.lexsort((rng.random(rows.shape[0]), rows))
        cols, counts = cols[order], counts[order]
    indptr = np.zeros(N_USERS + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=N_USERS), out=indptr[1:])
    return indptr, cols.astype(np.int32), counts.astype(np.int64)


@pytest.fixture(scope="module")
def csr():
    return _csr(0, shuffled=False)


@pytest.fixture(scope="module")
def corpus(csr):
    return Corpus.from_csr(*csr, n_items=N_ITEMS)


@pytest.fixture(scope="module", autouse=True)
def _compiled(csr):
    """Compile (or load) every kernel outside the traced calls: compiling allocates."""
    tiny = (np.array([0, 2, 3]), np.array([1, 0, 1], dtype=np.int32), np.array([1, 2, 1]))
    Corpus.from_csr(*tiny)
    sampler.warm_up()


def peak_per_token(call, n_tokens: int) -> float:
    """Traced peak of ``call()`` above what was allocated before it, per token."""
    return traced_peak(call) / n_tokens


@pytest.mark.parametrize("shuffled", [False, True])
def test_from_csr_peak(csr, corpus, shuffled):
    """A scipy-style CSR (int32 columns, int64 counts): the corpus's own arrays (4 bytes
    a token) and a few per-user ones; rows out of order are sorted one at a time."""
    triplet = _csr(0, shuffled=True) if shuffled else csr
    assert corpus.n_tokens > 150_000
    built = {}
    per_token = peak_per_token(
        lambda: built.update(c=Corpus.from_csr(*triplet, n_items=N_ITEMS)), corpus.n_tokens)
    np.testing.assert_array_equal(built["c"].words, corpus.words)
    assert per_token <= LIMIT, f"Corpus.from_csr peaked at {per_token:.1f} B/token"


@pytest.mark.parametrize("name,n_topics,n_shards", [
    ("dense", 10, 1), ("sparse", 100, 1), ("sparse", 100, 3), ("mh", 50, 1),
    ("warp", 100, 1)])
def test_init_state_peak(corpus, name, n_topics, n_shards):
    """Starting a chain: z, the sampler's layout and what building it holds (an int32
    index a token); dense V x K counts are 4 V K bytes (80-400 kB here)."""
    per_token = peak_per_token(
        lambda: sampler.init_state(corpus.indptr, corpus.words, n_topics, N_ITEMS, seed=0,
                                   sampler=name, n_shards=n_shards), corpus.n_tokens)
    assert per_token <= LIMIT, f"init_state({name}, P={n_shards}) peaked at " \
                               f"{per_token:.1f} B/token"


def test_reordering_shards_stays_within_the_limit(corpus):
    """Tokens not in item-block order (raw arrays, not a Corpus) are reordered by a
    counting sort: an int64 order and int32 copies of words and z."""
    rng = np.random.default_rng(1)
    words = rng.permutation(corpus.words)  # users keep their lengths, items move
    per_token = peak_per_token(
        lambda: sampler.init_state(corpus.indptr, words, 20, N_ITEMS, seed=0,
                                   sampler="dense", n_shards=3), corpus.n_tokens)
    assert per_token <= LIMIT, f"reordering for 3 shards peaked at {per_token:.1f} B/token"


@pytest.mark.parametrize("name,per_token", [
    ("dense", 8), ("sparse", 12), ("mh", 16), ("warp", 12)])
def test_state_bytes_a_token(corpus, name, per_token):
    """What a chain holds a token (words int32 is the corpus's own array, not a copy):
    words + z, plus the packed rows (sparse, at most 4), the item-major mirror and its
    index (mh, 8) or the item-major order (warp, 4). Per-user, per-item and V x K arrays
    are left out."""
    state = sampler.init_state(corpus.indptr, corpus.words, 50, N_ITEMS, seed=0,
                               sampler=name)
    assert state.words is corpus.words
    token_arrays = [state.words, state.z]
    if name == "sparse":
        token_arrays.append(state.layout["wc"][1])
    if name == "mh":
        token_arrays += list(state.layout["wi"][1:])
    if name == "warp":
        token_arrays.append(state.layout["warp"][1])
    assert sum(a.nbytes for a in token_arrays) <= per_token * corpus.n_tokens


def test_layout_kernels_compile_once():
    """Odd input dtypes, unsorted rows, frames, every sampler with one shard and two,
    restore: one signature each (pack_rows also compiles an int64-row one when an item
    has millions of tokens, tested in a subprocess in test_samplers)."""
    import polars as pl

    from gibbslda._kernels import layout as kernels

    odd = (np.array([0, 2, 3], dtype=np.int32), np.array([3, 0, 1], dtype=np.uint16),
           np.array([1, 2, 5], dtype=np.uint8))
    Corpus.from_csr(*odd)
    Corpus.from_frame(pl.DataFrame({"user_id": ["a", "b", "a"], "item_id": [3, 1, 3]}))
    Corpus.from_lists([["x", "y", "x"], ["y"]])
    for name in ("dense", "sparse", "mh", "warp", "vector"):
        for n_shards in (1, 2) if name != "warp" else (1,):
            indptr, words = np.array([0, 2, 3], np.uint8), np.array([3, 0, 1], np.int16)
            state = sampler.init_state(indptr, words, 3, 4, seed=0, sampler=name,
                                       n_shards=n_shards)
            sampler.restore_state(indptr, words, state.z.astype(np.int64), 3, 4,
                                  alpha=0.1, beta=0.01, rng=state.rng, sampler=name,
                                  n_shards=n_shards)
    for kernel in (kernels.item_freq, kernels.item_order, kernels.mirror,
                   kernels.cell_offsets, kernels.block_order, kernels.row_sums,
                   kernels.row_tokens, kernels.group_rows, kernels.count_topics):
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)
