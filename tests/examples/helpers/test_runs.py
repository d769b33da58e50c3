"""examples/helpers/runs.py: a run's record and its resume. A checkpoint is checked as strictly as
the command line before anything is written: a hand-edited or damaged one ends in one line."""
import json
import time

import numpy as np
import pytest

import minigrad as mg

from ..loader import load_example

from helpers import runs  # noqa: E402  (examples/ is on sys.path: see loader.py)

TINY = ["--hidden", "16", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def train_mlp():
    return load_example("train_mlp")


@pytest.fixture(scope="module")
def saved(train_mlp, tmp_path_factory):
    """A two-epoch checkpoint of train_mlp.py, as mg.load reads it."""
    path = tmp_path_factory.mktemp("ckpt") / "run.npz"
    train_mlp.main(["--epochs", "2", "--save", str(path), *TINY])
    return mg.load(path)


def refused(train_mlp, capsys, tmp_path, state):
    """Resume from ``state`` with --metrics and --save: exit 2, one error line, nothing written."""
    ckpt, metrics, out = tmp_path / "edited.npz", tmp_path / "m.jsonl", tmp_path / "out.npz"
    mg.save(state, ckpt)
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--epochs", "3", "--resume", str(ckpt), "--metrics", str(metrics), "--save", str(out),
                        "--quiet"])
    assert exit_info.value.code == 2
    assert not metrics.exists() and not out.exists()           # refused before any output
    err = capsys.readouterr().err.strip().splitlines()
    assert ": error: --resume" in err[-1] and "Traceback" not in "\n".join(err)
    return err[-1]


def edited(state, **changes):
    copy = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".", 1)
            copy[outer][inner] = value
        elif value is None:
            del copy[key]
        else:
            copy[key] = value
    return copy


@pytest.mark.parametrize("epoch, shown", [(-1, "-1"), (1.5, "1.5"), (0, "0"), ([1, 2], "[1, 2]"), (None, "nothing")])
def test_a_bad_epoch_is_refused(train_mlp, capsys, tmp_path, saved, epoch, shown):
    state = edited(saved, epoch=None) if epoch is None else edited(saved, epoch=np.array(epoch))
    line = refused(train_mlp, capsys, tmp_path, state)
    assert line.endswith(f"its 'epoch' must be an integer >= 1, got {shown}")


def test_an_epoch_beyond_the_saved_history_is_refused(train_mlp, capsys, tmp_path, saved):
    line = refused(train_mlp, capsys, tmp_path, edited(saved, epoch=np.array(3)))
    assert line.endswith("its history has no 3 finite values of 'epoch'")


@pytest.mark.parametrize("column, value, message", [
    ("val_acc", np.array([0.5, np.nan]), "its history has no 2 finite values of 'val_acc'"),
    ("epoch", np.array([1, 1]), "its history's epochs are not 1 to 2"),
    ("train_loss", np.array(["a", "b"]), "its history has no 2 finite values of 'train_loss'"),
])
def test_a_bad_history_is_refused(train_mlp, capsys, tmp_path, saved, column, value, message):
    assert refused(train_mlp, capsys, tmp_path, edited(saved, **{f"history.{column}": value})).endswith(message)


def test_a_config_that_is_not_a_dict_is_refused(train_mlp, capsys, tmp_path, saved):
    line = refused(train_mlp, capsys, tmp_path, edited(saved, config=np.array(3)))
    assert line.endswith("was not written by train_mlp.py --save (its 'config' is a ndarray, not a dict)")
    line = refused(train_mlp, capsys, tmp_path,
                   {**saved, "config": {k: v for k, v in saved["config"].items() if k != "seed"}})
    assert line.endswith("(no 'seed' entry in its config)")


@pytest.mark.parametrize("key, value, message", [
    ("batch_size", np.array(1), "--batch-size 1 cannot train batch norm"),
    ("batch_size", np.array(0), "batch_size: expected an integer >= 1, got '0'"),
    ("seed", np.array(1.5), "seed: expected an integer >= 0, got '1.5'"),
    ("hidden", np.array([16, -3]), "hidden: expected comma-separated positive widths"),
    ("hidden", np.array(3_000_000_000), "--hidden 3000000000: the model (its weights, gradients and optimizer "
                                        "state) needs"),
])
def test_options_the_command_line_would_refuse_are_refused(train_mlp, capsys, tmp_path, saved, key, value, message):
    line = refused(train_mlp, capsys, tmp_path, edited(saved, **{f"config.{key}": value}))
    assert "the checkpoint's options are not valid: " in line and message in line


def test_a_model_state_of_another_shape_is_refused(train_mlp, capsys, tmp_path, saved):
    state = edited(saved, **{"model.0.weight": np.zeros((3, 3), np.float32)})
    line = refused(train_mlp, capsys, tmp_path, state)
    assert "cannot restore it: " in line and "0.weight: expected shape (16, 64), got (3, 3)" in line


def test_a_damaged_file_is_one_line(train_mlp, capsys, tmp_path, saved):
    ckpt = tmp_path / "run.npz"
    mg.save(saved, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:200])                   # truncated
    with pytest.raises(SystemExit) as exit_info:
        train_mlp.main(["--resume", str(ckpt), "--quiet"])
    assert exit_info.value.code == 2
    assert "is not a readable minigrad checkpoint" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_hand_edited_value_of_a_canonical_type_is_read_as_typed(train_mlp, tmp_path, saved):
    """A config value stored with another type but the same meaning (hidden as a 0-d array, lr as
    an int) is read as the command line would read it, not as whatever the file holds."""
    state = edited(saved, **{"config.hidden": np.array(16)})
    ckpt = tmp_path / "run.npz"
    mg.save(state, ckpt)
    result = train_mlp.main(["--epochs", "3", "--resume", str(ckpt), "--quiet"])
    assert result["config"]["hidden"] == (16,) and [r["epoch"] for r in result["history"]] == [1, 2, 3]


def test_the_log_writes_history_then_each_epoch(train_mlp, tmp_path, saved):
    ckpt, metrics = tmp_path / "run.npz", tmp_path / "m.jsonl"
    mg.save(saved, ckpt)
    start = time.perf_counter()
    train_mlp.main(["--epochs", "4", "--resume", str(ckpt), "--metrics", str(metrics), "--save", str(ckpt),
                    "--quiet"])
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and set(rows[0]) == set(runs.METRIC_KEYS)
    assert rows[:2] == [{k: float(v[i]) if k != "epoch" else i + 1 for k, v in saved["history"].items()}
                        for i in range(2)]                       # the checkpoint's rows, as saved
    assert int(mg.load(ckpt)["epoch"]) == 4
    assert all(r["seconds"] > 0 for r in rows) and rows[2]["seconds"] + rows[3]["seconds"] < wall
