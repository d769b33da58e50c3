"""Optional: PyTorch as an independent reference (skipped when torch is not installed).

BatchNorm1d (outputs, running statistics, gradients in train and eval), Linear's initial
range, SGD / Adam / AdamW steps and cross_entropy, all in float64 with random upstream gradients.
"""
import itertools

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn import functional as F

torch = pytest.importorskip("torch")

C = 3


def to_torch(array, requires_grad=False):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=requires_grad)


BN_CASES = list(itertools.product([True, False], [(6, C), (4, C, 5)], [0.1, None], [True, False], [True, False]))


@pytest.mark.parametrize("fused, shape, momentum, affine, track", BN_CASES,
                         ids=["-".join(map(str, case)) for case in BN_CASES])
def test_batchnorm_matches_torch(fused, shape, momentum, affine, track):
    ours = nn.BatchNorm1d(C, momentum=momentum, affine=affine, track_running_stats=track,
                          fused=fused, dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(C, momentum=momentum, affine=affine, track_running_stats=track,
                                  dtype=torch.float64)
    rng = np.random.default_rng(0)
    if affine:
        weight, bias = rng.uniform(0.5, 2, C), rng.standard_normal(C)
        ours.weight.data[...], ours.bias.data[...] = weight, bias
        with torch.no_grad():
            theirs.weight.copy_(to_torch(weight))
            theirs.bias.copy_(to_torch(bias))
    for step, training in enumerate([True, True, True, False, True, False]):
        x = rng.standard_normal(shape) * (step + 1) + 10.0 * step
        upstream = rng.standard_normal(shape)
        ours.train(training)
        theirs.train(training)
        ours.zero_grad()
        theirs.zero_grad()
        x_ours, x_theirs = mg.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
        y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
        y_ours.backward(upstream)
        y_theirs.backward(to_torch(upstream))
        where = f"step {step} ({'train' if training else 'eval'})"
        np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg=where)
        np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=where)
        if affine:
            np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-9, atol=1e-10)
        if track:
            np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-12, err_msg=where)
            np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-12, err_msg=where)
            assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)
    if track:
        assert sorted(ours.state_dict()) == sorted(theirs.state_dict())


def test_batchnorm_state_dict_loads_from_torch():
    theirs = torch.nn.Sequential(torch.nn.Linear(4, C), torch.nn.BatchNorm1d(C)).double()
    x = np.random.default_rng(1).standard_normal((8, 4))
    theirs(to_torch(x))                                   # training: running statistics move
    ours = nn.Sequential(nn.Linear(4, C), nn.BatchNorm1d(C)).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    theirs.eval()
    with mg.eval_mode():
        np.testing.assert_allclose(ours(mg.tensor(x)).data, theirs(to_torch(x)).detach().numpy(), rtol=1e-12)


def test_linear_initial_range_matches_torch():
    torch.manual_seed(0)
    mg.manual_seed(0)
    theirs, ours = torch.nn.Linear(300, 200), nn.Linear(300, 200)
    for name in ("weight", "bias"):
        t = getattr(theirs, name).detach().numpy().astype(np.float64)
        o = getattr(ours, name).data.astype(np.float64)
        assert o.shape == t.shape
        bound = 1 / np.sqrt(300)
        assert np.abs(t).max() <= bound and np.abs(o).max() <= bound
        np.testing.assert_allclose(o.std(), t.std(), rtol=0.1 if name == "bias" else 0.02)


OPTIMIZERS = {
    "sgd": (optim.SGD, torch.optim.SGD, dict(lr=0.05)),
    "sgd_momentum_damped": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    "sgd_nesterov_decay": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True,
                                                            weight_decay=0.1)),
    "adam": (optim.Adam, torch.optim.Adam, dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6)),
    "adam_l2": (optim.Adam, torch.optim.Adam, dict(lr=0.05, weight_decay=0.2)),
    "adamw": (optim.AdamW, torch.optim.AdamW, dict(lr=0.05)),
    "adamw_decay": (optim.AdamW, torch.optim.AdamW, dict(lr=0.05, weight_decay=0.3)),
}


@pytest.mark.parametrize("name", OPTIMIZERS, ids=OPTIMIZERS.keys())
def test_optimizer_steps_match_torch(name):
    ours_cls, theirs_cls, kwargs = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    A, b, p0 = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)
    p_ours, p_theirs = nn.Parameter(p0.copy()), to_torch(p0, requires_grad=True)
    opt_ours, opt_theirs = ours_cls([p_ours], **kwargs), theirs_cls([p_theirs], **kwargs)
    for step in range(8):
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        r = mg.tensor(A) @ p_ours - mg.tensor(b)
        (0.5 * (r * r).sum()).backward()
        r_t = to_torch(A) @ p_theirs - to_torch(b)
        (0.5 * (r_t * r_t).sum()).backward()
        opt_ours.step()
        opt_theirs.step()
        np.testing.assert_allclose(p_ours.data, p_theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"step {step + 1}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(reduction):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((5, 4)) * 3
    logits[0] = [1e4, -1e4, 0.0, 5.0]
    logits[1] = -1e4
    target = rng.integers(0, 4, 5)
    z_ours, z_theirs = mg.tensor(logits, requires_grad=True), to_torch(logits, requires_grad=True)
    loss_ours = F.cross_entropy(z_ours, target, reduction)
    loss_theirs = torch.nn.functional.cross_entropy(z_theirs, torch.tensor(target), reduction=reduction)
    np.testing.assert_allclose(loss_ours.data, loss_theirs.detach().numpy(), rtol=1e-12)
    upstream = rng.standard_normal(loss_ours.shape)
    loss_ours.backward(upstream)
    loss_theirs.backward(to_torch(upstream))
    np.testing.assert_allclose(z_ours.grad, z_theirs.grad.numpy(), rtol=1e-10, atol=1e-14)
