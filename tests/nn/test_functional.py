"""Losses: cross_entropy (one fused, stable op with integer targets) and mse_loss, against
numpy references, with random upstream gradients, and their input validation."""
import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F
from minigrad.ops.fused import CrossEntropy

REDUCTIONS = ["mean", "sum", "none"]


def reference_cross_entropy(logits, target):
    """Per-row losses and d(sum of losses)/d logits, in float64, via a shifted log-sum-exp."""
    z = np.asarray(logits, np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(target))
    probs = np.exp(log_probs)
    onehot = np.zeros_like(z)
    onehot[rows, target] = 1
    return -log_probs[rows, target], probs - onehot


def reduce(losses, reduction):
    return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]


def problem(n=6, k=4, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)) * scale, rng.integers(0, k, n)


# ------------------------------------------------------------------ cross_entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_numpy(reduction):
    logits, target = problem()
    z = mg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, target, reduction=reduction)
    losses, grad_rows = reference_cross_entropy(logits, target)
    np.testing.assert_allclose(loss.data, reduce(losses, reduction), rtol=1e-12)
    assert loss.shape == (() if reduction != "none" else (6,))
    assert loss._ctx.fn is CrossEntropy                  # one fused node
    upstream = np.random.default_rng(1).standard_normal(loss.shape)
    loss.backward(upstream)
    if reduction == "none":
        expected = grad_rows * upstream[:, None]
    else:
        expected = grad_rows * upstream / (len(target) if reduction == "mean" else 1)
    np.testing.assert_allclose(z.grad, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradcheck_and_gradgradcheck(reduction):
    logits, target = problem(n=4, k=3, seed=2)
    z = mg.tensor(logits, requires_grad=True)
    assert mg.gradcheck(lambda z: F.cross_entropy(z, target, reduction), [z], raise_on_vacuous=True)
    assert mg.gradgradcheck(lambda z: F.cross_entropy(z, target, reduction), [z])


def test_cross_entropy_logits_used_twice_accumulate():
    logits, target = problem(seed=3)
    other = np.roll(target, 1)
    z = mg.tensor(logits, requires_grad=True)
    (F.cross_entropy(z, target, "sum") + 2.0 * F.cross_entropy(z * 3.0, other, "sum")).backward()
    _, grad_a = reference_cross_entropy(logits, target)
    _, grad_b = reference_cross_entropy(3 * logits, other)
    np.testing.assert_allclose(z.grad, grad_a + 6.0 * grad_b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_cross_entropy_accepts_integer_tensors(dtype):
    logits, target = problem(seed=4)
    expected = F.cross_entropy(mg.tensor(logits), target).data
    got = F.cross_entropy(mg.tensor(logits), mg.tensor(target.astype(dtype))).data
    np.testing.assert_array_equal(got, expected)
    got = F.cross_entropy(mg.tensor(logits), target.tolist()).data      # a list of ints
    np.testing.assert_array_equal(got, expected)


def test_cross_entropy_keeps_float32():
    logits, target = problem(seed=5)
    z = mg.tensor(logits.astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(z, target)
    loss.backward()
    assert loss.dtype == np.float32 and z.grad.dtype == np.float32
    np.testing.assert_allclose(loss.data, reference_cross_entropy(logits.astype(np.float32), target)[0].mean(),
                               rtol=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_finite_for_huge_logits(dtype, reduction):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4 - 1.0, -1e4]], dtype=dtype)
    target = np.array([1, 2, 0])
    z = mg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(z, target, reduction)
    upstream = np.random.default_rng(6).standard_normal(loss.shape).astype(dtype)
    loss.backward(upstream)
    assert np.isfinite(loss.data).all() and np.isfinite(z.grad).all()
    # by hand: row 0 loses 2e4, row 1 is uniform (log 3), row 2 is log(1 + e^-1)
    losses = np.array([2e4, np.log(3.0), np.log1p(np.exp(-1.0))])
    np.testing.assert_allclose(loss.data, reduce(losses, reduction), rtol=1e-6)
    _, grad_rows = reference_cross_entropy(logits, target)
    scale = upstream[:, None] if reduction == "none" else upstream / (3 if reduction == "mean" else 1)
    np.testing.assert_allclose(z.grad, grad_rows * scale, rtol=1e-5, atol=1e-7)


def test_cross_entropy_rejects_float_targets():
    logits, target = problem()
    with pytest.raises(TypeError, match="integer class targets, got dtype float64"):
        F.cross_entropy(mg.tensor(logits), target.astype(np.float64))
    with pytest.raises(TypeError, match="integer class targets"):
        F.cross_entropy(mg.tensor(logits), mg.tensor(target.astype(np.float32)))
    with pytest.raises(TypeError, match="integer class targets, got dtype bool"):
        F.cross_entropy(mg.tensor(logits), target > 1)


@pytest.mark.parametrize("bad", [np.zeros(5, np.int64), np.zeros((6, 1), np.int64), np.array(0)],
                         ids=["too-short", "2-D", "0-D"])
def test_cross_entropy_rejects_target_shapes(bad):
    logits, _ = problem()
    with pytest.raises(ValueError, match=r"need targets of shape \(6,\)"):
        F.cross_entropy(mg.tensor(logits), bad)


@pytest.mark.parametrize("value", [-1, 4, 100])
def test_cross_entropy_rejects_out_of_range_targets(value):
    logits, target = problem()
    target[2] = value
    with pytest.raises(ValueError, match=r"targets must be in \[0, 4\)"):
        F.cross_entropy(mg.tensor(logits), target)


def test_cross_entropy_rejects_bad_logits_and_reduction():
    logits, target = problem()
    with pytest.raises(ValueError, match=r"logits of shape \(N, K\)"):
        F.cross_entropy(mg.tensor(logits[0]), target[:1])
    with pytest.raises(ValueError, match="reduction must be"):
        F.cross_entropy(mg.tensor(logits), target, reduction="avg")


# ------------------------------------------------------------------ mse_loss
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_numpy(reduction):
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    z = mg.tensor(x, requires_grad=True)
    loss = F.mse_loss(z, t, reduction)
    np.testing.assert_allclose(loss.data, reduce((x - t) ** 2, reduction), rtol=1e-12)
    upstream = rng.standard_normal(loss.shape)
    loss.backward(upstream)
    factor = 1 / x.size if reduction == "mean" else 1.0
    np.testing.assert_allclose(z.grad, 2 * (x - t) * upstream * factor, rtol=1e-12)


def test_mse_loss_gradient_reaches_a_tensor_target():
    rng = np.random.default_rng(8)
    x = mg.tensor(rng.standard_normal(5), requires_grad=True)
    t = mg.tensor(rng.standard_normal(5), requires_grad=True)
    assert mg.gradcheck(lambda x, t: F.mse_loss(x, t, "none"), [x, t])
    F.mse_loss(x, t).backward()
    np.testing.assert_allclose(t.grad, -2 * (x.data - t.data) / 5, rtol=1e-12)


def test_mse_loss_keeps_float32():
    x = mg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    assert F.mse_loss(x, np.zeros(3, dtype=np.float32)).dtype == np.float32


def test_mse_loss_errors():
    x = mg.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"input shape \(2, 3\) and target shape \(3,\) differ"):
        F.mse_loss(x, np.ones(3))
    with pytest.raises(ValueError, match="reduction must be"):
        F.mse_loss(x, np.ones((2, 3)), reduction="bogus")
