"""Elementwise ops: forward against numpy, gradients against finite differences (float64, random
upstream gradient, via mg.gradcheck), broadcasting, a tensor used twice, second order; the result
dtype by PyTorch's promotion rules (an explicit table, and every pair against torch).
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minigrad as mg
from minigrad.ops import elementwise


def leaf(shape, seed=0, low=-2.0, high=2.0):
    return mg.tensor(np.random.default_rng(seed).uniform(low, high, shape), requires_grad=True)


def away_from_zero(shape, seed=0):
    """Values in ±[0.2, 2]: ReLU's kink at 0 stays farther than eps from every entry."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    return mg.tensor(values, requires_grad=True)


# name, tensor function, numpy reference, input domain
UNARY = [
    ("neg", lambda t: -t, lambda a: -a, (-2.0, 2.0)),
    ("exp", lambda t: t.exp(), np.exp, (-2.0, 2.0)),
    ("log", lambda t: t.log(), np.log, (0.3, 3.0)),
    ("sqrt", lambda t: t.sqrt(), np.sqrt, (0.3, 3.0)),
    ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0.0), None),
    ("pow2", lambda t: t ** 2, lambda a: a ** 2, (-2.0, 2.0)),
    ("pow3", lambda t: t ** 3, lambda a: a ** 3, (-2.0, 2.0)),
    ("pow_half", lambda t: t ** 0.5, np.sqrt, (0.3, 3.0)),
    ("pow_neg", lambda t: t ** -1.5, lambda a: a ** -1.5, (0.3, 3.0)),
    ("pow_zero", lambda t: t ** 0, lambda a: a ** 0, (0.3, 3.0)),
]
UNARY_IDS = [u[0] for u in UNARY]


def unary_input(domain, shape=(3, 4), seed=0):
    return away_from_zero(shape, seed) if domain is None else leaf(shape, seed, *domain)


@pytest.mark.parametrize("name, op, reference, domain", UNARY, ids=UNARY_IDS)
def test_unary_forward(name, op, reference, domain):
    x = unary_input(domain)
    y = op(x)
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y.data, reference(x.data), rtol=1e-12)
    x32 = mg.tensor(x.data.astype(np.float32))
    assert op(x32).dtype == np.float32


@pytest.mark.parametrize("name, op, reference, domain", UNARY, ids=UNARY_IDS)
def test_unary_gradcheck(name, op, reference, domain):
    if name == "pow_zero":   # the output is constant: gradcheck rightly calls that vacuous
        with pytest.warns(mg.VacuousGradcheckWarning):
            assert mg.gradcheck(op, [unary_input(domain)])
        return
    assert mg.gradcheck(op, [unary_input(domain)])


@pytest.mark.parametrize("name, op, reference, domain", UNARY, ids=UNARY_IDS)
def test_unary_used_twice(name, op, reference, domain):
    x = unary_input(domain, shape=(5,), seed=1)
    assert mg.gradcheck(lambda t: op(t) * t + op(t), [x])


@pytest.mark.parametrize("name, op, reference, domain", UNARY, ids=UNARY_IDS)
def test_unary_gradgradcheck(name, op, reference, domain):
    x = unary_input(domain, shape=(2, 3), seed=2)
    assert mg.gradgradcheck(op, [x])
    assert mg.gradgradcheck(lambda t: op(t) * t, [x])   # nonzero second derivative for every op


def test_analytic_gradients_on_known_values():
    x = mg.tensor(np.array([0.5, 1.0, 4.0]), requires_grad=True)
    cases = [(lambda t: t.exp(), np.exp(x.data)), (lambda t: t.log(), 1 / x.data),
             (lambda t: t.sqrt(), 0.5 / np.sqrt(x.data)), (lambda t: t ** 3, 3 * x.data ** 2),
             (lambda t: -t, -np.ones(3))]
    for op, expected in cases:
        x.grad = None
        op(x).backward(np.ones(3))
        np.testing.assert_allclose(x.grad, expected)


