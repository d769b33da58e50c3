"""examples/helpers/progress.py: one bar for the run, with the last validation accuracy, left on
screen; a batch bar only once an epoch has run BATCH_BAR_AFTER seconds; nothing off a terminal
or with --quiet."""
import io
import sys

import pytest

from ..loader import load_example

from helpers import progress  # noqa: E402  (examples/ is on sys.path: see loader.py)


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(scope="module")
def train_mlp():
    return load_example("train_mlp")


def on_terminal(monkeypatch, train_mlp, *argv):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    result = train_mlp.main(["--hidden", "16", *argv])
    return terminal.getvalue(), result


def test_one_bar_for_the_run_left_on_screen_with_the_validation_accuracy(train_mlp, monkeypatch):
    text, result = on_terminal(monkeypatch, train_mlp, "--epochs", "3")
    last = text.rstrip("\n").split("\r")[-1]                     # what stays on screen
    assert last.startswith("train_mlp: 100%") and "3/3" in last
    assert f"val_acc={result['history'][-1]['val_acc']:.4f}" in last
    assert text.endswith("\n")                                   # left, not erased
    assert "epoch 1" not in text and "batch" not in text         # quick epochs: no batch bar


def test_a_batch_bar_appears_when_an_epoch_runs_long(train_mlp, monkeypatch):
    monkeypatch.setattr(progress, "BATCH_BAR_AFTER", 0.0)         # every epoch counts as long
    text, _ = on_terminal(monkeypatch, train_mlp, "--epochs", "2")
    assert "epoch 1: " in text and "epoch 2: " in text and "0/23" in text and "batch/s" in text
    assert text.rstrip("\n").split("\r")[-1].startswith("train_mlp: 100%")   # erased: the run bar stays


def test_nothing_with_quiet_or_off_a_terminal(train_mlp, monkeypatch, capsys):
    text, _ = on_terminal(monkeypatch, train_mlp, "--epochs", "1", "--quiet")
    assert text == ""
    monkeypatch.setattr(sys, "stderr", io.StringIO())           # not a terminal
    train_mlp.main(["--epochs", "1", "--hidden", "16"])
    assert sys.stderr.getvalue() == ""


def test_a_resumed_run_bar_starts_at_the_epochs_done(train_mlp, monkeypatch, tmp_path):
    ckpt = tmp_path / "run.npz"
    train_mlp.main(["--epochs", "2", "--hidden", "16", "--quiet", "--save", str(ckpt)])
    text, _ = on_terminal(monkeypatch, train_mlp, "--epochs", "3", "--resume", str(ckpt))
    assert "2/3" in text and "3/3" in text and "0/3" not in text
