"""GroupNorm and LayerNorm: against PyTorch (forward and backward, every option, 2-, 3- and 4-D
input), fused against composed to float64 round-off, finite differences to second order, the
train/eval flag changing nothing, state_dict keys and the argument errors.

Every gradient uses a random upstream gradient: the normalised output sums to a constant per
group, so a ``.sum()`` loss would pass any backward.
"""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.ops.fused import GroupNormFused, LayerNormFused

C = 6
SHAPES = {"NC": (5, C), "NCL": (4, C, 7), "NCHW": (3, C, 4, 5)}


def arrays(shape, seed=0):
    """x away from 0 and 1, and a random upstream gradient."""
    rng = np.random.default_rng(seed)
    return 1 + 2 * rng.standard_normal(shape), rng.standard_normal(shape)


def randomise(layer, seed=1):
    """γ and β away from (1, 0), so dγ and dβ are tested on non-trivial values."""
    rng = np.random.default_rng(seed)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    return layer


def run(layer, x0, g):
    """y and the gradients of x and of each parameter, after one backward of <g, y>."""
    x = mg.tensor(x0, requires_grad=True)
    y = layer(x)
    y.backward(g)
    return [y.data, x.grad] + [p.grad for p in layer.parameters()]


def run_torch(layer, x0, g):
    import torch
    x = torch.tensor(x0, requires_grad=True)
    y = layer(x)
    y.backward(torch.from_numpy(g))
    return [y.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]


def assert_close(got, want, tol=1e-10, what=""):
    """Relative to the largest entry: dx of a group of one value is scaled by 1/sqrt(eps)."""
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


# ------------------------------------------------------------------ against PyTorch
GROUP_CASES = [(g, affine, bias) for g in (1, 2, 3, C) for affine, bias in ((True, True), (True, False), (False, True))]


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("groups, affine, bias", GROUP_CASES)
def test_group_norm_matches_torch(groups, affine, bias, shape, fused):
    torch = pytest.importorskip("torch")
    ours = randomise(nn.GroupNorm(groups, C, affine=affine, bias=bias, fused=fused, dtype=np.float64))
    theirs = torch.nn.GroupNorm(groups, C, affine=affine, bias=bias, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True)
    x0, g = arrays(shape)
    for name, got, want in zip(("y", "dx", "dweight", "dbias"), run(ours, x0, g), run_torch(theirs, x0, g)):
        assert got.shape == want.shape, name
        assert_close(got, want, what=name)


def layer_norm_cases():
    for key, shape in SHAPES.items():
        for k in range(1, len(shape) + 1):              # the last axis ... every axis
            for affine, bias in ((True, True), (True, False), (False, True)):
                yield pytest.param(shape, shape[-k:], affine, bias, id=f"{key}-last{k}-{affine}-{bias}")


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("shape, normalized, affine, bias", list(layer_norm_cases()))
def test_layer_norm_matches_torch(shape, normalized, affine, bias, fused):
    torch = pytest.importorskip("torch")
    ours = randomise(nn.LayerNorm(normalized, elementwise_affine=affine, bias=bias, fused=fused, dtype=np.float64))
    theirs = torch.nn.LayerNorm(normalized, elementwise_affine=affine, bias=bias, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True)
    x0, g = arrays(shape, seed=2)
    for name, got, want in zip(("y", "dx", "dweight", "dbias"), run(ours, x0, g), run_torch(theirs, x0, g)):
        assert got.shape == want.shape, name
        assert_close(got, want, what=name)


def test_functional_forms_match_torch_with_their_defaults():
    torch = pytest.importorskip("torch")
    x0, _ = arrays((4, C, 3), seed=3)
    xt = torch.from_numpy(x0)
    np.testing.assert_allclose(F.group_norm(mg.tensor(x0), 2).data,
                               torch.nn.functional.group_norm(xt, 2).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.layer_norm(mg.tensor(x0), 3).data,            # an int: the last axis
                               torch.nn.functional.layer_norm(xt, (3,)).numpy(), rtol=1e-12, atol=1e-12)
    for name in ("group_norm", "layer_norm"):        # torch's parameters, in torch's order, then ours
        ours = list(inspect.signature(getattr(F, name)).parameters.values())
        theirs = list(inspect.signature(getattr(torch.nn.functional, name)).parameters.values())
        assert [(p.name, p.default) for p in ours[1:len(theirs)]] == [(p.name, p.default) for p in theirs[1:]]
        assert [p.name for p in ours[len(theirs):]] == ["fused"]


