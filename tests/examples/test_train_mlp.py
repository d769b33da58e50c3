"""examples/train_mlp.py: metrics file, exact resume, checkpoints, the table, the bar, bad arguments.

Tiny settings (1-2 epochs, hidden 32) keep each run to a fraction of a second; the full digits
set is small enough that no subset is needed. CLI error paths also run in a subprocess, to
check that the user sees one clear line and no traceback.
"""
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

from .loader import EXAMPLES, load_example

EXAMPLE = EXAMPLES / "train_mlp.py"
TINY = ["--hidden", "32", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def train_mlp():
    return load_example("train_mlp")


def read_metrics(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.mark.parametrize("bn", ["fused", "composed", "none"])
def test_metrics_file_has_one_object_per_epoch(train_mlp, tmp_path, bn):
    path = tmp_path / "metrics.jsonl"
    result = train_mlp.main(["--epochs", "2", "--bn", bn, "--metrics", str(path), *TINY])
    rows = read_metrics(path)
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
        assert 0 <= r["val_acc"] <= 1 and 0 <= r["train_acc"] <= 1
        assert np.isfinite(r["train_loss"]) and r["train_loss"] > 0 and r["val_loss"] > 0
        assert r["seconds"] > 0
    assert rows[1]["train_loss"] < rows[0]["train_loss"]        # it learns
    assert rows[1]["val_acc"] > 0.2                              # 10 classes: chance is 0.1
    assert rows == result["history"]
    has_bn = any(isinstance(m, mg.nn.BatchNorm1d) for m in result["model"].modules())
    assert has_bn == (bn != "none")


def test_validation_uses_running_statistics(train_mlp):
    """The reported val_acc is eval mode's: recomputing it by hand in eval mode gives it exactly."""
    from minigrad.data import load_digits, train_val_split
    result = train_mlp.main(["--epochs", "1", *TINY])
    _, _, X_val, y_val = train_val_split(*load_digits(), 0.2, seed=0)
    with mg.eval_mode(), mg.no_grad():
        predicted = result["model"](mg.tensor(X_val)).data.argmax(axis=1)
    assert result["history"][0]["val_acc"] == float((predicted == y_val).mean())
    assert mg.is_training()                                      # the global flag was restored


def test_resume_reproduces_the_uninterrupted_run(train_mlp, tmp_path):
    full, resumed = tmp_path / "full.jsonl", tmp_path / "resumed.jsonl"
    ckpt = tmp_path / "run.npz"
    straight = train_mlp.main(["--epochs", "2", "--seed", "3", "--metrics", str(full), *TINY])
    train_mlp.main(["--epochs", "1", "--seed", "3", "--save", str(ckpt), *TINY])
    # Resume without repeating the options: they come from the checkpoint.
    again = train_mlp.main(["--epochs", "2", "--resume", str(ckpt), "--metrics", str(resumed),
                            "--quiet"])
    a, b = read_metrics(full), read_metrics(resumed)
    assert [r["epoch"] for r in b] == [1, 2]                     # the whole run, epoch 1 restored
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert a[1][key] == b[1][key], key                       # exactly, not approximately
    state_a, state_b = straight["model"].state_dict(), again["model"].state_dict()
    assert all(np.array_equal(state_a[k], state_b[k]) for k in state_a)


def test_checkpoint_holds_model_optimizer_epoch_and_config(train_mlp, tmp_path):
    ckpt = tmp_path / "run.npz"
    result = train_mlp.main(["--epochs", "2", "--optimizer", "sgd", "--save", str(ckpt), *TINY])
    saved = mg.load(ckpt)
    assert int(saved["epoch"]) == 2
    assert set(saved["model"]) == set(result["model"].state_dict())
    assert "momentum_buffer" in saved["optimizer"]["state"][0]
    assert saved["config"]["optimizer"].item() == "sgd" and saved["config"]["lr"].item() == 0.05
    assert saved["config"]["hidden"].tolist() == [32]
    assert not list(tmp_path.glob(".*.tmp"))                     # the atomic write left no temp file


def test_resume_with_another_architecture_is_a_clear_error(train_mlp, tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    train_mlp.main(["--epochs", "1", "--save", str(ckpt), *TINY])
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--epochs", "2", "--resume", str(ckpt), "--hidden", "64,32", "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "different options" in err and "--hidden 32 in the checkpoint, 64,32 on the command line" in err


def test_resume_of_a_foreign_file_is_a_clear_error(train_mlp, tmp_path, capsys):
    ckpt = tmp_path / "other.npz"
    mg.save({"weights": np.zeros(3)}, ckpt)                      # a minigrad file, not a run
    with pytest.raises(SystemExit):
        train_mlp.main(["--resume", str(ckpt)])
    assert "was not written by train_mlp.py --save" in capsys.readouterr().err


def test_table_row_per_epoch_and_no_bar_off_a_terminal(train_mlp, capsys):
    train_mlp.main(["--epochs", "2", "--hidden", "32"])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["epoch", "train_loss"])
    assert [line.split()[0] for line in lines[header + 1:header + 3]] == ["1", "2"]
    assert "validation accuracy" in lines[-1]
    assert captured.err == ""                                    # stderr is not a terminal: no bar


def test_progress_bar_on_a_terminal_shows_the_validation_accuracy(train_mlp, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    result = train_mlp.main(["--epochs", "1", "--hidden", "32"])
    assert "1/1" in terminal.getvalue() and f"val_acc={result['history'][0]['val_acc']:.4f}" in terminal.getvalue()
    quiet_terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet_terminal)
    train_mlp.main(["--epochs", "1", "--hidden", "32", "--quiet"])
    assert quiet_terminal.getvalue() == ""


def test_plot_without_matplotlib_is_refused_before_training(train_mlp, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)        # makes `import matplotlib` fail
    png, metrics = tmp_path / "curves.png", tmp_path / "m.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--epochs", "1", "--plot", str(png), "--metrics", str(metrics), *TINY])
    assert exit_info.value.code == 2
    assert '--plot needs matplotlib (pip install -e ".[plot]")' in capsys.readouterr().err
    assert not png.exists() and not metrics.exists()            # refused before any work


