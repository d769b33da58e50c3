"""BatchNorm2d: statistics per channel over N·H·W values, the same composed and fused batch norm
as for 1-D (one set of code over the reduced axes), running statistics with n = N·H·W, and the
errors PyTorch raises. Every gradient uses a random upstream gradient."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

C = 3


def reference(x, weight, bias, eps=1e-5):
    """Training-mode batch norm of (N, C, H, W) in float64 numpy: y, mean (C,), biased var (C,)."""
    mean = x.mean(axis=(0, 2, 3))
    centred = x - mean.reshape(1, -1, 1, 1)
    var = (centred ** 2).mean(axis=(0, 2, 3))
    y = centred / np.sqrt(var.reshape(1, -1, 1, 1) + eps)
    return y * weight.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1), mean, var


def inputs(shape=(4, C, 3, 5), seed=0):
    rng = np.random.default_rng(seed)
    return (1 + 2 * rng.standard_normal(shape), rng.uniform(0.5, 2.0, shape[1]),
            rng.standard_normal(shape[1]), rng.standard_normal(shape))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, C, 3, 5), (1, C, 2, 2), (2, C, 1, 3)])
def test_fused_and_composed_agree_and_match_the_reference(shape, affine):
    x0, w0, b0, g = inputs(shape)
    results = {}
    for name, bn in (("fused", F.batch_norm_fused), ("composed", F.batch_norm_composed)):
        x = mg.tensor(x0, requires_grad=True)
        w = mg.tensor(w0, requires_grad=True) if affine else None
        b = mg.tensor(b0, requires_grad=True) if affine else None
        y, mean, var = bn(x, w, b)
        y.backward(g)
        results[name] = [y.data, mean, var, x.grad] + ([w.grad, b.grad] if affine else [])
    for fused, composed in zip(results["fused"], results["composed"]):
        np.testing.assert_allclose(fused, composed, rtol=1e-12, atol=1e-12)
    y_ref, mean_ref, var_ref = reference(x0, w0 if affine else np.ones(C), b0 if affine else np.zeros(C))
    np.testing.assert_allclose(results["fused"][0], y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results["fused"][1], mean_ref, rtol=1e-12)
    np.testing.assert_allclose(results["fused"][2], var_ref, rtol=1e-12)


@pytest.mark.parametrize("bn", [F.batch_norm_fused, F.batch_norm_composed], ids=["fused", "composed"])
def test_gradcheck_and_gradgradcheck_on_four_axes(bn):
    x0, w0, b0, _ = inputs((2, 2, 2, 3), seed=3)
    tensors = [mg.tensor(a, requires_grad=True) for a in (x0, w0[:2], b0[:2])]
    assert mg.gradcheck(lambda x, w, b: bn(x, w, b)[0], tensors)
    assert mg.gradgradcheck(lambda x, w, b: bn(x, w, b)[0], tensors)


@pytest.mark.parametrize("fused", [True, False])
def test_running_statistics_use_n_equal_to_n_h_w(fused):
    layer = nn.BatchNorm2d(C, momentum=0.25, fused=fused, dtype=np.float64)
    batches = [inputs((3, C, 2, 4), seed=k)[0] for k in range(3)]
    mean, var = np.zeros(C), np.ones(C)
    with mg.train_mode():
        for x in batches:
            layer(mg.tensor(x))
            n = 3 * 2 * 4
            mean = 0.75 * mean + 0.25 * x.mean(axis=(0, 2, 3))
            var = 0.75 * var + 0.25 * x.var(axis=(0, 2, 3)) * n / (n - 1)   # unbiased over N·H·W
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-12)
    assert int(layer.num_batches_tracked) == 3


def test_eval_mode_uses_running_statistics_and_one_sample_works():
    layer = nn.BatchNorm2d(C, dtype=np.float64)
    layer.running_mean[...] = [0.5, -1.0, 2.0]
    layer.running_var[...] = [4.0, 0.25, 1.0]
    x = inputs((1, C, 2, 2), seed=4)[0]
    with mg.eval_mode():
        y = layer(mg.tensor(x)).data
    expected = (x - layer.running_mean.reshape(1, -1, 1, 1)) / np.sqrt(layer.running_var.reshape(1, -1, 1, 1) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-12)


def test_one_sample_with_positions_trains_but_one_value_per_channel_raises():
    layer = nn.BatchNorm2d(C)
    with mg.train_mode():
        layer(mg.tensor(np.random.default_rng(0).standard_normal((1, C, 2, 2)).astype(np.float32)))
        assert int(layer.num_batches_tracked) == 1
        with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
            layer(mg.tensor(np.ones((1, C, 1, 1), np.float32)))
    assert int(layer.num_batches_tracked) == 1                # the refused batch changed nothing


def test_wrong_rank_or_channel_count_is_refused():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expected input of shape \(N, 3, H, W\), got shape \(4, 3\)"):
        nn.BatchNorm2d(C)(mg.tensor(np.ones((4, C), np.float32)))
    with pytest.raises(ValueError, match=r"got shape \(2, 4, 2, 2\)"):
        nn.BatchNorm2d(C)(mg.tensor(np.ones((2, 4, 2, 2), np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) expected input of shape \(N, 3\) or \(N, 3, L\)"):
        nn.BatchNorm1d(C)(mg.tensor(np.ones((2, C, 2, 2), np.float32)))


def test_functional_batch_norm_accepts_four_axes():
    x0 = inputs((2, C, 3, 3), seed=5)[0]
    rm, rv = np.zeros(C), np.ones(C)
    y = F.batch_norm(mg.tensor(x0), rm, rv, training=True, momentum=1.0)
    np.testing.assert_allclose(y.data, reference(x0, np.ones(C), np.zeros(C))[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, x0.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(rv, x0.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)


def test_against_torch():
    torch = pytest.importorskip("torch")
    x0, w0, b0, g = inputs((4, C, 3, 5), seed=6)
    ours = nn.BatchNorm2d(C, momentum=0.3, dtype=np.float64)
    ours.weight.data[...], ours.bias.data[...] = w0, b0
    theirs = torch.nn.BatchNorm2d(C, momentum=0.3, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(w0))
        theirs.bias.copy_(torch.from_numpy(b0))
    x = mg.tensor(x0, requires_grad=True)
    xt = torch.tensor(x0, requires_grad=True)
    with mg.train_mode():
        y = ours(x)
    yt = theirs.train()(xt)
    y.backward(g)
    yt.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12, atol=1e-15)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()}, strict=True)
