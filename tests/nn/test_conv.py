"""Functional conv / pooling / flatten and the layers Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d,
Flatten: int and tuple arguments, every argument error with its message (raised before any op
runs), PyTorch's initialisation range, state_dict keys, reprs, and small CNNs end to end.
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import conv as layers
from minigrad.nn import functional as F
from minigrad.ops.conv import Conv
from minigrad.ops.pool import AvgPool, MaxPool


def leaf(shape, seed=0, dtype=np.float64, requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return mg.tensor(data, requires_grad=requires_grad)


# ------------------------------------------------------------------ the functional API
def test_conv_functions_call_the_op_with_tuples():
    x, w, b = leaf((2, 3, 9)), leaf((4, 3, 3), 1), leaf(4, 2)
    y = F.conv1d(x, w, b, stride=2, padding=1, dilation=2)
    expected = Conv.apply(x, w, b, stride=(2,), padding=((1, 1),), dilation=(2,), groups=1)
    assert y.grad_fn.fn is Conv and y.grad_fn.stride == (2,) and y.grad_fn.dilation == (2,)
    assert y.grad_fn.padding == ((1, 1),) and y.grad_fn.groups == 1
    np.testing.assert_array_equal(y.data, expected.data)
    x2, w2 = leaf((2, 3, 6, 7)), leaf((4, 3, 2, 3), 1)
    np.testing.assert_array_equal(F.conv2d(x2, w2, None, 1, (1, 0), [2, 1]).data,
                                  Conv.apply(x2, w2, None, stride=(1, 1), padding=((1, 1), (0, 0)), dilation=(2, 1),
                                             groups=1).data)
    y2 = F.conv2d(x2, w2, stride=np.int64(2))
    assert y2.grad_fn.stride == (2, 2) and y2.shape == (2, 4, 3, 3)


def test_conv_defaults_are_pytorchs():
    x, w = leaf((1, 2, 5)), leaf((3, 2, 2), 1)
    y = F.conv1d(x, w)
    assert y.shape == (1, 3, 4)
    assert (y.grad_fn.stride, y.grad_fn.padding, y.grad_fn.dilation, y.grad_fn.groups) == ((1,), ((0, 0),), (1,), 1)
    assert y.grad_fn.parents[2] is None      # bias=None


def op_call(op, x, kernel, stride, padding):
    """The pooling op itself: max with no dilation, average dividing by the whole kernel."""
    extra = {"dilation": (1,) * len(kernel)} if op is MaxPool else {"divisor": int(np.prod(kernel))}
    return op.apply(x, kernel=kernel, stride=stride, padding=padding, **extra)


@pytest.mark.parametrize("fn, op", [(F.max_pool1d, MaxPool), (F.avg_pool1d, AvgPool)])
def test_pool_stride_defaults_to_the_kernel(fn, op):
    x = leaf((2, 2, 9))
    y = fn(x, 3)
    assert y.grad_fn.fn is op and y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y.data, op_call(op, x, (3,), (3,), ((0, 0),)).data)
    assert fn(x, 3, stride=1, padding=1).shape == (2, 2, 9)


@pytest.mark.parametrize("fn, op", [(F.max_pool2d, MaxPool), (F.avg_pool2d, AvgPool)])
def test_pool_2d_takes_ints_and_pairs(fn, op):
    x = leaf((1, 2, 6, 5))
    np.testing.assert_array_equal(fn(x, (3, 2), 1, (1, 0)).data,
                                  op_call(op, x, (3, 2), (1, 1), ((1, 1), (0, 0))).data)
    assert fn(x, 2).shape == (1, 2, 3, 2)


def test_flatten():
    x = leaf((2, 3, 4))
    assert F.flatten(x).shape == (24,)
    assert F.flatten(x, 1).shape == (2, 12)
    assert F.flatten(x, 0, 1).shape == (6, 4)
    assert F.flatten(x, -2, -1).shape == (2, 12)
    assert F.flatten(x, 1, 1).shape == (2, 3, 4)
    assert F.flatten(leaf((0, 3, 4)), 1).shape == (0, 12)
    assert F.flatten(mg.tensor(np.array(5.0))).shape == (1,)
    g = np.arange(24.0).reshape(2, 12)
    F.flatten(x, 1).backward(g)
    np.testing.assert_array_equal(x.grad, g.reshape(2, 3, 4))


# ------------------------------------------------------------------ argument errors
X1, W1 = leaf((2, 3, 5)), leaf((4, 3, 3), 1)
X2, W2 = leaf((2, 3, 5, 5)), leaf((4, 3, 3, 3), 1)
FLOAT32_W = leaf((4, 3, 3), 1, np.float32)

ERRORS = [
    # conv1d
    ("conv1d-input-rank", lambda: F.conv1d(X2, W1), ValueError,
     r"conv1d: expected input of shape \(N, C, L\) \(3-D\), got 4-D input of shape \(2, 3, 5, 5\)"),
    ("conv1d-weight-rank", lambda: F.conv1d(X1, W2), ValueError,
     r"conv1d: expected weight of shape \(C_out, C_in, k\) \(3-D\), got 4-D weight of shape \(4, 3, 3, 3\)"),
    ("conv1d-channels", lambda: F.conv1d(X1, leaf((4, 2, 3))), ValueError,
     r"conv1d: weight of shape \(4, 2, 3\) expects input with C_in=2 channels, got 3 \(input of shape \(2, 3, 5\)\)"),
    ("conv1d-kernel-too-large", lambda: F.conv1d(X1, leaf((4, 3, 7))), ValueError,
     r"conv1d: kernel size \(7,\) \(dilation included\) can't be greater than the padded input size \(5,\)"),
    ("conv1d-dilated-kernel-too-large", lambda: F.conv1d(X1, W1, padding=0, dilation=3), ValueError,
     r"kernel size \(7,\) .*padded input size \(5,\) \(input of shape \(2, 3, 5\), padding \(\(0, 0\),\)\)"),
    ("conv1d-kernel-zero", lambda: F.conv1d(X1, leaf((4, 3, 0))), ValueError,
     r"conv1d: kernel size must be >= 1, got weight of shape \(4, 3, 0\)"),
    ("conv1d-stride-zero", lambda: F.conv1d(X1, W1, stride=0), ValueError, r"conv1d: stride must be >= 1, got 0"),
    ("conv1d-padding-negative", lambda: F.conv1d(X1, W1, padding=-1), ValueError,
     r"conv1d: padding must be >= 0, got -1"),
    ("conv1d-dilation-zero", lambda: F.conv1d(X1, W1, dilation=0), ValueError,
     r"conv1d: dilation must be >= 1, got 0"),
    ("conv1d-stride-pair", lambda: F.conv1d(X1, W1, stride=(1, 1)), ValueError,
     r"conv1d: stride must be an int or a tuple of 1 int, got \(1, 1\)"),
    ("conv1d-stride-float", lambda: F.conv1d(X1, W1, stride=1.5), TypeError,
     r"conv1d: stride must be an int or a tuple of 1 int, got 1.5"),
    ("conv1d-padding-bool", lambda: F.conv1d(X1, W1, padding=True), TypeError,
     r"conv1d: padding must be an int or a tuple of 1 int, got True"),
    ("conv1d-weight-dtype", lambda: F.conv1d(X1, FLOAT32_W), TypeError,
     r"conv1d: input and weight must have the same dtype, got input float64 and weight float32"),
    ("conv1d-bias-dtype", lambda: F.conv1d(X1, W1, leaf(4, dtype=np.float32)), TypeError,
     r"conv1d: input and bias must have the same dtype, got input float64 and bias float32"),
    ("conv1d-bias-shape", lambda: F.conv1d(X1, W1, leaf(3)), ValueError,
     r"conv1d: expected bias of shape \(4,\) for weight of shape \(4, 3, 3\), got \(3,\)"),
    ("conv1d-integer-input", lambda: F.conv1d(mg.tensor(np.ones((2, 3, 5), np.int64)), mg.tensor(np.ones((4, 3, 3), np.int64))),
     TypeError, r"conv1d expects a floating-point input, got dtype int64"),
    ("conv1d-input-array", lambda: F.conv1d(X1.data, W1), TypeError, r"conv1d expects a Tensor input, got ndarray"),
    ("conv1d-weight-list", lambda: F.conv1d(X1, [[[1.0]]]), TypeError, r"conv1d: weight must be a Tensor, got list"),
    # conv2d
    ("conv2d-input-rank", lambda: F.conv2d(X1, W2), ValueError,
     r"conv2d: expected input of shape \(N, C, H, W\) \(4-D\), got 3-D input of shape \(2, 3, 5\)"),
    ("conv2d-weight-rank", lambda: F.conv2d(X2, W1), ValueError,
     r"conv2d: expected weight of shape \(C_out, C_in, kh, kw\) \(4-D\), got 3-D weight"),
    ("conv2d-kernel-too-wide", lambda: F.conv2d(X2, leaf((4, 3, 3, 6))), ValueError,
     r"conv2d: kernel size \(3, 6\) .*padded input size \(5, 5\)"),
    ("conv2d-stride-triple", lambda: F.conv2d(X2, W2, stride=(1, 1, 1)), ValueError,
     r"conv2d: stride must be an int or a tuple of 2 ints, got \(1, 1, 1\)"),
    ("conv2d-dilation-pair-zero", lambda: F.conv2d(X2, W2, dilation=(1, 0)), ValueError,
     r"conv2d: dilation must be >= 1, got \(1, 0\)"),
    ("conv2d-channels", lambda: F.conv2d(X2, leaf((4, 1, 3, 3))), ValueError, r"expects input with C_in=1 channels, got 3"),
    # pooling
    ("max_pool1d-input-rank", lambda: F.max_pool1d(X2, 2), ValueError,
     r"max_pool1d: expected input of shape \(N, C, L\) \(3-D\), got 4-D input"),
    ("max_pool2d-input-rank", lambda: F.max_pool2d(X1, 2), ValueError,
     r"max_pool2d: expected input of shape \(N, C, H, W\) \(4-D\), got 3-D input"),
    ("max_pool1d-kernel-zero", lambda: F.max_pool1d(X1, 0), ValueError, r"max_pool1d: kernel_size must be >= 1, got 0"),
    ("max_pool1d-stride-zero", lambda: F.max_pool1d(X1, 2, 0), ValueError, r"max_pool1d: stride must be >= 1, got 0"),
    ("max_pool1d-padding-negative", lambda: F.max_pool1d(X1, 2, 1, -1), ValueError,
     r"max_pool1d: padding must be >= 0, got -1"),
    ("max_pool1d-padding-over-half", lambda: F.max_pool1d(X1, 3, 1, 2), ValueError,
     r"max_pool1d: padding should be at most half of kernel size, but got padding=\(2,\) and kernel_size=\(3,\)"),
    ("max_pool2d-padding-over-half", lambda: F.max_pool2d(X2, (3, 2), 1, (1, 2)), ValueError,
     r"max_pool2d: padding should be at most half of kernel size, but got padding=\(1, 2\) and kernel_size=\(3, 2\)"),
    ("max_pool1d-kernel-too-large", lambda: F.max_pool1d(leaf((1, 1, 2)), 3), ValueError,
     r"max_pool1d: kernel size \(3,\) .*padded input size \(2,\)"),
    ("max_pool1d-integer-input", lambda: F.max_pool1d(mg.tensor(np.arange(8).reshape(1, 2, 4)), 2), TypeError,
     r"max_pool1d expects a floating-point input, got dtype int64"),
    ("max_pool2d-kernel-triple", lambda: F.max_pool2d(X2, (2, 2, 2)), ValueError,
     r"max_pool2d: kernel_size must be an int or a tuple of 2 ints, got \(2, 2, 2\)"),
    ("max_pool1d-input-array", lambda: F.max_pool1d(X1.data, 2), TypeError, r"max_pool1d expects a Tensor input"),
    ("avg_pool1d-padding-over-half", lambda: F.avg_pool1d(X1, 2, 1, 2), ValueError,
     r"avg_pool1d: padding should be at most half of kernel size, but got padding=\(2,\) and kernel_size=\(2,\)"),
    ("avg_pool2d-kernel-too-large", lambda: F.avg_pool2d(X2, (2, 6)), ValueError,
     r"avg_pool2d: kernel size \(2, 6\) .*padded input size \(5, 5\)"),
    ("avg_pool2d-stride-float", lambda: F.avg_pool2d(X2, 2, (1, 1.0)), TypeError,
     r"avg_pool2d: stride must be an int or a tuple of 2 ints, got \(1, 1.0\)"),
    ("avg_pool1d-integer-input", lambda: F.avg_pool1d(mg.tensor(np.arange(8).reshape(1, 2, 4)), 2), TypeError,
     r"avg_pool1d expects a floating-point input, got dtype int64"),
    # flatten
    ("flatten-start-after-end", lambda: F.flatten(X1, 2, 1), ValueError,
     r"flatten: start_dim \(2\) must not come after end_dim \(1\) for an input of shape \(2, 3, 5\)"),
    ("flatten-out-of-range", lambda: F.flatten(X1, 3), ValueError,
     r"flatten: start_dim must be in \[-3, 2\] for an input of shape \(2, 3, 5\), got 3"),
    ("flatten-end-out-of-range", lambda: F.flatten(X1, 0, -4), ValueError, r"flatten: end_dim must be in \[-3, 2\]"),
    ("flatten-not-an-int", lambda: F.flatten(X1, 1.0), TypeError, r"flatten: start_dim must be an int, got 1.0"),
    ("flatten-array", lambda: F.flatten(X1.data), TypeError, r"flatten expects a Tensor input, got ndarray"),
]


class NoWork:
    @staticmethod
    def apply(*args, **kwargs):
        raise AssertionError("an op ran before the arguments were checked")


@pytest.mark.parametrize("name, call, error, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_argument_errors_name_expected_and_got_before_any_work(name, call, error, message, monkeypatch):
    for op in ("Conv", "MaxPool", "AvgPool"):
        monkeypatch.setattr(F, op, NoWork)
    with pytest.raises(error, match=message):
        call()


def test_valid_edge_cases_are_accepted():
    assert F.conv1d(X1, leaf((4, 3, 7)), padding=1).shape == (2, 4, 1)          # kernel = padded input
    assert F.max_pool1d(X1, 4, 1, 2).shape == (2, 3, 6)                          # padding = kernel / 2
    assert F.avg_pool2d(X2, (5, 1)).shape == (2, 3, 1, 5)
    assert F.conv1d(mg.tensor(np.zeros((0, 3, 5))), W1).shape == (0, 4, 3)     # an empty batch


# ------------------------------------------------------------------ layers
def test_conv_layers_parameters_and_their_initial_range():
    mg.manual_seed(0)
    layer = nn.Sequential(layers.Conv2d(16, 32, (3, 2)))[0]
    assert layer.weight.shape == (32, 16, 3, 2) and layer.bias.shape == (32,)
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    bound = 1 / np.sqrt(16 * 3 * 2)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.9 * bound           # the whole range is used
    np.testing.assert_allclose(layer.weight.data.std(), bound / np.sqrt(3), rtol=0.05)   # uniform's std
    one_d = layers.Conv1d(3, 5, 4, dtype=np.float64)
    assert one_d.weight.shape == (5, 3, 4) and one_d.weight.dtype == np.float64
    assert np.abs(one_d.weight.data).max() <= 1 / np.sqrt(12) and np.abs(one_d.bias.data).max() <= 1 / np.sqrt(12)


def test_manual_seed_makes_initialisation_reproducible():
    mg.manual_seed(3)
    a = layers.Conv1d(2, 3, 3)
    mg.manual_seed(3)
    b = layers.Conv1d(2, 3, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, layers.Conv1d(2, 3, 3).weight.data)


def test_state_dict_keys_and_no_bias():
    assert list(layers.Conv1d(2, 3, 3).state_dict()) == ["weight", "bias"]
    no_bias = layers.Conv2d(2, 3, 3, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    model = nn.Sequential(layers.Conv1d(1, 2, 3), nn.ReLU(), layers.MaxPool1d(2), layers.Flatten())
    assert list(model.state_dict()) == ["0.weight", "0.bias"]
    assert [p.shape for p in model.parameters()] == [(2, 1, 3), (2,)]


REPRS = [   # PyTorch 2.13's reprs of the same layers
    (lambda: layers.Conv1d(3, 4, 3), "Conv1d(3, 4, kernel_size=(3,), stride=(1,))"),
    (lambda: layers.Conv2d(3, 4, (3, 2), stride=2, padding=(1, 0), bias=False),
     "Conv2d(3, 4, kernel_size=(3, 2), stride=(2, 2), padding=(1, 0), bias=False)"),
    (lambda: layers.Conv2d(3, 4, 3, stride=(2, 1), padding=1, dilation=2),
     "Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 1), padding=(1, 1), dilation=(2, 2))"),
    (lambda: layers.Conv1d(1, 2, 3, dilation=(1,), padding=(0,)), "Conv1d(1, 2, kernel_size=(3,), stride=(1,))"),
    (lambda: layers.MaxPool1d(3), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)"),
    (lambda: layers.MaxPool2d(3, 2, 1), "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"),
    (lambda: layers.AvgPool1d(3), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
    (lambda: layers.AvgPool2d((3, 2), padding=1), "AvgPool2d(kernel_size=(3, 2), stride=(3, 2), padding=1)"),
    (lambda: layers.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
    (lambda: layers.Flatten(0, 2), "Flatten(start_dim=0, end_dim=2)"),
]


@pytest.mark.parametrize("make, expected", REPRS, ids=[r[1].split("(")[0] + str(i) for i, r in enumerate(REPRS)])
def test_reprs_are_pytorchs(make, expected):
    assert repr(make()) == expected


CONSTRUCTOR_ERRORS = [
    (lambda: layers.Conv1d(0, 4, 3), ValueError, r"Conv1d: in_channels must be >= 1, got 0"),
    (lambda: layers.Conv2d(3, 0, 3), ValueError, r"Conv2d: out_channels must be >= 1, got 0"),
    (lambda: layers.Conv1d(2.0, 4, 3), TypeError, r"Conv1d: in_channels must be an int, got 2.0"),
    (lambda: layers.Conv1d(3, 4, 0), ValueError, r"Conv1d: kernel_size must be >= 1, got 0"),
    (lambda: layers.Conv1d(3, 4, (3, 3)), ValueError, r"Conv1d: kernel_size must be an int or a tuple of 1 int"),
    (lambda: layers.Conv2d(3, 4, 3, stride=(1, 0)), ValueError, r"Conv2d: stride must be >= 1, got \(1, 0\)"),
    (lambda: layers.Conv2d(3, 4, 3, padding=-1), ValueError, r"Conv2d: padding must be >= 0, got -1"),
    (lambda: layers.Conv1d(3, 4, 3, dilation=0), ValueError, r"Conv1d: dilation must be >= 1, got 0"),
    (lambda: layers.MaxPool1d(0), ValueError, r"MaxPool1d: kernel_size must be >= 1, got 0"),
    (lambda: layers.MaxPool2d(3, padding=2), ValueError,
     r"MaxPool2d: padding should be at most half of kernel size, but got padding=\(2, 2\) and kernel_size=\(3, 3\)"),
    (lambda: layers.AvgPool1d(2, stride=0), ValueError, r"AvgPool1d: stride must be >= 1, got 0"),
    (lambda: layers.AvgPool2d((2, 2, 2)), ValueError, r"AvgPool2d: kernel_size must be an int or a tuple of 2 ints"),
    (lambda: layers.Flatten("1"), TypeError, r"Flatten: start_dim must be an int, got '1'"),
    (lambda: layers.Flatten(1, None), TypeError, r"Flatten: end_dim must be an int, got None"),
]


@pytest.mark.parametrize("make, error, message", CONSTRUCTOR_ERRORS, ids=[e[2][:24] for e in CONSTRUCTOR_ERRORS])
def test_constructors_check_their_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


LAYER_CALLS = [
    (lambda: layers.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2, dtype=np.float64), (2, 3, 9),
     lambda m, x: F.conv1d(x, m.weight, m.bias, 2, 1, 2)),
    (lambda: layers.Conv2d(3, 4, (2, 3), stride=(2, 1), padding=(0, 1), bias=False, dtype=np.float64),
     (2, 3, 5, 6), lambda m, x: F.conv2d(x, m.weight, None, (2, 1), (0, 1))),
    (lambda: layers.MaxPool1d(3, 2, 1), (2, 3, 9), lambda m, x: F.max_pool1d(x, 3, 2, 1)),
    (lambda: layers.MaxPool2d((3, 2), 1), (2, 3, 5, 6), lambda m, x: F.max_pool2d(x, (3, 2), 1)),
    (lambda: layers.AvgPool1d(2, padding=1), (2, 3, 9), lambda m, x: F.avg_pool1d(x, 2, padding=1)),
    (lambda: layers.AvgPool2d(2, (1, 2)), (2, 3, 5, 6), lambda m, x: F.avg_pool2d(x, 2, (1, 2))),
    (lambda: layers.Flatten(), (2, 3, 5, 6), lambda m, x: F.flatten(x, 1)),
]


@pytest.mark.parametrize("make, shape, functional", LAYER_CALLS, ids=[str(i) for i in range(len(LAYER_CALLS))])
def test_layers_compute_their_functional_and_check_the_input_once(make, shape, functional, monkeypatch):
    layer, x = make(), leaf(shape, 4)
    expected = functional(layer, x)
    calls = []
    monkeypatch.setattr(F, "check_input", lambda *args: calls.append(args[2]))
    monkeypatch.setattr(F, "flatten", lambda x, *dims: calls.append("flatten") or expected)
    y = layer(x)
    assert len(calls) == 1                  # one place checks the input: the functional
    np.testing.assert_array_equal(y.data, expected.data)


def test_a_layer_reports_a_wrong_input_through_the_functional():
    with pytest.raises(ValueError, match=r"conv1d: weight of shape \(4, 3, 3\) expects input with C_in=3 channels, got 2"):
        layers.Conv1d(3, 4, 3, dtype=np.float64)(leaf((1, 2, 5)))
    with pytest.raises(TypeError, match=r"conv2d: input and weight must have the same dtype, got input float64 and weight float32"):
        layers.Conv2d(3, 4, 3)(leaf((1, 3, 5, 5)))


# ------------------------------------------------------------------ small CNNs end to end
def mnist1d_cnn(dtype=np.float64):
    return nn.Sequential(layers.Conv1d(1, 5, 5, stride=2, padding=1, dtype=dtype), nn.ReLU(),
                         layers.Conv1d(5, 5, 3, 2, 1, dtype=dtype), nn.ReLU(),
                         layers.Conv1d(5, 5, 3, 2, 1, dtype=dtype), nn.ReLU(),
                         layers.Flatten(), nn.Linear(25, 3, dtype=dtype))


def test_a_cnn_gradient_against_finite_differences():
    mg.manual_seed(5)
    model = nn.Sequential(layers.Conv2d(2, 3, 3, padding=1, dtype=np.float64), nn.ReLU(),
                          layers.MaxPool2d(2), layers.Conv2d(3, 2, (2, 1), dtype=np.float64),
                          layers.AvgPool2d((1, 2)), layers.Flatten(), nn.Linear(2, 2, dtype=np.float64))
    assert mg.gradcheck(model, [leaf((2, 2, 4, 4), 6)])
    weight = model[0].weight
    assert mg.gradcheck(lambda w: F.conv2d(leaf((1, 2, 4, 4), 7, requires_grad=False), w, None, 1, 1), [weight])


def test_a_cnn_learns_a_fixed_batch():
    mg.manual_seed(8)
    model = mnist1d_cnn(np.float32)
    x = mg.tensor(np.random.default_rng(9).standard_normal((16, 1, 40)).astype(np.float32))
    target = np.random.default_rng(10).integers(0, 3, 16)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model[0].weight.grad is not None and model[-1].weight.grad.dtype == np.float32
    assert losses[-1] < 0.5 * losses[0]
