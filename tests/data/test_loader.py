"""minigrad/data/loader.py: the seeded stratified split and the DataLoader."""
import numpy as np
import pytest

from minigrad.data import DataLoader, train_val_split


def test_split_sizes_and_stratification(digits):
    _, y = digits
    idx = np.arange(len(y))
    i_tr, y_tr, i_va, y_va = train_val_split(idx, y, val_fraction=0.2, seed=0)
    assert len(i_va) == round(0.2 * 1797) and len(i_tr) + len(i_va) == 1797
    total, in_val = np.bincount(y), np.bincount(y_va, minlength=10)
    quota = 0.2 * total
    assert np.all((in_val == np.floor(quota)) | (in_val == np.ceil(quota)))
    np.testing.assert_array_equal(y_tr, y[i_tr])       # rows stay paired with their labels
    np.testing.assert_array_equal(y_va, y[i_va])


def test_split_no_overlap_union_is_data_order_kept(digits):
    _, y = digits
    idx = np.arange(len(y))
    i_tr, _, i_va, _ = train_val_split(idx, y, seed=3)
    assert np.intersect1d(i_tr, i_va).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([i_tr, i_va])), idx)
    assert np.all(np.diff(i_tr) > 0) and np.all(np.diff(i_va) > 0)


def test_split_deterministic_and_seed_dependent(digits):
    X, y = digits
    a = train_val_split(X, y, seed=7)
    b = train_val_split(X, y, seed=7)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = train_val_split(X, y, seed=8)
    assert not np.array_equal(a[2], c[2])


def test_split_unstratified():
    y = np.array([0] * 90 + [1] * 10)
    X = np.arange(100)
    X_tr, y_tr, X_va, y_va = train_val_split(X, y, val_fraction=0.3, seed=1, stratify=False)
    assert len(X_va) == 30 and len(X_tr) == 70
    np.testing.assert_array_equal(y_va, y[X_va])
    assert not np.array_equal(X_va, train_val_split(X, y, 0.3, seed=2, stratify=False)[2])


def test_split_largest_remainder_keeps_total():
    y = np.repeat([0, 1, 2], 5)
    _, _, _, y_va = train_val_split(np.arange(15), y, val_fraction=0.5, seed=0)
    # round(7.5) == 8 rows; each class's exact share is 2.5, so two classes give 3, one gives 2.
    assert len(y_va) == 8 and sorted(np.bincount(y_va).tolist()) == [2, 3, 3]


def test_split_keeps_trailing_shape_and_dtype():
    X = np.arange(40, dtype=np.float64).reshape(10, 2, 2)
    X_tr, _, X_va, _ = train_val_split(X, np.arange(10) % 2, val_fraction=0.2)
    assert X_tr.shape == (8, 2, 2) and X_va.shape == (2, 2, 2) and X_va.dtype == np.float64


@pytest.mark.parametrize("fraction, error, message", [
    (0, ValueError, "strictly between 0 and 1, got 0"), (1, ValueError, "strictly between 0 and 1"),
    (1.5, ValueError, "strictly between 0 and 1"), (-0.1, ValueError, "strictly between 0 and 1"),
    (float("nan"), ValueError, "strictly between 0 and 1, got nan"),
    (True, TypeError, r"train_val_split: val_fraction must be a real number, got True \(bool\)"),
    ("0.2", TypeError, r"val_fraction must be a real number, got '0.2' \(str\)")])
def test_split_rejects_bad_fraction(fraction, error, message):
    with pytest.raises(error, match=message):
        train_val_split(np.zeros(10), np.zeros(10), val_fraction=fraction)


def test_split_takes_a_numpy_fraction():
    _, _, X_va, _ = train_val_split(np.arange(20), np.arange(20) % 2, val_fraction=np.float32(0.25), seed=np.int64(1))
    assert len(X_va) == 5


def test_split_rejects_length_mismatch_and_empty_parts():
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        train_val_split(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="0 validation"):
        train_val_split(np.zeros(4), np.zeros(4), val_fraction=0.1)
    with pytest.raises(ValueError, match="train_val_split: seed must be >= 0, got -1"):
        train_val_split(np.zeros(10), np.zeros(10), seed=-1)


# ---------------------------------------------------------------------------- DataLoader

def batches(loader):
    """One epoch as a list of (X_batch, y_batch)."""
    return [(xb.copy(), yb.copy()) for xb, yb in loader]


def sizes(n, batch_size, drop_last=False):
    loader = DataLoader(np.arange(n), np.arange(n), batch_size, drop_last=drop_last)
    got = [len(yb) for _, yb in loader]
    assert len(loader) == len(got)
    return got


def test_loader_covers_every_sample_once_per_epoch():
    X, y = np.arange(23) * 10, np.arange(23)
    loader = DataLoader(X, y, batch_size=5, seed=4)
    for _ in range(3):
        epoch = batches(loader)
        seen = np.concatenate([yb for _, yb in epoch])
        np.testing.assert_array_equal(np.sort(seen), y)
        for xb, yb in epoch:
            np.testing.assert_array_equal(xb, yb * 10)   # rows stay paired


