"""minigrad/data/mnist1d.py: the bundled MNIST-1D split, read offline from the package."""
import numpy as np

from minigrad.data import load_mnist1d


def test_shapes_dtypes_and_labels():
    X_train, y_train, X_test, y_test = load_mnist1d()
    assert X_train.shape == (4000, 40) and X_test.shape == (1000, 40)
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert X_train.dtype == X_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    for y, n in ((y_train, 4000), (y_test, 1000)):
        counts = np.bincount(y, minlength=10)
        assert len(counts) == 10 and counts.sum() == n
        assert counts.min() >= 0.85 * n / 10 and counts.max() <= 1.15 * n / 10   # about n/10 each


def test_signals_are_centred_and_scaled_and_splits_differ():
    X_train, _, X_test, _ = load_mnist1d()
    assert abs(float(X_train.mean())) < 0.05 and 0.9 < float(X_train.std()) < 1.1
    assert np.isfinite(X_train).all() and np.isfinite(X_test).all()
    assert not any(np.array_equal(X_test[0], row) for row in X_train[:200])


def test_calls_return_independent_arrays():
    a, b = load_mnist1d(), load_mnist1d()
    a[0][0, 0] = 123.0
    assert b[0][0, 0] != 123.0
    np.testing.assert_array_equal(a[1], b[1])
