"""Training beyond one machine on Dask: approximate distributed LDA (AD-LDA).

The users are split into ``n_partitions`` contiguous blocks of about equal token counts (a
model setting, independent of the number of workers). The partitions are dealt to the
workers in turn; each lives on its worker with its tokens, its topics, its own random
stream and its own copy of the item x topic counts; tokens are sent once and never again.
A worker's partitions share one Dask actor, which runs them on the worker's threads
(``nthreads``), up to that many at once: give the cluster at least as many partitions as
threads in all to use every core. A round:

1. every partition runs ``sweeps_per_round`` local sweeps with the fast kernels against its
   copy of the counts (its own changes included, the other partitions' not: the
   approximation), and returns its change of the counts as sparse (item, topic, delta)
   entries, computed from the tokens whose topic changed;
2. the driver sums the changes in partition order, applies them to the global counts and
   checks them (no negative count, totals equal to the token count, item counts agreeing
   with the topic totals), and sends the summed change to every worker, once (with the
   next round's call), for all its partitions;
3. at the start of the next round each partition adds the others' changes to its copy,
   which then equals the global counts again.

The priors are learned by default (``alpha="auto"``, ``beta="auto"``), on LDA's schedule:
after a round that reached a due sweep count, the driver learns beta from the merged counts
and alpha from histograms of the users' topic counts that each partition builds of its own
users (a few cells; summed in partition order), exactly what LDA's learn_alpha and
learn_beta read on the gathered chain, and sends them to every partition before the next
round. Numbers fix them.

With one partition the chain is the exact serial one. The result depends on the seed and
``n_partitions`` only, never on the worker or thread count or placement: every partition
draws from its own stream, partitions sweeping at once on one worker share nothing, and
the merge order is fixed. A checkpoint (the topics of every token, the
streams, the priors and the round) can be written every ``checkpoint_every`` rounds; a
lost worker stops the fit with a RuntimeError that names it, and ``fit(X, client,
resume=True)`` continues from the checkpoint, bit for bit the chain that never stopped.

The package: :mod:`.estimator` (:class:`DistributedLDA`, its settings), :mod:`.driver`
(the rounds, the merge, faults and checkpoints, whose file format is
:func:`gibbslda.io.write_checkpoint`'s), :mod:`.partition` (the actor on each worker and
its partitions). The
count updates they exchange are :mod:`gibbslda.packed`'s.

References
----------
Newman, Asuncion, Smyth & Welling (2009), "Distributed algorithms for topic models", JMLR 10.
"""
from gibbslda.distributed.estimator import PURPOSE, DistributedLDA
from gibbslda.io import ROUND_DTYPE

__all__ = ["DistributedLDA", "PURPOSE", "ROUND_DTYPE"]
