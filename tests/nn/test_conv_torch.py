"""Optional: PyTorch as an independent reference for convolution and pooling (skipped without torch).

conv1d / conv2d (groups, padding "same" / "valid" included) and the four poolings (dilation,
ceil_mode, count_include_pad, divisor_override included) over grids of options, outputs and
gradients in float64 with random upstream gradients; max pooling on inputs full of ties, NaNs,
and windows of -inf; the same inputs rejected; layer initialisation, state_dicts that load
strictly into torch layers, reprs, and a small CNN in eval mode.
"""
import itertools
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import conv as layers
from minigrad.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def pair(ours_input, seed):
    """The same float64 data as a minigrad leaf and a torch leaf."""
    data = np.random.default_rng(seed).standard_normal(ours_input) if isinstance(ours_input, tuple) else ours_input
    return mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


def check_against_torch(ours, theirs, leaves, seed=100):
    """Outputs, then the gradient of every leaf pair under one random upstream gradient."""
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(seed).standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    for mine, torch_leaf in leaves:
        np.testing.assert_allclose(mine.grad, torch_leaf.grad.numpy(), rtol=1e-11, atol=1e-12)


CONV_GRID = list(itertools.product([1, 2], [1, 2], [0, 1, 2], [1, 2], [True, False]))


@pytest.mark.parametrize("dims, stride, padding, dilation, bias", CONV_GRID,
                         ids=["-".join(map(str, c)) for c in CONV_GRID])
def test_conv_matches_torch(dims, stride, padding, dilation, bias):
    kernel = (3,) if dims == 1 else (3, 2)
    stride_arg = stride if dims == 1 else (stride, 1)
    padding_arg = padding if dims == 1 else (padding, 2 - padding)
    x, tx = pair((2, 3) + (8,) * dims, 0)
    w, tw = pair((4, 3) + kernel, 1)
    b, tb = pair((4,), 2) if bias else (None, None)
    ours = (F.conv1d if dims == 1 else F.conv2d)(x, w, b, stride_arg, padding_arg, dilation)
    theirs = (TF.conv1d if dims == 1 else TF.conv2d)(tx, tw, tb, stride_arg, padding_arg, dilation)
    check_against_torch(ours, theirs, [(x, tx), (w, tw)] + ([(b, tb)] if bias else []))


CONV_OPTIONS = [c for c in itertools.product([1, 2], [1, 2, 4], [1, 2], ["same", "valid", 1], [1, 2])
                if not (c[3] == "same" and c[2] > 1)]


@pytest.mark.parametrize("dims, groups, stride, padding, dilation", CONV_OPTIONS,
                         ids=["-".join(map(str, c)) for c in CONV_OPTIONS])
