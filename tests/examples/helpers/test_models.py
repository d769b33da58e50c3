"""examples/helpers/models.py: the models' shapes and sizes with every normalisation, the fixed splits
and permutation, the cosine and BatchRenorm schedules, and SGD steps that track PyTorch."""
import numpy as np
import pytest

import minigrad as mg

from ..loader import EXAMPLES  # noqa: F401  (puts examples/ on sys.path)

from helpers import models  # noqa: E402


@pytest.mark.parametrize("data, model, shape, n_params", [
    ("mnist1d", "cnn", (5, 1, 40), 2 * 3 + 2 * 3 + 2),          # 3 convs + 3 BNs + linear
    ("mnist1d", "mlp", (5, 40), 2 * 3 + 2 * 2),
    ("mnist1d", "logistic", (5, 40), 2),
    ("digits", "cnn", (5, 1, 8, 8), 2 * 2 + 2 * 2 + 2),
])
def test_models_map_their_input_to_ten_logits(data, model, shape, n_params):
    mg.manual_seed(0)
    net = models.build_model(data, model, "fused")
    with mg.eval_mode():
        assert net(mg.tensor(np.zeros(shape, np.float32))).shape == (5, 10)
    assert len(list(net.parameters())) == n_params


@pytest.mark.parametrize("bn, layers", [("fused", 7), ("composed", 7), ("none", 5)])
def test_build_mlp(bn, layers):
    net = models.build_mlp((16, 8), bn)
    assert len(net) == layers
    kinds = [type(m).__name__ for m in net]
    assert kinds.count("BatchNorm1d") == (0 if bn == "none" else 2)
    if bn != "none":
        assert [m.fused for m in net if type(m).__name__ == "BatchNorm1d"] == [bn == "fused"] * 2


NORM_LAYERS = {   # (data, norm) -> the layers after each conv, as (kind, its describing numbers)
    ("mnist1d", "batch"): [("BatchNorm1d", 25)] * 3,
    ("mnist1d", "renorm"): [("BatchRenorm1d", 25)] * 3,
    ("mnist1d", "group"): [("GroupNorm", (5, 25))] * 3,
    ("mnist1d", "layer"): [("LayerNorm", (25, 19)), ("LayerNorm", (25, 10)), ("LayerNorm", (25, 5))],
    ("mnist1d", "none"): [],
    ("digits", "batch"): [("BatchNorm2d", 16), ("BatchNorm2d", 32)],
    ("digits", "renorm"): [("BatchRenorm2d", 16), ("BatchRenorm2d", 32)],
    ("digits", "group"): [("GroupNorm", (4, 16)), ("GroupNorm", (4, 32))],
    ("digits", "layer"): [("LayerNorm", (16, 8, 8)), ("LayerNorm", (32, 4, 4))],
    ("digits", "none"): [],
}


def describe(layer):
    kind = type(layer).__name__
    if kind == "GroupNorm":
        return kind, (layer.num_groups, layer.num_channels)
    if kind == "LayerNorm":
        return kind, layer.normalized_shape
    return kind, layer.num_features


@pytest.mark.parametrize("data, norm", list(NORM_LAYERS))
@pytest.mark.parametrize("bn", ["fused", "composed"])
def test_each_norm_follows_each_conv_in_the_form_asked(data, norm, bn):
    mg.manual_seed(0)
    net = models.build_model(data, "cnn", bn, norm)
    found = [m for m in net if type(m).__name__ not in ("Conv1d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear")]
    assert [describe(m) for m in found] == NORM_LAYERS[(data, norm)]
    assert all(m.fused is (bn == "fused") for m in found)
    for m in found:                                     # right after a conv
        assert type(net[list(net).index(m) - 1]).__name__.startswith("Conv")
    x = np.zeros((3, 1, 40) if data == "mnist1d" else (3, 1, 8, 8), np.float32)
    with mg.train_mode():                               # every layer accepts what the conv gives it
        assert net(mg.tensor(x)).shape == (3, 10)


