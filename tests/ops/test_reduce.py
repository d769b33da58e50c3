"""Reductions sum, mean, max: every axis form (None, int, negative, tuple) with keepdims on and off,
forward against numpy, gradients against finite differences and to second order, max's ties.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import minigrad as mg
from minigrad.autograd.function import saved_intermediates
from minigrad.ops.reduce import keep_shape


def leaf(shape, seed=0):
    # distinct values (no ties in max) far apart compared with gradcheck's eps
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


REDUCTIONS = [
    ("sum", lambda t, **kw: t.sum(**kw), np.sum),
    ("mean", lambda t, **kw: t.mean(**kw), np.mean),
    ("max", lambda t, **kw: t.max(**kw), np.max),
]
REDUCTION_IDS = [r[0] for r in REDUCTIONS]
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name, op, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_forward_matches_numpy(name, op, reference, axis, keepdims):
    x = leaf((2, 3, 4))
    y = op(x, axis=axis, keepdims=keepdims)
    expected = reference(x.data, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(expected)
    assert type(y.data) is np.ndarray and y.dtype == np.float64
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name, op, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_gradcheck(name, op, reference, axis, keepdims):
    x = leaf((2, 3, 2), seed=1)
    assert mg.gradcheck(lambda t: op(t, axis=axis, keepdims=keepdims), [x])


@pytest.mark.parametrize("axis", [None, 1, (0, -1)], ids=str)
@pytest.mark.parametrize("name, op, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_gradgradcheck(name, op, reference, axis):
    x = leaf((2, 3, 2), seed=2)
    assert mg.gradgradcheck(lambda t: op(t, axis=axis), [x])
    # squared, so the second derivative flows through the reduction's backward
    assert mg.gradgradcheck(lambda t: op(t, axis=axis, keepdims=True) ** 2, [x])


@pytest.mark.parametrize("name, op, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_used_twice(name, op, reference):
    x = leaf((3, 4), seed=3)
    assert mg.gradcheck(lambda t: op(t, axis=0) * op(t, axis=0) + t[0], [x])
    assert mg.gradcheck(lambda t: t * op(t, axis=1, keepdims=True), [x])


def test_sum_and_mean_gradients_on_known_values():
    x = leaf((2, 3))
    x.sum(axis=1).backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    x.grad = None
    x.mean(axis=0).backward(np.array([3.0, 6.0, 9.0]))
    np.testing.assert_allclose(x.grad, [[1.5, 3.0, 4.5], [1.5, 3.0, 4.5]])
    x.grad = None
    x.mean().backward()
    np.testing.assert_allclose(x.grad, np.full((2, 3), 1 / 6))


def test_max_gradient_goes_to_the_argmax():
    x = mg.tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), requires_grad=True)
    x.max(axis=1).backward(np.array([2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]])


def test_max_ties_split_the_gradient_evenly():
    x = mg.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    y = x.max(axis=1)
    np.testing.assert_array_equal(y.data, [3.0, 2.0])
    y.backward(np.array([1.0, 6.0]))
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5], [2.0, 2.0, 2.0]])

    x.grad = None
    x.max().backward()                                  # axis=None: the two 3s tie
    np.testing.assert_allclose(x.grad, [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])

    x.grad = None
    x.max(axis=(0, 1), keepdims=True).backward(np.array([[4.0]]))
    np.testing.assert_allclose(x.grad, [[0.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
    assert x.grad.sum() == 4.0                          # the split keeps the total


def test_max_of_int_and_bool_tensors():
    assert mg.tensor(np.array([1, 5, 2])).max().item() == 5
    assert mg.tensor(np.array([[1, 5], [7, 2]])).max(axis=0).data.tolist() == [7, 5]
    assert (mg.tensor([1.0, 2.0]) > 1.5).max().item() is True


def test_reductions_of_a_zero_dimensional_tensor():
    x = mg.tensor(np.array(2.5), requires_grad=True)
    for op in (x.sum, x.mean, x.max):
        x.grad = None
        y = op()
        assert y.shape == () and y.item() == 2.5
        y.backward()
        assert x.grad == 1.0


def test_max_of_an_empty_tensor_raises():
    with pytest.raises(ValueError, match=r"Max: max over an empty axis: axis \[0\] of shape \(0, 3\)"):
        mg.tensor(np.zeros((0, 3))).max()
    with pytest.raises(ValueError, match=r"axis \[0\] of shape \(0, 3\)"):
        mg.tensor(np.zeros((0, 3))).max(axis=0)


def test_max_over_a_non_empty_axis_of_an_empty_tensor_is_empty_as_in_pytorch():
    x = mg.tensor(np.zeros((0, 3)), requires_grad=True)
    y = x.max(axis=1)                                   # torch.amax(dim=1): shape (0,)
    assert y.shape == (0,)
    y.backward(np.zeros(0))
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
def test_numpy_integer_axes_are_accepted(op):
    x = mg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = getattr(x, op)(axis=np.int64(1))
    np.testing.assert_allclose(y.data, getattr(x.data, op)(axis=1))
    y.backward(np.ones(2))
    assert x.grad.shape == (2, 3)


def test_keep_shape():
    assert keep_shape((4, 5, 6), (0, 2)) == (1, 5, 1)
    assert keep_shape((4, 5, 6), -1) == (4, 5, 1)
    assert keep_shape((4, 5, 6), None) == (1, 1, 1)


@st.composite
def shape_and_axis(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3))
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape)))
    axis = draw(st.sampled_from([None, tuple(axes)] + ([axes[0]] if axes else [])))
    return shape, axis, draw(st.booleans())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=shape_and_axis())
def test_sum_and_mean_any_shape_and_axis(case):
    shape, axis, keepdims = case
    x = leaf(shape, seed=4)
    for op, reference, averages in ((x.sum, np.sum, False), (x.mean, np.mean, True)):
        y = op(axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(y.data, reference(x.data, axis=axis, keepdims=keepdims), rtol=1e-12)
        upstream = np.random.default_rng(5).standard_normal(y.shape)
        x.grad = None
        y.backward(upstream)
        scale = y.data.size / x.data.size if averages else 1.0      # 1/n, n values per output
        expected = np.broadcast_to(upstream.reshape(keep_shape(shape, axis)), shape) * scale
        np.testing.assert_allclose(x.grad, expected, rtol=1e-12)


def test_max_keeps_unreduced_size_one_axes():
    x = mg.tensor(np.random.default_rng(3).standard_normal((3, 1, 4)), requires_grad=True)
    y = x.max(axis=2)
    assert y.shape == (3, 1)                            # the size-1 axis 1 is not squeezed
    assert x.max(axis=(0, 2), keepdims=True).shape == (1, 1, 1)
    assert x.max(axis=0).shape == (1, 4)
    g = np.random.default_rng(4).standard_normal((3, 1))
    y.backward(g)
    expected = (x.data == x.data.max(axis=2, keepdims=True)) * g[:, :, None]
    np.testing.assert_array_equal(x.grad, expected)


NAN = np.nan


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_max_sends_the_gradient_to_the_nan_entries():
    x = mg.tensor(np.array([[1.0, NAN, 3.0, 2.0], [2.0, 5.0, 5.0, 1.0], [NAN, 0.0, NAN, 9.0]]),
                  requires_grad=True)
    y = x.max(axis=1)
    assert np.isnan(y.data[0]) and y.data[1] == 5.0 and np.isnan(y.data[2])
    y.backward(np.array([2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 2.0, 0.0, 0.0],       # the NaN takes it all
                                           [0.0, 1.5, 1.5, 0.0],       # a tie splits it
                                           [2.0, 0.0, 2.0, 0.0]])      # two NaNs split it
    x.grad = None
    x.max().backward()                                  # axis=None: the three NaNs share it
    np.testing.assert_allclose(x.grad, np.isnan(x.data) / 3.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_max_with_nan_against_torch():
    torch = pytest.importorskip("torch")
    values = np.array([[1.0, NAN, 3.0, NAN], [2.0, 5.0, 5.0, 1.0], [0.0, NAN, -1.0, 4.0]])
    x, xt = mg.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    x.max().backward()
    torch.max(xt).backward()                            # the whole tensor: evenly over the NaNs
    np.testing.assert_array_equal(x.grad, xt.grad.numpy())
    rows = [0, 2]                                       # torch.max(dim) sends it to the first NaN;
    x.grad, xt.grad = None, None                        # with one NaN per row that is ours too
    x[rows].max(axis=1).backward(np.array([1.5, -2.0]))
    torch.max(xt[rows], dim=1).values.backward(torch.tensor([1.5, -2.0], dtype=torch.float64))
    np.testing.assert_array_equal(x.grad[2], xt.grad.numpy()[2])
    np.testing.assert_array_equal(x.grad[1], [0.0] * 4)


def test_max_saves_its_weights_as_declared_constants():
    x = leaf((3, 4))
    y = x.max(axis=1)
    assert y.grad_fn.fn.saves_constants and saved_intermediates(y.grad_fn, y) == (0,)
    assert mg.gradgradcheck(lambda t: t.max(axis=1) * t.max(axis=1), [x])


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_mean_of_integers_is_float32(dtype):
    x = mg.tensor(np.array([[1, 2], [4, 0]], dtype))
    assert x.mean().dtype == np.float32 and x.mean(axis=0).dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=1).data, x.data.mean(axis=1), rtol=1e-7)
    assert x.sum().dtype == np.int64                    # sums of integers stay integers, as torch
