"""BatchNorm1d and the functional batch norms: fused (one op, hand-written backward) against
composed (primitive ops), running statistics against a hand-computed numpy reference, eval mode,
errors and numerical stability.

Every gradient comparison uses a random upstream gradient: ``bn(x).sum()`` does not depend on x
(the normalised output sums to β·n per channel), so a sum loss would pass any backward.
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.ops.fused import BatchNormFused

EPS = 1e-5
C = 3


def channel_axes(x):
    return (0,) if x.ndim == 2 else (0, 2)


def per_channel(v, ndim):
    """(C,) -> (1, C) or (1, C, 1), to broadcast against x."""
    return v.reshape((1, -1) if ndim == 2 else (1, -1, 1))


def reference_bn(x, weight=None, bias=None, eps=EPS):
    """Training-mode batch norm in float64 numpy, centred before squaring.
    Returns y, the batch mean (C,) and the biased batch variance (C,)."""
    x = np.asarray(x, dtype=np.float64)
    axes = channel_axes(x)
    mean = x.mean(axis=axes)
    centred = x - per_channel(mean, x.ndim)
    var = (centred ** 2).mean(axis=axes)
    y = centred / np.sqrt(per_channel(var, x.ndim) + eps)
    if weight is not None:
        y = y * per_channel(np.asarray(weight, np.float64), x.ndim)
    if bias is not None:
        y = y + per_channel(np.asarray(bias, np.float64), x.ndim)
    return y, mean, var


def unbiased_var(x):
    return np.asarray(x, np.float64).var(axis=channel_axes(x), ddof=1)


def layer_pair(seed=0, dtype=np.float64, **kwargs):
    """A fused and a composed BatchNorm1d with the same random (non-default) γ and β."""
    fused = nn.BatchNorm1d(C, fused=True, dtype=dtype, **kwargs)
    composed = nn.BatchNorm1d(C, fused=False, dtype=dtype, **kwargs)
    if fused.affine:
        rng = np.random.default_rng(seed)
        weight, bias = rng.uniform(0.5, 2.0, C), rng.standard_normal(C)
        for layer in (fused, composed):
            layer.weight.data[...] = weight
            layer.bias.data[...] = bias
    return fused, composed


def run(layer, x, upstream):
    """Forward and backward through ``layer``: (y, grad_x, grad_w, grad_b) as arrays."""
    layer.zero_grad()
    xt = mg.tensor(x.copy(), requires_grad=True)
    y = layer(xt)
    y.backward(upstream)
    weight_grad = None if layer.weight is None else layer.weight.grad
    bias_grad = None if layer.bias is None else layer.bias.grad
    return y, xt.grad, weight_grad, bias_grad


def assert_close(got, want, tol, what):
    want = np.asarray(want, np.float64)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol * scale, err_msg=what)


# ------------------------------------------------------------------ fused == composed, every combination
# Tolerances. float64 at offset 0: 1e-12. At offset 1e4 a float64 input only carries
# 1e4 · 2.2e-16 ≈ 2e-12 of absolute precision, so x - μ, and everything after it, agrees to
# that: 1e-11. float32: 1e-5; at offset 1e4 the float32 batch mean itself is off by ~1e-3, and
# the composed graph differentiates that rounded mean (whose residual Σ(x - μ̃) is not 0) while
# the fused formula assumes Σ x̂ = 0: the x-gradients then differ by ~1e-4, both within float32's
# reach of the float64 truth (see test_float32_offset_matches_float64_reference).
TOLERANCE = {(np.float64, 0.0): (1e-12, 1e-12), (np.float64, 1e4): (1e-11, 1e-11),
             (np.float32, 0.0): (1e-5, 1e-5), (np.float32, 1e4): (1e-5, 1e-3)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("offset", [0.0, 1e4], ids=["centred", "offset1e4"])
@pytest.mark.parametrize("shape", [(6, C), (4, C, 5)], ids=["NC", "NCL"])
@pytest.mark.parametrize("track", [True, False], ids=["track", "notrack"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["mom0.1", "cumulative"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "noaffine"])
def test_fused_and_composed_agree(affine, momentum, track, shape, offset, dtype):
    tol, tol_grad_x = TOLERANCE[(dtype, offset)]
    fused, composed = layer_pair(affine=affine, momentum=momentum, track_running_stats=track, dtype=dtype)
    rng = np.random.default_rng(1)
    with mg.train_mode():
        for step in range(3):
            x = (offset + rng.uniform(0.5, 3.0) * rng.standard_normal(shape)).astype(dtype)
            upstream = rng.standard_normal(shape).astype(dtype)
            y_f, *grads_f = run(fused, x, upstream)
            y_c, *grads_c = run(composed, x, upstream)
            assert y_f._ctx.fn is BatchNormFused                # one op in the graph
            assert y_c._ctx.fn is not BatchNormFused
            assert y_f.dtype == dtype and y_c.dtype == dtype
            assert_close(y_f.data, y_c.data, tol, f"y, step {step}")
            assert_close(grads_f[0], grads_c[0], tol_grad_x, f"grad x, step {step}")
            for name, g_f, g_c in zip(("weight", "bias"), grads_f[1:], grads_c[1:]):
                if affine:
                    assert g_f.dtype == dtype
                    assert_close(g_f, g_c, tol, f"grad {name}, step {step}")
                else:
                    assert g_f is None and g_c is None
            if track:
                assert_close(fused.running_mean, composed.running_mean, tol, "running_mean")
                assert_close(fused.running_var, composed.running_var, tol, "running_var")
                assert fused.num_batches_tracked == composed.num_batches_tracked == step + 1
    # eval: the running statistics (or, untracked, the batch's), both ways
    x = (offset + rng.standard_normal(shape)).astype(dtype)
    upstream = rng.standard_normal(shape).astype(dtype)
    with mg.eval_mode():
        y_f, *grads_f = run(fused, x, upstream)
        y_c, *grads_c = run(composed, x, upstream)
    # fused eval is folded into x · scale + shift (as PyTorch's CPU kernel is): at offset 1e4 two
    # terms of size 1e4 cancel, costing ~1e4 · machine epsilon: ~1e-12 in float64, ~1e-3 in float32
    eval_tol = tol if offset == 0 else {np.float64: 1e-10, np.float32: 3e-3}[dtype]
    assert_close(y_f.data, y_c.data, eval_tol, "eval y")
    for name, g_f, g_c in zip(("x", "weight", "bias"), grads_f, grads_c):
        if g_c is not None:
            assert_close(g_f, g_c, max(eval_tol, tol_grad_x), f"eval grad {name}")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 6), channels=st.integers(1, 4), length=st.one_of(st.none(), st.integers(1, 4)),
       affine=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_fused_and_composed_agree_on_any_shape(n, channels, length, affine, seed):
    shape = (n, channels) if length is None else (n, channels, length)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * rng.uniform(0.1, 10) + rng.uniform(-5, 5)
    upstream = rng.standard_normal(shape)
    weight = mg.tensor(rng.standard_normal(channels), requires_grad=True) if affine else None
    bias = mg.tensor(rng.standard_normal(channels), requires_grad=True) if affine else None
    results = []
    for fn in (F.batch_norm_fused, F.batch_norm_composed):
        xt = mg.tensor(x, requires_grad=True)
        for p in (weight, bias):
            if p is not None:
                p.grad = None
        y = fn(xt, weight, bias, EPS)[0]
        y.backward(upstream)
        results.append([y.data, xt.grad] + ([weight.grad, bias.grad] if affine else []))
    for name, f, c in zip(("y", "grad x", "grad weight", "grad bias"), *results):
        assert_close(f, c, 1e-11, name)


@pytest.mark.parametrize("shape", [(7, C), (3, C, 4)], ids=["NC", "NCL"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_training_output_and_gradients_match_numpy(fused, shape):
    rng = np.random.default_rng(2)
    layer = layer_pair(dtype=np.float64)[0 if fused else 1]
    x, upstream = rng.standard_normal(shape) * 3 + 1, rng.standard_normal(shape)
    with mg.train_mode():
        y, grad_x, grad_w, grad_b = run(layer, x, upstream)
    w, b = layer.weight.data, layer.bias.data
    y_ref, _, var = reference_bn(x, w, b)
    np.testing.assert_allclose(y.data, y_ref, rtol=1e-12, atol=1e-12)
    # the textbook backward, written independently of either implementation
    axes, n = channel_axes(x), x.size // C
    x_hat = reference_bn(x)[0]
    grad_x_hat = upstream * per_channel(w, x.ndim)
    expected_x = (per_channel(1 / np.sqrt(var + EPS), x.ndim) / n) * (
        n * grad_x_hat - grad_x_hat.sum(axis=axes, keepdims=True)
        - x_hat * (grad_x_hat * x_hat).sum(axis=axes, keepdims=True))
    np.testing.assert_allclose(grad_x, expected_x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_w, (upstream * x_hat).sum(axis=axes), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_b, upstream.sum(axis=axes), rtol=1e-12, atol=1e-12)


def test_normalising_uses_the_biased_variance():
    x = np.array([[0.0], [1.0], [2.0], [5.0]])          # n = 4: biased 3.5, unbiased 4.667
    layer = nn.BatchNorm1d(1, dtype=np.float64)
    with mg.train_mode():
        y = layer(mg.tensor(x)).data
    np.testing.assert_allclose(y, (x - 2.0) / np.sqrt(3.5 + EPS), rtol=1e-12)


# ------------------------------------------------------------------ finite differences, first and second order
def bn_inputs(shape, affine, seed=3):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape) * 2 + 0.5, requires_grad=True)
    if not affine:
        return [x, None, None]
    weight = mg.tensor(rng.uniform(0.5, 2.0, C), requires_grad=True)
    bias = mg.tensor(rng.standard_normal(C), requires_grad=True)
    return [x, weight, bias]


FUNCTIONS = {"fused": F.batch_norm_fused, "composed": F.batch_norm_composed}
SMALL = {"NC": (4, C), "NCL": (3, C, 2)}


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "noaffine"])
@pytest.mark.parametrize("shape", SMALL.values(), ids=SMALL.keys())
@pytest.mark.parametrize("which", FUNCTIONS, ids=FUNCTIONS.keys())
def test_gradcheck(which, shape, affine):
    fn = FUNCTIONS[which]
    assert mg.gradcheck(lambda x, w, b: fn(x, w, b, EPS)[0], bn_inputs(shape, affine),
                        raise_on_vacuous=True)


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "noaffine"])
@pytest.mark.parametrize("shape", SMALL.values(), ids=SMALL.keys())
@pytest.mark.parametrize("which", FUNCTIONS, ids=FUNCTIONS.keys())
def test_gradgradcheck(which, shape, affine):
    fn = FUNCTIONS[which]
    assert mg.gradgradcheck(lambda x, w, b: fn(x, w, b, EPS)[0], bn_inputs(shape, affine))


@pytest.mark.parametrize("which", FUNCTIONS, ids=FUNCTIONS.keys())
def test_gradcheck_when_the_input_is_used_twice(which):
    fn = FUNCTIONS[which]
    x, w, b = bn_inputs((4, C), affine=True)
    assert mg.gradcheck(lambda x, w, b: fn(x, w, b, EPS)[0] * x + x, [x, w, b])


def hessian_vector_products(fn, inputs, upstream, directions):
    """d/d(inputs) of <grad of <upstream, fn>, directions>: one Hessian-vector product each."""
    y = fn(*inputs, EPS)[0]
    grads = mg.grad(y, inputs, grad_outputs=mg.tensor(upstream), create_graph=True)
    inner = sum((g * mg.tensor(v)).sum() for g, v in zip(grads, directions))
    second = mg.grad(inner, inputs, allow_unused=True)
    return [np.zeros(t.shape) if s is None else s.data for s, t in zip(second, inputs)]


@pytest.mark.parametrize("shape", SMALL.values(), ids=SMALL.keys())
def test_fused_and_composed_agree_on_second_derivatives(shape):
    inputs = bn_inputs(shape, affine=True, seed=4)
    rng = np.random.default_rng(5)
    upstream = rng.standard_normal(shape)
    directions = [rng.standard_normal(t.shape) for t in inputs]
    fused = hessian_vector_products(F.batch_norm_fused, inputs, upstream, directions)
    composed = hessian_vector_products(F.batch_norm_composed, inputs, upstream, directions)
    assert np.abs(fused[0]).max() > 0.1 and np.abs(fused[1]).max() > 0.1   # not trivially zero
    for name, f, c in zip(("x", "weight", "bias"), fused, composed):
        np.testing.assert_allclose(f, c, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(fused[2], 0.0)      # y is linear in β: no second derivative


# ------------------------------------------------------------------ running statistics
@pytest.mark.parametrize("shape", [(5, C), (4, C, 3)], ids=["NC", "NCL"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_running_statistics_step_by_step(fused, shape):
    layer = nn.BatchNorm1d(C, momentum=0.1, fused=fused, dtype=np.float64)
    running_mean, running_var = np.zeros(C), np.ones(C)
    rng = np.random.default_rng(6)
    with mg.train_mode():
        for step in range(1, 5):
            scale, shift = rng.uniform(0.5, 4, C), rng.standard_normal(C)     # per channel
            x = rng.standard_normal(shape) * per_channel(scale, len(shape)) + per_channel(shift, len(shape))
            layer(mg.tensor(x))
            running_mean = 0.9 * running_mean + 0.1 * x.mean(axis=channel_axes(x))
            running_var = 0.9 * running_var + 0.1 * unbiased_var(x)       # n/(n-1) · biased
            np.testing.assert_allclose(layer.running_mean, running_mean, rtol=1e-13, err_msg=f"step {step}")
            np.testing.assert_allclose(layer.running_var, running_var, rtol=1e-13, err_msg=f"step {step}")
            assert layer.num_batches_tracked == step
            assert layer.num_batches_tracked.dtype == np.int64 and layer.num_batches_tracked.shape == ()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_other_momentum_values(fused):
    layer = nn.BatchNorm1d(C, momentum=0.7, fused=fused, dtype=np.float64)
    layer.running_mean[...] = [1.0, -2.0, 3.0]
    layer.running_var[...] = [0.5, 2.0, 4.0]
    x = np.random.default_rng(7).standard_normal((6, C))
    with mg.train_mode():
        layer(mg.tensor(x))
    np.testing.assert_allclose(layer.running_mean, 0.3 * np.array([1.0, -2.0, 3.0]) + 0.7 * x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(layer.running_var, 0.3 * np.array([0.5, 2.0, 4.0]) + 0.7 * x.var(0, ddof=1),
                               rtol=1e-13)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_momentum_none_is_the_cumulative_average(fused):
    layer = nn.BatchNorm1d(C, momentum=None, fused=fused, dtype=np.float64)
    layer.running_mean[...] = 100.0                    # the first batch's factor is 1: forgotten
    rng = np.random.default_rng(8)
    batches = [rng.standard_normal((n, C)) * (1 + i) + i for i, n in enumerate((4, 9, 5, 6))]
    with mg.train_mode():
        for k, x in enumerate(batches, start=1):
            layer(mg.tensor(x))
            np.testing.assert_allclose(layer.running_mean, np.mean([b.mean(0) for b in batches[:k]], axis=0),
                                       rtol=1e-12)
            np.testing.assert_allclose(layer.running_var, np.mean([b.var(0, ddof=1) for b in batches[:k]], axis=0),
                                       rtol=1e-12)
            assert layer.num_batches_tracked == k


def test_float32_layer_keeps_float32_buffers():
    layer = nn.BatchNorm1d(C)
    assert layer.weight.dtype == np.float32 and layer.running_mean.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, 1.0)
    np.testing.assert_array_equal(layer.bias.data, 0.0)
    np.testing.assert_array_equal(layer.running_mean, 0.0)
    np.testing.assert_array_equal(layer.running_var, 1.0)
    x = np.random.default_rng(9).standard_normal((8, C)).astype(np.float32)
    with mg.train_mode():
        y = layer(mg.tensor(x))
    assert y.dtype == np.float32 and layer.running_var.dtype == np.float32
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * unbiased_var(x), rtol=1e-6)


# ------------------------------------------------------------------ eval mode
@pytest.mark.parametrize("shape", [(5, C), (4, C, 3)], ids=["NC", "NCL"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_eval_uses_running_statistics_and_changes_nothing(fused, shape):
    layer = layer_pair(seed=10, momentum=0.3)[0 if fused else 1]
    rng = np.random.default_rng(11)
    with mg.train_mode():
        for _ in range(3):
            layer(mg.tensor(rng.standard_normal(shape) * 2 + 1))
    arrays = (layer.running_mean, layer.running_var, layer.num_batches_tracked)
    before = [a.copy() for a in arrays]
    x, upstream = rng.standard_normal(shape), rng.standard_normal(shape)
    layer.eval()
    y, grad_x, grad_w, grad_b = run(layer, x, upstream)
    scale = per_channel(1 / np.sqrt(layer.running_var + EPS), x.ndim)
    x_hat = (x - per_channel(layer.running_mean, x.ndim)) * scale
    w, b = layer.weight.data, layer.bias.data
    np.testing.assert_allclose(y.data, x_hat * per_channel(w, x.ndim) + per_channel(b, x.ndim),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad_x, upstream * per_channel(w, x.ndim) * scale, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grad_w, (upstream * x_hat).sum(axis=channel_axes(x)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_b, upstream.sum(axis=channel_axes(x)), rtol=1e-12, atol=1e-12)
    for name, array, old in zip(("running_mean", "running_var", "num_batches_tracked"), arrays, before):
        assert getattr(layer, name) is array, name
        np.testing.assert_array_equal(array, old, err_msg=name)


def test_eval_accepts_a_single_sample():
    layer = nn.BatchNorm1d(C, dtype=np.float64)
    with mg.eval_mode():
        y = layer(mg.tensor(np.array([[1.0, 2.0, 3.0]])))
    np.testing.assert_allclose(y.data, [[1.0, 2.0, 3.0]] / np.sqrt(1 + EPS), rtol=1e-12)


def test_flag_restored_after_an_exception_inside_eval_mode():
    layer = nn.BatchNorm1d(C, dtype=np.float64)
    mg.set_training(True)
    with pytest.raises(ValueError):
        with mg.eval_mode():
            assert mg.is_training() is False
            layer(mg.tensor(np.ones((2, C + 1))))
    assert mg.is_training() is True
    layer(mg.tensor(np.random.default_rng(0).standard_normal((4, C))))   # training again: updates
    assert layer.num_batches_tracked == 1
    mg.set_training(False)
    with pytest.raises(RuntimeError, match="boom"):
        with mg.train_mode():
            raise RuntimeError("boom")
    assert mg.is_training() is False


def test_without_running_statistics_batch_statistics_are_used_in_both_modes():
    layer = nn.BatchNorm1d(C, track_running_stats=False, dtype=np.float64)
    assert layer.running_mean is None and layer.running_var is None and layer.num_batches_tracked is None
    assert list(layer.buffers()) == [] and list(layer.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(12).standard_normal((5, C)) + 3
    with mg.train_mode():
        y_train = layer(mg.tensor(x)).data
    with mg.eval_mode():
        y_eval = layer(mg.tensor(x)).data
    np.testing.assert_allclose(y_train, reference_bn(x)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y_eval, y_train)


def test_without_affine_there_are_no_parameters():
    layer = nn.BatchNorm1d(C, affine=False, dtype=np.float64)
    assert layer.weight is None and layer.bias is None
    assert list(layer.parameters()) == []
    assert list(layer.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    x = np.random.default_rng(13).standard_normal((6, C, 2))
    with mg.train_mode():
        y = layer(mg.tensor(x)).data
    np.testing.assert_allclose(y, reference_bn(x)[0], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("shape", [(1, C), (1, C, 1)], ids=["NC", "NCL"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_one_value_per_channel_in_training_is_an_error_and_changes_nothing(fused, shape):
    layer = nn.BatchNorm1d(C, fused=fused, momentum=None, dtype=np.float64)
    with mg.train_mode():
        layer(mg.tensor(np.random.default_rng(0).standard_normal((4, C))))
        before = {k: v.copy() for k, v in layer.state_dict().items()}
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            layer(mg.tensor(np.ones(shape)))
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_one_sample_with_a_length_axis_is_fine_in_training():
    x = np.random.default_rng(14).standard_normal((1, C, 4))
    with mg.train_mode():
        y = nn.BatchNorm1d(C, dtype=np.float64)(mg.tensor(x)).data
    np.testing.assert_allclose(y, reference_bn(x)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(C,), (2, C, 4, 5)])
def test_wrong_number_of_dimensions_names_expected_and_got(shape):
    with pytest.raises(ValueError) as info:
        nn.BatchNorm1d(C)(mg.tensor(np.ones(shape, dtype=np.float32)))
    message = str(info.value)
    assert f"(N, {C})" in message and f"(N, {C}, L)" in message and str(shape) in message


@pytest.mark.parametrize("shape", [(4, C + 2), (4, C - 1, 6)])
def test_wrong_feature_count_names_expected_and_got(shape):
    with pytest.raises(ValueError) as info:
        nn.BatchNorm1d(C)(mg.tensor(np.ones(shape, dtype=np.float32)))
    assert f"BatchNorm1d({C})" in str(info.value) and str(shape) in str(info.value)


def test_input_dtype_must_match():
    with pytest.raises(TypeError, match="float32 parameters but got input of dtype float64"):
        nn.BatchNorm1d(C)(mg.tensor(np.ones((4, C))))


# ------------------------------------------------------------------ numerical stability
@pytest.mark.parametrize("shape", [(64, C), (8, C, 8)], ids=["NC", "NCL"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_float64_offset_1e4_matches_the_centred_reference(fused, shape):
    # E[x²] - E[x]² would lose ~8 digits here (1e8 - 1e8); centring first loses none
    x = 1e4 + np.random.default_rng(15).standard_normal(shape)
    layer = nn.BatchNorm1d(C, momentum=1.0, fused=fused, dtype=np.float64)   # running = this batch
    with mg.train_mode():
        y = layer(mg.tensor(x)).data
    y_ref, mean, var = reference_bn(x)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-14)
    np.testing.assert_allclose(layer.running_var, unbiased_var(x), rtol=1e-10)
    _, batch_mean, batch_var = FUNCTIONS["fused" if fused else "composed"](mg.tensor(x), None, None, EPS)
    np.testing.assert_allclose(batch_var, var, rtol=1e-10)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_float32_offset_matches_float64_reference(fused):
    # float32 spacing at 1e4 is ~1e-3: that, not the variance formula, limits the accuracy.
    # E[x²] - E[x]² in float32 would be off by ~10 (or negative: NaN) here.
    x = (1e4 + np.random.default_rng(16).standard_normal((32, C, 4))).astype(np.float32)
    upstream = np.random.default_rng(17).standard_normal(x.shape).astype(np.float32)
    layer = nn.BatchNorm1d(C, momentum=1.0, fused=fused)
    with mg.train_mode():
        y, grad_x, _, _ = run(layer, x, upstream)
    y_ref, _, var = reference_bn(x)
    assert np.isfinite(y.data).all() and np.isfinite(grad_x).all()
    np.testing.assert_allclose(y.data, y_ref, rtol=0, atol=5e-3)
    np.testing.assert_allclose(layer.running_var, unbiased_var(x), rtol=1e-2)
    reference = nn.BatchNorm1d(C, fused=fused, dtype=np.float64)
    with mg.train_mode():
        _, grad_ref, _, _ = run(reference, x.astype(np.float64), upstream.astype(np.float64))
    np.testing.assert_allclose(grad_x, grad_ref, rtol=0, atol=1e-2)


# ------------------------------------------------------------------ functional forms
def test_pure_functions_share_a_signature_and_return_batch_statistics():
    assert inspect.signature(F.batch_norm_fused) == inspect.signature(F.batch_norm_composed)
    assert list(inspect.signature(F.batch_norm_fused).parameters) == ["x", "weight", "bias", "eps"]
    rng = np.random.default_rng(22)
    x = rng.standard_normal((5, C, 2)) + 1
    weight, bias = mg.tensor(rng.standard_normal(C)), mg.tensor(rng.standard_normal(C))
    x_copy, w_copy = x.copy(), weight.data.copy()
    y_ref, mean, var = reference_bn(x, weight.data, bias.data)
    for name, fn in FUNCTIONS.items():
        results = [fn(mg.tensor(x), weight, bias, EPS) for _ in range(2)]   # no hidden state
        for y, batch_mean, batch_var in results:
            assert isinstance(y, mg.Tensor) and isinstance(batch_mean, np.ndarray), name
            np.testing.assert_allclose(y.data, y_ref, rtol=1e-12, atol=1e-12, err_msg=name)
            np.testing.assert_allclose(batch_mean, mean, rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(batch_var, var, rtol=1e-12, err_msg=name)       # biased
        np.testing.assert_array_equal(x, x_copy)       # inputs untouched
        np.testing.assert_array_equal(weight.data, w_copy)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_functional_batch_norm_updates_the_arrays_in_place(fused):
    rng = np.random.default_rng(23)
    running_mean, running_var = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    mean_before, var_before = running_mean.copy(), running_var.copy()
    ids = (id(running_mean), id(running_var))
    weight, bias = mg.tensor(rng.standard_normal(C)), mg.tensor(rng.standard_normal(C))
    x = rng.standard_normal((6, C, 3))
    y = F.batch_norm(mg.tensor(x), running_mean, running_var, weight, bias, training=True,
                     momentum=0.25, fused=fused)
    assert (id(running_mean), id(running_var)) == ids
    np.testing.assert_allclose(y.data, reference_bn(x, weight.data, bias.data)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(running_mean, 0.75 * mean_before + 0.25 * x.mean(axis=(0, 2)), rtol=1e-13)
    np.testing.assert_allclose(running_var, 0.75 * var_before + 0.25 * unbiased_var(x), rtol=1e-13)

    mean_now, var_now = running_mean.copy(), running_var.copy()
    y = F.batch_norm(mg.tensor(x), running_mean, running_var, weight, bias, training=False, fused=fused)
    np.testing.assert_array_equal(running_mean, mean_now)
    np.testing.assert_array_equal(running_var, var_now)
    expected = ((x - per_channel(mean_now, 3)) / np.sqrt(per_channel(var_now, 3) + EPS)
                * per_channel(weight.data, 3) + per_channel(bias.data, 3))
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)


def test_functional_batch_norm_defaults_and_optional_buffers():
    x = np.random.default_rng(24).standard_normal((4, C))
    running_mean, running_var = np.full(C, 0.5), np.full(C, 4.0)
    y = F.batch_norm(mg.tensor(x), running_mean, running_var)      # training=False by default
    np.testing.assert_allclose(y.data, (x - 0.5) / np.sqrt(4.0 + EPS), rtol=1e-12)
    y = F.batch_norm(mg.tensor(x), None, None, training=True)      # no buffers: nothing to update
    np.testing.assert_allclose(y.data, reference_bn(x)[0], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(mg.tensor(x), None, None, training=False)


def test_functional_batch_norm_errors():
    x = mg.tensor(np.ones((4, C)))
    with pytest.raises(ValueError, match=r"running_mean has shape \(2,\)"):
        F.batch_norm(x, np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match=r"weight has shape \(4,\)"):
        F.batch_norm(x, None, None, weight=mg.tensor(np.ones(4)), training=True)
    with pytest.raises(ValueError, match="1-D input"):
        F.batch_norm(mg.tensor(np.ones(C)), np.zeros(C), np.ones(C))
    with pytest.raises(ValueError, match=r"more than 1 value per channel when training, got input "
                                         r"of shape \(1, 3\) \(1 value per channel\)"):
        F.batch_norm(mg.tensor(np.ones((1, C))), np.zeros(C), np.ones(C), training=True)
    with pytest.raises(TypeError, match="Tensor input"):
        F.batch_norm(np.ones((4, C)), np.zeros(C), np.ones(C))


# ------------------------------------------------------------------ BN as the first layer
@pytest.mark.parametrize("shape", [(6, C), (4, C, 5)], ids=["NC", "NCL"])
def test_fused_gamma_and_beta_gradients_when_x_needs_no_grad(shape):
    """Batch norm as a first layer: x is data; only γ and β learn, and their gradients must
    match the composed batch norm's (the fused op skips dx then)."""
    rng = np.random.default_rng(21)
    x = mg.tensor(rng.standard_normal(shape))                    # requires_grad=False
    g = rng.standard_normal(shape)
    grads = {}
    for name, bn in (("fused", F.batch_norm_fused), ("composed", F.batch_norm_composed)):
        w = mg.tensor(rng.uniform(0.5, 2.0, C) if not grads else grads["w0"], requires_grad=True)
        b = mg.tensor(rng.standard_normal(C) if not grads else grads["b0"], requires_grad=True)
        grads.setdefault("w0", w.data.copy())
        grads.setdefault("b0", b.data.copy())
        bn(x, w, b)[0].backward(g)
        grads[name] = (w.grad, b.grad)
    for got, ref in zip(grads["fused"], grads["composed"]):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    y_ref, _, _ = reference_bn(x.data, grads["w0"], grads["b0"])
    x_hat = (y_ref - per_channel(grads["b0"], x.ndim)) / per_channel(grads["w0"], x.ndim)
    np.testing.assert_allclose(grads["fused"][0], (g * x_hat).sum(axis=channel_axes(x.data)), rtol=1e-10)
    assert mg.gradcheck(lambda w, b: F.batch_norm_fused(x, w, b)[0],
                        [mg.tensor(grads["w0"], requires_grad=True), mg.tensor(grads["b0"], requires_grad=True)])