@pytest.mark.parametrize("n, batch_size, drop_last, expected", [
    (12, 3, False, [3, 3, 3, 3]),
    (11, 3, False, [3, 3, 3, 2]),
    (10, 3, False, [3, 3, 4]),      # the lone 10th sample is folded into the last batch
    (9, 4, False, [4, 5]),
    (9, 8, False, [9]),
    (5, 8, False, [5]),
    (2, 1, False, [1, 1]),          # batch_size=1 is the caller's explicit choice
    (10, 3, True, [3, 3, 3]),
    (11, 3, True, [3, 3, 3]),
])
def test_loader_batch_sizes(n, batch_size, drop_last, expected):
    assert sizes(n, batch_size, drop_last) == expected


def test_loader_multidim_batches_keep_shape_and_dtype():
    X = np.zeros((7, 2, 3), dtype=np.float32)
    first = next(iter(DataLoader(X, np.zeros(7, dtype=np.int64), 4)))
    assert first[0].shape == (4, 2, 3) and first[0].dtype == np.float32
    assert first[1].dtype == np.int64


def test_loader_reshuffles_each_epoch_and_shuffle_false_is_ordered():
    loader = DataLoader(np.arange(50), np.arange(50), 50, seed=0)
    e0, e1 = batches(loader)[0][1], batches(loader)[0][1]
    assert not np.array_equal(e0, e1) and loader.epoch == 2
    plain = DataLoader(np.arange(50), np.arange(50), 50, shuffle=False)
    for _ in range(2):
        np.testing.assert_array_equal(batches(plain)[0][1], np.arange(50))


def test_loader_resume_at_epoch_reproduces_batches():
    X, y = np.arange(30), np.arange(30)
    original = DataLoader(X, y, 4, seed=11)
    history = [[yb for _, yb in batches(original)] for _ in range(5)]
    resumed = DataLoader(X, y, 4, seed=11)
    resumed.set_epoch(3)
    for k in (3, 4):
        got = [yb for _, yb in batches(resumed)]
        assert len(got) == len(history[k])
        for a, b in zip(got, history[k]):
            np.testing.assert_array_equal(a, b)
    assert resumed.epoch == 5
    assert not np.array_equal(np.concatenate(history[3]), np.concatenate(history[4]))


def test_loader_epoch_advances_even_if_loop_is_left_early_and_order_is_pure():
    loader = DataLoader(np.arange(20), np.arange(20), 3, seed=2)
    np.testing.assert_array_equal(loader.order(1), loader.order(1))
    assert loader.epoch == 0
    for _ in loader:
        break
    assert loader.epoch == 1
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in loader]), loader.order(1))


def test_loader_seed_changes_order():
    a = DataLoader(np.arange(40), np.arange(40), 8, seed=0).order(0)
    b = DataLoader(np.arange(40), np.arange(40), 8, seed=1).order(0)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("batch_size, error, message", [
    (0, ValueError, "DataLoader: batch_size must be >= 1, got 0"), (-2, ValueError, "must be >= 1, got -2"),
    (2.5, TypeError, "DataLoader: batch_size must be an int, got 2.5"), (True, TypeError, "an int, got True"),
    ("4", TypeError, "an int, got '4'"), (None, TypeError, "an int, got None")])
def test_loader_rejects_bad_batch_size(batch_size, error, message):
    with pytest.raises(error, match=message):
        DataLoader(np.arange(8), np.arange(8), batch_size)


def test_loader_takes_numpy_integers_as_plain_ints():
    loader = DataLoader(np.arange(8), np.arange(8), np.int64(3), seed=np.uint8(2))
    assert type(loader.batch_size) is int and type(loader.seed) is int and len(loader) == 3
    with pytest.raises(ValueError, match="DataLoader: seed must be >= 0, got -1"):
        DataLoader(np.arange(8), np.arange(8), 3, seed=-1)


def test_loader_rejects_single_sample_mismatch_and_empty_epoch():
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        DataLoader(np.zeros((1, 3)), np.zeros(1), 4)
    with pytest.raises(ValueError, match=r"X \(5,\) and y \(4,\)"):
        DataLoader(np.zeros(5), np.zeros(4), 2)
    with pytest.raises(ValueError, match="leaves no batches"):
        DataLoader(np.zeros(5), np.zeros(5), 8, drop_last=True)
    with pytest.raises(ValueError, match="DataLoader.set_epoch: epoch must be >= 0, got -1"):
        DataLoader(np.zeros(5), np.zeros(5), 2).set_epoch(-1)
    with pytest.raises(TypeError, match="DataLoader.order: epoch must be an int, got 1.0"):
        DataLoader(np.zeros(5), np.zeros(5), 2).order(1.0)
