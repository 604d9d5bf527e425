"""The public array layer (gibbslda.sampler) refuses bad input before any kernel runs.

(a) One test per invalid argument of each public function: a ValueError or TypeError that
names the argument. (b) A hypothesis fuzz (derandomised) whose cases all run in ONE child
process, so a segfault or heap-corruption abort fails the test instead of killing pytest:
every case must return a sane result or raise ValueError/TypeError.

Not covered on purpose: an in-range topic or item written into a state by hand makes its
counts disagree with ``z``; ``sweep`` does not recount (see its docstring), and the sparse
sampler can then write past a packed row. ``sampler.check_state`` finds it.
"""
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gibbslda import sampler

INDPTR, WORDS = np.array([0, 3, 5]), np.array([0, 1, 0, 1, 2])
TOPIC_WORD = np.full((2, 3), 1 / 3)


def _state(name="dense", n_shards=1):
    # copies: the state uses arrays of the right dtype as they are, and tests poke them
    return sampler.init_state(INDPTR.copy(), WORDS.copy(), 2, 3, seed=0, sampler=name,
                              n_shards=n_shards)


def _rng(n=1):
    return np.ones((n, 4), dtype=np.uint64)


INIT = {"indptr": INDPTR, "words": WORDS, "n_topics": 2, "n_items": 3, "alpha": 0.5,
        "beta": 0.1, "seed": 0, "sampler": "dense", "n_shards": 1, "mh_steps": 2}
RESTORE = {**INIT, "z": np.array([0, 1, 1, 0, 1])}
FIXED = {"indptr": INDPTR, "words": WORDS, "topic_word": TOPIC_WORD, "alpha": 0.5,
         "seed": 0}


def _restore(indptr, words, z, n_topics, n_items, seed, **kwargs):
    n_shards = kwargs["n_shards"]
    default = _rng(n_shards if isinstance(n_shards, int) and n_shards > 0 else 1)
    return sampler.restore_state(indptr, words, z, n_topics, n_items,
                                 rng=kwargs.pop("rng", default), **kwargs)


def _init(indptr, words, n_topics, n_items, **kwargs):
    return sampler.init_state(indptr, words, n_topics, n_items, **kwargs)


def _fold_in(indptr, words, topic_word, alpha, **kwargs):
    return sampler.fold_in(indptr, words, topic_word, alpha, **{"n_iter": 3, "burn_in": 1,
                                                                **kwargs})


def _left_to_right(indptr, words, topic_word, alpha, **kwargs):
    return sampler.left_to_right(indptr, words, topic_word, alpha, **{"n_particles": 2,
                                                                      **kwargs})


