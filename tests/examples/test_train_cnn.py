"""examples/train_cnn.py and cnn_table.py: the models' shapes, metrics with the test accuracy at
the end, exact resume, the fixed permutation, bad arguments, and SGD steps that track PyTorch."""
import json

import numpy as np
import pytest

import minigrad as mg

from .loader import load_example

TINY = ["--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def train_cnn():
    return load_example("train_cnn")


@pytest.mark.parametrize("data, model, shape, n_params", [
    ("mnist1d", "cnn", (5, 1, 40), 2 * 3 + 2 * 3 + 2),          # 3 convs + 3 BNs + linear
    ("mnist1d", "mlp", (5, 40), 2 * 3 + 2 * 2),
    ("mnist1d", "logistic", (5, 40), 2),
    ("digits", "cnn", (5, 1, 8, 8), 2 * 2 + 2 * 2 + 2),
])
def test_models_map_their_input_to_ten_logits(train_cnn, data, model, shape, n_params):
    mg.manual_seed(0)
    net = train_cnn.build_model(data, model, "fused")
    with mg.eval_mode():
        assert net(mg.tensor(np.zeros(shape, np.float32))).shape == (5, 10)
    assert len(list(net.parameters())) == n_params


def test_data_are_shaped_per_model_and_the_permutation_is_fixed(train_cnn):
    X_train, y_train, X_val, y_val, X_test, y_test = train_cnn.load("mnist1d", "cnn", False)
    assert X_train.shape == (3600, 1, 40) and X_val.shape == (400, 1, 40) and X_test.shape == (1000, 1, 40)
    assert np.bincount(y_val).min() >= 35                          # stratified: ~40 per class
    flat = train_cnn.load("mnist1d", "mlp", False)
    np.testing.assert_array_equal(flat[0], X_train.reshape(3600, 40))
    shuffled = train_cnn.load("mnist1d", "mlp", True)
    order = np.random.default_rng(train_cnn.PERMUTATION_SEED).permutation(40)
    np.testing.assert_array_equal(shuffled[0], flat[0][:, order])   # one fixed permutation...
    np.testing.assert_array_equal(shuffled[4], flat[4][:, order])   # ...for every split
    assert not np.array_equal(order, np.arange(40))
    digits = train_cnn.load("digits", "cnn", False)
    assert digits[0].shape[1:] == (1, 8, 8) and len(digits[4]) == 359


def test_metrics_have_one_object_per_epoch_and_the_test_accuracy_last(train_cnn, tmp_path):
    path = tmp_path / "m.jsonl"
    result = train_cnn.main([*TINY, "--metrics", str(path), "--model", "logistic"])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert "test_acc" not in rows[0] and rows[-1]["test_acc"] == result["test_acc"]
    for r in rows:
        assert set(r) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
        assert 0 <= r["val_acc"] <= 1


def test_a_run_stopped_after_epoch_one_resumes_to_the_same_numbers(train_cnn, tmp_path, monkeypatch):
    ckpt = tmp_path / "run.npz"
    args = ["--epochs", "2", "--seed", "5", "--quiet", "--data", "digits", "--save", str(ckpt)]
    straight = train_cnn.main(args[:-2])
    real, calls = train_cnn.common.train_epoch, []

    def stop_in_the_second_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(train_cnn.common, "train_epoch", stop_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_cnn.main(args)
    monkeypatch.setattr(train_cnn.common, "train_epoch", real)
    resumed = train_cnn.main(["--resume", str(ckpt), "--quiet"])
    for a, b in zip(resumed["history"], straight["history"]):
        assert a["val_loss"] == b["val_loss"] and a["train_loss"] == b["train_loss"]
    assert resumed["test_acc"] == straight["test_acc"]


def test_cosine_schedule_goes_from_lr_towards_zero(train_cnn):
    config = {"lr": 0.01, "epochs": 4, "schedule": "cosine"}
    rates = [train_cnn.learning_rate(config, e) for e in range(1, 5)]
    np.testing.assert_allclose(rates, [0.01, 0.01 * (1 + np.cos(np.pi / 4)) / 2, 0.005,
                                       0.01 * (1 + np.cos(3 * np.pi / 4)) / 2])
    assert train_cnn.learning_rate({**config, "schedule": "constant"}, 3) == 0.01


@pytest.mark.parametrize("args, message", [
    (["--data", "mnist"], "argument --data: invalid choice: 'mnist'"),
    (["--model", "rnn"], "argument --model: invalid choice: 'rnn'"),
    (["--batch-size", "1"], "argument --batch-size: expected an integer >= 2"),
    (["--lr", "inf"], "argument --lr: expected a number > 0"),
    (["--metrics", "no/such/dir/m.jsonl"], "the folder of 'no/such/dir/m.jsonl' does not exist"),
    (["--resume", "no/such.npz"], "--resume: no checkpoint at 'no/such.npz'"),
])
def test_bad_arguments_exit_with_one_line(train_cnn, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train_cnn.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_table_rows_and_format(capsys):
    table = load_example("cnn_table")
    results = table.main(["--seeds", "0", "--epochs", "1", "--rows", "logistic regression;CNN + BN (fused)"])
    assert set(results) == {"logistic regression", "CNN + BN (fused)"}
    out = capsys.readouterr().out
    assert "| logistic regression |" in out and "| 0.32 |" in out
    with pytest.raises(SystemExit):
        table.main(["--rows", "transformer"])


# ------------------------------------------------------------------ against PyTorch
@pytest.mark.parametrize("data", ["mnist1d", "digits"])
def test_a_few_sgd_steps_track_torch(train_cnn, data):
    torch = pytest.importorskip("torch")
    mg.manual_seed(3)
    net = train_cnn.build_model(data, "cnn", "fused")
    twin = train_cnn.torch_twin(net, torch)
    X_train, y_train = train_cnn.load(data, "cnn", False)[:2]
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
