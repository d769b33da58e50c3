"""minigrad/data/digits.py: the bundled 8x8 digits (shapes, values, class counts), and a damaged
copy refused."""
import gzip

import numpy as np
import pytest

from minigrad.data import digits as digits_module
from minigrad.data import load_digits


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


def test_a_damaged_bundled_file_is_refused(tmp_path, monkeypatch):
    with gzip.open(tmp_path / "digits.csv.gz", "wt") as f:         # rows of 64 integers, not 65
        f.write("\n".join(",".join(["1"] * 64) for _ in range(3)) + "\n")
    monkeypatch.setattr(digits_module.importlib.resources, "files", lambda package: tmp_path)
    with pytest.raises(ValueError, match=r"expected rows of 65 integers, got shape \(3, 64\)"):
        load_digits()
