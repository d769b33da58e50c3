"""minigrad/data/synthetic.py: make_spirals."""
import numpy as np
import pytest

from minigrad.data import make_spirals


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
    with pytest.raises(ValueError, match="make_spirals: noise must be a number >= 0, got -1"):
        make_spirals(noise=-1)
    with pytest.raises(ValueError, match="got nan"):
        make_spirals(noise=float("nan"))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_per_class=0), ValueError, "make_spirals: n_per_class must be >= 1, got 0"),
    (dict(classes=2.0), TypeError, "make_spirals: classes must be an int, got 2.0"),
    (dict(seed=-3), ValueError, "make_spirals: seed must be >= 0, got -3"),
    (dict(noise="0.1"), TypeError, r"make_spirals: noise must be a real number, got '0.1' \(str\)")])
def test_spirals_refuse_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_spirals(**kwargs)


def test_spirals_take_numpy_numbers():
    X, y = make_spirals(n_per_class=np.int64(4), classes=np.uint8(2), noise=np.float32(0.0), seed=np.int32(3))
    np.testing.assert_array_equal(X, make_spirals(n_per_class=4, classes=2, noise=0.0, seed=3)[0])
