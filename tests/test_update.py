"""Incremental updates (gibbslda.update, LDA.update): growth, fold-in against the slow
reference, sweeps over the touched users only, decay by thinning, learned priors,
reproducibility and composition with save / load / resume, and bad input.

Expected values are built here from the events by loops (or by tests/reference.py), never
with the library's own helpers.
"""
from __future__ import annotations

import datetime
from collections import Counter

import numpy as np
import polars as pl
import pytest

from gibbslda import LDA, Corpus, NotFittedError
from gibbslda import sampler as _sampler
from tests import reference

K = 3
SEED = 7
HOUR = datetime.timedelta(hours=1)
T0 = datetime.datetime(2024, 1, 1)


def _lists(rng, n_users, n_items, offset=0):
    return [[f"i{w + offset:02d}" for w in rng.integers(0, n_items, rng.integers(2, 9))]
            for _ in range(n_users)]


def _corpus(lists, user_ids):
    return Corpus.from_lists(lists, user_ids=np.asarray(user_ids))


@pytest.fixture
def base():
    """20 users (ids 0, 3, ..., 57) over 15 items, about 100 tokens."""
    rng = np.random.default_rng(1)
    return _corpus(_lists(rng, 20, 15), 3 * np.arange(20))


@pytest.fixture
def batch():
    """Events of 5 known users and 4 new ones (ids 100..), over old and 5 new items."""
    rng = np.random.default_rng(2)
    return _corpus(_lists(rng, 9, 20), [3, 9, 15, 30, 57, 100, 101, 102, 103])


def _fit(corpus, **settings):
    settings = {"n_iter": 10, "random_state": SEED, "sampler": "dense"} | settings
    return LDA(K, **settings).fit(corpus)


def _histories(corpus):
    """{user id: Counter of item ids} of a corpus, by a loop."""
    out = {}
    for d, uid in enumerate(corpus.user_ids):
        items = corpus.item_ids[corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]]]
        out[uid] = Counter(items.tolist())
    return out


# -- growth -----------------------------------------------------------------------------
@pytest.mark.parametrize("sampler,shards", [("dense", 1), ("sparse", 1), ("mh", 1),
                                            ("warp", 1), ("dense", 2)])
def test_update_grows_users_items_and_histories(base, batch, sampler, shards):
    model = _fit(base, sampler=sampler, n_shards=shards)
    model.update(batch, n_iter=4)
    expected = _histories(base)
    for uid, items in _histories(batch).items():
        expected[uid] = expected.get(uid, Counter()) + items
    assert _histories(model.corpus_) == expected
    assert list(model.user_ids_[:20]) == list(3 * np.arange(20))  # old users keep index
    assert list(model.user_ids_[20:]) == [100, 101, 102, 103]
    new_items = sorted(set(batch.item_ids) - set(base.item_ids))
    assert list(model.item_ids_) == list(base.item_ids) + new_items
    report = model.last_update_
    assert (report.users_added, report.items_added) == (4, len(new_items))
    assert report.tokens_added == batch.n_tokens and report.sweeps == 4
    assert model.state_.sampler == sampler and model.n_updates_ == 1
    _sampler.check_state(model.state_)  # every count agrees with z
    assert report.topics_after.sum() == base.n_tokens + batch.n_tokens
    np.testing.assert_array_equal(report.topics_after, np.bincount(model.z_, minlength=K))
    for d in range(model.corpus_.n_users):  # items in order within each user
        words = model.corpus_.words[model.corpus_.indptr[d]:model.corpus_.indptr[d + 1]]
        assert np.all(np.diff(words) >= 0)