BAD_CALLS = [  # (function, base arguments, changed argument, bad value, error)
    *[(f, base, arg, value, error) for f, base in ((_init, INIT), (_restore, RESTORE))
      for arg, value, error in [
          ("indptr", np.array([0, 4, 3, 5]), ValueError),
          ("indptr", np.array([1, 3, 5]), ValueError),
          ("indptr", np.array([0.0, 3.0, 5.0]), TypeError),
          ("indptr", np.array([[0, 3, 5]]), ValueError),
          ("words", np.array([0, 1, 0, 1, 3]), ValueError),
          ("words", np.array([0, 1, 0, 1, -1]), ValueError),
          ("words", np.array([0, 1, 0, 1, 2**32 + 1]), ValueError),
          ("words", np.array([0, 1, 0, 1, 0.5]), TypeError),
          ("words", np.array([0, 1, 0, 1]), ValueError),
          ("n_topics", 0, ValueError),
          ("n_topics", 2.0, TypeError),
          ("n_topics", 2**31, ValueError),
          ("n_items", 2, ValueError),
          ("n_items", -1, ValueError),
          ("n_items", "3", TypeError),
          ("alpha", float("nan"), ValueError),
          ("alpha", -1.0, ValueError),
          ("alpha", [0.5], ValueError),
          ("alpha", [0.5, float("inf")], ValueError),
          ("alpha", "flat", TypeError),
          ("beta", 0.0, ValueError),
          ("beta", float("nan"), ValueError),
          ("beta", "x", TypeError),
          ("sampler", "gpu", ValueError),
          ("n_shards", 0, ValueError),
          ("n_shards", 1.5, TypeError),
          ("mh_steps", 0, ValueError),
          ("rng", np.ones((2, 4), dtype=np.uint64), ValueError),
          ("rng", np.ones((1, 4)), ValueError),
          ("rng", np.zeros((1, 4), dtype=np.uint64), ValueError),
      ]],
    (_init, INIT, "seed", -1, ValueError),
    (_init, INIT, "seed", "x", TypeError),
    (_restore, RESTORE, "z", np.array([0, 1, 1, 0, 2]), ValueError),
    (_restore, RESTORE, "z", np.array([0, 1, 1, 0, -1]), ValueError),
    (_restore, RESTORE, "z", np.array([0, 1, 1, 0]), ValueError),
    (_restore, RESTORE, "z", np.array([0.0, 1, 1, 0, 1]), TypeError),
    *[(f, FIXED, arg, value, error) for f in (_fold_in, _left_to_right)
      for arg, value, error in [
          ("indptr", np.array([0, 9, 5]), ValueError),
          ("words", np.array([0, 1, 0, 1, 10**7]), ValueError),
          ("words", np.array([0, 1, 0, 1, 3]), ValueError),
          ("topic_word", np.full((2, 3), np.nan), ValueError),
          ("topic_word", -TOPIC_WORD, ValueError),
          ("topic_word", TOPIC_WORD[0], ValueError),
          ("topic_word", np.zeros((0, 3)), ValueError),
          ("topic_word", TOPIC_WORD.astype(str), TypeError),
          ("alpha", [0.5, 0.5, 0.5], ValueError),
          ("alpha", float("nan"), ValueError),
          ("seed", "x", TypeError),
          ("rng", np.ones(4), ValueError),
          ("rng", np.ones(6, dtype=np.uint64), ValueError),
          ("rng", np.ones((4, 2), dtype=np.uint64)[:, :1], ValueError),
      ]],
    (_fold_in, FIXED, "n_iter", 0, ValueError),
    (_fold_in, FIXED, "n_iter", 2.5, TypeError),
    (_fold_in, FIXED, "burn_in", -1, ValueError),
    (_fold_in, FIXED, "burn_in", 3, ValueError),
    (_left_to_right, FIXED, "n_particles", 0, ValueError),
    (_left_to_right, FIXED, "n_particles", True, TypeError),
]


class _NoKernels:
    """Stands in for gibbslda._kernels: a kernel reached means a check was missed (and
    in-process it could have crashed pytest instead of failing one test)."""

    def __getattr__(self, name):
        raise AssertionError(f"kernel {name} ran before the bad argument was refused")


@pytest.fixture
def no_kernels(monkeypatch):
    monkeypatch.setattr(sampler, "_kernels", _NoKernels())


@pytest.mark.parametrize("call,base,arg,value,error", BAD_CALLS, ids=[
    f"{c[0].__name__[1:]}-{c[2]}-{i}" for i, c in enumerate(BAD_CALLS)])
def test_invalid_argument_is_named(no_kernels, call, base, arg, value, error):
    with pytest.raises(error, match=arg):
        call(**{**base, arg: value})


def _swap(state, attr, value):
    """Replace a state's array (``layout.wc.1`` is the middle array of layout["wc"])."""
    if not attr.startswith("layout."):
        setattr(state, attr, value)
        return
    _, key, *index = attr.split(".")
    if index:
        parts = list(state.layout[key])
        parts[int(index[0])] = value
        value = tuple(parts)
    state.layout[key] = value


STATE_EDITS = [  # (sampler, attribute, new value or None, (index, value) poked in place)
    ("dense", "z", None, (0, 2)),
    ("dense", "z", None, (4, -1)),
    ("dense", "words", None, (4, 3)),
    ("dense", "indptr", None, (1, 9)),
    ("dense", "z", np.zeros(5, dtype=np.int64), None),
    ("dense", "z", np.zeros(4, dtype=np.int32), None),
    ("dense", "n_k", np.zeros(2, dtype=np.int32), None),
    ("dense", "n_wk", np.zeros((3, 1), dtype=np.int32), None),
    ("dense", "alpha", np.array([0.5, np.nan]), None),
    ("dense", "alpha", np.array([0.5]), None),
    ("dense", "beta", -1.0, None),
    ("dense", "rng", np.ones((2, 4), dtype=np.uint64), None),
    ("dense", "sampler", "gpu", None),
    ("dense", "n_shards", 2, None),
    ("dense", "mh_steps", 0, None),
    ("dense", "layout", {}, None),
    ("dense", "layout.cell_ptr", np.zeros((2, 2), dtype=np.int64), None),
    ("dense", "layout.doc_bounds", np.array([0, 3], dtype=np.int64), None),
    ("dense", "layout.wc", None, None),
    ("dense", "layout.wi.1", np.zeros(1, dtype=np.float64), None),
    ("sparse", "layout.wc.2", None, (0, 10**6)),
    ("sparse", "layout.wc.1", None, (0, -1)),
    ("sparse", "layout.wc.0", None, (3, 10**6)),
    ("mh", "layout.wi.1", None, (0, 5)),
    ("mh", "layout.wi.2", None, (0, -3)),
    ("mh", "layout.wi.0", None, (1, 99)),
]


