"""MatMul (through ``@`` / ``linalg.matmul``, numpy's rules for 1-D and batched operands) and the
fused Affine op (behind nn.Linear): forward against numpy, gradients against finite differences, second order,
tensors used twice, shape errors.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.ops.linalg import Affine, MatMul
from minigrad.tensor import matmul


def leaf(shape, seed=0):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


MATMUL_SHAPES = [
    ((3, 4), (4, 2)),            # 2-D
    ((2, 3, 4), (2, 4, 5)),      # batched 3-D
    ((1, 3, 4), (2, 4, 2)),      # batch axis broadcast from 1
    ((3, 4), (2, 4, 2)),         # 2-D against a batch
    ((2, 1, 2, 3), (3, 3, 2)),   # batch axes (2, 1) and (3,) -> (2, 3)
    ((4,), (4, 3)),              # 1-D on the left
    ((3, 4), (4,)),              # 1-D on the right
    ((4,), (4,)),                # two vectors: a 0-d result
    ((4,), (2, 4, 3)),           # vector against a batch
    ((2, 3, 4), (4,)),           # batch against a vector
]


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES, ids=str)
def test_matmul_forward_and_gradcheck(a_shape, b_shape):
    a, b = leaf(a_shape, 1), leaf(b_shape, 2)
    y = a @ b
    expected = np.matmul(a.data, b.data)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    assert mg.gradcheck(lambda p, q: p @ q, [a, b])


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES[::2], ids=str)
def test_matmul_gradgradcheck(a_shape, b_shape):
    a, b = leaf(a_shape, 3), leaf(b_shape, 4)
    assert mg.gradgradcheck(lambda p, q: p @ q, [a, b])
    assert mg.gradgradcheck(lambda p, q: (p @ q) ** 2, [a, b])


def test_matmul_gradient_formula():
    a, b = leaf((3, 4), 1), leaf((4, 2), 2)
    g = np.random.default_rng(3).standard_normal((3, 2))
    (a @ b).backward(g)
    np.testing.assert_allclose(a.grad, g @ b.data.T)
    np.testing.assert_allclose(b.grad, a.data.T @ g)


def test_matmul_broadcast_batch_gradient_is_summed():
    a, b = leaf((3, 4), 1), leaf((2, 4, 5), 2)
    g = np.random.default_rng(3).standard_normal((2, 3, 5))
    (a @ b).backward(g)
    assert a.grad.shape == (3, 4)
    np.testing.assert_allclose(a.grad, sum(g[i] @ b.data[i].T for i in range(2)))


def test_matmul_with_numpy_operands():
    x, m = leaf((3,), 1), np.random.default_rng(2).standard_normal((2, 3))
    assert isinstance(m @ x, mg.Tensor) and isinstance(x @ m.T, mg.Tensor)
    np.testing.assert_allclose((m @ x).data, m @ x.data)
    assert mg.gradcheck(lambda t: m @ t, [x])
    assert mg.gradcheck(lambda t: t @ m.T, [x])
    assert matmul(x, m.T).shape == (2,)                          # (1, 3) @ (3, 2) squeezed back


def test_matmul_used_twice():
    x = leaf((3, 3), 5)
    assert mg.gradcheck(lambda t: t @ t, [x])
    assert mg.gradcheck(lambda t: t.T @ t, [x])
    assert mg.gradgradcheck(lambda t: t @ t, [x])
    v = leaf((3,), 6)
    assert mg.gradcheck(lambda t: t @ t, [v])                     # squared norm, 0-d


def test_matmul_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 6\)"):
        leaf((3, 4)) @ leaf((5, 6))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(2, 3, 4\)"):
        MatMul.apply(leaf((2, 3, 4)), leaf((2, 3, 4)))
    with pytest.raises(ValueError, match=r"at least one axis.*\(\) and \(3,\)"):
        mg.tensor(2.0) @ leaf((3,))


# ------------------------------------------------------------------ Affine: x @ W.T + b in one op
def linear_reference(x, w, b):
    return x @ w.T + (0.0 if b is None else b)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_linear_forward_and_gradcheck(bias):
    x, w = leaf((4, 3), 1), leaf((2, 3), 2)
    b = leaf((2,), 3) if bias else None
    y = Affine.apply(x, w, b)
    np.testing.assert_allclose(y.data, linear_reference(x.data, w.data, None if b is None else b.data),
                               rtol=1e-12)
    inputs = [x, w] + ([b] if bias else [])
    assert mg.gradcheck(lambda *t: Affine.apply(t[0], t[1], t[2] if bias else None), inputs)
    assert mg.gradgradcheck(lambda *t: Affine.apply(t[0], t[1], t[2] if bias else None) ** 2, inputs)


def test_linear_gradient_formulas():
    x, w, b = leaf((4, 3), 1), leaf((2, 3), 2), leaf((2,), 3)
    g = np.random.default_rng(4).standard_normal((4, 2))
    Affine.apply(x, w, b).backward(g)
    np.testing.assert_allclose(x.grad, g @ w.data)
    np.testing.assert_allclose(w.grad, g.T @ x.data)
    np.testing.assert_allclose(b.grad, g.sum(axis=0))


def test_linear_without_input_gradient():
    x = mg.tensor(np.random.default_rng(1).standard_normal((4, 3)))     # a first layer's input
    w, b = leaf((2, 3), 2), leaf((2,), 3)
    y = Affine.apply(x, w, b)
    assert y.grad_fn.needs_input_grad == [False, True, True]
    assert mg.gradcheck(lambda p, q: Affine.apply(x, p, q), [w, b])
    y.sum().backward()
    assert x.grad is None


def test_linear_used_twice():
    x, b = leaf((3, 3), 1), leaf((3,), 2)
    assert mg.gradcheck(lambda t, c: Affine.apply(t, t, c), [x, b])       # x @ x.T + b
    assert mg.gradgradcheck(lambda t, c: Affine.apply(t, t, c), [x, b])


def test_linear_shape_error():
    # checked once, in nn.functional.linear (the op itself trusts its caller)
    from minigrad.nn import functional as F
    with pytest.raises(ValueError, match=r"3 features.*\(2, 3\).*\(4, 5\)"):
        F.linear(leaf((4, 5)), leaf((2, 3)), None)


@pytest.mark.parametrize("a_dtype, b_dtype", [(np.float32, np.float64), (np.float64, np.float32),
                                              (np.int64, np.float32)], ids=str)
def test_matmul_of_two_dtypes_is_refused_as_in_pytorch(a_dtype, b_dtype):
    a = mg.tensor(np.ones((2, 3), a_dtype))
    b = mg.tensor(np.ones((3, 2), b_dtype))
    with pytest.raises(TypeError, match=rf"matmul: both operands need the same dtype, got "
                                        rf"{np.dtype(a_dtype)} and {np.dtype(b_dtype)}"):
        a @ b
    with pytest.raises(TypeError, match="same dtype"):
        np.ones((2, 3), a_dtype) @ mg.tensor(np.ones(3, b_dtype))     # a numpy operand too


def test_matmul_of_one_dtype_keeps_it():
    for dtype in (np.float32, np.float64, np.int64):
        a, b = mg.tensor(np.ones((2, 3), dtype)), mg.tensor(np.ones((3,), dtype))
        assert (a @ b).dtype == dtype
    x = mg.tensor(np.ones(3, np.float32))
    assert (x @ [1.0, 2.0, 3.0]).dtype == np.float32                 # a list: mg.tensor's float32
