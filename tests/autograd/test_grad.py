"""mg.grad and higher-order gradients: several and repeated outputs, unused inputs, create_graph
through every kind of op (indexing included), constants in the second derivative.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F


def leaf(*shape, seed=0, low=-2.0, high=2.0):
    return mg.tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


# ------------------------------------------------------------------ mg.grad
def test_grad_returns_a_tuple_and_leaves_dot_grad_alone():
    x, w = leaf(3, seed=1), leaf(3, seed=2)
    y = (x * w).sum()
    result = mg.grad(y, [x, w])
    assert isinstance(result, tuple) and len(result) == 2
    assert all(isinstance(g, mg.Tensor) for g in result)
    np.testing.assert_allclose(result[0].data, w.data)
    np.testing.assert_allclose(result[1].data, x.data)
    assert x.grad is None and w.grad is None


def test_grad_of_several_outputs_with_grad_outputs():
    x = leaf(3)
    u1, u2 = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    (g,) = mg.grad([x * 2.0, x * x], x, grad_outputs=[u1, u2])
    np.testing.assert_allclose(g.data, 2 * u1 + 2 * x.data * u2)


def test_grad_with_respect_to_an_intermediate():
    x = leaf(3)
    h = x * 3.0
    (g,) = mg.grad((h * h).sum(), h)
    np.testing.assert_allclose(g.data, 2 * h.data)


def test_grad_unused_input():
    x, unused = leaf(3, seed=1), leaf(2, seed=2)
    with pytest.raises(RuntimeError, match=r"input 1 .*allow_unused=True"):
        mg.grad((x * x).sum(), [x, unused])
    gx, gu = mg.grad((x * x).sum(), [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.data, 2 * x.data)


def test_grad_without_create_graph_is_a_constant():
    x = leaf(3)
    (g,) = mg.grad((x * x * x).sum(), x)
    assert not g.requires_grad


# ------------------------------------------------------------------ higher order
def test_create_graph_gives_a_differentiable_grad():
    x = mg.tensor(np.array([1.0, 2.0, -3.0]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    first = x.grad
    assert isinstance(first, mg.Tensor) and first.requires_grad
    np.testing.assert_allclose(first.data, 3 * x.data ** 2)
    x.grad = None
    first.sum().backward()
    np.testing.assert_allclose(x.grad, 6 * x.data)     # d²/dx² x³ = 6x


def test_grad_of_grad_through_a_product_used_three_times():
    x = mg.tensor(np.array([0.5, -1.5]), requires_grad=True)
    (first,) = mg.grad((x * x * x).sum(), x, create_graph=True)
    (second,) = mg.grad(first.sum(), x)
    np.testing.assert_allclose(first.data, 3 * x.data ** 2)
    np.testing.assert_allclose(second.data, 6 * x.data)


@pytest.mark.parametrize("constant", [lambda x: x.detach(), lambda x: x.data], ids=["detach", "data"])
def test_a_detached_copy_stays_constant_in_the_second_derivative(constant):
    x = mg.tensor(np.array([1.5, 2.0]), requires_grad=True)
    (first,) = mg.grad((x * constant(x)).sum(), x, create_graph=True)
    np.testing.assert_allclose(first.data, x.data)     # d/dx (x * c) = c, a constant
    assert not first.requires_grad                     # so the second derivative is zero


def test_grad_of_a_repeated_output_sums_its_grad_outputs():
    x = leaf(3)
    y = x * x
    (g,) = mg.grad([y, y], [x], grad_outputs=[np.ones(3), 2 * np.ones(3)])
    np.testing.assert_allclose(g.data, 3 * 2 * x.data)         # (1 + 2) · dy/dx


def test_grad_of_several_outputs_sharing_a_subgraph():
    x = leaf(3, seed=1)
    h = x.exp()
    a, b = (h * 2).sum(), (h * h).sum()
    (g,) = mg.grad([a, b], [x])
    np.testing.assert_allclose(g.data, 2 * h.data + 2 * h.data ** 2, rtol=1e-12)
    assert x.grad is None                                     # mg.grad writes no .grad


def test_create_graph_through_indexing():
    x = leaf(5, seed=2)
    index = np.array([0, 0, 3])

    def f(t):
        return (t[index] ** 3).sum() + (t[1:3] ** 2).sum()
    assert mg.gradgradcheck(lambda t: t[index] * t[1:4], [x])
    (g,) = mg.grad(f(x), [x], create_graph=True)
    (h,) = mg.grad((g * g).sum(), [x])
    d = x.data
    expected_g = np.array([6 * d[0] ** 2, 2 * d[1], 2 * d[2], 3 * d[3] ** 2, 0.0])
    np.testing.assert_allclose(g.data, expected_g, rtol=1e-12)
    second = np.array([12 * d[0], 2, 2, 6 * d[3], 0.0])       # d²f/dx² on the diagonal
    np.testing.assert_allclose(h.data, 2 * expected_g * second, rtol=1e-12)


def test_cross_entropy_double_backward_is_stable_for_huge_logits():
    logits = mg.tensor(np.array([[1e4, -1e4, 0.0], [3.0, 1e4, -2.0]]), requires_grad=True)
    target = np.array([1, 1])
    (g,) = mg.grad(F.cross_entropy(logits, target), [logits], create_graph=True)
    v = np.random.default_rng(0).standard_normal((2, 3))
    (hv,) = mg.grad((g * mg.tensor(v)).sum(), [logits])
    assert np.isfinite(g.data).all() and np.isfinite(hv.data).all()
    np.testing.assert_allclose(g.data, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    assert mg.gradgradcheck(lambda z: F.cross_entropy(z, target), [mg.tensor(
        np.array([[30.0, -30.0, 0.5], [3.0, 29.0, -2.0]]), requires_grad=True)])



class SquareWithConstantSlope(mg.Function):
    """y = x²;   dx = 2 · dy · x, computed on plain arrays even under create_graph: a constant"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_y):
        (x,) = ctx.saved_tensors
        plain = lambda a: a.data if isinstance(a, mg.Tensor) else a   # noqa: E731
        return 2.0 * plain(grad_y) * plain(x)


def test_a_gradient_returned_as_a_plain_array_stays_a_constant_under_create_graph():
    x = mg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    (g,) = mg.grad((SquareWithConstantSlope.apply(x) * 3.0).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, 6.0 * x.data)
    assert not g.requires_grad                 # the plain array upstream is no graph input
    (h,) = mg.grad(SquareWithConstantSlope.apply(x * 3.0).sum(), [x], create_graph=True)
    np.testing.assert_allclose(h.data, 18.0 * x.data)          # d(9x²)/dx, its upstream wrapped
    assert not h.requires_grad


def test_grad_refuses_an_input_that_does_not_require_grad():
    x, c = leaf(3), mg.tensor(np.ones(3))
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(3,\)\) does not require grad"):
        mg.grad((x * c).sum(), [x, c])