def test_layer_norm_of_a_single_sample_without_a_batch_axis():
    torch = pytest.importorskip("torch")
    x0, g = arrays((C, 4), seed=4)
    ours = randomise(nn.LayerNorm((C, 4), dtype=np.float64))
    theirs = torch.nn.LayerNorm((C, 4), dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    for got, want in zip(run(ours, x0, g), run_torch(theirs, x0, g)):
        assert_close(got, want)


# ------------------------------------------------------------------ fused == composed
PAIRS = {"group": (F.group_norm_fused, F.group_norm_composed, GroupNormFused),
         "layer": (F.layer_norm_fused, F.layer_norm_composed, LayerNormFused)}


def both(kind, x0, w0, b0, g, arg):
    """{form: [y, dx, dγ, dβ]} for the fused and the composed function on the same inputs."""
    out = {}
    for form, fn in zip(("fused", "composed"), PAIRS[kind][:2]):
        x = mg.tensor(x0, requires_grad=True)
        w, b = (None if a is None else mg.tensor(a, requires_grad=True) for a in (w0, b0))
        y = fn(x, arg, w, b, 1e-5)
        if form == "fused":
            assert [ctx.fn for ctx in mg.graph.nodes(y)] == [PAIRS[kind][2]]    # one node
        y.backward(g)
        out[form] = [y.data, x.grad, None if w is None else w.grad, None if b is None else b.grad]
    return out


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["group", "layer"]), n=st.integers(1, 4), groups=st.sampled_from([1, 2, 3, 6]),
       spatial=st.lists(st.integers(1, 4), max_size=2), trailing=st.integers(1, 3), affine=st.booleans(),
       offset=st.sampled_from([0.0, 1e3]), seed=st.integers(0, 2**32 - 1))
def test_fused_and_composed_agree(kind, n, groups, spatial, trailing, affine, offset, seed):
    shape = (n, C, *spatial)
    rng = np.random.default_rng(seed)
    x0 = offset + rng.standard_normal(shape) * rng.uniform(0.1, 10)
    g = rng.standard_normal(shape)
    if kind == "group":
        arg, pshape = groups, (C,)
        if n * C // groups * int(np.prod(spatial)) == 1:
            return                                    # refused input (tested below)
    else:
        arg = shape[max(len(shape) - trailing, 0):]
        pshape = arg
    w0 = rng.standard_normal(pshape) if affine else None
    b0 = rng.standard_normal(pshape) if affine else None
    out = both(kind, x0, w0, b0, g, arg)
    for name, f, c in zip(("y", "dx", "dweight", "dbias"), out["fused"], out["composed"]):
        if f is None:
            assert c is None
            continue
        assert f.shape == c.shape
        # at offset 1e3, x carries only 1e3 · 2.2e-16 of absolute precision: x - μ agrees to that
        assert_close(f, c, 1e-12 if offset == 0 else 1e-9, name)


# ------------------------------------------------------------------ finite differences
def small_inputs(kind, shape, affine, seed=5):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape) * 2 + 0.5, requires_grad=True)
    pshape = (shape[1],) if kind == "group" else shape[1:]
    if not affine:
        return [x, None, None]
    return [x] + [mg.tensor(rng.standard_normal(pshape), requires_grad=True) for _ in range(2)]


CHECKS = [(kind, form, shape) for kind in ("group", "layer") for form in (0, 1)
          for shape in ((3, 4), (2, 4, 3), (2, 2, 2, 2))]


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "noaffine"])
@pytest.mark.parametrize("kind, form, shape", CHECKS, ids=[f"{k}-{'fc'[f]}-{len(s)}d" for k, f, s in CHECKS])
def test_gradcheck_and_gradgradcheck(kind, form, shape, affine):
    fn = PAIRS[kind][form]
    arg = 2 if kind == "group" else shape[1:]
    inputs = small_inputs(kind, shape, affine)
    f = lambda x, w, b: fn(x, arg, w, b, 1e-5)        # noqa: E731
    assert mg.gradcheck(f, inputs, raise_on_vacuous=True)
    assert mg.gradgradcheck(f, inputs)


@pytest.mark.parametrize("kind", ["group", "layer"])
@pytest.mark.parametrize("form", [0, 1], ids=["fused", "composed"])
def test_gradcheck_when_the_input_is_used_twice(kind, form):
    fn, arg = PAIRS[kind][form], (2 if kind == "group" else (4, 3))
    x, w, b = small_inputs(kind, (2, 4, 3), True, seed=6)
    assert mg.gradcheck(lambda x, w, b: fn(x, arg, w, b, 1e-5) * x + x, [x, w, b])


