"""SyncBatchNorm (minigrad/nn/batchnorm.py), composed and fused: at world size 1 it is batch norm
exactly (this process); on 2 and 3 ranks (worker.py, checks_syncbn.py) its statistics are the
global batch's, the two forms agree, its gradients match finite differences of the loss summed
over ranks to first and second order, and data-parallel training with it equals one process on
the concatenated batches (plain BN does not)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn.batchnorm import SyncBatchNorm, sync_batch_norm_composed, sync_batch_norm_fused

from .checks_syncbn import cnn

SHAPES = [(6, 3), (4, 3, 5), (3, 3, 2, 2)]


def pair(shape, dtype=np.float64, fused=True, **kwargs):
    """A SyncBatchNorm and the BatchNorm1d/2d (same ``fused``) it must equal, same random γ, β."""
    plain_class = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    plain = plain_class(shape[1], fused=fused, dtype=dtype, **kwargs)
    sync = SyncBatchNorm(shape[1], fused=fused, dtype=dtype, **kwargs)
    if plain.affine:
        rng = np.random.default_rng(1)
        weight, bias = rng.uniform(0.5, 2, shape[1]), rng.standard_normal(shape[1])
        for layer in (plain, sync):
            layer.weight.data[...], layer.bias.data[...] = weight, bias
    return sync, plain


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_world_size_one_is_batch_norm_exactly(shape, dtype, momentum, fused):
    """Outputs, gradients (random upstream) and running statistics, bitwise, over 3 steps."""
    sync, plain = pair(shape, dtype, fused, momentum=momentum)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal(shape).astype(dtype) * 2 + 1
        g = rng.standard_normal(shape).astype(dtype)
        inputs, outputs = [], []
        for layer in (sync, plain):
            t = mg.tensor(x.copy(), requires_grad=True)
            layer.zero_grad()
            (layer(t) * g).sum().backward()
            inputs.append(t)
        np.testing.assert_array_equal(inputs[0].grad, inputs[1].grad)
        for name in ("weight", "bias"):
            np.testing.assert_array_equal(getattr(sync, name).grad, getattr(plain, name).grad)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_array_equal(getattr(sync, name), getattr(plain, name))
    with mg.eval_mode():
        x = rng.standard_normal(shape).astype(dtype)
        np.testing.assert_array_equal(sync(mg.tensor(x)).data, plain(mg.tensor(x)).data)


@pytest.mark.parametrize("form", ["fused", "composed"])
def test_functional_is_batch_norm_with_its_defaults(form):
    from minigrad.nn.batchnorm import batch_norm_composed, batch_norm_fused
    sync, plain = (sync_batch_norm_fused, batch_norm_fused) if form == "fused" else \
        (sync_batch_norm_composed, batch_norm_composed)
    x = mg.tensor(np.random.default_rng(5).standard_normal((4, 3, 2)) * 1e-3)   # σ² ~ eps: eps shows
    y, mean, var, n = sync(x, None, None)
    expected = plain(x, None, None)
    np.testing.assert_array_equal(y.data, expected[0].data)
    np.testing.assert_array_equal(mean, expected[1])
    np.testing.assert_array_equal(var, expected[2])
    assert n == 8 and type(n) is int


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES[:2])
@pytest.mark.parametrize("form", [sync_batch_norm_fused, sync_batch_norm_composed], ids=["fused", "composed"])
def test_gradients_first_and_second_order(shape, affine, form):
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal(shape), requires_grad=True)
    inputs = [x]
    if affine:
        inputs += [mg.tensor(rng.uniform(0.5, 2, shape[1]), requires_grad=True),
                   mg.tensor(rng.standard_normal(shape[1]), requires_grad=True)]

    def f(x, w=None, b=None):
        return form(x, w, b)[0]

    assert mg.gradcheck(f, inputs)
    assert mg.gradgradcheck(f, inputs)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
def test_without_running_statistics_and_frozen(fused):
    sync, plain = pair((5, 3), fused=fused, track_running_stats=False)
    x = mg.tensor(np.random.default_rng(4).standard_normal((5, 3)))
    with mg.eval_mode():                                     # batch statistics in eval too
        np.testing.assert_array_equal(sync(x).data, plain(x).data)
    sync, plain = pair((5, 3), fused=fused)
    sync.running_mean[...] = plain.running_mean[...] = 0.5
    sync.frozen = plain.frozen = True                        # running statistics, no update
    np.testing.assert_array_equal(sync(x).data, plain(x).data)
    assert sync.num_batches_tracked == 0 and np.all(sync.running_mean == 0.5)


def test_errors_name_what_was_expected():
    layer = SyncBatchNorm(3, dtype=np.float64)
    with pytest.raises(ValueError, match=r"SyncBatchNorm\(3\) expected input of shape \(N, 3, ...\), got shape \(4, 2\)"):
        layer(mg.tensor(np.zeros((4, 2))))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        layer(mg.tensor(np.zeros(4)))
    with pytest.raises(TypeError, match="float64 parameters but got input of dtype float32"):
        layer(mg.tensor(np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training, got 1 over all ranks"):
        layer(mg.tensor(np.zeros((1, 3))))
    assert layer.num_batches_tracked == 0
    assert repr(layer) == "SyncBatchNorm(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True, fused=True)"


def test_convert_sync_batchnorm_in_place_keeping_parameters_and_buffers():
    model = cnn(0, fused=False)
    model[1].frozen = True
    old = [model[1], model[5]]
    params, buffers = list(model.parameters()), list(model.buffers())
    assert nn.SyncBatchNorm.convert_sync_batchnorm(model) is model
    for i, before in zip((1, 5), old):
        layer = model[i]
        assert type(layer) is SyncBatchNorm
        assert (layer.num_features, layer.eps, layer.momentum, layer.fused) == \
            (before.num_features, before.eps, before.momentum, False)
        assert layer.weight is before.weight and layer.running_mean is before.running_mean
    assert model[1].frozen and not model[5].frozen
    assert all(a is b for a, b in zip(model.parameters(), params))
    assert all(a is b for a, b in zip(model.buffers(), buffers))
    assert list(model.state_dict()) == list(cnn(0).state_dict())
    single = nn.BatchNorm1d(4, affine=False, momentum=None, dtype=np.float32)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(single)
    assert type(converted) is SyncBatchNorm and converted is not single and converted.weight is None
    assert converted.momentum is None and converted.running_var is single.running_var and converted.fused
    assert nn.SyncBatchNorm.convert_sync_batchnorm(converted) is converted
    bare = nn.BatchNorm1d(4, affine=False, track_running_stats=False)   # no array at all to copy
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(bare)
    assert type(converted) is SyncBatchNorm and converted.weight is None and converted.running_mean is None
    renorm = nn.BatchRenorm1d(4)                             # another algorithm: left as it is
    assert nn.SyncBatchNorm.convert_sync_batchnorm(renorm) is renorm


CHECKS = ["check_statistics_of_the_global_batch", "check_fused_and_composed_agree",
          "check_gradient_against_finite_differences", "check_second_order_across_ranks",
          "check_ranks_that_differ_are_refused", "check_invariance_to_the_number_of_ranks",
          "check_recompute_bn_stats_over_every_rank"]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("check", CHECKS)
def test_sync_batch_norm_on_several_ranks(worker, n, check):
    numbers = worker(n, check)
    for name, value in numbers.items():
        print(f"{n} ranks, {check}: {name} = {value if isinstance(value, str) else f'{value:.3g}'}")
    if check == "check_invariance_to_the_number_of_ranks":
        assert len(numbers) == 12
        for name, value in numbers.items():
            assert value < 1e-10 if name.startswith("sync") else value > 1e-4, name
