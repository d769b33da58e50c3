"""nn.utils: folding batch norm into the Linear or convolution before it (equal in eval mode, not
in training mode; refused wherever the algebra does not hold: batch norm normalising another axis
than the layer's outputs, a layer or batch norm of the wrong kind), fold_batch_norm on whole
Sequentials, frozen batch norm statistics, and the population statistics of ``recompute_bn_stats``."""
import copy

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import utils

from .test_batchnorm import C, reference_bn


def trained_pair(dtype=np.float64, affine=True, bias=True, seed=0):
    """A Linear(5, 4) and a BatchNorm1d(4) with non-trivial γ, β and running statistics."""
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    linear = nn.Linear(5, 4, bias=bias, dtype=dtype)
    bn = nn.BatchNorm1d(4, affine=affine, dtype=dtype)
    if affine:
        bn.weight.data[...] = rng.uniform(0.5, 2.0, 4)
        bn.bias.data[...] = rng.standard_normal(4)
    bn.running_mean[...] = rng.standard_normal(4)
    bn.running_var[...] = rng.uniform(0.2, 3.0, 4)
    return linear, bn


def data(shape=(7, 5), dtype=np.float64, seed=1):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_equals_linear_then_bn_in_eval_mode(affine, bias):
    linear, bn = trained_pair(affine=affine, bias=bias)
    x = data()
    with mg.eval_mode():
        fused = utils.fuse_linear_bn_eval(linear, bn)
        np.testing.assert_allclose(fused(x).data, bn(linear(x)).data, rtol=1e-12, atol=1e-12)
    # the formulas themselves: W' = W·s, b' = (b - mean)·s + β
    s = (bn.weight.data if affine else 1.0) / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(fused.weight.data, linear.weight.data * s[:, None], rtol=1e-14)
    b = linear.bias.data if bias else 0.0
    np.testing.assert_allclose(fused.bias.data, (b - bn.running_mean) * s + (bn.bias.data if affine else 0.0),
                               rtol=1e-14)
    assert isinstance(fused, nn.Linear) and fused is not linear and fused.bias is not None


def test_fusion_leaves_the_originals_untouched_and_makes_new_parameters():
    linear, bn = trained_pair()
    before = {**{"l." + k: v for k, v in linear.state_dict().items()},
              **{"b." + k: v for k, v in bn.state_dict().items()}}
    with mg.eval_mode():
        fused = utils.fuse_linear_bn_eval(linear, bn)
    after = {**{"l." + k: v for k, v in linear.state_dict().items()},
             **{"b." + k: v for k, v in bn.state_dict().items()}}
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert fused.weight is not linear.weight and fused.weight.requires_grad


def test_float32_fusion_is_close():
    linear, bn = trained_pair(dtype=np.float32)
    x = data(dtype=np.float32)
    with mg.eval_mode():
        fused = utils.fuse_linear_bn_eval(linear, bn)
        np.testing.assert_allclose(fused(x).data, bn(linear(x)).data, rtol=1e-5, atol=1e-5)
    assert fused.weight.dtype == np.float32


def test_fusion_is_refused_in_training_mode_unless_frozen():
    linear, bn = trained_pair()
    with mg.train_mode():
        with pytest.raises(RuntimeError, match="fusion is for evaluation only"):
            utils.fuse_linear_bn_eval(linear, bn)
        utils.freeze_batch_norm(bn)
        fused = utils.fuse_linear_bn_eval(linear, bn)          # frozen: eval statistics always
        x = data()
        np.testing.assert_allclose(fused(x).data, bn(linear(x)).data, rtol=1e-12, atol=1e-12)


def test_fusion_errors_name_what_is_wrong():
    linear, _ = trained_pair()
    with mg.eval_mode():
        with pytest.raises(ValueError, match="track_running_stats=False"):
            utils.fuse_linear_bn_eval(linear, nn.BatchNorm1d(4, track_running_stats=False, dtype=np.float64))
        with pytest.raises(ValueError, match="Linear has 4 outputs but BatchNorm1d has 3 features"):
            utils.fuse_linear_bn_eval(linear, nn.BatchNorm1d(3, dtype=np.float64))
        with pytest.raises(TypeError, match=r"fuse_linear_bn_eval: expected a BatchNorm1d or BatchRenorm1d second \(the batch "
                                            r"norm that folds into a Linear\), got ReLU"):
            utils.fuse_linear_bn_eval(linear, nn.ReLU())
        with pytest.raises(TypeError, match="float64 but BatchNorm1d is float32"):
            utils.fuse_linear_bn_eval(linear, nn.BatchNorm1d(4))


