"""The numba kernels against the slow pure-Python reference: exact equality."""
import numpy as np
import pytest

from gibbslda import _kernels, _rng, sampler
from tests import reference
from tests.conftest import csr_from_docs
from tests.stats import exact_posterior

CORPORA = {
    "tiny": ([[0, 1, 0], [1, 2], [2, 2, 3, 0], [3]], 4),
    "one-user": ([[0, 0, 1, 2, 2, 2]], 3),
    "one-token-users": ([[0], [1], [2], [0]], 3),
    # drawn once with default_rng(3).integers(0, 12, size=n), n = 1, 7, 15, 3, 30, 2, 9
    "random": ([[9], [9, 1, 2, 2, 2, 9, 10], [9, 1, 2, 2, 2, 9, 10, 6, 0, 1, 3, 5, 7, 5, 3],
                [9, 1, 2], [9, 1, 2, 2, 2, 9, 10, 6, 0, 1, 3, 5, 7, 5, 3, 1, 8, 8, 0, 1, 5,
                            4, 10, 6, 5, 5, 7, 7, 2, 8], [9, 1],
                [9, 1, 2, 2, 2, 9, 10, 6, 0]], 12),
}


def test_rng_stream_matches_python():
    state = _rng.seed_streams(12345, 0, 2)
    ref = [reference.Xoshiro256(row) for row in state]
    for s in range(2):
        fast = [sampler_uniform(state[s]) for _ in range(1000)]
        slow = [ref[s].uniform() for _ in range(1000)]
        assert fast == slow
    assert not np.array_equal(_rng.seed_streams(1, 0, 1), _rng.seed_streams(2, 0, 1))
    assert not np.array_equal(_rng.seed_streams(1, 0, 1), _rng.seed_streams(1, 1, 1))


def sampler_uniform(stream):
    return float(_rng.uniform(stream))


@pytest.mark.parametrize("name", sorted(CORPORA))
@pytest.mark.parametrize("n_topics,alpha,beta", [
    (2, 0.5, 0.1),
    (3, [0.05, 0.5, 2.0], 0.01),
    (7, 0.1, 1.0),
])
def test_sweep_equals_reference(name, n_topics, alpha, beta):
    docs, n_items = CORPORA[name]
    indptr, words = csr_from_docs(docs)
    alpha = sampler.as_alpha(alpha, n_topics)
    rng = _rng.seed_streams(99, 0, 1)
    ref = reference.ReferenceLDA(docs, n_topics, n_items, alpha, beta, rng[0].copy())
    state = sampler.init_state(indptr, words, n_topics, n_items, alpha=alpha, beta=beta,
                               rng=rng.copy())
    for step in range(25):
        assert state.z.tolist() == [k for topics in ref.z for k in topics], f"sweep {step}"
        assert state.n_dk().tolist() == ref.n_dk
        assert state.n_wk.tolist() == ref.n_wk
        assert state.n_k.tolist() == ref.n_k
        # lgamma in numba (libm) and CPython (its own) may differ in the last bits.
        assert sampler.log_joint(state) == pytest.approx(ref.log_joint(), rel=1e-12)
        sampler.sweep(state)
        ref.sweep()
    assert state.rng[0].tolist() == ref.rng.s


def test_fold_in_equals_reference():
    docs = [[0, 1, 1], [], [2, 0, 2, 2, 1], [1]]
    indptr, words = csr_from_docs(docs)
    phi = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]])
    alpha = np.array([0.1, 0.5, 1.0])
    rng = _rng.seed_streams(5, 1, 1)
    fast = sampler.fold_in(indptr, words, phi, alpha, n_iter=30, burn_in=5, rng=rng.copy())
    slow = reference.fold_in(docs, phi.tolist(), alpha.tolist(), 30, 5, rng[0])
    np.testing.assert_array_equal(fast, np.array(slow))
    np.testing.assert_allclose(fast[1], alpha / alpha.sum())  # no tokens: the prior mean


