"""Whole trainings side by side: warp on 1 and 2 threads, sparse on 1, tomotopy with 1 and 2
workers, on one ~1M-token planted corpus (the same tokens), from a random start: 100 sweeps
(60 at K >= 1000). Paired and interleaved (every system once a round, the order reversed
every other round); prints one JSON line a run (with the 1-minute load) and the medians
and ratios per K. A script, not a pytest-benchmark suite (runs take minutes):

    PYTHONPATH=. OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/whole_training.py 50,200 2 \
        tomotopy,tomotopy2,warp1,warp2,sparse1

Systems: tomotopy, tomotopy2 (2 workers, PARTITION), warpN / sparseN (N numba threads),
warpm1 (warp with mh_steps=1). Needs the `peers` extra (tomotopy). Results: bench/README.md.
"""
import json
import os
import sys
import time

import numba
import numpy as np

if __name__ != "__main__":
    raise ImportError("bench/whole_training.py is a script: run it with python")
from gibbslda import sampler
from gibbslda.synthetic import planted_corpus
import tomotopy as tp  # noqa: E402

corpus = planted_corpus(40_000, 10_000, 100, mean_length=25, sigma=1.0, zipf=1.1, overlap=0.2, seed=20261128).corpus
N = corpus.n_tokens
print("tokens", N, "users", corpus.n_users, "items", corpus.n_items, "tomotopy isa", tp.isa, flush=True)
sampler.warm_up()
vocab = np.array([str(w) for w in range(corpus.n_items)], dtype=object)
docs = [vocab[corpus.words[a:b]].tolist() for a, b in zip(corpus.indptr[:-1], corpus.indptr[1:])]

def ours(name, K, sweeps, threads, seed, mh_steps=2):
    numba.set_num_threads(threads)
    st = sampler.init_state(corpus.indptr, corpus.words, K, corpus.n_items, alpha=0.1, beta=0.01, seed=seed, sampler=name, mh_steps=mh_steps)
    t = time.perf_counter()
    for _ in range(sweeps):
        sampler.sweep(st)
    dt = time.perf_counter() - t
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return dt, sampler.log_likelihood(st)

def tomo(K, sweeps, seed, workers=1):
    m = tp.LDAModel(k=K, alpha=0.1, eta=0.01, seed=seed, min_cf=0, min_df=0, rm_top=0)
    m.optim_interval = 0
    for d in docs: m.add_doc(d)
    scheme = tp.ParallelScheme.NONE if workers == 1 else tp.ParallelScheme.PARTITION
    m.train(0, workers=workers, parallel=scheme)
    t = time.perf_counter()
    m.train(sweeps, workers=workers, parallel=scheme)
    dt = time.perf_counter() - t
    return dt, m.ll_per_word

Ks = [int(k) for k in sys.argv[1].split(",")]
rounds = int(sys.argv[2])
systems = sys.argv[3].split(",") if len(sys.argv) > 3 else ["tomotopy", "warp1", "warp2", "sparse1"]
res = {}
for K in Ks:
    sweeps = 60 if K >= 1000 else 100
    for r in range(rounds):
        order = systems if r % 2 == 0 else systems[::-1]
        for s in order:
            load = os.getloadavg()[0]
            if s == "tomotopy":
                dt, ll = tomo(K, sweeps, r)
            elif s == "tomotopy2":
                dt, ll = tomo(K, sweeps, r, workers=2)
            elif s == "warpm1":
                dt, ll = ours("warp", K, sweeps, 1, r, mh_steps=1)
            else:
                name, th = s[:-1], int(s[-1])
                dt, ll = ours(name, K, sweeps, th, r)
            res.setdefault((K, s), []).append(N * sweeps / dt)
            print(json.dumps({"K": K, "system": s, "round": r, "seconds": round(dt, 2), "tokens_per_s": round(N * sweeps / dt), "ll": round(float(ll), 4), "load1": round(load, 2)}), flush=True)
    med = {s: float(np.median(res[(K, s)])) for s in systems}
    line = {s: f"{v/1e6:.2f}M/s" for s, v in med.items()}
    if "tomotopy" in med:
        line.update({f"{s}/tomotopy": round(v / med["tomotopy"], 2) for s, v in med.items() if s != "tomotopy"})
    if "tomotopy2" in med and "warp2" in med:
        line["warp2/tomotopy2"] = round(med["warp2"] / med["tomotopy2"], 2)
        if "tomotopy" in med:
            line["tomotopy 2w speed-up"] = round(med["tomotopy2"] / med["tomotopy"], 2)
    if "warp1" in med and "warp2" in med:
        line["warp 2t speed-up"] = round(med["warp2"] / med["warp1"], 2)
    print("MEDIAN K=%d" % K, json.dumps(line), flush=True)