def test_fold_in_matches_the_reference(base, batch):
    model = _fit(base, alpha=[0.3, 0.2, 0.5], beta=0.05)
    before_z = model.z_.copy()
    rng_state = model.rng_state_[0].copy()
    model.update(batch, n_iter=0)  # fold-in only
    old_items = list(base.item_ids)
    new_items = sorted(set(batch.item_ids) - set(old_items))
    index = {w: i for i, w in enumerate(old_items + new_items)}
    n_wk = {}
    for w, k in zip(base.words, before_z):
        n_wk.setdefault(int(w), [0] * K)[k] += 1
    n_k = np.bincount(before_z, minlength=K).tolist()
    old_users = list(base.user_ids)
    order = old_users + [u for u in batch.user_ids if u not in old_users]
    by_user = _histories(batch)
    touched = [u for u in order if u in by_user]
    users = []
    for uid in touched:
        old = []
        if uid in old_users:
            d = old_users.index(uid)
            old = before_z[base.indptr[d]:base.indptr[d + 1]].tolist()
        new = sorted(index[w] for w, c in by_user[uid].items() for _ in range(c))
        users.append((old, new))
    expected = reference.update_fold_in(users, n_wk, n_k, [0.3, 0.2, 0.5], 0.05,
                                        len(index), rng_state)
    corpus = model.corpus_
    for uid, (old, new), want in zip(touched, users, expected):
        d = list(corpus.user_ids).index(uid)
        words = corpus.words[corpus.indptr[d]:corpus.indptr[d + 1]].tolist()
        z = model.z_[corpus.indptr[d]:corpus.indptr[d + 1]].tolist()
        seen = Counter(base.words[base.indptr[old_users.index(uid)]:
                                  base.indptr[old_users.index(uid) + 1]].tolist()
                       ) if uid in old_users else Counter()
        got = []
        for w, k in zip(words, z):  # per item: the old tokens first, then the new ones
            if seen[w] > 0:
                seen[w] -= 1
            else:
                got.append(k)
        assert got == want, uid
    untouched = [d for d, u in enumerate(old_users) if u not in by_user]
    for d in untouched:  # old tokens keep their topics
        a, b = base.indptr[d], base.indptr[d + 1]
        e = corpus.indptr[d]
        np.testing.assert_array_equal(model.z_[e:e + b - a], before_z[a:b])


@pytest.mark.parametrize("sampler", ["dense", "sparse", "mh", "warp", "vector"])
def test_sweeps_touch_only_the_users_of_the_update(base, batch, sampler):
    model = _fit(base, sampler=sampler)
    before = model.z_.copy()
    model.update(batch, n_iter=6, scope="users")
    old_users = list(base.user_ids)
    touched = set(batch.user_ids)
    for d, uid in enumerate(old_users):
        a, b = model.corpus_.indptr[d], model.corpus_.indptr[d + 1]
        if uid not in touched:
            np.testing.assert_array_equal(model.z_[a:b],
                                          before[base.indptr[d]:base.indptr[d + 1]])
    assert model.last_update_.users_swept == len(touched)
    lengths = [model.corpus_.lengths[list(model.user_ids_).index(u)] for u in touched]
    assert model.last_update_.tokens_swept == sum(lengths)  # all their tokens
    # with refresh=1 every user is swept
    model.update(batch, n_iter=1, refresh=1.0)
    assert model.last_update_.users_swept == model.corpus_.n_users


def test_update_moves_a_touched_user_and_learns_priors(base, batch):
    fixed = _fit(base)
    fixed.update(batch, n_iter=3)
    np.testing.assert_array_equal(fixed.alpha_, [0.1] * K)
    assert fixed.beta_ == 0.01
    auto = _fit(base, alpha="auto", beta="auto", optimize_burn_in=2, optimize_every=2)
    alpha, beta = auto.alpha_.copy(), auto.beta_
    auto.update(batch, n_iter=3)
    assert not np.array_equal(auto.alpha_, alpha) and auto.beta_ != beta  # still learned


# -- decay ------------------------------------------------------------------------------
def _timed(n_users, n_per_user, times, items=20, seed=0, first_user=0):
    rng = np.random.default_rng(seed)
    rows = [(first_user + u, f"i{rng.integers(items):02d}", times[(u * n_per_user + j)
                                                                 % len(times)])
            for u in range(n_users) for j in range(n_per_user)]
    frame = pl.DataFrame(rows, schema=["user_id", "item_id", "time"], orient="row")
    return Corpus.from_frame(frame, time="time")


