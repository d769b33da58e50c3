"""minigrad/data/sampler.py, DistributedSampler, and DataLoader(sampler=...), in one process
(rank and num_replicas passed explicitly, as torch allows); torch's sampler is the reference
for the padding and striding when it is installed."""
import numpy as np
import pytest

from minigrad.data import DataLoader, DistributedSampler


def shards(n, replicas, epoch=0, **kwargs):
    return [DistributedSampler(range(n), replicas, r, **kwargs).order(epoch) for r in range(replicas)]


@pytest.mark.parametrize("n, replicas", [(10, 3), (12, 4), (2, 3), (7, 1)])
def test_disjoint_equal_shards_covering_everything(n, replicas):
    parts = shards(n, replicas)
    sizes = {len(p) for p in parts}
    assert sizes == {-(-n // replicas)}                       # ceil: padded to equal size
    joined = np.concatenate(parts)
    assert set(joined.tolist()) == set(range(n))
    padding = len(joined) - n
    assert padding < replicas and len(set(joined.tolist())) == n   # padding repeats, nothing lost
    order = np.random.default_rng([0, 0]).permutation(n)
    padded = np.resize(order, len(joined))
    for r, part in enumerate(parts):                          # the same order on every rank, strided
        np.testing.assert_array_equal(part, padded[r::replicas])


def test_drop_last_cuts_the_tail_instead():
    parts = shards(10, 3, drop_last=True)
    assert [len(p) for p in parts] == [3, 3, 3]
    joined = np.concatenate(parts)
    assert len(set(joined.tolist())) == 9                     # disjoint, one sample left out
    with pytest.raises(ValueError, match="2 samples over 3 replicas leave rank 0 nothing with drop_last=True"):
        DistributedSampler(range(2), 3, 0, drop_last=True)


def test_epochs_seed_and_set_epoch():
    sampler = DistributedSampler(range(20), 2, 1, seed=5)
    assert list(sampler) == sampler.order(0).tolist() and len(sampler) == 10
    sampler.set_epoch(3)
    assert list(sampler) == sampler.order(3).tolist() != sampler.order(0).tolist()
    np.testing.assert_array_equal(sampler.order(3), np.random.default_rng([5, 3]).permutation(20)[1::2])
    assert DistributedSampler(range(20), 2, 1, seed=6).order(3).tolist() != sampler.order(3).tolist()
    sampler.set_epoch(0)                                       # back to the first epoch: allowed
    assert list(sampler) == sampler.order(0).tolist()
    one = DistributedSampler(range(4), rank=0)                 # the other one from the world (size 1)
    two = DistributedSampler(range(4), num_replicas=2)         # ... (rank 0)
    assert (one.num_replicas, one.rank, two.num_replicas, two.rank) == (1, 0, 2, 0)
    ordered = DistributedSampler(range(7), 2, 1, shuffle=False)
    assert list(ordered) == [1, 3, 5, 0]                       # padded with the first index


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\] for num_replicas=2, got 2"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(ValueError, match="DistributedSampler: num_replicas must be >= 1, got 0"):
        DistributedSampler(range(4), 0, 0)
    with pytest.raises(TypeError, match=r"needs a data set with len\(\)"):
        DistributedSampler(10, 2, 0)
    assert DistributedSampler(range(4)).num_replicas == 1     # this job: one process


@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (2, 3, False), (12, 4, False)])
def test_same_indices_as_torch_without_shuffle(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler
    for r in range(replicas):
        theirs = TorchSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
        ours = DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    del torch


def test_loader_serves_the_shard_and_shares_the_epoch():
    X, y = np.arange(22.0).reshape(11, 2), np.arange(11)
    loaders = [DataLoader(X, y, 2, sampler=DistributedSampler(y, 3, r, seed=4)) for r in range(3)]
    assert [len(loader) for loader in loaders] == [2, 2, 2]   # shards of 4: the same count of batches
    for epoch in range(2):
        served = [np.concatenate([yb for _, yb in loader]) for loader in loaders]
        for loader, got in zip(loaders, served):
            np.testing.assert_array_equal(got, loader.sampler.order(epoch))
            assert loader.epoch == loader.sampler.epoch == epoch + 1
        assert set(np.concatenate(served).tolist()) == set(range(11))
    first = loaders[0]
    first.set_epoch(0)                                         # resume: epoch k depends on (seed, k)
    assert first.sampler.epoch == 0
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in first]), first.sampler.order(0))
    first.sampler.set_epoch(1)                                 # torch's habit: the same counter
    np.testing.assert_array_equal(next(iter(first))[1], first.sampler.order(1)[:2])
    assert (first.shuffle, first.seed) == (True, 4)


def test_loader_refuses_a_sampler_it_cannot_use():
    X, y = np.zeros((10, 2)), np.arange(10)
    sampler = DistributedSampler(y, 2, 0)
    for kwargs in ({"shuffle": False}, {"seed": 3}, {"shuffle": True}):
        with pytest.raises(ValueError, match="the sampler decides the order"):
            DataLoader(X, y, 2, sampler=sampler, **kwargs)
    with pytest.raises(ValueError, match="the sampler covers 10 samples but the loader has 9"):
        DataLoader(X[:9], y[:9], 2, sampler=sampler)
    with pytest.raises(TypeError, match="sampler must be a DistributedSampler, got list"):
        DataLoader(X, y, 2, sampler=[0, 1])
    plain = DataLoader(X, y, 3)                                # without a sampler: as before
    assert plain.shuffle is True and plain.seed == 0 and plain.sampler is None