@pytest.mark.parametrize("norm", ["batch", "renorm"])
def test_momentum_reaches_the_running_statistics_layers(norm):
    layers = [m for m in models.mnist1d_cnn("fused", norm=norm, momentum=0.01) if hasattr(m, "momentum")]
    assert len(layers) == 3 and all(m.momentum == 0.01 for m in layers)
    assert models.norm_layer(norm, (4, 6, 6)).momentum == 0.1                     # PyTorch's, by default
    assert [m.momentum for m in models.build_mlp((4, 3), norm=norm, momentum=None) if hasattr(m, "momentum")] == \
        [None, None]                                                               # bn_inference's cumulative


def test_bn_none_is_norm_none_whatever_norm_says():
    for data in ("mnist1d", "digits"):
        kinds = [type(m).__name__ for m in models.build_model(data, "cnn", "none", "group")]
        assert kinds == [type(m).__name__ for m in models.build_model(data, "cnn", "fused", "none")]
    assert len(models.mnist1d_cnn("none")) == 8 and len(models.build_mlp((4,), "none", norm="layer")) == 3


@pytest.mark.parametrize("norm, kind", [("batch", "BatchNorm1d"), ("renorm", "BatchRenorm1d"), ("layer", "LayerNorm")])
def test_the_mlp_takes_every_norm_but_group(norm, kind):
    net = models.build_model("mnist1d", "mlp", "composed", norm)
    found = [m for m in net if type(m).__name__ == kind]
    assert len(found) == 2 and all(not m.fused for m in found)
    assert (found[0].normalized_shape if kind == "LayerNorm" else found[0].num_features) in ((100,), 100)
    with pytest.raises(ValueError, match="an MLP's hidden features have no channels to group: use norm='layer'"):
        models.build_mlp((8,), norm="group")


@pytest.mark.parametrize("steps", [160, 1000, 37])
def test_renorm_bounds_scale_the_papers_ramp_to_the_run(steps):
    mg.manual_seed(0)
    net = models.mnist1d_cnn("fused", norm="renorm")
    warmup, d_end, r_end = steps // 16, 5 * steps // 16, steps // 2
    assert models.renorm_bounds(net, 0, steps) == (1.0, 0.0)
    assert models.renorm_bounds(net, warmup, steps) == (1.0, 0.0)          # batch norm alone until then
    assert models.renorm_bounds(net, d_end, steps)[1] == 5.0
    assert models.renorm_bounds(net, r_end, steps) == (3.0, 5.0)
    assert models.renorm_bounds(net, steps - 1, steps) == (3.0, 5.0)        # the second half: final bounds
    middle = (warmup + r_end) // 2
    r_max, d_max = models.renorm_bounds(net, middle, steps)
    assert r_max == pytest.approx(1 + 2 * (middle - warmup) / (r_end - warmup))   # linear in between
    assert d_max == pytest.approx(min(5.0, 5 * (middle - warmup) / (d_end - warmup)))
    assert all((m.r_max, m.d_max) == (r_max, d_max) for m in net if type(m).__name__ == "BatchRenorm1d")


@pytest.mark.parametrize("hidden", [(128, 64), (7,), (3, 5, 2)])
def test_mlp_parameters_counts_every_number_the_model_holds(hidden):
    state = models.build_mlp(hidden).state_dict()
    stored = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert models.mlp_parameters(hidden) == stored


