"""Conv, ConvTranspose, ConvWeight: fused against composed, as for batch norm. The reference is a
convolution built from minigrad primitives (IndexAdd pads and lays a grouped weight out block-
diagonally, Tensor indexing with integer arrays gathers the windows, matmul multiplies), so its
gradients come from other code; outputs and all gradients agree to ~1e-12 in float64 with random
upstream gradients. Then first and second order against finite differences for every option
(stride, (before, after) padding, dilation, groups), accumulation, and the skipped dx of a first layer.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad.ops import conv as conv_ops
from minigrad.ops.conv import Conv, ConvTranspose, ConvWeight
from minigrad.ops.shape import IndexAdd


# ------------------------------------------------------------------ the composed reference
def pad_reference(x, padding, value=0.0):
    """x padded on every spatial axis by (before, after) pairs: IndexAdd puts x into zeros, a
    constant fills the border."""
    if not any(lo or hi for lo, hi in padding):
        return x
    shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
    inside = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], padding))
    padded = IndexAdd.apply(x, index=inside, shape=shape)
    if value:
        border = np.full(shape, value)
        border[inside] = 0
        padded = padded + border
    return padded


def windows_reference(xp, kernel, stride, dilation):
    """(N, C, *padded) -> (N, C, *out, *kernel) by integer-array indexing: xp[.., s·o + d·k, ..]."""
    d = len(kernel)
    spans = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation)]
    out = [(n - span) // s + 1 for n, span, s in zip(xp.shape[2:], spans, stride)]
    index = []
    for i, (k, s, dl, m) in enumerate(zip(kernel, stride, dilation, out)):
        o = np.arange(m).reshape([m if j == i else 1 for j in range(2 * d)])        # window, axis i
        kk = np.arange(k).reshape([k if j == d + i else 1 for j in range(2 * d)])   # offset, axis d + i
        index.append(s * o + dl * kk)
    return xp[(slice(None), slice(None), *index)]


def block_diagonal(weight, groups):
    """A grouped weight (C_out, C_in/G, *K) as the ungrouped one it stands for, (C_out, C_in, *K),
    zero outside the diagonal blocks: a grouped convolution is a plain one with this weight."""
    if groups == 1:
        return weight
    c_out, c_in = weight.shape[0] // groups, weight.shape[1]
    shape = (weight.shape[0], c_in * groups, *weight.shape[2:])
    blocks = [IndexAdd.apply(weight[g * c_out:(g + 1) * c_out],
                             index=(slice(g * c_out, (g + 1) * c_out), slice(g * c_in, (g + 1) * c_in)),
                             shape=shape) for g in range(groups)]
    return sum(blocks[1:], blocks[0])


def conv_reference(x, weight, bias, stride, padding, dilation, groups=1):
    d = weight.ndim - 2
    weight = block_diagonal(weight, groups)
    win = windows_reference(pad_reference(x, padding), weight.shape[2:], stride, dilation)
    n, out = x.shape[0], win.shape[2:2 + d]
    cols = win.transpose(0, *range(2, 2 + d), 1, *range(2 + d, 2 + 2 * d))      # (N, *out, C, *K)
    cols = cols.reshape(n, int(np.prod(out)), -1)                               # (N, P, C·K)
    y = cols @ weight.reshape(weight.shape[0], -1).T                            # (N, P, C_out)
    if bias is not None:
        y = y + bias
    return y.transpose(0, 2, 1).reshape(n, weight.shape[0], *out)


def out_size(size, kernel, stride, padding, dilation):
    """PyTorch's formula per axis, floor((L + before + after - d(k - 1) - 1) / s) + 1."""
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                 for n, k, s, (lo, hi), d in zip(size, kernel, stride, padding, dilation))


