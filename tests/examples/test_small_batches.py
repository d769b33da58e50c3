"""examples/small_batches.py: parts of one step add up to the step's gradient (per-sample norms train
alike at every batch size, batch norm does not), BatchRenorm's bounds follow the run's schedule,
--quick runs end to end and writes the figure, bad arguments exit 2 before any work."""
import contextlib
import io
import subprocess
import sys
import time

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import DataLoader
from minigrad.nn import functional as F

from .loader import EXAMPLES, load_example   # first: it puts examples/ on sys.path for the lines below

from batches import figure  # noqa: E402
from helpers import models, plots  # noqa: E402

study = load_example("small_batches")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    X, y = models.load_data("mnist1d", "cnn", False)[:2]
    return X[:300], y[:300]


def weights(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()])


@pytest.mark.parametrize("norm, alike", [("group", True), ("layer", True), ("none", True), ("batch", False)])
def test_a_step_in_parts_is_the_step_for_per_sample_norms_only(data, norm, alike):
    X, y = data                                   # 300 samples: steps of 128, 128, 44
    whole, numbers = study.train(norm, 128, None, 0, 1, X, y)
    parts, _ = study.train(norm, 4, None, 0, 1, X, y)
    assert numbers["steps"] == 3 and numbers["batch"] == 100 and numbers["seconds"] > 0
    close = np.allclose(weights(whole), weights(parts), rtol=0, atol=1e-5)
    assert close is alike
    assert not np.array_equal(weights(whole), weights(study.train(norm, 128, None, 1, 1, X, y)[0]))   # seed


def test_the_iid_run_in_batches_of_a_whole_step_is_the_ordinary_training_loop(data):
    """b = 128: one part per step, so train() is train_cnn.py's loop with DataLoader(seed) batches of
    128 and the cosine schedule: the same weights, bit for bit."""
    X, y = data
    start = time.perf_counter()
    model, numbers = study.train("batch", 128, None, 4, 2, X, y)
    assert numbers["seconds"] <= (time.perf_counter() - start) / 2
    mg.manual_seed(4)
    plain = models.mnist1d_cnn("fused", norm="batch")
    optimizer = mg.optim.AdamW(plain.parameters(), lr=study.LR)
    loader = DataLoader(X, y, 128, shuffle=True, seed=4)
    with mg.train_mode():
        for epoch in (1, 2):
            for group in optimizer.param_groups:
                group["lr"] = models.learning_rate({"schedule": "cosine", "lr": study.LR, "epochs": 2}, epoch)
            for xb, yb in loader:
                loss = F.cross_entropy(plain(mg.tensor(xb)), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    for a, b in zip(model.state_dict().values(), plain.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_the_default_study_is_the_documented_one():
    """docs/batchnorm.md's table and the committed figure come from these."""
    assert study.CONDITIONS == ((2, None), (4, None), (8, None), (32, None), (128, None), (None, 2))
    assert (study.EPOCHS, study.SEEDS, study.STEP, study.LR) == (10, (0, 1, 2), 128, 1e-2)
    assert study.ROWS["renorm"] == ("renorm", 0.1) and study.ROWS["renorm-0.01"] == ("renorm", 0.01)


def test_batch_renorm_follows_the_schedule_over_every_step(data, monkeypatch):
    X, y = data
    seen, real = [], models.renorm_bounds
    monkeypatch.setattr(models, "renorm_bounds", lambda model, step, steps: seen.append((step, steps))
                        or real(model, step, steps))
    model, numbers = study.train("renorm-0.01", None, 2, 0, 2, X, y)
    assert seen == [(k, 6) for k in range(6)] and numbers["steps"] == 6
    assert 15 < numbers["batch"] < 30            # 2 of ~10 classes of steps of 128, 128 and 44: 600 / 30
    renorms = [m for m in model.modules() if type(m).__name__ == "BatchRenorm1d"]
    assert len(renorms) == 3 and all((m.r_max, m.d_max, m.momentum) == (3.0, 5.0, 0.01) for m in renorms)
    seen.clear()
    study.train("batch", 8, None, 0, 1, X, y)
    assert seen == []                                          # only BatchRenorm has bounds


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("figure")
    argv = ["--quick", "--quiet"] + (["--plot", str(folder)] if plots.have_matplotlib() else [])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = study.main(argv)
    return result, out.getvalue(), folder


def test_quick_runs_every_norm_and_condition_and_prints_the_tables(quick):
    result, text, _ = quick
    config = result["config"]
    assert config["epochs"] == 1 and config["seeds"] == (0,) and config["n_train"] == 512
    assert list(result["results"]) == list(study.ROWS) and {n for n, _ in study.ROWS.values()} == set(models.NORMS)
    for cells in result["results"].values():
        assert list(cells) == [(4, None), (32, None), (None, 2)]
        for runs in cells.values():
            assert len(runs) == 1 and 0 <= runs[0]["test"] <= 1 and runs[0]["steps"] == 4
    for norm in ("group", "layer", "none"):
        assert all(r["gap"] == 0 for runs in result["results"][norm].values() for r in runs)
    assert "| test accuracy, % (eval mode), seeds 0: mean (min-max) | b = 4 | b = 32 | 2 classes per batch |" in text
    assert all(line in text for line in result["conclusion"]) and "18 runs in" in text
    assert text.startswith("MNIST-1D: 512 train / 1000 test; train_cnn.py's CNN, AdamW lr 0.01 cosine over 1 epoch(s)")


def test_quick_writes_the_figure(quick):
    if not plots.have_matplotlib():
        pytest.skip("matplotlib is not installed")
    _, text, folder = quick
    assert (folder / figure.FIGURE).read_bytes()[:8] == PNG and f"wrote {folder / figure.FIGURE}" in text


def test_explicit_epochs_and_seeds_win_over_quick(monkeypatch):
    run = {"test": 0.5, "train_mode": 0.5, "gap": 0.0, "steps": 1, "batch": 4, "seconds": 1.0}
    monkeypatch.setattr(study, "run", lambda data, norms, conditions, seeds, epochs, quiet:
                        {n: {c: [run] * len(seeds) for c in conditions} for n in norms})
    with contextlib.redirect_stdout(io.StringIO()):
        result = study.main(["--quick", "--epochs", "2", "--seeds", "3,4"])
    assert result["config"]["epochs"] == 2 and result["config"]["seeds"] == (3, 4)
    with contextlib.redirect_stdout(io.StringIO()):
        result = study.main(["--seeds", "5"])
    assert result["config"]["epochs"] == study.EPOCHS and result["config"]["conditions"] == study.CONDITIONS
    assert result["config"]["n_train"] == 3600


def test_the_script_runs_from_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "small_batches.py"), "--quick", "--quiet", "--seeds", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "seeds 1" in done.stdout and "18 runs in" in done.stdout


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,-1"], "expected comma-separated seeds >= 0"),
    (["--epochs", "0"], "expected an integer >= 1, got '0'"),
    (["--plot", "/no/such/folder"], "--plot: '/no/such/folder' is not an existing folder"),
])
def test_bad_arguments_exit_2_before_any_work(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(study, "train", lambda *a, **k: pytest.fail("trained despite a bad argument"))
    with pytest.raises(SystemExit) as exit_info:
        study.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
