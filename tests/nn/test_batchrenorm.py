"""BatchRenorm1d/2d against the paper's formula (Ioffe 2017, Algorithm 1): BatchNorm exactly at
r_max = 1, d_max = 0; the eval formula with the pre-update running statistics when unclipped;
gradients that treat r and d as constants (finite differences holding them fixed); the running
statistics, eval mode and state_dict of BatchNorm; fused against composed; the bounds as
attributes. PyTorch has no such layer, so the reference is the formula itself."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.autograd.gradcheck import numerical_gradient
from minigrad.nn.batchrenorm import batch_renorm_composed, batch_renorm_fused, renorm_corrections
from minigrad.ops.fused import BatchNormFused

C = 3
EPS = 1e-5
FORMS = {"fused": batch_renorm_fused, "composed": batch_renorm_composed}


def batch(shape, seed, scale=2.0, shift=1.0):
    rng = np.random.default_rng(seed)
    return shift + scale * rng.standard_normal(shape), rng.standard_normal(shape)


def layer(kind=nn.BatchRenorm1d, seed=0, **kwargs):
    """A float64 layer with γ, β and running statistics away from their initial values."""
    m = kind(C, dtype=np.float64, **kwargs)
    rng = np.random.default_rng(seed)
    m.weight.data[...], m.bias.data[...] = rng.uniform(0.5, 2.0, C), rng.standard_normal(C)
    m.running_mean[...], m.running_var[...] = rng.standard_normal(C), rng.uniform(0.5, 3.0, C)
    return m


def step(m, x0, g, training=True):
    """One forward (training mode unless told) and backward: [y, dx, dγ, dβ]."""
    m.zero_grad()
    x = mg.tensor(x0, requires_grad=True)
    with mg.train_mode() if training else mg.eval_mode():
        y = m(x)
    y.backward(g)
    return [y.data, x.grad, m.weight.grad, m.bias.grad]


def channels(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def axes(ndim):
    return (0, *range(2, ndim))


def x_hat(x):
    """The batch-normalised input, in numpy."""
    centred = x - x.mean(axis=axes(x.ndim), keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=axes(x.ndim), keepdims=True) + EPS)


SHAPES = {"NC": (6, C), "NCL": (4, C, 5), "NCHW": (3, C, 2, 4)}


def kind_of(shape):
    return nn.BatchRenorm2d if len(shape) == 4 else nn.BatchRenorm1d


# ------------------------------------------------------------------ r_max = 1, d_max = 0: BatchNorm
@pytest.mark.parametrize("momentum", [0.1, None], ids=["mom0.1", "cumulative"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_default_bounds_are_batch_norm_exactly(shape, fused, momentum):
    renorm = layer(kind_of(shape), fused=fused, momentum=momentum)
    norm = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(C, fused=fused, momentum=momentum,
                                                                    dtype=np.float64)
    norm.load_state_dict(renorm.state_dict())
    for k in range(3):
        x0, g = batch(shape, seed=k)
        for a, b in zip(step(renorm, x0, g), step(norm, x0, g)):
            np.testing.assert_array_equal(a, b)                 # bit for bit
        for key, value in norm.state_dict().items():
            np.testing.assert_array_equal(renorm.state_dict()[key], value, err_msg=key)
    assert int(renorm.num_batches_tracked) == 3


# ------------------------------------------------------------------ the formula
def paper_training_output(x, weight, bias, running_mean, running_var, r_max, d_max):
    """Algorithm 1 in numpy: y = γ (x̂ r + d) + β, r and d from the given running statistics."""
    ax = axes(x.ndim)
    mean, var = x.mean(axis=ax), x.var(axis=ax)
    sigma = np.sqrt(running_var + EPS)
    r = np.clip(np.sqrt(var + EPS) / sigma, 1 / r_max, r_max)
    d = np.clip((mean - running_mean) / sigma, -d_max, d_max)
    return channels(weight, x.ndim) * (x_hat(x) * channels(r, x.ndim) + channels(d, x.ndim)) \
        + channels(bias, x.ndim)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_unclipped_training_equals_eval_with_the_pre_update_statistics(shape, fused):
    m = layer(kind_of(shape), fused=fused, r_max=1e9, d_max=1e9)
    x0, g = batch(shape, seed=3)
    mean, var = m.running_mean.copy(), m.running_var.copy()          # before this batch
    y = step(m, x0, g)[0]
    expected = channels(m.weight.data, len(shape)) * (x0 - channels(mean, len(shape))) \
        / np.sqrt(channels(var, len(shape)) + EPS) + channels(m.bias.data, len(shape))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert not np.allclose(m.running_mean, mean)                      # and then they moved
    with mg.eval_mode():                                              # eval: the updated ones
        evaluated = m(mg.tensor(x0)).data
    assert np.abs(evaluated - y).max() > 1e-3


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("bounds", [(1.5, 0.3), (3.0, 5.0), (1.0, 0.0)])
def test_training_output_is_the_paper_s_formula(bounds, fused):
    m = layer(fused=fused, r_max=bounds[0], d_max=bounds[1])
    x0, g = batch((8, C, 2), seed=4)
    expected = paper_training_output(x0, m.weight.data, m.bias.data, m.running_mean.copy(),
                                     m.running_var.copy(), *bounds)
    np.testing.assert_allclose(step(m, x0, g)[0], expected, rtol=1e-12, atol=1e-12)


def clipped_somewhere(shape=(7, C, 3)):
    """Batch, γ, β and running statistics with r clipped in one channel, d clipped in another,
    and the third channel unclipped: every branch of clip takes part. Bounds (2, 0.5)."""
    x0, g = batch(shape, seed=5)
    rng = np.random.default_rng(6)
    mean, var = x0.mean(axis=axes(len(shape))), x0.var(axis=axes(len(shape)))
    running_mean = mean - np.sqrt(var) * np.array([0.1, 2.0, -0.2])   # d: in, clipped, in
    running_var = var * np.array([9.0, 1.1, 0.8])                     # r: clipped (1/3 < 1/2), in, in
    return x0, g, rng.uniform(0.5, 2.0, C), rng.standard_normal(C), running_mean, running_var, (2.0, 0.5)


def test_the_fixture_clips_where_it_says():
    x0, _, _, _, running_mean, running_var, (r_max, d_max) = clipped_somewhere()
    r, d = renorm_corrections(x0.mean(axis=(0, 2)), x0.var(axis=(0, 2)), running_mean, running_var,
                              r_max, d_max, EPS)
    np.testing.assert_array_equal(r == 1 / r_max, [True, False, False])
    np.testing.assert_array_equal(np.abs(d) == d_max, [False, True, False])


@pytest.mark.parametrize("form", FORMS)
def test_gradients_treat_r_and_d_as_constants(form):
    """Finite differences of a numpy function that holds r and d at their values: the layer's
    gradients are those. Moving r and d with x (no stop_gradient) gives other gradients."""
    x0, g, w0, b0, running_mean, running_var, bounds = clipped_somewhere()
    x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    y, _, _ = FORMS[form](x, w, b, running_mean, running_var, *bounds, EPS)
    y.backward(g)
    mean, var = x0.mean(axis=(0, 2)), x0.var(axis=(0, 2))
    r, d = (channels(a, 3) for a in renorm_corrections(mean, var, running_mean, running_var, *bounds, EPS))
    xs, ws, bs = x0.copy(), w0.copy(), b0.copy()

    def fixed():                                      # r, d as they were at x0
        return float((g * (channels(ws, 3) * (x_hat(xs) * r + d) + channels(bs, 3))).sum())

    for got, point in zip((x.grad, w.grad, b.grad), (xs, ws, bs)):
        np.testing.assert_allclose(got, numerical_gradient(fixed, point), rtol=1e-6, atol=1e-7)

    def moving():                                     # r, d recomputed from the moved batch
        return float((g * paper_training_output(xs, ws, bs, running_mean, running_var, *bounds)).sum())
    assert np.abs(numerical_gradient(moving, xs) - x.grad).max() > 1e-2


@pytest.mark.parametrize("form", FORMS)
def test_gradcheck_and_gradgradcheck_where_r_and_d_are_clipped(form):
    """Where both are clipped in every channel, r and d are locally constant, so the layer's
    function has exactly the gradients the layer computes: a plain gradcheck applies, to
    second order, with r ≠ 1 and d ≠ 0."""
    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((4, C, 2))
    running_var = x0.var(axis=(0, 2)) * 100                              # r = 1/10: clipped to 1/2
    running_mean = x0.mean(axis=(0, 2)) + np.array([10, -10, 20]) * np.sqrt(running_var)   # |d| >= 10: 0.5
    x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, rng.uniform(0.5, 2, C), rng.standard_normal(C)))
    r, d = renorm_corrections(x0.mean(axis=(0, 2)), x0.var(axis=(0, 2)), running_mean, running_var, 2.0, 0.5, EPS)
    np.testing.assert_array_equal(r, 0.5)
    np.testing.assert_array_equal(np.abs(d), 0.5)
    f = lambda x, w, b: FORMS[form](x, w, b, running_mean, running_var, 2.0, 0.5, EPS)[0]   # noqa: E731
    assert mg.gradcheck(f, [x, w, b], raise_on_vacuous=True)
    assert mg.gradgradcheck(f, [x, w, b])


@pytest.mark.parametrize("form", FORMS)
def test_gradcheck_of_gamma_and_beta_anywhere(form):
    """r and d do not depend on γ, β: their gradients are checkable for any bounds."""
    x0, _, w0, b0, running_mean, running_var, bounds = clipped_somewhere()
    x = mg.tensor(x0)
    f = lambda w, b: FORMS[form](x, w, b, running_mean, running_var, *bounds, EPS)[0]   # noqa: E731
    assert mg.gradcheck(f, [mg.tensor(w0, requires_grad=True), mg.tensor(b0, requires_grad=True)])


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_fused_and_composed_agree(shape):
    x0, g, w0, b0, running_mean, running_var, bounds = clipped_somewhere(shape)
    out = {}
    for form, fn in FORMS.items():
        x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y, mean, var = fn(x, w, b, running_mean, running_var, *bounds, EPS)
        if form == "fused":                  # one op over x; the rest is (C,)-sized
            big = [c.fn for c in mg.graph.nodes(y) if c.fn is BatchNormFused]
            assert len(big) == 1 and all(t.size <= C for t in mg.graph.tensors(y) if t is not y and t is not x)
        y.backward(g)
        out[form] = [y.data, x.grad, w.grad, b.grad, mean, var]
    for name, f, c in zip(("y", "dx", "dγ", "dβ", "mean", "var"), out["fused"], out["composed"]):
        np.testing.assert_allclose(f, c, rtol=1e-12, atol=1e-12, err_msg=name)


def test_without_affine():
    x0, g, _, _, running_mean, running_var, bounds = clipped_somewhere()
    out = []
    for fn in FORMS.values():
        x = mg.tensor(x0, requires_grad=True)
        y = fn(x, None, None, running_mean, running_var, *bounds, EPS)[0]
        y.backward(g)
        out.append((y.data, x.grad))
    expected = paper_training_output(x0, np.ones(C), np.zeros(C), running_mean, running_var, *bounds)
    for y, dx in out:
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, out[0][1], rtol=1e-12, atol=1e-12)
    m = nn.BatchRenorm1d(C, affine=False, dtype=np.float64)
    assert m.weight is None and list(m.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


# ------------------------------------------------------------------ running statistics, eval, state
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_running_statistics_are_batch_norm_s_whatever_the_bounds(fused):
    renorm = layer(fused=fused, r_max=3.0, d_max=5.0, momentum=0.3)
    norm = nn.BatchNorm1d(C, fused=fused, momentum=0.3, dtype=np.float64)
    norm.load_state_dict(renorm.state_dict())
    mean, var = renorm.running_mean.copy(), renorm.running_var.copy()
    for k in range(3):
        x0, g = batch((5, C, 2), seed=10 + k, scale=k + 1.0, shift=k)
        step(renorm, x0, g)
        step(norm, x0, g)
        n = 10
        mean = 0.7 * mean + 0.3 * x0.mean(axis=(0, 2))
        var = 0.7 * var + 0.3 * x0.var(axis=(0, 2)) * n / (n - 1)          # unbiased
    np.testing.assert_allclose(renorm.running_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(renorm.running_var, var, rtol=1e-13)
    for key, value in norm.state_dict().items():
        np.testing.assert_array_equal(renorm.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_eval_and_frozen_are_batch_norm_s_eval(fused):
    renorm = layer(fused=fused, r_max=3.0, d_max=5.0)
    norm = nn.BatchNorm1d(C, fused=fused, dtype=np.float64)
    norm.load_state_dict(renorm.state_dict())
    before = {k: v.copy() for k, v in renorm.state_dict().items()}
    x0, g = batch((5, C), seed=12)
    a = step(renorm, x0, g, training=False)
    for got, want in zip(a, step(norm, x0, g, training=False)):
        np.testing.assert_array_equal(got, want)
    nn.utils.freeze_batch_norm(renorm)
    with mg.train_mode():
        np.testing.assert_array_equal(renorm(mg.tensor(x0[:1])).data, a[0][:1])   # one sample is fine
    for key, value in renorm.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_state_dict_is_batch_norm_s_and_loads_into_torch():
    renorm = layer(r_max=2.0, d_max=1.0)
    assert list(renorm.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(renorm.state_dict()) == list(nn.BatchNorm1d(C).state_dict())
    torch = pytest.importorskip("torch")
    theirs = torch.nn.BatchNorm1d(C, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in renorm.state_dict().items()}, strict=True)


# ------------------------------------------------------------------ the bounds
def test_bounds_are_attributes_that_take_effect_at_once():
    x0, g, w0, b0, running_mean, running_var, _ = clipped_somewhere()
    m = nn.BatchRenorm1d(C, dtype=np.float64)
    m.weight.data[...], m.bias.data[...] = w0, b0
    m.running_mean[...], m.running_var[...] = running_mean, running_var
    assert (m.r_max, m.d_max, m.eps, m.momentum, m.affine, m.fused) == (1.0, 0.0, 1e-5, 0.1, True, True)
    assert m.track_running_stats                      # always: r and d need them
    m.r_max, m.d_max = 2.0, 0.5
    m.momentum = 0.0                                  # keep the statistics for the reference
    expected = paper_training_output(x0, w0, b0, running_mean, running_var, 2.0, 0.5)
    np.testing.assert_allclose(step(m, x0, g)[0], expected, rtol=1e-12, atol=1e-12)
    assert "r_max=2, d_max=0.5" in repr(m) and "track_running_stats" not in repr(m)


@pytest.mark.parametrize("name, bad", [("r_max", 0.5), ("r_max", float("nan")), ("r_max", True), ("r_max", "3"),
                                       ("d_max", -0.1), ("d_max", float("nan")), ("d_max", None)])
def test_bad_bounds_are_refused_in_the_constructor_and_on_assignment(name, bad):
    with pytest.raises(ValueError, match=f"{name} must be a number"):
        nn.BatchRenorm1d(C, **{name: bad})
    m = nn.BatchRenorm2d(C)
    with pytest.raises(ValueError, match=f"BatchRenorm2d: {name} must be a number"):
        setattr(m, name, bad)
    assert (m.r_max, m.d_max) == (1.0, 0.0)
    nn.BatchRenorm1d(C, r_max=float("inf"), d_max=float("inf"))      # unclipped is allowed


def test_layer_errors_are_batch_norm_s_and_change_nothing():
    m = layer(r_max=2.0, d_max=1.0, momentum=None)
    before = {k: v.copy() for k, v in m.state_dict().items()}
    with mg.train_mode():
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
            m(mg.tensor(np.ones((1, C))))
        with pytest.raises(ValueError, match=r"BatchRenorm1d\(3\) expected input of shape \(N, 3\) or \(N, 3, L\)"):
            m(mg.tensor(np.ones((2, C, 2, 2))))
        with pytest.raises(TypeError, match="float64 parameters but got input of dtype float32"):
            m(mg.tensor(np.ones((4, C), np.float32)))
    for key, value in m.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)
    with pytest.raises(ValueError, match=r"BatchRenorm2d\(3\) expected input of shape \(N, 3, H, W\)"):
        nn.BatchRenorm2d(C)(mg.tensor(np.ones((4, C), np.float32)))


@pytest.mark.parametrize("missing", ["both", "mean", "var"])
def test_functional_batch_renorm_needs_running_statistics(missing):
    from minigrad.nn.batchrenorm import batch_renorm
    mean = None if missing in ("both", "mean") else np.zeros(C)
    var = None if missing in ("both", "var") else np.ones(C)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        batch_renorm(mg.tensor(np.ones((4, C))), mean, var, None, None, 1.0, 0.0)


def test_functional_defaults():
    """The pure functions share a signature and eps 1e-5; batch_renorm's momentum 0.1, fused."""
    import inspect
    from minigrad.nn.batchrenorm import batch_renorm
    assert inspect.signature(batch_renorm_fused) == inspect.signature(batch_renorm_composed)
    x0, _, w0, b0, running_mean, running_var, bounds = clipped_somewhere()
    x, w, b = (mg.tensor(a) for a in (x0, w0, b0))
    for fn in FORMS.values():
        np.testing.assert_array_equal(fn(x, w, b, running_mean, running_var, *bounds)[0].data,
                                      fn(x, w, b, running_mean, running_var, *bounds, 1e-5)[0].data)
    mean, var = running_mean.copy(), running_var.copy()
    y = batch_renorm(mg.tensor(x0, requires_grad=True), mean, var, w, b, *bounds)
    assert [ctx.fn for ctx in mg.graph.nodes(y)][-1] is BatchNormFused
    np.testing.assert_array_equal(y.data, batch_renorm_fused(x, w, b, running_mean, running_var, *bounds)[0].data)
    np.testing.assert_allclose(mean, 0.9 * running_mean + 0.1 * x0.mean(axis=(0, 2)), rtol=1e-13)
    np.testing.assert_allclose(var, 0.9 * running_var + 0.1 * x0.var(axis=(0, 2), ddof=1), rtol=1e-13)
