"""Every numba kernel of gibbslda, in self-contained modules; nothing else lives here.

- :mod:`.gibbs`: the samplers' sweeps, log p(w, z), fold-in and left-to-right;
- :mod:`.vector`: the small-K sampler's sweeps (``sampler="vector"``, float32 rows);
- :mod:`.priors`: digamma, count histograms and Minka's fixed point;
- :mod:`.neighbours`: sparse co-occurrence counting for the item-kNN and EASE baselines;
- :mod:`.layout`: counting sorts: a corpus's tokens, the shard cells, the item-major
  order, the packed rows;
- :mod:`.heldout`: held-out document completion from a model's counts;
- :mod:`.update`: incremental updates: first topics of new tokens, uniform draws.
- :mod:`.demand`: demand forecasts: events split over interests by p(k | user, item);
- :mod:`.foldin_em`, :mod:`.judge`: the recommendation variants' EM fold-ins and the
  validation's top-k hits (:mod:`gibbslda.rankers`, :mod:`gibbslda.validation`).

Each module calls only its own kernels, on purpose: numba's on-disk cache (``cache=True``)
invalidates a cached function when its own source file changes, not when a kernel it
calls from another file does, so a kernel calling across files could run stale machine
code after an edit or an upgrade. The sampler's names are re-exported here, so
``_kernels.sweep_serial`` and friends read as before.
"""
from gibbslda._kernels.gibbs import (DENSE, MH, SPARSE, fold_in, init_topics, left_to_right,
                                     log_joint, next_uint64, sweep_serial, sweep_sharded,
                                     uniform)
from gibbslda._kernels.priors import (count_histogram, doc_topic_counts, fixed_point_alpha,
                                      fixed_point_beta)

__all__ = ["DENSE", "MH", "SPARSE", "fold_in", "init_topics", "left_to_right", "log_joint",
           "next_uint64", "sweep_serial", "sweep_sharded", "uniform", "count_histogram",
           "doc_topic_counts", "fixed_point_alpha", "fixed_point_beta"]