def test_conv_groups_and_padding_strings_match_torch(dims, groups, stride, padding, dilation):
    """Even kernels, so "same" pads asymmetrically (torch warns that it copies the input)."""
    kernel = (4,) if dims == 1 else (4, 3)
    x, tx = pair((2, 4) + (7,) * dims, 10)
    w, tw = pair((8, 4 // groups) + kernel, 11)
    b, tb = pair((8,), 12)
    ours = (F.conv1d if dims == 1 else F.conv2d)(x, w, b, stride, padding, dilation, groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs = (TF.conv1d if dims == 1 else TF.conv2d)(tx, tw, tb, stride, padding, dilation, groups)
    check_against_torch(ours, theirs, [(x, tx), (w, tw), (b, tb)])


POOL_GRID = [  # kernel, stride, padding for 1-D; the 2-D case pairs them with a second axis
    (2, None, 0), (2, 1, 1), (3, 1, 1), (3, 2, 0), (3, 2, 1), (4, 3, 2), (1, 1, 0), (5, 2, 2),
]
POOLS = {"max": (F.max_pool1d, F.max_pool2d, TF.max_pool1d, TF.max_pool2d),
         "avg": (F.avg_pool1d, F.avg_pool2d, TF.avg_pool1d, TF.avg_pool2d)}
# per pool, its options beyond kernel, stride, padding (by keyword): every combination is run
OPTIONS = {"max": [dict(dilation=d, ceil_mode=c) for d in (1, 2) for c in (False, True)],
           "avg": [dict(ceil_mode=c, count_include_pad=i) for c in (False, True) for i in (True, False)]}
POOL_CASES = [(pool, o, ties) for pool in POOLS for o in OPTIONS[pool] for ties in ([False, True] if pool == "max" else [False])]


@pytest.mark.parametrize("pool, options, ties", POOL_CASES,
                         ids=[f"{p}-{'-'.join(map(str, o.values()))}{'-ties' * t}" for p, o, t in POOL_CASES])
@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("kernel, stride, padding", POOL_GRID, ids=[str(g) for g in POOL_GRID])
def test_pooling_matches_torch(kernel, stride, padding, dims, pool, options, ties):
    """ties (max pooling): integers from a small range, so most windows hold their maximum several times."""
    ours_1d, ours_2d, theirs_1d, theirs_2d = POOLS[pool]
    shape = (2, 3) + (9,) * dims       # 9: ceil_mode adds a window for most kernels and strides
    rng = np.random.default_rng(3)
    data = rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    x, tx = pair(data, 0)
    if dims == 1:
        ours, theirs = ours_1d(x, kernel, stride, padding, **options), theirs_1d(tx, kernel, stride, padding, **options)
    else:
        k2, s2, p2 = (kernel, 2), (None if stride is None else (stride, 1)), (padding, 1)
        options = {k: (v, 1) if k == "dilation" else v for k, v in options.items()}   # a pair: axes differ
        ours, theirs = ours_2d(x, k2, s2, p2, **options), theirs_2d(tx, k2, s2, p2, **options)
    check_against_torch(ours, theirs, [(x, tx)])


@pytest.mark.parametrize("divisor", [1, 3, -2])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_avg_pool_divisor_override_matches_torch(divisor, ceil_mode):
    x, tx = pair((2, 3, 9, 8), 4)
    args = ((3, 2), (2, 3), (1, 1), ceil_mode, False, divisor)
    check_against_torch(F.avg_pool2d(x, *args), TF.avg_pool2d(tx, *args), [(x, tx)])


@pytest.mark.parametrize("fn, tfn, args", [(F.max_pool1d, TF.max_pool1d, (4, 3, 0, 1, True)),
                                           (F.avg_pool1d, TF.avg_pool1d, (4, 3, 0, True)),
                                           (F.max_pool2d, TF.max_pool2d, ((3, 1), (3, 1), 0, 1, True))])
def test_ceil_mode_accepts_a_kernel_longer_than_the_input_as_torch(fn, tfn, args):
    """Length 2 + stride 3 - 1 >= kernel 4: one window, started inside the input."""
    x, tx = pair((1, 2, 2) if fn is not F.max_pool2d else (1, 2, 2, 2), 5)
    check_against_torch(fn(x, *args), tfn(tx, *args), [(x, tx)])


def test_max_pool_nans_match_torch():
    """Of several NaNs in a window the gradient goes to the last (torch: greater or NaN takes over)."""
    data = np.random.default_rng(6).standard_normal((2, 3, 8, 8))
    data[np.random.default_rng(7).random(data.shape) < 0.2] = np.nan
    x, tx = pair(data, 0)
    ours, theirs = F.max_pool2d(x, 3, 2, 1, ceil_mode=True), TF.max_pool2d(tx, 3, 2, 1, ceil_mode=True)
    np.testing.assert_array_equal(np.isnan(ours.data), np.isnan(theirs.detach().numpy()))
    upstream = np.random.default_rng(8).standard_normal(ours.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", [(2, 1, 1, 1, False), (3, 2, 1, 2, True),
                                                                       (4, 3, 2, 3, True)])
@pytest.mark.parametrize("dims", [1, 2])
def test_max_pool_windows_of_minus_infinity_match_torch(dims, kernel, stride, padding, dilation, ceil_mode):
    """A window with nothing above -inf sends its gradient to its first entry inside x."""
    rng = np.random.default_rng(4)
    data = np.where(rng.random((2, 2) + (5,) * dims) < 0.6, -np.inf, rng.standard_normal((2, 2) + (5,) * dims))
    data[0, 0] = -np.inf                         # one channel all -inf: every window of it
    x, tx = pair(data, 0)
    fn, tfn = (F.max_pool1d, TF.max_pool1d) if dims == 1 else (F.max_pool2d, TF.max_pool2d)
    args = (kernel, stride, padding, dilation, ceil_mode)
    ours, theirs = fn(x, *args), tfn(tx, *args)
    assert np.isneginf(ours.data).any()                     # some windows really are all -inf
    check_against_torch(ours, theirs, [(x, tx)])


REJECTED = [  # the same arguments, rejected by both
    (lambda m: m.max_pool1d, (1, 1, 8), (3, 1, 2)),
    (lambda m: m.avg_pool2d, (1, 1, 8, 8), ((3, 2), 1, (1, 2))),
    (lambda m: m.max_pool1d, (1, 1, 2), (3, 1, 0)),
    (lambda m: m.max_pool1d, (1, 1, 8), (0,)),
    (lambda m: m.max_pool1d, (1, 1, 5), (7, 2, 0, 1, True)),                  # ceil_mode, still too long
    (lambda m: m.max_pool2d, (1, 1, 8, 8), (3, 1, 1, (1, 0))),                  # dilation 0
    (lambda m: m.conv1d, (1, 4, 8), (np.zeros((2, 2, 3)), None, 2, "same")),   # "same" strided
    (lambda m: m.conv1d, (1, 4, 8), (np.zeros((2, 2, 3)), None, 1, "full")),   # no such padding
    (lambda m: m.conv1d, (1, 4, 8), (np.zeros((2, 2, 3)), None, 1, 0, 1, 3)),  # 4 channels in 3 groups
    (lambda m: m.conv2d, (1, 4, 8, 8), (np.zeros((3, 2, 3, 3)), None, 1, 0, 1, 2)),   # 3 outputs in 2 groups
]


@pytest.mark.parametrize("function, shape, args", REJECTED, ids=[str(r[2]) for r in REJECTED])
def test_we_reject_what_torch_rejects(function, shape, args):
    with pytest.raises(ValueError):
        function(F)(mg.tensor(np.zeros(shape)), *[mg.tensor(a) if isinstance(a, np.ndarray) else a for a in args])
    with pytest.raises(RuntimeError):
        function(TF)(torch.zeros(shape, dtype=torch.float64),
                     *[torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args])


# ------------------------------------------------------------------ layers
def test_conv_initial_range_matches_torch():
    torch.manual_seed(0)
    mg.manual_seed(0)
    for ours, theirs, fan_in in [(layers.Conv1d(24, 30, 5), torch.nn.Conv1d(24, 30, 5), 120),
                                 (layers.Conv2d(8, 40, (3, 2)), torch.nn.Conv2d(8, 40, (3, 2)), 48),
                                 (layers.Conv2d(24, 48, 3, groups=4), torch.nn.Conv2d(24, 48, 3, groups=4), 54)]:
        bound = 1 / np.sqrt(fan_in)
        for name in ("weight", "bias"):
            o = getattr(ours, name).data.astype(np.float64)
            t = getattr(theirs, name).detach().numpy().astype(np.float64)
            assert o.shape == t.shape
            assert np.abs(o).max() <= bound and np.abs(t).max() <= bound
            if name == "weight":
                np.testing.assert_allclose(o.std(), t.std(), rtol=0.05)


def cnn_pair():
    ours = nn.Sequential(layers.Conv1d(2, 4, 3, stride=2, padding=1), nn.ReLU(), layers.MaxPool1d(2, 1),
                         layers.Conv1d(4, 3, 2, dilation=2, bias=False), nn.ReLU(),
                         layers.AvgPool1d(2, padding=1), layers.Flatten(), nn.Linear(9, 5)).double()
    theirs = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
                                 torch.nn.MaxPool1d(2, 1), torch.nn.Conv1d(4, 3, 2, dilation=2, bias=False),
                                 torch.nn.ReLU(), torch.nn.AvgPool1d(2, padding=1), torch.nn.Flatten(),
                                 torch.nn.Linear(9, 5)).double()
    return ours, theirs


def test_state_dict_loads_strictly_into_torch_and_the_cnns_agree_in_eval():
    ours, theirs = cnn_pair()
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    assert [v.shape for v in state.values()] == [tuple(v.shape) for v in theirs.state_dict().values()]
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})   # strict by default
    theirs.eval()
    x = np.random.default_rng(5).standard_normal((3, 2, 16))
    with mg.eval_mode():
        y = ours(mg.tensor(x))
    np.testing.assert_allclose(y.data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)