def test_relu_gradient_at_zero_is_zero():
    x = mg.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().backward(np.array([5.0, 5.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 5.0])


# ------------------------------------------------------------------ binary ops
BINARY = [
    ("add", lambda a, b: a + b, (-2.0, 2.0)),
    ("sub", lambda a, b: a - b, (-2.0, 2.0)),
    ("mul", lambda a, b: a * b, (-2.0, 2.0)),
    ("div", lambda a, b: a / b, (0.5, 2.0)),             # keep the divisor away from 0
    ("pow", lambda a, b: a ** b, (0.5, 2.0)),            # tensor ** tensor = exp(b log a), a > 0
]
BINARY_IDS = [b[0] for b in BINARY]
SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((5, 4), (4,)), ((4,), (5, 4)), ((2, 3), ()), ((), (2, 3))]
SHAPE_IDS = ["same", "col-row", "matrix-vector", "vector-matrix", "matrix-scalar", "scalar-matrix"]


@pytest.mark.parametrize("shapes", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name, op, domain", BINARY, ids=BINARY_IDS)
def test_binary_forward_and_gradcheck(name, op, domain, shapes):
    a, b = leaf(shapes[0], 1, *domain), leaf(shapes[1], 2, *domain)
    y = op(a, b)
    np.testing.assert_allclose(y.data, op(a.data, b.data), rtol=1e-12)
    assert mg.gradcheck(op, [a, b])


@pytest.mark.parametrize("shapes", SHAPES[1:3], ids=SHAPE_IDS[1:3])
@pytest.mark.parametrize("name, op, domain", BINARY, ids=BINARY_IDS)
def test_binary_gradgradcheck(name, op, domain, shapes):
    a, b = leaf(shapes[0], 3, *domain), leaf(shapes[1], 4, *domain)
    assert mg.gradgradcheck(op, [a, b])
    assert mg.gradgradcheck(lambda p, q: op(p, q) * op(p, q), [a, b])   # linear ops get curvature


@pytest.mark.parametrize("name, op, domain", BINARY, ids=BINARY_IDS)
def test_binary_used_twice(name, op, domain):
    x = leaf((4,), 5, 0.6, 2.0)      # x - x² and x / x² have nonzero slopes on (0.6, 2)
    assert mg.gradcheck(lambda t: op(t, t * t), [x])
    assert mg.gradgradcheck(lambda t: op(t, t * t), [x])


@pytest.mark.parametrize("name, op, domain", BINARY, ids=BINARY_IDS)
def test_python_scalar_on_either_side(name, op, domain):
    x = leaf((2, 3), 6, 0.5, 2.0)
    for fn in (lambda t: op(t, 1.5), lambda t: op(1.5, t)):
        np.testing.assert_allclose(fn(x).data, fn(x.data), rtol=1e-12)
        assert mg.gradcheck(fn, [x])
        assert mg.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name, op, domain", BINARY, ids=BINARY_IDS)
def test_numpy_array_on_either_side(name, op, domain):
    x = leaf((2, 3), 7, 0.5, 2.0)
    c = np.random.default_rng(8).uniform(0.5, 2.0, (3,))
    for fn in (lambda t: op(t, c), lambda t: op(c, t)):
        y = fn(x)
        assert isinstance(y, mg.Tensor)
        np.testing.assert_allclose(y.data, fn(x.data), rtol=1e-12)
        assert mg.gradcheck(fn, [x])


def test_binary_analytic_gradients():
    a = mg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = mg.tensor(np.array([4.0, -0.5]), requires_grad=True)
    g = np.array([1.0, 3.0])
    (a / b).backward(g)
    np.testing.assert_allclose(a.grad, g / b.data)
    np.testing.assert_allclose(b.grad, -g * a.data / b.data ** 2)
    a.grad = b.grad = None
    (a - b).backward(g)
    np.testing.assert_allclose(a.grad, g)
    np.testing.assert_allclose(b.grad, -g)


def test_only_inputs_that_need_it_get_a_gradient():
    a, b = leaf((3,), 1), mg.tensor(np.ones(3))
    y = a * b
    assert y.grad_fn.parents[1] is None and y.grad_fn.needs_input_grad == [True, False]
    assert elementwise.Mul.backward(y.grad_fn, np.ones(3))[1] is None
    y.sum().backward()
    assert b.grad is None


@settings(max_examples=15, deadline=None, derandomize=True)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       which=st.sampled_from(BINARY_IDS))
def test_any_broadcast_pair(shapes, which):
    _, op, domain = BINARY[BINARY_IDS.index(which)]
    a, b = leaf(shapes.input_shapes[0], 1, *domain), leaf(shapes.input_shapes[1], 2, *domain)
    y = op(a, b)
    assert y.shape == shapes.result_shape
    np.testing.assert_allclose(y.data, op(a.data, b.data), rtol=1e-12)
    assert mg.gradcheck(op, [a, b])