def test_plot_with_matplotlib_writes_a_png_and_says_so(train_mlp, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    train_mlp.main(["--epochs", "2", "--plot", str(png), *TINY])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    train_mlp.main(["--epochs", "1", "--plot", str(tmp_path / "curve"), *TINY])   # no suffix
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 'curve.png'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "curves.png"]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-1"], "argument --epochs: expected an integer >= 1, got '-1'"),
    (["--bn", "batch"], "argument --bn: invalid choice: 'batch'"),
    (["--resume", "no/such/checkpoint.npz"], "--resume: no checkpoint at 'no/such/checkpoint.npz'"),
])
def test_bad_arguments_exit_with_a_message_not_a_traceback(args, message):
    done = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--hidden", "32,x"], "expected comma-separated positive widths"),
    (["--lr", "0"], "argument --lr: expected a number > 0, got '0'"),
    (["--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
    (["--seed", "-2"], "argument --seed: expected an integer >= 0"),
    (["--batch-size", "1"], "--batch-size 1 cannot train batch norm"),
    (["--metrics", "no/such/folder/m.jsonl"], "the folder of 'no/such/folder/m.jsonl' does not exist"),
    (["--resume", "."], "--resume: cannot read '.': Is a directory"),
])
def test_more_bad_arguments(train_mlp, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_hand_edited_checkpoint_is_refused_with_one_line(train_mlp, tmp_path, capsys):
    ckpt = tmp_path / "run.npz"
    train_mlp.main(["--epochs", "1", "--save", str(ckpt), *TINY])
    state = mg.load(ckpt)
    state["config"]["bn"] = np.array("banana")
    state["config"]["lr"] = np.array(-1.0)
    mg.save(state, ckpt)
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--epochs", "2", "--resume", str(ckpt), "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "the checkpoint's options are not valid" in err and "bn: invalid choice: 'banana'" in err
    assert "lr: expected a number > 0, got '-1.0'" in err
    del state["config"]
    mg.save(state, ckpt)
    with pytest.raises(SystemExit):
        train_mlp.main(["--resume", str(ckpt)])
    assert "was not written by train_mlp.py --save" in capsys.readouterr().err


def test_output_paths_that_are_folders_are_refused_before_work(train_mlp, tmp_path, capsys):
    for option in ("--save", "--metrics", "--plot"):
        with pytest.raises(SystemExit):
            train_mlp.main(["--epochs", "1", option, str(tmp_path), *TINY])
        assert f"{option}: {str(tmp_path)!r} is a directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_two_outputs_on_one_file_are_refused_before_any_work(train_mlp, tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--metrics", str(path), "--save", str(path), *TINY])
    assert exit_info.value.code == 2
    assert f"--metrics {path} and --save {path} are the same file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--metrics", "{tmp}/"], "--metrics: '{tmp}/' ends with a slash"),
    (["--save", "{tmp}/" + "c" * 300], "File name too long"),
    (["--plot", "{tmp}/curve.txt"], "--plot: matplotlib cannot write '.txt' files"),
])
def test_output_paths_are_checked_before_any_work(train_mlp, tmp_path, capsys, monkeypatch, args, message):
    if "--plot" in args:
        pytest.importorskip("matplotlib")
    monkeypatch.setattr(train_mlp.models, "digits_split", lambda: pytest.fail("loaded data despite a bad path"))
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main([a.format(tmp=tmp_path) for a in args] + TINY)
    assert exit_info.value.code == 2 and message.format(tmp=tmp_path) in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_model_too_big_for_memory_is_one_line_before_any_work(train_mlp, capsys, monkeypatch):
    monkeypatch.setattr(train_mlp.models, "digits_split", lambda: pytest.fail("loaded data despite the size"))
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--hidden", "3000000000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert "--hidden 3000000000: the model (its weights, gradients and optimizer state) needs" in err[-1]


def test_a_corrupted_checkpoint_on_resume_is_one_line_from_the_command_line(train_mlp, tmp_path):
    ckpt = tmp_path / "run.npz"
    train_mlp.main(["--epochs", "1", "--save", str(ckpt), *TINY])
    data = bytearray(ckpt.read_bytes())
    ckpt.write_bytes(bytes(data[: len(data) // 2]))             # truncated
    done = subprocess.run([sys.executable, str(EXAMPLE), "--resume", str(ckpt)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "is not a readable minigrad checkpoint" in done.stderr.strip().splitlines()[-1]
