"""examples/train_cnn.py: metrics with the test accuracy at the end, exact resume after an
interruption, the bar, the figure's title, bad arguments (the models and data: helpers/test_models.py)."""
import json

import numpy as np
import pytest

import minigrad as mg

from .loader import load_example

from helpers import plots, runs  # noqa: E402  (examples/helpers: loader puts examples/ on sys.path)

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
])
def test_bad_arguments_exit_with_one_line(train_cnn, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train_cnn.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_the_figure_names_batch_norm_and_the_test_accuracy(train_cnn, tmp_path, monkeypatch, capsys):
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
    assert seen[1][0].get_suptitle().startswith("Logistic regression with no batch norm on MNIST-1D (positions "
                                                "shuffled): test accuracy")
    plots.pyplot().close(seen[1][0])


def test_the_last_metrics_row_of_a_resumed_finished_run_keeps_its_test_accuracy(train_cnn, tmp_path):
    ckpt, metrics = tmp_path / "run.npz", tmp_path / "m.jsonl"
    first = train_cnn.main([*TINY, "--model", "logistic", "--save", str(ckpt)])
    again = train_cnn.main(["--resume", str(ckpt), "--quiet", "--metrics", str(metrics)])
    assert again["test_acc"] == first["test_acc"]
    assert [json.loads(line)["epoch"] for line in metrics.read_text().splitlines()] == [1, 2]
