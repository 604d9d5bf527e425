"""Numba kernels: sampler sweeps, likelihoods and fold-in. Nothing else lives here.

Glossary (the classic LDA symbols, used in every kernel):

- ``d``: a user (document); ``w``: an item (word); ``k``, ``s``, ``t``: topics; ``i``: a token.
- ``indptr`` (int64, D + 1): user ``d`` owns tokens ``indptr[d]:indptr[d + 1]``.
- ``words`` (int32, N): the item of each token; ``z`` (int32, N): its topic.
- ``cell_ptr`` (int64, D x (P + 1)): the tokens of user ``d`` whose item lies in item block
  ``b`` are ``cell_ptr[d, b]:cell_ptr[d, b + 1]`` (each user's tokens are ordered by block).
- ``doc_bounds`` (int64, P + 1): shard ``p`` owns users ``doc_bounds[p]:doc_bounds[p + 1]``.
- ``word_ptr`` (int64, V + 1), ``word_z`` (int32, N), ``tok_pos`` (int32, N): the topics of
  item ``w``'s tokens are ``word_z[word_ptr[w]:word_ptr[w + 1]]``, token ``i``'s at
  ``word_z[tok_pos[i]]`` (only the Metropolis-Hastings sampler uses them).
- ``n_wk`` (int32, V x K, item-major so one item's row is contiguous), ``n_k`` (int64, K):
  topic counts per item and in total. Per-user counts ``n_dk`` are never stored for the
  whole corpus: each kernel rebuilds one user's row from ``z`` in a K-sized scratch array.
- ``alpha`` (float64, K) and ``alpha_cdf`` (its running sum); ``beta`` (float64).
- ``rng`` (uint64, 4): one xoshiro256** stream state, advanced in place.

Python owns the iteration loop: one kernel call is one sweep, one likelihood or one
fold-in, so progress, callbacks and checkpoints happen between calls.
"""
from gibbslda._kernels.common import fold_in, init_topics, log_joint
from gibbslda._kernels.driver import DENSE, MH, SPARSE, sweep_serial, sweep_sharded

__all__ = ["init_topics", "log_joint", "fold_in", "sweep_serial", "sweep_sharded", "DENSE", "SPARSE", "MH"]