@pytest.mark.parametrize("name,attr,value,poke", STATE_EDITS)
@pytest.mark.parametrize("call", [sampler.sweep, sampler.log_likelihood])
def test_a_state_edited_out_of_range_is_refused(monkeypatch, call, name, attr, value, poke):
    state = _state(name)
    monkeypatch.setattr(sampler, "_kernels", _NoKernels())
    if poke is not None:
        target = getattr(state, attr) if "." not in attr else state.layout[
            attr.split(".")[1]][int(attr.split(".")[2])]
        target[poke[0]] = poke[1]
    else:
        _swap(state, attr, value)
    with pytest.raises(ValueError, match=attr.split(".")[0]):
        call(state)


@pytest.mark.parametrize("not_a_state", [None, {"z": np.zeros(5)}, object()])
def test_sweep_needs_a_state(no_kernels, not_a_state):
    for call in (sampler.sweep, sampler.log_joint, sampler.log_likelihood):
        with pytest.raises(TypeError, match="state must be a GibbsState"):
            call(not_a_state)


def test_valid_inputs_keep_their_arrays_and_dtypes():
    indptr, words = INDPTR.astype(np.int64), WORDS.astype(np.int32)
    rng = _rng()
    state = sampler.init_state(indptr, words, 2, 3, rng=rng)
    assert state.indptr is indptr and state.words is words  # no copy when already right
    assert np.shares_memory(state.rng, rng)  # advanced in place, as documented
    odd = sampler.init_state(INDPTR.astype(np.uint8), WORDS.astype(np.int16), 2, 3, seed=0)
    assert odd.indptr.dtype == np.int64 and odd.words.dtype == np.int32
    frozen = WORDS.astype(np.int32)
    frozen.flags.writeable = False
    assert sampler.init_state(INDPTR, frozen, 2, 3, seed=0).words.flags.writeable


# -- the fuzz: one child process runs every case ------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

DTYPES = st.sampled_from(["int8", "int32", "int64", "uint16", "uint64", "float32",
                          "float64", "bool"])
ANY_ARRAY = DTYPES.flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=6)))
ODD = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=3),
                st.floats(allow_nan=True, allow_infinity=True), ANY_ARRAY)
# sizes stay small: a valid huge n_shards, n_iter or n_particles is slow, not wrong
SIZE = st.one_of(st.integers(-3, 8), st.booleans(), st.floats(allow_nan=True),
                 st.text(max_size=2), ANY_ARRAY)
SIZES = ("n_topics", "n_items", "n_shards", "mh_steps", "n_iter", "burn_in", "n_particles",
         "sampler", "beta")
WRAPS = st.sampled_from([None, None, None, "list", "strided", "readonly", "fortran"])


@st.composite
def corpora(draw):
    """A valid (indptr, words, n_items), small."""
    lengths = draw(st.lists(st.integers(0, 5), min_size=0, max_size=5))
    n_items = draw(st.integers(1, 6))
    words = draw(hnp.arrays(np.int64, sum(lengths), elements=st.integers(0, n_items - 1)))
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), words, n_items


def _ids_near(n):
    """1-D integer arrays of about n entries, small ids or ones far out of range."""
    def arrays(dtype):
        info = np.iinfo(dtype)
        far = st.integers(max(-2**33, int(info.min)), min(2**33, int(info.max)))
        return hnp.arrays(dtype, st.integers(max(n - 1, 0), n + 1),
                          elements=st.one_of(st.integers(max(-1, int(info.min)), 7), far))
    return st.sampled_from(["int8", "int32", "int64", "uint64"]).flatmap(arrays)


def _offsets(n):
    return st.one_of(_ids_near(3).map(np.sort), _ids_near(3),
                     st.lists(st.integers(-2, n + 2), min_size=1, max_size=6).map(np.array))


EDITS = ["indptr", "words", "z", "n_wk", "n_k", "alpha", "rng", "beta", "n_shards",
         "sampler", "mh_steps", "layout", "layout.cell_ptr", "layout.doc_bounds",
         "layout.wc.0", "layout.wc.1", "layout.wc.2", "layout.wi.0", "layout.wi.1",
         "layout.wi.2"]