def test_the_cnns_agree_on_every_parameter_gradient():
    ours, theirs = cnn_pair()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x, tx = pair((3, 2, 16), 6)
    check_against_torch(ours(x), theirs(tx), [(x, tx)] + list(zip(ours.parameters(), theirs.parameters())))


def test_conv2d_state_dict_loads_and_agrees():
    ours = layers.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), dtype=np.float64)
    theirs = torch.nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x, tx = pair((2, 3, 7, 6), 7)
    check_against_torch(ours(x), theirs(tx), [(x, tx), (ours.weight, theirs.weight), (ours.bias, theirs.bias)])


@pytest.mark.parametrize("dims", [1, 2])
def test_grouped_same_padded_conv_state_dict_loads_and_agrees(dims):
    cls = "Conv1d" if dims == 1 else "Conv2d"
    ours = getattr(layers, cls)(6, 4, 4, padding="same", dilation=1, groups=2, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs = getattr(torch.nn, cls)(6, 4, 4, padding="same", groups=2).double()
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})   # strict
        x, tx = pair((2, 6) + (7,) * dims, 9)
        ours_y, theirs_y = ours(x), theirs(tx)
    check_against_torch(ours_y, theirs_y, [(x, tx), (ours.weight, theirs.weight), (ours.bias, theirs.bias)])