# ------------------------------------------------------------------ pow with a tensor exponent
def test_pow_negative_base_with_an_integral_tensor_exponent():
    x = mg.tensor(np.array([-2.0, -3.0]), requires_grad=True)
    t = mg.tensor(np.array([2.0, 3.0]), requires_grad=True)
    y = x ** t
    np.testing.assert_allclose(y.data, [4.0, -27.0])           # not exp(t log x) = NaN
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_allclose(x.grad, [-4.0, 27.0])           # t · x^(t-1)
    assert np.isnan(t.grad).all()                              # log of a negative, as torch


def test_pow_zero_to_the_zero_is_one_with_zero_gradients():
    x = mg.tensor(np.array([0.0, 0.0]), requires_grad=True)
    t = mg.tensor(np.array([0.0, 2.0]), requires_grad=True)
    y = x ** t
    np.testing.assert_array_equal(y.data, [1.0, 0.0])
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])          # d(x²)/dx at 0 is 0, d(x⁰)/dx is 0
    np.testing.assert_array_equal(t.grad, [0.0, 0.0])          # torch masks x = 0 to 0


def test_pow_second_derivative_at_zero_is_finite():
    x = mg.tensor(np.array([0.0, 1.5]), requires_grad=True)
    t = mg.tensor(np.array([2.0, 2.0]))
    (dx,) = mg.grad((x ** t).sum(), [x], create_graph=True)
    (d2,) = mg.grad(dx.sum(), [x])
    np.testing.assert_allclose(d2.data, [2.0, 2.0])            # d²(x²)/dx² = 2 everywhere


def test_pow_with_tensor_exponent_gradchecks_and_keeps_float32():
    a = leaf((3, 2), seed=11, low=0.5, high=2.0)
    b = leaf((3, 2), seed=12, low=-1.5, high=1.5)
    assert mg.gradcheck(lambda p, q: p ** q, [a, b])
    assert mg.gradgradcheck(lambda p, q: p ** q, [a, b])
    assert mg.gradcheck(lambda q: 2.0 ** q, [b])                 # a number as the base
    assert mg.gradgradcheck(lambda q: 2.0 ** q, [b])
    x = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    y = 2.0 ** x + x ** mg.tensor(np.full(3, 2.0, np.float32))
    y.backward(np.ones(3, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_pow_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    base = np.array([-2.0, 0.0, 0.0, 1.5, 3.0, -1.0])
    exponent = np.array([2.0, 0.0, 3.0, -0.5, 1.25, 3.0])
    g = rng.standard_normal(6)
    x, t = mg.tensor(base, requires_grad=True), mg.tensor(exponent, requires_grad=True)
    (x ** t).backward(g)
    xt = torch.tensor(base, requires_grad=True)
    tt = torch.tensor(exponent, requires_grad=True)
    (xt ** tt).backward(torch.from_numpy(g))
    np.testing.assert_allclose((x ** t).data, (xt ** tt).detach().numpy())
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), equal_nan=True)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), equal_nan=True)


# ------------------------------------------------------------------ dtype promotion (PyTorch's rules)
def operand(spec):
    """'float32[2]' -> an array with an axis, 'float32[]' -> a 0-d array, else a Python number."""
    if spec.endswith("]"):
        dtype, shape = spec[:-1].split("[")
        return np.ones((2,) if shape else (), dtype)
    return {"True": True, "2": 2, "2.5": 2.5, "1j": 1j, "np.float64": np.float64(2.0),
            "np.float32": np.float32(2.0), "np.int64": np.int64(2)}[spec]