def assert_create_graph_gives_the_same_gradients(fn, inputs, seed=20):
    """With create_graph the backward runs on Tensors, through other code (the ops instead of the
    numpy kernels). gradgradcheck differentiates that gradient but never compares it with the plain
    one, so a Tensor path returning None (read as zero) or a wrong value would pass it: compare here."""
    upstream = np.random.default_rng(seed).standard_normal(fn(*inputs).shape)
    plain = mg.grad(fn(*inputs), inputs, grad_outputs=upstream)
    graphed = mg.grad(fn(*inputs), inputs, grad_outputs=mg.tensor(upstream, requires_grad=True),
                      create_graph=True)
    for p, g in zip(plain, graphed):
        assert g.requires_grad      # recorded (it depends on the upstream leaf): differentiable again
        np.testing.assert_allclose(g.data, p.data, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ cases
# name, x shape, weight shape, stride, (before, after) padding, dilation, groups, bias
CASES = [
    ("1d", (2, 3, 8), (4, 3, 3), (1,), ((0, 0),), (1,), 1, True),
    ("1d-stride", (2, 3, 9), (4, 3, 3), (2,), ((0, 0),), (1,), 1, True),
    ("1d-padding", (2, 2, 5), (3, 2, 3), (1,), ((2, 2),), (1,), 1, True),
    ("1d-padding-after-only", (2, 2, 6), (3, 2, 4), (1,), ((1, 2),), (1,), 1, True),
    ("1d-dilation", (2, 2, 9), (3, 2, 3), (1,), ((0, 0),), (3,), 1, True),
    ("1d-all-no-bias", (3, 2, 10), (3, 2, 2), (3,), ((1, 1),), (2,), 1, False),
    ("1d-kernel-1", (2, 3, 4), (2, 3, 1), (1,), ((0, 0),), (1,), 1, True),
    ("1d-kernel-is-input", (2, 2, 4), (3, 2, 4), (1,), ((0, 0),), (1,), 1, True),
    ("1d-groups", (2, 4, 7), (6, 2, 3), (2,), ((1, 1),), (1,), 2, True),
    ("1d-depthwise-multiplier-2", (2, 3, 8), (6, 1, 3), (1,), ((2, 1),), (2,), 3, True),
    ("2d", (2, 2, 5, 5), (3, 2, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1, True),
    ("2d-non-square", (2, 2, 6, 7), (3, 2, 2, 3), (1, 2), ((1, 1), (0, 0)), (2, 1), 1, True),
    ("2d-stride-padding-no-bias", (1, 3, 5, 6), (2, 3, 3, 2), (2, 3), ((1, 1), (2, 2)), (1, 1), 1, False),
    ("2d-groups-asymmetric", (2, 4, 5, 6), (4, 2, 3, 2), (1, 2), ((1, 0), (0, 1)), (1, 2), 2, False),
    ("2d-depthwise", (1, 3, 5, 5), (3, 1, 3, 3), (2, 1), ((1, 1), (2, 0)), (1, 1), 3, True),
]
IDS = [c[0] for c in CASES]
ARGS = "name, x_shape, w_shape, stride, padding, dilation, groups, bias"


def tensors(x_shape, w_shape, bias, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(x_shape).astype(dtype), requires_grad=True)
    w = mg.tensor(rng.standard_normal(w_shape).astype(dtype), requires_grad=True)
    b = mg.tensor(rng.standard_normal(w_shape[0]).astype(dtype), requires_grad=True) if bias else None
    return x, w, b


def conv(x, w, b, stride, padding, dilation, groups=1):
    return Conv.apply(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def assert_matches_reference(x, w, b, stride, padding, dilation, groups, seed=1):
    """Conv's output and gradients against the composed reference, random upstream gradient."""
    inputs = [t for t in (x, w, b) if t is not None and t.requires_grad]
    y = conv(x, w, b, stride, padding, dilation, groups)
    expected = conv_reference(x, w, b, stride, padding, dilation, groups)
    assert y.shape == expected.shape == (x.shape[0], w.shape[0], *out_size(
        x.shape[2:], w.shape[2:], stride, padding, dilation))
    np.testing.assert_allclose(y.data, expected.data, rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(seed).standard_normal(y.shape)
    got = mg.grad(y, inputs, grad_outputs=upstream)
    want = mg.grad(expected, inputs, grad_outputs=upstream)
    for g, r, t in zip(got, want, inputs):
        assert g.shape == t.shape
        np.testing.assert_allclose(g.data, r.data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(ARGS, CASES, ids=IDS)
def test_forward_and_gradients_match_the_composed_reference(name, x_shape, w_shape, stride, padding,
                                                            dilation, groups, bias):
    x, w, b = tensors(x_shape, w_shape, bias)
    assert_matches_reference(x, w, b, stride, padding, dilation, groups)


def test_the_block_diagonal_reference_is_one_convolution_per_group():
    """The reference's grouping against the definition: group g's outputs are a plain convolution
    of group g's input channels (so a wrong block layout in the reference cannot hide one in Conv)."""
    x, w, b = tensors((2, 6, 7), (4, 3, 3), True, seed=16)
    y = conv_reference(x, w, b, (1,), ((1, 0),), (2,), groups=2)
    for g in range(2):
        part = conv_reference(x[:, 3 * g:3 * g + 3], w[2 * g:2 * g + 2], b[2 * g:2 * g + 2], (1,), ((1, 0),), (2,))
        np.testing.assert_allclose(y.data[:, 2 * g:2 * g + 2], part.data, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_geometry_matches_the_composed_reference(data):
    dims = data.draw(st.sampled_from([1, 2]))
    groups = data.draw(st.integers(1, 3))
    n, c_in, c_out = data.draw(st.integers(1, 3)), groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(dims))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(dims))
    spans = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation)]
    size = tuple(data.draw(st.integers(max(1, s - lo - hi), 7)) for s, (lo, hi) in zip(spans, padding))
    x, w, b = tensors((n, c_in, *size), (c_out, c_in // groups, *kernel), data.draw(st.booleans()),
                      seed=data.draw(st.integers(0, 100)))
    assert_matches_reference(x, w, b, stride, padding, dilation, groups)


@pytest.mark.parametrize(ARGS, CASES, ids=IDS)
def test_gradcheck_and_gradgradcheck(name, x_shape, w_shape, stride, padding, dilation, groups, bias):
    inputs = [t for t in tensors(x_shape, w_shape, bias, seed=2) if t is not None]
    fn = lambda *t: conv(t[0], t[1], t[2] if bias else None, stride, padding, dilation, groups)   # noqa: E731
    assert mg.gradcheck(fn, inputs)
    # as is: the inner gradients are ConvTranspose(u, w) and ConvWeight(x, u) with u a constant
    # (a Hessian-vector product); squared: u depends on x, w and b too, so the derivatives of
    # ConvTranspose and ConvWeight in all their inputs are checked, not only the cross terms
    assert mg.gradgradcheck(fn, inputs)
    assert mg.gradgradcheck(lambda *t: fn(*t) ** 2, inputs)
    assert_create_graph_gives_the_same_gradients(fn, inputs)


@pytest.mark.parametrize("dims", [1, 2])
def test_x_that_needs_no_gradient_gets_none_and_no_transposed_convolution(dims, monkeypatch):
    """A first layer: dx is not computed at all (it would be the most expensive part)."""
    _, w, b = tensors((2, 2) + (6,) * dims, (3, 2) + (3,) * dims, True, seed=3)
    x = mg.tensor(np.random.default_rng(3).standard_normal((2, 2) + (6,) * dims))
    geometry = (2,) * dims, ((1, 1),) * dims, (1,) * dims
    upstream = np.random.default_rng(4).standard_normal(conv(x, w, b, *geometry).shape)
    grad_w, grad_b = mg.grad(conv_reference(x, w, b, *geometry), [w, b], grad_outputs=upstream)

    def fail(*args, **kwargs):
        raise AssertionError("conv_transpose was called for an input that needs no gradient")

    monkeypatch.setattr(conv_ops, "conv_transpose", fail)
    conv(x, w, b, *geometry).backward(upstream)
    assert x.grad is None
    np.testing.assert_allclose(w.grad, grad_w.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad, grad_b.data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dims, groups", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_first_and_second_order_when_x_needs_no_gradient(dims, groups):
    _, w, b = tensors((2, 2) + (5,) * dims, (4, 2 // groups) + (2,) * dims, True, seed=5)
    x = mg.tensor(np.random.default_rng(5).standard_normal((2, 2) + (5,) * dims))
    fn = lambda w, b: conv(x, w, b, (2,) * dims, ((1, 0),) * dims, (2,) * dims, groups)   # noqa: E731
    assert mg.gradcheck(fn, [w, b])
    assert mg.gradgradcheck(lambda w, b: fn(w, b) ** 2, [w, b])
    assert_create_graph_gives_the_same_gradients(fn, [w, b])


def test_the_im2col_cache_is_kept_only_when_the_weight_needs_a_gradient():
    x, w, _ = tensors((2, 2, 6), (3, 2, 3), False, seed=6)
    y = conv(x, w, None, (1,), ((0, 0),), (1,))
    assert y.grad_fn.saved_tensors[2].shape == (2 * 3, 4 * 2)   # (C·K, P·N)
    # create_graph reads no cache (a constant copy of it would be a float intermediate): x and w only
    x_saved, w_saved, cols = y.grad_fn.differentiable(y).saved_tensors
    assert x_saved is x and w_saved is w and cols is None
    w.requires_grad = False
    assert conv(x, w, None, (1,), ((0, 0),), (1,)).grad_fn.saved_tensors[2] is None


def test_a_tensor_used_twice_accumulates():
    x, w, b = tensors((2, 4, 5, 6), (6, 2, 2, 3), True, seed=7)
    geometry = (1, 2), ((1, 1), (0, 1)), (1, 1), 2
    fn = lambda x, w, b: conv(x, w, b, *geometry) + conv(x, w, None, *geometry)   # noqa: E731
    assert mg.gradcheck(fn, [x, w, b])
    upstream = np.random.default_rng(8).standard_normal(fn(x, w, b).shape)
    fn(x, w, b).backward(upstream)
    grads = [x.grad, w.grad, b.grad]
    x.grad = w.grad = b.grad = None
    conv(x, w, b, *geometry).backward(upstream)
    np.testing.assert_allclose(grads[0], 2 * x.grad, rtol=1e-12)
    np.testing.assert_allclose(grads[1], 2 * w.grad, rtol=1e-12)
    np.testing.assert_allclose(grads[2], b.grad, rtol=1e-12)     # the second conv has no bias


def test_a_chain_of_convolutions_matches_the_reference_chain():
    """Outputs of one conv feed the next (their memory layout is the op's own, batch innermost)."""
    rng = np.random.default_rng(9)
    x = mg.tensor(rng.standard_normal((3, 2, 11)), requires_grad=True)
    w1, w2 = (mg.tensor(rng.standard_normal(s), requires_grad=True) for s in [(4, 2, 3), (2, 2, 2)])
    first, second = ((2,), ((1, 1),), (1,), 1), ((1,), ((1, 0),), (2,), 2)
    ours = conv(conv(x, w1, None, *first).relu(), w2, None, *second)
    theirs = conv_reference(conv_reference(x, w1, None, *first).relu(), w2, None, *second)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(ours.shape)
    for g, r in zip(mg.grad(ours, [x, w1, w2], upstream), mg.grad(theirs, [x, w1, w2], upstream)):
        np.testing.assert_allclose(g.data, r.data, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype, groups):
    x, w, b = tensors((2, 3, 6, 5), (3, 3 // groups, 2, 2), True, dtype=dtype)
    y = conv(x, w, b, (1, 1), ((1, 1), (1, 0)), (1, 1), groups)
    assert y.dtype == dtype
    y.backward(np.ones(y.shape, dtype))
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == dtype


# ------------------------------------------------------------------ the adjoints as ops of their own
ADJOINT_CASES = [c for c in CASES if c[0] in ("1d-stride", "1d-all-no-bias", "1d-depthwise-multiplier-2",
                                              "2d-non-square", "2d-groups-asymmetric")]


@pytest.mark.parametrize(ARGS, ADJOINT_CASES, ids=[c[0] for c in ADJOINT_CASES])
def test_conv_transpose_and_conv_weight_are_the_reference_gradients(name, x_shape, w_shape, stride,
                                                                    padding, dilation, groups, bias):
    x, w, _ = tensors(x_shape, w_shape, False, seed=10)
    y = conv_reference(x, w, None, stride, padding, dilation, groups)
    g = mg.tensor(np.random.default_rng(11).standard_normal(y.shape), requires_grad=True)
    grad_x, grad_w = mg.grad(y, [x, w], grad_outputs=g.data)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    transposed = ConvTranspose.apply(g, w, size=x.shape[2:], **geometry)
    weight = ConvWeight.apply(x, g, kernel=w.shape[2:], **geometry)
    np.testing.assert_allclose(transposed.data, grad_x.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weight.data, grad_w.data, rtol=1e-12, atol=1e-12)
    # each op on its own, to second order: its backward runs on Tensors inside gradgradcheck
    fn_t = lambda g, w: ConvTranspose.apply(g, w, size=x.shape[2:], **geometry) ** 2   # noqa: E731
    fn_w = lambda x, g: ConvWeight.apply(x, g, kernel=w.shape[2:], **geometry) ** 2    # noqa: E731
    assert mg.gradcheck(fn_t, [g, w]) and mg.gradgradcheck(fn_t, [g, w])
    assert mg.gradcheck(fn_w, [x, g]) and mg.gradgradcheck(fn_w, [x, g])
    assert_create_graph_gives_the_same_gradients(fn_t, [g, w])
    assert_create_graph_gives_the_same_gradients(fn_w, [x, g])
    # one operand constant (so needs_input_grad differs between the two): each gradient on its own
    g_const, w_const, x_const = mg.tensor(g.data), mg.tensor(w.data), mg.tensor(x.data)
    assert mg.gradcheck(lambda w: fn_t(g_const, w), [w]) and mg.gradcheck(lambda g: fn_t(g, w_const), [g])
    assert mg.gradcheck(lambda x: fn_w(x, g_const), [x]) and mg.gradcheck(lambda g: fn_w(x_const, g), [g])


@pytest.mark.parametrize("groups", [1, 2])
def test_third_order_through_the_adjoints(groups):
    """d³ through Conv -> ConvTranspose/ConvWeight -> Conv and back: the ops close under backward."""
    x, w, _ = tensors((1, 2, 6), (2, 2 // groups, 3), False, seed=12)

    weights = np.random.default_rng(13).standard_normal((1, 2, 3))

    def second(x, w):   # a first derivative, itself differentiable: gradgradcheck of it is 3rd order
        y = conv(x, w, None, (2,), ((1, 1),), (1,), groups)
        return mg.grad((y * y * weights).sum(), [x, w], create_graph=True)

    assert mg.gradgradcheck(second, [x, w])


@pytest.mark.parametrize("helper", ["conv", "conv_transpose", "conv_weight"])
def test_the_helpers_take_the_numpy_kernel_only_when_every_operand_is_an_array(helper):
    """A Tensor among the operands goes through the op, so it keeps its graph (and its gradient)."""
    x, w, _ = tensors((2, 2, 6), (3, 2, 3), False, seed=14)
    g = mg.tensor(np.random.default_rng(15).standard_normal((2, 3, 4)), requires_grad=True)
    geometry = (1,), ((0, 0),), (1,), 1
    call = {"conv": lambda a, b: conv_ops.conv(a, b, None, *geometry),
            "conv_transpose": lambda a, b: conv_ops.conv_transpose(a, b, (6,), *geometry),
            "conv_weight": lambda a, b: conv_ops.conv_weight(a, b, (3,), *geometry)}[helper]
    first, second = {"conv": (x, w), "conv_transpose": (g, w), "conv_weight": (x, g)}[helper]
    on_arrays = call(first.data, second.data)
    assert type(on_arrays) is np.ndarray
    for a, b in [(first, second.data), (first.data, second), (first, second)]:
        out = call(a, b)
        assert isinstance(out, mg.Tensor) and out.requires_grad
        np.testing.assert_allclose(out.data, on_arrays, rtol=1e-12, atol=1e-12)


def test_the_ops_never_import_tensor():
    assert "Tensor" not in vars(conv_ops)