def test_data_are_shaped_per_model_and_the_permutation_is_fixed():
    X_train, y_train, X_val, y_val, X_test, y_test = models.load_data("mnist1d", "cnn", False)
    assert X_train.shape == (3600, 1, 40) and X_val.shape == (400, 1, 40) and X_test.shape == (1000, 1, 40)
    assert np.bincount(y_val).min() >= 35                          # stratified: ~40 per class
    flat = models.load_data("mnist1d", "mlp", False)
    np.testing.assert_array_equal(flat[0], X_train.reshape(3600, 40))
    shuffled = models.load_data("mnist1d", "mlp", True)
    order = np.random.default_rng(models.PERMUTATION_SEED).permutation(40)
    np.testing.assert_array_equal(shuffled[0], flat[0][:, order])   # one fixed permutation...
    np.testing.assert_array_equal(shuffled[4], flat[4][:, order])   # ...for every split
    assert not np.array_equal(order, np.arange(40))
    digits = models.load_data("digits", "cnn", False)
    assert digits[0].shape[1:] == (1, 8, 8) and len(digits[4]) == 359


def test_the_digits_split_is_fixed_and_stratified():
    X_train, y_train, X_val, y_val = models.digits_split()
    assert X_train.shape == (1438, 64) and X_val.shape == (359, 64)
    again = models.digits_split()
    np.testing.assert_array_equal(again[3], y_val)
    assert np.bincount(y_val).min() >= 35


def test_optimizers():
    params = list(models.build_mlp((4,)).parameters())
    sgd = models.build_optimizer("sgd", params, 0.05)
    adam = models.build_optimizer("adam", params, 1e-3)
    assert type(sgd).__name__ == "SGD" and sgd.param_groups[0]["momentum"] == 0.9
    assert type(adam).__name__ == "Adam" and adam.param_groups[0]["lr"] == 1e-3


def test_cosine_schedule_goes_from_lr_towards_zero():
    config = {"lr": 0.01, "epochs": 4, "schedule": "cosine"}
    rates = [models.learning_rate(config, e) for e in range(1, 5)]
    np.testing.assert_allclose(rates, [0.01, 0.01 * (1 + np.cos(np.pi / 4)) / 2, 0.005,
                                       0.01 * (1 + np.cos(3 * np.pi / 4)) / 2])
    assert models.learning_rate({**config, "schedule": "constant"}, 3) == 0.01


# ------------------------------------------------------------------ against PyTorch
@pytest.mark.parametrize("data, norm", [("mnist1d", "batch"), ("digits", "batch"), ("mnist1d", "group"),
                                        ("mnist1d", "layer"), ("digits", "group"), ("digits", "layer")])
def test_a_few_sgd_steps_track_torch(data, norm):
    torch = pytest.importorskip("torch")
    mg.manual_seed(3)
    net = models.build_model(data, "cnn", "fused", norm)
    twin = models.torch_twin(net, torch)
    X_train, y_train = models.load_data(data, "cnn", False)[:2]
    ours = mg.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    twin.train()
    for k in range(4):
        xb, yb = X_train[32 * k:32 * (k + 1)], y_train[32 * k:32 * (k + 1)]
        with mg.train_mode():
            loss = mg.nn.functional.cross_entropy(net(mg.tensor(xb)), yb)
        ours.zero_grad()
        loss.backward()
        ours.step()
        loss_t = torch.nn.functional.cross_entropy(twin(torch.from_numpy(xb)), torch.from_numpy(yb))
        theirs.zero_grad()
        loss_t.backward()
        theirs.step()
        assert abs(float(loss.data) - loss_t.item()) < 1e-4
    state, state_t = net.state_dict(), twin.state_dict()
    for key, value in state.items():
        np.testing.assert_allclose(value, state_t[key].numpy(), rtol=2e-4, atol=2e-5, err_msg=key)
    twin.eval()
    with mg.eval_mode(), mg.no_grad(), torch.no_grad():
        np.testing.assert_allclose(net(mg.tensor(X_train[:50])).data,
                                   twin(torch.from_numpy(X_train[:50])).numpy(), rtol=1e-4, atol=1e-4)


def test_torch_has_no_twin_for_batch_renorm():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="PyTorch has no BatchRenorm1d"):
        models.torch_twin(models.mnist1d_cnn("fused", norm="renorm"), torch)
