"""Tests for minigrad.data: bundled digits, the seeded split, DataLoader, IDX/MNIST, spirals.

IDX files are written into pytest's tmp_path by ``write_idx`` below; nothing is downloaded.
"""
import gzip
import io

import numpy as np
import pytest

from minigrad.data import (DataLoader, load_digits, load_mnist, make_spirals, read_idx,
                           train_val_split)


# ---------------------------------------------------------------------------- digits

@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_digits_shapes_dtypes_range(digits):
    X, y = digits
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0


def test_digits_pixels_are_sixteenths_and_first_rows_match_csv(digits):
    X, y = digits
    counts = X * 16
    np.testing.assert_array_equal(counts, np.round(counts))
    # The first CSV row starts 0,0,5,13,9,1,0,0 and is a 0; the second is a 1.
    np.testing.assert_array_equal(counts[0, :8], [0, 0, 5, 13, 9, 1, 0, 0])
    assert y[:2].tolist() == [0, 1]


def test_digits_class_counts(digits):
    _, y = digits
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.sum() == 1797
    assert counts.min() >= 170 and counts.max() <= 190


def test_digits_calls_return_independent_arrays():
    X1, _ = load_digits()
    X1[:] = -1
    X2, _ = load_digits()
    assert X2.min() == 0.0


# ---------------------------------------------------------------------------- split

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


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, True, "0.2"])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        train_val_split(np.zeros(10), np.zeros(10), val_fraction=fraction)


def test_split_rejects_length_mismatch_and_empty_parts():
    with pytest.raises(ValueError, match="same length, got 10 and 9"):
        train_val_split(np.zeros(10), np.zeros(9))
    with pytest.raises(ValueError, match="0 validation"):
        train_val_split(np.zeros(4), np.zeros(4), val_fraction=0.1)
    with pytest.raises(ValueError, match="seed"):
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


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, True, "4", None])
def test_loader_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        DataLoader(np.arange(8), np.arange(8), batch_size)


def test_loader_rejects_single_sample_mismatch_and_empty_epoch():
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        DataLoader(np.zeros((1, 3)), np.zeros(1), 4)
    with pytest.raises(ValueError, match=r"X \(5,\) and y \(4,\)"):
        DataLoader(np.zeros(5), np.zeros(4), 2)
    with pytest.raises(ValueError, match="leaves no batches"):
        DataLoader(np.zeros(5), np.zeros(5), 8, drop_last=True)
    with pytest.raises(ValueError, match="epoch"):
        DataLoader(np.zeros(5), np.zeros(5), 2).set_epoch(-1)


# ---------------------------------------------------------------------------- IDX / MNIST

CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
         np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array):
    """Encode ``array`` as an IDX file: magic, big-endian uint32 dims, big-endian values."""
    header = bytes([0, 0, CODES[array.dtype], array.ndim])
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, gz=False, raw=None):
    data = idx_bytes(array) if raw is None else raw
    (path.with_name(path.name + ".gz") if gz else path).write_bytes(
        gzip.compress(data) if gz else data)


def fake_mnist(directory, prefix, n, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    write_idx(directory / f"{prefix}-images-idx3-ubyte", images, gz)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    write_idx(tmp_path / "a.idx", array, gz)
    got = read_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, array)
    got[0, 0, 0] = 1  # a writable array


def test_read_idx_file_object():
    array = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(io.BytesIO(idx_bytes(array))), array)


def test_load_mnist_plain_and_gz(tmp_path):
    images, labels = fake_mnist(tmp_path, "train", 6)
    t_images, t_labels = fake_mnist(tmp_path, "t10k", 4, gz=True, seed=1)
    X, y = load_mnist(tmp_path)
    assert X.shape == (6, 784) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(6, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    X_test, y_test = load_mnist(str(tmp_path), split="test")
    assert X_test.shape == (4, 784) and 0.0 <= X_test.min() and X_test.max() <= 1.0
    np.testing.assert_array_equal(X_test * 255, t_images.reshape(4, 784).astype(np.float32))
    np.testing.assert_array_equal(y_test, t_labels)


def test_load_mnist_missing_files_names_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        assert str(tmp_path / stem) in message and str(tmp_path / (stem + ".gz")) in message
    fake_mnist(tmp_path, "t10k", 3)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        load_mnist(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be"):
        load_mnist(tmp_path, split="valid")


def test_read_idx_bad_magic(tmp_path):
    good = idx_bytes(np.zeros((2, 2), dtype=np.uint8))
    write_idx(tmp_path / "bad", None, raw=b"\x12\x34" + good[2:])
    with pytest.raises(ValueError, match="bad IDX magic number 0x12340802"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "code", None, raw=b"\x00\x00\x07\x02" + good[4:])
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "code")


def test_read_idx_truncated_and_size_mismatch(tmp_path):
    good = idx_bytes(np.zeros((3, 4), dtype=np.int16))     # 12 values * 2 bytes of data
    write_idx(tmp_path / "short", None, raw=good[:-5])
    with pytest.raises(ValueError, match=r"truncated: shape \(3, 4\) of i2 needs 24 data bytes, "
                                         r"found 19"):
        read_idx(tmp_path / "short")
    write_idx(tmp_path / "long", None, raw=good + b"\x00")
    with pytest.raises(ValueError, match="size mismatch.*needs 24 data bytes, found 25"):
        read_idx(tmp_path / "long")
    write_idx(tmp_path / "header", None, raw=good[:9])
    with pytest.raises(ValueError, match="truncated header: 2 dims need 12 bytes, file has 9"):
        read_idx(tmp_path / "header")
    write_idx(tmp_path / "tiny", None, raw=b"\x00\x00")
    with pytest.raises(ValueError, match="4-byte IDX magic"):
        read_idx(tmp_path / "tiny")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match="does not decompress"):
        read_idx(tmp_path / "cut.gz")


def test_load_mnist_count_mismatch_and_wrong_kind(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, dtype=np.uint8), gz=True)
    with pytest.raises(ValueError, match="count mismatch.*5 images.*4 labels"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((5, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 labels of shape \(N,\)"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------------------- spirals

def test_spirals_shape_dtype_classes():
    X, y = make_spirals()
    assert X.shape == (300, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100, 100]
    assert np.abs(X).max() <= 1.0 + 1e-6
    X2, y2 = make_spirals(n_per_class=7, classes=2)
    assert X2.shape == (14, 2) and y2.tolist() == [0] * 7 + [1] * 7


def test_spirals_deterministic_and_seeded():
    np.testing.assert_array_equal(make_spirals(seed=5)[0], make_spirals(seed=5)[0])
    assert not np.array_equal(make_spirals(seed=5)[0], make_spirals(seed=6)[0])


def test_spirals_noise_free_geometry():
    X, _ = make_spirals(n_per_class=5, classes=2, noise=0.0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius, np.tile(np.linspace(0, 1, 5), 2), atol=1e-6)
    # Two arms, half a turn apart: the outer ends are opposite points.
    np.testing.assert_allclose(X[4], -X[9], atol=1e-6)
    with pytest.raises(ValueError, match="noise"):
        make_spirals(noise=-1)