def test_log_joint_is_exact_on_hand_counts():
    # One user, tokens [0, 0], both on topic 0 of K=2, V=2, alpha=1, beta=1:
    # word part: topic 0: G(2)/G(2+2) * G(2+1)/G(1) = 1/6 * 2 = 1/3; topic 1: 1.
    # doc part: G(2)/G(2+2) * G(2+1)/G(1) * 1 = 1/3.  log p = log(1/9).
    # The item counts come flattened (dense, shift 0) or packed as count << 1 | topic
    # (the sparse sampler's rows at K = 2: one entry 2 << 1 | 0, and an unused slot).
    z = np.array([0, 0], dtype=np.int32)
    n_k = np.array([2, 0], dtype=np.int64)
    dense = np.array([2, 0, 0, 0], dtype=np.int32)
    packed = np.array([2 << 1 | 0, 0 << 1 | 1], dtype=np.int32)
    for counts, shift in ((dense, 0), (packed, 1)):
        value = _kernels.log_joint(np.array([0, 2], dtype=np.int64), z, counts,
                                   np.int64(shift), np.int64(2), n_k, np.ones(2), 1.0)
        assert value == pytest.approx(np.log(1 / 9), rel=1e-12)


# The packed rows' two edges: "random" has items of frequency above K = 3 (a row holds all K
# topics) and below K = 7 (a row is full at its frequency).
@pytest.mark.parametrize("name", ["tiny", "random"])
@pytest.mark.parametrize("n_topics,alpha,beta", [(3, [0.05, 0.5, 2.0], 0.01), (7, 0.1, 1.0)])
@pytest.mark.parametrize("n_shards", [1, 2, 3])
@pytest.mark.parametrize("sampler_name", ["dense", "sparse", "mh"])
def test_every_sampler_and_schedule_equals_reference(sampler_name, n_shards, name, n_topics,
                                                     alpha, beta):
    """Each sampler, serial or sharded, against the reference of the same schedule: the
    reordered tokens, every topic, every count and every stream state, bit for bit."""
    docs, n_items = CORPORA[name]
    indptr, words = csr_from_docs(docs)
    alpha = sampler.as_alpha(alpha, n_topics)
    rng = _rng.seed_streams(7, 0, n_shards)
    ref = reference.ReferenceLDA(docs, n_topics, n_items, alpha, beta, rng.copy(),
                                 sampler=sampler_name, n_shards=n_shards, mh_steps=3)
    state = sampler.init_state(indptr, words, n_topics, n_items, alpha=alpha, beta=beta,
                               rng=rng.copy(), sampler=sampler_name, n_shards=n_shards,
                               mh_steps=3)
    assert state.words.tolist() == [w for doc in ref.docs for w in doc]
    for step in range(12):
        assert state.z.tolist() == [k for topics in ref.z for k in topics], f"sweep {step}"
        assert state.item_topic_counts().tolist() == ref.n_wk
        assert state.n_k.tolist() == ref.n_k
        sampler.sweep(state)
        ref.sweep()
    assert state.rng.tolist() == [stream.s for stream in ref.rngs]


def test_reference_partition_and_laws():
    """The reference's own pieces on hand-worked cases.

    Partition: users of lengths 2, 2, 3 and 3 shards: targets 7/3 and 14/3, so the running
    totals 2, 4, 7 put one user in each block. A sweep's exact law with one
    shard leaves the enumerated posterior invariant (detailed balance of Gibbs and MH), and
    so does a two-shard law whose first shard owns no user: one shard, one exact n_k.
    """
    assert reference.shard_bounds([2, 2, 3], 3) == [0, 1, 2, 3]
    assert reference.shard_bounds([1, 0, 5], 2) == [0, 2, 3]  # running 1, 1, 6 against 3
    docs, block = reference.layout([[2, 0, 1]], 3, 2)[::2]
    assert block == [0, 1, 1] and docs == [[0, 2, 1]]  # frequencies 1, 1, 1: target 1.5
    # frequencies 2, 0, 1: bounds 0, 0, 3, so block 0 is empty and every item is in block 1
    assert reference.layout([[0, 2, 0]], 3, 2)[2] == [1, 1, 1]
    docs, alpha, beta = [[0, 1, 0], [1, 2]], [0.2, 0.6, 1.5], 0.3
    posterior = exact_posterior(docs, 3, 3, alpha, beta)
    for name in ("dense", "mh"):
        law = np.array(reference.sweep_matrix(docs, 3, 3, alpha, beta, sampler=name))
        np.testing.assert_allclose(posterior @ law, posterior, atol=1e-12)
    assert reference.layout(docs, 3, 2)[1] == [0, 0, 2]  # running 3, 5 against 2.5
    docs = reference.layout(docs, 3, 2)[0]
    posterior = exact_posterior(docs, 2, 3, alpha[:2], beta)
    law = np.array(reference.sweep_matrix(docs, 2, 3, alpha[:2], beta, n_shards=2))
    np.testing.assert_allclose(posterior @ law, posterior, atol=1e-12)
