"""examples/batches/orders.py: the i.i.d. order is the DataLoader's, parts cover every sample once,
class batches hold their classes only, and every condition makes the same optimizer steps."""
import numpy as np
import pytest

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from batches import orders  # noqa: E402
from minigrad.data import DataLoader  # noqa: E402


def test_the_iid_order_is_the_data_loaders():
    X, y = np.arange(50, dtype=np.float32)[:, None], np.zeros(50, np.int64)
    loader = DataLoader(X, y, 50, shuffle=True, seed=7)
    for epoch in range(3):
        (xb, _), = list(loader)
        np.testing.assert_array_equal(orders.iid_order(50, 7, epoch), xb[:, 0].astype(np.int64))


@pytest.mark.parametrize("n, size, sizes", [(10, 4, [4, 4, 2]), (9, 4, [4, 5]), (8, 4, [4, 4]), (1, 4, [1]),
                                            (3, 2, [3])])
def test_split_cuts_in_order_and_folds_a_lone_last_sample(n, size, sizes):
    parts = orders.split(np.arange(n), size)
    assert [len(p) for p in parts] == sizes
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(n))


def test_by_class_makes_batches_of_two_classes_that_cover_the_step():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    step = rng.permutation(500)[:128]
    batches = orders.by_class(step, y, 2, np.random.default_rng(1))
    present = np.unique(y[step])
    assert len(batches) == len(present) // 2
    for batch in batches[:-1]:
        assert len(np.unique(y[batch])) == 2
    assert len(np.unique(y[batches[-1]])) == 2 + len(present) % 2          # an odd class out joins the last
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.sort(step))   # every sample once
    for batch in batches:                                                  # the step's order, kept
        positions = [int(np.flatnonzero(step == i)[0]) for i in batch]
        assert positions == sorted(positions)
    other = orders.by_class(step, y, 2, np.random.default_rng(2))
    assert any(not np.array_equal(a, b) for a, b in zip(batches, other))  # the pairing is drawn


def test_an_odd_class_out_joins_the_last_batch():
    y = np.repeat(np.arange(9), 3)                                         # 9 classes: 2+2+2+2, and 1 left
    batches = orders.by_class(np.arange(27), y, 2, np.random.default_rng(0))
    assert [len(np.unique(y[b])) for b in batches] == [2, 2, 2, 3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(27))


def test_by_class_with_three_classes_and_a_remainder_of_two():
    y = np.repeat(np.arange(5), 4)                                         # 5 classes: 3 + 2 -> one batch of 5
    batches = orders.by_class(np.arange(20), y, 3, np.random.default_rng(0))
    assert len(batches) == 1 and len(batches[0]) == 20


def test_every_condition_makes_the_same_steps_on_the_same_samples():
    y = np.random.default_rng(3).integers(0, 10, 600)
    reference = orders.split(orders.iid_order(600, 5, 2), 128)
    assert [len(s) for s in reference] == [128, 128, 128, 128, 88]
    for size, classes in ((2, None), (8, None), (128, None), (None, 2)):
        steps = orders.steps(y, 128, size, classes, seed=5, epoch=2)
        assert len(steps) == len(reference)
        for parts, batch in zip(steps, reference):
            np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.sort(batch))
            if classes is None:
                assert max(len(p) for p in parts) <= max(size, 3)       # parts of size (a lone one folded)
            else:
                assert all(len(np.unique(y[p])) in (2, 3) for p in parts)
    first, again = orders.steps(y, 128, None, 2, 5, 2), orders.steps(y, 128, None, 2, 5, 2)
    assert all(np.array_equal(a, b) for s, t in zip(first, again) for a, b in zip(s, t))   # (seed, epoch) alone
    other_epoch = orders.steps(y, 128, None, 2, 5, 3)
    assert not np.array_equal(np.concatenate(first[0]), np.concatenate(other_epoch[0]))