def test_decay_factor_thins_old_tokens_binomially():
    corpus = _timed(100, 40, [T0])
    model = _fit(corpus)
    model.update(_timed(5, 2, [T0 + HOUR], first_user=1000), n_iter=0, decay=0.5)
    n = corpus.n_tokens
    kept = model.corpus_.n_tokens - 10
    assert model.last_update_.tokens_faded == n - kept
    # Binomial(4000, 0.5): sd 31.6; 5 sd leaves a false failure at about 6e-7
    assert abs(kept - 0.5 * n) < 5 * np.sqrt(n * 0.25)
    _sampler.check_state(model.state_)
    full = _fit(corpus)
    full.update(_timed(5, 2, [T0 + HOUR], first_user=1000), n_iter=0, decay=1.0)
    assert full.corpus_.n_tokens == n + 10  # a factor of 1 keeps everything


def test_half_life_keeps_by_age_and_remembers_the_last_decay():
    # half the old tokens are at the update's time (age 0), half 2 hours older
    corpus = _timed(100, 40, [T0 + 2 * HOUR, T0])
    model = _fit(corpus)
    times = model.corpus_.times.copy()
    model.update(_timed(5, 2, [T0 + 2 * HOUR], first_user=1000), n_iter=0, decay=HOUR)
    left = Counter(model.corpus_.times.tolist())
    start = Counter(times.tolist())
    recent, old = (int(np.datetime64(t, "us").astype(np.int64)) for t in
                   (T0 + 2 * HOUR, T0))
    assert left[recent] == start[recent] + 10  # age 0: all kept, and the 10 new ones
    n = start[old]
    # age 2 half-lives: Binomial(2000, 0.25), sd 19.4; 5 sd: false failure about 6e-7
    assert abs(left[old] - 0.25 * n) < 5 * np.sqrt(n * 0.25 * 0.75)
    assert model.decayed_to_ == recent
    # one hour later every surviving old token is thinned by one half-life, whatever its
    # own time: the decay before already accounted for the time up to decayed_to_
    survivors = model.corpus_.n_tokens
    model.update(_timed(1, 1, [T0 + 3 * HOUR], first_user=2000), n_iter=0, decay=2 * HOUR)
    kept = model.corpus_.n_tokens - 1
    p = 2 ** -0.5
    assert abs(kept - p * survivors) < 5 * np.sqrt(survivors * p * (1 - p))


# -- reproducibility and composition ----------------------------------------------------
def _steps():
    rng = np.random.default_rng(3)
    first = _timed(9, 6, [T0 + HOUR, T0 + 2 * HOUR], items=25, first_user=15)
    second = _timed(6, 5, [T0 + 3 * HOUR], items=30, seed=int(rng.integers(100)),
                    first_user=5)
    return [(first, {"n_iter": 3}), (second, {"n_iter": 4, "decay": HOUR, "refresh": 0.3})]