REPR_PAIRS = [
    (lambda m: m.Conv1d(3, 4, 3), torch.nn.Conv1d),
    (lambda m: m.Conv2d(3, 4, (3, 2), stride=2, padding=(1, 0), bias=False), torch.nn.Conv2d),
    (lambda m: m.Conv2d(3, 4, 3, stride=(2, 1), padding=1, dilation=2), torch.nn.Conv2d),
    (lambda m: m.MaxPool1d(3), torch.nn.MaxPool1d),
    (lambda m: m.MaxPool2d((3, 2), 2, 1), torch.nn.MaxPool2d),
    (lambda m: m.AvgPool1d(3, 1, 1), torch.nn.AvgPool1d),
    (lambda m: m.AvgPool2d(3), torch.nn.AvgPool2d),
    (lambda m: m.Flatten(0, 2), torch.nn.Flatten),
    (lambda m: m.Conv1d(4, 6, 3, padding="same", groups=2), torch.nn.Conv1d),
    (lambda m: m.Conv2d(4, 4, (3, 2), padding="valid", dilation=2, groups=4, bias=False), torch.nn.Conv2d),
    (lambda m: m.Conv2d(4, 8, 3, padding=(0, 1), groups=1), torch.nn.Conv2d),
    (lambda m: m.MaxPool1d(3, 1, 1, 2, False, True), torch.nn.MaxPool1d),
    (lambda m: m.MaxPool2d((3, 2), dilation=(2, 1), ceil_mode=True), torch.nn.MaxPool2d),
    (lambda m: m.AvgPool1d(3, 2, 1, True, False), torch.nn.AvgPool1d),
    (lambda m: m.AvgPool2d(3, None, 1, True, False, 2), torch.nn.AvgPool2d),
]


@pytest.mark.parametrize("make, cls", REPR_PAIRS, ids=[c.__name__ + str(i) for i, (_, c) in enumerate(REPR_PAIRS)])
def test_reprs_match_torch(make, cls):
    assert repr(make(layers)) == repr(make(torch.nn))
