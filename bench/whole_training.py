"""Whole trainings side by side: warp on 1 and 2 threads, sparse on 1, tomotopy with 1 and 2
workers, on one ~1M-token planted corpus (the same tokens), from a random start: 100 sweeps
(60 at K >= 1000). Paired and interleaved (every system once a round, the order reversed
every other round); prints one JSON line a run (with the 1-minute load) and the medians
and ratios per K (wall and CPU seconds). A script, not a pytest-benchmark suite (runs
take minutes):

    PYTHONPATH=. OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/whole_training.py 50,200 2 \
        tomotopy,tomotopy2,warp1,warp2,sparse1

Systems: tomotopy, tomotopy2 (2 workers, PARTITION), warpN / sparseN / denseN / vectorN (N
numba threads; the exact samplers run one shard, so N > 1 only matters for warp), warpm1
(warp with mh_steps=1); fitN: the whole ``LDA(K, alpha=0.1, beta=0.01, n_jobs=N).fit`` a
user runs (init, the sweeps, log p(w, z) every 10 sweeps, the posterior samples: all
timed), fitautoN: the same with the default (learned) priors, against tomotopyauto
(tomotopy's default optim_interval=10, learning alpha). Needs the `peers` extra (tomotopy).
Results: bench/README.md.
"""
import json
import os
import sys
import time

import numba
import numpy as np

if __name__ != "__main__":
    raise ImportError("bench/whole_training.py is a script: run it with python")
from gibbslda import LDA, sampler
from gibbslda.synthetic import planted_corpus
import tomotopy as tp  # noqa: E402

corpus = planted_corpus(40_000, 10_000, 100, mean_length=25, sigma=1.0, zipf=1.1, overlap=0.2, seed=20261128).corpus
N = corpus.n_tokens
print("tokens", N, "users", corpus.n_users, "items", corpus.n_items, "tomotopy isa", tp.isa, flush=True)
sampler.warm_up()
LDA(20, n_iter=3, random_state=0).fit(corpus)  # compiles what a fit runs besides sweeps
vocab = np.array([str(w) for w in range(corpus.n_items)], dtype=object)
docs = [vocab[corpus.words[a:b]].tolist() for a, b in zip(corpus.indptr[:-1], corpus.indptr[1:])]

def ours(name, K, sweeps, threads, seed, mh_steps=2):
    numba.set_num_threads(threads)
    st = sampler.init_state(corpus.indptr, corpus.words, K, corpus.n_items, alpha=0.1, beta=0.01, seed=seed, sampler=name, mh_steps=mh_steps)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(sweeps):
        sampler.sweep(st)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return dt, cpu, sampler.log_likelihood(st)

def fit(K, sweeps, threads, seed, **priors):
    numba.set_num_threads(threads)
    t, c = time.perf_counter(), time.process_time()
    model = LDA(K, n_iter=sweeps, n_jobs=threads, random_state=seed, heldout_users=None,
                **priors).fit(corpus)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return dt, cpu, model.loglik_["loglik"][-1]

def tomo(K, sweeps, seed, workers=1, optimise=False):
    m = tp.LDAModel(k=K, alpha=0.1, eta=0.01, seed=seed, min_cf=0, min_df=0, rm_top=0)
    if not optimise:
        m.optim_interval = 0
    for d in docs: m.add_doc(d)
    scheme = tp.ParallelScheme.NONE if workers == 1 else tp.ParallelScheme.PARTITION
    m.train(0, workers=workers, parallel=scheme)
    t, c = time.perf_counter(), time.process_time()
    m.train(sweeps, workers=workers, parallel=scheme)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    return dt, cpu, m.ll_per_word

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
                dt, cpu, ll = tomo(K, sweeps, r)
            elif s == "tomotopy2":
                dt, cpu, ll = tomo(K, sweeps, r, workers=2)
            elif s == "tomotopyauto":
                dt, cpu, ll = tomo(K, sweeps, r, optimise=True)
            elif s.startswith("fitauto"):
                dt, cpu, ll = fit(K, sweeps, int(s[7:]), r)
            elif s.startswith("fit"):
                dt, cpu, ll = fit(K, sweeps, int(s[3:]), r, alpha=0.1, beta=0.01)
            elif s == "warpm1":
                dt, cpu, ll = ours("warp", K, sweeps, 1, r, mh_steps=1)
            else:
                name, th = s[:-1], int(s[-1])
                dt, cpu, ll = ours(name, K, sweeps, th, r)
            res.setdefault((K, s), []).append(N * sweeps / dt)
            res.setdefault((K, s, "cpu"), []).append(N * sweeps / cpu)
            print(json.dumps({"K": K, "system": s, "round": r, "seconds": round(dt, 2), "tokens_per_s": round(N * sweeps / dt), "cpu_seconds": round(cpu, 2), "tokens_per_cpu_s": round(N * sweeps / cpu), "ll": round(float(ll), 4), "load1": round(load, 2)}), flush=True)
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
    # CPU seconds of the process: on a machine shared with other jobs the one-thread
    # systems' ratio is steadier in CPU time than in wall time (not for 2-thread systems)
    cpu_med = {s: float(np.median(res[(K, s, "cpu")])) for s in systems}
    line = {s: f"{v/1e6:.2f}M/cpu-s" for s, v in cpu_med.items()}
    if "tomotopy" in cpu_med:
        line.update({f"{s}/tomotopy": round(v / cpu_med["tomotopy"], 2)
                     for s, v in cpu_med.items() if s != "tomotopy"})
    print("MEDIAN-CPU K=%d" % K, json.dumps(line), flush=True)