def _same(a, b):
    for name in ("z_", "rng_state_", "alpha_", "user_ids_", "item_ids_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.beta_ == b.beta_
    np.testing.assert_array_equal(a.corpus_.times, b.corpus_.times)
    np.testing.assert_array_equal(a.corpus_.indptr, b.corpus_.indptr)


@pytest.mark.parametrize("settings", [{"sampler": "dense"}, {"sampler": "warp"},
                                      {"sampler": "sparse", "alpha": "auto", "beta": "auto",
                                       "optimize_burn_in": 2, "optimize_every": 2},
                                      {"sampler": "mh", "n_shards": 2}])
def test_save_load_update_resume_compose_bit_for_bit(settings, tmp_path):
    corpus = _timed(30, 6, [T0, T0 + HOUR], items=20)
    in_memory = _fit(corpus, **settings)
    for new, options in _steps():
        in_memory.update(new, **options)
    in_memory.resume(3)

    again = _fit(corpus, **settings)
    for i, (new, options) in enumerate(_steps()):
        again.save(tmp_path / f"m{i}")
        again = LDA.load(tmp_path / f"m{i}")
        again.update(new, **options)
    again.save(tmp_path / "last")
    again = LDA.load(tmp_path / "last")
    assert again.n_updates_ == 2 and again.decayed_to_ == in_memory.decayed_to_
    again.resume(3)
    _same(in_memory, again)
    _sampler.check_state(again.state_)


def test_same_updates_give_the_same_model_and_another_seed_differs(base, batch):
    a, b, c = _fit(base), _fit(base), _fit(base, random_state=SEED + 1)
    for model in (a, b, c):
        model.update(batch, n_iter=5, decay=0.9, refresh=0.5)
    _same(a, b)
    assert not np.array_equal(a.z_, c.z_)


def test_callback_sees_every_sweep_and_can_stop(base, batch):
    seen = []
    model = _fit(base)
    model.update(batch, n_iter=5, callback=lambda info: seen.append(info) or len(seen) < 2)
    assert [info.iteration for info in seen] == [1, 2] and seen[0].n_iter == 5
    assert model.last_update_.sweeps == 2
    _sampler.check_state(model.state_)


def test_a_frame_update_and_the_fitted_attributes(base):
    model = _fit(base)
    frame = pl.DataFrame({"user_id": [0, 0, 999], "item_id": ["i01", "zz", "zz"],
                          "weight": [2, 1, 3]})
    model.update(frame, n_iter=2)
    d = list(model.user_ids_).index(999)
    assert model.corpus_.lengths[d] == 3 and model.item_ids_[-1] == "zz"
    theta = model.doc_topic_
    assert theta.shape == (21, K) and np.allclose(theta.sum(axis=1), 1.0, atol=1e-12)
    assert model.topic_word_.shape == (K, base.n_items + 1)


# -- bad input --------------------------------------------------------------------------
BAD = [
    ("user ids are strings but the model's are integers",
     lambda: _corpus([["i01"]], ["a"]), {}, TypeError),
    ("negative weights", lambda: pl.DataFrame({"user_id": [0], "item_id": ["i01"],
                                               "weight": [-1]}), {}, ValueError),
    ("null ids", lambda: pl.DataFrame({"user_id": [None, 1], "item_id": ["i01", "i02"]}),
     {}, ValueError),
    ("holds no events", lambda: Corpus.from_lists([[]], user_ids=[0], drop_empty=False), {},
     ValueError),
    ("decay must be a factor", lambda: _corpus([["i01"]], [0]), {"decay": 0.0}, ValueError),
    ("decay must be None", lambda: _corpus([["i01"]], [0]), {"decay": "1d"}, TypeError),
    ("half-life must be positive", lambda: _corpus([["i01"]], [0]),
     {"decay": datetime.timedelta(0)}, ValueError),
    ("needs event times", lambda: _corpus([["i01"]], [0]), {"decay": HOUR}, ValueError),
    ("refresh must be in", lambda: _corpus([["i01"]], [0]), {"refresh": 2}, ValueError),
    ("n_iter", lambda: _corpus([["i01"]], [0]), {"n_iter": -1}, ValueError),
    ("needs columns user_id and item_id", lambda: pl.DataFrame({"user": [0], "item_id":
                                                                ["i01"]}), {}, ValueError),
]


@pytest.mark.parametrize("match,new,options,error", BAD, ids=[b[0] for b in BAD])
def test_bad_updates_raise_one_line_and_leave_the_model(base, match, new, options, error):
    model = _fit(base)
    z, rng, corpus = model.z_.copy(), model.rng_state_.copy(), model.corpus_
    with pytest.raises(error, match=match) as info:
        model.update(new(), **options)
    assert "\n" not in str(info.value)
    np.testing.assert_array_equal(model.z_, z)
    np.testing.assert_array_equal(model.rng_state_, rng)
    assert model.corpus_ is corpus and "last_update_" not in model.__dict__


def test_a_model_with_times_needs_them_in_updates_and_unfitted_refuses():
    model = _fit(_timed(5, 4, [T0]))
    with pytest.raises(ValueError, match="have none"):
        model.update(_corpus([["i01"]], [0]))
    with pytest.raises(NotFittedError):
        LDA(K).update(_corpus([["i01"]], [0]))


def test_update_kernels_compile_once():
    from gibbslda._kernels import update as kernels

    for kernel in (kernels.fold_in_tokens, kernels.uniforms):
        assert len(kernel.signatures) == 1, kernel


@pytest.mark.parametrize("sampler", ["dense", "sparse", "mh", "warp", "vector"])
def test_scope_new_resamples_only_the_new_tokens(base, batch, sampler):
    model = _fit(base, sampler=sampler)
    before = model.z_.copy()
    folded = _fit(base, sampler=sampler)
    folded.update(batch, n_iter=0)
    model.update(batch, n_iter=8, scope="new")
    old_users = list(base.user_ids)
    corpus = model.corpus_
    for d, uid in enumerate(old_users):  # old tokens (first of each item) keep topics
        seen = Counter(base.words[base.indptr[d]:base.indptr[d + 1]].tolist())
        a, b = corpus.indptr[d], corpus.indptr[d + 1]
        kept = [k for w, k in zip(corpus.words[a:b], model.z_[a:b]) if seen[w] and
                not seen.subtract([w])]
        np.testing.assert_array_equal(np.sort(kept),
                                      np.sort(before[base.indptr[d]:base.indptr[d + 1]]))
    assert model.last_update_.tokens_swept == batch.n_tokens
    assert not np.array_equal(model.z_, folded.z_)  # the sweeps moved new tokens
    _sampler.check_state(model.state_)


def test_an_updated_model_recommends_for_new_users_and_items(base, batch):
    from gibbslda.recommend import recommend

    model = LDA(K, n_iter=20, random_state=SEED).fit(base)  # with posterior samples
    model.update(batch, n_iter=3)
    recs = recommend(model, [101, 3], n=5)
    assert recs.height == 10 and set(recs["user_id"].to_list()) == {101, 3}
    assert set(recs["item_id"].to_list()) <= set(model.item_ids_)


@pytest.mark.parametrize("n_iter", [0, 20])
def test_new_items_join_their_planted_interest(n_iter):
    from gibbslda.synthetic import planted_corpus

    planted = planted_corpus(300, 60, 3, mean_length=30, alpha=0.1, seed=11)
    c = planted.corpus
    users = np.repeat(np.arange(c.n_users), c.lengths)
    freq = np.bincount(c.words, minlength=60)
    block = np.argmax(planted.topic_word, axis=0)  # each item's planted interest
    hidden = np.concatenate([np.flatnonzero(block == k)[np.argsort(-freq[block == k])[:3]]
                             for k in range(3)])
    late = np.isin(c.words, hidden) | (users >= 200)

    def lists(mask):
        return [[int(w) for w in c.words[(users == d) & mask]] for d in range(300)]
    base = Corpus.from_lists([items for items in lists(~late)[:200]],
                             user_ids=np.arange(200))
    new = [(d, items) for d, items in enumerate(lists(late)) if items]
    model = LDA(3, n_iter=100, random_state=SEED, sampler="dense").fit(base)
    model.update(Corpus.from_lists([i for _, i in new], user_ids=[d for d, _ in new]),
                 n_iter=n_iter)
    n_wk = model.n_wk_
    items = list(model.item_ids_)
    # each learned interest is the planted block holding most of its tokens
    learned = np.array([np.argmax(np.bincount(block[np.asarray(items)], weights=n_wk[:, k],
                                              minlength=3)) for k in range(3)])
    assert sorted(learned) == [0, 1, 2]
    for w in hidden:
        # a planted item's tokens all come from its own interest (planted_corpus's default
        # overlap is 0) and each of these has 233 to 1326: a chain that placed them by
        # their users' interests has its largest count there, whatever the seed
        assert learned[np.argmax(n_wk[items.index(w)])] == block[w], w