def mlp(seed=0):
    mg.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8, dtype=np.float64), nn.BatchNorm1d(8, dtype=np.float64), nn.ReLU(),
                          nn.Sequential(nn.Linear(8, 6, dtype=np.float64), nn.BatchNorm1d(6, dtype=np.float64)),
                          nn.ReLU(), nn.BatchNorm1d(6, dtype=np.float64), nn.Linear(6, 3, dtype=np.float64))
    with mg.train_mode(), mg.no_grad():
        for k in range(5):                             # running statistics away from (0, 1)
            model(data((16, 5), seed=10 + k) * 3 + 1)
    return model


def test_fold_batch_norm_removes_every_foldable_pair_and_keeps_eval_outputs():
    model = mlp()
    before = model.state_dict()
    x = data((9, 5), seed=2)
    with mg.eval_mode():
        folded = utils.fold_batch_norm(model)
        np.testing.assert_allclose(folded(x).data, model(x).data, rtol=1e-12, atol=1e-12)
    kinds = [type(m).__name__ for m in folded.modules()]
    assert kinds.count("BatchNorm1d") == 1             # the one after a ReLU cannot fold
    assert kinds.count("FoldedLinear") == 2 and kinds.count("Linear") == 1   # the last one had no BN
    assert isinstance(folded[2], nn.Sequential) and len(folded[2]) == 1
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)     # the original untouched
    assert len(list(model.modules())) > len(list(folded.modules()))


def test_folding_is_wrong_in_training_mode():
    model = mlp()
    x = data((9, 5), seed=3)
    with mg.eval_mode():
        folded = utils.fold_batch_norm(model)
    with mg.train_mode(), mg.no_grad():
        trained = copy.deepcopy(model)(x).data           # batch statistics of x
        fixed = folded(x).data                           # running statistics folded in
    assert np.abs(trained - fixed).max() > 1e-2


def test_fold_batch_norm_refuses_a_non_sequential():
    with pytest.raises(TypeError, match="expects a Sequential"):
        utils.fold_batch_norm(nn.Linear(2, 2))


# ------------------------------------------------------------------ frozen statistics
def test_a_frozen_layer_normalises_with_running_statistics_and_never_updates_them():
    _, bn = trained_pair()
    utils.freeze_batch_norm(bn)
    before = bn.state_dict()
    x = data((6, 4), seed=4)
    with mg.eval_mode():
        expected = bn(x).data
    with mg.train_mode():
        np.testing.assert_array_equal(bn(x).data, expected)
        bn(data((1, 4), seed=5))                         # a batch of one is fine
    after = bn.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert "frozen=True" in repr(bn)


def test_gradients_flow_through_a_frozen_layer():
    _, bn = trained_pair()
    utils.freeze_batch_norm(bn)
    x = mg.tensor(data((6, 4), seed=6).data, requires_grad=True)
    g = np.random.default_rng(7).standard_normal((6, 4))
    with mg.train_mode():
        bn(x).backward(g)
    s = bn.weight.data / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(x.grad, g * s, rtol=1e-12)                     # dx = dy · s
    x_hat = (x.data - bn.running_mean) / np.sqrt(bn.running_var + bn.eps)
    np.testing.assert_allclose(bn.weight.grad, (g * x_hat).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, g.sum(axis=0), rtol=1e-12)
    bn.weight.grad = bn.bias.grad = None
    bn.weight.requires_grad_(False)                                         # γ frozen too
    with mg.train_mode():
        bn(x).backward(g)
    assert bn.weight.grad is None and bn.bias.grad is not None


