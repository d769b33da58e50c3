"""PyTorch's convolution and pooling options, without torch: groups, padding="same" / "valid",
max pooling's dilation and ceil_mode, average pooling's ceil_mode, count_include_pad and
divisor_override. Each against a definition built from the plain functionals (a grouped conv is
one conv per group; "same" is explicit padding, the odd one after), first and second order
against finite differences through the functionals, every refusal with its message before any
op runs, and the layers (arguments, initialisation, state_dict, reprs).
"""
import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import conv as layers
from minigrad.nn import functional as F
from minigrad.ops.conv import Conv


def leaf(shape, seed=0, dtype=np.float64, requires_grad=True):
    data = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return mg.tensor(data, requires_grad=requires_grad)


CONV = {1: F.conv1d, 2: F.conv2d}


# ------------------------------------------------------------------ groups
@pytest.mark.parametrize("dims, c_in, c_out, groups", [(1, 6, 4, 2), (2, 6, 9, 3), (1, 3, 6, 3), (2, 4, 4, 4)])
def test_a_grouped_conv_is_one_conv_per_group(dims, c_in, c_out, groups):
    x, w, b = leaf((2, c_in) + (7,) * dims), leaf((c_out, c_in // groups) + (3,) * dims, 1), leaf(c_out, 2)
    y = CONV[dims](x, w, b, 2, 1, 2, groups)
    i, o = c_in // groups, c_out // groups
    for g in range(groups):
        part = CONV[dims](x[:, g * i:(g + 1) * i], w[g * o:(g + 1) * o], b[g * o:(g + 1) * o], 2, 1, 2)
        np.testing.assert_allclose(y.data[:, g * o:(g + 1) * o], part.data, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ padding strings
@pytest.mark.parametrize("dims, kernel, dilation", [(1, 3, 1), (1, 4, 1), (1, 4, 3), (1, 2, 2), (2, (2, 3), (1, 2)),
                                                    (2, (4, 1), 1)])
def test_same_padding_keeps_the_size_and_pads_the_odd_one_after(dims, kernel, dilation):
    x, w = leaf((2, 2) + (6,) * dims), leaf((3, 2) + ((kernel,) if dims == 1 else kernel), 1)
    y = CONV[dims](x, w, padding="same", dilation=dilation)
    assert y.shape == (2, 3) + (6,) * dims
    dil = (dilation,) * dims if isinstance(dilation, int) else dilation
    pairs = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(w.shape[2:], dil))
    assert y.grad_fn.padding == pairs
    expected = Conv.apply(x, w, None, stride=(1,) * dims, padding=pairs, dilation=dil, groups=1)
    np.testing.assert_array_equal(y.data, expected.data)
    if dims == 1 and kernel == 4 and dilation == 1:          # the rule in numbers: 1 before, 2 after
        assert pairs == ((1, 2),)


def test_same_on_an_input_smaller_than_the_kernel_and_valid_is_no_padding():
    x, w = leaf((1, 2, 3)), leaf((2, 2, 6), 1)
    assert F.conv1d(x, w, padding="same").shape == (1, 2, 3)
    x, w = leaf((1, 2, 7, 6)), leaf((2, 2, 3, 2), 1)
    np.testing.assert_array_equal(F.conv2d(x, w, padding="valid").data, F.conv2d(x, w).data)


# ------------------------------------------------------------------ first and second order through the functionals
CONV_GRADS = [  # dims, x shape, weight shape, stride, padding, dilation, groups
    (1, (2, 4, 7), (6, 2, 3), 2, 1, 1, 2),
    (1, (2, 3, 6), (3, 1, 4), 1, "same", 2, 3),
    (2, (1, 4, 5, 5), (4, 2, 2, 3), 1, "same", (2, 1), 2),
    (2, (2, 2, 5, 4), (4, 1, 3, 2), (2, 1), "valid", 1, 2),
]


@pytest.mark.parametrize("dims, x_shape, w_shape, stride, padding, dilation, groups", CONV_GRADS,
                         ids=[str(i) for i in range(len(CONV_GRADS))])
def test_conv_options_to_second_order(dims, x_shape, w_shape, stride, padding, dilation, groups):
    inputs = [leaf(x_shape, 3), leaf(w_shape, 4), leaf(w_shape[0], 5)]
    fn = lambda x, w, b: CONV[dims](x, w, b, stride, padding, dilation, groups)   # noqa: E731
    assert mg.gradcheck(fn, inputs)
    assert mg.gradgradcheck(fn, inputs)
    assert mg.gradgradcheck(lambda *t: fn(*t) ** 2, inputs)


POOL_GRADS = [  # function, x shape, arguments
    (F.max_pool1d, (2, 2, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    (F.max_pool2d, (1, 2, 6, 7), dict(kernel_size=(2, 3), stride=2, padding=(1, 0), dilation=(2, 1), ceil_mode=True)),
    (F.avg_pool1d, (2, 2, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (F.avg_pool1d, (2, 2, 8), dict(kernel_size=3, stride=2, ceil_mode=True)),
    (F.avg_pool2d, (1, 2, 6, 7), dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    (F.avg_pool2d, (1, 2, 6, 7), dict(kernel_size=3, stride=(2, 1), padding=1, divisor_override=5)),
]


@pytest.mark.parametrize("fn, shape, kwargs", POOL_GRADS, ids=[str(i) for i in range(len(POOL_GRADS))])
def test_pool_options_to_second_order(fn, shape, kwargs):
    x = leaf(shape, 6)
    assert mg.gradcheck(lambda x: fn(x, **kwargs), [x])
    assert mg.gradgradcheck(lambda x: fn(x, **kwargs) ** 2, [x])


# ------------------------------------------------------------------ pooling options by hand
def test_ceil_mode_adds_a_last_partial_window_only_if_it_starts_inside_the_input():
    x = mg.tensor(np.arange(1.0, 9.0).reshape(1, 1, 8))
    np.testing.assert_array_equal(F.max_pool1d(x, 3, 2, ceil_mode=True).data, [[[3.0, 5.0, 7.0, 8.0]]])
    np.testing.assert_array_equal(F.max_pool1d(x, 3, 2).data, [[[3.0, 5.0, 7.0]]])
    # padding 1: windows start at -1, 1, 3, 5, 7 (inside x); the next would start at 9, past x
    assert F.max_pool1d(x, 3, 2, 1, ceil_mode=True).shape == (1, 1, 5)
    # kernel 3 > length 2 is refused, unless ceil_mode with a stride that lets one window start
    assert F.max_pool1d(x[:, :, :2], 3, 3, ceil_mode=True).shape == (1, 1, 1)


def test_avg_pool_divisors_by_hand():
    x = mg.tensor(np.ones((1, 1, 8)))
    # padding 1 both sides: windows [-1, 2) [1, 4) [3, 6) [5, 8) [7, 10): the last runs past the
    # padding (which ends at 9), so it divides by 2 with count_include_pad (1 of x + 1 of padding)
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True).data, [[[2 / 3, 1, 1, 1, 1 / 2]]])
    np.testing.assert_allclose(F.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False).data,
                               [[[1, 1, 1, 1, 1]]])
    x2 = mg.tensor(np.ones((1, 1, 4, 4)))
    np.testing.assert_allclose(F.avg_pool2d(x2, 2, divisor_override=3).data, np.full((1, 1, 2, 2), 4 / 3))


def test_max_pool_dilation_reads_every_d_th_entry():
    x = mg.tensor(np.array([[[9.0, 0.0, 1.0, 8.0, 2.0, 3.0, 7.0]]]))
    np.testing.assert_array_equal(F.max_pool1d(x, 2, 1, dilation=3).data, [[[9.0, 2.0, 3.0, 8.0]]])


# ------------------------------------------------------------------ refusals, before any work
X1, X2, W1 = leaf((2, 6, 5)), leaf((2, 6, 5, 5)), leaf((4, 3, 3), 1)

ERRORS = [
    ("conv-groups-zero", lambda: F.conv1d(X1, W1, groups=0), ValueError, r"conv1d: groups must be >= 1, got 0"),
    ("conv-groups-float", lambda: F.conv1d(X1, W1, groups=2.0), TypeError, r"conv1d: groups must be an int, got 2.0"),
    ("conv-groups-weight", lambda: F.conv1d(X1, leaf((3, 2, 3)), groups=3 - 1), ValueError,
     r"conv1d: Given groups=2, expected weight to be divisible by 2 at dimension 0, but got weight of shape \(3, 2, 3\)"),
    ("conv-groups-channels", lambda: F.conv1d(X1, leaf((4, 2, 3)), groups=2), ValueError,
     r"conv1d: weight of shape \(4, 2, 3\) with groups=2 expects input with C_in=4 channels, got 6"),
    ("conv-same-strided", lambda: F.conv1d(X1, W1, stride=2, padding="same", groups=2), ValueError,
     r"conv1d: padding='same' is not supported for strided convolutions, got stride=\(2,\)"),
    ("conv-same-strided-2d", lambda: F.conv2d(X2, leaf((4, 6, 3, 3)), stride=(1, 2), padding="same"), ValueError,
     r"conv2d: padding='same' is not supported for strided convolutions"),
    ("conv-padding-string", lambda: F.conv1d(X1, W1, padding="Same", groups=2), ValueError,
     r"conv1d: Invalid padding string 'Same', should be one of \{'valid', 'same'\}"),
    ("conv-valid-too-small", lambda: F.conv1d(X1, leaf((4, 6, 6)), padding="valid"), ValueError,
     r"conv1d: kernel size \(6,\) .*padded input size \(5,\)"),
    ("max-return-indices", lambda: F.max_pool1d(X1, 2, return_indices=True), NotImplementedError,
     r"max_pool1d: return_indices=True is not supported"),
    ("max-ceil-not-bool", lambda: F.max_pool2d(X2, 2, ceil_mode=1), TypeError, r"max_pool2d: ceil_mode must be a bool, got 1"),
    ("max-dilation-zero", lambda: F.max_pool1d(X1, 2, dilation=0), ValueError, r"max_pool1d: dilation must be >= 1, got 0"),
    ("max-dilation-pair", lambda: F.max_pool2d(X2, 2, dilation=(1, 2, 1)), ValueError,
     r"max_pool2d: dilation must be an int or a tuple of 2 ints"),
    ("max-dilated-too-large", lambda: F.max_pool1d(X1, 3, 1, dilation=3), ValueError,
     r"max_pool1d: kernel size \(7,\) \(dilation included\) can't be greater than the padded input size \(5,\) "),
    ("max-ceil-too-large", lambda: F.max_pool1d(X1, 7, 2, ceil_mode=True), ValueError,
     r"max_pool1d: kernel size \(7,\) .*padded input size \(5,\) \+ stride - 1 \(ceil_mode\)"),
    ("max-all-padding-window", lambda: F.max_pool1d(leaf((1, 2, 2)), 2, 1, 1, dilation=3), ValueError,
     r"max_pool1d: a window holds only padding \(kernel size \(2,\), dilation \(3,\), padding \(1,\)"),
    ("avg-count-not-bool", lambda: F.avg_pool1d(X1, 2, count_include_pad=None), TypeError,
     r"avg_pool1d: count_include_pad must be a bool, got None"),
    ("avg-divisor-zero", lambda: F.avg_pool2d(X2, 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must not be zero"),
    ("avg-divisor-float", lambda: F.avg_pool2d(X2, 2, divisor_override=2.0), TypeError,
     r"avg_pool2d: divisor_override must be an int, got 2.0"),
    ("avg-no-divisor-in-1d", lambda: F.avg_pool1d(X1, 2, divisor_override=2), TypeError, r"divisor_override"),
    ("avg-no-dilation", lambda: F.avg_pool1d(X1, 2, dilation=2), TypeError, r"dilation"),
]


class NoWork:
    @staticmethod
    def apply(*args, **kwargs):
        raise AssertionError("an op ran before the arguments were checked")


@pytest.mark.parametrize("name, call, error, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_option_errors_name_expected_and_got_before_any_work(name, call, error, message, monkeypatch):
    for op in ("Conv", "MaxPool", "AvgPool"):
        monkeypatch.setattr(F, op, NoWork)
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------------ layers
def test_grouped_conv_layer_parameters_and_their_initial_range():
    mg.manual_seed(0)
    layer = layers.Conv2d(8, 12, 3, groups=4)
    assert layer.weight.shape == (12, 2, 3, 3) and layer.groups == 4
    bound = 1 / np.sqrt(2 * 9)                              # fan_in = C_in / groups · kh · kw
    assert 0.9 * bound < np.abs(layer.weight.data).max() <= bound
    # 12 biases: fewer reach the edge, but they pass the range fan_in = C_in · kh · kw would give
    assert 1 / np.sqrt(8 * 9) < np.abs(layer.bias.data).max() <= bound
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_conv_layers_keep_padding_strings_and_compute_their_functional():
    layer = layers.Conv1d(4, 6, 4, padding="same", dilation=2, groups=2, dtype=np.float64)
    assert layer.padding == "same"
    x = leaf((2, 4, 9), 7)
    np.testing.assert_array_equal(layer(x).data, F.conv1d(x, layer.weight, layer.bias, 1, "same", 2, 2).data)
    assert layers.Conv2d(2, 2, 3, padding=[1, 2]).padding == (1, 2)
    assert layers.Conv2d(2, 2, 3, padding="valid").padding == "valid"


POOL_LAYERS = [
    (lambda: layers.MaxPool1d(3, 2, 1, 2, False, True), (2, 3, 9),
     lambda x: F.max_pool1d(x, 3, 2, 1, 2, ceil_mode=True)),
    (lambda: layers.MaxPool2d((2, 3), 2, (1, 0), (2, 1), ceil_mode=True), (2, 3, 6, 7),
     lambda x: F.max_pool2d(x, (2, 3), 2, (1, 0), (2, 1), True)),
    (lambda: layers.AvgPool1d(3, 2, 1, True, False), (2, 3, 8), lambda x: F.avg_pool1d(x, 3, 2, 1, True, False)),
    (lambda: layers.AvgPool2d(3, 2, 1, True, False, 4), (2, 3, 6, 7),
     lambda x: F.avg_pool2d(x, 3, 2, 1, True, False, 4)),
]


@pytest.mark.parametrize("make, shape, functional", POOL_LAYERS, ids=[str(i) for i in range(len(POOL_LAYERS))])
def test_pool_layers_pass_every_option_to_their_functional(make, shape, functional):
    x = leaf(shape, 8)
    y, expected = make()(x), functional(x)
    np.testing.assert_array_equal(y.data, expected.data)
    upstream = np.random.default_rng(9).standard_normal(y.shape)
    (got,), (want,) = mg.grad(y, [x], upstream), mg.grad(expected, [x], upstream)
    np.testing.assert_array_equal(got.data, want.data)


REPRS = [   # PyTorch 2.13's reprs of the same layers
    (lambda: layers.Conv1d(4, 6, 3, padding="same", groups=2),
     "Conv1d(4, 6, kernel_size=(3,), stride=(1,), padding=same, groups=2)"),
    (lambda: layers.Conv2d(4, 4, 3, padding="valid", dilation=2, groups=4, bias=False),
     "Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=valid, dilation=(2, 2), groups=4, bias=False)"),
    (lambda: layers.MaxPool1d(3, dilation=2, ceil_mode=True),
     "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=2, ceil_mode=True)"),
    (lambda: layers.MaxPool2d((3, 2), 1, 1, (1, 2)),
     "MaxPool2d(kernel_size=(3, 2), stride=1, padding=1, dilation=(1, 2), ceil_mode=False)"),
    (lambda: layers.AvgPool1d(3, ceil_mode=True, count_include_pad=False), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
    (lambda: layers.AvgPool2d(2, divisor_override=3), "AvgPool2d(kernel_size=2, stride=2, padding=0)"),
]


@pytest.mark.parametrize("make, expected", REPRS, ids=[str(i) for i in range(len(REPRS))])
def test_reprs_are_pytorchs(make, expected):
    assert repr(make()) == expected


CONSTRUCTOR_ERRORS = [
    (lambda: layers.Conv1d(6, 4, 3, groups=4), ValueError,
     r"Conv1d: in_channels must be divisible by groups, got in_channels=6 and groups=4"),
    (lambda: layers.Conv2d(6, 4, 3, groups=3), ValueError,
     r"Conv2d: out_channels must be divisible by groups, got out_channels=4 and groups=3"),
    (lambda: layers.Conv1d(6, 4, 3, groups=0), ValueError, r"Conv1d: groups must be >= 1, got 0"),
    (lambda: layers.Conv1d(6, 4, 3, groups=True), TypeError, r"Conv1d: groups must be an int, got True"),
    (lambda: layers.Conv1d(6, 4, 3, stride=2, padding="same"), ValueError,
     r"Conv1d: padding='same' is not supported for strided convolutions"),
    (lambda: layers.Conv2d(6, 4, 3, padding="full"), ValueError, r"Conv2d: Invalid padding string 'full'"),
    (lambda: layers.Conv2d(6, 4, 3, padding=(1, -1)), ValueError, r"Conv2d: padding must be >= 0, got \(1, -1\)"),
    (lambda: layers.MaxPool1d(2, return_indices=True), NotImplementedError, r"MaxPool1d: return_indices=True"),
    (lambda: layers.MaxPool2d(2, ceil_mode="yes"), TypeError, r"MaxPool2d: ceil_mode must be a bool, got 'yes'"),
    (lambda: layers.MaxPool2d(2, dilation=0), ValueError, r"MaxPool2d: dilation must be >= 1, got 0"),
    (lambda: layers.AvgPool1d(2, count_include_pad=0), TypeError, r"AvgPool1d: count_include_pad must be a bool"),
    (lambda: layers.AvgPool2d(2, divisor_override=0), ValueError, r"AvgPool2d: divisor_override must not be zero"),
    (lambda: layers.AvgPool2d(3, padding=2), ValueError, r"AvgPool2d: padding should be at most half of kernel size"),
]


@pytest.mark.parametrize("make, error, message", CONSTRUCTOR_ERRORS, ids=[e[2][:30] for e in CONSTRUCTOR_ERRORS])
def test_constructors_check_the_options(make, error, message):
    with pytest.raises(error, match=message):
        make()