# ------------------------------------------------------------------ constructor arguments
@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_features": 0}, ValueError, "BatchNorm1d: num_features must be >= 1, got 0"),
    ({"num_features": 2.5}, TypeError, "BatchNorm1d: num_features must be an int, got 2.5"),
    ({"num_features": True}, TypeError, "num_features must be an int, got True"),
    ({"eps": 0.0}, ValueError, "eps must be a positive number"),
    ({"eps": -1e-5}, ValueError, "eps must be a positive number"),
    ({"eps": float("nan")}, ValueError, "eps must be a positive number"),
    ({"eps": float("inf")}, ValueError, "eps must be a positive number"),
    ({"eps": "1e-5"}, TypeError, r"BatchNorm1d: eps must be a real number, got '1e-5' \(str\)"),
    ({"momentum": 1.5}, ValueError, r"momentum must be None .* \[0, 1\]"),
    ({"momentum": -0.1}, ValueError, r"momentum must be None .* \[0, 1\]"),
    ({"momentum": float("nan")}, ValueError, r"momentum must be None .* \[0, 1\], got nan"),
    ({"momentum": True}, TypeError, r"BatchNorm1d: momentum must be a real number, got True"),
    ({"dtype": np.int64}, TypeError, r"BatchNorm1d only accepts floating point dtypes, but got desired dtype=int64"),
])
def test_constructor_refuses_nonsense(kwargs, error, match):
    args = {"num_features": C, **kwargs}
    with pytest.raises(error, match=match):
        nn.BatchNorm1d(**args)