FUNCTIONS = ("init_state", "restore_state", "fold_in", "left_to_right", "sweep")


@st.composite
def cases(draw, fn):
    """One call of ``fn``: valid arguments with up to two replaced by odd ones; or, for
    sweep, a valid state with one array or setting swapped, or one entry poked out of
    range."""
    indptr, words, n_items = draw(corpora())
    n_topics, n_shards = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    args = {"indptr": indptr, "words": words, "alpha": draw(st.floats(0.01, 2))}
    if fn in ("fold_in", "left_to_right"):
        args.update(topic_word=draw(hnp.arrays(np.float64, (n_topics, n_items),
                                               elements=st.floats(0, 1))),
                    seed=draw(st.integers(0, 5)), rng=None)
        args.update({"n_iter": 3, "burn_in": 1} if fn == "fold_in" else {"n_particles": 2})
    else:
        name = draw(st.sampled_from(sampler.SAMPLERS))
        n_shards = 1 if name == "warp" else n_shards  # warp refuses shards (test_warp)
        args.update(n_topics=n_topics, n_items=n_items, beta=draw(st.floats(0.01, 1)),
                    sampler=name, n_shards=n_shards, mh_steps=draw(st.integers(1, 3)))
    if fn == "restore_state":
        args["z"] = draw(hnp.arrays(np.int64, words.shape[0],
                                    elements=st.integers(0, n_topics - 1)))
        args["rng"] = np.ones((n_shards, 4), dtype=np.uint64)
    elif fn in ("init_state", "sweep"):
        args.update(seed=draw(st.integers(0, 5)), rng=None)
    if fn == "sweep":
        attr = draw(st.sampled_from(EDITS))
        edit = draw(st.one_of(  # pokes are out of range: see the module docstring
            st.tuples(st.just("swap"), SIZE if attr in SIZES else ODD),
            st.tuples(st.just("poke"), st.integers(0, 40), st.one_of(
                st.integers(-2**31, -1), st.integers(2**20, 2**31 - 1)))))
        return {"fn": fn, "args": args, "edit": (attr, *edit), "wrap": {}, "changed": []}
    bad = {"indptr": _offsets(words.shape[0]), "words": _ids_near(words.shape[0]),
           "z": _ids_near(words.shape[0]),
           "alpha": hnp.arrays(np.float64, st.integers(0, 5)),
           "rng": hnp.arrays(np.uint64, (n_shards, 4))}
    changed = draw(st.lists(st.sampled_from(sorted(args)), max_size=2, unique=True))
    for arg in changed:
        odd = SIZE if arg in SIZES else ODD
        args[arg] = draw(st.one_of(bad[arg], odd) if arg in bad else odd)
    wrap = {arg: draw(WRAPS) for arg in args if isinstance(args[arg], np.ndarray)}
    return {"fn": fn, "args": args, "edit": None, "wrap": wrap,
            "changed": changed + [arg for arg, how in wrap.items() if how]}


REGRESSIONS = [  # direct cases that crashed or were silently accepted before validation
    {"fn": "init_state", "args": {  # free(): invalid next size, or a segfault
        "indptr": INDPTR, "words": np.array([0, 1, 0, 1, 5_000_000]), "n_topics": 2,
        "n_items": 3, "seed": 0}, "changed": ["words"]},
    {"fn": "init_state", "args": {  # 2**32 + 1 silently became item 1
        "indptr": INDPTR, "words": np.array([0, 1, 0, 1, 2**32 + 1]), "n_topics": 2,
        "n_items": 3, "seed": 0}, "changed": ["words"]},
    {"fn": "fold_in", "args": {  # segfault
        "indptr": INDPTR, "words": np.array([0, 1, 0, 1, 10**7]), "topic_word": TOPIC_WORD,
        "alpha": 0.1}, "changed": ["words"]},
    {"fn": "fold_in", "args": {  # a decreasing indptr gave a negative theta
        "indptr": np.array([0, 9, 5]), "words": WORDS, "topic_word": TOPIC_WORD,
        "alpha": 0.1}, "changed": ["indptr"]},
    {"fn": "sweep", "edit": ("z", "poke", 0, 10**6), "args": {  # segfault
        "indptr": INDPTR, "words": WORDS, "n_topics": 2, "n_items": 3, "sampler": "sparse",
        "seed": 0}, "changed": []},
]


def _run_child(batch, tmp_path):
    path = tmp_path / "cases.pkl"
    path.write_bytes(pickle.dumps(batch))
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, __file__, str(path)], cwd=root, timeout=300,
                          capture_output=True, text=True)