@pytest.mark.parametrize("kind", ["group", "layer"])
def test_parameter_gradients_when_x_needs_no_grad(kind):
    """As a first layer x is data: only γ, β learn, and the fused op skips dx."""
    arg = 3 if kind == "group" else (C, 2)
    x0, g = arrays((4, C, 2), seed=7)
    rng = np.random.default_rng(8)
    pshape = (C,) if kind == "group" else (C, 2)
    w0, b0 = rng.standard_normal(pshape), rng.standard_normal(pshape)
    grads = []
    for fn in PAIRS[kind][:2]:
        w, b = mg.tensor(w0, requires_grad=True), mg.tensor(b0, requires_grad=True)
        fn(mg.tensor(x0), arg, w, b, 1e-5).backward(g)
        grads.append((w.grad, b.grad))
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ no running statistics
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("make", [lambda f: nn.GroupNorm(3, C, fused=f, dtype=np.float64),
                                  lambda f: nn.LayerNorm((C, 3), fused=f, dtype=np.float64)], ids=["group", "layer"])
def test_train_and_eval_compute_the_same_thing(make, fused):
    layer = randomise(make(fused))
    x0, g = arrays((4, C, 3), seed=9)
    with mg.train_mode():
        train = run(layer, x0, g)
    layer.zero_grad()
    with mg.eval_mode():
        evaluate = run(layer, x0, g)
        one = layer(mg.tensor(x0[:1])).data               # a batch of one: its own statistics
    for a, b in zip(train, evaluate):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(one, train[0][:1], rtol=1e-12, atol=1e-12)
    assert list(layer.buffers()) == []


def test_state_dict_keys_are_torch_s():
    assert list(nn.GroupNorm(2, C).state_dict()) == ["weight", "bias"]
    assert list(nn.GroupNorm(2, C, bias=False).state_dict()) == ["weight"]
    assert list(nn.GroupNorm(2, C, affine=False).state_dict()) == []
    assert list(nn.LayerNorm(4).state_dict()) == ["weight", "bias"]
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).state_dict()) == []
    layer = nn.LayerNorm((3, 4))
    assert layer.weight.shape == (3, 4) and layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, 1.0)
    np.testing.assert_array_equal(layer.bias.data, 0.0)
    group = nn.GroupNorm(2, C, affine=False)
    assert group.weight is None and group.bias is None


def test_repr_starts_as_torch_s():
    assert repr(nn.GroupNorm(3, C)) == "GroupNorm(3, 6, eps=1e-05, affine=True, bias=True, fused=True)"
    assert repr(nn.LayerNorm(4, bias=False, fused=False)) == \
        "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=False, fused=False)"


def test_the_float32_layers_keep_float32():
    x = mg.tensor(np.random.default_rng(10).standard_normal((4, C, 3)).astype(np.float32))
    for layer in (nn.GroupNorm(2, C), nn.LayerNorm(3)):
        for fused in (True, False):
            layer.fused = fused
            assert layer(x).dtype == np.float32


@pytest.mark.parametrize("kind", ["group", "layer"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_float64_offset_1e4_is_centred_first(kind, fused):
    # E[x²] - E[x]² would lose ~8 digits here; centring first loses none
    x0 = 1e4 + np.random.default_rng(11).standard_normal((4, C, 8))
    layer = nn.GroupNorm(2, C, dtype=np.float64, fused=fused) if kind == "group" else \
        nn.LayerNorm(8, dtype=np.float64, fused=fused)
    y = layer(mg.tensor(x0)).data
    groups = x0.reshape(4, 2, -1) if kind == "group" else x0
    centred = groups - groups.mean(axis=-1, keepdims=True)
    expected = (centred / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + 1e-5)).reshape(x0.shape)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10)


# ------------------------------------------------------------------ argument errors
def test_constructor_errors():
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups \(4\)"):
        nn.GroupNorm(4, C)
    with pytest.raises(ValueError, match="num_groups must be a positive int, got 0"):
        nn.GroupNorm(0, C)
    with pytest.raises(TypeError, match="num_channels must be a positive int, got 6.0"):
        nn.GroupNorm(2, 6.0)
    with pytest.raises(TypeError, match="num_groups must be a positive int, got True"):
        nn.GroupNorm(True, C)
    for bad in (0.0, -1e-5, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="eps must be a positive number"):
            nn.GroupNorm(2, C, eps=bad)
        with pytest.raises(ValueError, match="eps must be a positive number"):
            nn.LayerNorm(4, eps=bad)
    for bad in (0, (), (3, 0), 2.5, (2.0,), "4", None):
        with pytest.raises(ValueError, match="normalized_shape must be a positive int or a non-empty tuple"):
            nn.LayerNorm(bad)
    assert nn.LayerNorm([3, 4]).normalized_shape == (3, 4)
    assert nn.LayerNorm(np.int64(4)).normalized_shape == (4,)