def test_constructor_accepts_the_edges():
    # momentum 0 keeps the running statistics, 1 replaces them by the batch's, None averages
    x = mg.tensor(np.random.default_rng(31).standard_normal((6, 1)) * 2 + 3)
    unbiased = x.data.var(ddof=1)
    for momentum, expected in ((0.0, 1.0), (1.0, unbiased), (None, unbiased)):
        layer = nn.BatchNorm1d(np.int64(1), momentum=momentum, eps=np.float64(1e-12), dtype=np.float64)
        with mg.train_mode():
            layer(x)
        assert layer.eps == 1e-12 and layer.momentum == momentum
        np.testing.assert_allclose(layer.running_var, [expected], rtol=1e-12)


def test_reset_running_stats_restores_the_initial_buffers():
    layer = nn.BatchNorm1d(C, dtype=np.float64)
    with mg.train_mode():
        layer(mg.tensor(np.random.default_rng(30).standard_normal((5, C)) * 3 + 2))
    assert int(layer.num_batches_tracked) == 1 and not np.allclose(layer.running_mean, 0)
    layer.reset_running_stats()
    np.testing.assert_array_equal(layer.running_mean, np.zeros(C))
    np.testing.assert_array_equal(layer.running_var, np.ones(C))
    assert int(layer.num_batches_tracked) == 0
    nn.BatchNorm1d(C, track_running_stats=False).reset_running_stats()     # nothing to reset: fine


