"""minigrad/data/idx.py: IDX files (written into tmp_path by ``write_idx``) and load_mnist;
nothing is downloaded."""
import gzip
import io

import numpy as np
import pytest

from minigrad.data import load_mnist, read_idx


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


def test_read_idx_at_the_size_boundaries(tmp_path):
    # a file of exactly its header: an empty array (a 0 dimension), not a truncated header
    write_idx(tmp_path / "empty", np.zeros((0,), dtype=np.uint8))
    assert read_idx(tmp_path / "empty").shape == (0,)
    # a magic number alone (0 dims): the missing value is a size error, not a missing magic
    write_idx(tmp_path / "magic", None, raw=b"\x00\x00\x08\x00")
    with pytest.raises(ValueError, match="needs 1 data bytes, found 0"):
        read_idx(tmp_path / "magic")
    write_idx(tmp_path / "scalar", None, raw=b"\x00\x00\x08\x00\x07")
    assert read_idx(tmp_path / "scalar").shape == () and read_idx(tmp_path / "scalar") == 7


@pytest.mark.parametrize("images", [np.zeros((5, 784), np.uint8), np.zeros((5, 28, 28), np.int16)],
                         ids=["2-D", "int16"])
def test_load_mnist_refuses_images_that_are_not_uint8_n_rows_cols(tmp_path, images):
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, rows, cols\)"):
        load_mnist(tmp_path)