def test_fuzzed_arguments_never_crash_the_process(tmp_path):
    batch = [{"edit": None, "wrap": {}, **case} for case in REGRESSIONS]
    for fn in FUNCTIONS:  # 25 cases each, all run by one child below

        @settings(max_examples=25, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(hypothesis.HealthCheck))
        @given(cases(fn))
        def collect(case):
            batch.append(case)

        collect()
    result = _run_child(batch, tmp_path)
    lines = [line.split("\t", 2) for line in result.stdout.splitlines()]
    started = [int(parts[0]) for parts in lines if parts[1] == "start"]
    assert result.returncode == 0, (
        f"the child died ({result.returncode}) in case {started[-1] if started else '?'}: "
        f"{batch[started[-1]] if started else ''}\n{result.stderr[-2000:]}")
    outcomes = {int(p[0]): p[1:] for p in lines if p[1] != "start"}
    assert sorted(outcomes) == list(range(len(batch)))
    for i, (status, *message) in outcomes.items():
        case = batch[i]
        assert status in ("ok", "refused"), (status, message, case)
        if status == "refused":  # the message names what was wrong
            names = case["changed"] or ["state"]
            assert any(name in message[0] for name in names), (message, case)
    assert all(outcomes[i][0] == "refused" for i in range(len(REGRESSIONS)))
    assert {outcome[0] for outcome in outcomes.values()} == {"ok", "refused"}


# -- the child ---------------------------------------------------------------------------
def _wrapped(value, how):
    if how == "list":
        return value.tolist()
    if how == "strided":
        return np.stack([value, value], axis=-1)[..., 0]  # same values, not contiguous
    if how == "fortran":
        return np.asfortranarray(value)
    if how == "readonly":
        value = value.copy()
        value.flags.writeable = False
    return value


def _edit(state, attr, how, *rest):
    if how == "swap":
        _swap(state, attr, rest[0])
        return
    target = state
    for part in attr.split("."):
        target = target[int(part)] if part.isdigit() else (
            target[part] if isinstance(target, dict) else getattr(target, part))
    if isinstance(target, np.ndarray) and target.size:
        target.reshape(-1)[rest[0] % target.size] = np.array(rest[1]).astype(target.dtype)


def _sane(fn, args, out):
    """Whether an accepted call's result is what its documentation promises."""
    if fn in ("init_state", "restore_state"):
        sampler.check_state(out)
        words = np.asarray(args["words"])
        same = np.array_equal(np.sort(words.ravel()), np.sort(out.words))
        return same and out.z.min(initial=0) >= 0 and out.z.max(initial=0) < out.n_topics
    if fn == "fold_in":
        return bool(np.isfinite(out).all() and out.min(initial=0) >= 0
                    and np.allclose(out.sum(axis=1), 1))
    return not np.isnan(out).any() and not np.isposinf(out).any()


def _case(case):
    fn, args = case["fn"], {k: _wrapped(v, case["wrap"].get(k)) if isinstance(
        v, np.ndarray) else v for k, v in case["args"].items()}
    if fn == "sweep":
        state = sampler.init_state(**args)
        _edit(state, *case["edit"])
        sampler.sweep(state)
        sampler.log_likelihood(state)
        return True
    positional = ["indptr", "words"] + (["z"] if fn == "restore_state" else [])
    out = getattr(sampler, fn)(*[args.pop(k) for k in positional], **args)
    return _sane(fn, case["args"], out)


def _child(path):
    batch = pickle.loads(Path(path).read_bytes())
    for i, case in enumerate(batch):
        print(f"{i}\tstart", flush=True)
        try:
            status = "ok" if _case(case) else "insane\tresult accepted but wrong"
        except (ValueError, TypeError) as exc:
            status = f"refused\t{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001  any other exception is a finding
            status = f"error\t{type(exc).__name__}: {exc}"
        print(f"{i}\t{status}".replace("\n", " "), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1])


@pytest.mark.parametrize("name,n_shards", [("dense", 1), ("sparse", 2), ("mh", 1),
                                           ("warp", 1)])
def test_n_sweeps_equals_that_many_calls(name, n_shards):
    one, many = _state(name, n_shards), _state(name, n_shards)
    for _ in range(3):
        sampler.sweep(one)
    sampler.sweep(many, 3)
    assert np.array_equal(one.z, many.z) and np.array_equal(one.rng, many.rng)
    sampler.sweep(many, 0)  # nothing to do
    assert np.array_equal(one.z, many.z)
    with pytest.raises(ValueError, match="n_sweeps must be >= 0"):
        sampler.sweep(many, -1)
