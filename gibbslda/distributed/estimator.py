"""DistributedLDA: the settings of an AD-LDA fit and their checks (see the package)."""
from __future__ import annotations

from gibbslda import _files, _rng, sampler as _sampler
from gibbslda.corpus import as_corpus
from gibbslda.distributed.driver import Run
from gibbslda.errors import NotFittedError
from gibbslda.model import LDA, _check_int

PURPOSE = _rng.PARTITIONS  # the partitions' streams in _rng.seed_streams


class DistributedLDA:
    """LDA trained on a Dask cluster by AD-LDA; produces a regular fitted :class:`LDA`.

    Parameters
    ----------
    n_topics, n_iter, random_state
        As for :class:`gibbslda.LDA`.
    alpha, beta : "auto" or numbers, default "auto"
        As for :class:`gibbslda.LDA`: "auto" (either or both) starts at 0.1 / 0.01 and
        learns them on LDA's schedule, from the gathered counts: after a round, when a
        due sweep count (``optimize_burn_in`` or more, a multiple of ``optimize_every``)
        was reached during it, the driver learns beta from the merged item x topic counts
        and alpha from the users' histograms each partition builds of its own users
        (summed in partition order), the same inputs LDA's learn_alpha / learn_beta read
        on the gathered chain, and sends them to every partition. With one sweep per round
        that is LDA's schedule exactly; with more, they are learned at the end of the
        round that holds a due count (from its last sweep's topics), once per round.
        Numbers fix them.
    optimize_every, optimize_burn_in : int, default 10, 50
        As for :class:`gibbslda.LDA`, in sweeps.
    eval_every : int, default 10
        As for :class:`gibbslda.LDA`, in rounds.
    sampler : {"auto", "dense", "sparse"}
        The local sweep kernel ("mh" is refused: its item proposal reads the partition's
        own tokens only, so its acceptance ratio would not match the global counts).
    n_partitions : int, default 2
        Contiguous blocks of users, each with its own random stream; the result depends on
        the seed and this, not on the number of workers or threads. A worker sweeps as
        many of its partitions at once as it has threads: use at least as many partitions
        as threads in the cluster to keep every core busy (each partition holds its own
        copy of the item x topic counts: more partitions, more memory per worker).
    sweeps_per_round : int, default 1
        Local sweeps between merges (the staleness of the other partitions' counts).
    checkpoint : path or None
        File (npz, never pickled) written every ``checkpoint_every`` rounds and after the
        last; what ``fit(..., resume=True)`` continues from.

    Attributes
    ----------
    model_ : LDA  the fitted model (save, load, transform, topics as usual); it continues
        on one machine with ``n_shards = n_partitions``, the same user blocks and streams,
        and keeps learning its "auto" priors (``alpha_``, ``beta_``: the learned values).
    rounds_ : structured array (ROUND_DTYPE), one row per round: cumulative sweeps and
        seconds; seconds of the slowest partition's whole step (the rest of a round is the
        driver's and the network's), of sampling and of keeping its copy of the counts
        (adding the others' changes, finding its own; each the max over partitions), of
        merging (driver; learning the priors included) and checkpointing; bytes up (count
        changes and user histograms, partitions to driver), down (the summed change and
        learned priors, once to every worker) and of the topics gathered for a checkpoint;
        log p(w, z) per token when evaluated (else NaN).
    setup_ : dict  seconds and bytes of partitioning and the first count exchange;
        ``workers``: each worker's partitions and the threads they run on.
    """

    def __init__(self, n_topics: int = 10, *, alpha="auto", beta="auto", n_iter: int = 200,
                 random_state=None, sampler: str = "auto", n_partitions: int = 2,
                 sweeps_per_round: int = 1, checkpoint=None, checkpoint_every: int = 1,
                 eval_every: int = 10, optimize_every: int = 10, optimize_burn_in: int = 50):
        self.n_topics = n_topics
        self.alpha = alpha
        self.beta = beta
        self.optimize_every = optimize_every
        self.optimize_burn_in = optimize_burn_in
        self.n_iter = n_iter
        self.random_state = random_state
        self.sampler = sampler
        self.n_partitions = n_partitions
        self.sweeps_per_round = sweeps_per_round
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.eval_every = eval_every

    def fit(self, X, client, *, resume: bool = False, callback=None) -> "DistributedLDA":
        """Fit to ``X`` (anything :class:`LDA` takes) on the workers of ``client``.

        ``resume=True`` continues from ``checkpoint`` (same corpus and settings; the seed
        and streams come from the file, ``random_state`` is not used) up to ``n_iter``
        sweeps in all. ``callback(info: SweepInfo)`` is called after every round (with
        its ``round``); returning False stops after that round: the chain is gathered
        into ``model_`` and checkpointed (with ``checkpoint``), and ``resume=True``
        continues it.
        """
        model = self._validate()
        distributed = _import_distributed()
        if not isinstance(client, distributed.Client):
            raise TypeError("client must be a distributed.Client, got "
                            f"{type(client).__name__}")
        corpus = as_corpus(X)
        if corpus.n_tokens == 0:
            raise ValueError("cannot fit an empty corpus")
        if self.checkpoint is not None:
            _files.check_file(self.checkpoint)  # a folder there: refused before any work
        if self.n_partitions > corpus.n_users:
            raise ValueError(f"n_partitions must be <= the number of users ({corpus.n_users}),"
                             f" got {self.n_partitions}")
        bounds = _sampler.shard_layout(corpus.indptr, corpus.words, corpus.n_items,
                                       self.n_partitions)[1]
        run = Run(self, model, corpus, bounds, client)
        if resume:
            run.load_checkpoint()
        else:
            self.seed_entropy_ = _rng.resolve_entropy(self.random_state)
            run.rng = _rng.seed_streams(self.seed_entropy_, PURPOSE, self.n_partitions)
        try:
            run.start()
            run.rounds(callback)
        finally:
            run.close()
        self.model_, self.rounds_, self.setup_ = run.result(), run.history, run.setup
        self.partition_bounds_ = bounds
        return self

    def __getattr__(self, name: str):
        # Only reached for attributes that do not exist: fitted ones before fit.
        if name.endswith("_") and not name.startswith("_"):
            raise NotFittedError(f"this DistributedLDA is not fitted yet (no {name}): call "
                                 "fit(X, client) first")
        raise AttributeError(f"'DistributedLDA' object has no attribute {name!r}")

    def _validate(self) -> LDA:
        """Check every setting; return the LDA that will hold the fitted chain."""
        for name in ("n_iter", "n_partitions", "sweeps_per_round", "checkpoint_every"):
            _check_int(name, getattr(self, name), minimum=1)
        if self.sampler in ("mh", "warp"):
            raise ValueError(f"sampler must be 'auto', 'dense' or 'sparse' for DistributedLDA,"
                             f" got {self.sampler!r}: its item proposal reads one partition's "
                             "tokens, not the merged counts")
        if self.sampler == "vector":
            raise ValueError("sampler must be 'auto', 'dense' or 'sparse' for DistributedLDA, "
                             "got 'vector': the float32 kernel is not run on partitions (use "
                             "'dense', the same conditional)")
        model = LDA(self.n_topics, alpha=self.alpha, beta=self.beta, n_iter=self.n_iter,
                    random_state=self.random_state, sampler=self.sampler,
                    n_shards=self.n_partitions, eval_every=self.eval_every,
                    optimize_every=self.optimize_every,
                    optimize_burn_in=self.optimize_burn_in)
        model._validate()
        model.sampler = model._sampler_for(self.n_topics)
        return model


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("DistributedLDA needs dask and distributed: pip install "
                          "'gibbslda[distributed]'") from exc
    return distributed