def test_frozen_survives_deepcopy_and_state_dict_round_trips():
    model = mlp()
    utils.freeze_batch_norm(model)
    clone = copy.deepcopy(model)
    assert all(m.frozen for m in clone.modules() if isinstance(m, nn.BatchNorm1d))
    state = model.state_dict()
    assert not any("frozen" in k for k in state)                             # PyTorch's keys only
    model.load_state_dict(state)
    assert all(m.frozen for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    utils.freeze_batch_norm(model, frozen=False)
    assert not any(m.frozen for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    with mg.train_mode():
        model[1](data((4, 8), seed=8))
    assert int(model[1].num_batches_tracked) == 6                            # updates again


def test_freezing_a_layer_without_running_statistics_is_refused():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError, match="cannot be frozen"):
        utils.freeze_batch_norm(model)
    assert not model[0].frozen                                               # nothing half-done


def trained_conv_pair(dims, bias=True, dtype=np.float64, seed=2):
    """A Conv1d/2d(3, 4, 3) and a BatchNorm1d/2d(4) with non-trivial γ, β and running statistics."""
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(3, 4, 3, padding=1, bias=bias, dtype=dtype)
    bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(4, dtype=dtype)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, 4)
    bn.bias.data[...] = rng.standard_normal(4)
    bn.running_mean[...] = rng.standard_normal(4)
    bn.running_var[...] = rng.uniform(0.2, 3.0, 4)
    return conv, bn


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_conv_equals_conv_then_bn_in_eval_mode(dims, bias):
    conv, bn = trained_conv_pair(dims, bias)
    x = data((2, 3, 6) if dims == 1 else (2, 3, 5, 4))
    with mg.eval_mode():
        fused = utils.fuse_conv_bn_eval(conv, bn)
        np.testing.assert_allclose(fused(x).data, bn(conv(x)).data, rtol=1e-12, atol=1e-12)
    s = bn.weight.data / np.sqrt(bn.running_var + bn.eps)        # per output channel
    np.testing.assert_allclose(fused.weight.data, conv.weight.data * s.reshape(-1, *[1] * (dims + 1)),
                               rtol=1e-14)
    b = conv.bias.data if bias else 0.0
    np.testing.assert_allclose(fused.bias.data, (b - bn.running_mean) * s + bn.bias.data, rtol=1e-14)
    assert type(fused) is type(conv) and fused is not conv and fused.bias is not None
    assert (fused.stride, fused.padding, fused.dilation) == (conv.stride, conv.padding, conv.dilation)