def op_names(y):
    return sorted(ctx.fn.__name__ for ctx in mg.graph.nodes(y))


def test_functional_defaults_are_pytorch_s_and_fused():
    """F.batch_norm(x, rm, rv, training=True): momentum 0.1, eps 1e-5, the fused op; in eval
    the folded affine map (two nodes over x) unless fused=False (the textbook four)."""
    rng = np.random.default_rng(25)
    x = mg.tensor(rng.standard_normal((6, C)), requires_grad=True)
    running_mean, running_var = np.zeros(C), np.ones(C)
    y = F.batch_norm(x, running_mean, running_var, training=True)
    np.testing.assert_allclose(running_mean, 0.1 * x.data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.9 + 0.1 * unbiased_var(x.data), rtol=1e-12)
    assert op_names(y) == ["BatchNormFused"]
    mean, var = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    for call in (lambda: F.batch_norm(x, mean, var), lambda: F.batch_norm_eval(x, mean, var, None, None)):
        y = call()                                     # eps and fused by default
        np.testing.assert_allclose(y.data, (x.data - mean) / np.sqrt(var + EPS), rtol=1e-12)
        assert op_names(y) == ["Add", "Mul"]           # x · scale + shift
    composed = F.batch_norm_eval(x, mean, var, None, None, fused=False)
    assert op_names(composed) == ["Mul", "Sub"]        # (x - mean) · inv_std
    np.testing.assert_allclose(composed.data, y.data, rtol=1e-12)


@pytest.mark.parametrize("missing", ["mean", "var"])
def test_eval_needs_both_running_arrays(missing):
    x = mg.tensor(np.ones((4, C)))
    mean, var = (None, np.ones(C)) if missing == "mean" else (np.zeros(C), None)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(x, mean, var, training=False)
