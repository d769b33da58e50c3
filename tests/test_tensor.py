"""Tensor: construction and dtype rules, attributes, operators (also with a scalar or an array on
the left), comparisons. Gradients of each op are checked in tests/ops; here only that each
operator reaches the right op and keeps the right dtype.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.ops import elementwise, linalg


# ------------------------------------------------------------------ construction
@pytest.mark.parametrize("data", [1.5, 3, [1, 2, 3], [[1.0, 2.0]]])
def test_python_numbers_become_float32(data):
    assert mg.tensor(data).dtype == np.float32
    assert mg.Tensor(data).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_numpy_arrays_keep_their_dtype(dtype):
    assert mg.tensor(np.zeros(3, dtype)).dtype == dtype
    assert mg.tensor(dtype(2.0)).dtype == dtype


def test_dtype_argument_overrides_the_default():
    assert mg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert mg.tensor(np.zeros(2), dtype=np.float32).dtype == np.float32


def test_construction_copies_a_numpy_array():
    array = np.ones(3)
    t = mg.tensor(array)
    array[0] = 5.0
    np.testing.assert_array_equal(t.data, [1.0, 1.0, 1.0])


def test_int_arrays_are_allowed_but_cannot_require_grad():
    t = mg.tensor(np.array([1, 2, 3], dtype=np.int64))
    assert t.dtype == np.int64 and not t.requires_grad
    with pytest.raises(TypeError, match=r"only floating-point tensors can require gradients.*int64"):
        mg.tensor(np.array([1, 2], dtype=np.int64), requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        t.requires_grad_()
    assert not t.requires_grad


def test_requires_grad_flag_on_floats():
    assert mg.tensor([1.0], requires_grad=True).requires_grad
    assert not mg.tensor([1.0]).requires_grad
    assert mg.tensor([1.0]).requires_grad_().requires_grad


def test_attributes():
    t = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert isinstance(t.data, np.ndarray)
    assert t.grad is None
    assert t.requires_grad is True
    assert t.shape == (2, 3)
    assert t.ndim == 2
    assert t.dtype == np.float64
    assert t.size == 6 and len(t) == 2
    assert t.is_leaf and t.grad_fn is None


def test_numpy_item_detach():
    t = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert t.numpy() is t.data
    item = mg.tensor(np.array([[4.5]])).item()
    assert item == 4.5 and isinstance(item, float)

    y = t * 3.0
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)           # same storage, cut off from the graph
    np.testing.assert_array_equal(d.numpy(), [3.0, 6.0])
    (d * t).sum().backward()                          # d is a constant: d/dt = d, nothing more
    np.testing.assert_array_equal(t.grad, [3.0, 6.0])


def test_repr():
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(mg.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(mg.tensor(np.array([1.0]))) == "tensor([1.], dtype=float64)"
    x = mg.tensor([1.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2.], grad_fn=<Mul>)"


# ------------------------------------------------------------------ operators
A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
B = np.array([[0.5, 1.5, 2.5], [3.0, 0.25, 2.0]])

BINARY = [
    ("add", lambda a, b: a + b, elementwise.Add),
    ("sub", lambda a, b: a - b, elementwise.Sub),
    ("mul", lambda a, b: a * b, elementwise.Mul),
    ("div", lambda a, b: a / b, elementwise.Div),
]


@pytest.mark.parametrize("name, op, fn", BINARY, ids=[b[0] for b in BINARY])
def test_binary_operators_call_their_op(name, op, fn):
    a, b = mg.tensor(A, requires_grad=True), mg.tensor(B)
    y = op(a, b)
    assert isinstance(y, mg.Tensor) and y.grad_fn.fn is fn
    np.testing.assert_allclose(y.data, op(A, B))


def test_unary_minus_pow_matmul():
    a = mg.tensor(A, requires_grad=True)
    assert (-a).grad_fn.fn is elementwise.Neg
    np.testing.assert_array_equal((-a).data, -A)
    assert (a ** 2).grad_fn.fn is elementwise.Pow
    np.testing.assert_allclose((a ** 2).data, A ** 2)
    np.testing.assert_allclose((a ** mg.tensor(B)).data, A ** B)    # tensor exponent
    y = a @ mg.tensor(B.T)
    assert y.grad_fn.fn is linalg.MatMul
    np.testing.assert_allclose(y.data, A @ B.T)


@pytest.mark.parametrize("left", [2.0, np.full(3, 2.0)], ids=["python-scalar", "numpy-array"])
def test_reflected_operators(left):
    x = mg.tensor(np.array([0.5, 1.0, 2.0]), requires_grad=True)
    cases = [
        (left + x, 2.0 + x.data, 1.0),
        (left - x, 2.0 - x.data, -1.0),
        (left * x, 2.0 * x.data, 2.0),
        (left / x, 2.0 / x.data, -2.0 / x.data ** 2),
        (left ** x, 2.0 ** x.data, 2.0 ** x.data * np.log(2.0)),
    ]
    for y, expected, slope in cases:
        assert isinstance(y, mg.Tensor), type(y)     # np.ones(3) + t is a Tensor, not an array
        np.testing.assert_allclose(y.data, expected)
        x.grad = None
        y.backward(np.ones(3))
        np.testing.assert_allclose(x.grad, np.broadcast_to(slope, (3,)))


def test_numpy_matrix_on_the_left_of_matmul():
    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = np.ones((2, 3)) @ x
    assert isinstance(y, mg.Tensor)
    np.testing.assert_allclose(y.data, [6.0, 6.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3,), ()], ids=["vector", "0-d"])
def test_python_scalars_take_the_tensor_dtype(dtype, shape):
    t = mg.tensor(np.full(shape, 2.0, dtype))
    results = [t + 2.0, 2.0 + t, t - 2, 2 - t, t * 2.0, 2.0 * t, t / 2.0, 2.0 / t,
               t ** 2.0, t ** 2, 2.0 ** t, -t]
    assert [r.dtype for r in results] == [dtype] * len(results)


def test_float32_grad_stays_float32_next_to_a_float64_constant():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * np.array([3.0, 4.0])).sum().backward()       # the product itself is float64
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


# ------------------------------------------------------------------ comparisons
def test_comparisons_are_boolean_and_not_differentiable():
    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    other = mg.tensor(np.array([3.0, 2.0, 1.0]))
    cases = [(x < 2, [True, False, False]), (x <= 2, [True, True, False]),
             (x > 2, [False, False, True]), (x >= 2, [False, True, True]),
             (x == 2, [False, True, False]), (x != 2, [True, False, True]),
             (x == other, [False, True, False]), (2 < x, [False, False, True]),
             (np.full(3, 2.0) > x, [True, False, False])]
    for result, expected in cases:
        assert isinstance(result, mg.Tensor)
        assert result.dtype == np.bool_
        assert not result.requires_grad and result.grad_fn is None
        np.testing.assert_array_equal(result.data, expected)


def test_boolean_tensor_as_a_mask_and_as_a_factor():
    x = mg.tensor(np.array([-1.0, 2.0, 3.0]), requires_grad=True)
    np.testing.assert_array_equal(x[x > 0].data, [2.0, 3.0])
    (x * (x > 0)).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0])


def test_tensors_hash_by_identity():
    a, b = mg.tensor([1.0]), mg.tensor([1.0])
    assert len({a, b, a}) == 2


@pytest.mark.parametrize("bad", ["abc", None, [object()], np.array([1, "a"], dtype=object), {"a": 1}])
def test_construction_refuses_what_is_not_numbers(bad):
    with pytest.raises(TypeError, match="expected numbers"):
        mg.tensor(bad)


def test_python_scalar_conversions_of_one_element_tensors():
    t = mg.tensor([[2.5]], requires_grad=True)
    assert float(t) == 2.5 and int(t) == 2 and bool(t) is True and t.item() == 2.5
    assert np.asarray(t) is t.data
    many = mg.tensor([1.0, 2.0])
    for convert in (float, int, lambda u: u.item()):
        with pytest.raises(ValueError, match="only one element tensors"):
            convert(many)
    with pytest.raises(ValueError):
        bool(many)                                 # ambiguous, as numpy and torch say


def test_requires_grad_can_be_switched_off_on_a_leaf_only():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    assert x.requires_grad_(False) is x and not x.requires_grad
    assert not (x * 2).requires_grad
    y = mg.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


# ------------------------------------------------------------------ complex numbers: data, never gradients
def test_complex_tensors_cannot_require_grad():
    z = mg.tensor(np.array([1 + 2j, 3j]))
    message = r"complex128: minigrad differentiates floating-point \(real\) tensors only \(complex data can"
    with pytest.raises(TypeError, match=message):
        z.requires_grad_()
    with pytest.raises(TypeError, match=message.replace("128", "64")):
        mg.tensor(np.array([1j], np.complex64), requires_grad=True)
    assert not z.requires_grad


@pytest.mark.parametrize("make", [lambda x: x * np.array([1j, 2j]), lambda x: x * 1j,
                                  lambda x: mg.tensor(np.array([1j, 1j])) + x, lambda x: 1j ** x,
                                  lambda x: x / np.complex64(2j)],
                         ids=["array", "python-complex", "tensor", "pow", "numpy-complex"])
def test_complex_never_enters_a_graph(make):
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"produced a complex\d+ result from an input that requires grad: "
                                        r"minigrad differentiates floating-point \(real\) tensors only"):
        make(x)
    with mg.no_grad():
        y = make(x)                                # without grad complex data is fine
    assert y.dtype.kind == "c" and not y.requires_grad


def test_complex_data_without_grad_promotes_as_pytorch_does():
    z = mg.tensor(np.array([1 + 1j, 2j], np.complex64))
    assert (z * 2.0).dtype == np.complex64 and (z * mg.tensor([1.0, 2.0])).dtype == np.complex64
    np.testing.assert_array_equal((z * mg.tensor([1.0, 2.0])).data, [1 + 1j, 4j])
