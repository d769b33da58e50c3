"""DistributedSampler: each rank's share of a data set's indices, PyTorch's semantics.

Invariant: for one (seed, epoch) every rank draws the same order, and the shards are disjoint
(up to the padding) and of equal size, so every rank runs the same number of batches, which
collectives need: a rank with one batch more would wait for the others forever.
"""
import math

import numpy as np

from ..checks import check_int


class DistributedSampler:
    """The indices of ``dataset`` (anything with ``len()``: an array, ``range(n)``) that rank
    ``rank`` of ``num_replicas`` serves each epoch (both default to this job's rank and world
    size, from ``minigrad.distributed``; pass them to use it in one process).

    Epoch e's order is a permutation drawn from a generator seeded with ``(seed, e)`` (as the
    DataLoader's), the same on every rank (``shuffle=False``: 0 ... n-1). Padding: with
    ``drop_last=False`` the order is extended by repeating its first indices until its length
    is a multiple of ``num_replicas`` (a few samples count twice in that epoch); with
    ``drop_last=True`` its tail is cut instead. Rank r takes every ``num_replicas``-th index
    from position r. ``len()`` is the shard size, ``num_samples``. ``set_epoch(e)`` selects the
    epoch that ``iter()`` serves; a ``DataLoader(..., sampler=s)`` shares and advances it.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        num_replicas = check_int(num_replicas, "num_replicas", "DistributedSampler", minimum=1)
        rank = check_int(rank, "rank", "DistributedSampler", minimum=0)
        if rank >= num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas - 1}] for num_replicas={num_replicas}, "
                             f"got {rank}")
        try:
            n = len(dataset)
        except TypeError:
            raise TypeError(f"DistributedSampler needs a data set with len() (an array, range(n)), got "
                            f"{type(dataset).__name__}") from None
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.seed = check_int(seed, "seed", "DistributedSampler", minimum=0)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.num_samples = n // num_replicas if drop_last else math.ceil(n / num_replicas)
        if self.num_samples == 0:
            raise ValueError(f"DistributedSampler: {n} samples over {num_replicas} replicas leave "
                             f"rank {rank} nothing" + (" with drop_last=True" if drop_last else ""))
        self.total_size = self.num_samples * num_replicas
        self.epoch = 0

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Make ``iter()`` serve epoch ``epoch``."""
        self.epoch = check_int(epoch, "epoch", "DistributedSampler", minimum=0)

    def order(self, epoch):
        """This rank's indices in epoch ``epoch``, (num_samples,) int64; changes no state."""
        epoch, n = check_int(epoch, "epoch", "DistributedSampler", minimum=0), len(self.dataset)
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            order = order[:self.total_size]
        else:                            # repeat the start as often as needed (n may be < P)
            order = np.resize(order, self.total_size)
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(self.order(self.epoch).tolist())
