"""Linear, ReLU and Dropout: shapes, PyTorch's default initialisation, dtypes, and the
train/eval behaviour of dropout (inverted: kept units scaled by 1/(1-p), mean preserved).

Gradients are checked along a random upstream gradient (mg.gradcheck draws one), never .sum().
"""
import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ Linear
def test_linear_parameter_shapes_and_default_dtype():
    layer = nn.Linear(5, 3)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.requires_grad and layer.bias.requires_grad
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_linear_forward_matches_numpy():
    mg.manual_seed(0)
    layer = nn.Linear(5, 3)
    x = rand(4, 5)
    y = layer(mg.tensor(x))
    assert y.shape == (4, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-5, atol=1e-6)


def test_linear_accepts_leading_batch_axes():
    mg.manual_seed(0)
    layer = nn.Linear(5, 3)
    x = rand(2, 4, 5)
    y = layer(mg.tensor(x))
    assert y.shape == (2, 4, 3)
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-5, atol=1e-6)


def test_linear_init_is_uniform_within_one_over_sqrt_fan_in():
    mg.manual_seed(0)
    fan_in = 400
    layer = nn.Linear(fan_in, 300)
    bound = 1 / math.sqrt(fan_in)
    for values in (layer.weight.data, layer.bias.data):
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.98 * bound          # fills the range, not a narrower one
    w = layer.weight.data.astype(np.float64)
    assert abs(w.mean()) < 0.01 * bound                     # 120k draws: se of the mean ~0.0017 bound
    np.testing.assert_allclose(w.std(), bound / math.sqrt(3), rtol=0.01)   # U(-b, b) has std b/sqrt(3)


def test_linear_init_follows_manual_seed():
    mg.manual_seed(42)
    a = nn.Linear(6, 4)
    mg.manual_seed(42)
    b = nn.Linear(6, 4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, nn.Linear(6, 4).weight.data)


def test_linear_without_bias():
    mg.manual_seed(0)
    layer = nn.Linear(5, 3, bias=False)
    assert layer.bias is None
    assert list(layer.parameters()) == [layer.weight]
    assert list(layer.state_dict()) == ["weight"]
    x = rand(4, 5)
    np.testing.assert_allclose(layer(mg.tensor(x)).data, x @ layer.weight.data.T, rtol=1e-5, atol=1e-6)
    assert "bias=False" in repr(layer)


def test_linear_dtype_argument():
    layer = nn.Linear(3, 2, dtype=np.float64)
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    assert layer(mg.tensor(rand(1, 3, dtype=np.float64))).dtype == np.float64


@pytest.mark.parametrize("dtype, message", [
    (np.int64, r"Linear only accepts floating point dtypes, but got desired dtype=int64$"),
    (np.bool_, r"but got desired dtype=bool"),
    (np.complex128, r"dtype=complex128; minigrad differentiates real tensors only"),
    ("banana", r"Linear only accepts floating point dtypes \(e\.g\. np\.float32\), but got 'banana'")])
def test_linear_rejects_a_dtype_that_is_not_real_floating_point(dtype, message):
    with pytest.raises(TypeError, match=message):
        nn.Linear(3, 2, dtype=dtype)
    assert nn.Linear(3, 2, dtype="float16").weight.dtype == np.float16


@pytest.mark.parametrize("args, error, message", [
    ((2.0, 3), TypeError, "Linear: in_features must be an int, got 2.0"),
    ((2, None), TypeError, "Linear: out_features must be an int, got None"),
    ((-1, 3), ValueError, "Linear: in_features must be >= 0, got -1"),
    ((2, -3), ValueError, "Linear: out_features must be >= 0, got -3")])
def test_linear_refuses_feature_counts_that_are_not_ints(args, error, message):
    with pytest.raises(error, match=message):
        nn.Linear(*args)
    empty = nn.Linear(0, 2)                                   # as torch: no inputs, output = bias
    assert empty.weight.shape == (2, 0)
    np.testing.assert_array_equal(empty.bias.data, [0, 0])   # torch's bound for fan_in 0 is 0


def test_linear_rejects_input_of_another_dtype():
    with pytest.raises(TypeError, match="float32 parameters but got input of dtype float64"):
        nn.Linear(3, 2)(mg.tensor(rand(2, 3, dtype=np.float64)))


def test_linear_rejects_wrong_feature_count():
    with pytest.raises(ValueError, match=r"3 features .* shape \(2, 4\)"):
        nn.Linear(3, 2)(mg.tensor(rand(2, 4)))


def test_linear_gradients_with_random_upstream():
    mg.manual_seed(0)
    layer = nn.Linear(4, 3, dtype=np.float64)
    x = mg.tensor(rand(5, 4, dtype=np.float64), requires_grad=True)
    assert mg.gradcheck(lambda x, w, b: mg.nn.functional.linear(x, w, b), [x, layer.weight, layer.bias])
    upstream = rand(5, 3, seed=1, dtype=np.float64)
    layer(x).backward(upstream)
    np.testing.assert_allclose(x.grad, upstream @ layer.weight.data, rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, upstream.T @ x.data, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, upstream.sum(axis=0), rtol=1e-12)


