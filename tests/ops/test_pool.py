"""MaxPool, AvgPool, AvgPoolTranspose: against pooling composed from minigrad primitives (padding,
integer-array gathering and max / sum, as in test_conv.py) to ~1e-12 with random upstream
gradients; first and second order; (before, after) padding as ceil_mode makes it, dilation, and
per-window divisors; ties (the first maximum takes the gradient, overlapping windows accumulate),
NaNs (the last wins), padding that is never the maximum, windows of -inf, count_include_pad.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.ops import pool as pool_ops
from minigrad.ops import windows as windows_ops
from minigrad.ops.pool import AvgPool, AvgPoolTranspose, MaxPool, avg_pool_divisor
from tests.ops.test_conv import assert_create_graph_gives_the_same_gradients, pad_reference, windows_reference


def max_pool_reference(x, kernel, stride, padding, dilation):
    win = windows_reference(pad_reference(x, padding, -np.inf), kernel, stride, dilation)
    return win.reshape(*win.shape[:-len(kernel)], -1).max(axis=-1)      # (N, C, *out, K) -> (N, C, *out)


def avg_pool_reference(x, kernel, stride, padding, divisor):
    win = windows_reference(pad_reference(x, padding), kernel, stride, (1,) * len(kernel))
    return win.sum(axis=tuple(range(-len(kernel), 0))) / divisor


def max_pool(x, kernel, stride, padding, dilation=None):
    return MaxPool.apply(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation or (1,) * len(kernel))


def avg_pool(x, kernel, stride, padding, divisor=None):
    return AvgPool.apply(x, kernel=kernel, stride=stride, padding=padding,
                         divisor=np.prod(kernel) if divisor is None else divisor)


def divisor_reference(size, kernel, stride, padding, count_include_pad):
    """Each window's divisor by counting: the sum over the window of an indicator that is 1 on
    what counts (x, and its padding before on both sides if count_include_pad), 0 elsewhere."""
    counted = np.zeros((1, 1, *(n + lo + hi for n, (lo, hi) in zip(size, padding))))
    inside = tuple(slice(0, n + 2 * lo) if count_include_pad else slice(lo, lo + n) for n, (lo, _) in zip(size, padding))
    counted[(0, 0, *inside)] = 1
    win = windows_reference(mg.tensor(counted), kernel, stride, (1,) * len(kernel)).data
    return win.sum(axis=tuple(range(-len(kernel), 0)))[0, 0]


# name, x shape, kernel, stride, (before, after) padding, dilation (max pooling only)
CASES = [
    ("1d", (2, 3, 8), (2,), (2,), ((0, 0),), (1,)),
    ("1d-overlapping", (2, 2, 7), (3,), (1,), ((0, 0),), (1,)),
    ("1d-padding", (2, 2, 7), (3,), (2,), ((1, 1),), (1,)),
    ("1d-padding-half-kernel", (1, 2, 6), (4,), (3,), ((2, 2),), (1,)),
    ("1d-kernel-1", (2, 2, 5), (1,), (2,), ((0, 0),), (1,)),
    ("1d-ceil-extra-after", (2, 2, 8), (3,), (2,), ((0, 1),), (2,)),
    ("1d-padding-and-ceil", (2, 2, 8), (3,), (2,), ((1, 2),), (2,)),
    ("2d", (2, 2, 4, 6), (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    ("2d-non-square-padding", (2, 2, 5, 6), (3, 2), (1, 2), ((1, 1), (1, 1)), (1, 2)),
    ("2d-overlapping-padding", (1, 3, 5, 5), (3, 3), (1, 1), ((1, 1), (0, 0)), (2, 1)),
    ("2d-ceil", (1, 2, 6, 5), (3, 2), (2, 2), ((1, 2), (0, 1)), (1, 1)),
]
IDS = [c[0] for c in CASES]
ARGS = "name, shape, kernel, stride, padding, dilation"


def leaf(shape, seed=0, dtype=np.float64):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=True)


def pools(shape, kernel, stride, padding, dilation):
    """{name: (op, reference)} as functions of x: max pooling with the dilation, average pooling
    with a divisor per window (the count_include_pad=False rule: a different one on the edges)."""
    divisor = avg_pool_divisor(shape[2:], kernel, stride, padding, False)
    return {"max": (lambda x: max_pool(x, kernel, stride, padding, dilation),
                    lambda x: max_pool_reference(x, kernel, stride, padding, dilation)),
            "avg": (lambda x: avg_pool(x, kernel, stride, padding, divisor),
                    lambda x: avg_pool_reference(x, kernel, stride, padding, divisor))}


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize(ARGS, CASES, ids=IDS)
def test_forward_and_gradient_match_the_composed_reference(pool, name, shape, kernel, stride, padding, dilation):
    op, reference = pools(shape, kernel, stride, padding, dilation)[pool]
    x = leaf(shape)
    y, expected = op(x), reference(x)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(1).standard_normal(y.shape)
    (got,), (want,) = mg.grad(y, [x], upstream), mg.grad(expected, [x], upstream)
    np.testing.assert_allclose(got.data, want.data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize(ARGS, CASES, ids=IDS)
def test_gradcheck_and_gradgradcheck(pool, name, shape, kernel, stride, padding, dilation):
    fn, _ = pools(shape, kernel, stride, padding, dilation)[pool]
    x = leaf(shape, seed=2)
    assert mg.gradcheck(fn, [x])
    assert mg.gradgradcheck(lambda x: fn(x) ** 2, [x])   # squared: the backward's own derivative
    assert_create_graph_gives_the_same_gradients(fn, [x])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize(ARGS, CASES, ids=IDS)
def test_avg_pool_divisor_counts_the_window_positions_that_count(name, shape, kernel, stride, padding, dilation,
                                                                 count_include_pad):
    divisor = avg_pool_divisor(shape[2:], kernel, stride, padding, count_include_pad)
    expected = divisor_reference(shape[2:], kernel, stride, padding, count_include_pad)
    if np.all(expected == np.prod(kernel)):
        assert type(divisor) is int and divisor == np.prod(kernel)       # one number: the plain mean
    else:
        assert divisor.shape == expected.shape
        np.testing.assert_array_equal(divisor, expected)


@pytest.mark.parametrize(ARGS, CASES, ids=IDS)
def test_avg_pool_transpose_is_the_reference_gradient_and_has_derivatives(name, shape, kernel, stride,
                                                                         padding, dilation):
    divisor = avg_pool_divisor(shape[2:], kernel, stride, padding, False)
    x = leaf(shape, seed=3)
    y = avg_pool_reference(x, kernel, stride, padding, divisor)
    g = leaf(y.shape, seed=4)
    (want,) = mg.grad(y, [x], g.data)
    fn = lambda g: AvgPoolTranspose.apply(g, size=shape[2:], kernel=kernel, stride=stride,   # noqa: E731
                                          padding=padding, divisor=divisor)
    np.testing.assert_allclose(fn(g).data, want.data, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(fn, [g])
    assert mg.gradgradcheck(lambda g: fn(g) ** 2, [g])
    assert_create_graph_gives_the_same_gradients(fn, [g])


# ------------------------------------------------------------------ max pooling: ties, padding, -inf
def test_ties_go_to_the_first_maximum_and_overlapping_windows_accumulate():
    x = mg.tensor(np.array([[[1.0, 3.0, 3.0, 2.0, 3.0, 3.0]]]), requires_grad=True)
    y = max_pool(x, (3,), (1,), ((0, 0),))     # windows [1 3 3] [3 3 2] [3 2 3] [2 3 3]
    np.testing.assert_array_equal(y.data, [[[3.0, 3.0, 3.0, 3.0]]])
    y.backward(np.array([[[1.0, 10.0, 100.0, 1000.0]]]))
    np.testing.assert_array_equal(x.grad, [[[0.0, 11.0, 100.0, 0.0, 1000.0, 0.0]]])


def test_ties_in_two_dimensions_go_to_the_first_in_row_major_order():
    x = mg.tensor(np.array([[[[1.0, 3.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]]]]), requires_grad=True)
    max_pool(x, (2, 2), (2, 2), ((0, 0), (0, 0))).backward(np.array([[[[5.0, 7.0]]]]))
    np.testing.assert_array_equal(x.grad, [[[[0.0, 5.0, 7.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_padding_is_never_the_maximum():
    x = mg.tensor(-1.0 - np.random.default_rng(5).random((2, 2, 5)), requires_grad=True)   # all < 0
    y = max_pool(x, (2,), (1,), ((1, 1),))     # windows [pad x0] [x0 x1] ... [x4 pad]
    np.testing.assert_array_equal(y.data[..., 0], x.data[..., 0])
    np.testing.assert_array_equal(y.data[..., -1], x.data[..., -1])
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad.sum(axis=-1), np.full((2, 2), 6.0))   # all gradient lands in x


def test_a_window_of_minus_infinity_sends_its_gradient_to_its_first_real_entry():
    x = mg.tensor(np.array([[[-np.inf, -np.inf, 2.0], [-np.inf, 1.0, -np.inf]]]), requires_grad=True)
    y = max_pool(x, (2,), (1,), ((1, 1),))     # windows [pad x0] [x0 x1] [x1 x2] [x2 pad]
    np.testing.assert_array_equal(y.data, [[[-np.inf, -np.inf, 2.0, 2.0], [-np.inf, 1.0, 1.0, -np.inf]]])
    y.backward(np.array([[[1.0, 10.0, 100.0, 1000.0], [1.0, 10.0, 100.0, 1000.0]]]))
    np.testing.assert_array_equal(x.grad, [[[11.0, 0.0, 1100.0], [1.0, 110.0, 1000.0]]])


def test_a_window_of_minus_infinity_with_padding_before_only_picks_its_first_real_entry():
    """(before, after) = (1, 0): the op moves a padding maximum whichever side has padding."""
    x = mg.tensor(np.full((1, 1, 3), -np.inf), requires_grad=True)
    y = max_pool(x, (2,), (1,), ((1, 0),))     # windows [pad x0] [x0 x1] [x1 x2]
    y.backward(np.array([[[1.0, 10.0, 100.0]]]))
    np.testing.assert_array_equal(x.grad, [[[11.0, 100.0, 0.0]]])


def test_a_2d_window_of_minus_infinity_in_the_corner_picks_the_first_real_entry():
    x = mg.tensor(np.full((1, 1, 2, 2), -np.inf), requires_grad=True)
    y = max_pool(x, (2, 2), (1, 1), ((1, 1), (1, 1)))    # 3 x 3 windows, each all -inf
    y.backward(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    # window (i, j) starts at (i - 1, j - 1); its first real entry is (max(i - 1, 0), max(j - 1, 0))
    np.testing.assert_array_equal(x.grad, [[[[1 + 2 + 4 + 5, 3 + 6], [7 + 8, 9]]]])


def test_max_pool_keeps_the_argmax_positions_as_an_integer_array_under_create_graph():
    x = leaf((1, 2, 6), seed=6)
    y = max_pool(x, (2,), (2,), ((0, 0),))
    (grad_x,) = mg.grad(y, [x], mg.tensor(np.ones(y.shape), requires_grad=True), create_graph=True)
    saved = y.grad_fn.differentiable(y).saved_tensors      # what create_graph backward reads
    assert type(saved[0]) is np.ndarray and saved[0].dtype.kind == "i"
    assert grad_x.requires_grad


# ------------------------------------------------------------------ average pooling
def test_avg_pool_counts_the_padding_zeros():
    x = mg.tensor(np.ones((1, 1, 4)), requires_grad=True)
    y = avg_pool(x, (3,), (1,), ((1, 1),))     # windows [0 1 1] [1 1 1] [1 1 1] [1 1 0]
    np.testing.assert_allclose(y.data, [[[2 / 3, 1.0, 1.0, 2 / 3]]])
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad, [[[2 / 3, 1.0, 1.0, 2 / 3]]])


def test_avg_pool_2d_divides_by_the_whole_kernel():
    x = mg.tensor(np.arange(12.0).reshape(1, 1, 3, 4))
    y = avg_pool(x, (3, 2), (3, 2), ((0, 0), (0, 0)))
    np.testing.assert_allclose(y.data, [[[[(0 + 1 + 4 + 5 + 8 + 9) / 6, (2 + 3 + 6 + 7 + 10 + 11) / 6]]]])


def test_avg_pool_divides_each_window_by_its_own_divisor():
    """A ceil_mode window running past the padding: divisor 2 of a kernel of 3 (PyTorch's rule)."""
    x = mg.tensor(np.arange(1.0, 7.0).reshape(1, 1, 6), requires_grad=True)
    divisor = avg_pool_divisor((6,), (3,), (2,), ((0, 1),), True)   # windows [1 2 3] [3 4 5] [5 6 (pad)]
    np.testing.assert_array_equal(divisor, [3.0, 3.0, 2.0])
    y = avg_pool(x, (3,), (2,), ((0, 1),), divisor)
    np.testing.assert_allclose(y.data, [[[2.0, 4.0, 5.5]]])
    y.backward(np.array([[[3.0, 6.0, 1.0]]]))
    np.testing.assert_allclose(x.grad, [[[1.0, 1.0, 3.0, 2.0, 2.5, 0.5]]])


# ------------------------------------------------------------------ max pooling with dilation
def test_dilated_max_pool_reads_every_d_th_entry():
    x = mg.tensor(np.array([[[5.0, 9.0, 1.0, 7.0, 2.0]]]), requires_grad=True)
    y = max_pool(x, (2,), (1,), ((0, 0),), (3,))                    # windows [x0 x3] [x1 x4]
    np.testing.assert_array_equal(y.data, [[[7.0, 9.0]]])
    y.backward(np.array([[[10.0, 100.0]]]))
    np.testing.assert_array_equal(x.grad, [[[0.0, 100.0, 0.0, 10.0, 0.0]]])


def test_a_dilated_window_of_minus_infinity_sends_its_gradient_to_its_first_real_entry():
    """Window 0 reads positions -1, 1, 3 (padding 1, dilation 2): its first real entry is 1, not 0."""
    x = mg.tensor(np.full((1, 1, 4), -np.inf), requires_grad=True)
    y = max_pool(x, (3,), (1,), ((1, 1),), (2,))                   # windows [pad x1 x3] [x0 x2 pad]
    y.backward(np.array([[[1.0, 10.0]]]))
    np.testing.assert_array_equal(x.grad, [[[10.0, 1.0, 0.0, 0.0]]])


# ------------------------------------------------------------------ graphs, dtypes
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_a_tensor_used_twice_accumulates(pool):
    pooled, _ = pools((1, 2, 4, 4), (3, 2), (1, 2), ((1, 1), (0, 1)), (1, 2))[pool]
    fn = lambda x: pooled(x) * pooled(x) + pooled(x)   # noqa: E731
    x = leaf((1, 2, 4, 4), seed=7)
    assert mg.gradcheck(fn, [x])


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(pool, dtype):
    op, _ = pools((2, 2, 6, 5), (3, 2), (2, 2), ((1, 2), (0, 1)), (1, 1))[pool]   # avg: a divisor per window
    x = leaf((2, 2, 6, 5), dtype=dtype)
    y = op(x)
    assert y.dtype == dtype
    y.backward(np.ones(y.shape, dtype))
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


def test_pool_after_a_convolution_output():
    """Pooling reads the conv's batch-innermost output the same as a C-ordered array."""
    from minigrad.ops.conv import Conv
    rng = np.random.default_rng(8)
    x, w = leaf((3, 2, 9), seed=9), mg.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    conv = lambda x, w: Conv.apply(x, w, None, stride=(1,), padding=((0, 0),), dilation=(1,), groups=1)   # noqa: E731
    for op, reference in pools((3, 4, 8), (3,), (2,), ((1, 1),), (1,)).values():
        h = conv(x, w)
        y, expected = op(h), reference(mg.tensor(np.ascontiguousarray(h.data)))
        np.testing.assert_allclose(y.data, expected.data, rtol=1e-12, atol=1e-12)
        assert mg.gradcheck(lambda x, w: op(conv(x, w)), [x, w])


def test_the_ops_never_import_tensor():
    assert "Tensor" not in vars(pool_ops) and "Tensor" not in vars(windows_ops)


def test_max_pool_offsets_reset_along_an_axis_when_a_later_offset_wins():
    """Window offsets in order (0,0), (0,1), (1,0), (1,1): a maximum at (1,0) after one at (0,1)
    must give column 0 again (a running update that skipped axes at offset 0 would keep 1)."""
    x = mg.tensor(np.array([[[[0.0, 5.0], [9.0, 1.0]]]]), requires_grad=True)   # (1, 1, 2, 2)
    y = max_pool(x, (2, 2), (2, 2), ((0, 0), (0, 0)))
    y.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(x.grad, [[[[0.0, 0.0], [1.0, 0.0]]]])


def test_max_pool_propagates_nan_and_sends_its_gradient_to_the_last_nan():
    """PyTorch's rule (an entry takes over if greater or NaN): of several NaNs the last wins."""
    x = mg.tensor(np.array([[[1.0, np.nan, 3.0, np.nan, 2.0]]]), requires_grad=True)    # (1, 1, 5)
    y = max_pool(x, (5,), (5,), ((0, 0),))
    assert np.isnan(y.data).all()
    y.backward(np.ones((1, 1, 1)))
    np.testing.assert_array_equal(x.grad, [[[0.0, 0.0, 0.0, 1.0, 0.0]]])


def test_max_pool_a_nan_after_a_larger_value_still_wins_in_two_dimensions():
    x = mg.tensor(np.array([[[[1.0, 9.0], [np.nan, 3.0]]]]), requires_grad=True)   # (1, 1, 2, 2)
    y = max_pool(x, (2, 2), (2, 2), ((0, 0), (0, 0)))
    y.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(x.grad, [[[[0.0, 0.0], [1.0, 0.0]]]])