def test_group_norm_input_errors():
    x = mg.tensor(np.ones((2, C, 5)))
    with pytest.raises(ValueError, match=r"divisible by num_groups, got input of shape \(2, 6, 5\) and num_groups=4"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match=r"at least 2 dimensions\), got 1-D input of shape \(6,\)"):
        F.group_norm(mg.tensor(np.ones(C)), 3)
    with pytest.raises(ValueError, match=r"expected more than 1 value to normalise, got input of shape \(1, 3\)"):
        F.group_norm(mg.tensor(np.ones((1, 3))), 3)
    F.group_norm(mg.tensor(np.ones((2, 3))), 3)                # two samples: PyTorch allows it, so do we
    F.group_norm(mg.tensor(np.ones((1, 3, 3))), 1)             # one group of 3 channels x 3 positions
    with pytest.raises(ValueError, match=r"expected weight of shape \(6,\) for input of shape \(2, 6, 5\), got "
                                         r"weight of shape \(5,\)"):
        F.group_norm(x, 3, mg.tensor(np.ones(5)))
    with pytest.raises(ValueError, match=r"expected bias of shape \(6,\)"):
        F.group_norm(x, 3, None, mg.tensor(np.ones(4)))
    with pytest.raises(TypeError, match="float32 parameters but got input of dtype float64"):
        F.group_norm(x, 3, mg.tensor(np.ones(C, np.float32)))
    with pytest.raises(TypeError, match="weight must be a Tensor or None, got ndarray"):
        F.group_norm(x, 3, np.ones(C))
    with pytest.raises(ValueError, match=r"group_norm: expected a non-empty input, got shape \(0, 6, 5\)"):
        F.group_norm(mg.tensor(np.ones((0, C, 5))), 3)
    with pytest.raises(TypeError, match="group_norm expects a Tensor input, got ndarray"):
        F.group_norm(np.ones((2, C)), 3)
    with pytest.raises(TypeError, match="num_groups must be a positive int"):
        F.group_norm(x, 1.5)
    with pytest.raises(ValueError, match=r"GroupNorm\(3, 6\) expected input of shape \(N, 6, \*\), got shape \(2, 4, 5\)"):
        nn.GroupNorm(3, C, affine=False)(mg.tensor(np.ones((2, 4, 5), np.float32)))    # no γ to catch it
    with pytest.raises(ValueError, match=r"GroupNorm\(3, 6\) expected input of shape \(N, 6, \*\), got shape \(6,\)"):
        nn.GroupNorm(3, C)(mg.tensor(np.ones(C, np.float32)))


def test_layer_norm_input_errors():
    x = mg.tensor(np.ones((2, C, 5)))
    with pytest.raises(ValueError, match=r"normalized_shape=\(4,\) expects input of shape \(\*, 4\), got input "
                                         r"of shape \(2, 6, 5\)"):
        F.layer_norm(x, 4)
    with pytest.raises(ValueError, match=r"normalized_shape=\(2, 6, 5, 1\) expects input of shape"):
        F.layer_norm(x, (2, 6, 5, 1))
    with pytest.raises(ValueError, match=r"expected weight of shape \(5,\) for input of shape \(2, 6, 5\), got "
                                         r"weight of shape \(4,\)"):
        F.layer_norm(x, 5, mg.tensor(np.ones(4)))
    with pytest.raises(ValueError, match=r"expected bias of shape \(6, 5\)"):
        F.layer_norm(x, (6, 5), None, mg.tensor(np.ones(5)))
    with pytest.raises(TypeError, match="float32 parameters but got input of dtype float64"):
        nn.LayerNorm(5)(x)
    with pytest.raises(ValueError, match="normalized_shape must be a positive int"):
        F.layer_norm(x, ())
    with pytest.raises(ValueError, match=r"layer_norm: expected a non-empty input, got shape \(0, 5\)"):
        F.layer_norm(mg.tensor(np.ones((0, 5))), 5)
    with pytest.raises(TypeError, match="layer_norm expects a Tensor input, got list"):
        F.layer_norm([1.0, 2.0], 2)


def test_defaults_are_torch_s_and_fused():
    """The pure functions: one signature per pair, eps 1e-5; the functional forms and the layers
    are fused unless told (one node), and their repr shows every default."""
    for fused, composed in (PAIRS["group"][:2], PAIRS["layer"][:2]):
        assert inspect.signature(fused) == inspect.signature(composed)
        assert inspect.signature(fused).parameters["eps"].default == 1e-5
    x0, _ = arrays((4, C, 3), seed=12)
    for kind, fn, arg in (("group", F.group_norm, 2), ("layer", F.layer_norm, (C, 3))):
        for form in PAIRS[kind][:2]:
            x = mg.tensor(x0)
            np.testing.assert_array_equal(form(x, arg).data, form(x, arg, None, None, 1e-5).data)
        y = fn(mg.tensor(x0, requires_grad=True), arg)
        assert [ctx.fn for ctx in mg.graph.nodes(y)] == [PAIRS[kind][2]]
    assert repr(nn.LayerNorm(4)) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True, fused=True)"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True, fused=True)"