# a, b, the dtype of a + b, a * b (and a - b unless a bool is involved) -- the docs' table
PROMOTION = [
    ("float32[2]", "int64[2]", "float32"),         # numpy: float64
    ("float32[2]", "float64[]", "float32"),        # numpy: float64; a 0-d operand ranks lower
    ("float32[2]", "float64[2]", "float64"),       # same rank: promoted
    ("float32[]", "float64[]", "float64"),
    ("float32[2]", "2.5", "float32"),
    ("float32[2]", "np.float64", "float32"),       # numpy scalars count as Python numbers
    ("float16[2]", "2.5", "float16"),
    ("float16[2]", "int64[2]", "float16"),         # numpy: float64
    ("int64[2]", "2.5", "float32"),                # numpy: float64
    ("int64[2]", "float64[]", "float64"),          # a higher category wins whatever its rank
    ("int32[2]", "int64[]", "int32"),              # numpy: int64
    ("int32[2]", "2", "int32"),
    ("uint8[2]", "int64[]", "uint8"),
    ("int8[2]", "uint8[2]", "int16"),
    ("int64[]", "2.5", "float32"),
    ("bool[2]", "2", "int64"),
    ("bool[2]", "int8[]", "int8"),
    ("float32[2]", "1j", "complex64"),
    ("float64[2]", "1j", "complex128"),
    ("int64[2]", "1j", "complex64"),
    ("float32[2]", "complex128[]", "complex64"),
]


@pytest.mark.parametrize("a, b, expected", PROMOTION, ids=[f"{a}-{b}" for a, b, _ in PROMOTION])
def test_binary_ops_promote_as_pytorch_does(a, b, expected):
    x, y = operand(a), operand(b)
    for left, right in ((x, y), (y, x)):                 # the rules are symmetric
        ops = [lambda p, q: p + q, lambda p, q: p * q] + ([lambda p, q: p - q] if "bool" not in a else [])
        for op in ops:
            result = op(*(mg.tensor(v) if isinstance(v, np.ndarray) else v for v in (left, right)))
            assert result.dtype == np.dtype(expected), (a, b, result.dtype)
    assert elementwise.result_type(x, y) == np.dtype(expected)


@pytest.mark.parametrize("scalar", [np.float32(2.0), np.float64(2.0), np.int64(2)], ids=str)
def test_a_numpy_scalar_beside_a_float16_array_counts_as_a_number(scalar):
    # numpy would promote float16 ⊕ np.float32 to float32; PyTorch (and minigrad) keep float16,
    # with the scalar on either side of the operator
    t = mg.tensor(np.ones(3, np.float16))
    for result in (t * scalar, scalar * t, t + scalar, scalar + t):
        assert result.dtype == np.float16


DIVISION = [("int64[2]", "int64[2]", "float32"), ("int32[2]", "2", "float32"),
            ("bool[2]", "bool[2]", "float32"), ("int64[2]", "float64[]", "float64"), ("float32[2]", "int64[2]", "float32"),
            ("float64[2]", "2", "float64")]
POWER = [("int64[2]", "2", "int64"), ("int64[2]", "2.5", "float32"), ("2.5", "int64[2]", "float32"),
         ("float32[2]", "float64[]", "float32"), ("float32[2]", "int64[2]", "float32")]


@pytest.mark.parametrize("a, b, expected", DIVISION, ids=[f"{a}-{b}" for a, b, _ in DIVISION])
def test_true_division_of_integers_gives_float32(a, b, expected):
    x, y = (mg.tensor(v) if isinstance(v, np.ndarray) else v for v in (operand(a), operand(b)))
    assert (x / y).dtype == np.dtype(expected)


@pytest.mark.parametrize("a, b, expected", POWER, ids=[f"{a}-{b}" for a, b, _ in POWER])
def test_power_promotes_as_pytorch_does(a, b, expected):
    x, y = (mg.tensor(v) if isinstance(v, np.ndarray) else v for v in (operand(a), operand(b)))
    assert (x ** y).dtype == np.dtype(expected)


