"""Batching and splitting: a seeded stratified ``train_val_split`` and a ``DataLoader``.

Plain numpy: arrays in, arrays out; nothing here touches Tensor or autograd. Every random
choice comes from a generator built from an explicit seed, never numpy's global state.
"""
import numpy as np

from ..checks import check_int, check_real


def train_val_split(X, y, val_fraction=0.2, seed=0, stratify=True):
    """Split ``(X, y)`` into ``(X_train, y_train, X_val, y_val)``, seeded and deterministic.

    ``X`` has shape (N, ...) and ``y`` shape (N,); outputs keep their dtypes and trailing
    shape, and each part keeps the original row order. The validation set holds
    ``round(val_fraction * N)`` rows. With ``stratify=True`` every class gives the floor or
    ceiling of ``val_fraction * (its count)`` of them (largest remainders get the ceiling), so
    class proportions match in both parts; otherwise rows are drawn uniformly at random.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim != 1:
        raise ValueError(f"expected X of shape (N, ...) and y of shape (N,), got X {X.shape} "
                         f"and y {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if not 0 < check_real(val_fraction, "val_fraction", "train_val_split") < 1:
        raise ValueError(f"train_val_split: val_fraction must be a number strictly between 0 and 1, "
                         f"got {val_fraction!r}")
    seed = check_int(seed, "seed", "train_val_split", minimum=0)
    n = len(y)
    n_val = int(round(val_fraction * n))
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction={val_fraction} of {n} samples gives {n_val} validation "
                         f"and {n - n_val} training samples; both parts need at least one")
    rng = np.random.default_rng(seed)
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        quota = val_fraction * counts                     # exact per-class share, (C,)
        take = np.floor(quota).astype(np.int64)
        # Hand the rows lost to flooring to the largest remainders (stable sort: ties go to
        # the smaller class label), so sum(take) == n_val and each class is off by < 1 row.
        short = n_val - int(take.sum())
        take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
        val_idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k]
                                  for c, k in zip(classes, take)])
    else:
        val_idx = rng.permutation(n)[:n_val]
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    return X[~is_val], y[~is_val], X[is_val], y[is_val]


class DataLoader:
    """Iterate over ``(X_batch, y_batch)`` numpy arrays, reshuffled every epoch.

    ``X`` has shape (N, ...) and ``y`` shape (N,); each batch is a copy (fancy indexing) of
    shape (B, ...) and (B,) with their dtypes. ``len(loader)`` is the number of batches.

    Epochs: each ``iter()`` call (each ``for`` loop, even one left early) serves epoch
    ``loader.epoch`` and then advances it by one; it starts at 0. Epoch k's order is drawn from
    a generator seeded with ``(seed, k)`` alone, independent of earlier epochs, so to resume a
    run at epoch k call ``loader.set_epoch(k)`` and the batches come out exactly as before.

    Last batch: with ``drop_last=True`` a short final batch is dropped. With ``drop_last=False``
    it is kept, except that a final batch of exactly ONE sample is folded into the previous one
    (9 samples, batch_size 4 -> sizes [4, 5]), because training-mode batch norm cannot
    normalise a single sample (its batch variance is 0). A data set of one sample is an error;
    ``batch_size=1`` still gives one-sample batches, as explicitly asked.

    Several processes: ``sampler=DistributedSampler(y)`` serves this rank's shard instead of
    all N samples (all of the above then applies to the shard). The sampler decides the order
    (its ``shuffle`` and ``seed``; the loader's must be left unset) and holds the one epoch
    counter: ``loader.set_epoch(k)`` and ``sampler.set_epoch(k)`` are the same call.
    """

    def __init__(self, X, y, batch_size, shuffle=None, seed=None, drop_last=False, sampler=None):
        self.X, self.y = np.asarray(X), np.asarray(y)
        if self.X.ndim == 0 or self.y.ndim != 1 or len(self.X) != len(self.y):
            raise ValueError(f"expected X of shape (N, ...) and y of shape (N,) with the same N, "
                             f"got X {self.X.shape} and y {self.y.shape}")
        self.batch_size = check_int(batch_size, "batch_size", "DataLoader", minimum=1)
        if sampler is not None:
            check_sampler(sampler, len(self.y), shuffle, seed)
            shuffle, seed = sampler.shuffle, sampler.seed       # the order's, for the reader
        self.sampler = sampler
        self.seed = check_int(0 if seed is None else seed, "seed", "DataLoader", minimum=0)
        self.shuffle, self.drop_last = shuffle is None or bool(shuffle), bool(drop_last)
        if sampler is None:
            self.epoch = 0  # the epoch the next iteration will serve
        n = len(self.y) if sampler is None else len(sampler)
        if n < 2:
            raise ValueError(f"DataLoader needs at least 2 samples, got {n}: a batch of one "
                             f"sample breaks training-mode batch norm")
        if len(self) == 0:
            raise ValueError(f"drop_last=True with {n} samples and batch_size={batch_size} "
                             f"leaves no batches; lower batch_size or set drop_last=False")

    @property
    def epoch(self):
        """The epoch the next iteration will serve (with a sampler: the sampler's epoch)."""
        return self._epoch if self.sampler is None else self.sampler.epoch

    @epoch.setter
    def epoch(self, value):
        if self.sampler is None:
            self._epoch = value
        else:
            self.sampler.epoch = value

    def _bounds(self):
        """The (start, stop) of each batch within an epoch's order, after the last-batch rule."""
        n, b = len(self.y) if self.sampler is None else len(self.sampler), self.batch_size
        stops = list(range(b, n + 1, b))               # the full batches
        if n % b and not self.drop_last:
            if n % b == 1 and stops:
                stops[-1] = n                          # fold the lone sample into the last batch
            else:
                stops.append(n)                        # keep the short final batch
        return list(zip([0] + stops[:-1], stops))

    def __len__(self):
        return len(self._bounds())

    def set_epoch(self, epoch):
        """Make the next iteration serve epoch ``epoch`` (e.g. to resume a saved run)."""
        self.epoch = check_int(epoch, "epoch", "DataLoader.set_epoch", minimum=0)

    def order(self, epoch):
        """Sample indices of epoch ``epoch`` in serving order, (N,) int64; changes no state."""
        epoch, n = check_int(epoch, "epoch", "DataLoader.order", minimum=0), len(self.y)
        if self.sampler is not None:
            return self.sampler.order(epoch)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        # Draw the order now, not lazily, so the epoch counter moves when the loop starts.
        order = self.order(self.epoch)
        self.epoch += 1
        return ((self.X[order[a:b]], self.y[order[a:b]]) for a, b in self._bounds())


def check_sampler(sampler, n, shuffle, seed):
    """A DataLoader's sampler: a DistributedSampler over as many samples as the loader has,
    and no loader shuffle/seed beside it (the sampler's decide the order)."""
    from .sampler import DistributedSampler
    if not isinstance(sampler, DistributedSampler):
        raise TypeError(f"DataLoader: sampler must be a DistributedSampler, got {type(sampler).__name__}")
    if len(sampler.dataset) != n:
        raise ValueError(f"DataLoader: the sampler covers {len(sampler.dataset)} samples but the "
                         f"loader has {n}")
    if shuffle is not None or seed is not None:
        raise ValueError("DataLoader: with a sampler, the sampler decides the order: pass shuffle "
                         "and seed to DistributedSampler, not to the loader")
