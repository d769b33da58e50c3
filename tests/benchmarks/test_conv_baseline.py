"""The hand-written numpy conv baseline (benchmarks/baselines.py) computes what minigrad's Conv
computes, forward and backward, in 1-D and 2-D (no timing here): a speed ratio against it means
something only if both sides do the same arithmetic.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
baseline = pytest.importorskip("baselines")   # benchmarks/baselines.py

CASES = [  # x shape, w shape, stride, padding, dilation, bias
    ((3, 2, 11), (4, 2, 3), 2, 1, 1, True),
    ((2, 3, 9), (2, 3, 2), 1, 0, 3, False),
    ((2, 2, 6, 7), (3, 2, 3, 2), (1, 2), (1, 0), (1, 2), True),
    ((1, 3, 5, 5), (2, 3, 3, 3), (2, 2), (2, 2), (1, 1), False),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, bias", CASES, ids=[str(c[0]) for c in CASES])
def test_numpy_conv_baseline_matches_minigrad(x_shape, w_shape, stride, padding, dilation, bias):
    rng = np.random.default_rng(0)
    x, w, dout = rng.standard_normal(x_shape), rng.standard_normal(w_shape), None
    b = rng.standard_normal(w_shape[0]) if bias else None
    if len(x_shape) == 3:
        out, cache = baseline.conv1d_forward(x, w, b, stride, padding, dilation)
        functional = F.conv1d
    else:
        out, cache = baseline.conv2d_forward(x, w, b, stride, padding, dilation)
        functional = F.conv2d
    tx, tw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    tb = mg.tensor(b, requires_grad=True) if bias else None
    y = functional(tx, tw, tb, stride, padding, dilation)
    np.testing.assert_allclose(out, y.data, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    y.backward(dout)
    dx, dw, db = baseline.conv_backward(dout, cache)
    np.testing.assert_allclose(dx, tx.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, tw.grad, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(db, tb.grad, rtol=1e-12, atol=1e-12)
    else:
        assert db is None
    no_dx, dw_again, _ = baseline.conv_backward(dout, cache, need_dx=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_again, dw)