@pytest.mark.parametrize("kind", ["linear", "conv1d", "conv2d"])
def test_fusion_matches_torch_nn_utils_fusion(kind):
    torch = pytest.importorskip("torch")
    from torch.nn.utils import fusion
    if kind == "linear":
        ours, bn = trained_pair()
        theirs = torch.nn.Linear(5, 4, dtype=torch.float64)
        torch_bn, fuse, theirs_fuse = torch.nn.BatchNorm1d(4, dtype=torch.float64), \
            utils.fuse_linear_bn_eval, fusion.fuse_linear_bn_eval
    else:
        dims = int(kind[4])
        ours, bn = trained_conv_pair(dims)
        theirs = (torch.nn.Conv1d if dims == 1 else torch.nn.Conv2d)(3, 4, 3, padding=1, dtype=torch.float64)
        torch_bn = (torch.nn.BatchNorm1d if dims == 1 else torch.nn.BatchNorm2d)(4, dtype=torch.float64)
        fuse, theirs_fuse = utils.fuse_conv_bn_eval, fusion.fuse_conv_bn_eval
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    torch_bn.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in bn.state_dict().items()})
    with mg.eval_mode():
        mine = fuse(ours, bn)
    reference = theirs_fuse(theirs.eval(), torch_bn.eval())
    np.testing.assert_allclose(mine.weight.data, reference.weight.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(mine.bias.data, reference.bias.detach().numpy(), rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------ BatchRenorm, GroupNorm, LayerNorm
@pytest.mark.parametrize("dims", [0, 1, 2])
def test_batch_renorm_folds_like_batch_norm(dims):
    """Its eval mode is BatchNorm's, whatever r_max and d_max are."""
    mg.manual_seed(3)
    rng = np.random.default_rng(3)
    before = {0: nn.Linear(5, 4, dtype=np.float64), 1: nn.Conv1d(5, 4, 3, dtype=np.float64),
              2: nn.Conv2d(5, 4, 3, dtype=np.float64)}[dims]
    renorm = (nn.BatchRenorm2d if dims == 2 else nn.BatchRenorm1d)(4, r_max=3.0, d_max=5.0, dtype=np.float64)
    renorm.weight.data[...], renorm.bias.data[...] = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    renorm.running_mean[...], renorm.running_var[...] = rng.standard_normal(4), rng.uniform(0.2, 3, 4)
    model = nn.Sequential(before, renorm, nn.ReLU())
    x = data((6, 5) + (7,) * dims, seed=4)
    with mg.eval_mode():
        folded = utils.fold_batch_norm(model)
        np.testing.assert_allclose(folded(x).data, model(x).data, rtol=1e-12, atol=1e-12)
        fuse = utils.fuse_linear_bn_eval if dims == 0 else utils.fuse_conv_bn_eval
        np.testing.assert_allclose(fuse(before, renorm)(x).data, renorm(before(x)).data, rtol=1e-12, atol=1e-12)
    assert [type(m).__name__ for m in folded] == [{0: "FoldedLinear"}.get(dims, type(before).__name__), "ReLU"]


@pytest.mark.parametrize("norm", [nn.GroupNorm(2, 4, dtype=np.float64), nn.LayerNorm(4, dtype=np.float64)],
                         ids=["GroupNorm", "LayerNorm"])
def test_group_and_layer_norm_do_not_fold(norm):
    linear = nn.Linear(5, 4, dtype=np.float64)
    with mg.eval_mode():
        with pytest.raises(TypeError, match=f"{type(norm).__name__} does not fold: it normalises each sample "
                                            f"with statistics computed at inference from that sample itself"):
            utils.fuse_linear_bn_eval(linear, norm)
        model = nn.Sequential(linear, norm)
        folded = utils.fold_batch_norm(model)                 # left as it is, still equal
        x = data((3, 5), seed=5)
        np.testing.assert_array_equal(folded(x).data, model(x).data)
    assert [type(m) for m in folded] == [nn.Linear, type(norm)]


def test_batch_renorm_schedule_follows_the_paper_by_default():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchRenorm1d(4), nn.Sequential(nn.BatchRenorm1d(4)), nn.BatchNorm1d(4))
    expected = {0: (1.0, 0.0), 5000: (1.0, 0.0), 15000: (1 + 2 * 10 / 35, 5 * 10 / 20),
                25000: (1 + 2 * 20 / 35, 5.0), 40000: (3.0, 5.0), 10**6: (3.0, 5.0)}
    for step, bounds in expected.items():
        got = utils.batch_renorm_schedule(model, step)
        np.testing.assert_allclose(got, bounds, rtol=1e-12)
        for m in (model[1], model[2][0]):
            assert (m.r_max, m.d_max) == got
    assert not hasattr(model[3], "r_max")


def test_batch_renorm_schedule_options_and_errors():
    layer = nn.BatchRenorm1d(2)
    assert utils.batch_renorm_schedule(layer, 15, r_max=2.0, d_max=1.0, warmup=10, r_max_step=20,
                                       d_max_step=10) == (1.5, 1.0)
    assert utils.batch_renorm_schedule(layer, 9, warmup=10, r_max_step=10, d_max_step=10) == (1.0, 0.0)
    assert utils.batch_renorm_schedule(layer, 10, warmup=10, r_max_step=10, d_max_step=10) == (3.0, 5.0)
    assert utils.batch_renorm_schedule(layer, 1, warmup=0, r_max_step=4, d_max_step=2) == (1.5, 2.5)
    assert utils.batch_renorm_schedule(layer, 10**6, r_max=1, d_max=0) == (1.0, 0.0)   # the edges: BN
    for kwargs, match in (({"step": -1}, "step must be an int >= 0"), ({"step": 1.5}, "step must be an int"),
                          ({"step": 0, "r_max": 0.5}, "final bounds must be r_max >= 1 and d_max >= 0"),
                          ({"step": 0, "d_max": -1.0}, "final bounds"),
                          ({"step": 0, "warmup": 30000}, r"no later than it ends \(r_max_step=40000, d_max_step=25000\)"),
                          ({"step": 0, "warmup": -1}, r"the ramp must start \(warmup=-1\) at 0 or later")):
        with pytest.raises(ValueError, match=match):
            utils.batch_renorm_schedule(layer, **kwargs)
    with pytest.raises(ValueError, match="Sequential has no BatchRenorm layer"):
        utils.batch_renorm_schedule(nn.Sequential(nn.BatchNorm1d(2)), 0)


# ------------------------------------------------------------------ only where the algebra holds
def eval_trained(model, x):
    """``model`` with running statistics away from (0, 1), from three training batches like ``x``."""
    with mg.train_mode(), mg.no_grad():
        for k in range(3):
            model(mg.tensor(x.data * (1 + k) + k))
    return model


def test_a_linear_whose_batch_norm_normalises_another_axis_is_refused_not_folded_wrongly():
    # Linear(6, 4) on (N, 4, 6) input maps the last axis; BatchNorm1d(4) normalises axis 1 (C = 4),
    # not the Linear's 4 outputs: no Linear equals them, though the feature counts agree
    mg.manual_seed(0)
    x = data((5, 4, 6), seed=12)
    model = eval_trained(nn.Sequential(nn.Linear(6, 4, dtype=np.float64), nn.BatchNorm1d(4, dtype=np.float64)), x)
    with mg.eval_mode():
        folded = utils.fold_batch_norm(model)
        expected = model(x).data
        with pytest.raises(ValueError, match=r"FoldedLinear .* takes input of shape \(N, 6\), got shape "
                                             r"\(5, 4, 6\): .*batch norm normalised another axis"):
            folded(x)
        flat = data((7, 6), seed=13)                    # on (N, features) input the fold holds
        np.testing.assert_allclose(folded(flat).data, model(flat).data, rtol=1e-12, atol=1e-12)
        fused = utils.fuse_linear_bn_eval(model[0], model[1])
        with pytest.raises(ValueError, match="takes input of shape"):
            fused(x)
    assert expected.shape == (5, 4, 4)


def test_a_linear_on_three_axes_with_a_batch_norm_of_another_width_is_refused_at_folding():
    mg.manual_seed(1)
    x = data((5, 3, 6), seed=14)
    model = eval_trained(nn.Sequential(nn.Linear(6, 4, dtype=np.float64), nn.BatchNorm1d(3, dtype=np.float64)), x)
    with mg.eval_mode():
        model(x)                                        # the model itself runs
        with pytest.raises(ValueError, match=r"Linear has 4 outputs but BatchNorm1d has 3 features: it must "
                                             r"normalise another axis .* and then it does not fold"):
            utils.fold_batch_norm(model)


def layers_and_norms():
    from minigrad.nn import conv
    return {"Linear": nn.Linear(3, 4, dtype=np.float64), "Conv1d": conv.Conv1d(3, 4, 3, dtype=np.float64),
            "Conv2d": conv.Conv2d(3, 4, 3, dtype=np.float64), "ReLU": nn.ReLU(),
            "BatchNorm1d": nn.BatchNorm1d(4, dtype=np.float64), "BatchNorm2d": nn.BatchNorm2d(4, dtype=np.float64)}


@pytest.mark.parametrize("fuse, first, second, message", [
    ("fuse_linear_bn_eval", "ReLU", "BatchNorm1d", r"fuse_linear_bn_eval: expected a Linear first, got ReLU"),
    ("fuse_linear_bn_eval", "Conv1d", "BatchNorm1d", r"expected a Linear first, got Conv1d"),
    ("fuse_linear_bn_eval", "Linear", "BatchNorm2d", r"expected a BatchNorm1d or BatchRenorm1d second .*Linear\), got BatchNorm2d"),
    ("fuse_conv_bn_eval", "ReLU", "BatchNorm1d", r"fuse_conv_bn_eval: expected a Conv1d or Conv2d first, got ReLU"),
    ("fuse_conv_bn_eval", "Linear", "BatchNorm1d", r"expected a Conv1d or Conv2d first, got Linear"),
    ("fuse_conv_bn_eval", "Conv1d", "BatchNorm2d", r"expected a BatchNorm1d or BatchRenorm1d second .*Conv1d\), got BatchNorm2d"),
    ("fuse_conv_bn_eval", "Conv2d", "BatchNorm1d", r"expected a BatchNorm2d or BatchRenorm2d second .*Conv2d\), got BatchNorm1d"),
    ("fuse_conv_bn_eval", "Conv2d", "ReLU", r"expected a BatchNorm2d or BatchRenorm2d second .*got ReLU"),
])
def test_the_fusions_name_what_they_expected_and_what_came(fuse, first, second, message):
    parts = layers_and_norms()
    with mg.eval_mode(), pytest.raises(TypeError, match=message):
        getattr(utils, fuse)(parts[first], parts[second])


def test_a_subclass_is_not_folded_as_its_base():
    class Scaled(nn.Linear):                            # computes something else than a Linear
        def forward(self, x):
            return super().forward(x) * 2.0

    layer, bn = Scaled(3, 4, dtype=np.float64), nn.BatchNorm1d(4, dtype=np.float64)
    with mg.eval_mode():
        with pytest.raises(TypeError, match="expected a Linear first, got Scaled"):
            utils.fuse_linear_bn_eval(layer, bn)
        folded = utils.fold_batch_norm(nn.Sequential(layer, bn))       # left as it is: still equal
        x = data((4, 3))
        np.testing.assert_array_equal(folded(x).data, bn(layer(x)).data)
    assert [type(m).__name__ for m in folded] == ["Scaled", "BatchNorm1d"]


@pytest.mark.parametrize("dims", [1, 2])
def test_fold_batch_norm_folds_every_convolution_pair_and_leaves_mismatched_pairs(dims):
    from minigrad.nn import conv
    Conv, BN, Other = ((conv.Conv1d, nn.BatchNorm1d, nn.BatchNorm2d) if dims == 1 else
                       (conv.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d))
    mg.manual_seed(dims)
    x = data((4, 2, 7) if dims == 1 else (4, 2, 5, 6), seed=15)
    model = eval_trained(nn.Sequential(Conv(2, 3, 3, dtype=np.float64), BN(3, dtype=np.float64), nn.ReLU(),
                                       nn.Sequential(Conv(3, 3, 3, padding=1, dtype=np.float64), BN(3, dtype=np.float64)),
                                       Conv(3, 2, 1, bias=False, dtype=np.float64)), x)
    with mg.eval_mode():
        folded = utils.fold_batch_norm(model)
        np.testing.assert_allclose(folded(x).data, model(x).data, rtol=1e-12, atol=1e-12)
    assert [type(m).__name__ for m in folded.modules()] == ["Sequential", Conv.__name__, "ReLU", "Sequential",
                                                            Conv.__name__, Conv.__name__]
    with mg.eval_mode():                                # a conv before the other kind: not a pair
        mismatched = utils.fold_batch_norm(nn.Sequential(Conv(2, 3, 3, dtype=np.float64), Other(3, dtype=np.float64)))
    assert [type(m).__name__ for m in mismatched] == [Conv.__name__, Other.__name__]


# ------------------------------------------------------------------ recompute_bn_stats
def population_model():
    mg.manual_seed(20)
    model = nn.Sequential(nn.BatchNorm1d(C, momentum=None, dtype=np.float64),
                          nn.Linear(C, 2, dtype=np.float64),
                          nn.BatchNorm1d(2, momentum=0.1, dtype=np.float64))
    model[0].weight.data[...] = [1.5, 0.5, 2.0]
    model[0].bias.data[...] = [0.1, -0.2, 0.3]
    return model


@pytest.mark.parametrize("training_before", [True, False])
def test_recompute_bn_stats_against_a_hand_computation(training_before):
    model = population_model()
    rng = np.random.default_rng(21)
    with mg.train_mode():                              # stale statistics that must be replaced
        model(mg.tensor(rng.standard_normal((10, C)) * 5 + 7))
    sizes = (5, 8, 3)
    xs = [rng.standard_normal((n, C)) * (i + 1) + 2 * i for i, n in enumerate(sizes)]
    batches = [(xs[0], np.zeros(5)), xs[1], mg.tensor(xs[2])]   # (X, y) pairs, arrays, Tensors
    mg.set_training(training_before)

    assert nn.recompute_bn_stats(model, batches) == 3

    assert mg.is_training() is training_before and mg.is_grad_enabled()
    assert model[0].momentum is None and model[2].momentum == 0.1
    assert all(p.grad is None for p in model.parameters())
    total = sum(sizes)
    # first BN sees the batches themselves
    expected_mean = sum(n * x.mean(0) for n, x in zip(sizes, xs)) / total
    expected_var = sum(n * x.var(0, ddof=1) for n, x in zip(sizes, xs)) / total
    np.testing.assert_allclose(model[0].running_mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(model[0].running_var, expected_var, rtol=1e-12)
    # second BN sees Linear(batch-normalised batch), normalised with each batch's own statistics
    w1, b1 = model[0].weight.data, model[0].bias.data
    lin = model[1]
    hidden = [reference_bn(x, w1, b1)[0] @ lin.weight.data.T + lin.bias.data for x in xs]
    expected_mean = sum(n * h.mean(0) for n, h in zip(sizes, hidden)) / total
    expected_var = sum(n * h.var(0, ddof=1) for n, h in zip(sizes, hidden)) / total
    np.testing.assert_allclose(model[2].running_mean, expected_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model[2].running_var, expected_var, rtol=1e-12)


def test_recompute_bn_stats_restores_momentum_after_an_error():
    model = population_model()
    bad = [np.ones((4, C)), np.ones((1, C))]           # the second batch has one value per channel
    mg.set_training(False)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.recompute_bn_stats(model, bad)
    assert model[0].momentum is None and model[2].momentum == 0.1 and mg.is_training() is False


def test_recompute_bn_stats_needs_batches():
    with pytest.raises(ValueError, match="no batches"):
        nn.recompute_bn_stats(population_model(), [])


def test_recompute_bn_stats_is_all_or_nothing():
    model = population_model()
    with mg.train_mode():
        model(mg.tensor(np.random.default_rng(3).standard_normal((6, C))))
    before = model.state_dict()
    for bad in ([np.ones((4, C)) * 3, np.ones((1, C))], []):
        with pytest.raises(ValueError):
            nn.recompute_bn_stats(model, bad)
        after = model.state_dict()
        assert all(np.array_equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="estimator must be 'paper' or 'pooled'"):
        nn.recompute_bn_stats(model, [np.ones((4, C))], estimator="ema")
    nn.recompute_bn_stats(model, [np.ones((4, C)) * np.arange(4)[:, None]])
    assert all(not m._forward_pre_hooks for m in model.modules())     # its hooks are gone again


def test_recompute_bn_stats_pooled_estimator_is_the_variance_of_all_values():
    """PreciseBN's estimator: the biased variance of every value around the population mean,
    which also counts how the batch means scatter (the paper's estimator does not)."""
    model = population_model()
    rng = np.random.default_rng(22)
    sizes = (5, 8, 3)
    xs = [rng.standard_normal((n, C)) * (i + 1) + 3 * i for i, n in enumerate(sizes)]
    assert nn.recompute_bn_stats(model, xs, estimator="pooled") == 3
    everything = np.concatenate(xs)
    np.testing.assert_allclose(model[0].running_mean, everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(model[0].running_var, everything.var(0), rtol=1e-12)   # ddof=0
    paper = population_model()
    nn.recompute_bn_stats(paper, xs)
    assert np.all(model[0].running_var > paper[0].running_var)      # the means' scatter counts


def test_recompute_bn_stats_on_conv_shaped_input_counts_every_position():
    layer = nn.BatchNorm2d(2, momentum=0.3, dtype=np.float64)
    mg.nn.utils.freeze_batch_norm(layer)                            # frozen layers are recomputed too
    rng = np.random.default_rng(23)
    xs = [rng.standard_normal((n, 2, 3, 2)) + i for i, n in enumerate((2, 5))]
    for estimator in ("paper", "pooled"):
        nn.recompute_bn_stats(layer, xs, estimator=estimator)
        values = [x.transpose(1, 0, 2, 3).reshape(2, -1) for x in xs]          # (C, N·H·W)
        weights = np.array([v.shape[1] for v in values])                       # 12 and 30 values
        mean = sum(w * v.mean(1) for w, v in zip(weights, values)) / weights.sum()
        np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-12)
        if estimator == "paper":
            var = sum(w * v.var(1, ddof=1) for w, v in zip(weights, values)) / weights.sum()
        else:
            var = np.concatenate(values, axis=1).var(1)
        np.testing.assert_allclose(layer.running_var, var, rtol=1e-12)
    assert layer.frozen and layer.momentum == 0.3 and int(layer.num_batches_tracked) == 0
