"""examples/helpers/models.py: the models' shapes and sizes, the fixed splits and permutation, the
cosine schedule, and SGD steps that track PyTorch."""
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
@pytest.mark.parametrize("data", ["mnist1d", "digits"])
def test_a_few_sgd_steps_track_torch(data):
    torch = pytest.importorskip("torch")
    mg.manual_seed(3)
    net = models.build_model(data, "cnn", "fused")
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
