"""examples/cnn_table.py: each run is its own train_cnn.py process; the table, the JSON, bad rows."""
import json

import pytest

from .loader import load_example


@pytest.fixture(scope="module")
def table():
    return load_example("cnn_table")


def test_table_rows_and_format(table, tmp_path, capsys):
    path = tmp_path / "t.json"
    results = table.main(["--seeds", "0", "--epochs", "1", "--rows", "logistic regression;CNN + BN (fused)",
                          "--json", str(path)])
    assert set(results) == {"logistic regression", "CNN + BN (fused)"}
    out = capsys.readouterr().out
    assert "| logistic regression |" in out and "| 0.32 |" in out
    for entry in results.values():
        (run,) = entry["runs"]
        assert run["seed"] == 0 and 0 <= run["test_acc"] <= 1 and run["seconds"] > 0
    assert json.loads(path.read_text()) == results
    # a run is train_cnn.py's own: the same test accuracy as the script prints for those options
    direct = load_example("train_cnn").main(["--model", "logistic", "--bn", "none", "--epochs", "1", "--quiet"])
    assert results["logistic regression"]["runs"][0]["test_acc"] == direct["test_acc"]


def test_bad_rows_and_seeds_are_one_line(table, capsys):
    for argv, message in ((["--rows", "transformer"], "unknown rows ['transformer']"),
                          (["--seeds", "0,-1"], "expected comma-separated seeds >= 0")):
        with pytest.raises(SystemExit) as exit_info:
            table.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_failed_run_ends_the_table_with_its_error(table, monkeypatch):
    monkeypatch.setattr(table, "TRAIN_CNN", table.TRAIN_CNN.replace("train_cnn.py", "no_such_script.py"))
    with pytest.raises(SystemExit) as exit_info:
        table.run_train_cnn(["--epochs", "1"], 1)
    assert "train_cnn.py --epochs 1 failed" in str(exit_info.value)