@pytest.mark.parametrize("op", [lambda t: t.exp(), lambda t: t.log(), lambda t: t.sqrt()],
                         ids=["exp", "log", "sqrt"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_float_functions_of_integers_give_float32(op, dtype):
    x = mg.tensor(np.array([1, 4], dtype))
    y = op(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, op(mg.tensor(np.array([1.0, 4.0] if dtype is not np.bool_
                                                                else [1.0, 1.0]))).data, rtol=1e-6)


def test_promotion_keeps_values_exact():
    x = mg.tensor(np.array([1, -2, 3], np.int8))
    np.testing.assert_array_equal((x * 2.5).data, [2.5, -5.0, 7.5])
    wrapped = x + np.array(250, np.uint8)                 # int8 array ⊕ uint8 0-d: int8, wrapping
    assert wrapped.dtype == np.int8
    np.testing.assert_array_equal(wrapped.data, [-5, -8, -3])
    np.testing.assert_allclose((mg.tensor(np.array([1, 2])) / 3).data, np.float32([1 / 3, 2 / 3]))


def test_a_float32_model_stays_float32():
    rng = np.random.default_rng(0)
    w = mg.tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    x = mg.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    labels = mg.tensor(np.array([[0], [1], [1], [0]]))          # int64
    scale = mg.tensor(np.float64(0.5))                            # a float64 0-d tensor
    h = (x @ w) * scale + np.array(1.0) - labels / 2 + labels * 0.5 + (w ** 2).sum() * np.float64(1e-3)
    loss = (h * h).mean() / 2
    assert h.dtype == np.float32 and loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32


def test_subtraction_with_a_bool_is_refused_as_in_pytorch():
    mask = mg.tensor(np.array([True, False]))
    for left, right in ((mask, 1), (1.0, mask), (mg.tensor([1.0, 2.0]), True), (mask, mask)):
        with pytest.raises(TypeError, match="bool"):
            left - right


def test_an_operand_that_is_not_a_number_is_refused():
    with pytest.raises(TypeError, match=r"expected a Tensor, an array or a number.*str"):
        mg.tensor(np.ones(2, np.float32)) + "a"


TORCH_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
                "complex64", "complex128"]
SCALARS = ["True", "2", "2.5", "1j", "np.float64", "np.float32", "np.int64"]
TORCH_OPS = {"+": lambda p, q: p + q, "-": lambda p, q: p - q, "*": lambda p, q: p * q,
             "/": lambda p, q: p / q, "**": lambda p, q: p ** q}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", list(TORCH_OPS))
def test_promotion_against_torch(name):
    """Every pair of an array (with an axis or 0-d) of 11 dtypes and a Python/numpy number: the
    result dtype equals torch's, or both refuse. Left out: what torch cannot compute (complex
    float16 division and powers) and powers of booleans, where minigrad keeps numpy's int8."""
    torch = pytest.importorskip("torch")
    op = TORCH_OPS[name]
    specs = [f"{d}[{s}]" for d in TORCH_DTYPES for s in ("2", "")] + SCALARS
    checked = 0
    for a in specs:
        for b in specs:
            x, y = operand(a), operand(b)
            if not (isinstance(x, np.ndarray) or isinstance(y, np.ndarray)):
                continue
            complex_half = "float16" in a + b and ("complex" in a + b or "1j" in (a, b))
            if (name == "**" and "bool" in a + b) or (name in ("/", "**") and complex_half):
                continue
            try:
                expected = str(op(*(torch.from_numpy(v.copy()) if isinstance(v, np.ndarray) else v
                                    for v in (x, y))).dtype).replace("torch.", "")
            except (RuntimeError, TypeError):
                expected = "refused"
            try:
                got = str(op(*(mg.tensor(v) if isinstance(v, np.ndarray) else v for v in (x, y))).dtype)
            except (TypeError, ValueError):
                got = "refused"
            assert got == expected.replace("complex32", "complex64"), (a, name, b)
            checked += 1
    assert checked > 600


def test_log_of_a_number_as_pow_s_backward_uses_it():
    assert elementwise.log(math.e) == pytest.approx(1.0)
    assert elementwise.log(0.0) == -math.inf and elementwise.log(0) == -math.inf
    assert math.isnan(elementwise.log(-1.0))
    assert elementwise.log(np.float32(1.0)) == 0.0