def test_linear_used_twice_accumulates_gradients():
    mg.manual_seed(0)
    layer = nn.Linear(3, 3, dtype=np.float64)
    x = rand(2, 3, dtype=np.float64)
    upstream = rand(2, 3, seed=1, dtype=np.float64)
    layer(layer(mg.tensor(x))).backward(upstream)
    w, b = layer.weight.data, layer.bias.data
    hidden = x @ w.T + b
    grad_hidden = upstream @ w
    np.testing.assert_allclose(layer.weight.grad, upstream.T @ hidden + grad_hidden.T @ x, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, upstream.sum(0) + grad_hidden.sum(0), rtol=1e-12)


# ------------------------------------------------------------------ ReLU
def test_relu_forward_and_backward():
    x = rand(4, 5, dtype=np.float64)
    t = mg.tensor(x, requires_grad=True)
    y = nn.ReLU()(t)
    np.testing.assert_array_equal(y.data, np.maximum(x, 0))
    upstream = rand(4, 5, seed=1, dtype=np.float64)
    y.backward(upstream)
    np.testing.assert_array_equal(t.grad, upstream * (x > 0))
    assert repr(nn.ReLU()) == "ReLU()"


# ------------------------------------------------------------------ Dropout
def test_dropout_is_the_identity_in_eval_mode():
    x = mg.tensor(rand(50, 40), requires_grad=True)
    with mg.eval_mode():
        y = nn.Dropout(0.5)(x)
    np.testing.assert_array_equal(y.data, x.data)


def test_dropout_in_training_zeroes_or_scales_each_entry():
    mg.manual_seed(0)
    p = 0.3
    x = np.abs(rand(200, 100)) + 0.1                  # no zeros in the input
    with mg.train_mode():
        y = nn.Dropout(p)(mg.tensor(x)).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    # 20 000 Bernoulli(0.7) draws: the kept fraction has standard error 0.0032
    assert abs(kept.mean() - (1 - p)) < 0.015
    assert y.dtype == np.float32


def test_dropout_preserves_the_mean():
    mg.manual_seed(1)
    x = np.full((400, 250), 2.0, dtype=np.float32)
    with mg.train_mode():
        y = nn.Dropout(0.5)(mg.tensor(x)).data.astype(np.float64)
    # mean of 100 000 values each 0 or 4 with probability 1/2: standard error 0.0063
    assert abs(y.mean() - 2.0) < 0.03


def test_dropout_gradient_uses_the_same_mask():
    mg.manual_seed(2)
    p = 0.4
    x = mg.tensor(np.abs(rand(30, 20, dtype=np.float64)) + 0.1, requires_grad=True)
    with mg.train_mode():
        y = nn.Dropout(p)(x)
    upstream = rand(30, 20, seed=3, dtype=np.float64)
    y.backward(upstream)
    mask = (y.data != 0) / (1 - p)
    np.testing.assert_allclose(x.grad, upstream * mask, rtol=1e-12)


def test_dropout_reads_the_global_flag():
    mg.manual_seed(0)
    layer = nn.Dropout(0.5)
    x = mg.tensor(np.ones((20, 20), dtype=np.float32))
    layer.train()
    assert (layer(x).data == 0).any()
    layer.eval()
    assert (layer(x).data == 1).all()
    with mg.train_mode():
        assert (layer(x).data == 0).any()


def test_dropout_masks_follow_manual_seed():
    x = mg.tensor(np.ones((10, 10), dtype=np.float32))
    with mg.train_mode():
        mg.manual_seed(7)
        a = nn.Dropout(0.5)(x).data
        mg.manual_seed(7)
        b = nn.Dropout(0.5)(x).data
        c = nn.Dropout(0.5)(x).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout_p_zero_is_the_identity_in_training():
    x = mg.tensor(rand(5, 5))
    with mg.train_mode():
        np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x.data)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])
def test_dropout_rejects_probabilities_outside_0_1(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(mg.tensor(rand(2, 2)), p)


def test_dropout_p_one_zeroes_everything_as_in_pytorch():
    x = mg.tensor(rand(5, 5), requires_grad=True)
    with mg.train_mode():
        y = nn.Dropout(1.0)(x)
    assert np.all(y.data == 0) and np.isfinite(y.data).all()
    y.backward(rand(5, 5))
    assert np.all(x.grad == 0)


def test_dropout_default_probability_is_pytorch_s():
    assert nn.Dropout().p == 0.5


def test_linear_with_one_input_feature_is_initialised_like_any_other():
    weight = nn.Linear(1, 64).weight.data          # U(-1, 1): bound 1 / sqrt(1)
    assert np.abs(weight).max() > 0.5 and np.abs(weight).max() <= 1.0
