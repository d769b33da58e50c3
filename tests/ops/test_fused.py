"""CrossEntropy, the fused log-softmax + negative log-likelihood: forward against a numpy
log-softmax, each reduction, stability for logits of ±1e4, gradients to first and second order.
(BatchNormFused is tested against the composed batch norm in tests/nn.)
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.ops.fused import CrossEntropy

TARGET = np.array([0, 2, 1, 2])


def logits(seed=0, shape=(4, 3)):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def reference(z, target, reduction):
    losses = -log_softmax(z)[np.arange(len(target)), target]        # (N,)
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_forward_matches_numpy(reduction):
    z = logits()
    y = CrossEntropy.apply(z, TARGET, reduction=reduction)
    expected = reference(z.data, TARGET, reduction)
    assert y.shape == np.shape(expected) and type(y.data) is np.ndarray
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(reduction):
    assert mg.gradcheck(lambda z: CrossEntropy.apply(z, TARGET, reduction=reduction), [logits(1)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradgradcheck(reduction):
    assert mg.gradgradcheck(lambda z: CrossEntropy.apply(z, TARGET, reduction=reduction), [logits(2)])


def test_gradient_is_softmax_minus_onehot_over_n():
    z = logits(3)
    CrossEntropy.apply(z, TARGET, reduction="mean").backward()
    probs = np.exp(log_softmax(z.data))
    onehot = np.eye(3)[TARGET]
    np.testing.assert_allclose(z.grad, (probs - onehot) / 4)


def test_none_reduction_weights_each_row():
    z = logits(4)
    g = np.array([1.0, 0.0, -2.0, 0.5])
    CrossEntropy.apply(z, TARGET, reduction="none").backward(g)
    probs = np.exp(log_softmax(z.data))
    np.testing.assert_allclose(z.grad, (probs - np.eye(3)[TARGET]) * g[:, None])


def test_used_twice():
    z = logits(5)
    fn = lambda t: CrossEntropy.apply(t, TARGET, reduction="sum") * (t * t).mean()   # noqa: E731
    assert mg.gradcheck(fn, [z])
    assert mg.gradgradcheck(fn, [z])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_for_huge_logits(dtype):
    z = mg.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, -1e4]], dtype),
                  requires_grad=True)
    target = np.array([0, 0, 2])
    losses = CrossEntropy.apply(z, target, reduction="none")
    assert losses.dtype == dtype
    assert np.isfinite(losses.data).all()
    np.testing.assert_allclose(losses.data, [0.0, 2e4 + np.log(2.0), 2e4 + np.log(2.0)], rtol=1e-6)
    losses.sum().backward()
    assert np.isfinite(z.grad).all()
    np.testing.assert_allclose(z.grad, [[0.0, 0.0, 0.0], [-1.0, 0.5, 0.5], [0.5, 0.5, -1.0]], atol=1e-6)


def test_huge_logits_under_anomaly_detection():
    z = mg.tensor(np.array([[1e4, -1e4], [-1e4, 1e4]]), requires_grad=True)
    with mg.detect_anomaly():
        CrossEntropy.apply(z, np.array([1, 1]), reduction="mean").backward()
    assert np.isfinite(z.grad).all()


def test_targets_get_no_gradient():
    z = logits(6)
    y = CrossEntropy.apply(z, TARGET, reduction="mean")
    assert y.grad_fn.needs_input_grad == [True, False]
    assert y.grad_fn.parents[1] is None


def test_cross_entropy_second_derivatives_are_finite_for_rows_far_apart():
    """The softmax rebuilt for create_graph shifts each row by its own maximum: shifting by the
    largest logit of the batch would underflow a row 1000 below it to 0/0."""
    z = np.array([[1000.0, 1001.0, 999.0], [0.0, 1.0, -1.0]])
    results = []
    for logits_ in (z, z - z.max(axis=1, keepdims=True)):    # softmax is shift-invariant per row
        t = mg.tensor(logits_, requires_grad=True)
        (g,) = mg.grad(CrossEntropy.apply(t, np.array([1, 0]), "mean"), [t], create_graph=True)
        (h,) = mg.grad((g * g).sum(), [t])
        results.append((g.data, h.data))
    assert np.isfinite(results[0][1]).all()
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-9, atol=1e-12)
