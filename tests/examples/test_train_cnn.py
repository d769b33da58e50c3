"""examples/train_cnn.py: metrics with the test accuracy at the end, exact resume after an
interruption, the bar, the figure's title, --norm (and --bn none, its old spelling), BatchRenorm's
schedule, bad arguments (the models and data: helpers/test_models.py)."""
import json

import numpy as np
import pytest

import minigrad as mg

from .loader import load_example

from helpers import models, plots, runs  # noqa: E402  (examples/helpers: loader puts examples/ on sys.path)

TINY = ["--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def train_cnn():
    return load_example("train_cnn")


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
    real, calls = runs.Log.epoch_done, []

    def stop_in_the_second_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2:                    # Ctrl-C before epoch 2 is recorded or saved
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(runs.Log, "epoch_done", stop_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_cnn.main(args)
    monkeypatch.setattr(runs.Log, "epoch_done", real)
    assert int(mg.load(ckpt)["epoch"]) == 1
    resumed = train_cnn.main(["--resume", str(ckpt), "--quiet"])
    for a, b in zip(resumed["history"], straight["history"]):
        assert a["val_loss"] == b["val_loss"] and a["train_loss"] == b["train_loss"]
    assert resumed["test_acc"] == straight["test_acc"]


@pytest.mark.parametrize("args, message", [
    (["--data", "mnist"], "argument --data: invalid choice: 'mnist'"),
    (["--model", "rnn"], "argument --model: invalid choice: 'rnn'"),
    (["--batch-size", "1"], "argument --batch-size: expected an integer >= 2"),
    (["--lr", "inf"], "argument --lr: expected a number > 0"),
    (["--metrics", "no/such/dir/m.jsonl"], "the folder of 'no/such/dir/m.jsonl' does not exist"),
    (["--resume", "no/such.npz"], "--resume: no checkpoint at 'no/such.npz'"),
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1"),
    (["--norm", "batchnorm"], "argument --norm: invalid choice: 'batchnorm' (choose from batch, renorm, group, "
                              "layer, none)"),
    (["--bn", "none", "--norm", "group"], "--bn none means no normalisation but --norm group asks for one"),
    (["--model", "mlp", "--norm", "group"], "--norm group needs a CNN (it groups a conv layer's channels)"),
])
def test_bad_arguments_exit_with_one_line(train_cnn, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train_cnn.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_the_figure_names_the_normalisation_and_the_test_accuracy(train_cnn, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    seen = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path, text: seen.append((fig, path, text)))
    result = train_cnn.main([*TINY, "--data", "digits", "--plot", str(tmp_path / "curves")])
    fig, path, text = seen[0]
    assert path == str(tmp_path / "curves.png")                  # no suffix: matplotlib's .png
    title = fig.get_suptitle()
    assert "CNN with BatchNorm2d (fused) on the 8x8 digits" in title
    assert f"test accuracy {result['test_acc']:.4f} after 2 epochs" in title
    assert "python examples/train_cnn.py" in text and "--data digits" in text
    plots.pyplot().close(fig)
    train_cnn.main([*TINY, "--model", "logistic", "--shuffle-positions", "--plot", str(tmp_path / "lr.png")])
    assert seen[1][0].get_suptitle().startswith("Logistic regression with no normalisation on MNIST-1D (positions "
                                                "shuffled): test accuracy")
    plots.pyplot().close(seen[1][0])
    train_cnn.main([*TINY, "--epochs", "1", "--norm", "group", "--bn", "composed", "--plot", str(tmp_path / "g.png")])
    assert seen[2][0].get_suptitle().startswith("CNN with GroupNorm (composed) on MNIST-1D: test accuracy")
    plots.pyplot().close(seen[2][0])
    train_cnn.main([*TINY, "--epochs", "1", "--norm", "renorm", "--data", "digits", "--plot", str(tmp_path / "r.png")])
    assert seen[3][0].get_suptitle().startswith("CNN with BatchRenorm2d (fused) on the 8x8 digits")
    plots.pyplot().close(seen[3][0])


def test_the_last_metrics_row_of_a_resumed_finished_run_keeps_its_test_accuracy(train_cnn, tmp_path):
    ckpt, metrics = tmp_path / "run.npz", tmp_path / "m.jsonl"
    first = train_cnn.main([*TINY, "--model", "logistic", "--save", str(ckpt)])
    again = train_cnn.main(["--resume", str(ckpt), "--quiet", "--metrics", str(metrics)])
    assert again["test_acc"] == first["test_acc"]
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2]


def norm_kinds(model):
    return [type(m).__name__ for m in model.modules()
            if type(m).__name__ in ("BatchNorm1d", "BatchRenorm1d", "GroupNorm", "LayerNorm")]


@pytest.mark.parametrize("norm, kinds", [("batch", ["BatchNorm1d"] * 3), ("renorm", ["BatchRenorm1d"] * 3),
                                         ("group", ["GroupNorm"] * 3), ("layer", ["LayerNorm"] * 3), ("none", [])])
def test_norm_builds_that_normalisation(train_cnn, norm, kinds):
    result = train_cnn.main(["--epochs", "1", "--quiet", "--norm", norm])
    assert norm_kinds(result["model"]) == kinds and result["config"]["norm"] == norm


def test_bn_none_from_before_norm_is_norm_none(train_cnn):
    old = train_cnn.main(["--epochs", "1", "--quiet", "--bn", "none"])
    new = train_cnn.main(["--epochs", "1", "--quiet", "--norm", "none"])
    assert norm_kinds(old["model"]) == [] and old["config"]["norm"] == "none"
    assert old["test_acc"] == new["test_acc"] and old["config"] == new["config"]


def test_batch_renorm_relaxes_its_bounds_over_every_step_of_the_run(train_cnn, monkeypatch):
    seen, real = [], models.renorm_bounds
    monkeypatch.setattr(models, "renorm_bounds", lambda model, step, steps: seen.append((step, steps))
                        or real(model, step, steps))
    result = train_cnn.main(["--epochs", "2", "--quiet", "--norm", "renorm", "--data", "digits"])
    per_epoch = -(-len(models.load_data("digits", "cnn", False)[1]) // 100)   # the loader's batches of 100
    assert seen == [(k, 2 * per_epoch) for k in range(2 * per_epoch)]
    assert {(m.r_max, m.d_max) for m in result["model"].modules() if hasattr(m, "r_max")} == {(3.0, 5.0)}


def test_a_resumed_renorm_run_continues_its_schedule(train_cnn, tmp_path, monkeypatch):
    ckpt = tmp_path / "renorm.npz"
    args = ["--epochs", "2", "--quiet", "--norm", "renorm", "--data", "digits", "--seed", "3"]
    straight = train_cnn.main(args)
    real, calls = runs.Log.epoch_done, []

    def stop_in_the_second_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(runs.Log, "epoch_done", stop_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_cnn.main([*args, "--save", str(ckpt)])
    monkeypatch.setattr(runs.Log, "epoch_done", real)
    resumed = train_cnn.main(["--resume", str(ckpt), "--quiet"])
    assert resumed["config"]["norm"] == "renorm"
    assert [r["val_loss"] for r in resumed["history"]] == [r["val_loss"] for r in straight["history"]]


def test_the_run_is_described_by_its_model_normalisation_and_form(train_cnn, capsys):
    config = {"model": "cnn", "norm": "group", "bn": "composed", "shuffle_positions": False, "sync_bn": False}
    assert train_cnn.describe(config) == "cnn, norm=group (composed)"
    assert train_cnn.describe({**config, "norm": "batch", "sync_bn": True}) == "cnn, norm=batch (composed), SyncBatchNorm"
    assert train_cnn.describe({**config, "model": "logistic"}) == "logistic, norm=none"
    assert train_cnn.describe({**config, "model": "mlp", "norm": "none", "shuffle_positions": True}) == \
        "mlp, norm=none, shuffled positions"
    train_cnn.main(["--epochs", "1", "--quiet", "--norm", "layer"])
    assert "mnist1d cnn, norm=layer (fused) seed 0: test accuracy" in capsys.readouterr().out


def test_the_defaults_are_the_documented_run(train_cnn, monkeypatch):
    """docs/examples.md: AdamW lr 1e-2 on a cosine over 100 epochs, batch 100, BatchNorm, fused."""
    assert train_cnn.DEFAULTS == {"data": "mnist1d", "model": "cnn", "norm": "batch", "bn": "fused",
                                  "sync_bn": False, "shuffle_positions": False, "epochs": 100, "batch_size": 100, "lr": 1e-2,
                                  "schedule": "cosine", "seed": 0}
    rates, real = [], mg.optim.AdamW.step

    def step(optimizer):
        rates.append(optimizer.param_groups[0]["lr"])
        return real(optimizer)
    monkeypatch.setattr(mg.optim.AdamW, "step", step)
    train_cnn.main(["--epochs", "2", "--quiet", "--model", "logistic", "--lr", "0.3"])
    per_epoch = len(rates) // 2                                    # the cosine, epoch by epoch
    second = models.learning_rate({"schedule": "cosine", "lr": 0.3, "epochs": 2}, 2)
    assert rates == [0.3] * per_epoch + [second] * per_epoch and second == pytest.approx(0.15)


def test_epoch_metrics_are_the_initial_models_at_a_vanishing_learning_rate(train_cnn):
    """lr 1e-12: the weights stay (to ~1e-12) where seed 0 put them, so the epoch's training loss and
    accuracy (summed over its batches) and the validation numbers are the initial model's."""
    result = train_cnn.main(["--epochs", "1", "--quiet", "--model", "logistic", "--lr", "1e-12"])
    X_train, y_train, X_val, y_val = models.load_data("mnist1d", "logistic", False)[:4]
    mg.manual_seed(0)
    initial = models.build_model("mnist1d", "logistic", "fused")
    with mg.no_grad():
        for X, y, key in ((X_train, y_train, "train"), (X_val, y_val, "val")):
            logits = initial(mg.tensor(X))
            row = result["history"][0]
            assert row[f"{key}_loss"] == pytest.approx(float(mg.nn.functional.cross_entropy(logits, y).data), rel=1e-5)
            assert row[f"{key}_acc"] == float((logits.data.argmax(axis=1) == y).mean())
